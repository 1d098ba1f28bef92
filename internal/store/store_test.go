package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

func TestMigrateAndQueryBothDialects(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ok, err := db.MigrationsCurrent(ctx)
		if err != nil || !ok {
			t.Fatalf("migrations current = %v, %v; want true", ok, err)
		}
		if n, err := db.Migrate(ctx); err != nil || n != 0 {
			t.Fatalf("second migrate ran %d, err %v; want 0", n, err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)`, "t1", "Huisarts", int64(1)); err != nil {
			t.Fatalf("insert: %v", err)
		}
		_, err = db.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)`, "t1", "dup", int64(2))
		if !store.IsUniqueViolation(err) {
			t.Fatalf("duplicate insert error = %v; want unique violation", err)
		}
		var name string
		if err := db.QueryRowContext(ctx, `SELECT name FROM tenants WHERE id = $1`, "t1").Scan(&name); err != nil || name != "Huisarts" {
			t.Fatalf("select = %q, %v", name, err)
		}
	})
}

func TestTxRollsBackOnError(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boom := errors.New("boom")
		err := db.Tx(ctx, func(tx *store.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)`, "t2", "x", int64(1)); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Tx error = %v; want boom", err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM tenants WHERE id = $1`, "t2").Scan(&n); err != nil || n != 0 {
			t.Fatalf("after rollback count = %d, %v; want 0 (no partial write)", n, err)
		}
	})
}

// Optimize gives SQLite planner statistics for tables that have rows (it
// gathers none by itself) and is harmless on PostgreSQL.
func TestOptimizeGathersStatistics(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for i := range 200 {
			if _, err := db.ExecContext(ctx, `INSERT INTO tenants (id, name, ura, agb, created_at) VALUES ($1, $2, '', '', 0)`,
				fmt.Sprintf("t%03d", i), fmt.Sprintf("Praktijk %d", i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Optimize(ctx); err != nil {
			t.Fatal(err)
		}
		if db.Dialect() != store.SQLite {
			return
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'tenants'`).Scan(&n); err != nil || n == 0 {
			t.Fatalf("no statistics for tenants after Optimize: %d %v", n, err)
		}
	})
}

// A later Optimize refreshes statistics taken while a table was small: a
// fresh installation's first statistics (the demo's 38 events, say) would
// otherwise have the planner scan a table grown a hundredfold. serve runs
// it every few minutes for that; it analyzes only tables that grew much.
func TestOptimizeFollowsGrowth(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := context.Background()
	insert := func(from, to int) {
		t.Helper()
		err := db.Tx(ctx, func(tx *store.Tx) error {
			for i := from; i < to; i++ {
				if _, err := tx.ExecContext(ctx, `INSERT INTO tenants (id, name, ura, agb, created_at) VALUES ($1, $2, '', '', 0)`,
					fmt.Sprintf("t%05d", i), fmt.Sprintf("Praktijk %d", i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	rows := func() int {
		t.Helper()
		var stat string
		if err := db.QueryRowContext(ctx, `SELECT stat FROM sqlite_stat1 WHERE tbl = 'tenants' ORDER BY idx LIMIT 1`).Scan(&stat); err != nil {
			t.Fatal(err)
		}
		var n int
		fmt.Sscan(stat, &n)
		return n
	}
	insert(0, 20)
	if err := db.Optimize(ctx); err != nil {
		t.Fatal(err)
	}
	small := rows()
	insert(20, 3000)
	if err := db.Optimize(ctx); err != nil {
		t.Fatal(err)
	}
	if big := rows(); small > 100 || big < 1000 {
		t.Fatalf("statistics say %d rows at 20 and %d at 3000; want them to follow the growth", small, big)
	}
}

// Stmt gives the same results as the plain query methods on both engines,
// outside and inside a transaction, and a failed statement its error.
func TestStmt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.Stmt(`INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)`).ExecContext(ctx, "t1", "Een", int64(1)); err != nil {
			t.Fatal(err)
		}
		_, err := db.Stmt(`INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)`).ExecContext(ctx, "t1", "dup", int64(2))
		if !store.IsUniqueViolation(err) {
			t.Fatalf("duplicate through Stmt: %v; want unique violation", err)
		}
		for range 3 {
			var name string
			if err := db.Stmt(`SELECT name FROM tenants WHERE id = $1`).QueryRowContext(ctx, "t1").Scan(&name); err != nil || name != "Een" {
				t.Fatalf("select = %q, %v", name, err)
			}
		}
		err = db.Tx(ctx, func(tx *store.Tx) error {
			if _, err := tx.Stmt(`UPDATE tenants SET name = $1 WHERE id = $2`).ExecContext(ctx, "Eén", "t1"); err != nil {
				return err
			}
			rows, err := tx.Stmt(`SELECT name FROM tenants WHERE id = $1`).QueryContext(ctx, "t1")
			if err != nil {
				return err
			}
			defer rows.Close()
			var names []string
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					return err
				}
				names = append(names, n)
			}
			if fmt.Sprint(names) != "[Eén]" {
				return fmt.Errorf("select in the transaction = %v; want its own update", names)
			}
			return rows.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
