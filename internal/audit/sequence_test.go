package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// REQ: LOG-2
func TestSequenceBuildsOneSignedTreePerTenant(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		l := newTestLog(t, db)
		counts := map[string]int{"": 3, "t1": 5, "t2": 1}
		for tenant, n := range counts {
			for i := range n {
				mustAppend(t, l, event(tenant, fmt.Sprintf("p%d", i), "u1"))
			}
		}
		if n := mustSequence(t, l); n != 9 {
			t.Fatalf("Sequence = %d; want 9", n)
		}
		if n := mustSequence(t, l); n != 0 {
			t.Fatalf("second Sequence = %d; want 0", n)
		}
		for tenant, n := range counts {
			bodies := leafBodies(t, db, tenant)
			if len(bodies) != n {
				t.Fatalf("tenant %q has %d leaves; want %d", tenant, len(bodies), n)
			}
			c := latestCheckpoint(t, db, l.verifier, tenant)
			if c.Size != int64(n) || c.Root != memRoot(t, bodies) {
				t.Errorf("tenant %q checkpoint size %d root %v; want %d %v", tenant, c.Size, c.Root, n, memRoot(t, bodies))
			}
			if c.Origin != Origin("zorgkluis.test/audit", tenant) || !c.Time.Equal(testStart) {
				t.Errorf("tenant %q checkpoint origin %q time %v", tenant, c.Origin, c.Time)
			}
		}
	})
}

