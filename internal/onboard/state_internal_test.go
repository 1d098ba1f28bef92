package onboard

import (
	"context"
	"errors"
	"os"
	"regexp"
	"testing"
	"time"

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
