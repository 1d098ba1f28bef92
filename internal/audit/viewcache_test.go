package audit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// ownView reads the view of patient p-0 (tenant t-1) as the person
// herself, through lg, with q's period if any.
func ownView(ctx context.Context, lg *testLog, q Search, o ViewOptions) ([]PatientLine, bool, error) {
	person := Event{UserID: "person", Role: "person", PatientID: "p-0"}
	q.PatientID = "p-0"
	return lg.ReadPatientView(ctx, NewPermit(person, "t-1", "p-0"), q, "me/log", o)
}

// The person's view through the cache is line for line the view merged
// from the patient's whole log, while events arrive, the sequencer runs or
// lags, other patients' events interleave, and after a purge.
// REQ: LOG-4
func TestCachedPatientViewMatchesWholeLog(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := newTestLog(t, db)
		if err := l.SyncViews(ctx); err != nil {
			t.Fatal(err)
		}
		ams, err := time.LoadLocation("Europe/Amsterdam")
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(3, 4))
		check := func(round int, o ViewOptions) {
			t.Helper()
			got, truncated, err := ownView(ctx, l, Search{}, o)
			if err != nil || truncated {
				t.Fatalf("round %d: view: %v, truncated %v", round, err, truncated)
			}
			all, err := l.Query(ctx, Filter{TenantID: "t-1", PatientID: "p-0"})
			if err != nil {
				t.Fatal(err)
			}
			if want := PatientView(all, o); !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d (%+v): the cached view differs from the whole log's:\n got %+v\nwant %+v", round, o, got, want)
			}
		}
		opts := []ViewOptions{{Location: ams}, {Location: ams, ShowNames: true}}
		for round := range 40 {
			var evs []Event
			for range r.IntN(6) {
				e := event("t-1", fmt.Sprintf("p-%d", r.IntN(2)), fmt.Sprintf("u-%d", r.IntN(3)))
				e.Resources = []string{fmt.Sprintf("Observation/o-%d", r.IntN(4)), fmt.Sprintf("Condition/c-%d", r.IntN(2))}
				if r.IntN(3) == 0 {
					e.Action = ActionSearch
				}
				evs = append(evs, e)
			}
			if len(evs) > 0 {
				mustAppend(t, l, evs...)
			}
			if r.IntN(3) > 0 {
				mustSequence(t, l)
			}
			l.clock.Advance(time.Duration(r.IntN(90)) * time.Minute) // across days
			if err := l.SyncViews(ctx); err != nil {
				t.Fatal(err)
			}
			check(round, opts[round%2])
		}
		if l.views.steps.Load() < 20 {
			t.Fatalf("only %d of 40 views were brought up to date from a cached one", l.views.steps.Load())
		}
		// A purge retires the cached views: the purged events are gone
		// from the person's view too.
		mustSequence(t, l)
		check(100, opts[0])
		l.clock.Advance(DefaultRetention().Access + 48*time.Hour)
		e := event("t-1", "p-0", "u-late")
		mustAppend(t, l, e)
		mustSequence(t, l)
		if err := l.SyncViews(ctx); err != nil {
			t.Fatal(err)
		}
		check(101, opts[0])
		res, err := l.Purge(ctx, l.clock.Now(), DefaultRetention(), PurgeOptions{})
		if err != nil || res.Purged() == 0 {
			t.Fatalf("purge: %+v %v", res, err)
		}
		check(102, opts[0])
	})
}

