package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// example returns the checked-in example of a resource type.
func example(t testing.TB, resourceType string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "valid", resourceType+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mutate returns the example of a resource type changed by edit. The result
// is re-encoded, so property order changes; that does not matter to Parse.
func mutate(t *testing.T, resourceType string, edit func(m map[string]any)) []byte {
	t.Helper()
	return mutateRaw(t, example(t, resourceType), edit)
}

// mutateRaw returns the JSON object body changed by edit.
func mutateRaw(t *testing.T, body []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// at walks a decoded JSON value along keys and indexes.
func at(v any, path ...any) any {
	for _, p := range path {
		switch p := p.(type) {
		case string:
			v = v.(map[string]any)[p]
		case int:
			v = v.([]any)[p]
		}
	}
	return v
}

func TestParseAcceptsAnExampleOfEachType(t *testing.T) {
	for _, rt := range ResourceTypes() {
		t.Run(rt, func(t *testing.T) {
			body := example(t, rt)
			res, err := Parse(body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if res.Type != rt {
				t.Errorf("Type = %q, want %q", res.Type, rt)
			}
			if !bytes.Equal(res.Raw, body) {
				t.Error("Raw differs from the submitted body")
			}
			if res.ID == "" {
				t.Error("ID empty")
			}
		})
	}
}

func TestParseRawIsACopy(t *testing.T) {
	body := example(t, "Flag")
	res, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	orig := bytes.Clone(body)
	for i := range body {
		body[i] = ' '
	}
	if !bytes.Equal(res.Raw, orig) {
		t.Error("Raw changed when the caller reused its buffer")
	}
}

func TestParseExtracts(t *testing.T) {
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UTC()
	}
	tests := []struct {
		rt       string
		patient  string
		codes    []Coding
		category []Coding
		date     *DateRange
	}{
		{rt: "Patient", patient: "pat-1"},
		{rt: "Practitioner"},
		{rt: "PractitionerRole"},
		{rt: "Organization"},
		{
			rt: "Observation", patient: "pat-1",
			codes:    []Coding{{System: "http://loinc.org", Code: "85354-9", Display: "Blood pressure panel"}},
			category: []Coding{{System: "http://terminology.hl7.org/CodeSystem/observation-category", Code: "vital-signs"}},
			date:     &DateRange{utc("2024-03-01T08:30:00Z"), utc("2024-03-01T08:30:01Z")},
		},
		{
			rt: "Condition", patient: "pat-1",
			codes:    []Coding{{System: "http://snomed.info/sct", Code: "44054006", Display: "Diabetes mellitus type 2"}},
			category: []Coding{{System: "http://snomed.info/sct", Code: "439401001", Display: "Diagnosis"}},
			date:     &DateRange{utc("2019-06-01T00:00:00Z"), utc("2019-07-01T00:00:00Z")}, // onset "2019-06" wins over recordedDate
		},
		{
			rt: "AllergyIntolerance", patient: "pat-1",
			codes:    []Coding{{System: "http://snomed.info/sct", Code: "294505008", Display: "Allergy to amoxicillin"}},
			category: []Coding{{System: systemAllergyCategory, Code: "medication"}},
			date:     &DateRange{utc("2015-02-20T13:00:00Z"), utc("2015-02-20T13:00:01Z")},
		},
		{
			rt: "MedicationStatement", patient: "pat-1",
			codes:    []Coding{{System: "urn:oid:2.16.840.1.113883.2.4.4.10", Code: "67903", Display: "METFORMINE TABLET 500MG"}},
			category: []Coding{{System: "urn:oid:2.16.840.1.113883.2.4.3.11.60.20.77.5.3", Code: "6", Display: "Medicatiegebruik"}},
			date:     &DateRange{Start: utc("2019-07-02T00:00:00Z")}, // open-ended period
		},
		{
			rt: "MedicationRequest", patient: "pat-1", // medication by reference: no code
			date: &DateRange{utc("2024-02-28T15:45:00Z"), utc("2024-02-28T15:45:01Z")},
		},
		{
			rt: "Immunization", patient: "pat-1",
			date: &DateRange{utc("1977-05-01T00:00:00Z"), utc("1977-05-02T00:00:00Z")},
		},
		{
			rt: "Procedure", patient: "pat-1",
			codes:    []Coding{{System: "http://snomed.info/sct", Code: "80146002", Display: "Appendectomy"}},
			category: []Coding{{System: "http://snomed.info/sct", Code: "387713003", Display: "Surgical procedure"}},
			date:     &DateRange{utc("2010-05-04T06:00:00Z"), utc("2010-05-04T07:10:01Z")},
		},
		{
			rt: "Encounter", patient: "pat-1",
			date: &DateRange{utc("2024-03-01T08:15:00Z"), utc("2024-03-01T08:45:01Z")},
		},
		{
			rt: "Flag", patient: "pat-1",
			category: []Coding{{System: "http://terminology.hl7.org/CodeSystem/flag-category", Code: "safety"}},
			date:     &DateRange{Start: utc("2023-11-01T00:00:00Z")},
		},
		{
			rt: "Consent", patient: "pat-1",
			category: []Coding{{System: "http://snomed.info/sct", Code: "11291000146105", Display: "Treatment instructions"}},
			date:     &DateRange{utc("2022-01-10T00:00:00Z"), utc("2022-01-11T00:00:00Z")},
		},
		{rt: "Coverage", patient: "pat-1"},
		{
			rt: "DocumentReference", patient: "pat-1",
			category: []Coding{{System: "http://loinc.org", Code: "LP173421-1", Display: "Report"}},
			date:     &DateRange{utc("2024-03-02T08:00:00Z"), utc("2024-03-02T08:00:01Z")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.rt, func(t *testing.T) {
			res, err := Parse(example(t, tt.rt))
			if err != nil {
				t.Fatal(err)
			}
			if res.Patient != tt.patient {
				t.Errorf("Patient = %q, want %q", res.Patient, tt.patient)
			}
			if !slices.Equal(res.Codes, tt.codes) {
				t.Errorf("Codes = %v, want %v", res.Codes, tt.codes)
			}
			if !slices.Equal(res.Category, tt.category) {
				t.Errorf("Category = %v, want %v", res.Category, tt.category)
			}
			switch {
			case (res.Date == nil) != (tt.date == nil):
				t.Errorf("Date = %v, want %v", res.Date, tt.date)
			case res.Date != nil && (!res.Date.Start.Equal(tt.date.Start) || !res.Date.End.Equal(tt.date.End)):
				t.Errorf("Date = %v – %v, want %v – %v", res.Date.Start, res.Date.End, tt.date.Start, tt.date.End)
			}
		})
	}
}

// REQ: ID-4
func TestParsePatientDetails(t *testing.T) {
	res, err := Parse(example(t, "Patient"))
	if err != nil {
		t.Fatal(err)
	}
	if res.BSN != "999911120" {
		t.Errorf("BSN = %q", res.BSN)
	}
	if res.BirthDate != "1975-04-12" || res.Gender != "female" {
		t.Errorf("BirthDate, Gender = %q, %q", res.BirthDate, res.Gender)
	}
	want := []HumanName{{Use: "official", Text: "Johanna van der Berg", Family: "van der Berg", Given: []string{"Johanna", "Maria"}, Prefix: []string{"mw."}}}
	if len(res.Names) != 1 || res.Names[0].Family != want[0].Family || !slices.Equal(res.Names[0].Given, want[0].Given) ||
		!slices.Equal(res.Names[0].Prefix, want[0].Prefix) || res.Names[0].Text != want[0].Text || res.Names[0].Use != want[0].Use {
		t.Errorf("Names = %+v, want %+v", res.Names, want)
	}
	wantIDs := []Identifier{{"http://fhir.nl/fhir/NamingSystem/bsn", "999911120"}, {"urn:oid:2.16.840.1.113883.2.4.6.99", "MRN-7"}}
	if !slices.Equal(res.Identifiers, wantIDs) {
		t.Errorf("Identifiers = %v", res.Identifiers)
	}
	if res.Meta.VersionID != "3" || !res.Meta.LastUpdated.Equal(time.Date(2024, 3, 1, 9, 15, 0, 123e6, time.UTC)) {
		t.Errorf("Meta = %+v", res.Meta)
	}
	if len(res.Meta.Security) != 1 || res.Meta.Security[0].Code != "N" || !slices.Equal(res.Meta.Profile, []string{"http://nictiz.nl/fhir/StructureDefinition/nl-core-Patient"}) {
		t.Errorf("Meta = %+v", res.Meta)
	}
	// A Patient without a BSN (ID-4's alternative identifier) parses too.
	noBSN := mutate(t, "Patient", func(m map[string]any) { m["identifier"] = m["identifier"].([]any)[1:] })
	res, err = Parse(noBSN)
	if err != nil || res.BSN != "" || len(res.Identifiers) != 1 {
		t.Errorf("Parse without BSN: %v, BSN %q", err, res.BSN)
	}
}

// nest returns a Patient whose unknown element nests depth levels in total.
func nest(depth int) []byte {
	inner := strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1)
	return []byte(`{"resourceType":"Patient","x":` + inner + `}`)
}

func TestParseRejects(t *testing.T) {
	set := func(path []any, value any) func(map[string]any) {
		return func(m map[string]any) {
			parent := at(m, path[:len(path)-1]...)
			switch k := path[len(path)-1].(type) {
			case string:
				parent.(map[string]any)[k] = value
			case int:
				parent.([]any)[k] = value
			}
		}
	}
	del := func(path ...any) func(map[string]any) {
		return func(m map[string]any) {
			delete(at(m, path[:len(path)-1]...).(map[string]any), path[len(path)-1].(string))
		}
	}
	p := func(path ...any) []any { return path }
	tests := []struct {
		name string
		rt   string // example to mutate, or "" to use body
		edit func(map[string]any)
		body string
		code string
		expr string // "" when the issue names no element
	}{
		// The body as a whole.
		{name: "array", body: `[]`, code: CodeStructure},
		{name: "string", body: `"Patient"`, code: CodeStructure},
		{name: "number", body: `42`, code: CodeStructure},
		{name: "null", body: `null`, code: CodeStructure},
		{name: "empty", body: ``, code: CodeStructure},
		{name: "truncated", body: `{"resourceType":"Patient",`, code: CodeStructure},
		{name: "trailing data", body: `{"resourceType":"Patient"} {}`, code: CodeStructure},
		{name: "not UTF-8", body: "{\"resourceType\":\"Patient\",\"gender\":\"\xff\"}", code: CodeStructure},
		{name: "too deep", body: string(nest(65)), code: CodeStructure},
		{name: "missing resourceType", body: `{"id":"a"}`, code: CodeRequired, expr: "resourceType"},
		{name: "resourceType not a string", body: `{"resourceType":7}`, code: CodeStructure, expr: "resourceType"},
		{name: "unknown resourceType", body: `{"resourceType":"Foo"}`, code: CodeNotSupported, expr: "resourceType"},
		{name: "unsupported resourceType", body: `{"resourceType":"Appointment","status":"booked"}`, code: CodeNotSupported, expr: "resourceType"},
		{name: "duplicate top-level key", body: `{"resourceType":"Patient","gender":"male","gender":"female"}`, code: CodeStructure, expr: "Patient.gender"},
		{name: "duplicate nested key", body: `{"resourceType":"Patient","name":[{"family":"A","family":"B"}]}`, code: CodeStructure, expr: "Patient.name[0].family"},

		// Wrong JSON types.
		{name: "status not a string", rt: "Observation", edit: set(p("status"), 1), code: CodeStructure, expr: "Observation.status"},
		{name: "subject not an object", rt: "Observation", edit: set(p("subject"), "Patient/pat-1"), code: CodeStructure, expr: "Observation.subject"},
		{name: "identifier not an array", rt: "Patient", edit: set(p("identifier"), map[string]any{"value": "x"}), code: CodeStructure, expr: "Patient.identifier"},
		{name: "birthDate not a string", rt: "Patient", edit: set(p("birthDate"), 19750412), code: CodeStructure, expr: "Patient.birthDate"},
		{name: "active not a boolean", rt: "Patient", edit: set(p("active"), "true"), code: CodeStructure, expr: "Patient.active"},
		{name: "rank not an integer", rt: "Encounter", edit: set(p("diagnosis", 0, "rank"), 1.5), code: CodeValue, expr: "Encounter.diagnosis[0].rank"},
		{name: "coding not an array", rt: "Observation", edit: set(p("code", "coding"), map[string]any{"code": "x"}), code: CodeStructure, expr: "Observation.code.coding"},
		{name: "given not strings", rt: "Patient", edit: set(p("name", 0, "given"), []any{1}), code: CodeStructure, expr: "Patient.name[0].given[0]"},
		{name: "null value", rt: "Patient", edit: set(p("gender"), nil), code: CodeStructure, expr: "Patient.gender"},
		{name: "empty array", rt: "Patient", edit: set(p("identifier"), []any{}), code: CodeStructure, expr: "Patient.identifier"},
		{name: "empty object", rt: "Observation", edit: set(p("encounter"), map[string]any{}), code: CodeStructure, expr: "Observation.encounter"},
		{name: "empty string", rt: "Patient", edit: set(p("name", 0, "family"), ""), code: CodeValue, expr: "Patient.name[0].family"},
		{name: "contained not an object", rt: "MedicationRequest", edit: set(p("contained", 0), "x"), code: CodeStructure, expr: "MedicationRequest.contained[0]"},
		{name: "contained without resourceType", rt: "MedicationRequest", edit: del("contained", 0, "resourceType"), code: CodeRequired, expr: "MedicationRequest.contained[0].resourceType"},
		{name: "two types of a choice", rt: "Observation", edit: set(p("effectivePeriod"), map[string]any{"start": "2024"}), code: CodeStructure, expr: "Observation.effectivePeriod"},

		// Dates.
		{name: "month 13", rt: "Patient", edit: set(p("birthDate"), "2024-13-01"), code: CodeValue, expr: "Patient.birthDate"},
		{name: "30 February", rt: "Patient", edit: set(p("birthDate"), "2024-02-30"), code: CodeValue, expr: "Patient.birthDate"},
		{name: "yesterday", rt: "Patient", edit: set(p("birthDate"), "yesterday"), code: CodeValue, expr: "Patient.birthDate"},
		{name: "birthDate with time", rt: "Patient", edit: set(p("birthDate"), "1975-04-12T10:00:00Z"), code: CodeValue, expr: "Patient.birthDate"},
		{name: "dateTime 30 February", rt: "Observation", edit: set(p("effectiveDateTime"), "2024-02-30T10:00:00Z"), code: CodeValue, expr: "Observation.effectiveDateTime"},
		{name: "dateTime without zone", rt: "Observation", edit: set(p("effectiveDateTime"), "2024-03-01T10:00:00"), code: CodeValue, expr: "Observation.effectiveDateTime"},
		{name: "dateTime without seconds", rt: "Observation", edit: set(p("effectiveDateTime"), "2024-03-01T10:00Z"), code: CodeValue, expr: "Observation.effectiveDateTime"},
		{name: "instant without time", rt: "Observation", edit: set(p("issued"), "2024-03-01"), code: CodeValue, expr: "Observation.issued"},
		{name: "period start in a period", rt: "Procedure", edit: set(p("performedPeriod", "start"), "2010-05-04T25:00:00Z"), code: CodeValue, expr: "Procedure.performedPeriod.start"},
		{name: "period ends before it starts", rt: "Encounter", edit: set(p("period", "end"), "2024-03-01T09:00:00+01:00"), code: CodeInvariant, expr: "Encounter.period"},
		{name: "meta.lastUpdated", rt: "Patient", edit: set(p("meta", "lastUpdated"), "2024-03-01"), code: CodeValue, expr: "Patient.meta.lastUpdated"},
		{name: "time", rt: "Observation", edit: func(m map[string]any) { m["component"].([]any)[0].(map[string]any)["valueTime"] = "24:00:00" }, code: CodeValue, expr: "Observation.component[0].valueTime"},

		// References.
		{name: "subject not Type/id", rt: "Observation", edit: set(p("subject", "reference"), "pat-1"), code: CodeValue, expr: "Observation.subject.reference"},
		{name: "subject without id", rt: "Observation", edit: set(p("subject", "reference"), "Patient/"), code: CodeValue, expr: "Observation.subject.reference"},
		{name: "subject id with space", rt: "Observation", edit: set(p("subject", "reference"), "Patient/a b"), code: CodeValue, expr: "Observation.subject.reference"},
		{name: "subject id too long", rt: "Condition", edit: set(p("subject", "reference"), "Patient/"+strings.Repeat("a", 65)), code: CodeValue, expr: "Condition.subject.reference"},
		{name: "subject absolute", rt: "Observation", edit: set(p("subject", "reference"), "https://other.example/fhir/Patient/pat-1"), code: CodeValue, expr: "Observation.subject.reference"},
		{name: "subject a Group", rt: "Observation", edit: set(p("subject", "reference"), "Group/g1"), code: CodeInvalid, expr: "Observation.subject.reference"},
		{name: "patient a Practitioner", rt: "AllergyIntolerance", edit: set(p("patient", "reference"), "Practitioner/prac-1"), code: CodeInvalid, expr: "AllergyIntolerance.patient.reference"},
		{name: "beneficiary a RelatedPerson", rt: "Coverage", edit: set(p("beneficiary", "reference"), "RelatedPerson/r1"), code: CodeInvalid, expr: "Coverage.beneficiary.reference"},
		{name: "subject type Group", rt: "Observation", edit: set(p("subject", "type"), "Group"), code: CodeInvalid, expr: "Observation.subject.type"},
		{name: "other reference malformed", rt: "Observation", edit: set(p("performer", 0, "reference"), "not a reference"), code: CodeValue, expr: "Observation.performer[0].reference"},
		{name: "lower-case type", rt: "Observation", edit: set(p("encounter", "reference"), "encounter/enc-1"), code: CodeValue, expr: "Observation.encounter.reference"},
		{name: "bad urn:uuid", rt: "Observation", edit: set(p("performer", 1, "reference"), "urn:uuid:not-a-uuid"), code: CodeValue, expr: "Observation.performer[1].reference"},

		// Ids.
		{name: "id with underscore", rt: "Patient", edit: set(p("id"), "pat_1"), code: CodeValue, expr: "Patient.id"},
		{name: "id too long", rt: "Patient", edit: set(p("id"), strings.Repeat("a", 65)), code: CodeValue, expr: "Patient.id"},
		{name: "id a number", rt: "Patient", edit: set(p("id"), 1), code: CodeStructure, expr: "Patient.id"},
		{name: "versionId", rt: "Patient", edit: set(p("meta", "versionId"), "v 1"), code: CodeValue, expr: "Patient.meta.versionId"},

		// Dutch identifiers (ID-4, ID-2).
		{name: "BSN failing the elfproef", rt: "Patient", edit: set(p("identifier", 0, "value"), "123456789"), code: CodeValue, expr: "Patient.identifier[0].value"},
		{name: "BSN of eight digits", rt: "Patient", edit: set(p("identifier", 0, "value"), "99991112"), code: CodeValue, expr: "Patient.identifier[0].value"},
		{name: "BSN in a reference", rt: "Observation", edit: set(p("subject"), map[string]any{"identifier": map[string]any{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "111111111"}}), code: CodeValue, expr: "Observation.subject.identifier.value"},
		{name: "URA of four digits", rt: "Organization", edit: set(p("identifier", 0, "value"), "1234"), code: CodeValue, expr: "Organization.identifier[0].value"},
		{name: "BIG with a letter", rt: "Practitioner", edit: set(p("identifier", 0, "value"), "1901234560X"), code: CodeValue, expr: "Practitioner.identifier[0].value"},

		// Codes bound to a required value set.
		{name: "status not in value set", rt: "Observation", edit: set(p("status"), "done"), code: CodeCodeInvalid, expr: "Observation.status"},
		{name: "gender M", rt: "Patient", edit: set(p("gender"), "M"), code: CodeCodeInvalid, expr: "Patient.gender"},
		{name: "code with double space", rt: "Patient", edit: set(p("gender"), "fe  male"), code: CodeValue, expr: "Patient.gender"},
		{name: "allergy category", rt: "AllergyIntolerance", edit: set(p("category", 0), "drug"), code: CodeCodeInvalid, expr: "AllergyIntolerance.category[0]"},

		// Required elements.
		{name: "Observation.status", rt: "Observation", edit: del("status"), code: CodeRequired, expr: "Observation.status"},
		{name: "Observation.code", rt: "Observation", edit: del("code"), code: CodeRequired, expr: "Observation.code"},
		{name: "Observation.component.code", rt: "Observation", edit: del("component", 1, "code"), code: CodeRequired, expr: "Observation.component[1].code"},
		{name: "Condition.subject", rt: "Condition", edit: del("subject"), code: CodeRequired, expr: "Condition.subject"},
		{name: "AllergyIntolerance.patient", rt: "AllergyIntolerance", edit: del("patient"), code: CodeRequired, expr: "AllergyIntolerance.patient"},
		{name: "AllergyIntolerance.reaction.manifestation", rt: "AllergyIntolerance", edit: del("reaction", 0, "manifestation"), code: CodeRequired, expr: "AllergyIntolerance.reaction[0].manifestation"},
		{name: "MedicationStatement.medication[x]", rt: "MedicationStatement", edit: del("medicationCodeableConcept"), code: CodeRequired, expr: "MedicationStatement.medication[x]"},
		{name: "MedicationStatement.subject", rt: "MedicationStatement", edit: del("subject"), code: CodeRequired, expr: "MedicationStatement.subject"},
		{name: "MedicationRequest.intent", rt: "MedicationRequest", edit: del("intent"), code: CodeRequired, expr: "MedicationRequest.intent"},
		{name: "MedicationRequest.medication[x]", rt: "MedicationRequest", edit: del("medicationReference"), code: CodeRequired, expr: "MedicationRequest.medication[x]"},
		{name: "Immunization.vaccineCode", rt: "Immunization", edit: del("vaccineCode"), code: CodeRequired, expr: "Immunization.vaccineCode"},
		{name: "Immunization.occurrence[x]", rt: "Immunization", edit: del("occurrenceDateTime"), code: CodeRequired, expr: "Immunization.occurrence[x]"},
		{name: "Immunization.performer.actor", rt: "Immunization", edit: del("performer", 0, "actor"), code: CodeRequired, expr: "Immunization.performer[0].actor"},
		{name: "Procedure.status", rt: "Procedure", edit: del("status"), code: CodeRequired, expr: "Procedure.status"},
		{name: "Encounter.class", rt: "Encounter", edit: del("class"), code: CodeRequired, expr: "Encounter.class"},
		{name: "Flag.code", rt: "Flag", edit: del("code"), code: CodeRequired, expr: "Flag.code"},
		{name: "Consent.scope", rt: "Consent", edit: del("scope"), code: CodeRequired, expr: "Consent.scope"},
		{name: "Consent.category", rt: "Consent", edit: del("category"), code: CodeRequired, expr: "Consent.category"},
		{name: "Coverage.payor", rt: "Coverage", edit: del("payor"), code: CodeRequired, expr: "Coverage.payor"},
		{name: "Coverage.beneficiary", rt: "Coverage", edit: del("beneficiary"), code: CodeRequired, expr: "Coverage.beneficiary"},
		{name: "DocumentReference.content", rt: "DocumentReference", edit: del("content"), code: CodeRequired, expr: "DocumentReference.content"},
		{name: "DocumentReference.content.attachment", rt: "DocumentReference", edit: del("content", 0, "attachment"), code: CodeRequired, expr: "DocumentReference.content[0].attachment"},
		{name: "extension.url", rt: "Observation", edit: del("extension", 0, "url"), code: CodeRequired, expr: "Observation.extension[0].url"},
		{name: "Patient.communication.language", rt: "Patient", edit: del("communication", 0, "language"), code: CodeRequired, expr: "Patient.communication[0].language"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			if tt.rt != "" {
				body = mutate(t, tt.rt, tt.edit)
			}
			res, err := Parse(body)
			if err == nil {
				t.Fatalf("Parse accepted %s", body)
			}
			if res != nil {
				t.Error("Parse returned a resource with its error")
			}
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("error %T is not a *ValidationError", err)
			}
			if !hasIssue(verr.Issues, tt.code, tt.expr) {
				t.Errorf("issues %+v lack code %q at %q", verr.Issues, tt.code, tt.expr)
			}
			for _, iss := range verr.Issues {
				if iss.Severity != SeverityError || iss.Diagnostics == "" {
					t.Errorf("issue %+v: want severity error and diagnostics", iss)
				}
			}
		})
	}
}

