package authn

import (
	"context"
	"crypto/rand"
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

// REQ: AUTH-2, LOG-3
// An authenticator app and a security key carry the owner's name: given
// at enrolment (trimmed) or else named by kind and place, refused when too
// long or holding control characters, renamable by the owner only, and the
// log lines of the changes name the factor by that name, never by its id.
func TestFactorLabels(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		ctx := context.Background()
		u := f.addUser(t, "label.user", identity.KindPerson, 3, true, string(access.RolePerson))
		other := f.addUser(t, "label.other", identity.KindPerson, 3, true, string(access.RolePerson))
		log := audit.New(db, f.clock, rand.Reader)
		f.svc.settings.Audit = log

		f.clock.Advance(time.Second) // oldest first
		if _, _, err := f.svc.EnrollNamedTOTP(ctx, u.id, u.name, "  Telefoon werk  "); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"a\nb", "tab\there", "x\x00", strings.Repeat("é", FactorLabelMax+1), "bad\xff"} {
			if _, _, err := f.svc.EnrollNamedTOTP(ctx, u.id, u.name, bad); !errors.Is(err, ErrFactorLabel) {
				t.Errorf("label %q: %v, want ErrFactorLabel", bad, err)
			}
		}
		f.clock.Advance(time.Second)
		if _, _, err := f.svc.EnrollNamedTOTP(ctx, u.id, u.name, strings.Repeat("é", FactorLabelMax)); err != nil {
			t.Errorf("a label of %d characters: %v", FactorLabelMax, err)
		}
		apps, err := f.svc.TOTPApps(ctx, u.id)
		if err != nil || len(apps) != 3 {
			t.Fatalf("apps %v %v", apps, err)
		}
		// addUser's app has no name of its own: it is the first app.
		if apps[0].Label != "Authenticator-app 1" || apps[1].Label != "Telefoon werk" {
			t.Fatalf("labels %q %q", apps[0].Label, apps[1].Label)
		}

		if err := f.svc.RenameFactor(ctx, u.id, FactorTOTP, apps[0].ID, " Oude telefoon ", "192.0.2.4"); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.RenameFactor(ctx, u.id, FactorTOTP, apps[0].ID, "x\ty", ""); !errors.Is(err, ErrFactorLabel) {
			t.Errorf("rename with a tab: %v", err)
		}
		if err := f.svc.RenameFactor(ctx, u.id, FactorTOTP, apps[0].ID, "", ""); !errors.Is(err, ErrFactorLabel) {
			t.Errorf("rename to nothing: %v", err)
		}
		if err := f.svc.RenameFactor(ctx, other.id, FactorTOTP, apps[0].ID, "Van mij", ""); !errors.Is(err, identity.ErrNotFound) {
			t.Errorf("another account renamed the app: %v", err)
		}
		if err := f.svc.RenameFactor(ctx, u.id, FactorWebAuthn, apps[0].ID, "Van mij", ""); !errors.Is(err, identity.ErrNotFound) {
			t.Errorf("an app renamed as a key: %v", err)
		}
		if apps, _ = f.svc.TOTPApps(ctx, u.id); apps[0].Label != "Oude telefoon" {
			t.Fatalf("after rename: %q", apps[0].Label)
		}
		if err := f.svc.RemoveTOTP(ctx, u.id, apps[1].ID); err != nil {
			t.Fatal(err)
		}

		evs, err := log.Query(ctx, audit.Filter{TenantID: f.tenant, UserID: u.id, Action: audit.ActionLogon})
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, e := range evs {
			lines = append(lines, e.Reason)
			for _, a := range apps {
				if strings.Contains(e.Reason, a.ID) {
					t.Errorf("a log line names a factor by its id: %q", e.Reason)
				}
			}
		}
		all := strings.Join(lines, "\n")
		for _, want := range []string{`factor-enrolled: "Telefoon werk"`, `factor-renamed: renamed "Authenticator-app 1" to "Oude telefoon"`, `factor-removed: "Telefoon werk"`} {
			if !strings.Contains(all, want) {
				t.Errorf("no log line %q in:\n%s", want, all)
			}
		}
	})
}

// REQ: AUTH-2
// A security key enrolled without a name is named by kind and place, and
// its owner can rename it; the log line of the rename names both.
func TestKeyLabels(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newWebAuthnFixture(t, db)
		ctx := context.Background()
		u := f.addUser(t, "key.label", identity.KindPerson, 3, true, string(access.RolePerson))
		sess := Session{ID: "s-" + u.id[:8], AccountID: u.id}
		opts, err := f.svc.BeginWebAuthnRegistration(ctx, sess)
		if err != nil {
			t.Fatal(err)
		}
		k := newSoftKey(t, true)
		c, err := f.svc.FinishWebAuthnRegistration(ctx, sess, "   ", k.register(opts), "127.0.0.1")
		if err != nil || c.Name != "Beveiligingssleutel 1" {
			t.Fatalf("unnamed key: %q %v", c.Name, err)
		}
		if _, err := f.svc.FinishWebAuthnRegistration(ctx, sess, "a\u2028b", k.register(opts), "127.0.0.1"); !errors.Is(err, ErrFactorLabel) {
			t.Errorf("a name with a line separator: %v", err)
		}
		if err := f.svc.RenameFactor(ctx, u.id, FactorWebAuthn, c.ID, "YubiKey blauw", "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
		keys, err := f.svc.WebAuthnCredentials(ctx, u.id)
		if err != nil || len(keys) != 1 || keys[0].Name != "YubiKey blauw" {
			t.Fatalf("keys %+v %v", keys, err)
		}
		var reason string
		if err := db.QueryRowContext(ctx, `SELECT reason FROM auth_events WHERE account_id = $1 AND outcome = 'factor-renamed'`, u.id).Scan(&reason); err != nil {
			t.Fatal(err)
		}
		if reason != `renamed "Beveiligingssleutel 1" to "YubiKey blauw"` {
			t.Errorf("rename logged as %q", reason)
		}
	})
}

// REQ: AUTH-2
// Migration 00150 names the apps enrolled before it by kind and by their
// place in the order they were added, the usable ones first.
func TestFactorLabelMigration(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		ctx := context.Background()
		u := f.addUser(t, "old.apps", identity.KindPerson, 3, true, string(access.RolePerson))
		for range 2 {
			f.clock.Advance(time.Second)
			if _, _, err := f.svc.EnrollNamedTOTP(ctx, u.id, u.name, "Gekozen naam"); err != nil {
				t.Fatal(err)
			}
		}
		apps, err := f.svc.TOTPApps(ctx, u.id)
		if err != nil || len(apps) != 3 {
			t.Fatalf("apps %v %v", apps, err)
		}
		if _, err := db.ExecContext(ctx, `UPDATE totp_credentials SET revoked_at = 1 WHERE id = $1`, apps[0].ID); err != nil {
			t.Fatal(err)
		}
		latest, err := store.LatestMigration()
		if err != nil {
			t.Fatal(err)
		}
		if err := db.MigrateTo(ctx, 149); err != nil {
			t.Fatal(err)
		}
		if err := db.MigrateTo(ctx, latest); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{apps[1].ID: "Authenticator-app 1", apps[2].ID: "Authenticator-app 2", apps[0].ID: "Authenticator-app 3"}
		for id, label := range want {
			var got string
			if err := db.QueryRowContext(ctx, `SELECT label FROM totp_credentials WHERE id = $1`, id).Scan(&got); err != nil || got != label {
				t.Errorf("%s: %q %v, want %q", id, got, err, label)
			}
		}
	})
}
