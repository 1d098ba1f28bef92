package fhir

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzParse checks that Parse never panics, that it fails only with a
// *ValidationError, and that whatever it accepts survives the server's own
// rewrites: WithMeta, Elements and Summary give JSON that parses (WithMeta's
// output as the same resource).
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "valid", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"resourceType":"Patient"}`,
		`{"resourceType":"Patient","gender":"male","gender":"female"}`,
		`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/1"},"effectivePeriod":{"start":"2024","end":"2023"}}`,
		`{"resourceType":"MedicationRequest","contained":[{"resourceType":"Patient","contained":[]}]}`,
		`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`,
		`{"resourceType":"Patient","name":[{"given":["a",null]}],"_id":{}}`,
		"{\"resourceType\":\"Patient\",\"id\":\"\\u00e9\"}",
	} {
		f.Add([]byte(s))
	}
	lu := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := Parse(body)
		if err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Issues) == 0 {
				t.Fatalf("Parse error %v is not a *ValidationError with issues", err)
			}
			if _, err := json.Marshal(verr.Outcome()); err != nil {
				t.Fatal(err)
			}
			return
		}
		if len(Categories(res)) == 0 {
			t.Fatal("no categories")
		}
		out, err := WithMeta(res.Raw, "fz", "1", lu)
		if err != nil {
			t.Fatalf("WithMeta on an accepted resource: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(WithMeta(accepted)): %v\n%s", err, out)
		}
		if again.Type != res.Type || again.ID != "fz" || again.Meta.VersionID != "1" ||
			(res.Type != "Patient" && again.Patient != res.Patient) || len(again.Codes) != len(res.Codes) {
			t.Fatalf("WithMeta changed the resource:\n%s\n%s", body, out)
		}
		summary, err := Summary(res.Raw)
		if err != nil || !json.Valid(summary) {
			t.Fatalf("Summary: %v %s", err, summary)
		}
		elems, err := Elements(res.Raw, []string{"status", "subject", "effective"})
		if err != nil || !json.Valid(elems) {
			t.Fatalf("Elements: %v %s", err, elems)
		}
	})
}

func BenchmarkParseObservation(b *testing.B) {
	body := example(b, "Observation")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWithMeta(b *testing.B) {
	body := example(b, "Observation")
	lu := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := WithMeta(body, "bp-1", "2", lu); err != nil {
			b.Fatal(err)
		}
	}
}
