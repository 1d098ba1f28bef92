package router_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// REQ: AUTH-1, AUTH-4, AUTH-5, AZ-2, ID-6
// The JSON flow for apps: factor choice, second step with TOTP, "your last
// log-on" in the answer, recovery codes, role choice with a new token,
// password change, a temporary password limiting the session, log off
// everywhere.
func TestAuthnJSONFlow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		srv, an, accID := foundationServer(t, db)
		ctx := context.Background()
		_, secret, err := an.EnrollTOTP(ctx, accID, "known")
		if err != nil {
			t.Fatal(err)
		}
		begin := func(pw string) string {
			resp, b := call(t, srv, "POST", "/api/v1/logon", `{"username":"known","password":"`+pw+`"}`)
			var m struct {
				Attempt string   `json:"attempt"`
				Factors []string `json:"factors"`
			}
			if err := json.Unmarshal(b, &m); err != nil || resp.StatusCode != 200 || len(m.Factors) < 2 {
				t.Fatalf("logon: %d %s", resp.StatusCode, b)
			}
			return m.Attempt
		}
		complete := func(att, factor, code string) (int, map[string]any) {
			resp, b := call(t, srv, "POST", "/api/v1/logon/complete", `{"attempt":"`+att+`","factor":"`+factor+`","code":"`+code+`"}`)
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			return resp.StatusCode, m
		}
		code, _ := totp.GenerateCode(secret, time.Now())
		st, m := complete(begin("a perfectly fine passphrase"), "totp", code)
		if st != 200 || m["token"] == "" || m["failed_attempts_since"] != float64(0) || m["previous_logon"] != nil {
			t.Fatalf("first log-on: %d %v", st, m)
		}
		tok := m["token"].(string)
		bearer := []string{"Authorization", "Bearer " + tok}

		resp, b := call(t, srv, "POST", "/api/v1/factors/recovery", "", bearer...)
		var rc struct {
			Codes []string `json:"recovery_codes"`
		}
		if resp.StatusCode != 201 || json.Unmarshal(b, &rc) != nil || len(rc.Codes) != 10 {
			t.Fatalf("recovery codes: %d %s", resp.StatusCode, b)
		}
		// A failure, then a log-on that reports it.
		if st, _ := complete(begin("wrong"), "totp", "123456"); st != 401 {
			t.Fatalf("wrong password: %d", st)
		}
		st, m = complete(begin("a perfectly fine passphrase"), "recovery", rc.Codes[0])
		if st != 200 || m["previous_logon"] == nil || m["failed_attempts_since"] != float64(1) {
			t.Fatalf("second log-on: %d %v", st, m)
		}
		tok2 := m["token"].(string)

		// Role choice among two roles (AZ-2).
		for _, r := range []access.Role{access.RoleProfessional, access.RoleAssistant} {
			if err := foundationGrant(ctx, db, accID, string(r)); err != nil {
				t.Fatal(err)
			}
		}
		resp, b = call(t, srv, "POST", "/api/v1/session/role", `{"role":"assistant"}`, "Authorization", "Bearer "+tok2)
		var rs map[string]any
		if resp.StatusCode != 200 || json.Unmarshal(b, &rs) != nil || rs["role"] != "assistant" || rs["token"] == tok2 {
			t.Fatalf("role choice: %d %s", resp.StatusCode, b)
		}
		if resp, _ := call(t, srv, "GET", "/api/v1/session", "", "Authorization", "Bearer "+tok2); resp.StatusCode != 401 {
			t.Fatalf("old token after role switch: %d", resp.StatusCode)
		}
		if resp, _ := call(t, srv, "POST", "/api/v1/session/role", `{"role":"operator"}`, "Authorization", "Bearer "+rs["token"].(string)); resp.StatusCode != 403 {
			t.Fatalf("role not held: %d", resp.StatusCode)
		}

		// Password change (AUTH-5): weak refused with 422, right one 204.
		if resp, _ := call(t, srv, "POST", "/api/v1/password", `{"current":"a perfectly fine passphrase","new":"password123456"}`, bearer...); resp.StatusCode != 422 {
			t.Fatalf("weak password: %d", resp.StatusCode)
		}
		if resp, _ := call(t, srv, "POST", "/api/v1/password", `{"current":"wrong","new":"zeven-groene-appels-lopen"}`, bearer...); resp.StatusCode != 403 {
			t.Fatalf("wrong current password: %d", resp.StatusCode)
		}
		if resp, b := call(t, srv, "POST", "/api/v1/password", `{"current":"a perfectly fine passphrase","new":"zeven-groene-appels-lopen"}`, bearer...); resp.StatusCode != 204 {
			t.Fatalf("change: %d %s", resp.StatusCode, b)
		}

		// Temporary password (ID-6): the session may only change it.
		tmp, err := an.IssueTemporaryPassword(ctx, accID)
		if err != nil {
			t.Fatal(err)
		}
		st, m = complete(begin(tmp), "recovery", rc.Codes[1])
		if st != 200 || m["must_change_password"] != true {
			t.Fatalf("temporary log-on: %d %v", st, m)
		}
		tmpBearer := []string{"Authorization", "Bearer " + m["token"].(string)}
		if resp, _ := call(t, srv, "POST", "/api/v1/factors/recovery", "", tmpBearer...); resp.StatusCode != 403 {
			t.Fatalf("temporary-password session did more than change it: %d", resp.StatusCode)
		}
		if resp, _ := call(t, srv, "GET", "/api/v1/session", "", tmpBearer...); resp.StatusCode != 200 {
			t.Fatalf("session with temporary password: %d", resp.StatusCode)
		}

		// Log off everywhere.
		if resp, _ := call(t, srv, "POST", "/api/v1/logoff/all", "", tmpBearer...); resp.StatusCode != 204 {
			t.Fatalf("log off everywhere: %d", resp.StatusCode)
		}
		if resp, _ := call(t, srv, "GET", "/api/v1/session", "", bearer...); resp.StatusCode != 401 {
			t.Fatalf("session after log off everywhere: %d", resp.StatusCode)
		}
	})
}

func foundationGrant(ctx context.Context, db *store.DB, accountID, role string) error {
	return identity.NewRegistry(db, clock.System{}, nil).GrantRole(ctx, accountID, role, "test")
}
