package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"net/http/httptest"

	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// runCLI runs the zorgkluis command in-process and returns its exit status,
// stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), env{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}, args)
	return code, out.String(), errOut.String()
}

// signedLog writes n read events of tenant t1, with patients p0..p2 and
// users u0..u1, under the signing key in data (as serve would), sequences
// them, and returns the event ids in tree order.
func signedLog(t *testing.T, dbURL, data string, n int) []string {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	signer, _, err := audit.LoadOrCreateSigner(auditKeyPath(data), auditKeyName)
	if err != nil {
		t.Fatal(err)
	}
	l := audit.New(db, clock.System{}, rand.Reader, audit.WithSigner(signer))
	defer l.Close()
	for i := range n {
		if _, err := l.Append(ctx, audit.Event{Action: audit.ActionRead, Outcome: audit.OutcomeSuccess, TenantID: "t1",
			UserID: fmt.Sprintf("u%d", i%2), UserName: "Dr. Test", Role: "huisarts", Basis: "care-relationship",
			PatientID: fmt.Sprintf("p%d", i%3), Resources: []string{fmt.Sprintf("Observation/o%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Sequence(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, `SELECT event_id FROM audit_leaves WHERE tenant_id = 't1' ORDER BY idx`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if len(ids) != n {
		t.Fatalf("%d leaves; want %d", len(ids), n)
	}
	return ids
}

// TestAuditVerifyNamesTampering changes the log behind zorgkluis's back, as
// someone with database access would, in SQLite and in PostgreSQL, and
// expects `zorgkluis audit verify` to name every change.
//
// REQ: LOG-2
func TestAuditVerifyNamesTampering(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			data := t.TempDir()
			dbURL := filepath.Join(data, "zorgkluis.db")
			if dialect == "postgres" {
				dbURL = storetest.PostgresURL(t)
			}
			pos := signedLog(t, dbURL, data, 12)
			flags := []string{"--data", data, "--database", dbURL}
			code, out, errOut := runCLI(t, append([]string{"audit", "verify"}, flags...)...)
			if code != 0 || !strings.Contains(out, "OK: the access log is intact: 12 events") {
				t.Fatalf("intact log: exit %d\n%s%s", code, out, errOut)
			}

			ctx := context.Background()
			db, err := store.Open(ctx, dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := db.ExecContext(ctx, q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			// Edited: the body of an event says another user name.
			exec(`UPDATE audit_events SET body = REPLACE(body, '"userName":"Dr. Test"', '"userName":"Dr. Else"') WHERE id = $1`, pos[1])
			// Deleted.
			exec(`DELETE FROM audit_events WHERE id = $1`, pos[3])
			// Reordered: two events swap places in the tree.
			exec(`UPDATE audit_leaves SET event_id = 'swap' WHERE event_id = $1`, pos[5])
			exec(`UPDATE audit_leaves SET event_id = $1 WHERE event_id = $2`, pos[5], pos[6])
			exec(`UPDATE audit_leaves SET event_id = $1 WHERE event_id = 'swap'`, pos[6])
			// Index columns changed so that the patient's or user's view,
			// or a period or action search, no longer finds the event.
			exec(`UPDATE audit_events SET patient_id = 'someone-else' WHERE id = $1`, pos[7])
			exec(`UPDATE audit_events SET user_id = 'u9' WHERE id = $1`, pos[8])
			exec(`UPDATE audit_events SET time = time - 86400000000 WHERE id = $1`, pos[9])
			exec(`UPDATE audit_events SET action = 'search' WHERE id = $1`, pos[10])
			// Inserted: a made-up event whose columns match its body.
			fake := audit.Event{ID: "0000000000000000000000000000fa4e", Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
				Action: audit.ActionRead, Outcome: audit.OutcomeSuccess, Kind: audit.KindAccess, TenantID: "t1", UserID: "u0", PatientID: "p0"}
			body, _ := fake.Canonical()
			exec(`INSERT INTO audit_events (id, tenant_id, time, action, outcome, user_id, patient_id, emergency, kind, body)
				VALUES ($1, 't1', $2, 'read', 'success', 'u0', 'p0', FALSE, 'access', $3)`, fake.ID, fake.Time.UnixMicro(), string(body))

			// REQ: LOG-9 — a failed verification reaches the security
			// officer: a warning line and the alert webhook.
			hooked := make(chan alert.Event, 4)
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var ev alert.Event
				if json.NewDecoder(r.Body).Decode(&ev) == nil {
					hooked <- ev
				}
			}))
			defer hook.Close()
			code, out, errOut = runCLI(t, append([]string{"audit", "verify", "--alert-webhook", hook.URL}, flags...)...)
			if code != 1 || !strings.Contains(out, "DAMAGED:") {
				t.Fatalf("tampered log: exit %d; want 1\n%s%s", code, out, errOut)
			}
			if !strings.Contains(errOut, `"kind":"audit-verify-failed"`) {
				t.Errorf("no security-event warning for the failed verification:\n%s", errOut)
			}
			select {
			case ev := <-hooked:
				if ev.Kind != "audit-verify-failed" || ev.TenantID != "t1" || !strings.Contains(ev.Detail, "deleted event") {
					t.Errorf("webhook event %+v", ev)
				}
			case <-time.After(10 * time.Second):
				t.Error("the failed verification did not reach the webhook")
			}
			t.Logf("audit verify of the tampered log:\n%s", out)
			for _, want := range []struct{ label, event, detail string }{
				{"edited event", pos[1], ""},
				{"deleted event", pos[3], ""},
				{"reordered event", pos[5], "position 6"},
				{"reordered event", pos[6], "position 5"},
				{"tampered index column", pos[7], "patient_id"},
				{"tampered index column", pos[8], "user_id"},
				{"tampered index column", pos[9], "time"},
				{"tampered index column", pos[10], "action"},
				{"inserted event", fake.ID, ""},
			} {
				if !hasDamageLine(out, want.label, want.event, want.detail) {
					t.Errorf("verify does not report %s of %s (%s):\n%s", want.label, want.event, want.detail, out)
				}
			}
			// The untouched events are not accused.
			for _, i := range []int{0, 2, 4, 11} {
				if strings.Contains(out, pos[i]) {
					t.Errorf("intact event %d (%s) reported:\n%s", i, pos[i], out)
				}
			}
		})
	}
}

