package router_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// REQ: ID-4, LOG-1 — the interactions a FHIR client uses, over HTTPS, on
// both databases: create (Patient registration by BSN, duplicate refused),
// read, vread, update with If-Match and meta.versionId, soft delete,
// history; each write and read leaves its access-log event.
func TestFHIRCreateReadUpdateDeleteHistory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newFHIRWorld(t, db)

		// A second registration with the same BSN is a conflict (ID-4).
		resp, b := w.do("POST", "/fhir/Patient", w.gp, `{"resourceType":"Patient","identifier":[{"system":"http://fhir.nl/fhir/NamingSystem/bsn","value":"`+w.bsn+`"}]}`)
		if resp.StatusCode != 409 || !isOutcome(b, "Patient.identifier") {
			t.Fatalf("duplicate BSN: %d %s", resp.StatusCode, b)
		}
		// Lookup by BSN goes through the blind index.
		resp, b = w.do("GET", "/fhir/Patient?identifier=http://fhir.nl/fhir/NamingSystem/bsn|"+w.bsn, w.gp, "")
		if bu := parseBundle(t, b); resp.StatusCode != 200 || bu.Total != 1 || !strings.Contains(string(bu.Entry[0].Resource), w.patient) {
			t.Fatalf("search by BSN: %d %s", resp.StatusCode, b)
		}

		resp, b = w.do("POST", "/fhir/Observation", w.gp, observation(w.patient, "29463-7", "2026-01-15T10:00:00Z"))
		if resp.StatusCode != 201 || resp.Header.Get("ETag") != `W/"1"` || resp.Header.Get("Last-Modified") == "" ||
			!strings.HasPrefix(resp.Header.Get("Location"), "https://zk.test/fhir/Observation/") || resp.Header.Get("Content-Type") != fhir.MediaType {
			t.Fatalf("create: %d %v %s", resp.StatusCode, resp.Header, b)
		}
		var obs map[string]any
		json.Unmarshal(b, &obs)
		id := obs["id"].(string)
		if meta := obs["meta"].(map[string]any); meta["versionId"] != "1" {
			t.Fatalf("meta not set by the server: %s", b)
		}

		resp, b = w.do("GET", "/fhir/Observation/"+id, w.gp, "")
		if resp.StatusCode != 200 || resp.Header.Get("ETag") != `W/"1"` || !strings.Contains(string(b), "29463-7") {
			t.Fatalf("read: %d %s", resp.StatusCode, b)
		}

		updated := strings.Replace(observation(w.patient, "29463-7", "2026-01-15T10:00:00Z", `"valueString":"v2"`), `{"resourceType":"Observation",`, `{"resourceType":"Observation","id":"`+id+`",`, 1)
		resp, b = w.do("PUT", "/fhir/Observation/"+id, w.gp, updated, "If-Match", `W/"1"`)
		if resp.StatusCode != 200 || resp.Header.Get("ETag") != `W/"2"` || !strings.Contains(string(b), `"valueString":"v2"`) {
			t.Fatalf("update: %d %s", resp.StatusCode, b)
		}
		// Stale If-Match: 412; stale meta.versionId: 409; no id: 400.
		if resp, b = w.do("PUT", "/fhir/Observation/"+id, w.gp, updated, "If-Match", `W/"1"`); resp.StatusCode != 412 || !isOutcome(b, "") {
			t.Fatalf("stale If-Match: %d %s", resp.StatusCode, b)
		}
		withMeta := strings.Replace(updated, `"id":"`+id+`",`, `"id":"`+id+`","meta":{"versionId":"1"},`, 1)
		if resp, b = w.do("PUT", "/fhir/Observation/"+id, w.gp, withMeta); resp.StatusCode != 409 || !isOutcome(b, "meta.versionId") {
			t.Fatalf("stale meta.versionId: %d %s", resp.StatusCode, b)
		}
		if resp, b = w.do("PUT", "/fhir/Observation/"+id, w.gp, observation(w.patient, "1", "2026")); resp.StatusCode != 400 || !isOutcome(b, "Observation.id") {
			t.Fatalf("update without id: %d %s", resp.StatusCode, b)
		}
		if resp, b = w.do("GET", "/fhir/Observation/"+id+"/_history/1", w.gp, ""); resp.StatusCode != 200 || strings.Contains(string(b), `"valueString":"v2"`) || !strings.Contains(string(b), `"versionId":"1"`) {
			t.Fatalf("vread 1: %d %s", resp.StatusCode, b)
		}

		if resp, b = w.do("DELETE", "/fhir/Observation/"+id, w.gp, ""); resp.StatusCode != 204 {
			t.Fatalf("delete: %d %s", resp.StatusCode, b)
		}
		if resp, b = w.do("GET", "/fhir/Observation/"+id, w.gp, ""); resp.StatusCode != 410 || !isOutcome(b, "") {
			t.Fatalf("read after delete: %d %s", resp.StatusCode, b)
		}
		resp, b = w.do("GET", "/fhir/Observation/"+id+"/_history", w.gp, "")
		h := parseBundle(t, b)
		if resp.StatusCode != 200 || h.Type != "history" || h.Total != 3 || h.Entry[0].Request.Method != "DELETE" || h.Entry[2].Request.Method != "POST" {
			t.Fatalf("history: %d %s", resp.StatusCode, b)
		}
		if resp, _ = w.do("GET", "/fhir/Observation/"+id+"/_history/2", w.gp, ""); resp.StatusCode != 200 {
			t.Fatalf("vread of a version before the delete: %d", resp.StatusCode)
		}
		// A Patient is not deleted through the API.
		if resp, b = w.do("DELETE", "/fhir/Patient/"+w.patient, w.gp, ""); resp.StatusCode != 405 || !isOutcome(b, "") {
			t.Fatalf("delete patient: %d %s", resp.StatusCode, b)
		}
		// Changing the BSN of a registered patient is refused.
		resp, b = w.do("PUT", "/fhir/Patient/"+w.patient, w.gp, `{"resourceType":"Patient","id":"`+w.patient+`","identifier":[{"system":"http://fhir.nl/fhir/NamingSystem/bsn","value":"111222333"}]}`)
		if resp.StatusCode != 422 || !isOutcome(b, "Patient.identifier") {
			t.Fatalf("BSN change: %d %s", resp.StatusCode, b)
		}

		// LOG-1: every interaction is in the access log.
		for _, c := range []struct {
			action string
			want   int
		}{{"assign-identifier", 1}, {"create", 2}, {"update", 1}, {"delete", 1}, {"search", 1}} {
			if n := w.events(w.gpID, c.action, "success"); n != c.want {
				t.Errorf("%s events = %d; want %d", c.action, n, c.want)
			}
		}
		if n := w.events(w.gpID, "read", "success"); n < 4 {
			t.Errorf("read events = %d; want ≥ 4 (read, vread ×2, history)", n)
		}
	})
}

