package access

import (
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// A Subject only says what its credential claims: Decide checks that the
// account really holds the role (and is active), on every path, and logs the
// refusal like any other. Each case would have been allowed before, when
// Decide trusted the Subject's role.
// REQ: AZ-1
// REQ: AZ-2
func TestDecideChecksRoleHeld(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		p := f.patient(f.tenantA)

		// claim returns the subject of acc acting in role, which it does not hold.
		claim := func(acc Subject, role Role) Subject {
			spec := acc.Spec()
			spec.Role, spec.Kind = role, ""
			return NewSubject(spec)
		}
		deniedLogged := func(t *testing.T, name string, s Subject, tenant string, err error) {
			t.Helper()
			if !IsDenied(err) || !strings.Contains(err.Error(), "does not hold the role") {
				t.Fatalf("%s: %v, want a denial for a role not held", name, err)
			}
			evs, err := f.log.Query(f.ctx, audit.Filter{TenantID: tenant, UserID: s.AccountID(), Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				if e.Outcome == audit.OutcomeDenied && strings.Contains(e.Reason, "does not hold the role "+string(s.Role())) {
					if e.Role != string(s.Role()) || e.PrincipalKind != string(s.Kind()) {
						t.Errorf("%s: logged role %q kind %q, want %q %q", name, e.Role, e.PrincipalKind, s.Role(), s.Kind())
					}
					return
				}
			}
			t.Errorf("%s: denial not in the access log: %+v", name, evs)
		}

		// An assistant's session that claims the professional role, with a
		// care relationship in place.
		asst := f.account(f.tenantA, RoleAssistant)
		f.rawRelationship(f.tenantA, asst.AccountID(), p, t0.Add(-time.Hour), nil)
		if _, err := f.d.Decide(f.ctx, asst, Request{PatientID: p, Action: Read, Categories: []string{fhir.CategoryDemographics}}); err != nil {
			t.Fatalf("assistant in its own role: %v", err)
		}
		fake := claim(asst, RoleProfessional)
		_, err := f.d.Decide(f.ctx, fake, Request{PatientID: p, Action: Read, Categories: []string{fhir.CategoryClinical}})
		deniedLogged(t, "assistant as professional", fake, f.tenantA, err)
		_, err = f.d.DecideRegistration(f.ctx, fake, "p-new-1")
		deniedLogged(t, "assistant registers", fake, f.tenantA, err)

		// A person's session that claims the person role of an account that
		// holds another one, for a patient linked to it.
		prof := f.account(f.tenantA, RoleProfessional)
		f.exec(`INSERT INTO person_patients (account_id, patient_id) VALUES ($1, $2)`, prof.AccountID(), p)
		fakePerson := claim(prof, RolePerson)
		_, err = f.d.Decide(f.ctx, fakePerson, Request{PatientID: p, Action: Read})
		deniedLogged(t, "professional as person", fakePerson, f.tenantA, err)

		// An operator role claimed by an account that is not an operator,
		// with an approved request naming the patient.
		admin := f.account(f.tenantA, RoleAppAdmin)
		f.rawOperator(f.tenantA, admin.AccountID(), p, "approved", "*", t0.Add(-time.Minute), t0.Add(time.Hour))
		fakeOp := claim(admin, RoleOperator)
		_, err = f.d.Decide(f.ctx, fakeOp, Request{PatientID: p, Action: Read})
		deniedLogged(t, "admin as operator", fakeOp, f.tenantA, err)

		// A deactivated account still holding its role: its session's
		// subject gets nothing.
		leaver := f.account(f.tenantA, RoleProfessional)
		f.rawRelationship(f.tenantA, leaver.AccountID(), p, t0.Add(-time.Hour), nil)
		if _, err := f.d.Decide(f.ctx, leaver, Request{PatientID: p, Action: Read}); err != nil {
			t.Fatalf("before deactivation: %v", err)
		}
		if _, err := f.d.DecideRegistration(f.ctx, leaver, "p-new-2"); err != nil {
			t.Fatalf("registration before deactivation: %v", err)
		}
		if err := f.ids.Deactivate(f.ctx, leaver.AccountID()); err != nil {
			t.Fatal(err)
		}
		_, err = f.d.Decide(f.ctx, leaver, Request{PatientID: p, Action: Read})
		deniedLogged(t, "deactivated professional", leaver, f.tenantA, err)
		_, err = f.d.DecideRegistration(f.ctx, leaver, "p-new-3")
		deniedLogged(t, "deactivated registers", leaver, f.tenantA, err)

		// Once the account holds the role, the same claim is allowed.
		if err := f.ids.GrantRole(f.ctx, asst.AccountID(), string(RoleProfessional), "test"); err != nil {
			t.Fatal(err)
		}
		if g, err := f.d.Decide(f.ctx, fake, Request{PatientID: p, Action: Read, Categories: []string{fhir.CategoryClinical}}); err != nil || g.Basis() != BasisCareRelationship {
			t.Fatalf("after the grant: %v %v", g.Basis(), err)
		}
	})
}

// The kind of a session follows from its role; a token's client id and
// scopes reach the access log.
func TestSubjectKindInLog(t *testing.T) {
	for r, want := range map[Role]Kind{RolePerson: KindPerson, RoleProfessional: KindProfessional, RoleAssistant: KindProfessional,
		"dietitian": KindProfessional, RoleAppAdmin: KindStaff, RoleSecurityOfficer: KindStaff, RoleOperator: KindStaff, "": ""} {
		if got := NewSubject(SubjectSpec{Role: r}).Kind(); got != want {
			t.Errorf("kind of %q = %q, want %q", r, got, want)
		}
	}
	scopes := []string{"patient/*.read"}
	s := NewSubject(SubjectSpec{AccountID: "a-1", Role: RolePerson, Kind: KindApp, ClientID: "app-1", Scopes: scopes})
	scopes[0] = "changed"
	ev := subjectEvent(s, "p-1", audit.ActionRead, audit.OutcomeDenied, "")
	if ev.PrincipalKind != "app" || ev.SourceApp != "app-1" || len(ev.Scopes) != 1 || ev.Scopes[0] != "patient/*.read" {
		t.Fatalf("event %+v", ev)
	}
	sess := subjectEvent(NewSubject(SubjectSpec{AccountID: "a-2", Role: RoleProfessional}), "p-1", audit.ActionRead, audit.OutcomeDenied, "")
	if sess.PrincipalKind != "professional" || sess.SourceApp != "" || sess.Scopes != nil {
		t.Fatalf("session event %+v", sess)
	}
}
