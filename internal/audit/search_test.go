package audit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// Search filters by patient, user, period, action and emergency, pages by
// cursor in both orders without losing or repeating events, and Boundary
// and Each bound an export.
// REQ: LOG-5
func TestSearch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := newTestLog(t, db)
		start := l.clock.Now()
		var all []Event
		for i := range 25 {
			e := event("t-1", fmt.Sprintf("p-%d", i%3), fmt.Sprintf("u-%d", i%2))
			e.Time = start.Add(time.Duration(i) * time.Minute)
			if i%5 == 0 {
				e.Action, e.Emergency, e.EmergencyReason = ActionEmergency, true, "reason"
			}
			if i%4 == 1 {
				e.Outcome = OutcomeDenied
			}
			all = append(all, e)
		}
		all = append(all, event("t-2", "p-0", "u-0")) // another tenant
		mustAppend(t, l, all...)

		count := func(q Search) int {
			t.Helper()
			n, err := l.each(ctx, q, 0, func(Event) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		yes, no := true, false
		for name, c := range map[string]struct {
			q    Search
			want int
		}{
			"tenant":        {Search{TenantID: "t-1"}, 25},
			"patient":       {Search{TenantID: "t-1", PatientID: "p-0"}, 9},
			"user":          {Search{TenantID: "t-1", UserID: "u-1"}, 12},
			"action":        {Search{TenantID: "t-1", Action: ActionEmergency}, 5},
			"emergency":     {Search{TenantID: "t-1", Emergency: &yes}, 5},
			"not emergency": {Search{TenantID: "t-1", Emergency: &no}, 20},
			"denied":        {Search{TenantID: "t-1", Outcome: OutcomeDenied}, 6},
			"period":        {Search{TenantID: "t-1", From: start.Add(10 * time.Minute), To: start.Add(20 * time.Minute)}, 10},
			"combined":      {Search{TenantID: "t-1", PatientID: "p-1", UserID: "u-0", From: start.Add(5 * time.Minute)}, 3},
		} {
			if got := count(c.q); got != c.want {
				t.Errorf("%s: %d events, want %d", name, got, c.want)
			}
		}

		for _, oldest := range []bool{false, true} {
			q := Search{TenantID: "t-1", Oldest: oldest, Limit: 4}
			var seen []Event
			for pages := 0; pages < 20; pages++ {
				evs, next, err := l.search(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				seen = append(seen, evs...)
				if next.IsZero() {
					break
				}
				c, err := ParseCursor(next.String())
				if err != nil || c != next {
					t.Fatalf("cursor round trip: %v %+v %+v", err, c, next)
				}
				q.After = c
			}
			if len(seen) != 25 {
				t.Fatalf("oldest=%v: paged %d events, want 25", oldest, len(seen))
			}
			for i := 1; i < len(seen); i++ {
				if before := seen[i].Time.Before(seen[i-1].Time); before == oldest {
					t.Fatalf("oldest=%v: order broken at %d", oldest, i)
				}
			}
		}

		q := Search{TenantID: "t-1", Oldest: true}
		until, more, err := l.boundary(ctx, q, 10)
		if err != nil || !more {
			t.Fatalf("boundary: %v %v", more, err)
		}
		q.Until = until
		if got := count(q); got != 10 {
			t.Fatalf("bounded export: %d events", got)
		}
		if _, more, err := l.boundary(ctx, Search{TenantID: "t-1"}, 25); err != nil || more {
			t.Fatalf("boundary at the end: %v %v", more, err)
		}
		if n, err := l.each(ctx, Search{TenantID: "t-1"}, 7, func(Event) error { return nil }); err != nil || n != 7 {
			t.Fatalf("Each max: %d %v", n, err)
		}
		for _, bad := range []string{"", "x", "MTIz", "MTIzLmFiYw"} {
			if _, err := ParseCursor(bad); err == nil {
				t.Errorf("cursor %q accepted", bad)
			}
		}
	})
}