// A person's view of a log longer than MaxViewEvents. Without the cache it
// is the newest MaxViewEvents events, truncated. The cache keeps it: a view
// it followed while it grew stays whole up to twice the bound; one met
// anew is the newest MaxViewEvents, truncated, and then takes in what comes
// after, so it is always the newest n events for some n of at least the
// bound, until it holds twice the bound and is merged anew.
// REQ: LOG-4
func TestLongPatientView(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		synced := func() *testLog {
			l := newTestLog(t, db)
			if err := l.SyncViews(ctx); err != nil {
				t.Fatal(err)
			}
			return l
		}
		l := synced()
		uncachedFrom := time.Unix(1, 0) // a period: the same events, never through the cache
		// check reads the view through lg and returns how many events it
		// merged, after comparing it with the newest that many of the
		// whole log (the reading's own event included).
		check := func(step string, lg *testLog, wantTruncated bool) int {
			t.Helper()
			var q Search
			if lg == nil {
				lg, q.From = l, uncachedFrom
			}
			lines, truncated, err := ownView(ctx, lg, q, ViewOptions{})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, ln := range lines {
				n += ln.Count
			}
			newest, err := l.Query(ctx, Filter{TenantID: "t-1", PatientID: "p-0", Limit: n})
			if err != nil {
				t.Fatal(err)
			}
			if want := PatientView(newest, ViewOptions{}); truncated != wantTruncated || !reflect.DeepEqual(lines, want) {
				t.Fatalf("%s: truncated %v (want %v), lines differ from the newest %d events':\n got %+v\nwant %+v",
					step, truncated, wantTruncated, n, lines, want)
			}
			if all, err := l.Query(ctx, Filter{TenantID: "t-1", PatientID: "p-0", Limit: n + 1}); err != nil || (len(all) > n) != truncated {
				t.Fatalf("%s: %d events merged of %d (%v), truncated %v", step, n, len(all), err, truncated)
			}
			if truncated && (n < MaxViewEvents || n > 2*MaxViewEvents) {
				t.Fatalf("%s: truncated at %d events; want at least %d, at most twice that", step, n, MaxViewEvents)
			}
			return n
		}
		mustAppend(t, l, event("t-1", "p-0", "u-1"))
		mustSequence(t, l)
		check("short", l, false) // cached from here on
		start := l.clock.Now()
		fillPatient(t, l, db, "p-0", MaxViewEvents-10, start)
		mustSequence(t, l)
		check("nearly full, followed", l, false)
		fillPatient(t, l, db, "p-0", 20, start.Add(-time.Duration(MaxViewEvents)*time.Second))
		mustSequence(t, l)
		check("past the bound, followed", l, false)
		other := synced() // another replica, meeting the long view anew
		// The newest MaxViewEvents sequenced events and those still waiting
		// (PostgreSQL: the readings' own events; SQLite has none apart).
		if n := check("met anew", other, true); n > MaxViewEvents+2 {
			t.Fatalf("met anew: %d events merged; want the newest %d and the waiting ones", n, MaxViewEvents)
		}
		mustAppend(t, l, event("t-1", "p-0", "u-2"), event("t-1", "p-0", "u-3"))
		if n := check("met anew, then grown (waiting)", other, true); n <= MaxViewEvents {
			t.Fatalf("met anew, then grown: %d events merged", n)
		}
		mustSequence(t, l)
		check("met anew, then grown (sequenced)", other, true)
		if n := check("uncached", nil, true); n != MaxViewEvents {
			t.Fatalf("uncached: %d events merged; want the newest %d", n, MaxViewEvents)
		}
		// Grown to twice the bound, the cached view is merged anew from
		// the newest MaxViewEvents.
		later := start.Add(4 * time.Hour)
		for round := range 4 {
			later = later.Add(2 * time.Hour)
			fillPatient(t, l, db, "p-0", MaxViewEvents/2, later)
			mustSequence(t, l)
			if n := check(fmt.Sprintf("growing, round %d", round), other, true); n <= MaxViewEvents+2 {
				return
			}
		}
		t.Fatal("the cached view was never merged anew")
	})
}