func hasIssue(issues []Issue, code, expr string) bool {
	for _, iss := range issues {
		if iss.Code != code {
			continue
		}
		if expr == "" && len(iss.Expression) == 0 || slices.Contains(iss.Expression, expr) {
			return true
		}
	}
	return false
}

func TestParseAccepts(t *testing.T) {
	set := func(key string, value any) func(map[string]any) {
		return func(m map[string]any) { m[key] = value }
	}
	tests := []struct {
		name string
		rt   string
		edit func(map[string]any)
		body string
	}{
		{name: "minimal Patient", body: `{"resourceType":"Patient"}`},
		{name: "whitespace around", body: " \n\t{\"resourceType\":\"Patient\"}\n"},
		{name: "nesting of 64", body: string(nest(64))},
		{name: "unknown element kept", rt: "Patient", edit: set("futureElement", map[string]any{"a": []any{1, 2}})},
		{name: "year only", rt: "Patient", edit: set("birthDate", "1975")},
		{name: "leap day", rt: "Patient", edit: set("birthDate", "2024-02-29")},
		{name: "leap second", rt: "Observation", edit: set("effectiveDateTime", "2016-12-31T23:59:60Z")},
		{name: "long fraction", rt: "Observation", edit: set("effectiveDateTime", "2024-03-01T10:00:00.1234567890123+14:00")},
		{name: "required primitive as extension only", rt: "Observation", edit: func(m map[string]any) {
			delete(m, "status")
			m["_status"] = map[string]any{"extension": []any{map[string]any{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}}}
		}},
		{name: "null in a primitive array with extension", rt: "Patient", edit: func(m map[string]any) {
			name := m["name"].([]any)[0].(map[string]any)
			name["given"] = []any{"Johanna", nil}
			name["_given"] = []any{nil, map[string]any{"extension": []any{map[string]any{"url": "http://example.org/x", "valueString": "M."}}}}
		}},
		{name: "subject by identifier only", rt: "Observation", edit: set("subject", map[string]any{"identifier": map[string]any{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999911120"}})},
		{name: "Observation without subject", rt: "Observation", edit: func(m map[string]any) { delete(m, "subject") }},
		{name: "absolute reference with history", rt: "Observation", edit: set("encounter", map[string]any{"reference": "https://fhir.example.org/r4/Encounter/enc-1/_history/2"})},
		{name: "urn:oid reference", rt: "Observation", edit: set("specimen", map[string]any{"reference": "urn:oid:1.2.840.10008"})},
		{name: "contained reference #", rt: "Observation", edit: set("device", map[string]any{"reference": "#dev"})},
		{name: "unknown identifier system", rt: "Patient", edit: set("identifier", []any{map[string]any{"system": "http://example.org/x", "value": "abc"}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			if tt.rt != "" {
				body = mutate(t, tt.rt, tt.edit)
			}
			if _, err := Parse(body); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

func TestParseReportsEveryIssue(t *testing.T) {
	body := mutate(t, "Observation", func(m map[string]any) {
		delete(m, "status")
		m["subject"] = map[string]any{"reference": "Group/1"}
		m["effectiveDateTime"] = "2024-02-30"
	})
	var verr *ValidationError
	if _, err := Parse(body); !errors.As(err, &verr) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"Observation.status", "Observation.subject.reference", "Observation.effectiveDateTime"} {
		if !slices.ContainsFunc(verr.Issues, func(i Issue) bool { return slices.Contains(i.Expression, want) }) {
			t.Errorf("no issue at %s in %+v", want, verr.Issues)
		}
	}
	if !strings.Contains(verr.Error(), "2 more") {
		t.Errorf("Error() = %q, want a count of the other issues", verr.Error())
	}
}

func TestParseBoundsIssues(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"resourceType":"Patient","identifier":[`)
	for i := range 500 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"value":1}`)
	}
	b.WriteString(`]}`)
	var verr *ValidationError
	if _, err := Parse([]byte(b.String())); !errors.As(err, &verr) {
		t.Fatalf("err = %v", err)
	}
	if len(verr.Issues) != maxIssues {
		t.Errorf("%d issues, want %d", len(verr.Issues), maxIssues)
	}
}

// Diagnostics name elements but never echo submitted values, which may be
// personal data that would end up in logs.
func TestDiagnosticsDoNotEchoValues(t *testing.T) {
	secret := "Geheim-Waarde"
	bodies := [][]byte{
		mutate(t, "Patient", func(m map[string]any) { m["birthDate"] = secret }),
		mutate(t, "Patient", func(m map[string]any) { m["gender"] = secret }),
		mutate(t, "Observation", func(m map[string]any) { m["subject"] = map[string]any{"reference": "Patient/" + secret + " x"} }),
		[]byte(`{"resourceType":"` + secret + ` !"}`),
	}
	for _, body := range bodies {
		_, err := Parse(body)
		if err == nil {
			t.Fatalf("Parse accepted %s", body)
		}
		out, _ := json.Marshal(err.(*ValidationError).Outcome())
		if strings.Contains(string(out), secret) || strings.Contains(err.Error(), secret) {
			t.Errorf("value echoed: %s", out)
		}
	}
}

func TestCheckPatientMatch(t *testing.T) {
	parse := func(rt string, edit func(map[string]any)) *Resource {
		t.Helper()
		body := example(t, rt)
		if edit != nil {
			body = mutate(t, rt, edit)
		}
		res, err := Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	tests := []struct {
		name    string
		res     *Resource
		patient string
		code    string // "" when accepted
		expr    string
	}{
		{"own patient", parse("Observation", nil), "pat-1", "", ""},
		{"other patient", parse("Observation", nil), "pat-2", CodeInvalid, "Observation.subject"},
		{"patient element", parse("AllergyIntolerance", nil), "pat-2", CodeInvalid, "AllergyIntolerance.patient"},
		{"beneficiary", parse("Coverage", nil), "pat-1", "", ""},
		{"no subject", parse("Observation", func(m map[string]any) { delete(m, "subject") }), "pat-1", CodeRequired, "Observation.subject"},
		{"subject by identifier", parse("Observation", func(m map[string]any) {
			m["subject"] = map[string]any{"identifier": map[string]any{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999911120"}}
		}), "pat-1", CodeRequired, "Observation.subject"},
		{"Patient itself", parse("Patient", nil), "pat-1", "", ""},
		{"Patient other id", parse("Patient", nil), "pat-2", CodeInvalid, "Patient.id"},
		{"Patient without id", parse("Patient", func(m map[string]any) { delete(m, "id") }), "pat-2", "", ""},
		{"Practitioner", parse("Practitioner", nil), "pat-1", CodeInvalid, "Practitioner"},
		{"nil", nil, "pat-1", CodeInvalid, ""},
		{"unknown type", &Resource{Type: "Basic"}, "pat-1", CodeNotSupported, "resourceType"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPatientMatch(tt.res, tt.patient)
			if tt.code == "" {
				if err != nil {
					t.Errorf("err = %v", err)
				}
				return
			}
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			if !hasIssue(verr.Issues, tt.code, tt.expr) {
				t.Errorf("issues %+v lack %s at %q", verr.Issues, tt.code, tt.expr)
			}
		})
	}
}
