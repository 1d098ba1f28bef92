package access

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// t0 is the fake "now" of the tests.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

type fixture struct {
	t       testing.TB
	ctx     context.Context
	db      *store.DB
	clock   *clock.Fake
	log     *audit.Log
	ids     *identity.Registry
	d       *Decider
	tenantA string
	tenantB string
	n       int
}

func newFixture(t testing.TB, db *store.DB) *fixture {
	t.Helper()
	c := clock.NewFake(t0)
	f := &fixture{t: t, ctx: context.Background(), db: db, clock: c, log: audit.New(db, c, rand.Reader)}
	f.ids = identity.NewRegistry(db, c, rand.Reader)
	f.d = NewDecider(db, f.log, c, WithRoleWriter(f.ids))
	f.tenantA = f.tenant("Praktijk A")
	f.tenantB = f.tenant("Ziekenhuis B")
	return f
}

func (f *fixture) tenant(name string) string {
	f.t.Helper()
	t, err := f.ids.CreateTenant(f.ctx, identity.Tenant{Name: name})
	if err != nil {
		f.t.Fatal(err)
	}
	return t.ID
}

// kindFor is the account kind that carries a role (AUTH-8).
func kindFor(r Role) string {
	switch r {
	case RolePerson:
		return identity.KindPerson
	case RoleAppAdmin, RoleSecurityOfficer:
		return identity.KindAdmin
	case RoleOperator:
		return identity.KindOperator
	}
	return identity.KindProfessional
}

// account creates an account holding role, and returns the subject of a
// session in that role at assurance Hoog.
func (f *fixture) account(tenantID string, role Role) Subject {
	f.t.Helper()
	f.n++
	if role == RoleOperator {
		tenantID = ""
	}
	a, err := f.ids.CreateAccount(f.ctx, identity.Account{TenantID: tenantID, Kind: kindFor(role),
		Username: fmt.Sprintf("%s-%d", role, f.n), DisplayName: fmt.Sprintf("%s %d", role, f.n), RegistrationMethod: 3})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.ids.GrantRole(f.ctx, a.ID, string(role), "test set-up"); err != nil {
		f.t.Fatal(err)
	}
	return NewSubject(SubjectSpec{AccountID: a.ID, Name: a.DisplayName, TenantID: tenantID, Organisation: tenantID, Role: role, Assurance: Hoog})
}

func (f *fixture) patient(tenantID string) string {
	f.t.Helper()
	id, err := f.ids.NewID("p-")
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.ids.CreatePatient(f.ctx, f.db, id, tenantID, nil); err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *fixture) exec(q string, args ...any) {
	f.t.Helper()
	if _, err := f.db.ExecContext(f.ctx, q, args...); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
}

func (f *fixture) id(prefix string) string {
	f.t.Helper()
	id, err := f.d.newID(prefix)
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

func us(t time.Time) int64 { return clock.Micros(t) }

// Raw rule rows, written straight to the tables so that the matrix can set
// up every basis for every role (also ones the management functions refuse)
// and prove that Decide itself enforces each rule.

func (f *fixture) rawRelationship(tenant, prof, patient string, start time.Time, end *time.Time) string {
	id := f.id("r-")
	f.exec(`INSERT INTO care_relationships (id, tenant_id, professional_id, patient_id, kind, start_at, end_at, recorded_by, recorded_at)
		VALUES ($1, $2, $3, $4, 'treatment', $5, $6, 'test', $5)`, id, tenant, prof, patient, us(start), micros(end))
	return id
}

func (f *fixture) rawTeam(tenant, member, patient string) string {
	id := f.id("tm-")
	f.exec(`INSERT INTO access_teams (id, tenant_id, name, created_by, created_at) VALUES ($1, $2, $1, 'test', $3)`, id, tenant, us(t0))
	f.exec(`INSERT INTO access_team_members (team_id, account_id, added_by, added_at) VALUES ($1, $2, 'test', $3)`, id, member, us(t0))
	f.exec(`INSERT INTO access_team_patients (team_id, patient_id, added_by, added_at) VALUES ($1, $2, 'test', $3)`, id, patient, us(t0))
	return id
}

func (f *fixture) rawDelegation(tenant, from, to, patient string, start, end time.Time) string {
	id := f.id("dl-")
	f.exec(`INSERT INTO access_delegations (id, tenant_id, from_id, to_id, patient_id, reason, start_at, end_at, created_at)
		VALUES ($1, $2, $3, $4, $5, 'test', $6, $7, $6)`, id, tenant, from, to, patient, us(start), us(end))
	return id
}

func (f *fixture) rawRepresentation(tenant, rep, patient, cats string, start time.Time, end *time.Time) string {
	id := f.id("rp-")
	f.exec(`INSERT INTO access_representations (id, tenant_id, representative_id, patient_id, kind, categories, start_at, end_at, recorded_by, recorded_at)
		VALUES ($1, $2, $3, $4, 'authorised', $5, $6, $7, 'test', $6)`, id, tenant, rep, patient, cats, us(start), micros(end))
	return id
}

func (f *fixture) rawEmergency(tenant, prof, patient string, start, end time.Time) string {
	id := f.id("em-")
	f.exec(`INSERT INTO access_emergencies (id, tenant_id, professional_id, patient_id, reason, start_at, end_at)
		VALUES ($1, $2, $3, $4, 'patient unconscious at the door', $5, $6)`, id, tenant, prof, patient, us(start), us(end))
	return id
}

func (f *fixture) rawOperator(tenant, operator, patient, status, cats string, start, end time.Time) string {
	id := f.id("op-")
	var s, e any
	if status == "approved" {
		s, e = us(start), us(end)
	}
	f.exec(`INSERT INTO access_operator_requests (id, tenant_id, operator_id, categories, reason, duration_us, requested_at, status, start_at, end_at)
		VALUES ($1, $2, $3, $4, 'restore a damaged record', 3600000000, $5, $6, $7, $8)`, id, tenant, operator, cats, us(start), status, s, e)
	f.exec(`INSERT INTO access_operator_patients (request_id, patient_id) VALUES ($1, $2)`, id, patient)
	return id
}

func ptr(t time.Time) *time.Time { return &t }

func identityAccount(tenantID, kind, username string) identity.Account {
	return identity.Account{TenantID: tenantID, Kind: kind, Username: username, DisplayName: username, RegistrationMethod: 3}
}
