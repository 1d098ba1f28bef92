package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteDialect is the embedded default engine (modernc.org/sqlite).
type sqliteDialect struct{}

var _ dialect = sqliteDialect{}

func openSQLite(rawURL string, o options) (*DB, error) {
	path := strings.TrimPrefix(rawURL, "sqlite:")
	if path == "" {
		return nil, errors.New("open sqlite: empty path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open sqlite: create directory: %w", err)
		}
	}
	synchronous := "FULL"
	if o.bulk {
		synchronous = "NORMAL"
	}
	q := url.Values{}
	// WAL lets readers run beside the writer; synchronous(FULL) makes a
	// commit durable on power loss, which the audit log needs (LOG-3).
	for _, p := range []string{"journal_mode(WAL)", "synchronous(" + synchronous + ")", "busy_timeout(10000)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	// Each checkpoint rewrites the same hot index pages, in the commit
	// that crosses the bound while its requests wait. One every 50,000
	// pages instead of 1,000 loaded about 45% more patients per second
	// here; serving, one every 10,000 pages (a WAL of up to 40 MB) took
	// 5-10 % off a read's and a create's CPU (docs/performance.md).
	checkpoint := "wal_autocheckpoint(10000)"
	if o.bulk {
		checkpoint = "wal_autocheckpoint(50000)"
	}
	q.Add("_pragma", checkpoint)
	q.Set("_txlock", "immediate")
	h, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	h.SetMaxOpenConns(8)
	h.SetMaxIdleConns(8)
	return &DB{sql: h, d: sqliteDialect{}, writeMu: new(sync.Mutex)}, nil
}

func (sqliteDialect) name() Dialect { return SQLite }

// rebind turns $1-style placeholders into SQLite's equivalent ?1. Queries in
// zorgkluis never contain a literal '$' followed by a digit.
func (sqliteDialect) rebind(q string) string {
	if !strings.Contains(q, "$") {
		return q
	}
	b := []byte(q)
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '$' && b[i+1] >= '0' && b[i+1] <= '9' {
			b[i] = '?'
		}
	}
	return string(b)
}

// listParam is anonymous: the driver looks up the name of every numbered
// parameter with a linear search, which made binding a long list quadratic
// in its length. An anonymous ? after ?N is number N+1, so lists must come
// last.
func (sqliteDialect) listParam(b *strings.Builder, _ int) { b.WriteByte('?') }

func (sqliteDialect) bulkInsert() string { return "INSERT OR FAIL INTO" }

func (sqliteDialect) writerID() string { return "0" }
func (sqliteDialect) horizon() string  { return "SELECT 0" }

// textColumn needs no cast: SQLite's integers arrive through database/sql
// as decimal text already, without a string per value.
func (sqliteDialect) textColumn(col, _ string) string { return col }

func sqliteCode(err error) (int, bool) {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return 0, false
	}
	return e.Code(), true
}

// The driver switches extended result codes on, so constraint errors carry
// which constraint failed.
func (sqliteDialect) isUnique(err error) bool {
	c, ok := sqliteCode(err)
	return ok && (c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

func (sqliteDialect) isForeignKey(err error) bool {
	c, ok := sqliteCode(err)
	return ok && c == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// isPermission is SQLite's nearest to a refused privilege: a database (or
// connection, PRAGMA query_only) that may not be written, and a statement an
// authoriser refused. The primary code is the low byte of the extended one.
func (sqliteDialect) isPermission(err error) bool {
	c, ok := sqliteCode(err)
	if !ok {
		return false
	}
	switch c & 0xff {
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_AUTH, sqlite3.SQLITE_PERM:
		return true
	}
	return false
}

func (sqliteDialect) lock(context.Context, *Tx, int32) error { return nil }

func (sqliteDialect) tryLock(context.Context, *Tx, int32, string) (bool, error) { return true, nil }

// snapshotOptions: a deferred read transaction sees the database as of its
// first read, until it ends.
func (sqliteDialect) snapshotOptions() *sql.TxOptions { return &sql.TxOptions{ReadOnly: true} }

func (sqliteDialect) rawRows(ctx context.Context, s *Snapshot, query string, args []any, fn func(cols [][]byte) error) error {
	rows, err := s.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	raw := make([]sql.RawBytes, len(cols))
	dest := make([]any, len(cols))
	vals := make([][]byte, len(cols))
	for i := range raw {
		dest[i] = &raw[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		for i := range raw {
			vals[i] = raw[i]
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	return rows.Err()
}

// cachesStatements is false: parsing a statement was about a quarter of an
// authorised read's CPU on SQLite, so the store keeps prepared ones.
func (sqliteDialect) cachesStatements() bool { return false }

func (sqliteDialect) optimize(ctx context.Context, db *DB) error {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return fmt.Errorf("optimize: %w", err)
	}
	defer conn.Close()
	for _, q := range []string{`PRAGMA analysis_limit = 1000`, `PRAGMA optimize = 0x10002`} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("optimize: %s: %w", q, err)
		}
	}
	return nil
}

func (sqliteDialect) flush(ctx context.Context, db *DB) error {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	var busy, logged, done int
	if err := db.sql.QueryRowContext(ctx, `PRAGMA wal_checkpoint(FULL)`).Scan(&busy, &logged, &done); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if busy != 0 {
		return errors.New("flush: checkpoint blocked by a reader")
	}
	return nil
}

func (sqliteDialect) migrations(context.Context, *sql.DB) (goose.Dialect, []goose.ProviderOption, error) {
	return goose.DialectSQLite3, nil, nil
}
