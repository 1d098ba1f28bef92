package router_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// auditEventJSON is what the tests read of an AuditEvent.
type auditEventJSON struct {
	ResourceType string
	ID           string
	Meta         *struct{ Profile []string }
	Type         struct{ System, Code string }
	Subtype      []struct{ System, Code string }
	Action       string
	Outcome      string
	Period       *struct{ Start, End string }
	Extension    []struct {
		URL          string
		ValueInteger int
	}
	PurposeOfEvent []struct {
		Coding []struct{ System, Code string }
	}
	Agent []struct {
		Type struct {
			Coding []struct{ System, Code string }
		}
		Role []struct {
			Coding []struct{ System, Code string }
		}
		Name string
		Who  *struct {
			Display    string
			Identifier *struct{ Value string }
		}
		Policy []string
	}
	Entity []struct {
		What *struct{ Reference string }
		Role *struct{ System, Code string }
	}
}

func (a auditEventJSON) purpose(code string) bool {
	for _, p := range a.PurposeOfEvent {
		for _, c := range p.Coding {
			if c.Code == code {
				return true
			}
		}
	}
	return false
}

func (a auditEventJSON) patient() string {
	for _, en := range a.Entity {
		if en.Role != nil && en.Role.Code == "1" && en.What != nil {
			return en.What.Reference
		}
	}
	return ""
}

func (a auditEventJSON) merged() int {
	for _, x := range a.Extension {
		if x.URL == audit.ExtMerged {
			return x.ValueInteger
		}
	}
	return 0
}

func auditEventsOf(t *testing.T, b []byte) []auditEventJSON {
	t.Helper()
	var out []auditEventJSON
	for _, e := range parseBundle(t, b).Entry {
		var ae auditEventJSON
		if err := json.Unmarshal(e.Resource, &ae); err != nil {
			t.Fatal(err)
		}
		if ae.ResourceType == "AuditEvent" {
			out = append(out, ae)
		}
	}
	return out
}

type auditPageJSON struct {
	Events []audit.Event
	Count  int
	Next   string
}

