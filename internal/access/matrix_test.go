package access

import (
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
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
		f.rawRelationship(tenant, s.AccountID, p, t0.Add(-time.Hour), nil)
	case bEndedRel:
		f.rawRelationship(tenant, s.AccountID, p, t0.Add(-48*time.Hour), ptr(t0.Add(-time.Hour)))
	case bTeam:
		f.rawTeam(tenant, s.AccountID, p)
	case bDelegation, bExpiredDeleg:
		f.rawRelationship(tenant, delegator, p, t0.Add(-48*time.Hour), nil)
		end := t0.Add(24 * time.Hour)
		if b == bExpiredDeleg {
			end = t0.Add(-time.Minute)
		}
		f.rawDelegation(tenant, delegator, s.AccountID, p, t0.Add(-47*time.Hour), end)
	case bOwn:
		f.exec(`INSERT INTO person_patients (account_id, patient_id) VALUES ($1, $2)`, s.AccountID, p)
	case bRepresentation, bExpiredRep:
		var end *time.Time
		if b == bExpiredRep {
			end = ptr(t0.Add(-time.Minute))
		}
		f.rawRepresentation(tenant, s.AccountID, p, "*", t0.Add(-48*time.Hour), end)
		s.OnBehalfOf = p
	case bEmergency:
		f.rawEmergency(tenant, s.AccountID, p, t0.Add(-time.Hour), t0.Add(3*time.Hour))
	case bExpiredEmerg:
		f.rawEmergency(tenant, s.AccountID, p, t0.Add(-5*time.Hour), t0.Add(-time.Hour))
	case bOperatorOK, bOperatorPending:
		status := "approved"
		if b == bOperatorPending {
			status = "pending"
		}
		f.rawOperator(tenant, s.AccountID, p, status, "*", t0.Add(-time.Hour), t0.Add(time.Hour))
	default:
		f.t.Fatalf("unknown basis %q", b)
	}
	return s
}

// TestDecideMatrix decides every role × basis × action × tenant cell.
// For each cell the subject (of tenant A; operators have none) gets the
// basis to a patient of tenant A, and the same rule rows are also written
// pointing at a patient of tenant B, as a faulty import or a malicious admin
// might. Access to A's patient follows the policy; access to B's patient is
// always denied, and every denial is in the access log.
//
// REQ: AZ-1, AZ-2, AZ-3, AZ-4, AZ-5, AZ-6, AZ-9
func TestDecideMatrix(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.d.emergencyFor = 4 * time.Hour
		f.exec(`INSERT INTO access_role_defs (id, tenant_id, name, base, actions, categories, status, proposed_by, proposed_at, decided_by, decided_at)
			VALUES ('rd-physio', $1, $2, 'professional', 'read search create update', 'demographics clinical', 'approved', 'a1', $3, 'a2', $3)`,
			f.tenantA, string(roleCustom), us(t0.Add(-time.Hour)))
		delegatorA := f.account(f.tenantA, RoleProfessional).AccountID
		delegatorB := f.account(f.tenantB, RoleProfessional).AccountID
		want := expectedMatrix()
		cells, denials := 0, map[string]int{}
		for _, role := range matrixRoles {
			for _, b := range matrixBases {
				subj := f.account(f.tenantA, role)
				pA, pB := f.patient(f.tenantA), f.patient(f.tenantB)
				sA := f.setUpBasis(subj, b, f.tenantA, pA, delegatorA)
				// An operator has no tenant, and tenant B's officer may of
				// course approve access to B's patients; for operators the
				// cross-tenant case is rows of tenant A that name B's patient.
				var sB Subject
				if role == RoleOperator {
					sB = f.setUpBasis(subj, b, f.tenantA, pB, delegatorA)
				} else {
					sB = f.setUpBasis(subj, b, f.tenantB, pB, delegatorB)
				}
				expect := want[role][b]
				for _, act := range Actions() {
					for _, tc := range []struct {
						tenant  string
						s       Subject
						patient string
						allowed bool
					}{
						{"own tenant", sA, pA, contains(expect.actions, act)},
						{"other tenant", sB, pB, false},
					} {
						cells++
						g, err := f.d.Decide(f.ctx, tc.s, Request{PatientID: tc.patient, Action: act, Categories: []string{CategoryDemographics}, Purpose: "TREAT"})
						if tc.allowed {
							if err != nil {
								t.Errorf("%s / %s / %s / %s: denied (%v), want allowed", role, b, act, tc.tenant, err)
								continue
							}
							if g.Basis() != expect.basis || !g.Valid() || g.PatientID() != tc.patient || g.TenantID() != f.tenantA {
								t.Errorf("%s / %s / %s: grant %s", role, b, act, g.Explanation())
							}
							if g.Emergency() != (expect.basis == BasisEmergency) {
								t.Errorf("%s / %s / %s: emergency flag %v", role, b, act, g.Emergency())
							}
							continue
						}
						if !IsDenied(err) {
							t.Errorf("%s / %s / %s / %s: got %v (grant %v), want a denial", role, b, act, tc.tenant, err, g.Valid())
							continue
						}
						denials[subj.AccountID]++
					}
				}
			}
		}
		if cells != len(matrixRoles)*len(matrixBases)*6*2 {
			t.Fatalf("decided %d cells", cells)
		}
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
				t.Errorf("account %s: %d denials, %d logged", acc, n, logged)
			}
		}
	})
}

func contains[T comparable](xs []T, x T) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
