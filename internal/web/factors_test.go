package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

// REQ: AUTH-2 — the factors page names each authenticator app in words, in
// the order they were added, never by its id, which only the remove form
// carries.
func TestFactorsNamedNotByID(t *testing.T) {
	html := renderPage(t, "factors", &factorsData{TOTP: []totpLine{{ID: "totp-dff3a1", N: 1}, {ID: "totp-77b2c9", N: 2}}})
	words := visibleWords(html)
	if !strings.Contains(words, "Authenticator-app 1") || !strings.Contains(words, "Authenticator-app 2") {
		t.Fatalf("factors not named: %s", words)
	}
	if strings.Contains(words, "totp-") {
		t.Fatalf("a factor's id is shown: %s", words)
	}
	if !strings.Contains(html, `name="id" value="totp-77b2c9"`) {
		t.Fatal("the remove form lost the factor's id")
	}
}

// REQ: LOG-4 — the person's log has its emergency column only when a line
// used emergency access.
func TestMeLogEmergencyColumnOnlyWithEmergency(t *testing.T) {
	plain := audit.PatientLine{Count: 1, Action: audit.ActionRead, Outcome: audit.OutcomeSuccess, Role: "professional", Basis: "care-relationship"}
	html := renderPage(t, "melog", &logData{Lines: []audit.PatientLine{plain}})
	if strings.Contains(html, ">Noodtoegang</th>") || strings.Contains(html, `data-label="Noodtoegang"`) {
		t.Fatal("emergency column without an emergency line")
	}
	em := plain
	em.Emergency, em.Basis = true, "emergency"
	html = renderPage(t, "melog", &logData{Lines: []audit.PatientLine{plain, em}})
	if !strings.Contains(html, ">Noodtoegang</th>") || strings.Count(html, `class="tag-emergency"`) != 1 {
		t.Fatal("emergency column or mark missing")
	}
}

// REQ: AZ-6, LOG-9 — the officer's security events name the account by its
// name, not its id, and an operator's refused reach for health data says
// the action and the refusal in Dutch.
func TestSecurityEventsInWords(t *testing.T) {
	e := newPageEnv(t)
	tenant := e.tenant("Praktijk A")
	officer := e.login(tenant, identity.KindAdmin, access.RoleSecurityOfficer)
	op := e.login("", identity.KindOperator, access.RoleOperator)
	if _, err := e.ids.CreatePatient(e.ctx, e.db, "p-1", tenant, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dec.Decide(e.ctx, op.subj, access.Request{PatientID: "p-1", Action: access.Read}); !access.IsDenied(err) {
		t.Fatalf("operator's read: %v; want a refusal", err)
	}
	code, html := e.page(officer, "/security/events", nil, false)
	words := visibleWords(html)
	if code != http.StatusOK || !strings.Contains(words, "Name operator-") || strings.Contains(words, op.subj.AccountID()) ||
		!strings.Contains(words, "ingezien: operators komen alleen bij gezondheidsgegevens via een goedgekeurd operatorverzoek") {
		t.Fatalf("security events: %d %s", code, words)
	}
}

// REQ: AZ-5, AZ-6 — the officer's emergency queue and operator requests name
// the patient (by the person account) instead of showing the id, and lead to
// the patient's lines in the log.
func TestOfficerQueuesNamePatients(t *testing.T) {
	e := newPageEnv(t)
	tenant := e.tenant("Praktijk A")
	officer := e.login(tenant, identity.KindAdmin, access.RoleSecurityOfficer)
	gp := e.login(tenant, identity.KindProfessional, access.RoleProfessional)
	op := e.login("", identity.KindOperator, access.RoleOperator)
	const pid = "p-sanne"
	if _, err := e.ids.CreatePatient(e.ctx, e.db, pid, tenant, nil); err != nil {
		t.Fatal(err)
	}
	sanne, err := e.ids.CreateAccount(e.ctx, identity.Account{TenantID: tenant, Kind: identity.KindPerson, Username: "s.devries", DisplayName: "Sanne de Vries", RegistrationMethod: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ids.LinkPerson(e.ctx, sanne.ID, pid); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dec.DeclareEmergency(e.ctx, gp.subj, pid, "Bewusteloos binnengebracht op de SEH"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dec.RequestOperatorAccess(e.ctx, op.subj, access.OperatorRequest{TenantID: tenant, PatientIDs: []string{pid},
		Categories: []string{"demographics"}, Reason: "herstel na mislukte import", Duration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/security/emergencies", "/security/operator-requests"} {
		code, html := e.page(officer, path, nil, false)
		words := visibleWords(html)
		if code != http.StatusOK || !strings.Contains(words, "Sanne de Vries") || strings.Contains(words, pid) || strings.Contains(words, op.subj.AccountID()) {
			t.Errorf("%s: %d %s", path, code, words)
		}
		if !strings.Contains(html, `href="/security/audit?search=1&amp;patient=`+pid+`"`) {
			t.Errorf("%s does not lead to the patient's lines", path)
		}
	}
}
