package access

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// The access bases of the matrix.
const (
	bNone            = "none"
	bRelationship    = "relationship"
	bEndedRel        = "ended relationship"
	bTeam            = "team"
	bDelegation      = "delegation"
	bExpiredDeleg    = "expired delegation"
	bOwn             = "own data"
	bRepresentation  = "representation"
	bExpiredRep      = "expired representation"
	bEmergency       = "emergency"
	bExpiredEmerg    = "expired emergency"
	bOperatorOK      = "operator with approval"
	bOperatorPending = "operator without approval"
)

var matrixBases = []string{bNone, bRelationship, bEndedRel, bTeam, bDelegation, bExpiredDeleg, bOwn,
	bRepresentation, bExpiredRep, bEmergency, bExpiredEmerg, bOperatorOK, bOperatorPending}

// roleCustom is a tenant-defined role: a physiotherapist who works by the
// professional's rules but may not delete or export and sees only
// demographic and general clinical data.
const roleCustom Role = "physiotherapist"

var matrixRoles = []Role{RoleProfessional, RoleAssistant, RoleAppAdmin, RoleSecurityOfficer, RolePerson, RoleOperator, roleCustom}

// expectedMatrix is the policy, written out by hand from AZ-1 … AZ-6: for
// each role and basis, the actions allowed on a patient of the subject's own
// tenant, and the basis the grant must name. Every cell not listed is a
// denial; every cross-tenant cell is a denial.
func expectedMatrix() map[Role]map[string]struct {
	actions []Action
	basis   Basis
} {
	type cell = struct {
		actions []Action
		basis   Basis
	}
	all := []Action{Read, Search, Create, Update, Delete, Export}
	noDelete := []Action{Read, Search, Create, Update, Export}
	acute := []Action{Read, Search, Create, Update}
	physio := []Action{Read, Search, Create, Update}
	return map[Role]map[string]cell{
		RoleProfessional: {
			bRelationship: {all, BasisCareRelationship},
			bTeam:         {all, BasisTeam},
			bDelegation:   {noDelete, BasisDelegation},
			bEmergency:    {acute, BasisEmergency},
		},
		RoleAssistant: {
			bRelationship: {[]Action{Read, Search}, BasisCareRelationship},
			bTeam:         {[]Action{Read, Search}, BasisTeam},
			bDelegation:   {[]Action{Read, Search}, BasisDelegation},
		},
		roleCustom: {
			bRelationship: {physio, BasisCareRelationship},
			bTeam:         {physio, BasisTeam},
			bDelegation:   {physio, BasisDelegation},
			bEmergency:    {physio, BasisEmergency},
		},
		RolePerson: {
			bOwn:            {[]Action{Read, Search, Export}, BasisOwnData},
			bRepresentation: {[]Action{Read, Search, Export}, BasisRepresentation},
		},
		RoleOperator: {
			bOperatorOK: {[]Action{Read, Search}, BasisOperator},
		},
	}
}

// setUpBasis gives subject s the basis b to patient p of tenant (at t0) and
// returns the subject as its session would be (a representative's session
// acts on behalf of the patient).
func (f *fixture) setUpBasis(s Subject, b, tenant, p, delegator string) Subject {
	f.t.Helper()
	switch b {
	case bNone:
	case bRelationship:
		f.rawRelationship(tenant, s.AccountID(), p, t0.Add(-time.Hour), nil)
	case bEndedRel:
		f.rawRelationship(tenant, s.AccountID(), p, t0.Add(-48*time.Hour), ptr(t0.Add(-time.Hour)))
	case bTeam:
		f.rawTeam(tenant, s.AccountID(), p)
	case bDelegation, bExpiredDeleg:
		f.rawRelationship(tenant, delegator, p, t0.Add(-48*time.Hour), nil)
		end := t0.Add(24 * time.Hour)
		if b == bExpiredDeleg {
			end = t0.Add(-time.Minute)
		}
		f.rawDelegation(tenant, delegator, s.AccountID(), p, t0.Add(-47*time.Hour), end)
	case bOwn:
		f.exec(`INSERT INTO person_patients (account_id, patient_id) VALUES ($1, $2)`, s.AccountID(), p)
	case bRepresentation, bExpiredRep:
		var end *time.Time
		if b == bExpiredRep {
			end = ptr(t0.Add(-time.Minute))
		}
		f.rawRepresentation(tenant, s.AccountID(), p, "*", t0.Add(-48*time.Hour), end)
		s.onBehalfOf = p
	case bEmergency:
		f.rawEmergency(tenant, s.AccountID(), p, t0.Add(-time.Hour), t0.Add(3*time.Hour))
	case bExpiredEmerg:
		f.rawEmergency(tenant, s.AccountID(), p, t0.Add(-5*time.Hour), t0.Add(-time.Hour))
	case bOperatorOK, bOperatorPending:
		status := "approved"
		if b == bOperatorPending {
			status = "pending"
		}
		f.rawOperator(tenant, s.AccountID(), p, status, "*", t0.Add(-time.Hour), t0.Add(time.Hour))
	default:
		f.t.Fatalf("unknown basis %q", b)
	}
	return s
}

