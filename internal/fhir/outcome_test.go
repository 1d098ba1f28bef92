package fhir

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"
)

func TestOperationOutcomeJSON(t *testing.T) {
	tests := []struct {
		name string
		o    *OperationOutcome
		want string
	}{
		{
			"one issue with expression",
			Outcome(SeverityError, CodeRequired, "missing required element Observation.status", "Observation.status"),
			`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"required","diagnostics":"missing required element Observation.status","expression":["Observation.status"]}]}`,
		},
		{
			"no expression",
			Outcome(SeverityError, CodeNotFound, "Patient/x not found"),
			`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found","diagnostics":"Patient/x not found"}]}`,
		},
		{
			"no issues still has one",
			NewOutcome(),
			`{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational","diagnostics":"no issues"}]}`,
		},
		{
			"with id and two issues",
			&OperationOutcome{ID: "oo1", Issue: []Issue{{Severity: SeverityWarning, Code: CodeProcessing}, {Severity: SeverityFatal, Code: CodeException}}},
			`{"resourceType":"OperationOutcome","id":"oo1","issue":[{"severity":"warning","code":"processing"},{"severity":"fatal","code":"exception"}]}`,
		},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.o)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, b, tt.want)
		}
		// A value (not a pointer) marshals the same.
		if bv, _ := json.Marshal(*tt.o); string(bv) != tt.want {
			t.Errorf("%s: value marshals to %s", tt.name, bv)
		}
	}
}

// The OperationOutcome of a rejected resource is itself a resource Parse
// recognises as JSON of the right shape, with each issue naming its element.
func TestValidationErrorOutcome(t *testing.T) {
	_, err := Parse([]byte(`{"resourceType":"Observation","code":{"text":"x"},"status":"bogus","subject":{"reference":"Group/1"}}`))
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v", err)
	}
	b, err := json.Marshal(verr.Outcome())
	if err != nil {
		t.Fatal(err)
	}
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Severity, Code, Diagnostics string
			Expression                  []string
		} `json:"issue"`
	}
	if err := json.Unmarshal(b, &oo); err != nil {
		t.Fatal(err)
	}
	if oo.ResourceType != "OperationOutcome" || len(oo.Issue) != 2 {
		t.Fatalf("outcome %s", b)
	}
	var exprs []string
	for _, iss := range oo.Issue {
		if iss.Severity != "error" || iss.Code == "" || iss.Diagnostics == "" || len(iss.Expression) != 1 {
			t.Errorf("issue %+v", iss)
		}
		exprs = append(exprs, iss.Expression...)
	}
	if !slices.Equal(exprs, []string{"Observation.status", "Observation.subject.reference"}) {
		t.Errorf("expressions %v", exprs)
	}
}

func TestSearchsetBundle(t *testing.T) {
	self, _ := url.Parse("https://zk.example/fhir/Observation?code=http://loinc.org|85354-9&_count=2&_offset=2")
	b := NewSearchset(5, PageLinks(self, 2, 2, 5)...)
	b.AddMatch("https://zk.example/fhir/Observation/o1", json.RawMessage(`{"resourceType":"Observation","id":"o1"}`))
	b.AddInclude("https://zk.example/fhir/Patient/p1", json.RawMessage("{\n \"resourceType\": \"Patient\",\n \"id\": \"p1\"\n}"))
	if err := b.AddOutcome(Outcome(SeverityWarning, CodeNotSupported, "parameter ignored")); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got["resourceType"] != "Bundle" || got["type"] != "searchset" || got["total"] != 5.0 {
		t.Errorf("bundle %s", out)
	}
	links := map[string]string{}
	for _, l := range got["link"].([]any) {
		links[l.(map[string]any)["relation"].(string)] = l.(map[string]any)["url"].(string)
	}
	wantLinks := map[string]string{
		"self":     "https://zk.example/fhir/Observation?_count=2&_offset=2&code=http%3A%2F%2Floinc.org%7C85354-9",
		"previous": "https://zk.example/fhir/Observation?_count=2&_offset=0&code=http%3A%2F%2Floinc.org%7C85354-9",
		"next":     "https://zk.example/fhir/Observation?_count=2&_offset=4&code=http%3A%2F%2Floinc.org%7C85354-9",
	}
	for rel, u := range wantLinks {
		if links[rel] != u {
			t.Errorf("link %s = %q, want %q", rel, links[rel], u)
		}
	}
	entries := got["entry"].([]any)
	modes := []string{}
	for _, e := range entries {
		modes = append(modes, at(e, "search", "mode").(string))
	}
	if !slices.Equal(modes, []string{"match", "include", "outcome"}) {
		t.Errorf("modes %v", modes)
	}
	if at(entries[0], "fullUrl") != "https://zk.example/fhir/Observation/o1" || at(entries[1], "resource", "id") != "p1" ||
		at(entries[2], "resource", "resourceType") != "OperationOutcome" {
		t.Errorf("entries %s", out)
	}
	// An empty result still says total 0.
	empty, _ := json.Marshal(NewSearchset(0))
	if string(empty) != `{"resourceType":"Bundle","type":"searchset","total":0}` {
		t.Errorf("empty searchset %s", empty)
	}
}

