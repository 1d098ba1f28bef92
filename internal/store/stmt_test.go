package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func openSQLiteForTest(t *testing.T) *DB {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "zk.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

// A statement is prepared once and then shared by concurrent callers,
// outside and inside transactions, and sees the transaction's own writes.
// (The behaviour on both engines is in store_test's TestStmt; the cache
// itself exists only on SQLite, pgx keeps its own.)
func TestStmtCacheSQLite(t *testing.T) {
	db := openSQLiteForTest(t)
	ctx := context.Background()
	const q = `SELECT name FROM tenants WHERE id = $1`
	if _, err := db.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ('t1', 'Een', 1)`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 20 {
				var name string
				if err := db.Stmt(q).QueryRowContext(ctx, "t1").Scan(&name); err != nil || name != "Een" {
					t.Errorf("cached select = %q, %v", name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := db.stmts.cached(); n != 1 {
		t.Fatalf("cache holds %d statements; want 1", n)
	}
	err := db.Tx(ctx, func(tx *Tx) error {
		if _, err := tx.Stmt(`INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, 2)`).ExecContext(ctx, "t2", "Twee"); err != nil {
			return err
		}
		var name string
		if err := tx.Stmt(q).QueryRowContext(ctx, "t2").Scan(&name); err != nil || name != "Twee" {
			return fmt.Errorf("cached select in the transaction = %q, %v; want its own write", name, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The insert, first met inside a transaction, is prepared beside it.
	deadline := time.Now().Add(10 * time.Second)
	for db.stmts.cached() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("cache holds %d statements; want the insert too", db.stmts.cached())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A statement that cannot be prepared reports its error as an
	// unprepared one would, and is not kept.
	if err := db.Stmt(`SELECT nothing FROM nowhere`).QueryRowContext(ctx).Scan(new(string)); err == nil {
		t.Fatal("bad statement: no error")
	}
	if n := db.stmts.cached(); n != 2 {
		t.Fatalf("cache holds %d statements after a bad one; want 2", n)
	}
}

// The cache is bounded: beyond maxStmts queries run unprepared, correctly.
func TestStmtCacheBounded(t *testing.T) {
	db := openSQLiteForTest(t)
	ctx := context.Background()
	for i := range maxStmts + 20 {
		var n int
		if err := db.Stmt(fmt.Sprintf(`SELECT %d + $1`, i)).QueryRowContext(ctx, 1).Scan(&n); err != nil || n != i+1 {
			t.Fatalf("query %d = %d, %v", i, n, err)
		}
	}
	if n := db.stmts.cached(); n != maxStmts {
		t.Fatalf("cache holds %d statements; want the bound %d", n, maxStmts)
	}
	db.Close()
	if n := db.stmts.cached(); n != 0 {
		t.Fatalf("cache holds %d statements after Close", n)
	}
}
