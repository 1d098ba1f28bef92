package access

import (
	"errors"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// REQ: GOV-1, AZ-7 — roles and rights go through the one change-request
// mechanism: they are listed among the tenant's change requests, their
// proposer (and a right's receiver) cannot decide them, and the generic
// decision applies them as the owner's own endpoint does.
func TestRolesAndRightsAreChangeRequests(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		admin := f.account(f.tenantA, RoleAppAdmin)
		admin2 := f.account(f.tenantA, RoleAppAdmin)
		officerB := f.account(f.tenantB, RoleSecurityOfficer)
		def, err := f.d.ProposeRole(f.ctx, admin, RoleDef{Name: "dietitian", Base: RoleProfessional, Actions: []Action{Read}, Categories: []string{fhir.CategoryClinical}})
		if err != nil {
			t.Fatal(err)
		}
		acc, err := f.ids.CreateAccount(f.ctx, identityAccount(f.tenantA, "admin", "cover"))
		if err != nil {
			t.Fatal(err)
		}
		rr, err := f.d.RequestRight(f.ctx, admin, RightRequest{AccountID: acc.ID, Role: RoleSecurityOfficer, Reason: "cover",
			ValidUntil: ptr(t0.Add(24 * time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		pending, _, err := f.d.ChangeRequests(f.ctx, admin2)
		if err != nil || len(pending) != 2 || pending[0].ID != def.ID || pending[0].Kind != ChangeRole ||
			pending[1].ID != rr.ID || pending[1].Kind != ChangeRight || pending[1].SubjectID != acc.ID {
			t.Fatalf("pending: %+v, %v", pending, err)
		}
		if p, _, _ := f.d.ChangeRequests(f.ctx, officerB); len(p) != 0 {
			t.Fatalf("another tenant sees %v", p)
		}
		for _, id := range []string{def.ID, rr.ID} {
			if _, err := f.d.DecideChange(f.ctx, admin, id, true, ""); !errors.Is(err, ErrForbidden) || !errors.Is(err, change.ErrSelf) {
				t.Fatalf("proposer decides %s: %v", id, err)
			}
			if _, err := f.d.DecideChange(f.ctx, officerB, id, true, ""); !errors.Is(err, ErrNotFound) {
				t.Fatalf("other tenant decides %s: %v", id, err)
			}
		}
		// The owner's endpoint decides only its own kind.
		if _, err := f.d.DecideRole(f.ctx, admin2, rr.ID, true, ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a right decided as a role: %v", err)
		}
		if _, err := f.d.DecideChange(f.ctx, admin2, def.ID, true, "policy"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.DecideChange(f.ctx, admin2, rr.ID, true, "roster"); err != nil {
			t.Fatal(err)
		}
		defs, err := f.d.RoleDefs(f.ctx, admin2)
		if err != nil {
			t.Fatal(err)
		}
		if got := defs[len(defs)-1]; got.ID != def.ID || got.Status != "approved" || got.DecidedBy != admin2.AccountID() {
			t.Fatalf("role definition after approval: %+v", got)
		}
		if ok, err := f.d.RoleCurrent(f.ctx, acc.ID, RoleSecurityOfficer); err != nil || !ok {
			t.Fatalf("approved right not current: %v %v", ok, err)
		}
		if _, err := f.d.DecideRight(f.ctx, admin2, rr.ID, true, ""); !errors.Is(err, ErrConflict) {
			t.Fatalf("deciding twice: %v", err)
		}
	})
}

// REQ: GOV-1 — a right request nobody decides expires: afterwards it cannot
// be approved, its row says expired and the role was never granted.
func TestRightRequestExpires(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		admin := f.account(f.tenantA, RoleAppAdmin)
		officer := f.account(f.tenantA, RoleSecurityOfficer)
		acc, err := f.ids.CreateAccount(f.ctx, identityAccount(f.tenantA, "professional", "new-gp"))
		if err != nil {
			t.Fatal(err)
		}
		rr, err := f.d.RequestRight(f.ctx, admin, RightRequest{AccountID: acc.ID, Role: RoleProfessional, Reason: "new GP"})
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(change.DefaultExpiry)
		if _, err := f.d.DecideRight(f.ctx, officer, rr.ID, true, ""); !errors.Is(err, ErrConflict) || !errors.Is(err, change.ErrExpired) {
			t.Fatalf("stale approval: %v", err)
		}
		_, pending, err := f.d.RightsOverview(f.ctx, officer)
		if err != nil || len(pending) != 0 {
			t.Fatalf("still pending: %v %v", pending, err)
		}
		if ok, _ := f.d.RoleCurrent(f.ctx, acc.ID, RoleProfessional); ok {
			t.Fatal("an expired request granted the role")
		}
	})
}
