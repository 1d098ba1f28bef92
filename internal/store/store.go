// Package store owns the database handle: opening SQLite (embedded default)
// or PostgreSQL, running the embedded migrations, transactions, read
// snapshots and prepared statements.
//
// All SQL in zorgkluis is written once, in PostgreSQL placeholder style ($1,
// $2, ...), using only what both dialects accept: TEXT, BIGINT, BOOLEAN and
// BYTEA columns, times as BIGINT Unix microseconds (see clock.Micros), no
// auto-increment. Every difference between the engines lives in this
// package, behind the dialect interface, in sqlite.go and postgres.go side
// by side: connection settings, placeholder rebinding, list placeholders,
// error codes, locks, snapshots and statement caching. Callers use what the
// difference is for (InList, Values, BulkInsert, Tx.Lock, Snapshot,
// IsUniqueViolation, ...), never the engine's name.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/pressly/goose/v3"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Dialect names the database engine behind a DB, for log lines and for
// tests that set up engine-specific fixtures. Code paths never branch on
// it: what differs is behind the store's own functions.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// ErrNotFound is returned by helpers when a row does not exist.
var ErrNotFound = errors.New("not found")

// dialect is everything that differs between the engines.
type dialect interface {
	name() Dialect
	// rebind turns the $N placeholders of q into the engine's.
	rebind(q string) string
	// listParam writes the placeholder of parameter n of a generated list.
	listParam(b *strings.Builder, n int)
	// bulkInsert starts a multi-row INSERT whose caller rolls back on error.
	bulkInsert() string
	// textColumn selects col as text for Snapshot.RawRows.
	textColumn(col, alias string) string
	// writerID is an expression for the writing transaction's id;
	// horizon a query for the smallest one a snapshot does not see.
	writerID() string
	horizon() string

	isUnique(err error) bool
	isForeignKey(err error) bool
	isPermission(err error) bool

	// lock and tryLock take a lock held until tx ends.
	lock(ctx context.Context, tx *Tx, class int32) error
	tryLock(ctx context.Context, tx *Tx, class int32, name string) (bool, error)

	snapshotOptions() *sql.TxOptions
	rawRows(ctx context.Context, s *Snapshot, query string, args []any, fn func(cols [][]byte) error) error

	// cachesStatements reports whether the driver itself keeps prepared
	// statements per connection, so the store needs no cache of its own.
	cachesStatements() bool

	// tables reads the catalog: every table and its columns, in creation order.
	tables(ctx context.Context, q Querier) ([]Table, error)

	optimize(ctx context.Context, db *DB) error
	flush(ctx context.Context, db *DB) error
	migrations(ctx context.Context, db *sql.DB) (goose.Dialect, []goose.ProviderOption, error)
}

// DB is a database handle that rebinds placeholders for its dialect.
type DB struct {
	sql *sql.DB
	d   dialect
	// SQLite allows one writer at a time; serialising write transactions in
	// the process avoids busy-waiting on the file lock. PostgreSQL needs none.
	writeMu *sync.Mutex
	stmts   *stmtCache // nil where the driver caches statements itself
	watches watchSet   // tables whose writes caches must hear of (Watch)
	group   grouper    // the writer of GroupTx (SQLite)
}

// Querier is what DB, Tx and Snapshot have in common.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	// Stmt returns query as a prepared statement (see DB.Stmt).
	Stmt(query string) Stmt
	dialect() dialect
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
	var db *DB
	var err error
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		db, err = openPostgres(rawURL, o)
	default:
		db, err = openSQLite(rawURL, o)
	}
	if err != nil {
		return nil, err
	}
	if !db.d.cachesStatements() {
		db.stmts = newStmtCache()
	}
	if err := db.sql.PingContext(ctx); err != nil {
		db.sql.Close()
		return nil, fmt.Errorf("connect to %s database: %w", db.d.name(), err)
	}
	return db, nil
}

