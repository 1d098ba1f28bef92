// Package store owns the database handle: opening SQLite (embedded default)
// or PostgreSQL, running the embedded migrations, and transactions.
//
// All SQL in zorgkluis is written once, in PostgreSQL placeholder style ($1,
// $2, ...), using only what both dialects accept: TEXT, BIGINT, BOOLEAN and
// BYTEA columns, times as BIGINT Unix microseconds (see clock.Micros), no
// auto-increment. The store rebinds placeholders for SQLite; that and the
// connection settings below are the only dialect differences.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// Dialect names the database engine behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// ErrNotFound is returned by helpers when a row does not exist.
var ErrNotFound = errors.New("not found")

// DB is a database handle that rebinds placeholders for its dialect.
type DB struct {
	sql     *sql.DB
	dialect Dialect
	// SQLite allows one writer at a time; serialising write transactions in
	// the process avoids busy-waiting on the file lock. PostgreSQL needs none.
	writeMu *sync.Mutex
}

// Querier is what DB and Tx have in common.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	Dialect() Dialect
}

// Option changes how Open connects.
type Option func(*options)

type options struct{ bulk bool }

// BulkLoad trades the durability of each single commit for speed, keeping
// the database consistent: SQLite syncs the WAL only at checkpoints
// (synchronous=NORMAL) and PostgreSQL commits asynchronously
// (synchronous_commit=off). A crash loses the last commits, never the
// integrity of what remains. Only for loading synthetic data (zorgkluis
// generate); call Flush before reporting the load done. A server never
// opens its database this way: the access log must be durable (LOG-3).
func BulkLoad() Option { return func(o *options) { o.bulk = true } }

// Open connects to url: a postgres:// or postgresql:// URL for PostgreSQL,
// otherwise a SQLite file path (optionally prefixed with sqlite:).
func Open(ctx context.Context, rawURL string, opts ...Option) (*DB, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	synchronous := "FULL"
	if o.bulk {
		synchronous = "NORMAL"
	}
	var db *DB
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		if o.bulk {
			u, err := url.Parse(rawURL)
			if err != nil {
				return nil, errors.New("open postgres: malformed URL") // the URL may hold a password: not repeated
			}
			q := u.Query()
			q.Set("synchronous_commit", "off")
			u.RawQuery = q.Encode()
			rawURL = u.String()
		}
		h, err := sql.Open("pgx", rawURL)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		h.SetMaxOpenConns(32)
		h.SetMaxIdleConns(32)
		db = &DB{sql: h, dialect: Postgres}
	default:
		path := strings.TrimPrefix(rawURL, "sqlite:")
		if path == "" {
			return nil, errors.New("open sqlite: empty path")
		}
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("open sqlite: create directory: %w", err)
			}
		}
		q := url.Values{}
		// WAL lets readers run beside the writer; synchronous(FULL) makes a
		// commit durable on power loss, which the audit log needs (LOG-3).
		for _, p := range []string{"journal_mode(WAL)", "synchronous(" + synchronous + ")", "busy_timeout(10000)", "foreign_keys(1)"} {
			q.Add("_pragma", p)
		}
		if o.bulk {
			// Each checkpoint rewrites the same hot index pages; one every
			// 50,000 pages instead of 1,000 loaded about 45% more patients
			// per second here.
			q.Add("_pragma", "wal_autocheckpoint(50000)")
		}
		q.Set("_txlock", "immediate")
		h, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		h.SetMaxOpenConns(8)
		h.SetMaxIdleConns(8)
		db = &DB{sql: h, dialect: SQLite, writeMu: new(sync.Mutex)}
	}
	if err := db.sql.PingContext(ctx); err != nil {
		db.sql.Close()
		return nil, fmt.Errorf("connect to %s database: %w", db.dialect, err)
	}
	return db, nil
}

