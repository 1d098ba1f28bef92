package audit

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// benchEvents is the log size for the large benchmarks: ZK_BENCH_EVENTS,
// default 100,000 (1,000,000 takes minutes to generate).
func benchEvents(b *testing.B) int {
	if s := os.Getenv("ZK_BENCH_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("ZK_BENCH_EVENTS: %v", err)
		}
		return n
	}
	return 100_000
}

func benchDB(b *testing.B, engine string) *store.DB {
	if engine == "sqlite" {
		return storetest.SQLite(b)
	}
	return storetest.Postgres(b)
}

// fill stores n read events of one tenant spread over patients and users,
// one minute apart, in large transactions, and sequences them.
func fill(b *testing.B, l *testLog, tenant string, n, patients int) {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	const batch = 5000
	for i := 0; i < n; i += batch {
		evs := make([]Event, min(batch, n-i))
		for j := range evs {
			k := i + j
			evs[j] = event(tenant, fmt.Sprintf("p%d", k%patients), fmt.Sprintf("u%d", k%97))
			evs[j].Time = testStart.Add(time.Duration(k) * time.Minute)
		}
		rows, err := l.prepare(ctx, evs)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.db.Tx(ctx, func(tx *store.Tx) error { return insertRows(ctx, tx, rows) }); err != nil {
			b.Fatal(err)
		}
	}
	stored := time.Since(start)
	if _, err := l.Sequence(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: stored %d events in %v (%.0f/s), sequenced in %v", l.db.Dialect(), n, stored.Round(time.Millisecond),
		float64(n)/stored.Seconds(), (time.Since(start) - stored).Round(time.Millisecond))
}

// BenchmarkVerify measures Verify over a sequenced log (events/s, the
// whole of reading, hashing, column checks and checkpoint checks).
func BenchmarkVerify(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			db := benchDB(b, engine)
			l := newTestLog(b, db)
			n := benchEvents(b)
			fill(b, l, "t1", n, 1000)
			b.ResetTimer()
			for range b.N {
				r, err := l.Verify(context.Background(), note.VerifierList(l.verifier), nil)
				if err != nil || !r.OK() {
					b.Fatalf("Verify: %v %v", err, r.Damage)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
