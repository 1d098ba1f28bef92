package backup

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// REQ: DP-5, GOV-3
// Two replicas' schedules on one database run each slot once; the backup
// is restore-tested (counts, audit verify, records decrypted) and the run
// recorded; a failing restore test is a security event.
func TestScheduleRunsOnceAndRestoreTests(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, 4)
		c := clock.NewFake(time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC))
		queue := alert.NewQueue(db, c, rand.Reader, nil)
		url := dbURL(t, db)
		var mu sync.Mutex
		var results []CheckResult
		replica := func(host string, master keys.Master) *Schedule {
			return &Schedule{DB: db, Store: f.st, Keys: f.keys, Clock: c, Interval: 6 * time.Hour, Policy: DefaultPolicy,
				Checker: &Checker{DatabaseURL: url, TempDir: t.TempDir(), Identities: f.keys.Identities, Master: master, Verifier: f.verifier},
				Queue:   queue, Audit: f.kit.Audit, Host: host, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
				OnCheck: func(r CheckResult) { mu.Lock(); results = append(results, r); mu.Unlock() }}
		}
		a, b := replica("a", f.kit.Master), replica("b", f.kit.Master)
		var ran [2]bool
		var errs [2]error
		var wg sync.WaitGroup
		for i, s := range []*Schedule{a, b} {
			wg.Add(1)
			go func() { defer wg.Done(); ran[i], errs[i] = s.RunOnce(ctx) }()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil || ran[0] == ran[1] {
			t.Fatalf("two replicas in one slot: ran %v, errors %v", ran, errs)
		}
		if len(results) != 1 || !results[0].OK || results[0].Sampled == 0 || results[0].Events == 0 {
			t.Fatalf("restore test: %+v", results)
		}
		var n int
		var ok bool
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*), MAX(CASE WHEN tested_ok THEN 1 ELSE 0 END) = 1 FROM backup_runs`).Scan(&n, &ok); err != nil || n != 1 || !ok {
			t.Fatalf("recorded runs: %d, tested ok %v, %v", n, ok, err)
		}
		// The next slot, on a replica whose master key is not the data's:
		// the restore test fails and raises a security event.
		c.Advance(6 * time.Hour)
		wrong, _ := keys.MasterFromEnv("AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
		if ran, err := replica("c", wrong).RunOnce(ctx); !ran || err != nil {
			t.Fatalf("second slot: ran %v, %v", ran, err)
		}
		if len(results) != 2 || results[1].OK {
			t.Fatalf("restore test with the wrong master key: %+v", results[1])
		}
		evs, err := queue.List(ctx, "", time.Time{}, 10)
		if err != nil || len(evs) != 1 || evs[0].Kind != "backup-restore-test-failed" {
			t.Fatalf("security events: %+v, %v", evs, err)
		}
		// The evidence the officer's page shows: newest first.
		runs, err := History{DB: db}.Recent(ctx, 10)
		if err != nil || len(runs) != 2 || runs[0].Host != "c" || runs[0].OK() || runs[0].Tested == nil ||
			!runs[1].OK() || runs[1].Backup == "" || runs[1].Bytes == 0 || runs[1].Finished.IsZero() {
			t.Fatalf("recent runs: %+v, %v", runs, err)
		}
		// Each restore test is in the platform's log as evidence (GOV-3):
		// the passed one, then the failed one.
		facts, err := f.kit.Audit.Query(ctx, audit.Filter{Action: audit.ActionEvidence})
		if err != nil || len(facts) != 2 || facts[0].Outcome != audit.OutcomeFailed || facts[1].Outcome != audit.OutcomeSuccess ||
			!strings.HasPrefix(facts[1].Query, audit.FactRestoreTest+" "+runs[1].Backup) {
			t.Fatalf("restore tests as evidence events: %+v, %v", facts, err)
		}
		ms, err := List(ctx, f.st)
		if err != nil || len(ms) != 2 {
			t.Fatalf("backups: %d, %v", len(ms), err)
		}
	})
}

func dbURL(t *testing.T, db *store.DB) string {
	t.Helper()
	if db.Dialect() == store.Postgres {
		return storetest.PostgresURL(t) // scratch schemas are made beside this one
	}
	return t.TempDir() + "/live.db"
}
