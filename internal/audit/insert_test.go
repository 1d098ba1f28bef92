package audit

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// A batch of any size is stored whole, in power-of-two INSERTs: every event
// and its queue entry, once, and the tree built from them is the tree of all
// of them.
// REQ: LOG-1, LOG-3
func TestAppendStoresEveryBatchSize(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := newTestLog(t, db)
		var want []string
		total := 0
		for _, n := range []int{1, 2, 3, 7, 31, 32, 33, 63, 97} {
			events := make([]Event, n)
			for i := range events {
				events[i] = event("t1", fmt.Sprintf("p%d-%d", n, i), "u1")
			}
			out := mustAppend(t, l, events...)
			for _, e := range out {
				body, err := e.Canonical()
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, string(body))
			}
			total += n
			var stored, queued int
			if err := db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM audit_events), (SELECT COUNT(*) FROM audit_pending)`).Scan(&stored, &queued); err != nil {
				t.Fatal(err)
			}
			if stored != total || queued != total {
				t.Fatalf("after a batch of %d: %d events stored, %d queued; want %d each", n, stored, queued, total)
			}
		}
		mustSequence(t, l)
		got := leafBodies(t, db, "t1")
		if len(got) != len(want) {
			t.Fatalf("%d leaves; want %d", len(got), len(want))
		}
		// Events of one instant are placed in id order, not append order.
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Fatal("the tree's leaves are not the appended events")
		}
	})
}

func TestChunkSize(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 2, 3: 2, 7: 4, 8: 8, 31: 16, 32: 32, 33: 32, 1000: 32} {
		if got := chunkSize(n, true); got != want {
			t.Errorf("chunkSize(%d, pow2) = %d; want %d", n, got, want)
		}
	}
	for n, want := range map[int]int{1: 1, 3: 3, 31: 31, 32: 32, 1000: 32} {
		if got := chunkSize(n, false); got != want {
			t.Errorf("chunkSize(%d) = %d; want %d", n, got, want)
		}
	}
}
