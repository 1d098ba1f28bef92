package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

// REQ: LOG-5, DP-1 — the security officer's log search, emergency queue and
// operator-request queue name a patient who has no portal account by the
// name record keeps with the record ("J. de Vries (1984)"), never by id; each
// queue's naming is covered by a log-read event naming the patient; after the
// patient is crypto-shredded the name is gone ("patiënt zonder naam").
func TestOfficerPagesNamePatientsWithoutAccount(t *testing.T) {
	e := newPageEnv(t, func(d *Deps) { d.Index = testIndex{} })
	tenant := e.tenant("Praktijk A")
	officer := e.login(tenant, identity.KindAdmin, access.RoleSecurityOfficer)
	gp := e.login(tenant, identity.KindProfessional, access.RoleProfessional)
	op := e.login("", identity.KindOperator, access.RoleOperator)
	pid := e.registerPatient(gp, "Jan de Vries", "male", "1984-03-12", "123456782")
	if _, err := e.dec.DeclareEmergency(e.ctx, gp.subj, pid, "Bewusteloos binnengebracht op de SEH"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dec.RequestOperatorAccess(e.ctx, op.subj, access.OperatorRequest{TenantID: tenant, PatientIDs: []string{pid},
		Categories: []string{fhir.CategoryDemographics}, Reason: "herstel na mislukte import", Duration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	const name = "J. de Vries (1984)"
	search := "/security/audit?search=1&user=" + strings.TrimPrefix(gp.subj.Name(), "Name ") // the user name
	pages := []string{search, "/security/emergencies", "/security/operator-requests"}
	for _, path := range pages {
		code, html := e.page(officer, path, nil, false)
		words := visibleWords(html)
		if code != http.StatusOK || !strings.Contains(words, name) || strings.Contains(words, "zonder naam") || strings.Contains(words, pid) {
			t.Fatalf("%s: %d %s", path, code, words)
		}
	}
	if _, html := e.request(officer, search+"&lang=en", nil); !strings.Contains(visibleWords(html), name) {
		t.Error("the English page does not name the patient")
	}
	// The queues' names were shown under log readings naming the patient.
	reads, err := e.log.Query(e.ctx, audit.Filter{TenantID: tenant, UserID: officer.subj.AccountID(), Action: audit.ActionLogRead})
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, r := range reads {
		if r.PatientID == pid && strings.HasSuffix(r.Query, "?names=1") {
			covered[strings.TrimSuffix(r.Query, "?names=1")] = true
		}
	}
	if !covered["/security/emergencies"] || !covered["/security/operator-requests"] {
		t.Fatalf("the queues' names are not covered by log-read events: %+v", reads)
	}

	if err := e.kit.Keys.Shred(e.ctx, tenant, pid); err != nil {
		t.Fatal(err)
	}
	for _, path := range pages {
		code, html := e.page(officer, path, nil, false)
		words := visibleWords(html)
		if code != http.StatusOK || strings.Contains(words, "de Vries") || !strings.Contains(words, "patiënt zonder naam") {
			t.Fatalf("%s after shredding: %d %s", path, code, words)
		}
	}
}

// REQ: LOG-5 — a patient with a person account is still named by the
// account's name; the officer's pages stay closed to a professional and a
// person, so no name reaches them through the officer's pages.
func TestOfficerPagesNamesOnlyForTheOfficer(t *testing.T) {
	e := newPageEnv(t, func(d *Deps) { d.Index = testIndex{} })
	tenant := e.tenant("Praktijk A")
	officer := e.login(tenant, identity.KindAdmin, access.RoleSecurityOfficer)
	gp := e.login(tenant, identity.KindProfessional, access.RoleProfessional)
	person := e.login(tenant, identity.KindPerson, access.RolePerson)
	pid := e.registerPatient(gp, "Sanne Bakker", "female", "1990-05-01", "123456782")
	if err := e.ids.LinkPerson(e.ctx, person.subj.AccountID(), pid); err != nil {
		t.Fatal(err)
	}
	code, html := e.page(officer, "/security/audit?search=1&patient="+pid, nil, false)
	if words := visibleWords(html); code != http.StatusOK || !strings.Contains(words, "Regels over "+person.subj.Name()) {
		t.Fatalf("the account's name: %d %s", code, words)
	}
	for _, u := range []pageUser{gp, person} {
		for _, path := range []string{"/security/audit?search=1&patient=" + pid, "/security/emergencies", "/security/operator-requests"} {
			code, html := e.page(u, path, nil, false)
			if code != http.StatusForbidden || strings.Contains(html, "Bakker") {
				t.Errorf("%s opens %s: %d", u.subj.Role(), path, code)
			}
		}
	}
}
