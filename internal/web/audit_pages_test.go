package web

import (
	"html/template"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
)

func renderPage(t *testing.T, name string, data any) string {
	t.Helper()
	s := &server{d: Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, pages: map[string]*template.Template{}}
	if err := s.parse(); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.render(rec, httptest.NewRequest("GET", "/", nil), 200, name, view{Lang: "nl", CSRF: "x", Title: "log.title", Data: data})
	if rec.Code != 200 {
		t.Fatalf("render %s: %d %s", name, rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// The portal page shows the shared patient view: similar reads of one day
// as one line with their count, the basis and emergency use, no employee
// name unless asked.
// REQ: LOG-4
func TestMeLogPageMergesAndHidesNames(t *testing.T) {
	at := time.Date(2026, 6, 10, 8, 0, 0, 0, time.UTC)
	var evs []audit.Event
	for i := range 3 {
		evs = append(evs, audit.Event{ID: "e" + string(rune('a'+i)), Time: at.Add(-time.Duration(i) * time.Hour), Action: audit.ActionRead,
			Outcome: audit.OutcomeSuccess, Organisation: "Praktijk Noord", UserID: "a-1", UserName: "Dr. Verborgen", Role: "professional",
			Basis: "care-relationship:rel-1", PatientID: "p-1", Resources: []string{"Observation/o-1"}})
	}
	evs = append(evs, audit.Event{ID: "ez", Time: at.Add(-5 * time.Hour), Action: audit.ActionRead, Outcome: audit.OutcomeSuccess,
		Organisation: "Praktijk Noord", UserID: "a-2", UserName: "Dr. Nood", Role: "professional", Basis: "emergency:em-1",
		Emergency: true, EmergencyReason: "bewusteloos", PatientID: "p-1"})
	html := renderPage(t, "melog", &logData{Lines: audit.PatientView(evs, audit.ViewOptions{Location: amsterdam})})
	for _, want := range []string{`id="access-log"`, "3 keer", "behandelrelatie", "noodtoegang", "bewusteloos", "Praktijk Noord"} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(html, "Verborgen") || strings.Contains(html, "rel-1") {
		t.Fatal("employee name or rule id shown by default")
	}
	named := renderPage(t, "melog", &logData{ShowNames: true, Lines: audit.PatientView(evs, audit.ViewOptions{Location: amsterdam, ShowNames: true})})
	if !strings.Contains(named, "Dr. Verborgen") {
		t.Fatal("names not shown on request")
	}
}

// The security officer's search page offers period and emergency filters
// and export links in the three formats carrying the same filter.
// REQ: LOG-5
func TestAuditPageOffersFiltersAndExports(t *testing.T) {
	html := renderPage(t, "audit", &auditData{Searched: true, Patient: "p-1", Emergency: "yes", From: "2026-06-01",
		Query: "emergency=yes&from=2026-06-01&patient=p-1", Actions: []audit.Action{audit.ActionRead}, Next: "abc",
		Events: []audit.Event{{ID: "e1", Time: time.Date(2026, 6, 2, 9, 0, 0, 0, time.UTC), Action: audit.ActionRead, Outcome: audit.OutcomeSuccess,
			UserName: "Dr. Zichtbaar", Role: "professional", PatientID: "p-1", Emergency: true, EmergencyReason: "bewusteloos"}}})
	for _, want := range []string{`name="from"`, `name="to"`, `name="emergency"`, `value="yes" selected`, `name="action"`,
		`href="/security/audit/export?emergency=yes&amp;from=2026-06-01&amp;patient=p-1&amp;format=fhir"`,
		`href="/security/audit/export?emergency=yes&amp;from=2026-06-01&amp;patient=p-1&amp;format=ndjson"`,
		`href="/security/audit/export?emergency=yes&amp;from=2026-06-01&amp;patient=p-1&amp;format=json"`,
		`after=abc`, "Dr. Zichtbaar", "bewusteloos", `class="emergency-line"`} {
		if !strings.Contains(html, want) {
			t.Errorf("audit page lacks %s", want)
		}
	}
}