// TestDecideMatrix decides every role × basis × action × tenant cell.
//
// Both tenants take a turn as the subject's home. For each cell the subject
// (of the home tenant; operators have none) gets the basis to a patient of
// the home tenant, and the same kind of rule rows is also written pointing
// at a patient of the other tenant twice: once as rows of the other tenant,
// once as rows of the home tenant naming the foreign patient (as a faulty
// import or a malicious admin might write them). Access to the home
// tenant's patient follows the policy written out in expectedMatrix; access
// to the other tenant's patient is always denied. Every allowed cell is
// asked again for mental-health data, which only roles that cover every
// category may see (AZ-9). Every denial is in the access log. A failing cell
// names the requirement it enforces.
//
// REQ: AZ-1
// REQ: AZ-2
// REQ: AZ-3
// REQ: AZ-4
// REQ: AZ-5
// REQ: AZ-6
// REQ: AZ-9
func TestDecideMatrix(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.d.emergencyFor = 4 * time.Hour
		for i, tenant := range []string{f.tenantA, f.tenantB} {
			f.exec(`INSERT INTO access_role_defs (id, tenant_id, name, base, actions, categories, status, proposed_by, proposed_at, decided_by, decided_at)
				VALUES ($1, $2, $3, 'professional', 'read search create update', 'demographics clinical', 'approved', 'a1', $4, 'a2', $4)`,
				fmt.Sprintf("rd-physio-%d", i), tenant, string(roleCustom), us(t0.Add(-time.Hour)))
		}
		want := expectedMatrix()
		type cellCase struct {
			name     string
			s        Subject
			patient  string
			act      Action
			allowed  bool
			basis    Basis
			home     string
			seesAll  bool
			deniedTo string // the account whose denials are counted
		}
		var cases []cellCase
		for _, home := range []string{f.tenantA, f.tenantB} {
			other := f.tenantB
			if home == f.tenantB {
				other = f.tenantA
			}
			delegator := f.account(home, RoleProfessional).AccountID()
			otherDelegator := f.account(other, RoleProfessional).AccountID()
			for _, role := range matrixRoles {
				for _, b := range matrixBases {
					subj := f.account(home, role)
					pHome, pOther, pStray := f.patient(home), f.patient(other), f.patient(other)
					sHome := f.setUpBasis(subj, b, home, pHome, delegator)
					// An operator has no tenant, and the other tenant's officer
					// may of course approve access to its own patients; for
					// operators the cross-tenant cases are rows of the home
					// tenant that name a foreign patient.
					var sOther Subject
					if role == RoleOperator {
						sOther = f.setUpBasis(subj, b, home, pOther, delegator)
					} else {
						sOther = f.setUpBasis(subj, b, other, pOther, otherDelegator)
					}
					sStray := f.setUpBasis(subj, b, home, pStray, delegator)
					expect := want[role][b]
					for _, act := range Actions() {
						for _, tc := range []struct {
							tenant  string
							s       Subject
							patient string
							allowed bool
							req     string
						}{
							{"own tenant", sHome, pHome, contains(expect.actions, act), cellReq(role, b)},
							{"other tenant", sOther, pOther, false, "AZ-1 (tenant isolation)"},
							{"other tenant, rules of own tenant", sStray, pStray, false, "AZ-1 (tenant isolation)"},
						} {
							cases = append(cases, cellCase{
								name: fmt.Sprintf("%s / %s / %s / %s / home %s [REQ %s]", role, b, act, tc.tenant, tenantName(f, home), tc.req),
								s:    tc.s, patient: tc.patient, act: act, allowed: tc.allowed, basis: expect.basis, home: home,
								seesAll: role != RoleAssistant && role != roleCustom, deniedTo: subj.AccountID(),
							})
						}
					}
				}
			}
		}

		// The cells are independent, so they are decided by a few workers at
		// once: the access log then commits their denials in groups.
		var mu sync.Mutex
		cells, denials := 0, map[string]int{}
		count := func(acc string, decided, denied int) {
			mu.Lock()
			defer mu.Unlock()
			cells += decided
			denials[acc] += denied
		}
		check := func(tc cellCase) {
			g, err := f.d.Decide(f.ctx, tc.s, Request{PatientID: tc.patient, Action: tc.act, Categories: []string{fhir.CategoryDemographics}, Purpose: "TREAT"})
			if !tc.allowed {
				if !IsDenied(err) {
					t.Errorf("%s: got %v (grant %v), want a denial", tc.name, err, g.Valid())
					count(tc.deniedTo, 1, 0)
					return
				}
				count(tc.deniedTo, 1, 1)
				return
			}
			if err != nil {
				t.Errorf("%s: denied (%v), want allowed", tc.name, err)
				count(tc.deniedTo, 1, 0)
				return
			}
			if g.Basis() != tc.basis || !g.Valid() || g.PatientID() != tc.patient || g.TenantID() != tc.home || g.Action() != tc.act {
				t.Errorf("%s: grant %s", tc.name, g.Explanation())
			}
			if g.Emergency() != (tc.basis == BasisEmergency) {
				t.Errorf("%s: emergency flag %v [REQ AZ-5]", tc.name, g.Emergency())
			}
			// Sensitive data: the grant covers it exactly when the role
			// covers every category, and asking for it otherwise is a
			// (logged) denial.
			if g.AllowsCategory(fhir.CategoryMentalHealth) != tc.seesAll {
				t.Errorf("%s: grant covers mental-health %v, want %v [REQ AZ-9]", tc.name, g.AllowsCategory(fhir.CategoryMentalHealth), tc.seesAll)
			}
			_, err = f.d.Decide(f.ctx, tc.s, Request{PatientID: tc.patient, Action: tc.act, Categories: []string{fhir.CategoryMentalHealth}, Purpose: "TREAT"})
			switch {
			case tc.seesAll && err != nil:
				t.Errorf("%s: mental-health denied (%v) [REQ AZ-9]", tc.name, err)
			case !tc.seesAll && !IsDenied(err):
				t.Errorf("%s: mental-health %v, want a denial [REQ AZ-9]", tc.name, err)
			}
			denied := 0
			if !tc.seesAll {
				denied = 1
			}
			count(tc.deniedTo, 2, denied)
		}
		work := make(chan cellCase)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for tc := range work {
					check(tc)
				}
			}()
		}
		for _, tc := range cases {
			work <- tc
		}
		close(work)
		wg.Wait()

		base := 2 * len(matrixRoles) * len(matrixBases) * len(Actions()) * 3
		if cells <= base {
			t.Fatalf("decided %d cells, want more than %d", cells, base)
		}
		t.Logf("decided %d cells", cells)
		// Every denial was logged before Decide returned (AZ-1, LOG-1).
		for acc, n := range denials {
			var logged int
			for _, tenant := range []string{f.tenantA, f.tenantB, ""} {
				evs, err := f.log.Query(f.ctx, audit.Filter{TenantID: tenant, UserID: acc, Limit: 1000})
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range evs {
					if e.Outcome == audit.OutcomeDenied {
						logged++
					}
				}
			}
			if logged != n {
				t.Errorf("account %s: %d denials, %d logged [REQ AZ-1]", acc, n, logged)
			}
		}
	})
}

// cellReq names the requirement a cell of the own tenant enforces: the rule
// of its basis, and for the roles that never reach health data AZ-2.
func cellReq(role Role, b string) string {
	req := map[string]string{
		bNone: "AZ-1", bRelationship: "AZ-3", bEndedRel: "AZ-3", bTeam: "AZ-3", bDelegation: "AZ-3", bExpiredDeleg: "AZ-3",
		bOwn: "AZ-4", bRepresentation: "AZ-4", bExpiredRep: "AZ-4", bEmergency: "AZ-5", bExpiredEmerg: "AZ-5",
		bOperatorOK: "AZ-6", bOperatorPending: "AZ-6",
	}[b]
	switch role {
	case RoleAppAdmin, RoleSecurityOfficer:
		return "AZ-2, " + req
	case RoleOperator:
		return "AZ-6, " + req
	}
	return req + ", AZ-2"
}

func tenantName(f *fixture, t string) string {
	if t == f.tenantA {
		return "A"
	}
	return "B"
}

func contains[T comparable](xs []T, x T) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
