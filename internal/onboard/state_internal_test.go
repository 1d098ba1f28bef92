package onboard

import (
	"context"
	"errors"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

// These tests reach between the steps of an activation or an invitation,
// where a concurrent request would come in.

func internalEnv(t *testing.T, db *store.DB) (*Service, identity.Tenant, func(Invitation) string) {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	kit := testkit.New(t, db, testkit.WithClock(clk))
	s := New(Config{DB: db, IDs: kit.IDs, Authn: kit.Authn, Audit: kit.Audit, Clock: clk, LetterDir: t.TempDir(), BaseURL: "https://zorg.example"})
	tn, err := s.CreateTenant(context.Background(), audit.Event{UserID: "os:beheer"}, "De Eik", "90000123", "")
	if err != nil {
		t.Fatal(err)
	}
	secretRe := regexp.MustCompile(`(?m)^    ([A-Z2-7-]+)$`)
	secretOf := func(inv Invitation) string {
		b, err := os.ReadFile(inv.Letter)
		if err != nil {
			t.Fatal(err)
		}
		return string(secretRe.FindSubmatch(b)[1])
	}
	return s, tn, secretOf
}

func adminInvite(tenantID, email string) Invite {
	return Invite{TenantID: tenantID, Kind: identity.KindAdmin, Name: "Anna", Email: email, RegistrationMethod: 3,
		VerifiedBy: "operator", Deliver: DeliverLetter, Role: string(access.RoleAppAdmin)}
}

func stateOf(t *testing.T, db *store.DB, id string) (state string, failures int64) {
	t.Helper()
	if err := db.QueryRowContext(context.Background(), `SELECT state, failures FROM onboard_invitations WHERE id = $1`, id).Scan(&state, &failures); err != nil {
		t.Fatal(err)
	}
	return state, failures
}

// Failures that were read at the same time (parallel wrong TOTP codes on
// one code) each count, so the fifth revokes the code; and a failure whose
// request read the invitation before another completed it never sets the
// used invitation back to an open state.
//
// REQ: ID-6
func TestFailuresCountedAndStateKeptUnderConcurrency(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, tn, secretOf := internalEnv(t, db)
		inv, err := s.CreateInvitation(ctx, audit.Event{UserID: "os:beheer"}, adminInvite(tn.ID, "anna@eik.example"))
		if err != nil {
			t.Fatal(err)
		}
		secret := secretOf(inv)
		stale, err := s.find(ctx, inv.Code, secret, "192.0.2.1", "start", "issued")
		if err != nil {
			t.Fatal(err)
		}
		for range maxCodeFailures {
			_ = s.fail(ctx, "192.0.2.2", "complete", stale, ErrTOTP) // each as if it had read failures = 0
		}
		if state, n := stateOf(t, db, inv.ID); state != "revoked" || n != maxCodeFailures {
			t.Errorf("after %d parallel failures: %s with %d failures, want revoked with %d", maxCodeFailures, state, n, maxCodeFailures)
		}

		inv2, err := s.CreateInvitation(ctx, audit.Event{UserID: "os:beheer"}, adminInvite(tn.ID, "bert@eik.example"))
		if err != nil {
			t.Fatal(err)
		}
		secret2 := secretOf(inv2)
		enr, err := s.StartActivation(ctx, inv2.Code, secret2, "paarse olifant danst op het ijs 7", "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		stale2, err := s.find(ctx, inv2.Code, secret2, "192.0.2.1", "complete", "enrolling")
		if err != nil {
			t.Fatal(err)
		}
		code, _ := totp.GenerateCode(enr.Secret, s.c.Clock.Now())
		if _, err := s.CompleteActivation(ctx, inv2.Code, secret2, code, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		_ = s.fail(ctx, "192.0.2.3", "complete", stale2, ErrTOTP) // read "enrolling" before the completion
		if state, _ := stateOf(t, db, inv2.ID); state != "used" {
			t.Errorf("a used invitation became %q through a failure read before its use", state)
		}
	})
}

// An invitation whose checks passed before its tenant was deactivated is
// refused inside its transaction and leaves nothing: no account of a
// deactivated tenant can be activated later.
//
// REQ: ID-5
func TestInvitationRacingTenantDeactivation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, tn, _ := internalEnv(t, db)
		tt, in, err := s.checkInvite(ctx, adminInvite(tn.ID, "anna@eik.example"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeactivateTenant(ctx, audit.Event{UserID: "os:beheer"}, tn.ID); err != nil {
			t.Fatal(err)
		}
		err = s.c.DB.Tx(ctx, func(tx *store.Tx) error {
			_, _, err := s.createIn(ctx, tx, audit.Event{UserID: "os:beheer"}, tt, in)
			return err
		})
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != "tenant" {
			t.Fatalf("an invitation checked before the deactivation: %v, want refused on tenant", err)
		}
		if _, err := s.c.IDs.AccountByUsername(ctx, "anna@eik.example"); !errors.Is(err, identity.ErrNotFound) {
			t.Errorf("the refused invitation left an account: %v", err)
		}
	})
}
