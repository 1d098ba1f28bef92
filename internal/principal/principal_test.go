package principal_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/devices"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/principal"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// A session's subject carries the session's claims, the names the access
// log shows, and the kind its role implies; a session has no client id and
// no scopes. Set-up code gets the subject of an active account only.
// REQ: AZ-2
func TestSubjects(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ids := identity.NewRegistry(db, clock.NewFake(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)), rand.Reader)
		ten, err := ids.CreateTenant(ctx, identity.Tenant{Name: "Praktijk De Linde"})
		if err != nil {
			t.Fatal(err)
		}
		acc, err := ids.CreateAccount(ctx, identity.Account{TenantID: ten.ID, Kind: identity.KindPerson, Username: "sanne",
			DisplayName: "Sanne de Vries", RegistrationMethod: 3})
		if err != nil {
			t.Fatal(err)
		}
		s, err := principal.FromSession(ctx, ids, authn.Session{AccountID: acc.ID, TenantID: ten.ID, Role: access.RolePerson,
			Assurance: access.Hoog, OnBehalfOf: "p-child"})
		if err != nil {
			t.Fatal(err)
		}
		if s.AccountID() != acc.ID || s.Name() != "Sanne de Vries" || s.TenantID() != ten.ID || s.Organisation() != "Praktijk De Linde" ||
			s.Role() != access.RolePerson || s.Assurance() != access.Hoog || s.OnBehalfOf() != "p-child" ||
			s.Kind() != access.KindPerson || s.ClientID() != "" || len(s.Scopes()) != 0 {
			t.Fatalf("session subject %+v", s.Spec())
		}
		if _, err := principal.FromSession(ctx, ids, authn.Session{AccountID: "a-unknown", Role: access.RolePerson}); err == nil {
			t.Fatal("subject of an unknown account")
		}

		prof, err := ids.CreateAccount(ctx, identity.Account{TenantID: ten.ID, Kind: identity.KindProfessional, Username: "jansen",
			DisplayName: "Dr. Jansen", RegistrationMethod: 3})
		if err != nil {
			t.Fatal(err)
		}
		gp, err := principal.ForAccount(ctx, ids, prof.ID, access.RoleProfessional, access.Hoog)
		if err != nil {
			t.Fatal(err)
		}
		if gp.Name() != "Dr. Jansen" || gp.TenantID() != ten.ID || gp.Organisation() != "Praktijk De Linde" || gp.Kind() != access.KindProfessional {
			t.Fatalf("account subject %+v", gp.Spec())
		}
		if err := ids.Deactivate(ctx, prof.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := principal.ForAccount(ctx, ids, prof.ID, access.RoleProfessional, access.Hoog); err == nil {
			t.Fatal("subject of a deactivated account")
		}
	})
}

// A paired device's subject is its user's account, in the pairing
// session's role and assurance, of kind device, with the device as client
// id and no scopes.
// REQ: AUTH-7
func TestDeviceSubject(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ids := identity.NewRegistry(db, clock.NewFake(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)), rand.Reader)
		ten, err := ids.CreateTenant(ctx, identity.Tenant{Name: "Praktijk De Linde"})
		if err != nil {
			t.Fatal(err)
		}
		acc, err := ids.CreateAccount(ctx, identity.Account{TenantID: ten.ID, Kind: identity.KindProfessional, Username: "jansen",
			DisplayName: "Dr. Jansen", RegistrationMethod: 3})
		if err != nil {
			t.Fatal(err)
		}
		s, err := principal.FromDevice(ctx, ids, devices.Access{DeviceID: "dev-1", TenantID: ten.ID, AccountID: acc.ID,
			Role: access.RoleProfessional, Assurance: access.Hoog})
		if err != nil {
			t.Fatal(err)
		}
		if s.AccountID() != acc.ID || s.Name() != "Dr. Jansen" || s.Organisation() != "Praktijk De Linde" || s.Role() != access.RoleProfessional ||
			s.Assurance() != access.Hoog || s.Kind() != access.KindDevice || s.ClientID() != "dev-1" || len(s.Scopes()) != 0 {
			t.Fatalf("device subject %+v", s.Spec())
		}
		if _, err := principal.FromDevice(ctx, ids, devices.Access{DeviceID: "dev-2", AccountID: "a-unknown"}); err == nil {
			t.Fatal("subject of a device of an unknown account")
		}
	})
}
