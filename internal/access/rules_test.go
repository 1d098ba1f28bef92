package access

import (
	"errors"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// The category names are fhir's, so a grant filters exactly what fhir labels:
// policy accepts every fhir category and the wildcard, and nothing else.
// REQ: AZ-9
func TestCategoriesMatchFHIR(t *testing.T) {
	for _, c := range fhir.AllCategories() {
		if !knownCategory(c) {
			t.Errorf("policy does not know fhir category %q", c)
		}
	}
	if !knownCategory(CategoryAll) {
		t.Errorf("policy does not know the wildcard %q", CategoryAll)
	}
	for _, c := range []string{"", "mental health", "Clinical", "psychiatry"} {
		if knownCategory(c) {
			t.Errorf("policy accepts %q, which fhir does not give any resource", c)
		}
	}
}

// A role or basis that may not see a category gets a grant that does not
// cover it, so record hides such data (AZ-9); asking for it is a denial.
// REQ: AZ-9
// REQ: AZ-2
// REQ: AZ-4
// REQ: AZ-6
func TestGrantCategories(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	p := f.patient(f.tenantA)
	prof := f.account(f.tenantA, RoleProfessional)
	asst := f.account(f.tenantA, RoleAssistant)
	rep := f.account(f.tenantA, RolePerson)
	op := f.account("", RoleOperator)
	f.rawRelationship(f.tenantA, prof.AccountID(), p, t0.Add(-time.Hour), nil)
	f.rawRelationship(f.tenantA, asst.AccountID(), p, t0.Add(-time.Hour), nil)
	f.rawRepresentation(f.tenantA, rep.AccountID(), p, "demographics medication", t0.Add(-time.Hour), nil)
	f.rawOperator(f.tenantA, op.AccountID(), p, "approved", "administrative", t0.Add(-time.Hour), t0.Add(time.Hour))
	rep.onBehalfOf = p
	for _, tc := range []struct {
		name    string
		s       Subject
		see     []string
		notSee  []string
		denyFor string
	}{
		{"professional", prof, []string{fhir.CategoryClinical, fhir.CategoryMentalHealth, fhir.CategoryGenetic}, nil, ""},
		{"assistant", asst, []string{fhir.CategoryDemographics, fhir.CategoryAdministrative}, []string{fhir.CategoryClinical, fhir.CategoryMentalHealth, fhir.CategoryMedication}, fhir.CategoryClinical},
		{"representative", rep, []string{fhir.CategoryDemographics, fhir.CategoryMedication}, []string{fhir.CategoryClinical, fhir.CategoryMentalHealth}, fhir.CategoryMentalHealth},
		{"operator", op, []string{fhir.CategoryAdministrative}, []string{fhir.CategoryDemographics, fhir.CategoryClinical}, fhir.CategoryClinical},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := f.d.Decide(f.ctx, tc.s, Request{PatientID: p, Action: Read})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tc.see {
				if !g.AllowsCategory(c) {
					t.Errorf("grant does not cover %s", c)
				}
			}
			for _, c := range tc.notSee {
				if g.AllowsCategory(c) {
					t.Errorf("grant covers %s", c)
				}
			}
			if tc.denyFor != "" {
				if _, err := f.d.Decide(f.ctx, tc.s, Request{PatientID: p, Action: Read, Categories: []string{tc.denyFor}}); !IsDenied(err) {
					t.Errorf("asking for %s: %v, want denial", tc.denyFor, err)
				}
			}
		})
	}
}

// Health data needs assurance Hoog whatever the basis (AUTH-6, AZ-1), and
// only persons act on behalf of a patient (AZ-4).
// REQ: AZ-1
// REQ: AZ-4
func TestDecideNeedsHoog(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	p := f.patient(f.tenantA)
	prof := f.account(f.tenantA, RoleProfessional)
	f.rawRelationship(f.tenantA, prof.AccountID(), p, t0.Add(-time.Hour), nil)
	prof.assurance = Midden
	if _, err := f.d.Decide(f.ctx, prof, Request{PatientID: p, Action: Read}); !IsDenied(err) {
		t.Fatalf("Midden: %v, want denial", err)
	}
	prof.assurance = Hoog
	if _, err := f.d.Decide(f.ctx, prof, Request{PatientID: p, Action: Read}); err != nil {
		t.Fatal(err)
	}
	// Representation is for persons: a professional's session that claims
	// to act for someone gets nothing.
	prof.onBehalfOf = p
	if _, err := f.d.Decide(f.ctx, prof, Request{PatientID: p, Action: Read}); !IsDenied(err) {
		t.Fatalf("professional acting on behalf: %v, want denial", err)
	}
}

