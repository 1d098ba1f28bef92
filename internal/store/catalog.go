package store

import (
	"context"
	"fmt"
	"strings"
)

// Column is a column of a table as the catalog has it, with its type as one
// of the four zorgkluis uses on both engines: text, bigint, boolean, bytea.
type Column struct{ Name, Type string }

// Table is one of the installation's tables with its columns in order.
type Table struct {
	Name    string
	Columns []Column
}

// migrationTable is goose's own bookkeeping; the catalog leaves it out
// (SchemaVersion reports what it holds).
const migrationTable = "goose_db_version"

// Tables lists the installation's own tables (in the handle's schema on
// PostgreSQL) in the order they were created, so a table comes after every
// table its foreign keys name: the order to load them back in. Read it in a
// Snapshot to see the tables of that snapshot.
func Tables(ctx context.Context, q Querier) ([]Table, error) {
	ts, err := q.dialect().tables(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	out := ts[:0]
	for _, t := range ts {
		if t.Name == migrationTable {
			continue
		}
		for i, c := range t.Columns {
			t.Columns[i].Type = normalType(c.Type)
		}
		out = append(out, t)
	}
	return out, nil
}

// normalType maps a catalog type name to text, bigint, boolean or bytea
// (anything else is returned lower-cased, for the caller to refuse).
func normalType(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	switch t {
	case "text", "character varying":
		return "text"
	case "bigint", "integer", "int8":
		return "bigint"
	case "boolean", "bool":
		return "boolean"
	case "bytea", "blob":
		return "bytea"
	}
	return t
}

// SchemaVersion is the newest migration applied (0 for an empty database).
func SchemaVersion(ctx context.Context, q Querier) (int64, error) {
	ts, err := q.dialect().tables(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("read the catalog: %w", err)
	}
	found := false
	for _, t := range ts {
		found = found || t.Name == migrationTable
	}
	if !found {
		return 0, nil
	}
	var v int64
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version_id), 0) FROM `+migrationTable).Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}

// LatestMigration is the newest migration this binary carries.
func LatestMigration() (int64, error) {
	entries, err := migrations.ReadDir("migrations")
	if err != nil {
		return 0, err
	}
	var v int64
	for _, e := range entries {
		var n int64
		if _, err := fmt.Sscanf(e.Name(), "%d_", &n); err == nil && n > v {
			v = n
		}
	}
	return v, nil
}

// MigrateTo brings the schema to version exactly, applying migrations up to
// it or undoing those after it; restore loads a backup into the schema it
// was taken from and then migrates the rest of the way.
func (db *DB) MigrateTo(ctx context.Context, version int64) error {
	if db.writeMu != nil {
		db.writeMu.Lock()
		defer db.writeMu.Unlock()
	}
	p, err := db.provider(ctx)
	if err != nil {
		return err
	}
	cur, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("migrate to %d: %w", version, err)
	}
	switch {
	case cur < version:
		_, err = p.UpTo(ctx, version)
	case cur > version:
		_, err = p.DownTo(ctx, version)
	}
	if err != nil {
		return fmt.Errorf("migrate to %d: %w", version, err)
	}
	return nil
}

func (sqliteDialect) tables(ctx context.Context, q Querier) ([]Table, error) {
	// rowid order is creation order; a rebuilt table is created after the
	// tables it names.
	rows, err := q.QueryContext(ctx, `SELECT m.name, p.name, p.type FROM sqlite_master m, pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.rowid, p.cid`)
	if err != nil {
		return nil, err
	}
	return scanCatalog(rows)
}

func (postgresDialect) tables(ctx context.Context, q Querier) ([]Table, error) {
	rows, err := q.QueryContext(ctx, `SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
		WHERE n.nspname = current_schema() AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY c.oid, a.attnum`)
	if err != nil {
		return nil, err
	}
	return scanCatalog(rows)
}

func scanCatalog(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}) ([]Table, error) {
	defer rows.Close()
	var out []Table
	for rows.Next() {
		var table, col, typ string
		if err := rows.Scan(&table, &col, &typ); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Name != table {
			out = append(out, Table{Name: table})
		}
		t := &out[len(out)-1]
		t.Columns = append(t.Columns, Column{Name: col, Type: typ})
	}
	return out, rows.Err()
}
