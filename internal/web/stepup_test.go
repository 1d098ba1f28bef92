package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

// REQ: AUTH-2, AUTH-4
// On the "Aanmeldmiddelen" page a session may add an authenticator app or
// new recovery codes right after log-on; minutes later the same posts are
// refused (403) with the step-up offered and nothing added, until the user
// confirms with a second factor again. A wrong confirmation changes nothing.
func TestFactorPagesNeedStepUp(t *testing.T) {
	e := newPageEnv(t)
	tenant := e.tenant("Praktijk")
	acc, err := e.ids.CreateAccount(e.ctx, identity.Account{TenantID: tenant, Kind: identity.KindPerson, Username: "stepper", DisplayName: "S", RegistrationMethod: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ids.GrantRole(e.ctx, acc.ID, string(access.RolePerson), "test set-up"); err != nil {
		t.Fatal(err)
	}
	const pw = "correct horse battery staple 42"
	if err := e.an.SetPassword(e.ctx, acc.ID, pw, false); err != nil {
		t.Fatal(err)
	}
	_, secret, err := e.an.EnrollTOTP(e.ctx, acc.ID, "stepper")
	if err != nil {
		t.Fatal(err)
	}
	attempt, err := e.an.Begin(e.ctx, "stepper", pw, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	code, _ := totp.GenerateCode(secret, e.clock.Now())
	tok, _, err := e.an.CompleteTOTP(e.ctx, attempt, code, "127.0.0.1", "stepper")
	if err != nil {
		t.Fatal(err)
	}
	u := pageUser{token: tok}
	count := func() int {
		ids, err := e.an.TOTPCredentials(e.ctx, acc.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(ids)
	}

	if st, body := e.page(u, "/me/factors/recovery", url.Values{}, false); st != http.StatusOK || !strings.Contains(body, `id="recovery-codes"`) || strings.Contains(body, `id="stepup"`) {
		t.Fatalf("recovery codes right after log-on: %d", st)
	}
	e.clock.Advance(6 * time.Minute)
	for _, path := range []string{"/me/factors/totp", "/me/factors/recovery", "/me/factors/totp/remove", "/me/factors/webauthn", "/me/factors/webauthn/remove"} {
		st, body := e.page(u, path, url.Values{"id": {"x"}, "credential": {"{}"}, "name": {"k"}}, false)
		if st != http.StatusForbidden || !strings.Contains(body, `id="stepup"`) || strings.Contains(body, `id="totp-secret"`) || strings.Contains(body, `id="recovery-codes"`) {
			t.Errorf("%s with a stale proof: %d", path, st)
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("%d authenticator apps after refused posts", n)
	}
	if st, body := e.page(u, "/me/stepup", url.Values{"factor": {"totp"}, "code": {"000000"}}, false); st != http.StatusUnauthorized || !strings.Contains(body, `id="stepup"`) {
		t.Fatalf("wrong step-up code: %d", st)
	}
	if st, _ := e.page(u, "/me/stepup", url.Values{"factor": {"sms"}, "code": {"12345678"}}, false); st != http.StatusUnauthorized {
		t.Fatalf("sms step-up: %d", st)
	}
	code, _ = totp.GenerateCode(secret, e.clock.Now())
	if st, _ := e.page(u, "/me/stepup", url.Values{"factor": {"totp"}, "code": {code}}, false); st != http.StatusSeeOther {
		t.Fatalf("step-up: %d", st)
	}
	if st, body := e.page(u, "/me/factors/totp", url.Values{}, false); st != http.StatusOK || !strings.Contains(body, `id="totp-secret"`) || strings.Contains(body, `id="stepup"`) {
		t.Fatalf("add app after step-up: %d", st)
	}
	if n := count(); n != 2 {
		t.Fatalf("%d authenticator apps, want 2", n)
	}
}

// REQ: LOG-3, AUTH-4
// When the log-on's counter row or log event cannot be written, the log-on
// page answers with the "unavailable" error page (503), not a next step.
func TestLogonPageFailsClosed(t *testing.T) {
	e := newPageEnv(t)
	if _, err := e.db.ExecContext(e.ctx, `CREATE TRIGGER fail_events BEFORE INSERT ON auth_events BEGIN SELECT RAISE(ABORT, 'disk full'); END`); err != nil {
		t.Fatal(err)
	}
	st, body := e.page(pageUser{}, "/logon", url.Values{"username": {"someone"}, "password": {"whatever it is"}}, false)
	if st != http.StatusServiceUnavailable || !strings.Contains(body, msg("nl", "err.unavailable")) {
		t.Fatalf("log-on with an unwritable counter: %d", st)
	}
}
