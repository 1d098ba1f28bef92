package authn

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/password"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// failingAudit refuses the events fail picks, as a full log device would.
type failingAudit struct{ fail func(audit.Event) bool }

func (a failingAudit) Append(_ context.Context, evs ...audit.Event) ([]audit.Event, error) {
	for _, e := range evs {
		if a.fail(e) {
			return nil, errors.New("log device failure")
		}
	}
	return evs, nil
}

// failInserts makes every insert into table fail.
func failInserts(t *testing.T, db *store.DB, table string) {
	t.Helper()
	var stmts []string
	if db.Dialect() == store.SQLite {
		stmts = []string{`CREATE TRIGGER fail_` + table + ` BEFORE INSERT ON ` + table + ` BEGIN SELECT RAISE(ABORT, 'disk full'); END`}
	} else {
		stmts = []string{
			`CREATE FUNCTION fail_` + table + `() RETURNS trigger AS 'BEGIN RAISE EXCEPTION ''disk full''; END' LANGUAGE plpgsql`,
			`CREATE TRIGGER fail_` + table + ` BEFORE INSERT ON ` + table + ` FOR EACH ROW EXECUTE FUNCTION fail_` + table + `()`,
		}
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
}

func liveSessions(t *testing.T, db *store.DB, accountID string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM sessions WHERE account_id = $1 AND revoked_at IS NULL`, accountID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// REQ: LOG-3, AUTH-4
// A log-on whose NEN 7513 event or brute-force counter cannot be written
// fails with an error (not the ordinary "log-on failed"), and no session
// survives it.
func TestLogonFailsClosedWhenNotLogged(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		ctx := context.Background()
		u := f.addUser(t, "closed.user", identity.KindProfessional, 3, true, string(access.RoleProfessional))

		// The audit log refuses everything: the first step fails.
		f.svc.settings.Audit = failingAudit{fail: func(audit.Event) bool { return true }}
		if _, err := f.svc.Begin(ctx, u.name, u.pw, "192.0.2.20"); err == nil || errors.Is(err, ErrLogonFailed) {
			t.Fatalf("begin with a failing audit log: %v", err)
		}
		// The audit log refuses only the success: no session.
		f.svc.settings.Audit = failingAudit{fail: func(e audit.Event) bool { return strings.HasPrefix(e.Reason, "success") }}
		att, err := f.svc.Begin(ctx, u.name, u.pw, "192.0.2.20")
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := f.svc.Complete(ctx, att, FactorTOTP, f.code(t, u.secret), "192.0.2.20")
		if err == nil || errors.Is(err, ErrLogonFailed) || tok != "" {
			t.Fatalf("complete with an unlogged success: %q %v", tok, err)
		}
		if n := liveSessions(t, db, u.id); n != 0 {
			t.Fatalf("%d sessions survive an unlogged log-on", n)
		}
		// A failed second factor that cannot be logged is an error too.
		f.svc.settings.Audit = failingAudit{fail: func(e audit.Event) bool { return e.Outcome == audit.OutcomeFailed }}
		att, err = f.svc.Begin(ctx, u.name, u.pw, "192.0.2.20")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.svc.Complete(ctx, att, FactorTOTP, "000000", "192.0.2.20"); err == nil || errors.Is(err, ErrLogonFailed) {
			t.Fatalf("complete with an unlogged failure: %v", err)
		}

		// The counter table refuses writes: a wrong password is not
		// silently left uncounted.
		f.svc.settings.Audit = nil
		failInserts(t, db, "auth_events")
		if _, err := f.svc.Begin(ctx, u.name, "wrong password", "192.0.2.21"); err == nil {
			t.Fatal("begin with an uncountable failure answered like any other")
		}
		f.clock.Advance(time.Minute)
		if _, err := f.svc.Begin(ctx, u.name, u.pw, "192.0.2.21"); err == nil {
			t.Fatal("log-on went on without its counter row")
		}
		if n := liveSessions(t, db, u.id); n != 0 {
			t.Fatalf("%d sessions without a counter row", n)
		}
	})
}

// REQ: AUTH-2, AUTH-4
// The log-on counts as a proof of the second factor for StepUpMaxAge; after
// that the session must step up with TOTP, a recovery code or a key. A wrong
// step-up code is a counted, logged failure; SMS and e-mail codes do not
// step up.
func TestStepUp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		ctx := context.Background()
		u := f.addUser(t, "step.user", identity.KindProfessional, 3, true, string(access.RoleProfessional))
		tok, sess, err := f.logon(t, u, u.pw, "192.0.2.30")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.svc.RequireStepUp(sess); err != nil {
			t.Fatalf("fresh log-on needs a step-up: %v", err)
		}
		f.clock.Advance(DefaultSettings().StepUpMaxAge + time.Second)
		sess, err = f.svc.Authenticate(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.svc.RequireStepUp(sess); !errors.Is(err, ErrStepUpRequired) {
			t.Fatalf("stale proof: %v", err)
		}
		if _, err := f.svc.StepUp(ctx, tok, FactorTOTP, "000000", "192.0.2.30"); !errors.Is(err, ErrStepUpFailed) {
			t.Fatalf("wrong code: %v", err)
		}
		if _, err := f.svc.StepUp(ctx, tok, FactorSMS, "12345678", "192.0.2.30"); !errors.Is(err, ErrStepUpFailed) {
			t.Fatalf("sms step-up: %v", err)
		}
		var failed int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_events WHERE username = $1 AND outcome = 'failure' AND reason = 'step-up'`, u.name).Scan(&failed); err != nil {
			t.Fatal(err)
		}
		if failed != 2 {
			t.Fatalf("%d step-up failures counted, want 2", failed)
		}
		if _, err := f.svc.StepUp(ctx, tok, FactorTOTP, f.code(t, u.secret), "192.0.2.30"); err != nil {
			t.Fatalf("right code: %v", err)
		}
		sess, err = f.svc.Authenticate(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.svc.RequireStepUp(sess); err != nil {
			t.Fatalf("after step-up: %v", err)
		}
		// A recovery code steps up once.
		codes, err := f.svc.NewRecoveryCodes(ctx, u.id)
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(DefaultSettings().StepUpMaxAge + time.Second)
		if _, err := f.svc.StepUp(ctx, tok, FactorRecovery, codes[0], "192.0.2.30"); err != nil {
			t.Fatalf("recovery step-up: %v", err)
		}
		if _, err := f.svc.StepUp(ctx, tok, FactorRecovery, codes[0], "192.0.2.30"); !errors.Is(err, ErrStepUpFailed) {
			t.Fatalf("recovery code reused: %v", err)
		}
		// Another session's token does not step this one up.
		if _, err := f.svc.StepUp(ctx, "not-a-token", FactorTOTP, "000000", "192.0.2.30"); !errors.Is(err, ErrNoSession) {
			t.Fatalf("unknown session: %v", err)
		}
	})
}

