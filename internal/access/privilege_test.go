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

// A privileged right (security officer, application admin) is granted per
// event: each grant is its own request with a reason and an end no further
// than the maximum, approved by someone else, and recorded as security
// events. When it ends the role stops working, also in a session that
// started before, and the overview says it expired. The old approval never
// comes back: a new period needs a new request and a new approval.
//
// REQ: AZ-8
// REQ: AZ-7
func TestPrivilegedRightsPerEvent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.d.maxPrivilegeFor = 7 * 24 * time.Hour
		admin := f.account(f.tenantA, RoleAppAdmin)
		officer := f.account(f.tenantA, RoleSecurityOfficer)
		acc, err := f.ids.CreateAccount(f.ctx, identityAccount(f.tenantA, "admin", "cover-admin"))
		if err != nil {
			t.Fatal(err)
		}
		for _, role := range []Role{RoleSecurityOfficer, RoleAppAdmin} {
			if _, err := f.d.RequestRight(f.ctx, admin, RightRequest{AccountID: acc.ID, Role: role, Reason: "cover"}); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s without an end: %v", role, err)
			}
			if _, err := f.d.RequestRight(f.ctx, admin, RightRequest{AccountID: acc.ID, Role: role, Reason: "cover",
				ValidUntil: ptr(t0.Add(8 * 24 * time.Hour))}); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s beyond the maximum: %v", role, err)
			}
			if _, err := f.d.RequestRight(f.ctx, admin, RightRequest{AccountID: acc.ID, Role: role, Reason: "cover",
				ValidUntil: ptr(t0.Add(-time.Minute))}); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s ending in the past: %v", role, err)
			}
		}
		if _, err := f.d.RequestRight(f.ctx, admin, RightRequest{AccountID: acc.ID, Role: RoleOperator, Reason: "platform help",
			ValidUntil: ptr(t0.Add(time.Hour))}); !errors.Is(err, ErrInvalid) {
			t.Errorf("a tenant grants the operator role: %v", err)
		}

		// First event: a night shift as security officer.
		first, err := f.d.RequestRight(f.ctx, admin, RightRequest{AccountID: acc.ID, Role: RoleSecurityOfficer, Reason: "night shift 2 March",
			ValidUntil: ptr(t0.Add(12 * time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		if !first.Privileged {
			t.Error("security-officer request not marked privileged")
		}
		cover := NewSubject(SubjectSpec{AccountID: acc.ID, TenantID: f.tenantA, Role: RoleSecurityOfficer, Assurance: Hoog})
		if err := f.d.CheckActor(f.ctx, cover, RoleSecurityOfficer); !errors.Is(err, ErrForbidden) {
			t.Errorf("before approval: %v", err)
		}
		if _, err := f.d.DecideRight(f.ctx, cover, first.ID, true, "self"); !errors.Is(err, ErrForbidden) {
			t.Errorf("receiver approves: %v", err)
		}
		if _, err := f.d.DecideRight(f.ctx, officer, first.ID, true, "roster 2026-10"); err != nil {
			t.Fatal(err)
		}
		if err := f.d.CheckActor(f.ctx, cover, RoleSecurityOfficer); err != nil {
			t.Fatalf("during the night shift: %v", err)
		}
		if _, err := f.d.EmergencyReviews(f.ctx, cover, true); err != nil {
			t.Errorf("officer work during the shift: %v", err)
		}
		f.clock.Advance(12 * time.Hour)
		if err := f.d.CheckActor(f.ctx, cover, RoleSecurityOfficer); !errors.Is(err, ErrForbidden) {
			t.Errorf("after the end, same session: %v", err)
		}
		if line := rightLine(t, f, officer, acc.ID, RoleSecurityOfficer); line.State != "expired" || line.RequestID != first.ID ||
			line.ValidUntil == nil || !line.ValidUntil.Equal(t0.Add(12*time.Hour)) {
			t.Errorf("overview after the end: %+v", line)
		}

		// Second event: a new request; until it is approved nothing works.
		second, err := f.d.RequestRight(f.ctx, admin, RightRequest{AccountID: acc.ID, Role: RoleSecurityOfficer, Reason: "night shift 3 March",
			ValidUntil: ptr(f.clock.Now().Add(12 * time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.d.CheckActor(f.ctx, cover, RoleSecurityOfficer); !errors.Is(err, ErrForbidden) {
			t.Errorf("second period before approval: %v", err)
		}
		f.clock.Advance(time.Minute)
		if _, err := f.d.DecideRight(f.ctx, officer, second.ID, true, "roster 2026-10"); err != nil {
			t.Fatal(err)
		}
		if err := f.d.CheckActor(f.ctx, cover, RoleSecurityOfficer); err != nil {
			t.Errorf("second period: %v", err)
		}
		line := rightLine(t, f, officer, acc.ID, RoleSecurityOfficer)
		if line.State != "current" || line.RequestID != second.ID || line.RequestedBy != admin.AccountID() || line.ApprovedBy != officer.AccountID() ||
			line.ApprovedAt == nil || !line.ApprovedAt.Equal(f.clock.Now()) {
			t.Errorf("overview of the second period: %+v", line)
		}
		// Revoked early: at once.
		if err := f.d.RevokeRight(f.ctx, officer, second.ID); err != nil {
			t.Fatal(err)
		}
		if err := f.d.CheckActor(f.ctx, cover, RoleSecurityOfficer); !errors.Is(err, ErrForbidden) {
			t.Errorf("after revocation: %v", err)
		}
		if line := rightLine(t, f, officer, acc.ID, RoleSecurityOfficer); line.State != "revoked" {
			t.Errorf("overview after revocation: %+v", line)
		}

		// Every step is a security event with who, whom and which request.
		evs, err := f.d.SecurityEvents(f.ctx, officer, t0)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{ // kind+ref -> actor
			"right-requested " + first.ID:  admin.AccountID(),
			"right-approved " + first.ID:   officer.AccountID(),
			"right-requested " + second.ID: admin.AccountID(),
			"right-approved " + second.ID:  officer.AccountID(),
			"right-revoked " + second.ID:   officer.AccountID(),
		}
		for _, e := range evs {
			if actor, ok := want[e.Kind+" "+e.Ref]; ok && e.AccountID == actor && e.SubjectID == acc.ID {
				delete(want, e.Kind+" "+e.Ref)
			}
		}
		if len(want) != 0 {
			t.Errorf("security events missing: %v (have %+v)", want, evs)
		}
	})
}

// rightLine is the overview line of one account's role.
func rightLine(t *testing.T, f *fixture, actor Subject, accountID string, role Role) Right {
	t.Helper()
	rights, _, err := f.d.RightsOverview(f.ctx, actor)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rights {
		if r.AccountID == accountID && r.Role == role {
			return r
		}
	}
	t.Fatalf("no overview line for %s as %s in %+v", accountID, role, rights)
	return Right{}
}

// Security events reach the security officer of the tenant they concern,
// and only them: emergency access, privilege changes, role-definition
// changes, operator requests and decisions, emergency reviews, an
// operator's attempt outside the procedure. Other roles
// and other tenants' officers cannot read them.
//
// REQ: LOG-9
// REQ: AZ-5
func TestSecurityEventsReachOfficer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		admin := f.account(f.tenantA, RoleAppAdmin)
		officer := f.account(f.tenantA, RoleSecurityOfficer)
		officer2 := f.account(f.tenantA, RoleSecurityOfficer)
		officerB := f.account(f.tenantB, RoleSecurityOfficer)
		prof := f.account(f.tenantA, RoleProfessional)
		op := f.account("", RoleOperator)
		p := f.patient(f.tenantA)

		em, err := f.d.DeclareEmergency(f.ctx, prof, p, "unconscious patient brought in by ambulance")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.ReviewEmergency(f.ctx, officer2, em.ID, true, "ambulance record confirms it"); err != nil {
			t.Fatal(err)
		}
		acc, err := f.ids.CreateAccount(f.ctx, identityAccount(f.tenantA, "admin", "new-officer"))
		if err != nil {
			t.Fatal(err)
		}
		rr, err := f.d.RequestRight(f.ctx, admin, RightRequest{AccountID: acc.ID, Role: RoleSecurityOfficer, Reason: "holiday cover",
			ValidUntil: ptr(t0.Add(24 * time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.DecideRight(f.ctx, officer2, rr.ID, false, "not trained yet"); err != nil {
			t.Fatal(err)
		}
		def, err := f.d.ProposeRole(f.ctx, admin, RoleDef{Name: "dietitian", Base: RoleProfessional, Actions: []Action{Read}, Categories: []string{fhir.CategoryClinical}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.DecideRole(f.ctx, officer2, def.ID, true, "policy 2026-4"); err != nil {
			t.Fatal(err)
		}
		or, err := f.d.RequestOperatorAccess(f.ctx, op, OperatorRequest{TenantID: f.tenantA, PatientIDs: []string{p},
			Categories: []string{fhir.CategoryDemographics}, Reason: "repair a broken index entry", Duration: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.DecideOperatorRequest(f.ctx, officer2, or.ID, false, "use the backup instead"); err != nil {
			t.Fatal(err)
		}
		// The operator tries anyway: denied, in tenant A's access log and
		// among its security events.
		if _, err := f.d.Decide(f.ctx, op, Request{PatientID: p, Action: Read}); !IsDenied(err) {
			t.Fatalf("operator after rejection: %v", err)
		}
		if _, err := f.d.Decide(f.ctx, op, Request{PatientID: p, Action: Update}); !IsDenied(err) {
			t.Fatalf("operator update: %v", err)
		}
		logged, err := f.log.Query(f.ctx, audit.Filter{TenantID: f.tenantA, UserID: op.AccountID(), PatientID: p, Limit: 10})
		if err != nil || len(logged) != 2 || logged[0].Outcome != audit.OutcomeDenied || logged[1].Outcome != audit.OutcomeDenied {
			t.Errorf("operator's denied attempts in A's log: %+v %v", logged, err)
		}

		evs, err := f.d.SecurityEvents(f.ctx, officer, t0)
		if err != nil {
			t.Fatal(err)
		}
		type key struct{ kind, ref, actor string }
		have := map[key]SecurityEvent{}
		for _, e := range evs {
			if e.TenantID != f.tenantA {
				t.Errorf("event of another tenant: %+v", e)
			}
			have[key{e.Kind, e.Ref, e.AccountID}] = e
		}
		for _, k := range []key{
			{"emergency-access", em.ID, prof.AccountID()},
			{"emergency-reviewed-justified", em.ID, officer2.AccountID()},
			{"right-requested", rr.ID, admin.AccountID()},
			{"right-rejected", rr.ID, officer2.AccountID()},
			{"role-definition-proposed", def.ID, admin.AccountID()},
			{"role-definition-approved", def.ID, officer2.AccountID()},
			{"operator-access-requested", or.ID, op.AccountID()},
			{"operator-access-rejected", or.ID, officer2.AccountID()},
			{"operator-access-denied", "", op.AccountID()},
		} {
			if _, ok := have[k]; !ok {
				t.Errorf("no security event %+v among %+v", k, evs)
			}
		}
		if e := have[key{"emergency-access", em.ID, prof.AccountID()}]; e.SubjectID != p || e.Detail == "" || !e.Time.Equal(t0) {
			t.Errorf("emergency event lacks patient, reason or time: %+v", e)
		}
		if evs, err := f.d.SecurityEvents(f.ctx, officerB, t0); err != nil || len(evs) != 0 {
			t.Errorf("tenant B's officer sees %d of A's events (%v)", len(evs), err)
		}
		for _, s := range []Subject{admin, prof, op} {
			if _, err := f.d.SecurityEvents(f.ctx, s, t0); !errors.Is(err, ErrForbidden) {
				t.Errorf("%s reads security events: %v", s.Role(), err)
			}
		}
		if evs, _ := f.d.SecurityEvents(f.ctx, officer, t0.Add(time.Second)); len(evs) != 0 {
			t.Errorf("events since a later time: %+v", evs)
		}
	})
}
