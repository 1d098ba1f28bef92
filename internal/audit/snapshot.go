package audit

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/zorgkluis/zorgkluis/internal/store"
)

// snapshot is a read-only transaction that sees one consistent state of the
// database (REPEATABLE READ on PostgreSQL, a deferred transaction on
// SQLite), so Verify and exports are not confused by concurrent appends and
// sequencing. It implements store.Querier.
type snapshot struct {
	conn    *sql.Conn // the connection of tx, for rawRows
	tx      *sql.Tx
	dialect store.Dialect
}

func beginSnapshot(ctx context.Context, db *store.DB) (*snapshot, error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.Dialect() == store.Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	conn, err := db.SQL().Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin read snapshot: %w", err)
	}
	tx, err := conn.BeginTx(ctx, opts)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("begin read snapshot: %w", err)
	}
	return &snapshot{conn: conn, tx: tx, dialect: db.Dialect()}, nil
}

func (s *snapshot) Close() error {
	err := s.tx.Rollback()
	if cerr := s.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

// rawRows runs query in the snapshot and calls fn with each row's columns
// as bytes, valid only during the call. Every column must be text (cast in
// the query). On PostgreSQL it reads through pgx directly, on the
// snapshot's own connection and so in its transaction: database/sql's
// conversion of every value was most of the cost of reading a large log.
func (s *snapshot) rawRows(ctx context.Context, query string, args []any, fn func(cols [][]byte) error) error {
	if s.dialect == store.Postgres {
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

func (s *snapshot) Dialect() store.Dialect { return s.dialect }

func (s *snapshot) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.tx.ExecContext(ctx, s.rebind(query), args...)
}

func (s *snapshot) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.tx.QueryContext(ctx, s.rebind(query), args...)
}

func (s *snapshot) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return s.tx.QueryRowContext(ctx, s.rebind(query), args...)
}

// rebind does what store does for its own handles: $N becomes ?N on SQLite.
func (s *snapshot) rebind(q string) string {
	if s.dialect != store.SQLite || !strings.Contains(q, "$") {
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