// Optimize refreshes SQLite's planner statistics where tables changed much
// since the last time (PRAGMA optimize, bounded by analysis_limit so it
// stays quick on large files). SQLite gathers none by itself; PostgreSQL's
// autovacuum does, so there it does nothing. Run it at start and every few
// minutes (serve: ten): statistics taken while a fresh installation's tables
// were small mislead the planner once they have grown, and a run that finds
// no table grown much does next to nothing.
func (db *DB) Optimize(ctx context.Context) error { return db.d.optimize(ctx, db) }

// Flush makes every commit so far durable, for a handle opened with
// BulkLoad: SQLite checkpoints the WAL into the database file and syncs it;
// on PostgreSQL a synchronous commit waits until the WAL up to it, and with
// it every earlier asynchronous commit, is on disk.
func (db *DB) Flush(ctx context.Context) error { return db.d.flush(ctx, db) }

// Close closes the prepared statements and the handle.
func (db *DB) Close() error {
	db.group.close()
	db.stmts.close()
	return db.sql.Close()
}

// DialectOf reports the engine behind a DB, Tx or Snapshot.
func DialectOf(q Querier) Dialect { return q.dialect().name() }

// Dialect reports the engine, for log lines and test fixtures.
func (db *DB) Dialect() Dialect { return db.d.name() }

func (db *DB) dialect() dialect { return db.d }

// SQL exposes the underlying handle for tools that need it (goose, tests).
func (db *DB) SQL() *sql.DB { return db.sql }

// Ping checks the connection.
func (db *DB) Ping(ctx context.Context) error { return db.sql.PingContext(ctx) }

func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if ws := db.watches.of(query); ws != nil {
		// A watched table's write carries its version bump, so it needs a
		// transaction of its own.
		var res sql.Result
		err := db.Tx(ctx, func(tx *Tx) error {
			var err error
			res, err = tx.ExecContext(ctx, query, args...)
			return err
		})
		return res, err
	}
	if db.writeMu != nil && isWrite(query) {
		db.writeMu.Lock()
		defer db.writeMu.Unlock()
	}
	return db.sql.ExecContext(ctx, db.d.rebind(query), args...)
}

func (db *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.sql.QueryContext(ctx, db.d.rebind(query), args...)
}

func (db *DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return db.sql.QueryRowContext(ctx, db.d.rebind(query), args...)
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
	tx := &Tx{tx: t, db: db}
	defer tx.ended()
	if err := fn(tx); err != nil {
		_ = t.Rollback()
		return err
	}
	if err := tx.bumpTouched(ctx); err != nil {
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
	tx      *sql.Tx
	db      *DB
	touched []*Watch // watches whose tables this transaction wrote
}

func (t *Tx) dialect() dialect { return t.db.d }

func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	t.touch(t.db.watches.of(query))
	return t.tx.ExecContext(ctx, t.db.d.rebind(query), args...)
}

func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.db.d.rebind(query), args...)
}

func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.db.d.rebind(query), args...)
}

// Lock takes the exclusive lock of class until the transaction ends, so
// that transactions of the same class, in any process, run one after the
// other. On SQLite it does nothing: a write transaction already excludes
// every other writer.
func (t *Tx) Lock(ctx context.Context, class int32) error {
	if err := t.db.d.lock(ctx, t, class); err != nil {
		return fmt.Errorf("transaction lock: %w", err)
	}
	return nil
}

// TryLock takes the lock on name within class until the transaction ends,
// without waiting, and reports whether it got it: false means another
// transaction, perhaps in another process, holds it. The lock covers the
// database schema too, so installations in other schemas of one database do
// not exclude each other. On SQLite it always succeeds: a write transaction
// already excludes every other writer.
func (t *Tx) TryLock(ctx context.Context, class int32, name string) (bool, error) {
	got, err := t.db.d.tryLock(ctx, t, class, name)
	if err != nil {
		return false, fmt.Errorf("transaction lock: %w", err)
	}
	return got, nil
}

// isWrite reports whether a statement outside a transaction may write. Only
// plain SELECTs are reads; anything else takes the SQLite writer lock.
func isWrite(q string) bool {
	q = strings.TrimSpace(q)
	return len(q) < 6 || !strings.EqualFold(q[:6], "SELECT")
}

