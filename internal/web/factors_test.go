package web

import (
	"strings"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/audit"
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