// REQ: AUTH-2
// Adding or removing a factor and new recovery codes are told to the
// account holder at the verified address, without the secret, and logged;
// without a verified address nothing is sent, and the log says so.
func TestFactorChangeNotice(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		ctx := context.Background()
		u := f.addUser(t, "notice.user", identity.KindProfessional, 3, true, string(access.RoleProfessional))
		if len(f.sender.sent) != 0 {
			t.Fatalf("notice without an address: %+v", f.sender.sent)
		}
		f.clock.Advance(time.Second) // the events' order is their time
		cid, err := f.svc.AddContact(ctx, u.id, FactorEmail, "notice.user@example.invalid")
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := f.svc.ConfirmContact(ctx, u.id, cid, f.sender.lastCode(t)); err != nil || !ok {
			t.Fatalf("confirm: %v %v", ok, err)
		}
		before := len(f.sender.sent)
		f.clock.Advance(time.Second) // the events' order is their time
		_, secret, err := f.svc.EnrollTOTP(ctx, u.id, u.name)
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Second)
		codes, err := f.svc.NewRecoveryCodes(ctx, u.id)
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Second)
		ids, err := f.svc.TOTPCredentials(ctx, u.id)
		if err != nil || len(ids) != 2 {
			t.Fatalf("totp credentials %v %v", ids, err)
		}
		if err := f.svc.RemoveTOTP(ctx, u.id, ids[1]); err != nil {
			t.Fatal(err)
		}
		sent := f.sender.sent[before:]
		if len(sent) != 3 {
			t.Fatalf("%d notices, want 3: %+v", len(sent), sent)
		}
		for _, m := range sent {
			if m.Channel != FactorEmail || m.To != "notice.user@example.invalid" {
				t.Errorf("notice to %s %s", m.Channel, m.To)
			}
			if strings.Contains(m.Body, secret) || strings.Contains(m.Body, codes[0]) || strings.Contains(m.Body, strings.ReplaceAll(codes[0], "-", "")) {
				t.Errorf("notice carries a secret: %q", m.Body)
			}
		}
		rows, err := db.QueryContext(ctx, `SELECT outcome, factor, reason FROM auth_events WHERE account_id = $1 AND outcome IN ('factor-enrolled', 'factor-removed') ORDER BY created_at, id`, u.id)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var o, fa, r string
			if err := rows.Scan(&o, &fa, &r); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(r, secret) {
				t.Errorf("log line carries the secret: %q", r)
			}
			got = append(got, o+" "+fa+" "+r)
		}
		// set-up's app (no address yet), the e-mail address, app, codes, removal
		if len(got) != 5 || !strings.Contains(got[0], "no notice: no verified address") || !strings.Contains(got[1], "factor-enrolled email") ||
			!strings.Contains(got[4], "factor-removed totp") || !strings.Contains(got[4], "notice sent by email") {
			t.Fatalf("events %q", got)
		}
	})
}

