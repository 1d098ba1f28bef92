package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/crc64"
	"math"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// postgresDialect is PostgreSQL through pgx's database/sql driver.
type postgresDialect struct{}

var _ dialect = postgresDialect{}

func openPostgres(rawURL string, o options) (*DB, error) {
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
	return &DB{sql: h, d: postgresDialect{}}, nil
}

func (postgresDialect) name() Dialect { return Postgres }

func (postgresDialect) rebind(q string) string { return q }

func (postgresDialect) listParam(b *strings.Builder, n int) { fmt.Fprintf(b, "$%d", n) }

func (postgresDialect) bulkInsert() string { return "INSERT INTO" }

func (postgresDialect) writerID() string { return "pg_current_xact_id()::text::bigint" }
func (postgresDialect) horizon() string {
	return "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
}

// textColumn casts: pgx's raw values are the binary wire format otherwise.
// The alias keeps ORDER BY meaning the column, not the cast.
func (postgresDialect) textColumn(col, alias string) string {
	return "CAST(" + col + " AS TEXT) AS " + alias
}

func pgCode(err error) string {
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return ""
	}
	return e.Code
}

func (postgresDialect) isUnique(err error) bool     { return pgCode(err) == "23505" }
func (postgresDialect) isForeignKey(err error) bool { return pgCode(err) == "23503" }
func (postgresDialect) isPermission(err error) bool { return pgCode(err) == "42501" }

// lock is an advisory lock on (class, 0), released at commit or rollback.
func (postgresDialect) lock(ctx context.Context, tx *Tx, class int32) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, class)
	return err
}

// tryLock's key is (class, a hash of schema and name): advisory locks are
// per database, so the key covers the schema, and installations (or tests)
// in other schemas of the same database do not skip each other's names.
func (postgresDialect) tryLock(ctx context.Context, tx *Tx, class int32, name string) (bool, error) {
	var got bool
	err := tx.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock($1, ('x' || substr(md5(current_schema() || '/' || $2), 1, 8))::bit(32)::int)`,
		class, name).Scan(&got)
	return got, err
}

// snapshotOptions: REPEATABLE READ sees one state for the whole
// transaction, not one per statement.
func (postgresDialect) snapshotOptions() *sql.TxOptions {
	return &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead}
}

// rawRows reads through pgx directly, on the snapshot's own connection and
// so in its transaction: database/sql's conversion of every value was most
// of the cost of reading a large log.
func (postgresDialect) rawRows(ctx context.Context, s *Snapshot, query string, args []any, fn func(cols [][]byte) error) error {
	return s.conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("raw rows: driver connection is %T", dc)
		}
		rows, err := c.Conn().Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := fn(rows.RawValues()); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// cachesStatements is true: pgx's stdlib prepares each query once per
// connection and keeps it (QueryExecModeCacheStatement), so a second cache
// in the store would only prepare everything twice.
func (postgresDialect) cachesStatements() bool { return true }

// optimize does nothing: autovacuum keeps the planner statistics.
func (postgresDialect) optimize(context.Context, *DB) error { return nil }

func (postgresDialect) flush(ctx context.Context, db *DB) error {
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

// migrations: several replicas may start at once; one migrates, the others
// wait. goose's default lock id is one per database and retried every 5 s,
// so installations (and parallel tests) in other schemas of the same
// database waited on each other's migrations in 5 s steps; the id here
// covers the schema, and a waiting replica looks again every second.
func (postgresDialect) migrations(ctx context.Context, db *sql.DB) (goose.Dialect, []goose.ProviderOption, error) {
	var schema string
	if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return "", nil, fmt.Errorf("migration lock: %w", err)
	}
	id := int64(crc64.Checksum([]byte("zorgkluis migrations/"+schema), crc64.MakeTable(crc64.ECMA)) & math.MaxInt64)
	l, err := lock.NewPostgresSessionLocker(lock.WithLockID(id), lock.WithLockTimeout(1, 300))
	if err != nil {
		return "", nil, fmt.Errorf("migration lock: %w", err)
	}
	return goose.DialectPostgres, []goose.ProviderOption{goose.WithSessionLocker(l)}, nil
}
