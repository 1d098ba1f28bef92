package audit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

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
		person := Event{UserID: "person", Role: "person", PatientID: "p-0"}
		check := func(round int, o ViewOptions) {
			t.Helper()
			got, truncated, err := l.ReadPatientView(ctx, NewPermit(person, "t-1", "p-0"), Search{PatientID: "p-0"}, "me/log", o)
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

// A cached view that has grown past MaxViewEvents answers as the uncached
// one does, the newest MaxViewEvents and truncated, on whichever replica.
// REQ: LOG-4
func TestCachedPatientViewTruncatesAsUncached(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := context.Background()
	l := newTestLog(t, db)
	if err := l.SyncViews(ctx); err != nil {
		t.Fatal(err)
	}
	person := Event{UserID: "person", Role: "person", PatientID: "p-0"}
	view := func() ([]PatientLine, bool) {
		t.Helper()
		lines, truncated, err := l.ReadPatientView(ctx, NewPermit(person, "t-1", "p-0"), Search{PatientID: "p-0"}, "", ViewOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return lines, truncated
	}
	mustAppend(t, l, event("t-1", "p-0", "u-1"))
	mustSequence(t, l)
	if _, truncated := view(); truncated { // cached from here on
		t.Fatal("a short view is truncated")
	}
	start := l.clock.Now()
	fillPatient(t, l, db, "p-0", MaxViewEvents+5, start)
	lines, truncated := view()
	n := 0
	for _, ln := range lines {
		n += ln.Count
	}
	if !truncated || n != MaxViewEvents {
		t.Fatalf("%d events merged, truncated %v; want %d and truncated, as without the cache", n, truncated, MaxViewEvents)
	}
}
