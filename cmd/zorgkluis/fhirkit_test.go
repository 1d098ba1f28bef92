package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// fhirKitVersion is the fhir-kit-client release the test pins.
const fhirKitVersion = "2.0.3"

// TestFHIRKitClient drives the real server with the npm fhir-kit-client
// over HTTPS (trusting the demo certificate): create, read, search with
// paging, update with If-Match and the conditional errors a client must
// see (412, 409, 404, 400, 422), history, vread, delete (410) and
// $everything. npm and node are required: without them the test fails.
//
// REQ: EX-2, DP-7
func TestFHIRKitClient(t *testing.T) {
	if testing.Short() {
		t.Skip("installs an npm package and starts the server")
	}
	dir := t.TempDir()
	install := exec.Command("npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "fhir-kit-client@"+fhirKitVersion)
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm install fhir-kit-client@%s: %v\n%s", fhirKitVersion, err, out)
	}
	script, err := os.ReadFile(filepath.Join("testdata", "fhirkit.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	// ESM resolves packages from the script's directory.
	if err := os.WriteFile(filepath.Join(dir, "fhirkit.mjs"), script, 0o600); err != nil {
		t.Fatal(err)
	}

	bin := buildBinary(t)
	data := t.TempDir()
	srv := startServer(t, bin, data)
	creds := readCreds(t, data)
	tok := logon(t, client(), srv.base, demoUser(t, creds, "dr.jansen"))

	node := exec.Command("node", "fhirkit.mjs")
	node.Dir = dir
	node.Env = append(os.Environ(), "ZK_BASE="+srv.base, "ZK_TOKEN="+tok, "ZK_PATIENT="+creds.PatientID,
		"NODE_EXTRA_CA_CERTS="+filepath.Join(data, "demo-cert.pem"))
	out, err := node.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node: %v\n%s\n%s", err, out, stderr)
	}
	type failure struct {
		Status       any
		ResourceType string
		Expression   []string
	}
	var got struct {
		FhirVersion, CreatedVersion, UpdatedVersion, EverythingType string
		ReadValue, UpdatedValue, VreadValue                         float64
		SearchTotal, SearchPage1, HistoryTotal                      int
		StaleIfMatch, StaleVersionID, NotFound, Invalid             failure
		OtherPatient, AfterDelete                                   failure
		EverythingHasCreated                                        bool
	}
	var raw map[string]any
	if err := json.Unmarshal(out, &got); err != nil || json.Unmarshal(out, &raw) != nil {
		t.Fatalf("node output: %v\n%s", err, out)
	}
	p1, p2 := raw["searchPage1Id"], raw["searchPage2Id"]
	checks := []struct {
		name string
		ok   bool
	}{
		{"capability statement", got.FhirVersion == "4.0.1"},
		{"create sets version 1", got.CreatedVersion == "1"},
		{"read", got.ReadValue == 180},
		{"search total over pages", got.SearchTotal == 2 && got.SearchPage1 == 1},
		{"next page is another resource", p1 != nil && p2 != nil && p1 != p2},
		{"update with If-Match", got.UpdatedVersion == "2" && got.UpdatedValue == 182},
		{"stale If-Match is 412", got.StaleIfMatch.Status == float64(412) && got.StaleIfMatch.ResourceType == "OperationOutcome"},
		{"stale meta.versionId is 409", got.StaleVersionID.Status == float64(409) && got.StaleVersionID.ResourceType == "OperationOutcome"},
		{"unknown id is 404", got.NotFound.Status == float64(404) && got.NotFound.ResourceType == "OperationOutcome"},
		{"invalid resource is 400 naming the element", got.Invalid.Status == float64(400) && len(got.Invalid.Expression) > 0 && got.Invalid.Expression[0] == "Observation.status"},
		{"another patient's subject is 422", got.OtherPatient.Status == float64(422) && got.OtherPatient.ResourceType == "OperationOutcome"},
		{"history", got.HistoryTotal == 2},
		{"vread of version 1", got.VreadValue == 180},
		{"read after delete is 410", got.AfterDelete.Status == float64(410)},
		{"$everything", got.EverythingType == "searchset" && got.EverythingHasCreated},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: not as expected; client saw:\n%s", c.name, out)
		}
	}
	t.Logf("fhir-kit-client saw: %s", out)
	srv.stop(t)
}
