package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/compliance"
)

// End to end through the binary: the officer's admin-log review of this
// month holds the officer's own reading of the log, which the officer may
// not mark (four eyes) but an admin may; the controls register refuses an
// executable named .pdf and a document over 5 MB and takes a PDF; `audit
// verify` logs its outcome; `compliance report --json` prints an object
// with a controls array, the audit-verify and settings evidence green with
// proofs that check with the public key alone, the restore test red (no
// backup schedule in tests); without --json the report is HTML.
//
// REQ: GOV-3, LOG-7
func TestComplianceReportThroughTheBinary(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	srv := startServer(t, bin, data)
	creds := readCreds(t, data)
	c := client()
	off := logon(t, c, srv.base, demoUser(t, creds, "security.mulder"))
	adm := logon(t, c, srv.base, demoUser(t, creds, "beheer.smit"))

	// LOG-7: this month's admin events, the officer's own among them.
	month := time.Now().UTC().Format("2006-01")
	if code, b, _ := do(t, c, "POST", srv.base+"/api/v1/admin-log-reviews", adm, map[string]string{"period": month}); code != http.StatusForbidden {
		t.Fatalf("an admin opened the admin-log review: %d %s", code, b)
	}
	code, b, _ := do(t, c, "POST", srv.base+"/api/v1/admin-log-reviews", off, map[string]string{"period": month})
	if code != http.StatusCreated {
		t.Fatalf("open admin-log review: %d %s", code, b)
	}
	var rep struct {
		ID    string
		Lines []struct {
			N       int    `json:"line"`
			ActorID string `json:"actor_id"`
			Role    string
		}
	}
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Lines) == 0 {
		t.Fatalf("admin-log review: %v %s", err, b)
	}
	officerID := demoUser(t, creds, "security.mulder").AccountID
	own := 0
	for _, l := range rep.Lines {
		if l.ActorID == officerID {
			own = l.N
		}
	}
	if own == 0 {
		t.Fatalf("the officer's reading of the log is not in the review: %s", b)
	}
	line := srv.base + "/api/v1/admin-log-reviews/" + rep.ID + "/lines/" + itoa(own)
	if code, b, _ := do(t, c, "POST", line, off, map[string]string{"finding": "ok"}); code != http.StatusForbidden || !strings.Contains(string(b), "Four eyes") {
		t.Fatalf("the officer marked their own action: %d %s", code, b)
	}
	if code, b, _ := do(t, c, "POST", line, adm, map[string]string{"finding": "ok"}); code != http.StatusNoContent {
		t.Fatalf("the admin marks the officer's action: %d %s", code, b)
	}

	// GOV-3: uploads are sniffed and bounded.
	upload := func(name string, body []byte) (int, []byte) {
		req, _ := http.NewRequest("POST", srv.base+"/api/v1/controls/medmij/A.18.2.3/documents?name="+name, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+off)
		req.Header.Set("Content-Type", "application/pdf") // the client's word counts for nothing
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out bytes.Buffer
		out.ReadFrom(resp.Body)
		return resp.StatusCode, out.Bytes()
	}
	exe := append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00"), bytes.Repeat([]byte{0}, 500)...)
	if code, b := upload("pentest.pdf", exe); code != http.StatusUnsupportedMediaType {
		t.Fatalf("an executable named .pdf: %d %s", code, b)
	}
	pdf := []byte("%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n")
	if code, b := upload("pentest.pdf", append(pdf, bytes.Repeat([]byte("%"), compliance.MaxDocument)...)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a PDF over 5 MB: %d %s", code, b)
	}
	if code, b := upload("pentest.pdf", pdf); code != http.StatusCreated {
		t.Fatalf("a PDF: %d %s", code, b)
	}
	if code, b, _ := do(t, c, "GET", srv.base+"/api/v1/compliance/report", off, nil); code != http.StatusOK || !strings.Contains(string(b), `"controls":[`) {
		t.Fatalf("the report through the API: %d %.300s", code, b)
	}

	// audit verify logs its outcome; the report shows it once signed.
	flags := []string{"--data", data}
	if out, err := exec.Command(bin, append([]string{"audit", "verify"}, flags...)...).CombinedOutput(); err != nil {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	key, err := exec.Command(bin, append([]string{"audit", "public-key"}, flags...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	var report compliance.Report
	var out []byte
	for try := 0; ; try++ {
		out, err = exec.Command(bin, append([]string{"compliance", "report", "--json"}, flags...)...).Output()
		if err != nil {
			t.Fatalf("compliance report --json: %v\n%s", err, out)
		}
		report = compliance.Report{}
		if err := json.Unmarshal(out, &report); err != nil {
			t.Fatalf("not JSON: %v\n%.500s", err, out)
		}
		if evidence(report, "medmij/A.12.4.1", compliance.KindAuditVerify).Status == compliance.Green {
			break
		}
		if try == 50 {
			t.Fatalf("the audit verify evidence never turned green: %+v", evidence(report, "medmij/A.12.4.1", compliance.KindAuditVerify))
		}
		time.Sleep(100 * time.Millisecond) // the sequencer signs every 500 ms
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(out, &raw); err != nil || !bytes.HasPrefix(bytes.TrimSpace(raw["controls"]), []byte("[")) {
		t.Fatalf("no controls array: %.300s", out)
	}
	if len(report.Controls) != len(compliance.Controls()) || report.TenantID != creds.TenantID {
		t.Fatalf("%d controls for tenant %q", len(report.Controls), report.TenantID)
	}
	for _, it := range []compliance.Evidence{evidence(report, "medmij/A.12.4.1", compliance.KindAuditVerify), evidence(report, "medmij/A.10.1.1", compliance.KindSettings)} {
		if it.Status != compliance.Green || len(it.Proofs) == 0 {
			t.Fatalf("evidence %s: %+v", it.Kind, it)
		}
		if _, err := audit.CheckProof(it.Proofs[0], strings.TrimSpace(string(key))); err != nil {
			t.Fatalf("the %s proof does not check with the public key: %v", it.Kind, err)
		}
	}
	if it := evidence(report, "medmij/A.12.3.1", compliance.KindRestoreTest); it.Status != compliance.Red {
		t.Fatalf("no backup schedule, yet the restore test is %+v", it)
	}

	html, err := exec.Command(bin, append([]string{"compliance", "report"}, flags...)...).Output()
	if err != nil || !strings.Contains(string(html), "<table>") || !strings.Contains(string(html), "A.12.3.1") {
		t.Fatalf("compliance report (HTML): %v\n%.300s", err, html)
	}
	if code := exec.Command(bin, "compliance", "nonsense").Run(); code == nil {
		t.Fatal("an unknown compliance action succeeded")
	}
}

func evidence(r compliance.Report, control, kind string) compliance.Evidence {
	for _, row := range r.Controls {
		if row.ID != control {
			continue
		}
		for _, it := range row.Items {
			if it.Kind == kind {
				return it
			}
		}
	}
	return compliance.Evidence{}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
