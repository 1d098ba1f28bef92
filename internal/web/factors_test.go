package web

import (
	"net/http"
	"strings"
	"testing"

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
