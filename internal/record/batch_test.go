package record_test

import (
	"context"
	"errors"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/record"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// REQ: LOG-3, DP-1 — a batch writes its resources, each sealed and with its
// own create event, in one transaction: all of them or, when one write
// fails, none and no event; a grant for one patient cannot add another
// patient's resource to a batch.
func TestBatchIsAllOrNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db, 1)
		cg, err := w.decider.Decide(ctx, w.gp, access.Request{PatientID: w.patient, Action: access.Create})
		if err != nil {
			t.Fatal(err)
		}
		obs := func(id string) record.Resource {
			return record.Resource{Type: "Observation", ID: id, PatientID: w.patient, Categories: []string{"clinical"},
				Body: []byte(`{"resourceType":"Observation","status":"final","valueString":"bloeddruk 120/80"}`)}
		}
		creates := func() int { return w.count(t, w.gp.AccountID(), "create", "success") }
		before := creates()

		b := w.records.NewBatch()
		for _, id := range []string{"b-1", "b-2", "b-3"} {
			if _, err := b.Insert(ctx, cg, obs(id)); err != nil {
				t.Fatal(err)
			}
		}
		other := obs("b-4")
		other.PatientID = "p-someone-else"
		if _, err := b.Insert(ctx, cg, other); !errors.Is(err, record.ErrWrongGrant) {
			t.Fatalf("another patient's resource in the batch: %v, want ErrWrongGrant", err)
		}
		if err := b.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if got := creates() - before; got != 3 {
			t.Fatalf("batch of 3 logged %d create events", got)
		}
		rg, err := w.decider.Decide(ctx, w.gp, access.Request{PatientID: w.patient, Action: access.Read})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"b-1", "b-2", "b-3"} {
			if r, err := w.records.Read(ctx, rg, "Observation", id); err != nil || r.Version != 1 {
				t.Fatalf("read %s after the batch: %+v, %v", id, r, err)
			}
		}
		var plain int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM resources WHERE id LIKE 'b-%' AND body LIKE '%bloeddruk%'`).Scan(&plain); err != nil || plain != 0 {
			t.Fatalf("%d batch rows in clear (%v)", plain, err)
		}
		if err := b.Commit(ctx); err == nil {
			t.Fatal("a batch committed twice")
		}

		// The second write of this batch conflicts with b-1: nothing of it lands.
		before = creates()
		b = w.records.NewBatch()
		for _, id := range []string{"b-5", "b-1", "b-6"} {
			if _, err := b.Insert(ctx, cg, obs(id)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(ctx); !errors.Is(err, record.ErrConflict) {
			t.Fatalf("batch with a conflicting write: %v, want ErrConflict", err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM resources WHERE id IN ('b-5', 'b-6')`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("failed batch left %d rows (%v)", n, err)
		}
		if got := creates() - before; got != 0 {
			t.Fatalf("failed batch left %d create events", got)
		}
	})
}