func TestPageLinks(t *testing.T) {
	self, _ := url.Parse("/fhir/Condition?patient=p1")
	rels := func(ls []Link) (out []string) {
		for _, l := range ls {
			out = append(out, l.Relation)
		}
		return out
	}
	tests := []struct {
		offset, count, total int
		want                 []string
	}{
		{0, 10, 5, []string{"self"}},
		{0, 10, 10, []string{"self"}},
		{0, 10, 11, []string{"self", "next"}},
		{10, 10, 25, []string{"self", "previous", "next"}},
		{20, 10, 25, []string{"self", "previous"}},
		{0, 0, 25, []string{"self"}},
	}
	for _, tt := range tests {
		if got := rels(PageLinks(self, tt.offset, tt.count, tt.total)); !slices.Equal(got, tt.want) {
			t.Errorf("PageLinks(%d, %d, %d) = %v, want %v", tt.offset, tt.count, tt.total, got, tt.want)
		}
	}
	// previous never goes below zero.
	ls := PageLinks(self, 3, 10, 25)
	if ls[1].URL != "/fhir/Condition?_count=10&_offset=0&patient=p1" {
		t.Errorf("previous = %q", ls[1].URL)
	}
}

func TestHistoryBundle(t *testing.T) {
	b := NewHistory(3)
	when := time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	b.AddVersion(Version{FullURL: "https://zk/fhir/Flag/f1", Type: "Flag", ID: "f1", VersionID: "3", Method: "DELETE", LastModified: when})
	b.AddVersion(Version{FullURL: "https://zk/fhir/Flag/f1", Type: "Flag", ID: "f1", VersionID: "2", Method: "PUT", LastModified: when, Resource: json.RawMessage(`{"resourceType":"Flag","id":"f1"}`)})
	b.AddVersion(Version{FullURL: "https://zk/fhir/Flag/f1", Type: "Flag", ID: "f1", VersionID: "1", Method: "POST", LastModified: when, Resource: json.RawMessage(`{"resourceType":"Flag","id":"f1"}`)})
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"resourceType":"Bundle","type":"history","total":3,"entry":[` +
		`{"fullUrl":"https://zk/fhir/Flag/f1","request":{"method":"DELETE","url":"Flag/f1"},"response":{"status":"204 No Content","etag":"W/\"3\"","lastModified":"2024-01-02T02:04:05Z"}},` +
		`{"fullUrl":"https://zk/fhir/Flag/f1","resource":{"resourceType":"Flag","id":"f1"},"request":{"method":"PUT","url":"Flag/f1"},"response":{"status":"200 OK","etag":"W/\"2\"","lastModified":"2024-01-02T02:04:05Z"}},` +
		`{"fullUrl":"https://zk/fhir/Flag/f1","resource":{"resourceType":"Flag","id":"f1"},"request":{"method":"POST","url":"Flag"},"response":{"status":"201 Created","etag":"W/\"1\"","lastModified":"2024-01-02T02:04:05Z"}}]}`
	if string(out) != want {
		t.Errorf("history\n got %s\nwant %s", out, want)
	}
}

// REQ: DP-7
func TestCollectionBundle(t *testing.T) {
	b := NewCollection("export-1", time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC))
	for _, rt := range []string{"Patient", "Observation"} {
		res, err := Parse(example(t, rt))
		if err != nil {
			t.Fatal(err)
		}
		b.AddResource("https://zk/fhir/"+rt+"/"+res.ID, res.Raw)
	}
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		ResourceType, ID, Type, Timestamp string
		Total                             *int
		Entry                             []struct {
			FullURL  string          `json:"fullUrl"`
			Resource json.RawMessage `json:"resource"`
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got.ResourceType != "Bundle" || got.ID != "export-1" || got.Type != "collection" || got.Timestamp != "2024-06-01T12:00:00Z" || got.Total != nil {
		t.Errorf("bundle header %+v", got)
	}
	if len(got.Entry) != 2 {
		t.Fatalf("%d entries", len(got.Entry))
	}
	// The entries are the stored resources, which parse again unchanged.
	for i, rt := range []string{"Patient", "Observation"} {
		res, err := Parse(got.Entry[i].Resource)
		if err != nil || res.Type != rt {
			t.Errorf("entry %d: %v", i, err)
		}
		if string(got.Entry[i].Resource) != string(compactJSON(t, example(t, rt))) {
			t.Errorf("entry %d changed", i)
		}
	}
}

func TestSearchParams(t *testing.T) {
	names := func(ps []SearchParam) (out []string) {
		for _, p := range ps {
			out = append(out, p.Name)
			if p.Type != "date" && p.Type != "token" || p.Documentation == "" {
				t.Errorf("param %+v", p)
			}
		}
		return out
	}
	tests := map[string][]string{
		"Observation":         {"_lastUpdated", "code", "category", "date"},
		"Condition":           {"_lastUpdated", "code", "category", "date"},
		"AllergyIntolerance":  {"_lastUpdated", "code", "category", "date"},
		"MedicationStatement": {"_lastUpdated", "code", "category", "date"},
		"MedicationRequest":   {"_lastUpdated", "code", "category", "date"},
		"Procedure":           {"_lastUpdated", "code", "category", "date"},
		"Immunization":        {"_lastUpdated", "date"},
		"Encounter":           {"_lastUpdated", "date"},
		"Flag":                {"_lastUpdated", "category", "date"},
		"Consent":             {"_lastUpdated", "category", "date"},
		"DocumentReference":   {"_lastUpdated", "category", "date"},
		"Coverage":            {"_lastUpdated"},
		"Patient":             {"_lastUpdated"},
		"Practitioner":        {"_lastUpdated"},
		"PractitionerRole":    {"_lastUpdated"},
		"Organization":        {"_lastUpdated"},
	}
	want := []string{}
	for rt := range tests {
		want = append(want, rt)
	}
	slices.Sort(want)
	if !slices.Equal(ResourceTypes(), want) {
		t.Errorf("ResourceTypes = %v, want %v", ResourceTypes(), want)
	}
	for rt, want := range tests {
		if got := names(SearchParams(rt)); !slices.Equal(got, want) {
			t.Errorf("SearchParams(%s) = %v, want %v", rt, got, want)
		}
		if !Supported(rt) {
			t.Errorf("Supported(%s) = false", rt)
		}
	}
	if SearchParams("Appointment") != nil || Supported("Appointment") {
		t.Error("Appointment is supported")
	}
}

func TestMatchToken(t *testing.T) {
	codes := []Coding{{System: "http://loinc.org", Code: "85354-9"}, {Code: "local"}}
	tests := map[string]bool{
		"85354-9":                        true,
		"http://loinc.org|85354-9":       true,
		"http://snomed.info/sct|85354-9": false,
		"http://loinc.org|":              true,
		"http://snomed.info/sct|":        false,
		"|local":                         true,
		"|85354-9":                       false,
		"8480-6":                         false,
	}
	for token, want := range tests {
		if got := MatchToken(codes, token); got != want {
			t.Errorf("MatchToken(%q) = %v", token, got)
		}
	}
}
