package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/backup"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
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
			if code, _, errOut := runCLI(t, "generate", "--data", data, "--database", db1, "--patients", "15", "--resources-per-patient", "2", "--professionals", "2"); code != 0 {
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
			if code != 0 || !strings.Contains(out, "OK: the access log is intact") {
				t.Fatalf("restore: %d\n%s\n%s", code, out, errOut)
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