// REQ: LOG-2
func TestSequenceExtendsTreeAndKeepsOldProofsValid(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := newTestLog(t, db)
		var total int
		// Batches that cross group (256) boundaries and odd sizes.
		for _, k := range []int{1, 2, 300, 7, 513} {
			evs := make([]Event, k)
			for i := range evs {
				evs[i] = event("t1", fmt.Sprintf("p%d", i%13), "u2")
			}
			mustAppend(t, l, evs...)
			l.clock.Advance(time.Second)
			if n := mustSequence(t, l); n != k {
				t.Fatalf("Sequence = %d; want %d", n, k)
			}
			total += k
			bodies := leafBodies(t, db, "t1")
			c := latestCheckpoint(t, db, l.verifier, "t1")
			if c.Size != int64(total) || c.Root != memRoot(t, bodies) {
				t.Fatalf("after %d events: checkpoint %d %v; want root of the leaves", total, c.Size, c.Root)
			}
			// Every leaf so far is provable against this checkpoint.
			err := db.Tx(ctx, func(tx *store.Tx) error {
				hs := newHashStore(ctx, tx, "t1")
				for _, i := range []int{0, total / 2, total - 1} {
					p, err := tlog.ProveRecord(c.Size, int64(i), hs)
					if err != nil {
						return err
					}
					if err := tlog.CheckRecord(p, c.Size, c.Root, int64(i), tlog.RecordHash([]byte(bodies[i]))); err != nil {
						return fmt.Errorf("leaf %d: %w", i, err)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}

// Several sequencers (replicas) at once: each event gets exactly one
// position and every tree stays dense and correctly signed.
// REQ: LOG-2
func TestConcurrentSequencersAgree(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := newTestLog(t, db)
		b := &testLog{Log: New(db, a.clock, nil, WithSigner(a.signer)), clock: a.clock, verifier: a.verifier}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for _, l := range []*testLog{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := l.Sequence(ctx); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		const writers, each = 4, 40
		var ww sync.WaitGroup
		for w := range writers {
			ww.Add(1)
			go func() {
				defer ww.Done()
				for i := range each {
					tenant := []string{"t1", "t2"}[i%2]
					if _, err := a.Append(ctx, event(tenant, fmt.Sprintf("p%d", w), "u")); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		ww.Wait()
		close(stop)
		wg.Wait()
		mustSequence(t, a)
		for _, tenant := range []string{"t1", "t2"} {
			bodies := leafBodies(t, db, tenant)
			if len(bodies) != writers*each/2 {
				t.Fatalf("tenant %s: %d leaves; want %d", tenant, len(bodies), writers*each/2)
			}
			if c := latestCheckpoint(t, db, a.verifier, tenant); c.Root != memRoot(t, bodies) {
				t.Fatalf("tenant %s: checkpoint root does not match the leaves", tenant)
			}
		}
	})
}

func TestSequenceNeedsSigner(t *testing.T) {
	db := storetest.SQLite(t)
	l := New(db, newTestLog(t, db).clock, nil)
	if _, err := l.Sequence(context.Background()); err != ErrNoSigner {
		t.Fatalf("Sequence without key = %v; want ErrNoSigner", err)
	}
}

// The lag is what a metric alarms on: it grows while events wait for a
// checkpoint and drops to zero once they are sequenced.
// REQ: LOG-2
func TestLagCountsUncoveredEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := newTestLog(t, db)
		if lag, err := l.Lag(ctx); err != nil || lag != 0 {
			t.Fatalf("empty log lag = %v, %v; want 0", lag, err)
		}
		mustAppend(t, l, event("t1", "p1", "u1"))
		l.clock.Advance(1500 * time.Millisecond)
		mustAppend(t, l, event("t2", "p1", "u1"))
		if lag, err := l.Lag(ctx); err != nil || lag != 1500*time.Millisecond {
			t.Fatalf("lag = %v, %v; want 1.5s", lag, err)
		}
		mustSequence(t, l)
		if lag, err := l.Lag(ctx); err != nil || lag != 0 {
			t.Fatalf("lag after Sequence = %v, %v; want 0", lag, err)
		}
	})
}

// Checkpoints are thinned to the first of each day plus the newest, and the
// newest always carries the current size.
func TestCheckpointsThinnedPerDay(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := newTestLog(t, db)
		for day := range 2 {
			for range 4 {
				mustAppend(t, l, event("t1", "p", "u"))
				mustSequence(t, l)
				l.clock.Advance(time.Minute)
			}
			if day == 0 {
				l.clock.Advance(24 * time.Hour)
			}
		}
		rows, err := db.QueryContext(ctx, `SELECT size FROM audit_checkpoints WHERE tenant_id = 't1' ORDER BY size`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var sizes []int64
		for rows.Next() {
			var s int64
			rows.Scan(&s)
			sizes = append(sizes, s)
		}
		if fmt.Sprint(sizes) != "[1 4 5 8]" {
			t.Fatalf("kept checkpoints %v; want [1 4 5 8] (first and last of each day)", sizes)
		}
	})
}

// AppendIn commits with the caller's transaction: a rollback leaves neither
// the event nor a pending entry.
// REQ: LOG-3
func TestAppendInRollsBackWithCaller(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := newTestLog(t, db)
		boom := fmt.Errorf("boom")
		err := db.Tx(ctx, func(tx *store.Tx) error {
			if _, err := l.AppendIn(ctx, tx, event("t1", "p1", "u1")); err != nil {
				return err
			}
			return boom
		})
		if err != boom {
			t.Fatalf("Tx = %v", err)
		}
		var n int
		db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM audit_events) + (SELECT COUNT(*) FROM audit_pending)`).Scan(&n)
		if n != 0 {
			t.Fatalf("%d rows after rollback; want 0", n)
		}
	})
}

func TestCheckpointTextRoundTrip(t *testing.T) {
	root := tlog.RecordHash([]byte("x"))
	for _, tenant := range []string{"", "t1", "a/b c"} {
		c := Checkpoint{Origin: Origin("k.example/audit", tenant), Size: 42, Root: root, Time: testStart}
		got, err := ParseCheckpoint(c.Text())
		if err != nil || got != c {
			t.Fatalf("ParseCheckpoint(%q) = %+v, %v", c.Text(), got, err)
		}
		if tt, err := TenantOf(got.Origin); err != nil || tt != tenant {
			t.Fatalf("TenantOf(%q) = %q, %v; want %q", got.Origin, tt, err, tenant)
		}
	}
	for _, bad := range []string{"", "o\n1\n", "o\n-1\nAAAA\n", "o\n01\n" + "x\n", "o\n1\nnotbase64\n"} {
		if _, err := ParseCheckpoint(bad); err == nil {
			t.Errorf("ParseCheckpoint(%q) succeeded", bad)
		}
	}
}

// Two sequencers (replicas) on one database take turns, as they do when
// one loses the sequencer lock and the other takes it: each keeps the
// tree's right edge in memory, so after the other's batches it must read
// that edge again. Every checkpoint must still be the root of a fresh
// computation over all leaves, every old leaf provable, Verify clean, and
// tampering found afterwards.
// REQ: LOG-2, LOG-3
func TestSequencersTakingTurnsRebuildTheirFrontier(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := newTestLog(t, db)
		b := &testLog{Log: New(db, a.clock, nil, WithSigner(a.signer)), clock: a.clock, verifier: a.verifier}
		t.Cleanup(func() { b.Close() })
		// Batch sizes that cross group (256) boundaries on several levels
		// and leave each sequencer's frontier stale in different places.
		turns := []struct {
			by *testLog
			k  int
		}{{a, 1}, {a, 300}, {b, 7}, {a, 256}, {a, 1}, {b, 513}, {b, 2}, {a, 255}, {b, 1}, {a, 1024}}
		total := 0
		for i, turn := range turns {
			evs := make([]Event, turn.k)
			for j := range evs {
				evs[j] = event("t1", fmt.Sprintf("p%d", j%11), fmt.Sprintf("u%d", i))
			}
			mustAppend(t, a, evs...)
			if db.Dialect() == store.Postgres && turn.by == a {
				// The other replica holds the lock: a skips this round and
				// keeps its (now unchanged) frontier.
				held, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
				go func() {
					done <- db.Tx(ctx, func(tx *store.Tx) error {
						if got, err := tx.TryLock(ctx, lockClass, "t1"); err != nil || !got {
							close(held)
							return fmt.Errorf("TryLock = %v, %v", got, err)
						}
						close(held)
						<-release
						return nil
					})
				}()
				<-held
				n, err := a.Sequence(ctx)
				close(release)
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				if err != nil || n != 0 {
					t.Fatalf("Sequence while another holds the lock = %d, %v; want 0, nil", n, err)
				}
			}
			a.clock.Advance(time.Second)
			if n := mustSequence(t, turn.by); n != turn.k {
				t.Fatalf("turn %d: Sequence = %d; want %d", i, n, turn.k)
			}
			total += turn.k
			bodies := leafBodies(t, db, "t1")
			c := latestCheckpoint(t, db, a.verifier, "t1")
			if len(bodies) != total || c.Size != int64(total) || c.Root != memRoot(t, bodies) {
				t.Fatalf("turn %d: %d leaves, checkpoint %d %v; want %d and the root of the leaves", i, len(bodies), c.Size, c.Root, total)
			}
			err := db.Tx(ctx, func(tx *store.Tx) error {
				// The edge kept in memory is the edge a fresh reader loads.
				fresh, err := loadFrontier(ctx, tx, "t1", c.Size, c.Root)
				if err != nil {
					return err
				}
				kept := turn.by.frontiers["t1"]
				if kept == nil || kept.size != fresh.size || kept.root != fresh.root || !maps.EqualFunc(kept.groups, fresh.groups, bytes.Equal) {
					return fmt.Errorf("the frontier kept in memory differs from the stored tree's")
				}
				hs := newHashStore(ctx, tx, "t1")
				for _, x := range []int{0, total / 3, total - 1} {
					p, err := tlog.ProveRecord(c.Size, int64(x), hs)
					if err != nil {
						return err
					}
					if err := tlog.CheckRecord(p, c.Size, c.Root, int64(x), tlog.RecordHash([]byte(bodies[x]))); err != nil {
						return fmt.Errorf("leaf %d: %w", x, err)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatalf("turn %d: %v", i, err)
			}
		}
		if r := verifyLog(t, a); !r.OK() || r.Events != int64(total) {
			t.Fatalf("Verify after the turns: %d events, %v", r.Events, r.Damage)
		}
		var id string
		if err := db.QueryRowContext(ctx, `SELECT event_id FROM audit_leaves WHERE tenant_id = 't1' AND idx = $1`, int64(total-3)).Scan(&id); err != nil {
			t.Fatal(err)
		}
		sqlExec(t, db, `UPDATE audit_events SET body = REPLACE(body, '"userName":"Dr. ', '"userName":"Mr. ') WHERE id = $1`, id)
		r := verifyLog(t, a)
		found := false
		for _, d := range r.Damage {
			found = found || (d.Kind == DamageEdited && d.Position == int64(total-3) && d.EventID == id)
		}
		if r.OK() || !found {
			t.Fatalf("Verify after tampering with leaf %d: %v; want it named as edited", total-3, r.Damage)
		}
	})
}

// flakySigner fails while fail is set, as a signing step that breaks in
// the middle of a batch, after the batch has grown its tree in memory.
type flakySigner struct {
	note.Signer
	fail bool
}

func (s *flakySigner) Sign(msg []byte) ([]byte, error) {
	if s.fail {
		return nil, errors.New("signer unavailable")
	}
	return s.Signer.Sign(msg)
}

// A batch that fails after extending the tree in memory rolls back and
// leaves no trace in the kept frontier: the next batch starts from the
// stored tree and its checkpoint is the root of all leaves.
// REQ: LOG-2
func TestFailedBatchDropsTheFrontier(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		base := newTestLog(t, db)
		fs := &flakySigner{Signer: base.signer}
		l := &testLog{Log: New(db, base.clock, nil, WithSigner(fs)), clock: base.clock, verifier: base.verifier}
		t.Cleanup(func() { l.Close() })
		total := 0
		for i, k := range []int{300, 17, 256, 1} {
			evs := make([]Event, k)
			for j := range evs {
				evs[j] = event("t1", fmt.Sprintf("p%d", j%5), "u1")
			}
			mustAppend(t, l, evs...)
			if i%2 == 1 {
				fs.fail = true
				if _, err := l.Sequence(context.Background()); err == nil {
					t.Fatal("Sequence with a failing signer succeeded")
				}
				fs.fail = false
			}
			if n := mustSequence(t, l); n != k {
				t.Fatalf("batch %d: Sequence = %d; want %d", i, n, k)
			}
			total += k
			bodies := leafBodies(t, db, "t1")
			c := latestCheckpoint(t, db, l.verifier, "t1")
			if len(bodies) != total || c.Size != int64(total) || c.Root != memRoot(t, bodies) {
				t.Fatalf("batch %d: %d leaves, checkpoint %d; want %d and the root of the leaves", i, len(bodies), c.Size, total)
			}
		}
		if r := verifyLog(t, base); !r.OK() {
			t.Fatalf("Verify: %v", r.Damage)
		}
	})
}
