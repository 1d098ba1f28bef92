package demo_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/demo"
	"github.com/zorgkluis/zorgkluis/internal/onboard"
	"github.com/zorgkluis/zorgkluis/internal/principal"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

// The demo is one use of the onboarding: its tenant is created, its
// accounts invited and activated (password and a confirmed TOTP app), the
// professionals' roles requested by one admin and approved by the other,
// and the patient's account linked to her record by her GP's invitation.
// Every printed log-in works at once with the code an app shows now.
//
// REQ: ID-6, AZ-7, LOG-1
func TestSeedThroughOnboarding(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(time.Date(2026, 3, 2, 9, 0, 15, 0, time.UTC))
		kit := testkit.New(t, db, testkit.WithClock(clk))
		box := &demo.Mailbox{}
		svc := onboard.New(onboard.Config{DB: db, IDs: kit.IDs, Authn: kit.Authn, Audit: kit.Audit, Access: kit.Access, Clock: clk,
			Sender: box, BaseURL: "https://localhost:8443"})
		cred, err := demo.Seed(ctx, demo.Deps{IDs: kit.IDs, Authn: kit.Authn, Access: kit.Access, Records: kit.Records, Index: kit.Keys,
			Clock: clk, Rand: rand.Reader, Onboard: svc, Mailbox: box})
		if err != nil {
			t.Fatal(err)
		}
		if ts, err := svc.Tenants(ctx); err != nil || len(ts) != 1 || ts[0].URA != "90000001" || !ts[0].Active {
			t.Fatalf("tenants %+v %v", ts, err)
		}
		var open, used int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM onboard_invitations WHERE state <> 'used'`).Scan(&open); err != nil {
			t.Fatal(err)
		}
		_ = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM onboard_invitations WHERE state = 'used'`).Scan(&used)
		if open != 0 || used != len(cred.Users)-1 { // the platform operator belongs to no tenant, so has no invitation
			t.Errorf("invitations: %d used, %d open; want every account activated from one", used, open)
		}
		wantUsers := []string{"dr.jansen", "dr.bakker", "s.devries", "beheer.smit", "beheer.visser", "security.mulder", "platform.dekker"}
		if len(cred.Users) != len(wantUsers) {
			t.Fatalf("users %+v", cred.Users)
		}
		for i, u := range cred.Users {
			if u.Username != wantUsers[i] {
				t.Errorf("user %d is %s, want %s", i, u.Username, wantUsers[i])
			}
			attempt, err := kit.Authn.Begin(ctx, u.Username, u.Password, "127.0.0.1")
			if err != nil {
				t.Fatalf("%s: %v", u.Username, err)
			}
			code, _ := totp.GenerateCode(u.TOTPSecret, clk.Now())
			_, sess, err := kit.Authn.CompleteTOTP(ctx, attempt, code, "127.0.0.1", u.Username)
			if err != nil || string(sess.Role) != u.Role {
				t.Errorf("%s logs on at once: role %q, %v; want %s", u.Username, sess.Role, err, u.Role)
			}
		}
		if own, _ := kit.IDs.PersonPatients(ctx, cred.Users[2].AccountID); len(own) != 1 || own[0] != cred.PatientID {
			t.Errorf("s.devries's own records %v, want %s", own, cred.PatientID)
		}
		// The professionals' roles went through four eyes.
		officer, err := principal.ForAccount(ctx, kit.IDs, cred.Users[5].AccountID, access.RoleSecurityOfficer, access.Hoog)
		if err != nil {
			t.Fatal(err)
		}
		rights, _, err := kit.Access.RightsOverview(ctx, officer)
		if err != nil {
			t.Fatal(err)
		}
		approved := 0
		for _, r := range rights {
			if r.Role == access.RoleProfessional && r.RequestedBy == cred.Users[3].AccountID && r.ApprovedBy == cred.Users[4].AccountID && r.State == "current" {
				approved++
			}
		}
		if approved != 2 {
			t.Errorf("%d professionals' roles requested by beheer.smit and approved by beheer.visser, want 2: %+v", approved, rights)
		}
		evs, err := kit.Audit.Query(ctx, audit.Filter{TenantID: cred.TenantID})
		if err != nil {
			t.Fatal(err)
		}
		invited, activated := 0, 0
		for _, ev := range evs {
			switch {
			case strings.Contains(ev.Reason, "account invited"):
				invited++
			case ev.Query == "activation-complete":
				activated++
			}
		}
		if invited != 6 || activated != 6 {
			t.Errorf("log: %d invitations, %d activations; want 6 each", invited, activated)
		}
	})
}