// The security officer searches the access log by patient, user, period,
// action and emergency, pages through it, and exports it as a FHIR Bundle
// of BALP AuditEvents and as NDJSON; each search and export is itself in
// the log. A patient sees the log of their own record, names hidden and
// similar lines merged, emergency access marked, and is refused another
// patient's log (logged). Professionals, admins and persons are refused the
// inspection API.
// REQ: LOG-1, LOG-4, LOG-5, LOG-9
func TestAuditInspectionAndPatientView(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newAccessEnv(t, db)
		officer := e.login(e.tenantA, access.RoleSecurityOfficer)
		admin := e.login(e.tenantA, access.RoleAppAdmin)
		p, obs := e.patient(e.tenantA)
		p2, _ := e.patient(e.tenantA)
		pB, _ := e.patient(e.tenantB)
		doc := e.login(e.tenantA, access.RoleProfessional)
		if _, err := e.dec.AddRelationship(e.ctx, access.Relationship{TenantID: e.tenantA, ProfessionalID: doc.id, PatientID: p, Kind: "gp",
			Start: e.clock.Now().Add(-time.Minute), RecordedBy: "test"}); err != nil {
			t.Fatal(err)
		}
		person := e.login(e.tenantA, access.RolePerson)
		if err := e.ids.LinkPerson(e.ctx, person.id, p); err != nil {
			t.Fatal(err)
		}
		// Four reads of one day by one doctor become one line for the patient.
		for range 3 {
			if c := e.readPatient(doc, p); c != http.StatusOK {
				t.Fatalf("read: %d", c)
			}
			e.clock.Advance(time.Second)
		}
		if resp, b := e.do(doc, "GET", "/fhir/Observation/"+obs, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("read observation: %d %s", resp.StatusCode, b)
		}
		medic := e.login(e.tenantA, access.RoleProfessional)
		e.expect(medic, "POST", "/api/v1/emergencies", js(map[string]any{"patient_id": p, "reason": "unconscious at the desk"}), http.StatusCreated)
		if c := e.readPatient(medic, p); c != http.StatusOK {
			t.Fatalf("emergency read: %d", c)
		}

		t.Run("patient view", func(t *testing.T) {
			e.t = t
			resp, b := e.do(person, "GET", "/fhir/AuditEvent?patient=Patient/"+p, "")
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/fhir+json") {
				t.Fatalf("own log: %d %s", resp.StatusCode, b)
			}
			for _, name := range []string{doc.subj.Name(), medic.subj.Name(), doc.id, medic.id} {
				if bytes.Contains(b, []byte(name)) {
					t.Fatalf("employee %q visible by default: %s", name, b)
				}
			}
			evs := auditEventsOf(t, b)
			var reads, emergencyReads, declarations int
			for _, ae := range evs {
				if ae.patient() != "Patient/"+p {
					t.Fatalf("line of another patient: %+v", ae)
				}
				if ae.Period == nil || ae.merged() < 1 {
					t.Fatalf("line without period or count: %+v", ae)
				}
				switch {
				case ae.Type.Code == "rest" && ae.Subtype[0].Code == "read" && !ae.purpose("BTG") && ae.merged() == 4:
					reads++
					if len(ae.Agent) == 0 || len(ae.Agent[0].Policy) != 1 || ae.Agent[0].Policy[0] != "care-relationship" {
						t.Fatalf("basis of the read line: %+v", ae.Agent)
					}
				case ae.Type.Code == "rest" && ae.purpose("BTG") && ae.purpose("ETREAT"):
					emergencyReads++
				case ae.Type.Code == "110113":
					declarations++
				}
			}
			if reads != 1 || emergencyReads != 1 || declarations != 1 {
				t.Fatalf("want one merged read line (4 reads), one emergency read, one declaration; got %d, %d, %d of %d lines", reads, emergencyReads, declarations, len(evs))
			}
			resp, b = e.do(person, "GET", "/fhir/AuditEvent?patient="+p+"&employee-names=true", "")
			if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(doc.subj.Name())) {
				t.Fatalf("names on request: %d %s", resp.StatusCode, b)
			}
			// The person's own reading of the log is logged, with the basis.
			evsLog, err := e.log.Query(e.ctx, audit.Filter{TenantID: e.tenantA, PatientID: p, UserID: person.id, Action: audit.ActionLogRead, Limit: 10})
			if err != nil || len(evsLog) != 2 || evsLog[0].Basis != string(access.BasisOwnData) {
				t.Fatalf("log reads of the person: %+v %v", evsLog, err)
			}
			// No IDOR: another patient of the same tenant, or of another one.
			for _, other := range []string{p2, pB, "does-not-exist"} {
				resp, b := e.do(person, "GET", "/fhir/AuditEvent?patient="+other, "")
				if resp.StatusCode != http.StatusForbidden || !isOutcome(b, "") || bytes.Contains(b, []byte("AuditEvent\"")) {
					t.Fatalf("other patient %s: %d %s", other, resp.StatusCode, b)
				}
			}
			denied, err := e.log.Query(e.ctx, audit.Filter{TenantID: e.tenantA, PatientID: p2, UserID: person.id, Limit: 10})
			if err != nil || len(denied) != 1 || denied[0].Outcome != audit.OutcomeDenied {
				t.Fatalf("refusal not logged: %+v %v", denied, err)
			}
			for path, code := range map[string]int{
				"/fhir/AuditEvent":                            http.StatusBadRequest,
				"/fhir/AuditEvent?patient=" + p + "&user=x":   http.StatusBadRequest,
				"/fhir/AuditEvent?patient=" + p + "&date=xx":  http.StatusBadRequest,
				"/fhir/AuditEvent?patient=" + p + "&date=ge2": http.StatusBadRequest,
			} {
				if resp, b := e.do(person, "GET", path, ""); resp.StatusCode != code || !isOutcome(b, "") {
					t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
				}
			}
			// A period that ends before today shows nothing.
			yesterday := e.clock.Now().In(clock.Amsterdam()).AddDate(0, 0, -1).Format("2006-01-02")
			resp, b = e.do(person, "GET", "/fhir/AuditEvent?patient="+p+"&date=le"+yesterday, "")
			if resp.StatusCode != http.StatusOK || len(auditEventsOf(t, b)) != 0 {
				t.Fatalf("period filter: %d %s", resp.StatusCode, b)
			}
			// Staff do not use the person's view.
			for _, u := range []user{officer, doc} {
				if resp, b := e.do(u, "GET", "/fhir/AuditEvent?patient="+p, ""); resp.StatusCode != http.StatusForbidden || !isOutcome(b, "") {
					t.Fatalf("%s on the person's view: %d %s", u.subj.Role(), resp.StatusCode, b)
				}
			}
		})

		t.Run("officer search", func(t *testing.T) {
			e.t = t
			get := func(path string) auditPageJSON {
				t.Helper()
				resp, b := e.do(officer, "GET", path, "")
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
				}
				var pg auditPageJSON
				if err := json.Unmarshal(b, &pg); err != nil {
					t.Fatal(err)
				}
				return pg
			}
			pg := get("/api/v1/audit?patient=" + p + "&user=" + doc.id + "&action=read")
			if pg.Count != 4 {
				t.Fatalf("doctor's reads of p: %d", pg.Count)
			}
			for _, ev := range pg.Events {
				if ev.PatientID != p || ev.UserID != doc.id || ev.Action != audit.ActionRead || ev.UserName != doc.subj.Name() {
					t.Fatalf("filter: %+v", ev)
				}
			}
			em := get("/api/v1/audit?patient=" + p + "&emergency=true")
			if em.Count != 2 {
				t.Fatalf("emergency events (declaration + read): %+v", em.Events)
			}
			for _, ev := range em.Events {
				if !ev.Emergency || ev.EmergencyReason != "unconscious at the desk" {
					t.Fatalf("emergency filter: %+v", ev)
				}
			}
			today := e.clock.Now().In(clock.Amsterdam()).Format("2006-01-02")
			tomorrow := e.clock.Now().In(clock.Amsterdam()).AddDate(0, 0, 1).Format("2006-01-02")
			if n := get("/api/v1/audit?patient=" + p + "&from=" + today + "&to=" + today).Count; n < 7 {
				t.Fatalf("today's events of p: %d", n)
			}
			if n := get("/api/v1/audit?patient=" + p + "&from=" + tomorrow).Count; n != 0 {
				t.Fatalf("events from tomorrow: %d", n)
			}
			// Paging: every event once, and none of those there before the
			// first page missed (newer ones, like the log lines of the paging
			// itself, land before the cursor).
			before := get("/api/v1/audit?patient=" + p + "&limit=1000")
			seen := map[string]bool{}
			next := "/api/v1/audit?patient=" + p + "&limit=2"
			for pages := 0; next != "" && pages < 50; pages++ {
				pg := get(strings.TrimPrefix(next, "https://localhost"))
				if pg.Count > 2 {
					t.Fatalf("page size %d", pg.Count)
				}
				for _, ev := range pg.Events {
					if seen[ev.ID] {
						t.Fatalf("event %s twice", ev.ID)
					}
					seen[ev.ID] = true
				}
				next = pg.Next
			}
			for _, ev := range before.Events {
				if !seen[ev.ID] {
					t.Fatalf("paging missed %+v", ev)
				}
			}
			for _, bad := range []string{"?patient=" + p + "&bogus=1", "?action=steal", "?limit=0", "?limit=1001", "?emergency=maybe",
				"?from=yesterday", "?after=nonsense", "?patient=a%20b", "?from=" + tomorrow + "&to=" + today} {
				resp, b := e.do(officer, "GET", "/api/v1/audit"+bad, "")
				if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
					t.Fatalf("%s: %d %s", bad, resp.StatusCode, b)
				}
			}
			// Everyone else is refused, as problem JSON.
			for _, u := range []user{doc, admin, person} {
				for _, path := range []string{"/api/v1/audit", "/api/v1/audit/export"} {
					resp, b := e.do(u, "GET", path, "")
					if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
						t.Fatalf("%s %s: %d %s", u.subj.Role(), path, resp.StatusCode, b)
					}
				}
			}
			if resp, _ := e.do(user{}, "GET", "/api/v1/audit", ""); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("anonymous: %d", resp.StatusCode)
			}
		})

		t.Run("officer export", func(t *testing.T) {
			e.t = t
			resp, b := e.do(officer, "GET", "/api/v1/audit/export?format=fhir&patient="+p, "")
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/fhir+json") {
				t.Fatalf("export: %d %s", resp.StatusCode, b)
			}
			bundle := parseBundle(t, b)
			if bundle.Type != "collection" || len(bundle.Entry) < 7 {
				t.Fatalf("bundle: %s %d entries", bundle.Type, len(bundle.Entry))
			}
			evs := auditEventsOf(t, b)
			var patientReads, breakGlass int
			for _, ae := range evs {
				if ae.patient() != "Patient/"+p {
					t.Fatalf("export of p holds %+v", ae)
				}
				if ae.Action == "R" && ae.Outcome == "0" && ae.Meta != nil && len(ae.Meta.Profile) == 1 &&
					ae.Meta.Profile[0] == "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead" {
					patientReads++
				}
				if ae.Type.Code == "110113" && ae.purpose("BTG") {
					breakGlass++
				}
			}
			if patientReads < 5 || breakGlass != 1 {
				t.Fatalf("BALP codes: %d PatientRead, %d break-the-glass in %s", patientReads, breakGlass, b)
			}

			// Bounded: a part of 3 with a next link, in the header and the Bundle.
			resp, b = e.do(officer, "GET", "/api/v1/audit/export?patient="+p+"&limit=3", "")
			link := resp.Header.Get("Link")
			bundle = parseBundle(t, b)
			if resp.StatusCode != http.StatusOK || len(bundle.Entry) != 3 || !strings.Contains(link, `rel="next"`) {
				t.Fatalf("bounded export: %d %d entries, Link %q", resp.StatusCode, len(bundle.Entry), link)
			}
			nextURL := ""
			for _, l := range bundle.Link {
				if l.Relation == "next" {
					nextURL = l.URL
				}
			}
			u, err := url.Parse(nextURL)
			if err != nil || !strings.Contains(link, nextURL) {
				t.Fatalf("next link %q vs header %q", nextURL, link)
			}
			resp, b = e.do(officer, "GET", u.RequestURI(), "")
			if second := parseBundle(t, b); resp.StatusCode != http.StatusOK || len(second.Entry) != 3 || second.Entry[0].FullURL == bundle.Entry[0].FullURL {
				t.Fatalf("second part: %d %s", resp.StatusCode, b)
			}

			resp, b = e.do(officer, "GET", "/api/v1/audit/export?format=ndjson&emergency=true", "")
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("ndjson: %d %s", resp.StatusCode, b)
			}
			lines := 0
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				var ae auditEventJSON
				if err := json.Unmarshal(sc.Bytes(), &ae); err != nil || ae.ResourceType != "AuditEvent" || !ae.purpose("BTG") {
					t.Fatalf("ndjson line %q: %v", sc.Text(), err)
				}
				lines++
			}
			if lines != 2 {
				t.Fatalf("ndjson: %d emergency lines", lines)
			}
			if resp, b := e.do(officer, "GET", "/api/v1/audit/export?format=csv", ""); resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("format csv: %d %s", resp.StatusCode, b)
			}

			// Each export is in the log, with what was asked.
			pg := auditPageJSON{}
			resp, b = e.do(officer, "GET", "/api/v1/audit?user="+officer.id+"&action=log-read&limit=1000", "")
			if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &pg) != nil {
				t.Fatalf("log of the log: %d %s", resp.StatusCode, b)
			}
			var fhirExports, ndjsonExports int
			for _, ev := range pg.Events {
				if strings.HasPrefix(ev.Query, "/api/v1/audit/export?") {
					switch {
					case strings.Contains(ev.Query, "format=fhir"):
						fhirExports++
					case strings.Contains(ev.Query, "format=ndjson") && strings.Contains(ev.Query, "emergency=true"):
						ndjsonExports++
					}
				}
				if ev.Role != string(access.RoleSecurityOfficer) || ev.Purpose != "HOPERAT" {
					t.Fatalf("log-read event: %+v", ev)
				}
			}
			if fhirExports != 3 || ndjsonExports != 1 {
				t.Fatalf("exports logged: %d fhir, %d ndjson", fhirExports, ndjsonExports)
			}
		})

		t.Run("representative", func(t *testing.T) {
			e.t = t
			child, _ := e.patient(e.tenantA)
			parent := e.login(e.tenantA, access.RolePerson)
			if err := e.ids.LinkPerson(e.ctx, parent.id, p2); err != nil {
				t.Fatal(err)
			}
			if resp, b := e.do(parent, "GET", "/fhir/AuditEvent?patient="+child, ""); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("before representation: %d %s", resp.StatusCode, b)
			}
			e.expect(admin, "POST", "/api/v1/representations", js(map[string]any{"representative_id": parent.id, "patient_id": child,
				"kind": "parent", "patient_birth_date": e.clock.Now().AddDate(-8, 0, 0).Format(time.DateOnly)}), http.StatusCreated)
			if resp, b := e.do(parent, "GET", "/fhir/AuditEvent?patient="+child, ""); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("not acting for the child yet: %d %s", resp.StatusCode, b)
			}
			e.expect(parent, "POST", "/api/v1/session/act-for", js(map[string]any{"patient_id": child}), http.StatusNoContent)
			if c := e.readPatient(parent, child); c != http.StatusOK {
				t.Fatalf("acting for the child: %d", c)
			}
			resp, b := e.do(parent, "GET", "/fhir/AuditEvent?patient="+child, "")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("child's log: %d %s", resp.StatusCode, b)
			}
			represented := 0
			for _, ae := range auditEventsOf(t, b) {
				if ae.patient() != "Patient/"+child {
					t.Fatalf("line of another patient: %+v", ae)
				}
				for _, ag := range ae.Agent {
					for _, c := range ag.Type.Coding {
						if c.Code == "RESP" && ag.Who != nil && ag.Who.Display == "" {
							represented++
						}
					}
				}
			}
			if represented == 0 {
				t.Fatalf("the representative's own reads are not marked as on behalf of the child: %s", b)
			}
			// While acting for the child, the session sees only the child's log.
			if resp, b := e.do(parent, "GET", "/fhir/AuditEvent?patient="+p2, ""); resp.StatusCode != http.StatusForbidden || !isOutcome(b, "") {
				t.Fatalf("own log while acting for the child: %d %s", resp.StatusCode, b)
			}
		})
	})
}