// REQ: AUTH-2, AUTH-1
// A security key steps a session up with an assertion to a challenge begun
// for that session; the same answer replayed, or given to another session,
// does not.
func TestWebAuthnStepUp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newWebAuthnFixture(t, db)
		ctx := context.Background()
		u := f.addUser(t, "key.stepper", identity.KindPerson, 3, true, string(access.RolePerson))
		k := newSoftKey(t, true)
		f.enrolKey(t, u, k)
		tok, _, err := f.logon(t, u, u.pw, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(DefaultSettings().StepUpMaxAge + time.Second)
		other, _, err := f.logon(t, u, u.pw, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		sess, err := f.svc.Authenticate(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		opts, err := f.svc.BeginWebAuthnStepUp(ctx, sess)
		if err != nil {
			t.Fatal(err)
		}
		answer := string(k.assert(opts))
		if _, err := f.svc.StepUp(ctx, other, FactorWebAuthn, answer, "127.0.0.1"); !errors.Is(err, ErrStepUpFailed) {
			t.Fatalf("answer given to another session: %v", err)
		}
		// A new challenge for the right session, answered once.
		opts, err = f.svc.BeginWebAuthnStepUp(ctx, sess)
		if err != nil {
			t.Fatal(err)
		}
		answer = string(k.assert(opts))
		if _, err := f.svc.StepUp(ctx, tok, FactorWebAuthn, answer, "127.0.0.1"); err != nil {
			t.Fatalf("key step-up: %v", err)
		}
		if _, err := f.svc.StepUp(ctx, tok, FactorWebAuthn, answer, "127.0.0.1"); !errors.Is(err, ErrStepUpFailed) {
			t.Fatalf("replayed answer: %v", err)
		}
		sess, err = f.svc.Authenticate(ctx, tok)
		if err != nil || f.svc.RequireStepUp(sess) != nil {
			t.Fatalf("after key step-up: %v %v", err, f.svc.RequireStepUp(sess))
		}
	})
}

