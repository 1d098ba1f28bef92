package web

import (
	"crypto/rand"
	"encoding/json"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
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
	html := renderPage(t, "melog", &logData{Lines: audit.PatientView(evs, audit.ViewOptions{Location: clock.Amsterdam()})})
	if !strings.Contains(visibleWords(html), "3× op 10-06-2026 tussen 08:00 en 10:00") {
		t.Error("page lacks the merged line's count and times in words")
	}
	for _, want := range []string{`id="access-log"`, "behandelrelatie", "noodtoegang", "bewusteloos", "Praktijk Noord"} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(html, "Verborgen") || strings.Contains(html, "rel-1") {
		t.Fatal("employee name or rule id shown by default")
	}
	named := renderPage(t, "melog", &logData{ShowNames: true, Lines: audit.PatientView(evs, audit.ViewOptions{Location: clock.Amsterdam(), ShowNames: true})})
	if !strings.Contains(named, "Dr. Verborgen") {
		t.Fatal("names not shown on request")
	}
}

// The security officer's search page offers period and emergency filters
// and export links in the three formats carrying the same filter.
// REQ: LOG-5
func TestAuditPageOffersFiltersAndExports(t *testing.T) {
	html := renderPage(t, "audit", &auditData{Searched: true, AnyEmergency: true, Patient: "p-1", Emergency: "yes", From: "2026-06-01",
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

// Over HTTP with real sessions: the security officer searches by patient
// and emergency and downloads the export as FHIR and NDJSON, each logged
// first; a person's log page merges the doctor's reads of a day and hides
// the name; other roles cannot open the officer's page.
// REQ: LOG-4, LOG-5
func TestAuditPagesOverHTTP(t *testing.T) {
	e := newPageEnv(t)
	tenant := e.tenant("Praktijk A")
	officer := e.login(tenant, identity.KindAdmin, access.RoleSecurityOfficer)
	admin := e.login(tenant, identity.KindAdmin, access.RoleAppAdmin)
	person := e.login(tenant, identity.KindPerson, access.RolePerson)
	pid, err := e.ids.NewID("p-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ids.CreatePatient(e.ctx, e.db, pid, tenant, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.ids.LinkPerson(e.ctx, person.subj.AccountID(), pid); err != nil {
		t.Fatal(err)
	}
	lg := audit.New(e.db, e.clock, rand.Reader)
	t.Cleanup(func() { lg.Close() })
	read := func(user, name string, emergency bool) audit.Event {
		ev := audit.Event{Action: audit.ActionRead, Outcome: audit.OutcomeSuccess, TenantID: tenant, Organisation: "Praktijk A",
			UserID: user, UserName: name, Role: "professional", Basis: "care-relationship:rel-1", PatientID: pid,
			Resources: []string{"Patient/" + pid}}
		if emergency {
			ev.Basis, ev.Emergency, ev.EmergencyReason = "emergency:em-1", true, "bewusteloos"
		}
		return ev
	}
	if _, err := lg.Append(e.ctx, read("a-1", "Dr. Gewoon", false), read("a-1", "Dr. Gewoon", false), read("a-2", "Dr. Nood", true)); err != nil {
		t.Fatal(err)
	}

	code, html := e.page(officer, "/security/audit?search=1&patient="+pid+"&emergency=yes", nil, false)
	if code != http.StatusOK || !strings.Contains(html, "Dr. Nood") || strings.Contains(html, "Dr. Gewoon") || !strings.Contains(html, `id="export-fhir"`) {
		t.Fatalf("officer search: %d", code)
	}
	code, body := e.page(officer, "/security/audit/export?patient="+pid+"&format=fhir", nil, false)
	var b struct {
		ResourceType, Type string
		Entry              []struct {
			Resource struct{ ResourceType, Action string }
		}
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &b) != nil || b.ResourceType != "Bundle" || len(b.Entry) < 3 {
		t.Fatalf("fhir export: %d %.300s", code, body)
	}
	for _, en := range b.Entry {
		if en.Resource.ResourceType != "AuditEvent" || en.Resource.Action == "" {
			t.Fatalf("entry: %+v", en)
		}
	}
	code, body = e.page(officer, "/security/audit/export?patient="+pid+"&emergency=yes&format=ndjson", nil, false)
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if code != http.StatusOK || len(lines) != 1 || !strings.Contains(lines[0], `"BTG"`) {
		t.Fatalf("ndjson export: %d %q", code, body)
	}
	if code, _ := e.page(officer, "/security/audit/export?format=xml", nil, false); code != http.StatusBadRequest {
		t.Fatalf("bad format: %d", code)
	}
	logged, err := lg.Query(e.ctx, audit.Filter{TenantID: tenant, UserID: officer.subj.AccountID(), Action: audit.ActionLogRead})
	if err != nil {
		t.Fatal(err)
	}
	exports := 0
	for _, ev := range logged {
		if strings.Contains(ev.Query, "export=fhir") || strings.Contains(ev.Query, "export=ndjson") {
			exports++
		}
	}
	if len(logged) < 3 || exports != 2 {
		t.Fatalf("officer's searches and exports in the log: %d, %d exports", len(logged), exports)
	}
	if code, _ := e.page(admin, "/security/audit?search=1", nil, false); code != http.StatusForbidden {
		t.Fatalf("admin on the officer's page: %d", code)
	}

	code, html = e.page(person, "/me/log", nil, false)
	if code != http.StatusOK || !strings.Contains(visibleWords(html), "2× op "+e.clock.Now().In(clock.Amsterdam()).Format("02-01-2006 om 15:04")) || strings.Contains(html, "Dr. Gewoon") || !strings.Contains(html, "bewusteloos") {
		t.Fatalf("person's log page: %d", code)
	}
	if code, html = e.page(person, "/me/log?names=1", nil, false); code != http.StatusOK || !strings.Contains(html, "Dr. Gewoon") {
		t.Fatalf("names on request: %d", code)
	}
}

// REQ: LOG-1, LOG-5
// The officer's log pages refuse anyone else as before, and the refusal is
// in the access log as a refused log read.
func TestAuditPageRefusalIsLogged(t *testing.T) {
	e := newPageEnv(t)
	tenant := e.tenant("Praktijk A")
	admin := e.login(tenant, identity.KindAdmin, access.RoleAppAdmin)
	for _, path := range []string{"/security/audit?search=1", "/security/audit/export?format=json"} {
		if code, _ := e.page(admin, path, nil, false); code != http.StatusForbidden {
			t.Fatalf("admin on %s: %d", path, code)
		}
	}
	evs, err := e.log.Query(e.ctx, audit.Filter{TenantID: tenant, UserID: admin.subj.AccountID(), Action: audit.ActionLogRead})
	if err != nil || len(evs) != 2 || evs[0].Outcome != audit.OutcomeDenied || evs[1].Outcome != audit.OutcomeDenied {
		t.Fatalf("refusals in the log: %+v %v", evs, err)
	}
}