// The CapabilityStatement states the person's AuditEvent search with
// exactly the parameters it accepts, and each of them works.
// REQ: LOG-4
func TestAuditEventCapability(t *testing.T) {
	w := newFHIRWorld(t, storetest.SQLite(t))
	_, b := w.do("GET", "/fhir/metadata", "", "")
	var cs struct {
		Rest []struct {
			Resource []struct {
				Type        string
				Interaction []struct{ Code string }
				SearchParam []struct{ Name string }
			}
		}
	}
	if err := json.Unmarshal(b, &cs); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range cs.Rest[0].Resource {
		if r.Type != "AuditEvent" {
			continue
		}
		found = true
		if len(r.Interaction) != 1 || r.Interaction[0].Code != "search-type" {
			t.Fatalf("interactions: %+v", r.Interaction)
		}
		values := map[string]string{"patient": w.patient, "date": "ge2020-01-01", "employee-names": "false"}
		for _, p := range r.SearchParam {
			v, ok := values[p.Name]
			if !ok {
				t.Fatalf("unexpected parameter %s", p.Name)
			}
			q := "?patient=" + w.patient
			if p.Name != "patient" {
				q += "&" + p.Name + "=" + v
			}
			if resp, b := w.do("GET", "/fhir/AuditEvent"+q, w.person, ""); resp.StatusCode != http.StatusOK {
				t.Errorf("AuditEvent?%s advertised but answered %d %s", p.Name, resp.StatusCode, b)
			}
		}
	}
	if !found {
		t.Fatal("AuditEvent not in the CapabilityStatement")
	}
}

