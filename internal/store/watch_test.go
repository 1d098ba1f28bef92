package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// Every way of writing a watched table moves the watch's generation on this
// replica and its version on the others; reads and other tables do not.
func TestWatchSeesEveryWrite(t *testing.T) {
	storetest.EachPair(t, func(t *testing.T, a, b *store.DB) {
		ctx := context.Background()
		for _, q := range []string{`CREATE TABLE watched_t (id BIGINT PRIMARY KEY, v TEXT NOT NULL)`, `CREATE TABLE other_t (id BIGINT PRIMARY KEY)`} {
			if _, err := a.SQL().ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		wa := a.Watch("test", "watched_t")
		wb := b.Watch("test", "watched_t")
		now := time.Unix(1_700_000_000, 0)
		if _, ok := wb.Current(now); ok {
			t.Fatal("a watch that never synced answers")
		}
		if err := wb.Sync(ctx, now); err != nil {
			t.Fatal(err)
		}
		// moved runs write and reports whether each replica's generation
		// moved on (b's after a sync).
		moved := func(what string, write func() error) (here, there bool) {
			t.Helper()
			ga, _ := wa.Current(now)
			gb, _ := wb.Current(now)
			if err := write(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if err := wb.Sync(ctx, now); err != nil {
				t.Fatal(err)
			}
			ga2, _ := wa.Current(now)
			gb2, ok := wb.Current(now)
			if !ok {
				t.Fatalf("%s: the other replica is not fresh right after its sync", what)
			}
			return ga2 != ga, gb2 != gb
		}
		id := int64(0)
		next := func() int64 { id++; return id }
		writes := []struct {
			name  string
			write func() error
		}{
			{"DB.ExecContext", func() error {
				_, err := a.ExecContext(ctx, `INSERT INTO watched_t (id, v) VALUES ($1, 'x')`, next())
				return err
			}},
			{"Stmt outside a transaction", func() error {
				_, err := a.Stmt(`UPDATE watched_t SET v = 'y' WHERE id = $1`).ExecContext(ctx, int64(1))
				return err
			}},
			{"Tx.ExecContext", func() error {
				return a.Tx(ctx, func(tx *store.Tx) error {
					_, err := tx.ExecContext(ctx, `INSERT INTO watched_t (id, v) VALUES ($1, 'x') ON CONFLICT (id) DO UPDATE SET v = 'z'`, next())
					return err
				})
			}},
			{"Stmt in a transaction", func() error {
				return a.Tx(ctx, func(tx *store.Tx) error {
					_, err := tx.Stmt(`DELETE FROM watched_t WHERE id = $1`).ExecContext(ctx, int64(1))
					return err
				})
			}},
			{"a WITH clause", func() error {
				_, err := a.ExecContext(ctx, `WITH n AS (SELECT 7 AS id) INSERT INTO watched_t (id, v) SELECT id, 'w' FROM n`)
				return err
			}},
		}
		for _, w := range writes {
			if here, there := moved(w.name, w.write); !here || !there {
				t.Errorf("%s: generation moved here %v, on the other replica %v; want both", w.name, here, there)
			}
		}
		others := []struct {
			name  string
			write func() error
		}{
			{"another table", func() error {
				_, err := a.ExecContext(ctx, `INSERT INTO other_t (id) VALUES ($1)`, next())
				return err
			}},
			{"a read", func() error {
				var n int
				return a.QueryRowContext(ctx, `SELECT COUNT(*) FROM watched_t`).Scan(&n)
			}},
		}
		for _, w := range others {
			if here, there := moved(w.name, w.write); here || there {
				t.Errorf("%s: generation moved here %v, on the other replica %v; want neither", w.name, here, there)
			}
		}
		// A deletes-only watch hears of deletes, not of inserts or updates.
		da := a.WatchDeletes("test-deletes", "watched_t")
		g0, _ := da.Current(now)
		if _, err := a.ExecContext(ctx, `INSERT INTO watched_t (id, v) VALUES ($1, 'x')`, next()); err != nil {
			t.Fatal(err)
		}
		if _, err := a.ExecContext(ctx, `UPDATE watched_t SET v = 'u'`); err != nil {
			t.Fatal(err)
		}
		if g, _ := da.Current(now); g != g0 {
			t.Error("a deletes-only watch moved on for an insert or an update")
		}
		if _, err := a.ExecContext(ctx, `DELETE FROM watched_t WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		if g, _ := da.Current(now); g == g0 {
			t.Error("a deletes-only watch did not move on for a delete")
		}
		if err := wb.Sync(ctx, now); err != nil { // those writes moved the other replica on
			t.Fatal(err)
		}

		// A transaction that fails still moves this replica on (what it
		// wrote was seen before it failed), but bumps no version.
		boom := errors.New("boom")
		here, there := moved("a failed transaction", func() error {
			err := a.Tx(ctx, func(tx *store.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO watched_t (id, v) VALUES ($1, 'x')`, next()); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				return err
			}
			return nil
		})
		if !here || there {
			t.Errorf("a failed transaction: generation moved here %v (want true), on the other replica %v (want false)", here, there)
		}
		// Freshness: a sync older than the bound stops the cache answering.
		if _, ok := wb.Current(now.Add(700 * time.Millisecond)); !ok {
			t.Error("not fresh 700 ms after a sync")
		}
		if _, ok := wb.Current(now.Add(time.Second)); ok {
			t.Error("fresh a second after the last sync")
		}
	})
}
