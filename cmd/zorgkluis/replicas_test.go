package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// TestTwoReplicasOnePostgres: two servers on one PostgreSQL database with
// the same keys both serve; the backup schedule (every 10 s here) makes one
// backup per slot, not two, each restore-tested; both run the sequencer
// and the log verifies (no tree position written twice).
//
// REQ: DP-5
func TestTwoReplicasOnePostgres(t *testing.T) {
	ctx := context.Background()
	url := storetest.PostgresURL(t)
	bin := buildBinary(t)
	a, b, backups := t.TempDir(), t.TempDir(), t.TempDir()
	env := []string{"ZK_DATABASE_URL=" + url, "ZK_BACKUP_INTERVAL=10s", "ZK_BACKUP_DIR=" + backups}
	first := startServer(t, bin, a, env...)
	// The second replica gets the first one's keys, as an operator copies them.
	for _, f := range []string{"master.key", "audit-checkpoint.key", "backup-identity.txt", "backup-recipients.txt", "demo-credentials.json"} {
		data, err := os.ReadFile(filepath.Join(a, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(b, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	second := startServer(t, bin, b, env...)
	cl := client()
	for _, s := range []*running{first, second} {
		resp, err := cl.Get(s.base + "/readyz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("replica not ready: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	db, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Wait (bounded) for two finished slots: the first starts 10 s after
	// start-up, and each restore test migrates a scratch schema while the
	// other packages' tests use the same database.
	var finished int
	for i := 0; i < 180 && finished < 2; i++ {
		time.Sleep(500 * time.Millisecond)
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM backup_runs WHERE finished_at IS NOT NULL`).Scan(&finished); err != nil {
			t.Fatal(err)
		}
	}
	if finished < 2 {
		t.Fatalf("%d backup slots finished in 90 s\nfirst:\n%s\nsecond:\n%s", finished, first.stderr, second.stderr)
	}
	var unfinished int
	for i := 0; i < 60; i++ { // let a run in progress end before stopping
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM backup_runs WHERE finished_at IS NULL`).Scan(&unfinished); err != nil || unfinished == 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	first.stop(t)
	second.stop(t)
	var runs, tested int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(CASE WHEN tested_ok THEN 1 END) FROM backup_runs`).Scan(&runs, &tested); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(backups)
	files := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".zkb") {
			files++
		}
	}
	if files != runs || tested != runs {
		t.Fatalf("%d slots claimed, %d restore-tested, %d backup files: a slot ran twice or not at all", runs, tested, files)
	}
	code, out, errOut := runCLI(t, "audit", "verify", "--data", a, "--database", url)
	if code != 0 {
		t.Fatalf("audit verify after two replicas: %d\n%s\n%s", code, out, errOut)
	}
}