// REQ: AZ-1, LOG-1 — the security officer of tenant B finds nothing of
// tenant A through the inspection API, not even when naming A's patient or
// A's doctor; B's reading is in B's log and none of it in A's.
func TestAuditInspectionStaysInTenant(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newAccessEnv(t, db)
		doc := e.login(e.tenantA, access.RoleProfessional)
		p, _ := e.patient(e.tenantA)
		if _, err := e.dec.AddRelationship(e.ctx, access.Relationship{TenantID: e.tenantA, ProfessionalID: doc.id, PatientID: p, Kind: "gp",
			Start: e.clock.Now().Add(-time.Minute), RecordedBy: "test"}); err != nil {
			t.Fatal(err)
		}
		if c := e.readPatient(doc, p); c != http.StatusOK {
			t.Fatalf("read: %d", c)
		}
		officerB := e.login(e.tenantB, access.RoleSecurityOfficer)
		// (B's own readings name the patient asked for; they are B's events.)
		for _, path := range []string{"/api/v1/audit?patient=" + p, "/api/v1/audit?user=" + doc.id, "/api/v1/audit"} {
			resp, b := e.do(officerB, "GET", path, "")
			var pg auditPageJSON
			if err := json.Unmarshal(b, &pg); resp.StatusCode != http.StatusOK || err != nil {
				t.Fatalf("officer B, %s: %d %s", path, resp.StatusCode, b)
			}
			for _, ev := range pg.Events {
				if ev.TenantID != e.tenantB || ev.UserID == doc.id || ev.Action != audit.ActionLogRead {
					t.Fatalf("officer B, %s: %+v", path, ev)
				}
			}
		}
		for _, path := range []string{"/api/v1/audit/export?format=ndjson&user=" + doc.id, "/api/v1/audit/export?format=ndjson"} {
			resp, b := e.do(officerB, "GET", path, "")
			if resp.StatusCode != http.StatusOK || bytes.Contains(b, []byte(e.tenantA)) {
				t.Fatalf("officer B, %s: %d, names tenant A %v", path, resp.StatusCode, bytes.Contains(b, []byte(e.tenantA)))
			}
			for sc := bufio.NewScanner(bytes.NewReader(b)); sc.Scan(); {
				var ae auditEventJSON
				if err := json.Unmarshal(sc.Bytes(), &ae); err != nil || ae.Type.Code != "110101" {
					t.Fatalf("officer B, %s: an event other than B's own readings: %.300s", path, sc.Bytes())
				}
			}
		}
		reads, err := e.log.Query(e.ctx, audit.Filter{TenantID: e.tenantB, UserID: officerB.id, Action: audit.ActionLogRead})
		if err != nil || len(reads) != 5 {
			t.Fatalf("officer B's readings in B's log: %d %v", len(reads), err)
		}
		if inA, err := e.log.Query(e.ctx, audit.Filter{TenantID: e.tenantA, UserID: officerB.id}); err != nil || len(inA) != 0 {
			t.Fatalf("officer B's readings in A's log: %+v %v", inA, err)
		}
	})
}

