package router_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// apiLogon logs the foundation user on with a TOTP code at time at.
func apiLogon(t *testing.T, call func(method, path, body string, hdr ...string) (int, []byte), secret string, at time.Time) string {
	t.Helper()
	st, b := call("POST", "/api/v1/logon", `{"username":"known","password":"a perfectly fine passphrase"}`)
	var m struct {
		Attempt string `json:"attempt"`
		Token   string `json:"token"`
	}
	if st != 200 || json.Unmarshal(b, &m) != nil {
		t.Fatalf("logon: %d %s", st, b)
	}
	code, _ := totp.GenerateCode(secret, at)
	st, b = call("POST", "/api/v1/logon/complete", `{"attempt":"`+m.Attempt+`","factor":"totp","code":"`+code+`"}`)
	if st != 200 || json.Unmarshal(b, &m) != nil || m.Token == "" {
		t.Fatalf("complete: %d %s", st, b)
	}
	return m.Token
}

// REQ: AUTH-2, AUTH-4
// Adding or replacing a factor needs a fresh second factor: the log-on counts
// for a few minutes, then the factor endpoints answer 403 with a
// machine-readable type until POST /api/v1/stepup proves one again. Their
// bodies are validated (invalid JSON got 201 before).
func TestFactorChangesNeedStepUp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		srv, an, accID := foundationServer(t, db)
		ctx := context.Background()
		_, secret, err := an.EnrollTOTP(ctx, accID, "known")
		if err != nil {
			t.Fatal(err)
		}
		c := func(method, path, body string, hdr ...string) (int, []byte) {
			resp, b := call(t, srv, method, path, body, hdr...)
			return resp.StatusCode, b
		}
		now := time.Now()
		tok := apiLogon(t, c, secret, now)
		auth := []string{"Authorization", "Bearer " + tok}

		for _, body := range []string{`not json`, `{"secret":"AAAA"}`, `{} {}`, `[]`} {
			st, b := c("POST", "/api/v1/factors/totp", body, auth...)
			if st != 400 || !strings.Contains(string(b), `"status":400`) {
				t.Errorf("totp with body %q: %d %s", body, st, b)
			}
			if st, b := c("POST", "/api/v1/factors/recovery", body, auth...); st != 400 {
				t.Errorf("recovery with body %q: %d %s", body, st, b)
			}
		}
		if st, b := c("POST", "/api/v1/factors/totp", `{}`, auth...); st != 201 {
			t.Fatalf("enrol right after log-on: %d %s", st, b)
		}

		// The proof ages past the step-up window.
		if _, err := db.ExecContext(ctx, `UPDATE sessions SET second_factor_at = $1 WHERE account_id = $2`, now.Add(-6*time.Minute).UnixMicro(), accID); err != nil {
			t.Fatal(err)
		}
		for _, rq := range [][2]string{{"POST", "/api/v1/factors/totp"}, {"POST", "/api/v1/factors/recovery"}, {"DELETE", "/api/v1/factors/totp/x"},
			{"POST", "/api/v1/factors/webauthn/begin"}, {"POST", "/api/v1/factors/webauthn/finish"}, {"DELETE", "/api/v1/factors/webauthn/x"},
			{"POST", "/api/v1/factors/contact"}} {
			st, b := c(rq[0], rq[1], `{}`, auth...)
			var p struct {
				Type    string   `json:"type"`
				Status  int      `json:"status"`
				Factors []string `json:"factors"`
			}
			if st != 403 || json.Unmarshal(b, &p) != nil || p.Type != "urn:zorgkluis:problem:step-up-required" || p.Status != 403 || len(p.Factors) == 0 {
				t.Errorf("%s %s with a stale proof: %d %s", rq[0], rq[1], st, b)
			}
		}

		for _, body := range []string{`nope`, `{"factor":"totp","code":"1","extra":1}`, `{"factor":"sms","code":"12345678"}`, `{"factor":"totp"}`} {
			if st, b := c("POST", "/api/v1/stepup", body, auth...); st != 400 {
				t.Errorf("step-up with %q: %d %s", body, st, b)
			}
		}
		if st, b := c("POST", "/api/v1/stepup", `{"factor":"totp","code":"000000"}`, auth...); st != 401 {
			t.Fatalf("wrong step-up code: %d %s", st, b)
		}
		if st, b := c("POST", "/api/v1/stepup", `{"factor":"totp","code":"1"}`); st != 401 {
			t.Fatalf("step-up without a session: %d %s", st, b)
		}
		code, _ := totp.GenerateCode(secret, now.Add(30*time.Second)) // the log-on used this step's code
		if st, b := c("POST", "/api/v1/stepup", `{"factor":"totp","code":"`+code+`"}`, auth...); st != 200 || !strings.Contains(string(b), "valid_until") {
			t.Fatalf("step-up: %d %s", st, b)
		}
		if st, b := c("POST", "/api/v1/factors/recovery", ``, auth...); st != 201 {
			t.Fatalf("recovery codes after step-up: %d %s", st, b)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_events WHERE account_id = $1 AND outcome IN ('step-up', 'factor-enrolled')`, accID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 4 { // enrolment at set-up, totp, step-up, recovery codes
			t.Fatalf("%d step-up and enrolment events, want 4", n)
		}
	})
}

// REQ: LOG-3, AUTH-4
// A log-on whose counter row cannot be written answers 503 problem JSON,
// not an attempt token.
func TestLogonUnloggedIs503(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		srv, _, _ := foundationServer(t, db)
		stmts := []string{`CREATE TRIGGER fail_events BEFORE INSERT ON auth_events BEGIN SELECT RAISE(ABORT, 'disk full'); END`}
		if db.Dialect() == store.Postgres {
			stmts = []string{`CREATE FUNCTION fail_events() RETURNS trigger AS 'BEGIN RAISE EXCEPTION ''disk full''; END' LANGUAGE plpgsql`,
				`CREATE TRIGGER fail_events BEFORE INSERT ON auth_events FOR EACH ROW EXECUTE FUNCTION fail_events()`}
		}
		for _, s := range stmts {
			if _, err := db.ExecContext(context.Background(), s); err != nil {
				t.Fatal(err)
			}
		}
		resp, b := call(t, srv, "POST", "/api/v1/logon", `{"username":"known","password":"wrong"}`)
		if resp.StatusCode != 503 || resp.Header.Get("Content-Type") != "application/problem+json" || strings.Contains(string(b), "attempt") {
			t.Fatalf("unlogged log-on: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	})
}
