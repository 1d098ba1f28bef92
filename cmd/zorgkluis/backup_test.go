package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/backup"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/synth"
)

// TestBackupRestoreCommands: generate a small organisation, back it up with
// the CLI, restore it into a new data directory and database (the restore
// verifies the log), restore-test the backup, and refuse a restore into the
// non-empty original.
//
// REQ: DP-5
func TestBackupRestoreCommands(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			data, data2 := t.TempDir(), t.TempDir()
			db1, db2 := filepath.Join(data, "zorgkluis.db"), filepath.Join(data2, "zorgkluis.db")
			if dialect == "postgres" {
				db1, db2 = storetest.PostgresURL(t), storetest.PostgresURL(t)
			}
			if code, _, errOut := runCLI(t, "generate", "--data", data, "--database", db1, "--patients", "15", "--resources-per-patient", "2", "--professionals", "2", "--persons", "3"); code != 0 {
				t.Fatalf("generate: %d %s", code, errOut)
			}
			dir := filepath.Join(t.TempDir(), "backups")
			code, out, errOut := runCLI(t, "backup", "--to", dir, "--json", "--data", data, "--database", db1)
			if code != 0 {
				t.Fatalf("backup: %d %s", code, errOut)
			}
			var m backup.Manifest
			if err := json.Unmarshal([]byte(out), &m); err != nil || m.Tables["resources"] < 45 {
				t.Fatalf("manifest: %v %s", err, out)
			}
			if !strings.Contains(errOut, "created the backup key") {
				t.Fatalf("first backup does not report the new key: %s", errOut)
			}
			file := filepath.Join(dir, m.Name)
			// A patient is shredded after this backup, and a newer backup
			// records it: restoring the older one must shred them again.
			var cred synth.Credentials
			b, err := os.ReadFile(filepath.Join(data, "synth-credentials.json"))
			if err != nil || json.Unmarshal(b, &cred) != nil {
				t.Fatalf("credentials: %v", err)
			}
			shredded := cred.Persons[0].Patients[0]
			if code, _, errOut := runCLI(t, "keys", "shred", cred.TenantID, shredded, "--data", data, "--database", db1); code != 0 {
				t.Fatalf("shred: %s", errOut)
			}
			time.Sleep(5 * time.Millisecond) // the next backup's name has millisecond resolution
			if code, _, errOut := runCLI(t, "backup", "--to", dir, "--data", data, "--database", db1); code != 0 {
				t.Fatalf("second backup: %s", errOut)
			}
			// One more is shredded after the newest backup: no manifest has
			// it, the shred record beside the backups does.
			late := cred.Persons[len(cred.Persons)-1].Patients[0]
			if late == shredded || late == cred.Persons[1].Patients[0] {
				t.Fatalf("need a third person's patient, have %d persons", len(cred.Persons))
			}
			if code, _, errOut := runCLI(t, "keys", "shred", cred.TenantID, late, "--data", data, "--database", db1, "--backup-dir", dir); code != 0 {
				t.Fatalf("shred after the newest backup: %s", errOut)
			}
			// The new installation: the operator brings the master key, the
			// checkpoint key and the backup identity.
			for _, f := range []string{"master.key", "audit-checkpoint.key", backup.IdentityFile} {
				b, err := os.ReadFile(filepath.Join(data, f))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(data2, f), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			code, out, errOut = runCLI(t, "restore", "--from", file, "--data", data2, "--database", db2)
			if code != 0 || !strings.Contains(out, "OK: the access log is intact") || !strings.Contains(out, "shredded again: patient "+cred.TenantID+"/"+shredded) ||
				!strings.Contains(out, "shredded again: patient "+cred.TenantID+"/"+late) {
				t.Fatalf("restore: %d\n%s\n%s", code, out, errOut)
			}
			// One person from the older backup: the shredded one is refused.
			code, _, errOut = runCLI(t, "restore", "--from", file, "--person", cred.TenantID+"/"+shredded, "--data", data, "--database", db1)
			if code != 1 || !strings.Contains(errOut, "shredded") {
				t.Fatalf("person restore of a shredded patient: %d %s", code, errOut)
			}
			other := cred.Persons[1].Patients[0]
			code, out, errOut = runCLI(t, "restore", "--from", file, "--person", cred.TenantID+"/"+other, "--data", data, "--database", db1)
			if code != 0 || !strings.Contains(out, "restored patient "+cred.TenantID+"/"+other) {
				t.Fatalf("person restore: %d %s %s", code, out, errOut)
			}
			code, out, errOut = runCLI(t, "backup", "check", file, "--data", data2, "--database", db2)
			if code != 0 || !strings.HasPrefix(out, "OK: ") {
				t.Fatalf("backup check: %d\n%s\n%s", code, out, errOut)
			}
			code, _, errOut = runCLI(t, "restore", "--from", file, "--data", data, "--database", db1)
			if code != 1 || !strings.Contains(errOut, "not empty") {
				t.Fatalf("restore into the live database: %d %s", code, errOut)
			}
		})
	}
}
