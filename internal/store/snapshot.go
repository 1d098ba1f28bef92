package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Snapshot is a read-only transaction that sees one consistent state of the
// database (REPEATABLE READ on PostgreSQL, a deferred transaction on
// SQLite), so a long read such as verifying or exporting the access log is
// not confused by concurrent writes. It is a Querier; Close ends it.
type Snapshot struct {
	db   *DB
	conn *sql.Conn // the connection of tx, for RawRows
	tx   *sql.Tx
}

// Snapshot begins a read snapshot.
func (db *DB) Snapshot(ctx context.Context) (*Snapshot, error) {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin read snapshot: %w", err)
	}
	tx, err := conn.BeginTx(ctx, db.d.snapshotOptions())
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("begin read snapshot: %w", err)
	}
	return &Snapshot{db: db, conn: conn, tx: tx}, nil
}

// Horizon returns, on PostgreSQL, the smallest transaction id the snapshot
// does not see: every transaction below it had ended when the snapshot was
// taken, so a row a later snapshot sees and this one does not was written
// by a transaction at or above it, and carries a WriterID at or above it.
// On SQLite it is 0.
func (s *Snapshot) Horizon(ctx context.Context) (int64, error) {
	var h int64
	if err := s.tx.QueryRowContext(ctx, s.db.d.horizon()).Scan(&h); err != nil {
		return 0, fmt.Errorf("snapshot horizon: %w", err)
	}
	return h, nil
}

// Close ends the snapshot and returns its connection.
func (s *Snapshot) Close() error {
	err := s.tx.Rollback()
	if cerr := s.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

// RawRows runs query in the snapshot and calls fn with each row's columns
// as bytes, valid only during the call: the fastest way to read many rows.
// Every column must be text; select non-text columns through Text.
func (s *Snapshot) RawRows(ctx context.Context, query string, args []any, fn func(cols [][]byte) error) error {
	return s.db.d.rawRows(ctx, s, query, args, fn)
}

// Text selects col (named alias) as text for RawRows.
func (s *Snapshot) Text(col, alias string) string { return s.db.d.textColumn(col, alias) }

func (s *Snapshot) dialect() dialect { return s.db.d }

func (s *Snapshot) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.tx.ExecContext(ctx, s.db.d.rebind(query), args...)
}

func (s *Snapshot) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.tx.QueryContext(ctx, s.db.d.rebind(query), args...)
}

func (s *Snapshot) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return s.tx.QueryRowContext(ctx, s.db.d.rebind(query), args...)
}