// Searches within one patient: date prefixes, code and category tokens,
// _lastUpdated, paging links, _summary and _elements.
func TestFHIRSearch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newFHIRWorld(t, db)
		for i, c := range []struct{ code, date string }{
			{"29463-7", "2025-03-01"}, {"29463-7", "2025-06-15T08:00:00Z"}, {"8480-6", "2025-06-20"}, {"4548-4", "2026-01-02"},
		} {
			w.create(w.gp, "Observation", observation(w.patient, c.code, c.date, fmt.Sprintf(`"valueInteger":%d`, i)))
		}
		w.create(w.gp, "Condition", `{"resourceType":"Condition","subject":{"reference":"Patient/`+w.patient+`"},"code":{"coding":[{"system":"http://snomed.info/sct","code":"44054006"}]},"onsetDateTime":"2020"}`)
		p := "/fhir/Observation?patient=" + w.patient
		cases := []struct {
			query string
			total int
		}{
			{"", 4},
			{"&code=29463-7", 2},
			{"&code=http://loinc.org|29463-7,http://loinc.org|8480-6", 3},
			{"&code=http://snomed.info/sct|29463-7", 0},
			{"&category=vital-signs", 4},
			{"&category=laboratory", 0},
			{"&date=2025-06", 2},
			{"&date=ge2025-06-01&date=lt2026", 2},
			{"&date=gt2025-12-31", 1},
			{"&date=le2025-03-01", 1},
			{"&date=sa2025-06-30", 1},
			{"&date=ne2025", 1},
			{"&_lastUpdated=ge2020-01-01", 4},
			{"&_lastUpdated=lt2020-01-01", 0},
		}
		for _, c := range cases {
			resp, b := w.do("GET", p+c.query, w.gp, "")
			if bu := parseBundle(t, b); resp.StatusCode != 200 || bu.Total != c.total || len(bu.Entry) != c.total {
				t.Errorf("search %q: %d total %d entries %d; want %d", c.query, resp.StatusCode, bu.Total, len(bu.Entry), c.total)
			}
		}
		if resp, b := w.do("GET", "/fhir/Condition?subject=Patient/"+w.patient+"&date=2020", w.gp, ""); resp.StatusCode != 200 || parseBundle(t, b).Total != 1 {
			t.Errorf("condition by onset: %d %s", resp.StatusCode, b)
		}

		// Paging: two pages of two, with next and previous links.
		_, b := w.do("GET", p+"&_count=2", w.gp, "")
		page1 := parseBundle(t, b)
		next := ""
		for _, l := range page1.Link {
			if l.Relation == "next" {
				next = l.URL
			}
		}
		if page1.Total != 4 || len(page1.Entry) != 2 || !strings.Contains(next, "_offset=2") {
			t.Fatalf("page 1: %s", b)
		}
		_, b = w.do("GET", strings.TrimPrefix(next, "https://zk.test"), w.gp, "")
		page2 := parseBundle(t, b)
		if len(page2.Entry) != 2 || page2.Entry[0].FullURL == page1.Entry[0].FullURL || page2.Entry[0].FullURL == page1.Entry[1].FullURL {
			t.Fatalf("page 2 repeats page 1: %s", b)
		}
		if _, b = w.do("GET", p+"&_summary=count", w.gp, ""); parseBundle(t, b).Total != 4 || len(parseBundle(t, b).Entry) != 0 {
			t.Fatalf("_summary=count: %s", b)
		}
		_, b = w.do("GET", p+"&_elements=code", w.gp, "")
		bu := parseBundle(t, b)
		if len(bu.Entry) != 4 || strings.Contains(string(bu.Entry[0].Resource), "effectiveDateTime") || !strings.Contains(string(bu.Entry[0].Resource), "SUBSETTED") {
			t.Fatalf("_elements: %s", b)
		}
		resp, b := w.do("GET", "/fhir/Patient/"+w.patient+"?_summary=true", w.gp, "")
		if resp.StatusCode != 200 || !strings.Contains(string(b), "SUBSETTED") || !strings.Contains(string(b), "Zeldzaamheid") {
			t.Fatalf("read _summary: %d %s", resp.StatusCode, b)
		}
	})
}