// Emergency access: mandatory reason, one patient, 4 h by default, marked in
// every log event, a security event for the officer, and a review queue
// with a mandatory note; nobody reviews their own.
// REQ: AZ-5
// REQ: LOG-9
func TestEmergencyAccess(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		p, other := f.patient(f.tenantA), f.patient(f.tenantA)
		pB := f.patient(f.tenantB)
		prof := f.account(f.tenantA, RoleProfessional)
		asst := f.account(f.tenantA, RoleAssistant)
		officer := f.account(f.tenantA, RoleSecurityOfficer)
		officerB := f.account(f.tenantB, RoleSecurityOfficer)

		if _, err := f.d.DeclareEmergency(f.ctx, prof, p, "   "); !errors.Is(err, ErrInvalid) {
			t.Fatalf("empty reason: %v", err)
		}
		if _, err := f.d.DeclareEmergency(f.ctx, asst, p, "patient collapsed in the waiting room"); !errors.Is(err, ErrForbidden) {
			t.Fatalf("assistant: %v", err)
		}
		if _, err := f.d.DeclareEmergency(f.ctx, prof, pB, "patient collapsed in the waiting room"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("other tenant's patient: %v", err)
		}
		e, err := f.d.DeclareEmergency(f.ctx, prof, p, "patient collapsed in the waiting room")
		if err != nil {
			t.Fatal(err)
		}
		if !e.End.Equal(t0.Add(4 * time.Hour)) {
			t.Errorf("emergency ends %v, want 4 h after %v", e.End, t0)
		}
		g, err := f.d.Decide(f.ctx, prof, Request{PatientID: p, Action: Read})
		if err != nil {
			t.Fatal(err)
		}
		ev := g.Event(audit.ActionRead, audit.OutcomeSuccess)
		if !ev.Emergency || ev.EmergencyReason != e.Reason || ev.Basis != "emergency:"+e.ID || ev.Purpose != "ETREAT" {
			t.Errorf("event under emergency: %+v", ev)
		}
		if _, err := f.d.Decide(f.ctx, prof, Request{PatientID: other, Action: Read}); !IsDenied(err) {
			t.Errorf("another patient: %v, want denial", err)
		}
		f.clock.Advance(4*time.Hour - time.Second)
		if _, err := f.d.Decide(f.ctx, prof, Request{PatientID: p, Action: Read}); err != nil {
			t.Errorf("just before the end: %v", err)
		}
		f.clock.Advance(time.Second)
		if _, err := f.d.Decide(f.ctx, prof, Request{PatientID: p, Action: Read}); !IsDenied(err) {
			t.Errorf("after 4 h: %v, want denial", err)
		}

		evs, err := f.d.SecurityEvents(f.ctx, officer, t0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].Kind != "emergency-access" || evs[0].Ref != e.ID {
			t.Errorf("security events %+v", evs)
		}
		logged, err := f.log.Query(f.ctx, audit.Filter{TenantID: f.tenantA, PatientID: p, Action: ActionEmergency, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(logged) != 1 || !logged[0].Emergency || logged[0].EmergencyReason != e.Reason {
			t.Errorf("declaration in the access log: %+v", logged)
		}

		q, err := f.d.EmergencyReviews(f.ctx, officer, true)
		if err != nil || len(q) != 1 || q[0].ID != e.ID {
			t.Fatalf("queue %+v, %v", q, err)
		}
		if q, _ := f.d.EmergencyReviews(f.ctx, officerB, true); len(q) != 0 {
			t.Errorf("tenant B's officer sees %d of A's emergencies", len(q))
		}
		if _, err := f.d.ReviewEmergency(f.ctx, officer, e.ID, true, ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("review without note: %v", err)
		}
		if _, err := f.d.ReviewEmergency(f.ctx, officerB, e.ID, true, "fine"); !errors.Is(err, ErrNotFound) {
			t.Errorf("other tenant's officer: %v", err)
		}
		r, err := f.d.ReviewEmergency(f.ctx, officer, e.ID, false, "no sign of an emergency in the record")
		if err != nil || r.Review != "unjustified" || r.ReviewedBy != officer.AccountID() {
			t.Fatalf("review %+v, %v", r, err)
		}
		if _, err := f.d.ReviewEmergency(f.ctx, officer, e.ID, true, "again"); !errors.Is(err, ErrConflict) {
			t.Errorf("second review: %v", err)
		}
		if q, _ := f.d.EmergencyReviews(f.ctx, officer, true); len(q) != 0 {
			t.Errorf("queue after review: %+v", q)
		}
	})
}

