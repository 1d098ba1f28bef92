package fhir

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// compactJSON returns b without insignificant whitespace.
func compactJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// topKeys returns the top-level keys of a JSON object in order.
func topKeys(t *testing.T, b []byte) []string {
	t.Helper()
	ms, ok := members(b)
	if !ok {
		t.Fatalf("not an object: %s", b)
	}
	var keys []string
	for _, m := range ms {
		keys = append(keys, m.key)
	}
	return keys
}

func TestWithMetaKeepsEverythingElse(t *testing.T) {
	lu := time.Date(2024, 5, 6, 7, 8, 9, 123000000, time.FixedZone("CEST", 2*3600))
	for _, rt := range ResourceTypes() {
		t.Run(rt, func(t *testing.T) {
			in := example(t, rt)
			out, err := WithMeta(in, "new-id", "7", lu)
			if err != nil {
				t.Fatal(err)
			}
			// Every element except id and meta is kept byte for byte
			// (whitespace aside) and in its order.
			inMembers, _ := members(in)
			outMembers, _ := members(out)
			var kept []member
			for _, m := range outMembers {
				if m.key != "id" && m.key != "meta" {
					kept = append(kept, m)
				}
			}
			i := 0
			for _, m := range inMembers {
				if m.key == "id" || m.key == "meta" {
					continue
				}
				if i >= len(kept) || kept[i].key != m.key || !bytes.Equal(kept[i].value, compactJSON(t, m.value)) {
					t.Fatalf("element %q not kept verbatim in order", m.key)
				}
				i++
			}
			if i != len(kept) {
				t.Errorf("WithMeta added elements: %v", topKeys(t, out))
			}
			if keys := topKeys(t, out); !slices.Equal(keys[:3], []string{"resourceType", "id", "meta"}) {
				t.Errorf("keys start %v", keys[:3])
			}
			res, err := Parse(out)
			if err != nil {
				t.Fatalf("Parse(WithMeta(...)): %v", err)
			}
			if res.ID != "new-id" || res.Meta.VersionID != "7" || !res.Meta.LastUpdated.Equal(lu) {
				t.Errorf("id, meta = %q, %+v", res.ID, res.Meta)
			}
			if !strings.Contains(string(out), `"lastUpdated":"2024-05-06T05:08:09.123Z"`) {
				t.Errorf("lastUpdated not in UTC: %s", out)
			}
			// Deterministic: the same input gives the same bytes, and so
			// does the same resource without its whitespace.
			again, _ := WithMeta(in, "new-id", "7", lu)
			fromCompact, _ := WithMeta(compactJSON(t, in), "new-id", "7", lu)
			if !bytes.Equal(out, again) || !bytes.Equal(out, fromCompact) {
				t.Error("WithMeta is not deterministic")
			}
		})
	}
}