// REQ: DP-7, AZ-9 — the person exports their own record with $everything;
// an assistant, whose role covers demographic and administrative data only,
// gets no clinical data from search and may not export; the export is
// logged as one.
func TestFHIREverythingAndCategories(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newFHIRWorld(t, db)
		obs := w.create(w.gp, "Observation", observation(w.patient, "29463-7", "2025-03-01"))
		w.create(w.gp, "Coverage", `{"resourceType":"Coverage","status":"active","beneficiary":{"reference":"Patient/`+w.patient+`"},"payor":[{"display":"Zilveren Kruis"}]}`)
		psy := w.create(w.gp, "Condition", `{"resourceType":"Condition","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"PSY"}]},`+
			`"subject":{"reference":"Patient/`+w.patient+`"},"code":{"text":"depressie"}}`)

		resp, b := w.do("GET", "/fhir/Patient/"+w.patient+"/$everything", w.person, "")
		if bu := parseBundle(t, b); resp.StatusCode != 200 || bu.Total != 4 || !strings.Contains(string(b), obs) || !strings.Contains(string(b), psy) {
			t.Fatalf("own export: %d %s", resp.StatusCode, b)
		}
		if n := w.events(w.personID, "export", "success"); n != 1 {
			t.Fatalf("export events = %d; want 1", n)
		}
		if resp, b = w.do("GET", "/fhir/Patient/"+w.patient+"/$everything", w.gp, ""); resp.StatusCode != 200 || parseBundle(t, b).Total != 4 {
			t.Fatalf("GP export: %d %s", resp.StatusCode, b)
		}

		if resp, b = w.do("GET", "/fhir/Patient/"+w.patient+"/$everything", w.assistant, ""); resp.StatusCode != 403 || !isOutcome(b, "") {
			t.Fatalf("assistant export: %d %s", resp.StatusCode, b)
		}
		resp, b = w.do("GET", "/fhir/Observation?patient="+w.patient, w.assistant, "")
		if bu := parseBundle(t, b); resp.StatusCode != 200 || bu.Total != 0 || strings.Contains(string(b), obs) {
			t.Fatalf("assistant sees clinical data: %d %s", resp.StatusCode, b)
		}
		if resp, _ = w.do("GET", "/fhir/Observation/"+obs, w.assistant, ""); resp.StatusCode != 404 {
			t.Fatalf("assistant read of an observation: %d; want 404 (its existence is not revealed)", resp.StatusCode)
		}
		resp, b = w.do("GET", "/fhir/Coverage?beneficiary="+w.patient, w.assistant, "")
		if resp.StatusCode != 400 {
			t.Fatalf("unknown parameter: %d %s", resp.StatusCode, b)
		}
		if resp, b = w.do("GET", "/fhir/Coverage?patient="+w.patient, w.assistant, ""); resp.StatusCode != 200 || parseBundle(t, b).Total != 1 {
			t.Fatalf("assistant administrative data: %d %s", resp.StatusCode, b)
		}
		// The person may read but not write (AZ-2).
		if resp, _ = w.do("POST", "/fhir/Observation", w.person, observation(w.patient, "1", "2026")); resp.StatusCode != 403 {
			t.Fatalf("person create: %d", resp.StatusCode)
		}
	})
}