// The emergency duration is configurable.
// REQ: AZ-5
func TestEmergencyDurationConfigurable(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	f.d = NewDecider(f.db, f.log, f.clock, WithEmergencyDuration(30*time.Minute))
	p := f.patient(f.tenantA)
	prof := f.account(f.tenantA, RoleProfessional)
	e, err := f.d.DeclareEmergency(f.ctx, prof, p, "anaphylaxis during vaccination")
	if err != nil {
		t.Fatal(err)
	}
	if !e.End.Equal(t0.Add(30 * time.Minute)) {
		t.Fatalf("end %v", e.End)
	}
}

// Delegation: only from a professional with a current relationship, to a
// professional, time-limited, revocable, and lapsing with the delegator's
// relationship.
// REQ: AZ-3
func TestDelegation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		p := f.patient(f.tenantA)
		gp := f.account(f.tenantA, RoleProfessional)
		spec := f.account(f.tenantA, RoleProfessional)
		other := f.account(f.tenantA, RoleProfessional)
		person := f.account(f.tenantA, RolePerson)
		admin := f.account(f.tenantA, RoleAppAdmin)
		until := t0.Add(48 * time.Hour)

		if _, err := f.d.Delegate(f.ctx, gp, spec.AccountID(), p, "referral to cardiology", until); !errors.Is(err, ErrForbidden) {
			t.Fatalf("without relationship: %v", err)
		}
		rel, err := f.d.RecordRelationship(f.ctx, admin, Relationship{ProfessionalID: gp.AccountID(), PatientID: p, Kind: "gp", Start: t0.Add(-time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.Delegate(f.ctx, gp, person.AccountID(), p, "referral", until); !errors.Is(err, ErrInvalid) {
			t.Errorf("to a person: %v", err)
		}
		if _, err := f.d.Delegate(f.ctx, gp, spec.AccountID(), p, "referral", t0.Add(MaxDelegation+time.Hour)); !errors.Is(err, ErrInvalid) {
			t.Errorf("too long: %v", err)
		}
		dl, err := f.d.Delegate(f.ctx, gp, spec.AccountID(), p, "referral to cardiology", until)
		if err != nil {
			t.Fatal(err)
		}
		// Listed for both professionals and the tenant's admin, not for
		// others or another tenant.
		adminB := f.account(f.tenantB, RoleAppAdmin)
		for _, tc := range []struct {
			s    Subject
			pid  string
			want int
		}{{gp, "", 1}, {spec, "", 1}, {admin, p, 1}, {admin, "", 1}, {other, "", 0}, {adminB, "", 0}, {adminB, p, 0}} {
			list, err := f.d.Delegations(f.ctx, tc.s, tc.pid)
			if err != nil || len(list) != tc.want || (tc.want == 1 && (list[0].ID != dl.ID || list[0].ToID != spec.AccountID())) {
				t.Errorf("delegations for %s %s: %+v %v", tc.s.Role(), tc.s.AccountID(), list, err)
			}
		}
		if _, err := f.d.Delegations(f.ctx, person, ""); !errors.Is(err, ErrForbidden) {
			t.Errorf("a person lists delegations: %v", err)
		}
		if g, err := f.d.Decide(f.ctx, spec, Request{PatientID: p, Action: Read}); err != nil || g.Basis() != BasisDelegation || g.Ref() != dl.ID {
			t.Fatalf("delegate: %v %v", g.Explanation(), err)
		}
		if err := f.d.RevokeDelegation(f.ctx, other, dl.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoked by a stranger: %v", err)
		}
		// The relationship ends: so does what was delegated from it.
		f.clock.Advance(time.Hour)
		if err := f.d.EndRelationship(f.ctx, admin, rel.ID, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.Decide(f.ctx, spec, Request{PatientID: p, Action: Read}); !IsDenied(err) {
			t.Errorf("after the delegator's relationship ended: %v", err)
		}
		if _, err := f.d.RecordRelationship(f.ctx, admin, Relationship{ProfessionalID: gp.AccountID(), PatientID: p, Kind: "gp"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.Decide(f.ctx, spec, Request{PatientID: p, Action: Read}); err != nil {
			t.Errorf("with a new relationship: %v", err)
		}
		if err := f.d.RevokeDelegation(f.ctx, gp, dl.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.Decide(f.ctx, spec, Request{PatientID: p, Action: Read}); !IsDenied(err) {
			t.Errorf("after revocation: %v", err)
		}
		dl2, err := f.d.Delegate(f.ctx, gp, spec.AccountID(), p, "second opinion", t0.Add(3*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Set(dl2.End)
		if _, err := f.d.Decide(f.ctx, spec, Request{PatientID: p, Action: Read}); !IsDenied(err) {
			t.Errorf("after the end: %v", err)
		}
	})
}

// Teams: members reach assigned patients; removing either ends it.
// REQ: AZ-3
func TestTeams(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	admin := f.account(f.tenantA, RoleAppAdmin)
	nurse := f.account(f.tenantA, RoleProfessional)
	p, pB := f.patient(f.tenantA), f.patient(f.tenantB)
	team, err := f.d.CreateTeam(f.ctx, admin, "Wijkteam Noord")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.CreateTeam(f.ctx, nurse, "Eigen team"); !errors.Is(err, ErrForbidden) {
		t.Errorf("professional creates a team: %v", err)
	}
	if err := f.d.SetTeamPatient(f.ctx, admin, team.ID, pB, true); !errors.Is(err, ErrNotFound) {
		t.Errorf("other tenant's patient: %v", err)
	}
	if err := f.d.SetTeamMember(f.ctx, admin, team.ID, nurse.AccountID(), true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.Decide(f.ctx, nurse, Request{PatientID: p, Action: Read}); !IsDenied(err) {
		t.Errorf("before assignment: %v", err)
	}
	if err := f.d.SetTeamPatient(f.ctx, admin, team.ID, p, true); err != nil {
		t.Fatal(err)
	}
	if g, err := f.d.Decide(f.ctx, nurse, Request{PatientID: p, Action: Update}); err != nil || g.Basis() != BasisTeam || g.Ref() != team.ID {
		t.Fatalf("team member: %v", err)
	}
	teams, err := f.d.Teams(f.ctx, admin)
	if err != nil || len(teams) != 1 || len(teams[0].Members) != 1 || len(teams[0].Patients) != 1 {
		t.Fatalf("teams %+v %v", teams, err)
	}
	if err := f.d.SetTeamMember(f.ctx, admin, team.ID, nurse.AccountID(), false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.Decide(f.ctx, nurse, Request{PatientID: p, Action: Read}); !IsDenied(err) {
		t.Errorf("after leaving the team: %v", err)
	}
}

// Representation: a parent's ends at the child's 16th birthday; validity,
// scope, revocation; the session must say on whose behalf it acts.
// REQ: AZ-4
func TestRepresentation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		admin := f.account(f.tenantA, RoleAppAdmin)
		parent := f.account(f.tenantA, RolePerson)
		prof := f.account(f.tenantA, RoleProfessional)
		child, adult := f.patient(f.tenantA), f.patient(f.tenantA)
		birth := time.Date(2010, 3, 3, 0, 0, 0, 0, time.UTC) // turns 16 the day after t0
		if _, err := f.d.AddRepresentation(f.ctx, admin, Representation{RepresentativeID: parent.AccountID(), PatientID: child, Kind: RepresentParent}); !errors.Is(err, ErrInvalid) {
			t.Errorf("parent without birth date: %v", err)
		}
		if _, err := f.d.AddRepresentation(f.ctx, admin, Representation{RepresentativeID: prof.AccountID(), PatientID: child, Kind: RepresentAuthorised}); !errors.Is(err, ErrInvalid) {
			t.Errorf("professional account as representative: %v", err)
		}
		if _, err := f.d.AddRepresentation(f.ctx, admin, Representation{RepresentativeID: parent.AccountID(), PatientID: adult, Kind: RepresentParent,
			PatientBirthDate: t0.AddDate(-17, 0, 0).Format(time.DateOnly)}); !errors.Is(err, ErrInvalid) {
			t.Errorf("parent of a 17-year-old: %v", err)
		}
		r, err := f.d.AddRepresentation(f.ctx, admin, Representation{RepresentativeID: parent.AccountID(), PatientID: child, Kind: RepresentParent,
			PatientBirthDate: birth.Format(time.DateOnly)})
		if err != nil {
			t.Fatal(err)
		}
		if r.End == nil || !r.End.Equal(birth.AddDate(16, 0, 0)) {
			t.Fatalf("parent's representation ends %v, want the 16th birthday", r.End)
		}
		if ok, err := f.d.MayRepresent(f.ctx, parent.AccountID(), child); err != nil || !ok {
			t.Fatalf("MayRepresent: %v %v", ok, err)
		}
		if ok, _ := f.d.MayRepresent(f.ctx, parent.AccountID(), adult); ok {
			t.Error("MayRepresent for a patient without representation")
		}
		if _, err := f.d.Decide(f.ctx, parent, Request{PatientID: child, Action: Read}); !IsDenied(err) {
			t.Errorf("session not acting for the child: %v", err)
		}
		acting := parent
		acting.onBehalfOf = child
		g, err := f.d.Decide(f.ctx, acting, Request{PatientID: child, Action: Read})
		if err != nil || g.Basis() != BasisRepresentation || g.Ref() != r.ID {
			t.Fatalf("representative: %v", err)
		}
		ev := g.Event(audit.ActionRead, audit.OutcomeSuccess)
		if ev.UserID != parent.AccountID() || ev.OnBehalfOf != child || ev.PatientID != child {
			t.Errorf("event does not record both: %+v", ev)
		}
		if _, err := f.d.Decide(f.ctx, acting, Request{PatientID: adult, Action: Read}); !IsDenied(err) {
			t.Errorf("acting for the child, reading someone else: %v", err)
		}
		f.clock.Advance(24 * time.Hour)
		if _, err := f.d.Decide(f.ctx, acting, Request{PatientID: child, Action: Read}); !IsDenied(err) {
			t.Errorf("after the 16th birthday: %v", err)
		}
		if ok, _ := f.d.MayRepresent(f.ctx, parent.AccountID(), child); ok {
			t.Error("MayRepresent after the 16th birthday")
		}
		r2, err := f.d.AddRepresentation(f.ctx, admin, Representation{RepresentativeID: parent.AccountID(), PatientID: adult, Kind: RepresentLegal,
			Categories: []string{fhir.CategoryDemographics}})
		if err != nil {
			t.Fatal(err)
		}
		acting.onBehalfOf = adult
		if _, err := f.d.Decide(f.ctx, acting, Request{PatientID: adult, Action: Read, Categories: []string{fhir.CategoryClinical}}); !IsDenied(err) {
			t.Errorf("outside the scope: %v", err)
		}
		if err := f.d.RevokeRepresentation(f.ctx, admin, r2.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.Decide(f.ctx, acting, Request{PatientID: adult, Action: Read}); !IsDenied(err) {
			t.Errorf("after revocation: %v", err)
		}
	})
}

// Operator procedure: request, approval by an officer of that tenant who is
// not the requester, limited in time and scope, reported with its uses.
// REQ: AZ-6
// REQ: AUTH-8
func TestOperatorProcedure(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		op := f.account("", RoleOperator)
		officer := f.account(f.tenantA, RoleSecurityOfficer)
		officerB := f.account(f.tenantB, RoleSecurityOfficer)
		admin := f.account(f.tenantA, RoleAppAdmin)
		p, p2, pB := f.patient(f.tenantA), f.patient(f.tenantA), f.patient(f.tenantB)
		req := OperatorRequest{TenantID: f.tenantA, PatientIDs: []string{p}, Categories: []string{fhir.CategoryDemographics},
			Reason: "repair a record damaged by a failed import", Duration: 2 * time.Hour}
		if _, err := f.d.RequestOperatorAccess(f.ctx, admin, req); !errors.Is(err, ErrForbidden) {
			t.Errorf("admin files an operator request: %v", err)
		}
		long := req
		long.Duration = 9 * time.Hour
		if _, err := f.d.RequestOperatorAccess(f.ctx, op, long); !errors.Is(err, ErrInvalid) {
			t.Errorf("9 h: %v", err)
		}
		r, err := f.d.RequestOperatorAccess(f.ctx, op, req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.Decide(f.ctx, op, Request{PatientID: p, Action: Read}); !IsDenied(err) {
			t.Errorf("before approval: %v", err)
		}
		if _, err := f.d.DecideOperatorRequest(f.ctx, officerB, r.ID, true, "ok"); !errors.Is(err, ErrNotFound) {
			t.Errorf("approved by another tenant's officer: %v", err)
		}
		if _, err := f.d.DecideOperatorRequest(f.ctx, admin, r.ID, true, "ok"); !errors.Is(err, ErrForbidden) {
			t.Errorf("approved by an app admin: %v", err)
		}
		f.clock.Advance(10 * time.Minute)
		r, err = f.d.DecideOperatorRequest(f.ctx, officer, r.ID, true, "import incident INC-12")
		if err != nil {
			t.Fatal(err)
		}
		g, err := f.d.Decide(f.ctx, op, Request{PatientID: p, Action: Read})
		if err != nil || g.Basis() != BasisOperator || g.TenantID() != f.tenantA {
			t.Fatalf("approved: %v", err)
		}
		if g.AllowsCategory(fhir.CategoryClinical) || !g.AllowsCategory(fhir.CategoryDemographics) {
			t.Errorf("operator grant categories %v", g.Categories())
		}
		if _, err := f.log.Append(f.ctx, g.Event(audit.ActionRead, audit.OutcomeSuccess)); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			p    string
			a    Action
		}{{"other patient", p2, Read}, {"other tenant", pB, Read}, {"update", p, Update}, {"export", p, Export}} {
			if _, err := f.d.Decide(f.ctx, op, Request{PatientID: tc.p, Action: tc.a}); !IsDenied(err) {
				t.Errorf("%s: %v", tc.name, err)
			}
		}
		f.clock.Advance(2 * time.Hour)
		if _, err := f.d.Decide(f.ctx, op, Request{PatientID: p, Action: Read}); !IsDenied(err) {
			t.Errorf("after the duration: %v", err)
		}
		rep, err := f.d.OperatorReport(f.ctx, officer)
		if err != nil || len(rep) != 1 || rep[0].Status != "approved" || rep[0].Uses != 1 || rep[0].DecidedBy != officer.AccountID() {
			t.Fatalf("report %+v %v", rep, err)
		}
		if rep, _ := f.d.OperatorReport(f.ctx, officerB); len(rep) != 0 {
			t.Errorf("tenant B sees A's operator requests")
		}
		r2, err := f.d.RequestOperatorAccess(f.ctx, op, OperatorRequest{TenantID: f.tenantA, PatientIDs: []string{pB}, Categories: []string{"*"},
			Reason: "fishing for another tenant's patient", Duration: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.DecideOperatorRequest(f.ctx, officer, r2.ID, true, "looks fine"); !errors.Is(err, ErrInvalid) {
			t.Errorf("approving another tenant's patient: %v", err)
		}
	})
}

// Rights: request by one admin, approval by someone else who is not the
// receiver; privileged rights end; the overview shows who and when.
// REQ: AZ-7
// REQ: AZ-8
// REQ: AUTH-8
func TestRightsFourEyes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		admin := f.account(f.tenantA, RoleAppAdmin)
		admin2 := f.account(f.tenantA, RoleAppAdmin)
		officer := f.account(f.tenantA, RoleSecurityOfficer)
		prof := f.account(f.tenantA, RoleProfessional)
		newAdmin, err := f.ids.CreateAccount(f.ctx, identityAccount(f.tenantA, "admin", "new-admin"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.RequestRight(f.ctx, admin, RightRequest{AccountID: prof.AccountID(), Role: RoleSecurityOfficer, Reason: "cover",
			ValidUntil: ptr(t0.Add(24 * time.Hour))}); !errors.Is(err, ErrInvalid) {
			t.Errorf("privileged role on an everyday account: %v", err)
		}
		if _, err := f.d.RequestRight(f.ctx, admin, RightRequest{AccountID: newAdmin.ID, Role: RoleSecurityOfficer, Reason: "cover"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("privileged role without an end: %v", err)
		}
		if _, err := f.d.RequestRight(f.ctx, admin, RightRequest{AccountID: admin.AccountID(), Role: RoleSecurityOfficer, Reason: "me",
			ValidUntil: ptr(t0.Add(time.Hour))}); !errors.Is(err, ErrForbidden) {
			t.Errorf("for oneself: %v", err)
		}
		rr, err := f.d.RequestRight(f.ctx, admin, RightRequest{AccountID: newAdmin.ID, Role: RoleSecurityOfficer, Reason: "holiday cover",
			ValidUntil: ptr(t0.Add(24 * time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.DecideRight(f.ctx, admin, rr.ID, true, "ok"); !errors.Is(err, ErrForbidden) {
			t.Errorf("requester approves: %v", err)
		}
		if ok, _ := f.d.RoleCurrent(f.ctx, newAdmin.ID, RoleSecurityOfficer); ok {
			t.Error("role current before approval")
		}
		f.clock.Advance(time.Minute)
		if _, err := f.d.DecideRight(f.ctx, officer, rr.ID, true, "agreed with the board"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := f.d.RoleCurrent(f.ctx, newAdmin.ID, RoleSecurityOfficer); !ok {
			t.Error("role not current after approval")
		}
		rights, pending, err := f.d.RightsOverview(f.ctx, admin2)
		if err != nil || len(pending) != 0 {
			t.Fatal(err, pending)
		}
		var found *Right
		for i := range rights {
			if rights[i].AccountID == newAdmin.ID {
				found = &rights[i]
			}
		}
		if found == nil || found.RequestedBy != admin.AccountID() || found.ApprovedBy != officer.AccountID() || found.GrantedBy != officer.AccountID() ||
			found.ValidUntil == nil || found.State != "current" || found.ApprovedAt == nil || !found.ApprovedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("overview line %+v", found)
		}
		f.clock.Advance(24 * time.Hour)
		if ok, _ := f.d.RoleCurrent(f.ctx, newAdmin.ID, RoleSecurityOfficer); ok {
			t.Error("privileged role current after its end")
		}
		s := NewSubject(SubjectSpec{AccountID: newAdmin.ID, TenantID: f.tenantA, Role: RoleSecurityOfficer, Assurance: Hoog})
		if err := f.d.CheckActor(f.ctx, s, RoleSecurityOfficer); !errors.Is(err, ErrForbidden) {
			t.Errorf("expired officer passes CheckActor: %v", err)
		}
		if err := f.d.CheckActor(f.ctx, officer, RoleSecurityOfficer); err != nil {
			t.Errorf("set-up officer: %v", err)
		}

		// A revoked everyday right stops Decide at once, mid-session.
		doc, err := f.ids.CreateAccount(f.ctx, identityAccount(f.tenantA, "professional", "new-doc"))
		if err != nil {
			t.Fatal(err)
		}
		pr, err := f.d.RequestRight(f.ctx, admin, RightRequest{AccountID: doc.ID, Role: RoleProfessional, Reason: "new GP"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.DecideRight(f.ctx, admin2, pr.ID, true, "contract signed"); err != nil {
			t.Fatal(err)
		}
		p := f.patient(f.tenantA)
		f.rawRelationship(f.tenantA, doc.ID, p, f.clock.Now().Add(-time.Hour), nil)
		ds := NewSubject(SubjectSpec{AccountID: doc.ID, TenantID: f.tenantA, Role: RoleProfessional, Assurance: Hoog})
		if _, err := f.d.Decide(f.ctx, ds, Request{PatientID: p, Action: Read}); err != nil {
			t.Fatalf("approved professional: %v", err)
		}
		f.clock.Advance(time.Minute)
		if err := f.d.RevokeRight(f.ctx, officer, pr.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.Decide(f.ctx, ds, Request{PatientID: p, Action: Read}); !IsDenied(err) {
			t.Errorf("revoked professional: %v", err)
		}
		rights, _, err = f.d.RightsOverview(f.ctx, officer)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rights {
			if r.AccountID == doc.ID && r.State != "revoked" {
				t.Errorf("overview state %q after revocation", r.State)
			}
		}
	})
}

// Tenant-defined roles take effect only after another person approves them.
// REQ: AZ-2
// REQ: AZ-7
func TestTenantRoleNeedsApproval(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	admin := f.account(f.tenantA, RoleAppAdmin)
	officer := f.account(f.tenantA, RoleSecurityOfficer)
	p := f.patient(f.tenantA)
	acc, err := f.ids.CreateAccount(f.ctx, identityAccount(f.tenantA, "professional", "dietist"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ids.GrantRole(f.ctx, acc.ID, "dietitian", "test set-up"); err != nil { // Decide checks the account holds it
		t.Fatal(err)
	}
	f.rawRelationship(f.tenantA, acc.ID, p, t0.Add(-time.Hour), nil)
	s := NewSubject(SubjectSpec{AccountID: acc.ID, TenantID: f.tenantA, Role: "dietitian", Assurance: Hoog})
	if _, err := f.d.ProposeRole(f.ctx, admin, RoleDef{Name: "dietitian", Base: RoleAssistant, Actions: []Action{Delete}, Categories: []string{fhir.CategoryClinical}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("more than the base allows: %v", err)
	}
	def, err := f.d.ProposeRole(f.ctx, admin, RoleDef{Name: "dietitian", Base: RoleProfessional, Actions: []Action{Read, Search},
		Categories: []string{fhir.CategoryDemographics, fhir.CategoryClinical}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.Decide(f.ctx, s, Request{PatientID: p, Action: Read}); !IsDenied(err) {
		t.Errorf("pending role: %v", err)
	}
	if _, err := f.d.DecideRole(f.ctx, admin, def.ID, true, "mine"); !errors.Is(err, ErrForbidden) {
		t.Errorf("proposer approves: %v", err)
	}
	if _, err := f.d.DecideRole(f.ctx, officer, def.ID, true, "per policy 2026-3"); err != nil {
		t.Fatal(err)
	}
	g, err := f.d.Decide(f.ctx, s, Request{PatientID: p, Action: Read})
	if err != nil || g.AllowsCategory(fhir.CategoryMentalHealth) || !g.AllowsCategory(fhir.CategoryClinical) {
		t.Fatalf("approved role: %v %v", err, g.Categories())
	}
	if _, err := f.d.Decide(f.ctx, s, Request{PatientID: p, Action: Update}); !IsDenied(err) {
		t.Errorf("update by a read-only role: %v", err)
	}
	roles, err := f.d.RoleDefs(f.ctx, officer)
	if err != nil || roles[len(roles)-1].ProposedBy != admin.AccountID() || roles[len(roles)-1].DecidedBy != officer.AccountID() {
		t.Fatalf("role list %+v %v", roles, err)
	}
}