func TestWithMetaKeepsExtensionsVerbatim(t *testing.T) {
	ext := `[{"url":"http://example.org/fhir/StructureDefinition/weird","valueDecimal":1.50,"extension":[{"url":"x","valueString":"caf\u00e9 \"q\""}]}]`
	in := []byte(`{"resourceType":"Patient","extension":` + ext + `,"meta":{"versionId":"1","lastUpdated":"2020-01-01T00:00:00Z","security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"PSY"}],"extension":[{"url":"m","valueInteger":1}]},"modifierExtension":[{"url":"http://example.org/mod","valueBoolean":true}],"id":"old","futureElement":{"n":1e3}}`)
	out, err := WithMeta(in, "p1", "2", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"resourceType":"Patient","id":"p1","meta":{"versionId":"2","lastUpdated":"2024-01-02T03:04:05Z","security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"PSY"}],"extension":[{"url":"m","valueInteger":1}]},"extension":` + ext + `,"modifierExtension":[{"url":"http://example.org/mod","valueBoolean":true}],"futureElement":{"n":1e3}}`
	if string(out) != want {
		t.Errorf("WithMeta =\n%s\nwant\n%s", out, want)
	}
}

func TestWithMetaRejects(t *testing.T) {
	lu := time.Unix(0, 0)
	tests := []struct {
		name, raw, id, vid string
	}{
		{"not JSON", `{`, "a", "1"},
		{"array", `[]`, "a", "1"},
		{"no resourceType", `{"id":"a"}`, "a", "1"},
		{"meta not an object", `{"resourceType":"Patient","meta":[]}`, "a", "1"},
		{"bad id", `{"resourceType":"Patient"}`, "a b", "1"},
		{"bad versionId", `{"resourceType":"Patient"}`, "a", ""},
	}
	for _, tt := range tests {
		if _, err := WithMeta([]byte(tt.raw), tt.id, tt.vid, lu); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

func subsettedTag(t *testing.T, b []byte) int {
	t.Helper()
	var r struct {
		Meta struct {
			Tag []Coding `json:"tag"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range r.Meta.Tag {
		if c.System == systemObservationValue && c.Code == codeSubsetted {
			n++
		}
	}
	return n
}

func TestElements(t *testing.T) {
	tests := []struct {
		rt    string
		names []string
		want  []string
	}{
		{"Observation", []string{"status"}, []string{"resourceType", "id", "meta", "status"}},
		{"Observation", []string{"effective", "Observation.code"}, []string{"resourceType", "id", "meta", "code", "effectiveDateTime"}},
		{"Observation", []string{"value"}, []string{"resourceType", "id", "meta"}}, // no value[x] at top level in the example
		{"Patient", []string{"family"}, []string{"resourceType", "id", "meta"}},    // not a top-level element
		{"Patient", []string{"birthDate", "name", "deceased"}, []string{"resourceType", "id", "meta", "name", "birthDate", "deceasedBoolean"}},
		{"Condition", []string{"onset"}, []string{"resourceType", "id", "meta", "onsetDateTime"}},
		{"MedicationStatement", []string{"status"}, []string{"resourceType", "id", "meta", "status"}}, // not statusReason
	}
	for _, tt := range tests {
		out, err := Elements(example(t, tt.rt), tt.names)
		if err != nil {
			t.Fatalf("%s %v: %v", tt.rt, tt.names, err)
		}
		if got := topKeys(t, out); !slices.Equal(got, tt.want) {
			t.Errorf("%s %v: keys %v, want %v", tt.rt, tt.names, got, tt.want)
		}
		if n := subsettedTag(t, out); n != 1 {
			t.Errorf("%s %v: %d SUBSETTED tags", tt.rt, tt.names, n)
		}
	}
	// Primitive extensions go with their element; modifierExtension always stays.
	in := []byte(`{"resourceType":"Patient","_birthDate":{"extension":[{"url":"x","valueString":"y"}]},"birthDate":"2000","gender":"male","modifierExtension":[{"url":"m","valueBoolean":true}]}`)
	out, err := Elements(in, []string{"birthDate"})
	if err != nil {
		t.Fatal(err)
	}
	if got := topKeys(t, out); !slices.Equal(got, []string{"resourceType", "meta", "_birthDate", "birthDate", "modifierExtension"}) {
		t.Errorf("keys %v", got)
	}
	// Subsetting twice does not tag twice.
	twice, _ := Elements(out, []string{"birthDate"})
	if n := subsettedTag(t, twice); n != 1 {
		t.Errorf("%d SUBSETTED tags after subsetting twice", n)
	}
}

func TestSummary(t *testing.T) {
	out, err := Summary(example(t, "Patient"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"resourceType", "id", "meta", "identifier", "active", "name", "gender", "birthDate"}
	if got := topKeys(t, out); !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
	if n := subsettedTag(t, out); n != 1 {
		t.Errorf("%d SUBSETTED tags", n)
	}
	// The rest of meta survives.
	if !strings.Contains(string(out), `"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"N"}]`) {
		t.Errorf("meta.security lost: %s", out)
	}
	out, err = Summary(example(t, "Observation"))
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"resourceType", "id", "meta", "status", "category", "code", "subject", "effectiveDateTime"}
	if got := topKeys(t, out); !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
	if _, err := Summary([]byte(`{"x":1}`)); err == nil {
		t.Error("Summary accepted JSON without resourceType")
	}
}
