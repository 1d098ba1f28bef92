package authn

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/password"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

func countEvents(t *testing.T, db *store.DB, accountID, outcome string) int {
	t.Helper()
	var n int64
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM auth_events WHERE account_id = $1 AND outcome = $2`, accountID, outcome).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// REQ: AZ-2
// With several roles the session starts without one; the chosen role must
// be held, the switch is logged and the token rotates.
func TestRoleChoice(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		ctx := context.Background()
		u := f.addUser(t, "twee.rollen", identity.KindProfessional, 3, true, string(access.RoleProfessional), string(access.RoleAssistant))
		tok, sess, err := f.logon(t, u, u.pw, "::1")
		if err != nil {
			t.Fatal(err)
		}
		if sess.Role != "" {
			t.Fatalf("role %q before choice", sess.Role)
		}
		if _, _, err := f.svc.ChooseRole(ctx, tok, string(access.RoleAppAdmin)); !errors.Is(err, ErrNotPermitted) {
			t.Fatalf("role not held: %v", err)
		}
		tok2, s2, err := f.svc.ChooseRole(ctx, tok, string(access.RoleAssistant))
		if err != nil || s2.Role != access.RoleAssistant || tok2 == tok {
			t.Fatalf("choose: %v %+v", err, s2)
		}
		if _, err := f.svc.Authenticate(ctx, tok); !errors.Is(err, ErrNoSession) {
			t.Fatalf("old token after switch: %v", err)
		}
		got, err := f.svc.Authenticate(ctx, tok2)
		if err != nil || got.Role != access.RoleAssistant {
			t.Fatalf("new token: %v %+v", err, got)
		}
		if countEvents(t, db, u.id, "role-switch") != 1 {
			t.Fatal("role switch not logged")
		}
	})
}

// REQ: AUTH-8
// An account holding an everyday role and a privileged one gets no
// session, and a security event is raised; an admin account with only an
// admin role logs on.
func TestPrivilegedRolesOnSeparateAccounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		ctx := context.Background()
		mixed := f.addUser(t, "mixed", identity.KindProfessional, 3, true, string(access.RoleProfessional), string(access.RoleAppAdmin))
		if _, _, err := f.logon(t, mixed, mixed.pw, "::1"); !errors.Is(err, ErrLogonFailed) {
			t.Fatalf("mixed roles logged on: %v", err)
		}
		adminWithCare := f.addUser(t, "admin.care", identity.KindAdmin, 3, true, string(access.RoleProfessional))
		if _, _, err := f.logon(t, adminWithCare, adminWithCare.pw, "::1"); !errors.Is(err, ErrLogonFailed) {
			t.Fatalf("admin account with care role logged on: %v", err)
		}
		admin := f.addUser(t, "admin.ok", identity.KindAdmin, 3, true, string(access.RoleAppAdmin))
		if _, s, err := f.logon(t, admin, admin.pw, "::1"); err != nil || s.Role != access.RoleAppAdmin {
			t.Fatalf("admin: %v %+v", err, s)
		}
		op := f.addUser(t, "op.ok", identity.KindOperator, 3, true, string(access.RoleOperator))
		if _, _, err := f.logon(t, op, op.pw, "::1"); err != nil {
			t.Fatalf("operator: %v", err)
		}
		evs, _ := f.securityEvents(ctx, f.tenant, time.Time{})
		if len(evs) != 2 || evs[0].Kind != "privilege-mix" {
			t.Fatalf("events %+v", evs)
		}
	})
}

// REQ: ID-5
// Deactivation revokes sessions, pending attempts, recovery codes and TOTP
// at once.
func TestDeactivate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		ctx := context.Background()
		u := f.addUser(t, "vertrekker", identity.KindProfessional, 3, true, string(access.RoleProfessional))
		codes, err := f.svc.NewRecoveryCodes(ctx, u.id)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := f.logon(t, u, u.pw, "::1")
		if err != nil {
			t.Fatal(err)
		}
		pending, _ := f.svc.Begin(ctx, u.name, u.pw, "::1")
		if err := f.svc.Deactivate(ctx, u.id); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Authenticate(ctx, tok); !errors.Is(err, ErrNoSession) {
			t.Fatalf("session survived deactivation: %v", err)
		}
		f.clock.Advance(30 * time.Second)
		if _, _, err := f.svc.Complete(ctx, pending, FactorTOTP, f.code(t, u.secret), "::1"); !errors.Is(err, ErrLogonFailed) {
			t.Fatalf("pending attempt survived: %v", err)
		}
		att, _ := f.svc.Begin(ctx, u.name, u.pw, "::1")
		if _, _, err := f.svc.Complete(ctx, att, FactorRecovery, codes[0], "::1"); !errors.Is(err, ErrLogonFailed) {
			t.Fatalf("recovery code survived: %v", err)
		}
		var live int64
		for _, q := range []string{
			`SELECT COUNT(*) FROM sessions WHERE account_id = $1 AND revoked_at IS NULL`,
			`SELECT COUNT(*) FROM recovery_codes WHERE account_id = $1 AND used_at IS NULL`,
			`SELECT COUNT(*) FROM totp_credentials WHERE account_id = $1 AND revoked_at IS NULL`,
			`SELECT COUNT(*) FROM login_attempts WHERE account_id = $1 AND used_at IS NULL`,
			`SELECT COUNT(*) FROM password_credentials WHERE account_id = $1`,
			`SELECT COUNT(*) FROM account_roles WHERE account_id = $1`,
		} {
			if err := db.QueryRowContext(ctx, q, u.id).Scan(&live); err != nil || live != 0 {
				t.Errorf("%s: %d left (%v)", q, live, err)
			}
		}
	})
}

// REQ: AUTH-4
// Log off, log off everywhere, idle timeout and lifetime.
func TestSessionEnds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		ctx := context.Background()
		u := f.addUser(t, "sessie", identity.KindPerson, 3, true, string(access.RolePerson))
		var toks []string
		for range 3 {
			tok, _, err := f.logon(t, u, u.pw, "::1")
			if err != nil {
				t.Fatal(err)
			}
			toks = append(toks, tok)
			f.clock.Advance(31 * time.Second)
		}
		if err := f.svc.Logout(ctx, toks[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Authenticate(ctx, toks[0]); !errors.Is(err, ErrNoSession) {
			t.Fatal("logged-off session still valid")
		}
		if _, err := f.svc.Authenticate(ctx, toks[1]); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.LogoutAll(ctx, u.id); err != nil {
			t.Fatal(err)
		}
		for _, tok := range toks[1:] {
			if _, err := f.svc.Authenticate(ctx, tok); !errors.Is(err, ErrNoSession) {
				t.Fatal("session survived log off everywhere")
			}
		}
		tok, _, err := f.logon(t, u, u.pw, "::1")
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(f.svc.settings.IdleTimeout + time.Second)
		if _, err := f.svc.Authenticate(ctx, tok); !errors.Is(err, ErrNoSession) {
			t.Fatal("idle session still valid")
		}
	})
}

// REQ: AZ-4
// ActFor sets the represented patient only when allowed says so.
func TestActFor(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		ctx := context.Background()
		u := f.addUser(t, "ouder", identity.KindPerson, 3, true, string(access.RolePerson))
		tok, _, err := f.logon(t, u, u.pw, "::1")
		if err != nil {
			t.Fatal(err)
		}
		allowed := func(_ context.Context, acc, patient string) (bool, error) {
			return acc == u.id && patient == "p-kind", nil
		}
		if err := f.svc.ActFor(ctx, tok, "p-vreemd", allowed); !errors.Is(err, ErrNotPermitted) {
			t.Fatalf("act for stranger: %v", err)
		}
		if err := f.svc.ActFor(ctx, tok, "p-kind", allowed); err != nil {
			t.Fatal(err)
		}
		s, err := f.svc.Authenticate(ctx, tok)
		if err != nil || s.OnBehalfOf != "p-kind" {
			t.Fatalf("%v %+v", err, s)
		}
		if countEvents(t, db, u.id, "act-for") != 1 || countEvents(t, db, u.id, "act-for-denied") != 1 {
			t.Fatal("act-for not logged")
		}
	})
}