// REQ: LOG-1, LOG-4
// Staff asking for a patient's AuditEvents through the person's view are
// refused as before, and the refusal is in the access log like every other
// refused reading of a patient's log. (Before, it left no trace.)
func TestPersonViewRefusalOfStaffIsLogged(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newAccessEnv(t, db)
		p, _ := e.patient(e.tenantA)
		for _, role := range []access.Role{access.RoleProfessional, access.RoleSecurityOfficer} {
			u := e.login(e.tenantA, role)
			if resp, b := e.do(u, "GET", "/fhir/AuditEvent?patient="+p, ""); resp.StatusCode != http.StatusForbidden || !isOutcome(b, "") {
				t.Fatalf("%s on the person's view: %d %s", role, resp.StatusCode, b)
			}
			evs, err := e.log.Query(e.ctx, audit.Filter{TenantID: e.tenantA, PatientID: p, UserID: u.id, Action: audit.ActionLogRead})
			if err != nil || len(evs) != 1 || evs[0].Outcome != audit.OutcomeDenied {
				t.Fatalf("%s: refusal in the log: %+v %v", role, evs, err)
			}
		}
	})
}

// REQ: LOG-1, LOG-5
// Anyone but a security officer is refused the inspection API as before,
// and each refusal is in the access log as a refused log read. (Before,
// the role check refused it without a trace.)
func TestInspectionRefusalIsLogged(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newAccessEnv(t, db)
		for _, role := range []access.Role{access.RoleProfessional, access.RoleAppAdmin, access.RolePerson} {
			u := e.login(e.tenantA, role)
			for _, path := range []string{"/api/v1/audit", "/api/v1/audit/export"} {
				resp, b := e.do(u, "GET", path, "")
				if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
					t.Fatalf("%s %s: %d %s", role, path, resp.StatusCode, b)
				}
			}
			evs, err := e.log.Query(e.ctx, audit.Filter{TenantID: e.tenantA, UserID: u.id, Action: audit.ActionLogRead})
			if err != nil || len(evs) != 2 || evs[0].Outcome != audit.OutcomeDenied || evs[1].Outcome != audit.OutcomeDenied {
				t.Fatalf("%s: refusals in the log: %+v %v", role, evs, err)
			}
		}
	})
}