func hasDamageLine(out, label, event, detail string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "DAMAGE "+label) && strings.Contains(line, "event "+event) && strings.Contains(line, detail) {
			return true
		}
	}
	return false
}

func TestAuditUsage(t *testing.T) {
	code, out, _ := runCLI(t, "audit", "--help")
	for _, want := range []string{"verify", "proof EVENT_ID", "check-proof FILE", "public-key", "--key-file", "--data"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("audit --help: exit %d, lacks %q:\n%s", code, want, out)
		}
	}
	if code, _, errOut := runCLI(t, "audit", "proof"); code != 2 || !strings.Contains(errOut, "needs 1 argument") {
		t.Fatalf("proof without an id: exit %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "audit", "check-proof", "x.json"); code != 2 || !strings.Contains(errOut, "--key") {
		t.Fatalf("check-proof without a key: exit %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "audit", "verify", "--data", t.TempDir()); code != 3 || !strings.Contains(errOut, "no checkpoint signing key") {
		t.Fatalf("verify of an empty data dir: exit %d %s", code, errOut)
	}
	// check-proof refuses the private key file, which must stay on the server.
	data := t.TempDir()
	if _, _, err := audit.LoadOrCreateSigner(auditKeyPath(data), auditKeyName); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "audit", "check-proof", "x.json", "--key-file", auditKeyPath(data)); code != 2 || !strings.Contains(errOut, "private signing key") ||
		strings.Contains(errOut, "PRIVATE+KEY") {
		t.Fatalf("check-proof with the private key file: exit %d %s", code, errOut)
	}
}

