package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/synth"
)

// End to end through the binary, on a demo data directory with a second,
// synthetic organisation: every patient's name row is deleted (data from
// before migration 00520) and one patient shredded; `patients
// backfill-names` names the others, skips the shredded one, prints its
// summary and logs its run as one event with the counts; a second run
// names nobody. serve's start-up names a patient left unnamed, in the
// background, and logs it too.
//
// REQ: LOG-5
func TestPatientsBackfillNamesThroughTheBinary(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	startServer(t, bin, data).stop(t)
	cli := func(args ...string) (string, string, error) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		return out.String(), errOut.String(), err
	}
	if _, errOut, err := cli("generate", "--data", data, "--patients", "4", "--resources-per-patient", "1", "--professionals", "1", "--persons", "2", "--seed", "7"); err != nil {
		t.Fatalf("generate: %v %s", err, errOut)
	}
	var cred synth.Credentials
	if b, err := os.ReadFile(filepath.Join(data, "synth-credentials.json")); err != nil || json.Unmarshal(b, &cred) != nil {
		t.Fatalf("synth credentials: %v", err)
	}
	dbPath := filepath.Join(data, "zorgkluis.db")
	query := func(q string, args ...any) [][]string {
		t.Helper()
		db, err := store.Open(context.Background(), dbPath)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.QueryContext(context.Background(), q, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		var out [][]string
		for rows.Next() {
			row := make([]string, len(cols))
			ptrs := make([]any, len(cols))
			for i := range row {
				ptrs[i] = &row[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out = append(out, row)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	named := query(`SELECT tenant_id, patient_id FROM record_patient_names`)
	if len(named) != 5 {
		t.Fatalf("%d named patients after demo and generate; want 5", len(named))
	}
	query(`DELETE FROM record_patient_names`)
	shredded := cred.Persons[0].Patients[0]
	if _, errOut, err := cli("keys", "shred", cred.TenantID, shredded, "--data", data); err != nil {
		t.Fatalf("shred: %v %s", err, errOut)
	}

	backfillEvents := func(user string) []audit.Event {
		t.Helper()
		var out []audit.Event
		for _, r := range query(`SELECT body FROM audit_events WHERE action = $1 AND user_id LIKE $2 ORDER BY time`, string(audit.ActionCreate), user) {
			var ev audit.Event
			if err := json.Unmarshal([]byte(r[0]), &ev); err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(ev.Query, "backfill-names: ") {
				out = append(out, ev)
			}
		}
		return out
	}
	out, errOut, err := cli("patients", "backfill-names", "--data", data)
	if err != nil || !strings.HasPrefix(out, "patient names: 4 named, 0 already named, 1 skipped (shredded), 0 without a name in their Patient resource, 0 damaged; 5 patients") {
		t.Fatalf("backfill: %v\n%s\n%s", err, out, errOut)
	}
	evs := backfillEvents("os:%")
	if len(evs) != 1 || evs[0].Outcome != audit.OutcomeSuccess || evs[0].SourceApp != "zorgkluis patients backfill-names" || evs[0].TenantID != "" ||
		evs[0].Query != "backfill-names: 4 named, 0 already named, 1 shredded, 0 nameless, 0 damaged, of 5 patients" {
		t.Fatalf("the run's events: %+v", evs)
	}
	if rows := query(`SELECT patient_id FROM record_patient_names WHERE tenant_id = $1 AND patient_id = $2`, cred.TenantID, shredded); len(rows) != 0 {
		t.Fatal("the shredded patient was named")
	}
	if rows := query(`SELECT patient_id FROM record_patient_names`); len(rows) != 4 {
		t.Fatalf("%d name rows; want 4", len(rows))
	}

	// Again: nothing to write, and the run is logged all the same.
	out, errOut, err = cli("patients", "backfill-names", "--data", data)
	if err != nil || !strings.HasPrefix(out, "patient names: 0 named, 4 already named, 1 skipped (shredded)") {
		t.Fatalf("second backfill: %v\n%s\n%s", err, out, errOut)
	}
	if evs := backfillEvents("os:%"); len(evs) != 2 || !strings.HasPrefix(evs[1].Query, "backfill-names: 0 named, 4 already named") {
		t.Fatalf("the second run's event: %+v", evs)
	}

	// serve names, at start, a patient left unnamed.
	demoPatient := readCreds(t, data).PatientID
	query(`DELETE FROM record_patient_names WHERE patient_id = $1`, demoPatient)
	srv := startServer(t, bin, data)
	deadline := time.Now().Add(30 * time.Second)
	for len(query(`SELECT patient_id FROM record_patient_names WHERE patient_id = $1`, demoPatient)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not name the demo patient within 30 s\n%s", srv.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	srv.stop(t)
	if evs := backfillEvents("system:backfill-names"); len(evs) != 1 || evs[0].Query != "backfill-names: 1 named, 3 already named, 1 shredded, 0 nameless, 0 damaged, of 5 patients" {
		t.Fatalf("serve's backfill events: %+v", evs)
	}
	// The next start finds only the shredded patient unnamed: not logged.
	startServer(t, bin, data).stop(t)
	if evs := backfillEvents("system:backfill-names"); len(evs) != 1 {
		t.Fatalf("a start that named nobody logged %d backfill events", len(evs)-1)
	}
}

// Every command is in the usage, and patients has its own help.
func TestUsageListsEveryCommand(t *testing.T) {
	code, out, _ := runCLI(t, "help")
	if code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	for _, c := range commands() {
		if !strings.Contains(out, fmt.Sprintf("  %-10s %s\n", c.name, c.summary)) {
			t.Errorf("help does not list %s:\n%s", c.name, out)
		}
	}
	if code, out, _ := runCLI(t, "patients", "--help"); code != 0 || !strings.Contains(out, "backfill-names") {
		t.Fatalf("patients --help: %d %s", code, out)
	}
	if code, _, errOut := runCLI(t, "patients", "rename"); code != 2 || !strings.Contains(errOut, `unknown action "rename"`) {
		t.Fatalf("patients rename: %d %s", code, errOut)
	}
}
