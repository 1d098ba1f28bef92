package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

type ctxKey struct{}

// Concurrent GroupTx calls share commits on SQLite, yet each stays all or
// nothing: a failing one (its own error, or a unique violation half-way)
// leaves no row and fails alone, the others' rows are all there, and each
// fn sees its caller's context values.
func TestGroupTxEachAllOrNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, q := range []string{`CREATE TABLE group_t (id BIGINT PRIMARY KEY, who BIGINT NOT NULL)`, `INSERT INTO group_t (id, who) VALUES (0, -1)`} {
			if _, err := db.SQL().ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		const n = 200
		boom := errors.New("boom")
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx := context.WithValue(ctx, ctxKey{}, i)
				errs[i] = db.GroupTx(cctx, func(ctx context.Context, tx *store.Tx) error {
					if ctx.Value(ctxKey{}) != i {
						return fmt.Errorf("fn %d sees the context value %v", i, ctx.Value(ctxKey{}))
					}
					// Two rows each: the second of every fifth collides with
					// the row there before, after its own first row went in.
					if _, err := tx.ExecContext(ctx, `INSERT INTO group_t (id, who) VALUES ($1, $2)`, 10*i+1, i); err != nil {
						return err
					}
					second := 10*i + 2
					if i%5 == 4 {
						second = 0
					}
					if _, err := tx.ExecContext(ctx, `INSERT INTO group_t (id, who) VALUES ($1, $2)`, second, i); err != nil {
						return err
					}
					if i%7 == 3 {
						return boom
					}
					return nil
				})
			}()
		}
		wg.Wait()
		rows := map[int]int{}
		r, err := db.QueryContext(ctx, `SELECT who, COUNT(*) FROM group_t GROUP BY who`)
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var who, c int
			if err := r.Scan(&who, &c); err != nil {
				t.Fatal(err)
			}
			rows[who] = c
		}
		r.Close()
		for i := range n {
			switch {
			case i%5 == 4:
				if !store.IsUniqueViolation(errors.Unwrap(errs[i])) && !store.IsUniqueViolation(errs[i]) {
					t.Errorf("fn %d: %v; want its unique violation", i, errs[i])
				}
				if rows[i] != 0 {
					t.Errorf("fn %d failed half-way but left %d rows", i, rows[i])
				}
			case i%7 == 3:
				if !errors.Is(errs[i], boom) || rows[i] != 0 {
					t.Errorf("fn %d: %v with %d rows; want its own error and none", i, errs[i], rows[i])
				}
			default:
				if errs[i] != nil || rows[i] != 2 {
					t.Errorf("fn %d: %v with %d rows; want success and 2", i, errs[i], rows[i])
				}
			}
		}
	})
}

// A caller that gave up before its turn runs nothing; a closed database
// takes no more.
func TestGroupTxCancelledAndClosed(t *testing.T) {
	db := storetest.SQLite(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := db.GroupTx(ctx, func(context.Context, *store.Tx) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("cancelled: %v, ran %v", err, ran)
	}
	if err := db.GroupTx(context.Background(), func(context.Context, *store.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := db.GroupTx(context.Background(), func(context.Context, *store.Tx) error { return nil }); err == nil {
		t.Fatal("GroupTx on a closed database succeeded")
	}
}

// A panic in one fn is that caller's error; the others commit and the
// writer goes on.
func TestGroupTxPanicIsOneCallersError(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := context.Background()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE panic_t (id BIGINT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	errs := make([]error, 20)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.GroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO panic_t (id) VALUES ($1)`, i); err != nil {
					return err
				}
				if i == 7 {
					panic("boom")
				}
				return nil
			})
		}()
	}
	wg.Wait()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM panic_t WHERE id <> 7`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	var seven int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM panic_t WHERE id = 7`).Scan(&seven); err != nil {
		t.Fatal(err)
	}
	if errs[7] == nil || seven != 0 || n != 19 {
		t.Fatalf("panicking fn: %v, its row %d; others' rows %d (want an error, 0, 19)", errs[7], seven, n)
	}
	for i, err := range errs {
		if i != 7 && err != nil {
			t.Errorf("fn %d: %v", i, err)
		}
	}
	if err := db.GroupTx(ctx, func(context.Context, *store.Tx) error { return nil }); err != nil {
		t.Fatalf("the writer after a panic: %v", err)
	}
}
