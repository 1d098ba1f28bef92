package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// REQ: LOG-3 — a server's database commits durably (SQLite synchronous=FULL,
// PostgreSQL synchronous_commit on); only a bulk load relaxes that, and its
// Flush makes everything written so far durable.
func TestBulkLoadIsOptInAndFlushes(t *testing.T) {
	ctx := context.Background()
	sqlitePath := filepath.Join(t.TempDir(), "zk.db")
	pgURL := storetest.PostgresURL(t)
	for _, c := range []struct {
		name, url, setting string
		durable, bulk      string
	}{
		{"sqlite", sqlitePath, `PRAGMA synchronous`, "2", "1"}, // 2 = FULL, 1 = NORMAL
		{"postgres", pgURL, `SHOW synchronous_commit`, "on", "off"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, bulk := range []bool{false, true} {
				var opts []store.Option
				want := c.durable
				if bulk {
					opts, want = append(opts, store.BulkLoad()), c.bulk
				}
				db, err := store.Open(ctx, c.url, opts...)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := db.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
				var got string
				if err := db.QueryRowContext(ctx, c.setting).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("bulk=%v: %s = %s, want %s", bulk, c.setting, got, want)
				}
				if err := db.Tx(ctx, func(tx *store.Tx) error {
					_, err := tx.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)`, fmt.Sprintf("t-bulk-%v", bulk), "Bulk", 1)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				if err := db.Flush(ctx); err != nil {
					t.Fatalf("bulk=%v: flush: %v", bulk, err)
				}
				db.Close()
			}
			// What the bulk handle wrote is there for a normal one.
			db, err := store.Open(ctx, c.url)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var n int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM tenants WHERE id LIKE 't-bulk-%'`).Scan(&n); err != nil || n != 2 {
				t.Fatalf("rows after reopening: %d, %v", n, err)
			}
		})
	}
}