// REQ: AZ-1, LOG-1 — no IDOR: with a valid session, another patient's ids
// in the URL are refused and each refusal is logged.
func TestFHIRNoIDOR(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newFHIRWorld(t, db)
		obs := w.create(w.gp, "Observation", observation(w.patient, "29463-7", "2025-03-01"))
		other := w.register(w.gp, "111222333", "Anders", "1950-01-01")
		for _, path := range []string{
			"/fhir/Patient/" + w.patient, "/fhir/Observation/" + obs, "/fhir/Observation/" + obs + "/_history",
			"/fhir/Observation?patient=" + w.patient, "/fhir/Patient/" + w.patient + "/$everything",
		} {
			resp, b := w.do("GET", path, w.gp2, "")
			if resp.StatusCode != 403 || !isOutcome(b, "") || strings.Contains(string(b), "Zeldzaamheid") {
				t.Errorf("GP without relationship, %s: %d %s", path, resp.StatusCode, b)
			}
		}
		if n := w.events(w.gp2ID, "read", "denied") + w.events(w.gp2ID, "search", "denied") + w.events(w.gp2ID, "export", "denied"); n != 5 {
			t.Errorf("denials logged = %d; want 5", n)
		}
		// The person reaches only their own record.
		if resp, _ := w.do("GET", "/fhir/Patient/"+other, w.person, ""); resp.StatusCode != 403 {
			t.Errorf("person reads another patient: %d", resp.StatusCode)
		}
		// An update may not move a resource to another patient's record.
		body := strings.Replace(observation(other, "1", "2026"), `{"resourceType":"Observation",`, `{"resourceType":"Observation","id":"`+obs+`",`, 1)
		if resp, b := w.do("PUT", "/fhir/Observation/"+obs, w.gp, body); resp.StatusCode != 422 || !isOutcome(b, "Observation.subject") {
			t.Errorf("update naming another patient: %d %s", resp.StatusCode, b)
		}
		// Unknown ids in the organisation: 404 (nothing to decide on).
		if resp, _ := w.do("GET", "/fhir/Observation/r-doesnotexist", w.gp2, ""); resp.StatusCode != 404 {
			t.Errorf("unknown observation: %d", resp.StatusCode)
		}
	})
}