// InList returns the placeholders for a list of values ("$first,
// $first+1, ...", for IN (...)) and the values as arguments. The values
// must be the query's last parameters: on SQLite the placeholders are
// anonymous "?" (numbered after the ones before them), because the driver
// looks every numbered parameter up linearly, which made binding a long
// list quadratic. A query built this way varies with the list's length: run
// it directly, not through Stmt.
func InList[T any](q Querier, vals []T, first int) (string, []any) {
	d := q.dialect()
	var b strings.Builder
	args := make([]any, len(vals))
	for i, v := range vals {
		if i > 0 {
			b.WriteString(", ")
		}
		d.listParam(&b, first+i)
		args[i] = v
	}
	return b.String(), args
}

// Values returns "($1, $2), ($3, $4)" for n rows of k columns, for a
// multi-row INSERT whose only parameters they are (anonymous on SQLite, as
// for InList); each row ends with the expressions in extra, if any.
func Values(q Querier, n, k int, extra ...string) string {
	return ValuesFrom(q, 1, n, k, extra...)
}

// ValuesFrom is Values with the parameters numbered from first, for a
// statement with more than one list (PostgreSQL; SQLite's are anonymous).
func ValuesFrom(q Querier, first, n, k int, extra ...string) string {
	d := q.dialect()
	var b strings.Builder
	p := first
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := range k {
			if j > 0 {
				b.WriteString(", ")
			}
			d.listParam(&b, p)
			p++
		}
		for _, e := range extra {
			b.WriteString(", ")
			b.WriteString(e)
		}
		b.WriteByte(')')
	}
	return b.String()
}

// WriterID returns an SQL expression for the id of the transaction that
// runs the statement, as a BIGINT, for a column that Snapshot.Horizon
// bounds: on PostgreSQL pg_current_xact_id(), which grows with every
// transaction and never wraps. SQLite, one writer at a time in commit
// order, needs none: 0 (its rowids tell the order).
func WriterID(q Querier) string { return q.dialect().writerID() }

// BulkInsert starts a multi-row INSERT ("INSERT INTO" and the engine's
// variant) for a caller that rolls its whole transaction back on any error.
// On SQLite it is INSERT OR FAIL: a conflict then stops the statement
// without undoing its earlier rows, so SQLite needs no statement journal,
// whose writes to a temporary file were a third of an audit append's cost.
func BulkInsert(q Querier) string { return q.dialect().bulkInsert() }

func (db *DB) provider(ctx context.Context) (*goose.Provider, error) {
	d, opts, err := db.d.migrations(ctx, db.sql)
	if err != nil {
		return nil, err
	}
	opts = append(opts, goose.WithAllowOutofOrder(true), goose.WithDisableGlobalRegistry(true))
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
	p, err := db.provider(ctx)
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
	p, err := db.provider(ctx)
	if err != nil {
		return false, err
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return false, fmt.Errorf("migration status: %w", err)
	}
	return !pending, nil
}

// The error tests below match each engine's error code, never its message,
// which follows the server's language and version. A nil error is none.

// IsUniqueViolation reports whether err is a unique or primary-key
// constraint violation (PostgreSQL 23505; SQLite SQLITE_CONSTRAINT_UNIQUE
// or _PRIMARYKEY).
func IsUniqueViolation(err error) bool {
	return err != nil && (sqliteDialect{}.isUnique(err) || postgresDialect{}.isUnique(err))
}

// IsForeignKeyViolation reports whether err is a foreign-key violation
// (PostgreSQL 23503; SQLite SQLITE_CONSTRAINT_FOREIGNKEY).
func IsForeignKeyViolation(err error) bool {
	return err != nil && (sqliteDialect{}.isForeignKey(err) || postgresDialect{}.isForeignKey(err))
}

// IsPermissionDenied reports whether the database refused the statement to
// this connection: PostgreSQL's insufficient_privilege (42501), SQLite's
// read-only database or authorisation errors.
func IsPermissionDenied(err error) bool {
	return err != nil && (sqliteDialect{}.isPermission(err) || postgresDialect{}.isPermission(err))
}
