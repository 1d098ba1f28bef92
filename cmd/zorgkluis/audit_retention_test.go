package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// TestAuditPurgeAndHold writes a log whose events are six years and 400
// days old (with a clock moved back, under the server's key), places a
// legal hold with the CLI, purges, and verifies: technical events go after
// a year, access events after five, the held one stays, the log still
// verifies and the hold's proofs check with the public key.
//
// REQ: LOG-6, LOG-2
func TestAuditPurgeAndHold(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			data := t.TempDir()
			dbURL := filepath.Join(data, "zorgkluis.db")
			if dialect == "postgres" {
				dbURL = storetest.PostgresURL(t)
			}
			db, err := store.Open(ctx, dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			signer, vkey, err := audit.LoadOrCreateSigner(auditKeyPath(data), auditKeyName)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			fake := clock.NewFake(now.AddDate(-6, 0, 0))
			l := audit.New(db, fake, rand.Reader, audit.WithSigner(signer))
			defer l.Close()
			appendSeq := func(events ...audit.Event) []audit.Event {
				t.Helper()
				out, err := l.Append(ctx, events...)
				if err != nil {
					t.Fatal(err)
				}
				// Retried: another test's sequencer for a tenant named t1
				// holds the per-database advisory lock now and then.
				for i := 0; ; i++ {
					if _, err := l.Sequence(ctx); err != nil {
						t.Fatal(err)
					}
					var pending int
					if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_pending`).Scan(&pending); err != nil {
						t.Fatal(err)
					}
					if pending == 0 {
						break
					}
					if i == 200 {
						t.Fatal("events still pending after 200 sequencing rounds")
					}
					time.Sleep(10 * time.Millisecond)
				}
				return out
			}
			read := audit.Event{Action: audit.ActionRead, Outcome: audit.OutcomeSuccess, TenantID: "t1", UserID: "u1", PatientID: "p1"}
			logon := audit.Event{Action: audit.ActionLogon, Outcome: audit.OutcomeSuccess, TenantID: "t1", UserID: "u1"}
			old := appendSeq(read, logon, logon)
			fake.Set(now.AddDate(0, 0, -400))
			mid := appendSeq(read, logon)
			flags := []string{"--data", data, "--database", dbURL}

			until := now.AddDate(1, 0, 0).Format(time.DateOnly)
			code, out, errOut := runCLI(t, append([]string{"audit", "hold", "--tenant", "t1", "--reason", "klacht 2026-117", "--until", until, old[2].ID}, flags...)...)
			if code != 0 {
				t.Fatalf("hold: exit %d\n%s%s", code, out, errOut)
			}
			var hold audit.HoldBundle
			if err := json.Unmarshal([]byte(out), &hold); err != nil {
				t.Fatalf("hold output is not a hold bundle: %v\n%s", err, out)
			}
			if len(hold.Proofs) != 1 || hold.Proofs[0].EventID != old[2].ID || hold.Reason != "klacht 2026-117" {
				t.Fatalf("hold bundle: %s", out)
			}
			if _, err := audit.CheckProof(hold.Proofs[0], vkey); err != nil {
				t.Fatalf("held line's proof: %v", err)
			}
			code, _, errOut = runCLI(t, append([]string{"audit", "hold", "--tenant", "t1", "--reason", "x", "--until", now.AddDate(11, 0, 0).Format(time.DateOnly), old[0].ID}, flags...)...)
			if code != 2 || !strings.Contains(errOut, "10 years") {
				t.Fatalf("hold of 11 years: exit %d %s", code, errOut)
			}

			code, out, errOut = runCLI(t, append([]string{"audit", "purge", "--dry-run"}, flags...)...)
			if code != 0 || !strings.Contains(out, "would purge (dry run): 1 access-log events") || !strings.Contains(out, "2 technical events") ||
				!strings.Contains(out, "kept under legal hold: 1") {
				t.Fatalf("dry run: exit %d\n%s%s", code, out, errOut)
			}
			if code, _, errOut = runCLI(t, append([]string{"audit", "purge", "--technical-retention", "24h"}, flags...)...); code != 2 || !strings.Contains(errOut, "minimum") {
				t.Fatalf("purge with a day's retention: exit %d %s", code, errOut)
			}
			code, out, errOut = runCLI(t, append([]string{"audit", "purge"}, flags...)...)
			if code != 0 || !strings.HasPrefix(out, "purged: 1 access-log events") || !strings.Contains(out, "2 technical events") {
				t.Fatalf("purge: exit %d\n%s%s", code, out, errOut)
			}
			for _, e := range []audit.Event{old[0], old[1], mid[1]} {
				if _, err := l.Proof(ctx, e.ID); !errors.Is(err, audit.ErrPurged) {
					t.Fatalf("Proof(%s) after purge: %v; want ErrPurged", e.ID, err)
				}
			}
			for _, e := range []audit.Event{old[2], mid[0]} {
				if _, err := l.Proof(ctx, e.ID); err != nil {
					t.Fatalf("Proof(%s) of a kept event: %v", e.ID, err)
				}
			}
			code, out, errOut = runCLI(t, append([]string{"audit", "verify"}, flags...)...)
			if code != 0 || !strings.Contains(out, "(3 purged by retention)") || !strings.Contains(out, "OK: the access log is intact") {
				t.Fatalf("verify after purge: exit %d\n%s%s", code, out, errOut)
			}
			// The purge logged itself, before and after, and the dry run
			// its reading of the log.
			var deletes, reads int
			if err := db.QueryRowContext(ctx, `SELECT
				(SELECT COUNT(*) FROM audit_events WHERE action = 'delete' AND tenant_id = '' AND body LIKE '%retention purge%'),
				(SELECT COUNT(*) FROM audit_events WHERE action = 'log-read' AND tenant_id = '' AND body LIKE '%dry run%')`).Scan(&deletes, &reads); err != nil {
				t.Fatal(err)
			}
			if deletes != 2 || reads != 2 {
				t.Fatalf("purge events: %d delete, %d log-read; want 2 and 2", deletes, reads)
			}
		})
	}
}

// TestRetentionFourEyes: the retention in force changes only through a
// change request one operator proposes and another approves; the proposer
// cannot approve it; once approved, a purge with a shorter retention than
// the one in force is refused, a longer one is allowed.
//
// REQ: GOV-1, LOG-6
func TestRetentionFourEyes(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			data := t.TempDir()
			dbURL := filepath.Join(data, "zorgkluis.db")
			if dialect == "postgres" {
				dbURL = storetest.PostgresURL(t)
			}
			db, err := store.Open(ctx, dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			flags := []string{"--data", data, "--database", dbURL}
			if code, out, errOut := runCLI(t, append([]string{"audit", "retention"}, flags...)...); code != 0 || !strings.Contains(out, "technical log 8760h0m0s") {
				t.Fatalf("retention: exit %d %s%s", code, out, errOut)
			}
			if code, _, errOut := runCLI(t, append([]string{"audit", "retention", "propose", "--chain-retention", "100h"}, flags...)...); code != 2 || !strings.Contains(errOut, "24 to 36 months") {
				t.Fatalf("an unlawful proposal: exit %d %s", code, errOut)
			}
			code, out, errOut := runCLI(t, append([]string{"audit", "retention", "propose", "--technical-retention", "17520h"}, flags...)...)
			id := regexp.MustCompile(`ch-[a-z0-9]+`).FindString(out)
			if code != 0 || id == "" {
				t.Fatalf("propose: exit %d %s%s", code, out, errOut)
			}
			if code, _, errOut := runCLI(t, append([]string{"audit", "retention", "approve", id}, flags...)...); code != 2 || !strings.Contains(errOut, "proposed by this account") {
				t.Fatalf("the proposer approves: exit %d %s", code, errOut)
			}
			if _, out, _ := runCLI(t, append([]string{"audit", "retention"}, flags...)...); !strings.Contains(out, "technical log 8760h0m0s") {
				t.Fatalf("in force before its approval: %s", out)
			}
			// A second operator approves (another operating-system user).
			l := audit.New(db, clock.System{}, rand.Reader)
			defer l.Close()
			changes := change.New(change.Config{DB: db, Audit: l, Clock: clock.System{}})
			registerRetention(changes)
			if _, err := changes.DecideKind(ctx, change.Actor{AccountID: "os:second-operator", Role: "platform-admin"}, changeRetention, id, true, ""); err != nil {
				t.Fatal(err)
			}
			if _, out, _ := runCLI(t, append([]string{"audit", "retention"}, flags...)...); !strings.Contains(out, "technical log 17520h0m0s") {
				t.Fatalf("after approval: %s", out)
			}
			if code, _, errOut := runCLI(t, append([]string{"audit", "purge", "--dry-run", "--technical-retention", "8760h"}, flags...)...); code != 2 || !strings.Contains(errOut, "shorter than the retention in force") {
				t.Fatalf("a purge shorter than in force: exit %d %s", code, errOut)
			}
			if code, out, errOut := runCLI(t, append([]string{"audit", "purge", "--dry-run", "--technical-retention", "26280h"}, flags...)...); code != 0 || !strings.Contains(out, "would purge") {
				t.Fatalf("a purge keeping longer: exit %d %s%s", code, out, errOut)
			}
		})
	}
}