// REQ: AUTH-2
// A log-on with an SMS or e-mail code is not a proof a step-up accepts: the
// session must step up with a strong factor before it changes the factors,
// or a taken-over mailbox and the password would be enough to plant a TOTP
// secret. A log-on with TOTP is one.
func TestWeakLogonIsNoStepUp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		ctx := context.Background()
		if err := f.svc.SetTenantSettings(ctx, f.tenant, TenantAuthSettings{WeakFactors: true}); err != nil {
			t.Fatal(err)
		}
		u := f.addUser(t, "weak.step", identity.KindPerson, 3, true, string(access.RolePerson))
		cid, err := f.svc.AddContact(ctx, u.id, FactorEmail, "weak.step@example.invalid")
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := f.svc.ConfirmContact(ctx, u.id, cid, f.sender.lastCode(t)); !ok || err != nil {
			t.Fatalf("confirm: %v %v", ok, err)
		}
		att, err := f.svc.Begin(ctx, u.name, u.pw, "192.0.2.31")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.svc.SendLogonCode(ctx, att, FactorEmail); err != nil {
			t.Fatal(err)
		}
		tok, sess, err := f.svc.Complete(ctx, att, FactorEmail, f.sender.lastCode(t), "192.0.2.31")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.svc.RequireStepUp(sess); !errors.Is(err, ErrStepUpRequired) {
			t.Fatalf("e-mail log-on counted as a step-up: %v", err)
		}
		if sess, err = f.svc.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.RequireStepUp(sess); !errors.Is(err, ErrStepUpRequired) {
			t.Fatalf("e-mail log-on's session counts as stepped up: %v", err)
		}
		if _, err := f.svc.StepUp(ctx, tok, FactorTOTP, f.code(t, u.secret), "192.0.2.31"); err != nil {
			t.Fatalf("TOTP step-up: %v", err)
		}
		if sess, err = f.svc.Authenticate(ctx, tok); err != nil || f.svc.RequireStepUp(sess) != nil {
			t.Fatalf("after TOTP step-up: %v %v", err, f.svc.RequireStepUp(sess))
		}
	})
}

// failUpdates makes every update of table fail.
func failUpdates(t *testing.T, db *store.DB, table string) {
	t.Helper()
	var stmts []string
	if db.Dialect() == store.SQLite {
		stmts = []string{`CREATE TRIGGER failupd_` + table + ` BEFORE UPDATE ON ` + table + ` BEGIN SELECT RAISE(ABORT, 'disk full'); END`}
	} else {
		stmts = []string{
			`CREATE FUNCTION failupd_` + table + `() RETURNS trigger AS 'BEGIN RAISE EXCEPTION ''disk full''; END' LANGUAGE plpgsql`,
			`CREATE TRIGGER failupd_` + table + ` BEFORE UPDATE ON ` + table + ` FOR EACH ROW EXECUTE FUNCTION failupd_` + table + `()`,
		}
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
}

// REQ: LOG-3, AUTH-2
// When an enrolment cannot be logged and the credential cannot be revoked
// either, the error says that an unlogged credential is still there, so the
// report that follows is not the ordinary "could not enrol".
func TestUnloggedEnrolmentLeftBehindIsReported(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		ctx := context.Background()
		u := f.addUser(t, "unlogged.enrol", identity.KindProfessional, 3, true, string(access.RoleProfessional))
		f.svc.settings.Audit = failingAudit{fail: func(e audit.Event) bool { return strings.HasPrefix(e.Reason, "factor-enrolled") }}
		failUpdates(t, db, "totp_credentials")
		_, secret, err := f.svc.EnrollTOTP(ctx, u.id, u.name)
		if err == nil || secret != "" {
			t.Fatalf("unlogged enrolment: %q %v", secret, err)
		}
		if !strings.Contains(err.Error(), "revoking the unlogged credential") {
			t.Fatalf("error does not report the credential left behind: %v", err)
		}
	})
}
