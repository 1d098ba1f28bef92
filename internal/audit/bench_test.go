package audit

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

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

// benchAppenders is the number of concurrent appenders in BenchmarkAppend:
// ZK_BENCH_APPENDERS, default 256 (requests in flight on a busy server).
func benchAppenders(b *testing.B) int {
	if s := os.Getenv("ZK_BENCH_APPENDERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < runtime.GOMAXPROCS(0) {
			b.Fatalf("ZK_BENCH_APPENDERS: %q", s)
		}
		return n
	}
	return 256
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
		if err := l.db.Tx(ctx, func(tx *store.Tx) error { return insertRows(ctx, tx, rows, true) }); err != nil {
			b.Fatal(err)
		}
	}
	stored := time.Since(start)
	if _, err := l.Sequence(ctx); err != nil {
		b.Fatal(err)
	}
	// Statistics, as autovacuum (PostgreSQL) or a periodic ANALYZE (SQLite)
	// would have them on a log that grew over time.
	if _, err := l.db.ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: stored %d events in %v (%.0f/s), sequenced in %v", l.db.Dialect(), n, stored.Round(time.Millisecond),
		float64(n)/stored.Seconds(), (time.Since(start) - stored).Round(time.Millisecond))
}

// BenchmarkAppend measures sustained appends with durable group commit:
// many concurrent appenders (as many as requests in flight), one event per
// Append as a request writes it, each returning only once its transaction
// committed (SQLite synchronous=FULL, PostgreSQL synchronous_commit=on), while
// the sequencer runs beside them as in the server. events/s is what the
// appenders got acknowledged; the sequencer keeps up when few events are left
// unsequenced at the end.
func BenchmarkAppend(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			db := benchDB(b, engine)
			l := newTestLog(b, db)
			ctx, cancel := context.WithCancel(context.Background())
			seqDone := make(chan error, 1)
			go func() { seqDone <- l.RunSequencer(ctx, DefaultSequenceInterval) }()
			var seq atomic.Int64
			b.SetParallelism(benchAppenders(b) / runtime.GOMAXPROCS(0))
			cpu0 := cpuTime(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := seq.Add(1)
					if _, err := l.Append(context.Background(), event("t1", fmt.Sprintf("p%d", i%1000), fmt.Sprintf("u%d", i%97))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			// The machine is shared: CPU time per event (this process's,
			// appenders, writer and sequencer together; PostgreSQL's own
			// work is not in it) says what an idle machine would sustain.
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/event")
			var pending int
			if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM audit_pending`).Scan(&pending); err != nil {
				b.Fatal(err)
			}
			cancel()
			if err := <-seqDone; err != nil {
				b.Fatal(err)
			}
			b.Logf("%s: %d appends; %d not yet sequenced when the appenders stopped", engine, b.N, pending)
		})
	}
}

// BenchmarkLargeLog fills one tenant's log with ZK_BENCH_EVENTS events
// (100 per patient, so a patient's page has the same size at every log
// size) and measures Verify over the whole log (events/s) and a patient's
// log query (the newest 1000 lines of one patient, decoded; ms/op).
func BenchmarkLargeLog(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			db := benchDB(b, engine)
			l := newTestLog(b, db)
			n := benchEvents(b)
			patients := max(n/100, 1)
			fill(b, l, "t1", n, patients)
			b.Run("verify", func(b *testing.B) {
				cpu0 := cpuTime(b)
				for range b.N {
					r, err := l.Verify(context.Background(), note.VerifierList(l.verifier), nil)
					if err != nil || !r.OK() || r.Events != int64(n) {
						b.Fatalf("Verify: %v %d %v", err, r.Events, r.Damage)
					}
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
				b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/1000/float64(n*b.N), "cpu-µs/event")
			})
			b.Run("patient-query", func(b *testing.B) {
				cpu0 := cpuTime(b)
				for i := range b.N {
					p := fmt.Sprintf("p%d", (i*7919)%patients)
					evs, err := l.Query(context.Background(), Filter{TenantID: "t1", PatientID: p})
					if err != nil || len(evs) != n/patients {
						b.Fatalf("Query %s: %d events, %v; want %d", p, len(evs), err, n/patients)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
				b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/query")
			})
		})
	}
}

// BenchmarkVerifyCompute is Verify's work per event without the database:
// the leaf hash, the tree hashes, and the check of the index columns against
// the body. It bounds what Verify could reach if reading rows were free.
func BenchmarkVerifyCompute(b *testing.B) {
	const distinct = 1000
	bodies := make([][]byte, distinct)
	cols := make([]eventColumns, distinct)
	for i := range bodies {
		e := event("t1", fmt.Sprintf("p%d", i), fmt.Sprintf("u%d", i%97))
		e.ID, e.Time, e.Kind = fmt.Sprintf("%032x", i), testStart.Add(time.Duration(i)*time.Second), KindAccess
		body, err := e.Canonical()
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = body
		cols[i] = eventColumns{id: []byte(e.ID), tenant: []byte("t1"), time: []byte(strconv.FormatInt(e.Time.UnixMicro(), 10)),
			action: []byte(e.Action), outcome: []byte(e.Outcome), user: []byte(e.UserID), patient: []byte(e.PatientID),
			emergency: []byte("0"), kind: []byte(e.Kind), body: body}
	}
	v := &verifyRun{}
	t := &treeRun{verifyRun: v, tenant: "t1", stored: map[groupKey][]byte{}}
	sha := sha256.New()
	var h tlog.Hash
	var f bodyFields
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for i := range b.N {
		c := &cols[i%distinct]
		leafHash(sha, c.body, &h)
		if err := scanFields(c.body, &f); err != nil {
			b.Fatal(err)
		}
		if d := c.differences(&f, "t1"); d != "" {
			b.Fatalf("columns %s differ", d)
		}
		t.push(h)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/1000/float64(b.N), "cpu-µs/event")
}

// BenchmarkPatientQueryScale measures a patient's log query on a log of
// ZK_BENCH_QUERY_EVENTS events (default 1,000,000; 10,000,000 is the size
// the issue names), generated inside the database so that large sizes take
// minutes, not hours. The rows are what the query reads: indexed columns
// and a realistic JSON body; they are not sequenced (the query does not
// read the tree). Each patient has 100 events spread over the whole log,
// so every query reads 100 rows from 100 different places.
func BenchmarkPatientQueryScale(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("ZK_BENCH_QUERY_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 100 {
			b.Fatalf("ZK_BENCH_QUERY_EVENTS: %q", s)
		}
	}
	patients := n / 100
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			db := benchDB(b, engine)
			l := newTestLog(b, db)
			ctx := context.Background()
			start := time.Now()
			const step = 500_000
			for lo := 0; lo < n; lo += step {
				hi := min(lo+step, n) - 1
				series := `WITH RECURSIVE s(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM s WHERE i < $2) SELECT i FROM s`
				hexID := `printf('%032x', i)`
				if engine == "postgres" {
					series = `SELECT i FROM generate_series($1::bigint, $2::bigint) AS g(i)`
					hexID = `lpad(to_hex(i), 32, '0')`
				}
				q := `INSERT INTO audit_events (id, tenant_id, time, action, outcome, user_id, patient_id, emergency, kind, body)
					SELECT ` + hexID + `, 't1', $3 + i * 60000000, 'read', 'success', 'u' || (i % 97), 'p' || (i % $4), FALSE, 'access',
					'{"id":"' || ` + hexID + ` || '","time":"2026-03-02T09:00:00Z","action":"read","outcome":"success","kind":"access",' ||
					'"tenantId":"t1","organisation":"Huisartsenpraktijk t1","userId":"u' || (i % 97) || '","userName":"Dr. u' || (i % 97) ||
					'","role":"huisarts","assurance":"hoog","basis":"care-relationship","emergency":false,"patientId":"p' || (i % $4) ||
					'","resources":["Observation/p' || (i % $4) || '-1"],"sourceAddr":"192.0.2.10","sourceApp":"zorgkluis","traceId":"4bf92f3577b34da6a3ce929d0e0e4736"}'
					FROM (` + series + `) AS src`
				if _, err := db.ExecContext(ctx, q, int64(lo), int64(hi), testStart.UnixMicro(), int64(patients)); err != nil {
					b.Fatalf("generate events: %v", err)
				}
			}
			if _, err := db.ExecContext(ctx, `ANALYZE`); err != nil {
				b.Fatal(err)
			}
			b.Logf("%s: generated %d events in %v", engine, n, time.Since(start).Round(time.Second))
			b.Run("query", func(b *testing.B) {
				cpu0 := cpuTime(b)
				for i := range b.N {
					p := fmt.Sprintf("p%d", (i*7919)%patients)
					evs, err := l.Query(ctx, Filter{TenantID: "t1", PatientID: p})
					if err != nil || len(evs) != 100 {
						b.Fatalf("Query %s: %d events, %v; want 100", p, len(evs), err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
				b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/query")
			})
		})
	}
}

// BenchmarkReadPatientView is the person's view of her log (LOG-4) as
// GET /fhir/AuditEvent serves it: the log-read event appended durably, then
// the newest events of the patient read and merged into lines, for a
// patient with 100, 1,000 and 10,000 events among other patients' (every
// tenth event is hers). cpu-µs/view is this process's CPU per view;
// cpu-µs/event that divided by the events merged.
func BenchmarkReadPatientView(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			db := benchDB(b, engine)
			l := newTestLog(b, db)
			ctx := context.Background()
			// The log-read events the views append come after every
			// generated event, outside the views' period.
			l.clock.Advance(200_000 * time.Minute)
			have := 0
			for _, n := range []int{100, 1000, 10000} {
				// Grow the log to n events of p-0 (and 9n of others).
				var evs []Event
				for k := have * 10; k < n*10; k++ {
					p := fmt.Sprintf("p%d", k%10)
					e := event("t1", p, fmt.Sprintf("u%d", k%7))
					e.Time = testStart.Add(time.Duration(k) * time.Minute)
					e.Resources = []string{"Observation/" + p + "-" + strconv.Itoa(k%13), "Patient/" + p}
					evs = append(evs, e)
				}
				for start := 0; start < len(evs); start += 5000 {
					rows, err := l.prepare(ctx, evs[start:min(start+5000, len(evs))])
					if err != nil {
						b.Fatal(err)
					}
					if err := l.db.Tx(ctx, func(tx *store.Tx) error { return insertRows(ctx, tx, rows, true) }); err != nil {
						b.Fatal(err)
					}
				}
				have = n
				if _, err := db.ExecContext(ctx, `ANALYZE`); err != nil {
					b.Fatal(err)
				}
				person := NewPermit(Event{UserID: "person", PatientID: "p0"}, "t1", "p0")
				b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
					cpu0 := cpuTime(b)
					for range b.N {
						// Before the newest of her events: the log-read events
						// this loop appends stay out of the view.
						lines, _, err := l.ReadPatientView(ctx, person, Search{PatientID: "p0", To: testStart.Add(time.Duration(n*10) * time.Minute)}, "", ViewOptions{})
						if err != nil || len(lines) == 0 {
							b.Fatalf("view: %d lines, %v", len(lines), err)
						}
					}
					cpu := float64((cpuTime(b) - cpu0).Microseconds()) / float64(b.N)
					b.ReportMetric(cpu, "cpu-µs/view")
					b.ReportMetric(cpu/float64(n), "cpu-µs/event")
				})
			}
		})
	}
}

// BenchmarkSequenceBatch is one sequencer batch of 500 events on a tree
// that already holds ZK_BENCH_EVENTS/10 (default 10,000) events: what the
// sequencer does every half second under load. Storing the pending events
// is outside the timing; cpu-µs/batch is this process's CPU per batch
// (PostgreSQL's own work is not in it).
func BenchmarkSequenceBatch(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			db := benchDB(b, engine)
			l := newTestLog(b, db)
			ctx := context.Background()
			fill(b, l, "t1", max(benchEvents(b)/10, 1), 100)
			const batch = 500
			var cpu time.Duration
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				evs := make([]Event, batch)
				for j := range evs {
					evs[j] = event("t1", fmt.Sprintf("p%d", j%100), fmt.Sprintf("u%d", i%97))
				}
				rows, err := l.prepare(ctx, evs)
				if err != nil {
					b.Fatal(err)
				}
				if err := l.db.Tx(ctx, func(tx *store.Tx) error { return insertRows(ctx, tx, rows, true) }); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				cpu0 := cpuTime(b)
				if n, err := l.Sequence(ctx); err != nil || n != batch {
					b.Fatalf("Sequence = %d, %v; want %d", n, err, batch)
				}
				cpu += cpuTime(b) - cpu0
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/batch")
		})
	}
}
