package audit

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/zorgkluis/zorgkluis/internal/store"
)

// snapshot is a read-only transaction that sees one consistent state of the
// database (REPEATABLE READ on PostgreSQL, a deferred transaction on
// SQLite), so Verify and exports are not confused by concurrent appends and
// sequencing. It implements store.Querier.
type snapshot struct {
	tx      *sql.Tx
	dialect store.Dialect
}

func beginSnapshot(ctx context.Context, db *store.DB) (*snapshot, error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.Dialect() == store.Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := db.SQL().BeginTx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("begin read snapshot: %w", err)
	}
	return &snapshot{tx: tx, dialect: db.Dialect()}, nil
}

func (s *snapshot) Close() error { return s.tx.Rollback() }

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