// Optimize refreshes SQLite's planner statistics where tables changed much
// since the last time (PRAGMA optimize, bounded by analysis_limit so it
// stays quick on large files). SQLite gathers none by itself; PostgreSQL's
// autovacuum does, so there it does nothing. Run it at start and every few
// hours, as SQLite recommends for long-lived connections.
func (db *DB) Optimize(ctx context.Context) error {
	if db.dialect != SQLite {
		return nil
	}
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

// Flush makes every commit so far durable, for a handle opened with
// BulkLoad: SQLite checkpoints the WAL into the database file and syncs it;
// on PostgreSQL a synchronous commit waits until the WAL up to it, and with
// it every earlier asynchronous commit, is on disk.
func (db *DB) Flush(ctx context.Context) error {
	if db.dialect == SQLite {
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
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	defer tx.Rollback()
	// txid_current gives the transaction an id, so its commit writes a WAL
	// record, and with synchronous_commit on it waits for the flush.
	for _, q := range []string{`SET LOCAL synchronous_commit = on`, `SELECT txid_current()`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// Close closes the handle.
func (db *DB) Close() error { return db.sql.Close() }

// Dialect reports the engine.
func (db *DB) Dialect() Dialect { return db.dialect }

// SQL exposes the underlying handle for tools that need it (goose, tests).
func (db *DB) SQL() *sql.DB { return db.sql }

// Ping checks the connection.
func (db *DB) Ping(ctx context.Context) error { return db.sql.PingContext(ctx) }

func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if db.writeMu != nil && isWrite(query) {
		db.writeMu.Lock()
		defer db.writeMu.Unlock()
	}
	return db.sql.ExecContext(ctx, db.rebind(query), args...)
}

func (db *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.sql.QueryContext(ctx, db.rebind(query), args...)
}

func (db *DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return db.sql.QueryRowContext(ctx, db.rebind(query), args...)
}

// Tx runs fn in a read-write transaction and commits it when fn returns nil.
// On SQLite write transactions are serialised within the process.
func (db *DB) Tx(ctx context.Context, fn func(tx *Tx) error) error {
	if db.writeMu != nil {
		db.writeMu.Lock()
		defer db.writeMu.Unlock()
	}
	t, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(&Tx{tx: t, db: db}); err != nil {
		_ = t.Rollback()
		return err
	}
	if err := t.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Tx is a transaction with placeholder rebinding.
type Tx struct {
	tx *sql.Tx
	db *DB
}

func (t *Tx) Dialect() Dialect { return t.db.dialect }

func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.db.rebind(query), args...)
}

func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.db.rebind(query), args...)
}

func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.db.rebind(query), args...)
}

// rebind turns $1-style placeholders into SQLite's equivalent ?1. Queries in
// zorgkluis never contain a literal '$' followed by a digit.
func (db *DB) rebind(q string) string {
	if db.dialect != SQLite || !strings.Contains(q, "$") {
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

// isWrite reports whether a statement outside a transaction may write. Only
// plain SELECTs are reads; anything else takes the SQLite writer lock.
func isWrite(q string) bool {
	q = strings.TrimSpace(q)
	return len(q) < 6 || !strings.EqualFold(q[:6], "SELECT")
}

func (db *DB) provider() (*goose.Provider, error) {
	d := goose.DialectSQLite3
	opts := []goose.ProviderOption{goose.WithAllowOutofOrder(true), goose.WithDisableGlobalRegistry(true)}
	if db.dialect == Postgres {
		d = goose.DialectPostgres
		// Several replicas may start at once; one migrates, the others wait.
		l, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, fmt.Errorf("migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(l))
	}
	p, err := goose.NewProvider(d, db.sql, mustSub(migrations, "migrations"), opts...)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// Migrate applies every pending embedded migration and returns how many ran.
func (db *DB) Migrate(ctx context.Context) (int, error) {
	if db.writeMu != nil {
		db.writeMu.Lock()
		defer db.writeMu.Unlock()
	}
	p, err := db.provider()
	if err != nil {
		return 0, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return len(res), fmt.Errorf("migrate: %w", err)
	}
	return len(res), nil
}

// MigrationsCurrent reports whether every embedded migration has been applied
// (readiness).
func (db *DB) MigrationsCurrent(ctx context.Context) (bool, error) {
	p, err := db.provider()
	if err != nil {
		return false, err
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return false, fmt.Errorf("migration status: %w", err)
	}
	return !pending, nil
}

// IsPermissionDenied reports whether err is PostgreSQL's
// insufficient_privilege (SQLSTATE 42501), by code because the message
// follows the server's language.
func IsPermissionDenied(err error) bool {
	return err != nil && strings.Contains(err.Error(), "SQLSTATE 42501")
}

// IsUniqueViolation reports whether err is a unique or primary-key
// constraint violation in either dialect.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || // SQLite
		strings.Contains(s, "SQLSTATE 23505") // PostgreSQL
}