// Each case a FHIR server must reject is answered with a 4xx
// OperationOutcome naming the element, over HTTP, and writes nothing.
func TestFHIRValidationCases(t *testing.T) {
	w := newFHIRWorld(t, storetest.SQLite(t))
	pid := w.patient
	subj := `"subject":{"reference":"Patient/` + pid + `"}`
	cases := []struct {
		name, method, path, ctype, body string
		code                            int
		expr                            string
	}{
		{"unknown resourceType", "POST", "/fhir/Observation", "", `{"resourceType":"Nonsense"}`, 400, "resourceType"},
		{"type differs from URL", "POST", "/fhir/Observation", "", `{"resourceType":"Condition",` + subj + `}`, 400, "resourceType"},
		{"wrong JSON type", "POST", "/fhir/Observation", "", `{"resourceType":"Observation","status":7,"code":{"text":"x"},` + subj + `}`, 400, "Observation.status"},
		{"invalid date", "POST", "/fhir/Observation", "", `{"resourceType":"Observation","status":"final","code":{"text":"x"},` + subj + `,"effectiveDateTime":"2025-02-30"}`, 400, "Observation.effective"},
		{"invalid reference", "POST", "/fhir/Observation", "", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/ bad id"}}`, 400, "Observation.subject"},
		{"subject not a patient", "POST", "/fhir/Observation", "", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`, 422, "Observation.subject"},
		{"BSN fails elfproef", "POST", "/fhir/Patient", "", `{"resourceType":"Patient","identifier":[{"system":"http://fhir.nl/fhir/NamingSystem/bsn","value":"123456789"}]}`, 400, "Patient.identifier"},
		{"not JSON", "POST", "/fhir/Observation", "", `{"resourceType":`, 400, ""},
		{"XML", "POST", "/fhir/Observation", "application/fhir+xml", `<Observation/>`, 415, ""},
		{"too large", "POST", "/fhir/Observation", "", `{"resourceType":"Observation","note":[{"text":"` + strings.Repeat("x", 70<<10) + `"}]}`, 413, ""},
		{"unknown search parameter", "GET", "/fhir/Observation?patient=" + pid + "&value-quantity=5", "", "", 400, "value-quantity"},
		{"search without patient", "GET", "/fhir/Observation?code=1", "", "", 400, "patient"},
		{"bad date prefix", "GET", "/fhir/Observation?patient=" + pid + "&date=xx2025", "", "", 400, "date"},
		{"bad _count", "GET", "/fhir/Observation?patient=" + pid + "&_count=5000", "", "", 400, "_count"},
		{"bad If-Match", "PUT", "/fhir/Patient/" + pid, "", `{"resourceType":"Patient","id":"` + pid + `"}`, 400, ""},
		{"directory type", "POST", "/fhir/Practitioner", "", `{"resourceType":"Practitioner"}`, 404, ""},
		{"XML wanted", "GET", "/fhir/Patient/" + pid + "?_format=xml", "", "", 406, ""},
	}
	before := w.events(w.gpID, "create", "success")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := []string{}
			if c.ctype != "" {
				hdr = append(hdr, "Content-Type", c.ctype)
			}
			if c.name == "bad If-Match" {
				hdr = append(hdr, "If-Match", "yesterday")
			}
			resp, b := w.do(c.method, c.path, w.gp, c.body, hdr...)
			if resp.StatusCode != c.code || !isOutcome(b, c.expr) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/fhir+json") {
				t.Fatalf("%d %s; want %d naming %q", resp.StatusCode, b, c.code, c.expr)
			}
		})
	}
	if after := w.events(w.gpID, "create", "success"); after != before {
		t.Fatalf("rejected input created %d resources", after-before)
	}
}

// The CapabilityStatement lists exactly the types and interactions served.
func TestFHIRCapabilityStatement(t *testing.T) {
	w := newFHIRWorld(t, storetest.SQLite(t))
	resp, b := w.do("GET", "/fhir/metadata", "", "")
	var cs struct {
		FhirVersion string
		Rest        []struct {
			Resource []struct {
				Type        string
				Interaction []struct{ Code string }
				SearchParam []struct{ Name string }
				Operation   []struct{ Name string }
			}
		}
	}
	if err := json.Unmarshal(b, &cs); err != nil || resp.StatusCode != 200 || cs.FhirVersion != "4.0.1" {
		t.Fatalf("metadata: %d %v %s", resp.StatusCode, err, b)
	}
	if n := len(cs.Rest[0].Resource); n != 14 {
		t.Fatalf("%d resource types; want the 13 patient-record BgZ types and AuditEvent", n)
	}
	for _, r := range cs.Rest[0].Resource {
		if r.Type == "AuditEvent" {
			continue // the person's log view, checked in audit_routes_test.go
		}
		if r.Type == "Practitioner" || r.Type == "Organization" || r.Type == "PractitionerRole" {
			t.Errorf("%s listed but not stored", r.Type)
		}
		hasDelete := false
		for _, i := range r.Interaction {
			hasDelete = hasDelete || i.Code == "delete"
		}
		if hasDelete == (r.Type == "Patient") {
			t.Errorf("%s: delete listed = %v", r.Type, hasDelete)
		}
		// Every advertised search parameter is accepted.
		q := "?patient=" + w.patient
		if r.Type == "Patient" {
			q = "?_id=" + w.patient
		}
		for _, p := range r.SearchParam {
			if p.Name == "patient" || p.Name == "_id" || p.Name == "subject" || p.Name == "identifier" {
				continue
			}
			v := "2020"
			if p.Name == "code" || p.Name == "category" {
				v = "x"
			}
			if resp, b := w.do("GET", "/fhir/"+r.Type+q+"&"+p.Name+"="+v, w.gp, ""); resp.StatusCode != 200 {
				t.Errorf("%s?%s advertised but answered %d %s", r.Type, p.Name, resp.StatusCode, b)
			}
		}
	}
}
