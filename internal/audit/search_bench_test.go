package audit

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// seedEvents writes n read events straight into audit_events (one second
// apart, 1000 patients, 97 users), bypassing Append: the benchmarks below
// measure reading, and seeding millions through the tree would take
// minutes. Bodies are valid canonical events, so Search decodes them.
func seedEvents(b *testing.B, db *store.DB, n int, start time.Time) {
	b.Helper()
	base := start.Unix()
	var q string
	if db.Dialect() == store.SQLite {
		q = `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i < $1 - 1)
		INSERT INTO audit_events (id, tenant_id, time, action, outcome, user_id, patient_id, emergency, kind, body)
		SELECT printf('%032x', i), 't-1', ($2 + i) * 1000000, 'read', 'success', 'u' || (i % 97), 'p' || (i % 1000), 0, 'access',
			'{"id":"' || printf('%032x', i) || '","time":"' || strftime('%Y-%m-%dT%H:%M:%SZ', $2 + i, 'unixepoch') ||
			'","action":"read","outcome":"success","kind":"access","tenantId":"t-1","organisation":"Bench","userId":"u' || (i % 97) ||
			'","userName":"Dr. Bench","role":"professional","basis":"care-relationship:rel-' || (i % 97) ||
			'","purpose":"TREAT","emergency":false,"patientId":"p' || (i % 1000) || '","resources":["Observation/o' || i || '"]}'
		FROM n`
	} else {
		q = `INSERT INTO audit_events (id, tenant_id, time, action, outcome, user_id, patient_id, emergency, kind, body)
		SELECT lpad(to_hex(i), 32, '0'), 't-1', ($2 + i) * 1000000, 'read', 'success', 'u' || (i % 97), 'p' || (i % 1000), false, 'access',
			'{"id":"' || lpad(to_hex(i), 32, '0') || '","time":"' || to_char(to_timestamp($2 + i) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') ||
			'","action":"read","outcome":"success","kind":"access","tenantId":"t-1","organisation":"Bench","userId":"u' || (i % 97) ||
			'","userName":"Dr. Bench","role":"professional","basis":"care-relationship:rel-' || (i % 97) ||
			'","purpose":"TREAT","emergency":false,"patientId":"p' || (i % 1000) || '","resources":["Observation/o' || i || '"]}'
		FROM generate_series(0, $1::bigint - 1) AS i`
	}
	if _, err := db.ExecContext(context.Background(), q, n, base); err != nil {
		b.Fatalf("seed: %v", err)
	}
	if db.Dialect() == store.Postgres {
		if _, err := db.ExecContext(context.Background(), `ANALYZE audit_events`); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPatientLog measures the LOG-4 and LOG-5 read paths over a log of
// ZK_BENCH_AUDIT_EVENTS events (default 1,000,000; 1000 events per
// patient): one officer page of 100 events of a patient, and a person's
// whole view (all of the patient's events merged by audit.PatientView).
func BenchmarkPatientLog(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("ZK_BENCH_AUDIT_EVENTS")); err == nil && v > 0 {
		n = v
	}
	for _, eng := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		b.Run(eng.name, func(b *testing.B) {
			db := eng.open(b)
			l := New(db, clock.System{}, nil)
			b.Cleanup(func() { l.Close() })
			seedEvents(b, db, n, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			ctx := context.Background()
			b.Run("officer-page", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					evs, _, err := l.search(ctx, Search{TenantID: "t-1", PatientID: "p" + strconv.Itoa(i%1000), Limit: 100})
					if err != nil || len(evs) != min(100, n/1000) {
						b.Fatalf("%d events, %v", len(evs), err)
					}
				}
			})
			b.Run("person-view", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					var evs []Event
					if _, err := l.each(ctx, Search{TenantID: "t-1", PatientID: "p" + strconv.Itoa(i%1000), Kind: KindAccess}, 10001,
						func(e Event) error { evs = append(evs, e); return nil }); err != nil {
						b.Fatal(err)
					}
					if lines := PatientView(evs, ViewOptions{}); len(lines) == 0 {
						b.Fatal("no lines")
					}
				}
			})
		})
	}
}
