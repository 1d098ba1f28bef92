package identity_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// REQ: ID-1 — ids are unique and never reissued: a deactivated account keeps
// its row, id and user name, and the name cannot be registered again.
func TestIdentifiersNeverReissued(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := identity.NewRegistry(db, clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), rand.Reader)
		ten, err := r.CreateTenant(ctx, identity.Tenant{Name: "Ziekenhuis", URA: "12345678"})
		if err != nil {
			t.Fatal(err)
		}
		a, err := r.CreateAccount(ctx, identity.Account{TenantID: ten.ID, Kind: identity.KindProfessional, Username: " Dr.Visser ", DisplayName: "Dr. Visser", RegistrationMethod: 3})
		if err != nil {
			t.Fatal(err)
		}
		if a.Username != "dr.visser" {
			t.Fatalf("user name not normalised: %q", a.Username)
		}
		if err := r.Deactivate(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		got, err := r.Account(ctx, a.ID)
		if err != nil || got.Active || got.ID != a.ID {
			t.Fatalf("deactivated account = %+v, %v; want kept and inactive", got, err)
		}
		if _, err := r.CreateAccount(ctx, identity.Account{TenantID: ten.ID, Kind: identity.KindProfessional, Username: "DR.VISSER", DisplayName: "x", RegistrationMethod: 3}); !errors.Is(err, identity.ErrExists) {
			t.Fatalf("reusing a deactivated user name: %v; want ErrExists", err)
		}
		seen := map[string]bool{}
		for i := 0; i < 1000; i++ {
			id, err := r.NewID("a-")
			if err != nil || seen[id] || len(id) != 28 {
				t.Fatalf("id %q (%v): duplicate or malformed", id, err)
			}
			seen[id] = true
		}
	})
}

// REQ: ID-2 — registration records the method (NEN 7512 Tabel 5) and who
// verified; invalid methods and kinds are refused.
func TestRegistrationData(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := identity.NewRegistry(db, clock.System{}, rand.Reader)
		ten, _ := r.CreateTenant(ctx, identity.Tenant{Name: "GGZ"})
		for _, bad := range []identity.Account{
			{TenantID: ten.ID, Kind: identity.KindPerson, Username: "x", RegistrationMethod: 0},
			{TenantID: ten.ID, Kind: identity.KindPerson, Username: "y", RegistrationMethod: 5},
			{TenantID: ten.ID, Kind: "robot", Username: "z", RegistrationMethod: 1},
			{Kind: identity.KindPerson, Username: "w", RegistrationMethod: 1},
			{TenantID: ten.ID, Kind: identity.KindOperator, Username: "v", RegistrationMethod: 1},
		} {
			if _, err := r.CreateAccount(ctx, bad); err == nil {
				t.Errorf("accepted invalid account %+v", bad)
			}
		}
		a, err := r.CreateAccount(ctx, identity.Account{TenantID: ten.ID, Kind: identity.KindProfessional, Username: "psy", DisplayName: "Psy", RegistrationMethod: 4, VerifiedBy: "balie, paspoort"})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.RegisterProfessional(ctx, identity.Professional{AccountID: a.ID, BIG: "19012345601", FunctionTitle: "psychiater", VerifiedBy: "BIG-register"}); err != nil {
			t.Fatal(err)
		}
		got, _ := r.Account(ctx, a.ID)
		if got.RegistrationMethod != 4 || got.VerifiedBy != "balie, paspoort" {
			t.Fatalf("registration data lost: %+v", got)
		}
		op, err := r.CreateAccount(ctx, identity.Account{Kind: identity.KindOperator, Username: "op", DisplayName: "Op", RegistrationMethod: 3})
		if err != nil || op.TenantID != "" {
			t.Fatalf("operator: %+v %v", op, err)
		}
	})
}

// REQ: LOG-4 — a patient with a person account is named by that account
// (the officer's log search shows names, not ids); a patient without one
// is not found.
func TestPatientPerson(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := identity.NewRegistry(db, clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), rand.Reader)
		ten, err := r.CreateTenant(ctx, identity.Tenant{Name: "Praktijk", URA: "12345678"})
		if err != nil {
			t.Fatal(err)
		}
		a, err := r.CreateAccount(ctx, identity.Account{TenantID: ten.ID, Kind: identity.KindPerson, Username: "s.devries", DisplayName: "Sanne de Vries", RegistrationMethod: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, pid := range []string{"p-own", "p-other"} {
			if _, err := r.CreatePatient(ctx, db, pid, ten.ID, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.LinkPerson(ctx, a.ID, "p-own"); err != nil {
			t.Fatal(err)
		}
		got, err := r.PatientPerson(ctx, "p-own")
		if err != nil || got.ID != a.ID || got.DisplayName != "Sanne de Vries" {
			t.Fatalf("PatientPerson(p-own) = %+v, %v", got, err)
		}
		if _, err := r.PatientPerson(ctx, "p-other"); !errors.Is(err, identity.ErrNotFound) {
			t.Fatalf("PatientPerson of a patient without an account: %v; want ErrNotFound", err)
		}
	})
}
