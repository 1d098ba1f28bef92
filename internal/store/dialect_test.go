package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// Unique, foreign-key and permission errors are recognised by the engine's
// error code, and text that merely looks like one is not: the message
// follows the server's language and version (it matched text before).
func TestErrorsByCode(t *testing.T) {
	for _, fake := range []error{
		errors.New("UNIQUE constraint failed: tenants.id"),
		errors.New("ERROR: duplicate key value (SQLSTATE 23505)"),
		errors.New("FOREIGN KEY constraint failed (SQLSTATE 23503)"),
		errors.New("permission denied for table audit_events (SQLSTATE 42501)"),
		nil,
	} {
		if store.IsUniqueViolation(fake) || store.IsForeignKeyViolation(fake) || store.IsPermissionDenied(fake) {
			t.Errorf("%v: recognised by its text", fake)
		}
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ('t1', 'Huisarts', 1)`); err != nil {
			t.Fatal(err)
		}
		insertAccount := func(id, tenant, username string) error {
			_, err := db.ExecContext(ctx, `INSERT INTO accounts (id, tenant_id, kind, username, display_name, created_at)
				VALUES ($1, $2, 'professional', $3, 'Dr. X', 1)`, id, tenant, username)
			return err
		}
		if err := insertAccount("a1", "t1", "dr.x"); err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]struct {
			err              error
			unique, fk, perm bool
		}{
			"primary key": {err: insertAccount("a1", "t1", "dr.y"), unique: true},
			"unique":      {err: insertAccount("a2", "t1", "dr.x"), unique: true},
			"foreign key": {err: insertAccount("a3", "t-none", "dr.z"), fk: true},
			"permission":  {err: permissionDenied(t, db), perm: true},
			"syntax":      {err: func() error { _, err := db.ExecContext(ctx, `INSERT INTO nowhere VALUES (1)`); return err }()},
		} {
			if c.err == nil {
				t.Errorf("%s: no error", name)
				continue
			}
			wrapped := fmt.Errorf("context: %w", c.err)
			if got := store.IsUniqueViolation(wrapped); got != c.unique {
				t.Errorf("%s: IsUniqueViolation(%v) = %v", name, c.err, got)
			}
			if got := store.IsForeignKeyViolation(wrapped); got != c.fk {
				t.Errorf("%s: IsForeignKeyViolation(%v) = %v", name, c.err, got)
			}
			if got := store.IsPermissionDenied(wrapped); got != c.perm {
				t.Errorf("%s: IsPermissionDenied(%v) = %v", name, c.err, got)
			}
		}
	})
}

// permissionDenied returns the error of a write the connection may not make:
// on SQLite a connection switched to query_only, on PostgreSQL a role
// without privileges. The transaction rolls back either way.
func permissionDenied(t *testing.T, db *store.DB) error {
	t.Helper()
	ctx := context.Background()
	var denied error
	role := ""
	if db.Dialect() == store.Postgres {
		var b [6]byte
		_, _ = rand.Read(b[:])
		role = "zk_test_norights_" + hex.EncodeToString(b[:])
		if _, err := db.ExecContext(ctx, `CREATE ROLE `+role+` NOLOGIN`); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = db.ExecContext(context.Background(), `DROP ROLE `+role) })
	}
	table := "tenants"
	if role != "" {
		// The role may not even see the schema: name it in full.
		if err := db.QueryRowContext(ctx, `SELECT current_schema() || '.tenants'`).Scan(&table); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("roll back")
	err := db.Tx(ctx, func(tx *store.Tx) error {
		setup, reset := `PRAGMA query_only = 1`, `PRAGMA query_only = 0`
		if role != "" {
			setup, reset = `SET LOCAL ROLE `+role, ``
		}
		if _, err := tx.ExecContext(ctx, setup); err != nil {
			return err
		}
		_, denied = tx.ExecContext(ctx, `INSERT INTO `+table+` (id, name, created_at) VALUES ('t-denied', 'x', 1)`)
		if reset != "" {
			if _, err := tx.ExecContext(ctx, reset); err != nil {
				return err
			}
		}
		return stop
	})
	if !errors.Is(err, stop) {
		t.Fatalf("permission set-up: %v", err)
	}
	return denied
}

// InList and Values bind lists after other parameters, in either dialect.
func TestListPlaceholders(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ids := []string{"t1", "t2", "t3", "t4"}
		err := db.Tx(ctx, func(tx *store.Tx) error {
			args := make([]any, 0, 3*len(ids))
			for i, id := range ids {
				args = append(args, id, "Praktijk "+id, int64(i))
			}
			_, err := tx.ExecContext(ctx, store.BulkInsert(tx)+` tenants (id, name, created_at) VALUES `+store.Values(tx, len(ids), 3), args...)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		in, args := store.InList(db, []string{"t2", "t3", "t9"}, 2)
		rows, err := db.QueryContext(ctx, `SELECT id FROM tenants WHERE created_at >= $1 AND id IN (`+in+`) ORDER BY id`, append([]any{int64(2)}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			got = append(got, id)
		}
		if err := rows.Err(); err != nil || fmt.Sprint(got) != "[t3]" {
			t.Fatalf("IN list after a parameter = %v, %v; want [t3]", got, err)
		}
	})
}

// A snapshot keeps seeing the state of its first read while others commit,
// and RawRows gives every column as text.
func TestSnapshotIsConsistent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ('t1', 'Een', 17)`); err != nil {
			t.Fatal(err)
		}
		snap, err := db.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer snap.Close()
		count := func() int {
			var n int
			if err := snap.QueryRowContext(ctx, `SELECT COUNT(*) FROM tenants`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := count(); n != 1 {
			t.Fatalf("snapshot sees %d tenants; want 1", n)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ('t2', 'Twee', 18)`); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != 1 {
			t.Fatalf("snapshot sees %d tenants after a concurrent commit; want still 1", n)
		}
		var got []string
		err = snap.RawRows(ctx, `SELECT id, `+snap.Text("created_at", "c")+` FROM tenants WHERE created_at >= $1 ORDER BY id`, []any{int64(0)}, func(cols [][]byte) error {
			got = append(got, string(cols[0])+"="+string(cols[1]))
			return nil
		})
		if err != nil || fmt.Sprint(got) != "[t1=17]" {
			t.Fatalf("raw rows = %v, %v; want [t1=17]", got, err)
		}
	})
}

// TryLock excludes a second transaction from the same name until the first
// ends, and not from another name. (On SQLite write transactions exclude
// each other already, so it always succeeds there.)
func TestTryLock(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const class int32 = 0x7a6b5454
		if db.Dialect() == store.SQLite {
			err := db.Tx(ctx, func(tx *store.Tx) error {
				got, err := tx.TryLock(ctx, class, "a")
				if err == nil && !got {
					err = errors.New("not got")
				}
				if err == nil {
					err = tx.Lock(ctx, class)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		held, release := make(chan struct{}), make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := db.Tx(ctx, func(tx *store.Tx) error {
				if got, err := tx.TryLock(ctx, class, "a"); err != nil || !got {
					return fmt.Errorf("first TryLock = %v, %v", got, err)
				}
				if err := tx.Lock(ctx, class); err != nil {
					return err
				}
				close(held)
				<-release
				return nil
			})
			if err != nil {
				t.Error(err)
				close(held)
			}
		}()
		<-held
		err := db.Tx(ctx, func(tx *store.Tx) error {
			if got, err := tx.TryLock(ctx, class, "a"); err != nil || got {
				return fmt.Errorf("TryLock of a held name = %v, %v; want false", got, err)
			}
			if got, err := tx.TryLock(ctx, class, "b"); err != nil || !got {
				return fmt.Errorf("TryLock of another name = %v, %v; want true", got, err)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if err := db.Tx(short, func(tx *store.Tx) error { return tx.Lock(short, class) }); err == nil {
			t.Error("Lock of a held class returned while it was held")
		}
		close(release)
		wg.Wait()
		if err := db.Tx(ctx, func(tx *store.Tx) error { return tx.Lock(ctx, class) }); err != nil {
			t.Errorf("Lock after release: %v", err)
		}
	})
}

// A row written by a transaction that a snapshot does not see carries a
// WriterID at or above the snapshot's Horizon, however the writers
// interleave: one in progress when the snapshot began (while a later one
// committed) and committing after it, and one beginning after it.
func TestHorizonBoundsUnseenWriters(t *testing.T) {
	db := storetest.Postgres(t)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE horizon_rows (name TEXT PRIMARY KEY, writer BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	insert := `INSERT INTO horizon_rows (name, writer) VALUES ($1, ` + store.WriterID(db) + `)`
	if _, err := db.ExecContext(ctx, insert, "before"); err != nil {
		t.Fatal(err)
	}
	// A writer in progress across the snapshot's start.
	written, commit, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- db.Tx(ctx, func(tx *store.Tx) error {
			if _, err := tx.ExecContext(ctx, insert, "in flight"); err != nil {
				close(written)
				return err
			}
			close(written)
			<-commit
			return nil
		})
	}()
	<-written
	// And one that began after it and committed before the snapshot: the
	// in-flight writer's id is then below the snapshot's newest.
	if _, err := db.ExecContext(ctx, insert, "beside"); err != nil {
		t.Fatal(err)
	}
	snap, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	h, err := snap.Horizon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var seen int
	if err := snap.QueryRowContext(ctx, `SELECT COUNT(*) FROM horizon_rows`).Scan(&seen); err != nil || seen != 2 {
		t.Fatalf("the snapshot sees %d rows (%v); want the two committed before it", seen, err)
	}
	close(commit)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, insert, "after"); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, `SELECT name, writer FROM horizon_rows`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var w int64
		if err := rows.Scan(&name, &w); err != nil {
			t.Fatal(err)
		}
		if unseen := name == "in flight" || name == "after"; unseen && w < h {
			t.Errorf("row %q: writer %d, horizon %d: unseen %v", name, w, h, unseen)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