// TestAuditCrashAndOfflineProof kills the real server with SIGKILL during a
// concurrent write load over HTTPS. After a restart every create the server
// acknowledged has its access-log event, the log verifies, and a proof
// exported from it checks offline with the public key alone after the
// server has stopped and its data is gone.
//
// REQ: LOG-2, LOG-3
func TestAuditCrashAndOfflineProof(t *testing.T) {
	bin := buildBinary(t)
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			data := t.TempDir()
			var env []string
			dbURL := filepath.Join(data, "zorgkluis.db")
			if dialect == "postgres" {
				dbURL = storetest.PostgresURL(t)
				env = append(env, "ZK_DATABASE_URL="+dbURL)
			}
			srv := startServer(t, bin, data, env...)
			creds := readCreds(t, data)
			c := client()
			tok := logon(t, c, srv.base, demoUser(t, creds, "dr.jansen"))

			acked := createLoad(t, c, srv, tok, creds.PatientID)
			if len(acked) == 0 {
				t.Fatal("no create was acknowledged before the kill")
			}
			t.Logf("%d creates acknowledged before SIGKILL", len(acked))

			// Every acknowledged create has its event (LOG-3), also before
			// any restart: the event was durable before the response.
			ctx := context.Background()
			db, err := store.Open(ctx, dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			events := createEvents(t, db)
			for _, ref := range acked {
				if events[ref] == "" {
					t.Errorf("acknowledged %s has no create event", ref)
				}
			}

			// After a restart the sequencer signs what the crash left
			// unsigned; a proof of an acknowledged create can be exported.
			srv2 := startServer(t, bin, data, env...)
			flags := []string{"--data", data}
			if dialect == "postgres" {
				flags = append(flags, "--database", dbURL)
			}
			eventID := events[acked[len(acked)-1]]
			var proof []byte
			for try := 0; ; try++ {
				out, err := exec.Command(bin, append([]string{"audit", "proof", eventID}, flags...)...).Output()
				if err == nil {
					proof = out
					break
				}
				if try == 50 {
					t.Fatalf("audit proof %s: %v %s", eventID, err, out)
				}
				time.Sleep(100 * time.Millisecond) // the sequencer runs every 500 ms
			}
			// A write right before SIGTERM is signed by the last checkpoint
			// at shutdown.
			if code, b := post(c, srv2.base, tok, creds.PatientID); code != 201 {
				t.Fatalf("create after restart: %d %s", code, b)
			}
			srv2.stop(t)
			var pending int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_pending`).Scan(&pending); err != nil || pending != 0 {
				t.Fatalf("%d events without a checkpoint after a clean shutdown (%v)", pending, err)
			}
			if !strings.Contains(srv2.stderr.String(), "last checkpoint signed") {
				t.Errorf("no last checkpoint at shutdown:\n%s", srv2.stderr)
			}

			out, err := exec.Command(bin, append([]string{"audit", "verify"}, flags...)...).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "OK: the access log is intact") {
				t.Fatalf("audit verify after the crash: %v\n%s", err, out)
			}
			key, err := exec.Command(bin, append([]string{"audit", "public-key"}, flags...)...).Output()
			if err != nil || !strings.HasPrefix(string(key), auditKeyName+"+") {
				t.Fatalf("audit public-key: %v %s", err, key)
			}

			// Offline: only the proof and the public key, no data directory.
			away := t.TempDir()
			proofFile, keyFile := filepath.Join(away, "proof.json"), filepath.Join(away, "key.txt")
			os.WriteFile(proofFile, proof, 0o600)
			os.WriteFile(keyFile, key, 0o600)
			db.Close()
			if err := os.RemoveAll(data); err != nil {
				t.Fatal(err)
			}
			out, err = exec.Command(bin, "audit", "check-proof", proofFile, "--key-file", keyFile).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "OK: event "+eventID) || !strings.Contains(string(out), creds.PatientID) {
				t.Fatalf("check-proof offline: %v\n%s", err, out)
			}
			forged := bytes.Replace(proof, []byte(`\"action\":\"create\"`), []byte(`\"action\":\"update\"`), 1)
			if bytes.Equal(forged, proof) {
				t.Fatalf("proof does not carry the event as expected:\n%s", proof)
			}
			os.WriteFile(proofFile, forged, 0o600)
			cmd := exec.Command(bin, "audit", "check-proof", proofFile, "--key", strings.TrimSpace(string(key)))
			out, err = cmd.CombinedOutput()
			if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "INVALID") {
				t.Fatalf("forged proof: %v\n%s", err, out)
			}
		})
	}
}

// createLoad runs concurrent FHIR creates, kills the server with SIGKILL
// mid-load and returns the references the server acknowledged with 201.
// Bounded: 8 workers, at most 150 requests each, at most 4 seconds.
func createLoad(t *testing.T, c *http.Client, srv *running, tok, patient string) []string {
	t.Helper()
	const workers, perWorker = 8, 150
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	deadline := time.Now().Add(4 * time.Second)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWorker {
				if time.Now().After(deadline) {
					return
				}
				code, loc := post(c, srv.base, tok, patient)
				if code == 0 {
					return // the server is gone
				}
				if code == 201 {
					mu.Lock()
					acked = append(acked, loc)
					mu.Unlock()
				}
			}
		}()
	}
	// Kill once the load is well under way.
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 100 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.done
	wg.Wait()
	return acked
}

// post creates an Observation and returns the status and the new version's
// reference ("Observation/<id>/_history/1"); status 0 when the request
// failed at the transport.
func post(c *http.Client, base, tok, patient string) (int, string) {
	body := `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},` +
		`"subject":{"reference":"Patient/` + patient + `"},"effectiveDateTime":"2026-01-15T10:00:00Z","valueQuantity":{"value":72,"unit":"kg"}}`
	req, err := http.NewRequest("POST", base+"/fhir/Observation", strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 201 {
		return resp.StatusCode, string(b)
	}
	loc := resp.Header.Get("Location")
	i := strings.Index(loc, "/fhir/")
	if i < 0 {
		return 500, "no Location: " + loc
	}
	return resp.StatusCode, loc[i+len("/fhir/"):]
}

// createEvents maps each resource version named by a create event to the
// event's id.
func createEvents(t *testing.T, db *store.DB) map[string]string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT body FROM audit_events WHERE action = 'create' AND outcome = 'success'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			t.Fatal(err)
		}
		var e audit.Event
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Fatal(err)
		}
		for _, r := range e.Resources {
			out[r] = e.ID
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