// The cached view misses no event while other writers commit beside it:
// appends through a second handle on the same database, transactions and
// shared (GroupTx) commits that roll an event back, and the sequencer, all
// while views are read. An event a step missed would stay missing from
// every later step, so the view read once everything has stopped must be
// the whole log's.
// REQ: LOG-4
func TestCachedPatientViewMissesNoConcurrentCommit(t *testing.T) {
	storetest.EachPair(t, func(t *testing.T, a, b *store.DB) {
		ctx := context.Background()
		la, lb := newTestLog(t, a), newTestLog(t, b)
		if err := la.SyncViews(ctx); err != nil {
			t.Fatal(err)
		}
		view := func() []PatientLine {
			t.Helper()
			lines, truncated, err := ownView(ctx, la, Search{}, ViewOptions{})
			if err != nil || truncated {
				t.Errorf("view: %v, truncated %v", err, truncated)
			}
			return lines
		}
		errRollback := errors.New("rolled back")
		// appendIn appends one event of p-0 in tx through lg, and rolls the
		// transaction back when rollback says so.
		appendIn := func(ctx context.Context, tx *store.Tx, lg *testLog, user string, rollback bool) error {
			if _, err := lg.AppendIn(ctx, tx, event("t-1", "p-0", user)); err != nil {
				return err
			}
			if rollback {
				return errRollback
			}
			return nil
		}
		rolledBack := func(err error) error {
			if errors.Is(err, errRollback) {
				return nil
			}
			return err
		}
		writers := []func(i int) error{
			func(i int) error { _, err := la.Append(ctx, event("t-1", fmt.Sprintf("p-%d", i%2), "u-a")); return err },
			func(i int) error { _, err := lb.Append(ctx, event("t-1", fmt.Sprintf("p-%d", i%2), "u-b")); return err },
			func(i int) error { // an event in a write's own transaction, every third one rolled back
				return rolledBack(b.Tx(ctx, func(tx *store.Tx) error { return appendIn(ctx, tx, lb, "u-tx", i%3 == 0) }))
			},
			func(i int) error { // members of a shared commit, every other one rolled back
				return rolledBack(a.GroupTx(ctx, func(ctx context.Context, tx *store.Tx) error { return appendIn(ctx, tx, la, "u-group", i%2 == 0) }))
			},
		}
		var wg sync.WaitGroup
		for w, write := range writers {
			for g := range 2 {
				wg.Go(func() {
					for i := range 30 {
						if err := write(w + g + i); err != nil {
							t.Errorf("writer %d: %v", w, err)
							return
						}
					}
				})
			}
		}
		wg.Go(func() {
			for range 10 {
				if _, err := la.Sequence(ctx); err != nil {
					t.Errorf("sequence: %v", err)
					return
				}
			}
		})
		stop := make(chan struct{})
		var readers sync.WaitGroup
		for range 3 {
			readers.Go(func() {
				for range 500 {
					select {
					case <-stop:
						return
					default:
						view()
					}
				}
			})
		}
		wg.Wait()
		close(stop)
		readers.Wait()
		if t.Failed() {
			return
		}
		if err := la.SyncViews(ctx); err != nil {
			t.Fatal(err)
		}
		got := view()
		all, err := la.Query(ctx, Filter{TenantID: "t-1", PatientID: "p-0", Limit: MaxViewEvents})
		if err != nil || len(all) == MaxViewEvents {
			t.Fatalf("the whole log: %d events, %v", len(all), err)
		}
		if want := PatientView(all, ViewOptions{}); !reflect.DeepEqual(got, want) {
			t.Fatalf("the cached view differs from the whole log's (%d events):\n got %+v\nwant %+v", len(all), got, want)
		}
		if la.views.steps.Load() == 0 {
			t.Fatal("no view was brought up to date from a cached one")
		}
	})
}

// A waiting event queued without its writer (writer_txn 0: before
// migration 00350, or by a replica not yet upgraded) is still taken into a
// cached view while it waits, not only once it is sequenced.
// REQ: LOG-4
func TestCachedPatientViewTakesEventsOfUnknownWriters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := newTestLog(t, db)
		if err := l.SyncViews(ctx); err != nil {
			t.Fatal(err)
		}
		view := func() []PatientLine {
			t.Helper()
			lines, _, err := ownView(ctx, l, Search{}, ViewOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return lines
		}
		mustAppend(t, l, event("t-1", "p-0", "u-1"))
		mustSequence(t, l)
		view() // cached from here on
		old := mustAppend(t, l, event("t-1", "p-0", "u-old"))[0]
		if _, err := db.ExecContext(ctx, `UPDATE audit_pending SET writer_txn = 0 WHERE event_id = $1`, old.ID); err != nil {
			t.Fatal(err)
		}
		got := view()
		all, err := l.Query(ctx, Filter{TenantID: "t-1", PatientID: "p-0"})
		if err != nil {
			t.Fatal(err)
		}
		if want := PatientView(all, ViewOptions{}); !reflect.DeepEqual(got, want) {
			t.Fatalf("the cached view left out the waiting event of an unknown writer:\n got %+v\nwant %+v", got, want)
		}
		if l.views.steps.Load() == 0 {
			t.Fatal("the view was not brought up to date from the cached one")
		}
	})
}
