package access

import (
	"errors"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// REQ: LOG-4, AZ-1, LOG-1 — reading the access log is decided like any
// access: a person reads the log of their own record, or of the patient they
// represent in this session, and no other; a professional's care
// relationship does not extend to the log; a security officer reads only
// their own tenant's log. Every refusal is logged, and a reading is logged
// before its first event is released.
func TestDecideLogRead(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		own, other, child := f.patient(f.tenantA), f.patient(f.tenantA), f.patient(f.tenantA)
		person := f.account(f.tenantA, RolePerson)
		if err := f.ids.LinkPerson(f.ctx, person.AccountID(), own); err != nil {
			t.Fatal(err)
		}
		f.rawRepresentation(f.tenantA, person.AccountID(), child, "*", t0.Add(-time.Hour), nil)
		doc := f.account(f.tenantA, RoleProfessional)
		f.rawRelationship(f.tenantA, doc.AccountID(), own, t0.Add(-time.Hour), nil)
		officerA, officerB := f.account(f.tenantA, RoleSecurityOfficer), f.account(f.tenantB, RoleSecurityOfficer)

		// Events of both tenants to be read.
		if _, err := f.log.Append(f.ctx,
			audit.Event{TenantID: f.tenantA, PatientID: own, UserID: doc.AccountID(), Action: audit.ActionRead, Outcome: audit.OutcomeSuccess},
			audit.Event{TenantID: f.tenantA, PatientID: other, UserID: doc.AccountID(), Action: audit.ActionRead, Outcome: audit.OutcomeSuccess},
			audit.Event{TenantID: f.tenantB, PatientID: "p-of-b", UserID: "u-of-b", Action: audit.ActionRead, Outcome: audit.OutcomeSuccess},
		); err != nil {
			t.Fatal(err)
		}
		read := func(who Subject, p audit.Permit, q audit.Search) ([]audit.Event, error) {
			rd, err := f.log.Read(f.ctx, p, q, "test")
			if err != nil {
				return nil, err
			}
			// The reading itself is in the log before its events: it is
			// released too, but the checks below count the other events.
			var out []audit.Event
			sawRead := false
			_, err = rd.Each(f.ctx, func(e audit.Event) error {
				if e.Action == audit.ActionLogRead && e.Query == "test" && e.UserID == who.AccountID() {
					sawRead = true
					return nil
				}
				out = append(out, e)
				return nil
			})
			if err == nil && !sawRead && q.Action == "" {
				t.Fatalf("reading %+v did not find its own log-read event", q)
			}
			return out, err
		}
		logReads := func(who Subject, outcome audit.Outcome) int {
			evs, err := f.log.Query(f.ctx, audit.Filter{TenantID: who.TenantID(), UserID: who.AccountID(), Action: audit.ActionLogRead})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range evs {
				if e.Outcome == outcome {
					n++
				}
			}
			return n
		}

		// The person's own record: a permit for that patient only.
		p, err := f.d.DecideLogRead(f.ctx, person, LogScope{PatientID: own, Purpose: "PATRQT"})
		if err != nil || p.PatientID() != own || p.TenantID() != f.tenantA {
			t.Fatalf("own record: %+v %v", p, err)
		}
		evs, err := read(person, p, audit.Search{})
		if err != nil || len(evs) != 1 || evs[0].PatientID != own {
			t.Fatalf("own log: %+v %v", evs, err)
		}
		if _, err := read(person, p, audit.Search{PatientID: other}); !errors.Is(err, audit.ErrScope) {
			t.Fatalf("own permit used for another patient: %v", err)
		}
		if _, err := read(person, p, audit.Search{TenantID: f.tenantB}); !errors.Is(err, audit.ErrScope) {
			t.Fatalf("own permit used for another tenant: %v", err)
		}
		if n := logReads(person, audit.OutcomeSuccess); n != 1 {
			t.Fatalf("the person's reading is logged once, refused scopes not at all: %d", n)
		}

		// Another patient, of this tenant or of none, is refused and logged.
		for _, pid := range []string{other, child, "does-not-exist", ""} {
			if _, err := f.d.DecideLogRead(f.ctx, person, LogScope{PatientID: pid}); !IsDenied(err) {
				t.Fatalf("person reads the log of %q: %v", pid, err)
			}
		}
		if n := logReads(person, audit.OutcomeDenied); n != 4 {
			t.Fatalf("refusals logged: %d of 4", n)
		}
		// Representation counts only when the session acts for the patient.
		rep := person
		rep.onBehalfOf = child
		if p, err := f.d.DecideLogRead(f.ctx, rep, LogScope{PatientID: child}); err != nil || p.PatientID() != child {
			t.Fatalf("representative: %+v %v", p, err)
		}
		if _, err := f.d.DecideLogRead(f.ctx, rep, LogScope{PatientID: own}); !IsDenied(err) {
			t.Fatalf("representative session reads the person's own log: %v", err)
		}

		// A professional, even with a relationship, and an officer asking
		// for one patient's view, are refused.
		if _, err := f.d.DecideLogRead(f.ctx, doc, LogScope{PatientID: own}); !IsDenied(err) {
			t.Fatalf("professional reads a patient's log: %v", err)
		}
		if _, err := f.d.DecideLogRead(f.ctx, doc, LogScope{}); !IsDenied(err) {
			t.Fatalf("professional reads the tenant's log: %v", err)
		}
		if _, err := f.d.DecideLogRead(f.ctx, officerA, LogScope{PatientID: own}); !IsDenied(err) {
			t.Fatalf("officer takes a person's permit: %v", err)
		}

		// The officer of tenant B gets nothing of tenant A.
		pb, err := f.d.DecideLogRead(f.ctx, officerB, LogScope{})
		if err != nil || pb.TenantID() != f.tenantB || pb.PatientID() != "" {
			t.Fatalf("officer B: %+v %v", pb, err)
		}
		evs, err = read(officerB, pb, audit.Search{})
		if err != nil || len(evs) == 0 {
			t.Fatalf("officer B's log: %+v %v", evs, err)
		}
		for _, e := range evs {
			if e.TenantID != f.tenantB {
				t.Fatalf("officer B sees tenant %s: %+v", e.TenantID, e)
			}
		}
		if _, err := read(officerB, pb, audit.Search{TenantID: f.tenantA}); !errors.Is(err, audit.ErrScope) {
			t.Fatalf("officer B asks for tenant A: %v", err)
		}
		if evs, err := read(officerB, pb, audit.Search{PatientID: own}); err != nil || len(evs) != 0 {
			t.Fatalf("officer B finds A's patient: %+v %v", evs, err)
		}
		pa, err := f.d.DecideLogRead(f.ctx, officerA, LogScope{})
		if err != nil {
			t.Fatal(err)
		}
		// (the doctor's read and the person's refused attempt)
		if evs, err := read(officerA, pa, audit.Search{PatientID: other}); err != nil || len(evs) != 2 || evs[0].TenantID != f.tenantA || evs[1].TenantID != f.tenantA {
			t.Fatalf("officer A's search of one patient: %+v %v", evs, err)
		}
		// The officer's reading of one patient names that patient in the log.
		logged, err := f.log.Query(f.ctx, audit.Filter{TenantID: f.tenantA, UserID: officerA.AccountID(), PatientID: other, Action: audit.ActionLogRead})
		if err != nil || len(logged) != 1 || logged[0].Query != "test" || logged[0].Outcome != audit.OutcomeSuccess {
			t.Fatalf("officer A's reading: %+v %v", logged, err)
		}
		// A zero permit reads nothing.
		if _, err := read(person, audit.Permit{}, audit.Search{TenantID: f.tenantA}); !errors.Is(err, audit.ErrScope) {
			t.Fatalf("zero permit: %v", err)
		}
	})
}
