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

// REQ: AUTH-5
// Change with the current password; the policy applies with the user's own
// data; the last 10 passwords cannot come back.
func TestChangePassword(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		ctx := context.Background()
		u := f.addUser(t, "wijzig", identity.KindPerson, 3, true, string(access.RolePerson))
		good := []string{"paars-olifant-fiets-wolk", "groene-kikker-trein-zon", "blauwe-vis-auto-regen"}
		if err := f.svc.ChangePassword(ctx, u.id, "not current", good[0]); !errors.Is(err, ErrLogonFailed) {
			t.Fatalf("wrong current password: %v", err)
		}
		var vs password.Violations
		for _, weak := range []string{"password1234567", "wijzig-wijzig-wijzig", "123456789012345", "kort", "12-04-1980-zomer"} {
			if err := f.svc.ChangePassword(ctx, u.id, u.pw, weak); !errors.As(err, &vs) {
				t.Errorf("weak password %q accepted: %v", weak, err)
			}
		}
		cur := u.pw
		for _, p := range good {
			if err := f.svc.ChangePassword(ctx, u.id, cur, p); err != nil {
				t.Fatalf("change to %q: %v", p, err)
			}
			cur = p
		}
		if err := f.svc.ChangePassword(ctx, u.id, cur, good[0]); !errors.Is(err, ErrPasswordReused) {
			t.Fatalf("reuse: %v", err)
		}
		if err := f.svc.ChangePassword(ctx, u.id, cur, u.pw); !errors.Is(err, ErrPasswordReused) {
			t.Fatalf("reuse of the first password: %v", err)
		}
		if _, _, err := f.logon(t, u, cur, "::1"); err != nil {
			t.Fatalf("log-on with new password: %v", err)
		}
	})
}

// REQ: AUTH-5
// The history keeps exactly the last HistoryLen hashes.
func TestHistoryLength(t *testing.T) {
	db := storetest.SQLite(t)
	f := newFixture(t, db, password.TestParams())
	ctx := context.Background()
	u := f.addUser(t, "historie", identity.KindPerson, 3, false, string(access.RolePerson))
	for i := range 15 {
		f.clock.Advance(time.Second)
		if err := f.svc.SetPassword(ctx, u.id, "wachtwoord-nummer-"+string(rune('a'+i))+"-xyz", false); err != nil {
			t.Fatal(err)
		}
	}
	var n int64
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM password_history WHERE account_id = $1`, u.id).Scan(&n); err != nil || n != 10 {
		t.Fatalf("history length %d (%v), want 10", n, err)
	}
}

// REQ: ID-6
// A temporary password forces a change at first log-on and expires.
func TestTemporaryPassword(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		ctx := context.Background()
		u := f.addUser(t, "nieuw", identity.KindPerson, 3, true, string(access.RolePerson))
		tmp, err := f.svc.IssueTemporaryPassword(ctx, u.id)
		if err != nil || len(tmp) < 20 {
			t.Fatalf("%q %v", tmp, err)
		}
		tok, sess, err := f.logon(t, u, tmp, "::1")
		if err != nil || !sess.MustChangePassword {
			t.Fatalf("temporary log-on: %v %+v", err, sess)
		}
		if err := f.svc.ChangePassword(ctx, u.id, tmp, "mijn-eigen-lange-zin-nu"); err != nil {
			t.Fatal(err)
		}
		if s, err := f.svc.Authenticate(ctx, tok); err != nil || s.MustChangePassword {
			t.Fatalf("after change: %v %+v", err, s)
		}
		// A second temporary password, not used in time, expires.
		tmp2, err := f.svc.IssueTemporaryPassword(ctx, u.id)
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(f.svc.settings.TempPasswordTTL + time.Minute)
		if _, _, err := f.logon(t, u, tmp2, "::1"); !errors.Is(err, ErrLogonFailed) {
			t.Fatalf("expired temporary password: %v", err)
		}
	})
}

// REQ: AUTH-5
// Periodic expiry is off by default and forces a change when a tenant sets it.
func TestPasswordMaxAge(t *testing.T) {
	db := storetest.SQLite(t)
	f := newFixture(t, db, password.TestParams())
	ctx := context.Background()
	u := f.addUser(t, "oud", identity.KindPerson, 3, true, string(access.RolePerson))
	f.clock.Advance(400 * 24 * time.Hour)
	if _, s, err := f.logon(t, u, u.pw, "::1"); err != nil || s.MustChangePassword {
		t.Fatalf("default: %v %+v", err, s)
	}
	if err := f.svc.SetTenantSettings(ctx, f.tenant, TenantAuthSettings{WeakFactors: true, PasswordMaxAge: 365 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	if _, s, err := f.logon(t, u, u.pw, "::1"); err != nil || !s.MustChangePassword {
		t.Fatalf("max age: %v %+v", err, s)
	}
}
