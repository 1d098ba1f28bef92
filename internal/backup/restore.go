package backup

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"filippo.io/age"

	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Errors of restore that operators act on.
var (
	ErrWrongKey = errors.New("backup: none of the given identities can decrypt this backup (wrong backup key)")
	ErrNotEmpty = errors.New("restore: the target database is not empty")
)

// open decrypts r with ids and reads the stream's header.
func open(r io.Reader, ids []age.Identity) (*decoder, error) {
	if len(ids) == 0 {
		return nil, errors.New("backup: no identity to decrypt with (the backup identity file)")
	}
	plain, err := age.Decrypt(r, ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, ErrWrongKey
		}
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return newDecoder(ageErrors{plain})
}

// ageErrors marks a failure of age's authentication while streaming as
// damage: every chunk is authenticated, so an edited or cut file fails here.
type ageErrors struct{ r io.Reader }

func (a ageErrors) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return n, err
}

// Restore loads the backup in r into db, which must hold no rows: it brings
// the schema to the backup's version, loads every table in one transaction
// (so a damaged backup leaves the database empty), checks the counts
// against the manifest and then applies the newer migrations.
func Restore(ctx context.Context, r io.Reader, ids []age.Identity, db *store.DB, progress Progress) (Manifest, error) {
	d, err := open(r, ids)
	if err != nil {
		return Manifest{}, err
	}
	latest, err := store.LatestMigration()
	if err != nil {
		return Manifest{}, err
	}
	if d.header.Schema > latest {
		return Manifest{}, fmt.Errorf("restore: the backup's schema (%d) is newer than this zorgkluis (%d); restore with the version that made it", d.header.Schema, latest)
	}
	if err := requireEmpty(ctx, db); err != nil {
		return Manifest{}, err
	}
	if err := db.MigrateTo(ctx, d.header.Schema); err != nil {
		return Manifest{}, fmt.Errorf("restore: %w", err)
	}
	tables, err := store.Tables(ctx, db)
	if err != nil {
		return Manifest{}, fmt.Errorf("restore: %w", err)
	}
	var m Manifest
	err = db.Tx(ctx, func(tx *store.Tx) error {
		var l loader
		var total int64
		counts := map[string]int64{}
		for {
			rec, err := d.read()
			if err != nil {
				return err
			}
			switch {
			case rec.table != nil:
				if err := l.flush(ctx, tx); err != nil {
					return err
				}
				if err := l.start(*rec.table, tables); err != nil {
					return err
				}
			case rec.row != nil:
				if l.table == "" {
					return fmt.Errorf("%w: a row outside a table", ErrCorrupt)
				}
				if err := l.add(ctx, tx, rec.row); err != nil {
					return err
				}
				total++
				if progress != nil && l.rows%10000 == 0 {
					progress(l.table, l.rows, total)
				}
			case rec.end != nil:
				if rec.end.End != l.table || rec.end.Rows != l.rows {
					return fmt.Errorf("%w: table %s ends after %d rows, expected %d", ErrCorrupt, l.table, l.rows, rec.end.Rows)
				}
				if err := l.flush(ctx, tx); err != nil {
					return err
				}
				counts[l.table] = l.rows
				if progress != nil {
					progress(l.table, l.rows, total)
				}
				l.table = ""
			case rec.trailer != nil:
				m = *rec.trailer.Manifest
				for t, n := range m.Tables {
					if counts[t] != n {
						return fmt.Errorf("%w: table %s has %d rows, the manifest says %d", ErrCorrupt, t, counts[t], n)
					}
				}
				return nil
			}
		}
	})
	if err != nil {
		return Manifest{}, fmt.Errorf("restore: %w", err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		return m, fmt.Errorf("restore: migrate past the backup's schema: %w", err)
	}
	return m, nil
}

// requireEmpty refuses a database with any row in any of its tables.
func requireEmpty(ctx context.Context, db *store.DB) error {
	tables, err := store.Tables(ctx, db)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	for _, t := range tables {
		var one int
		err := db.QueryRowContext(ctx, "SELECT 1 FROM "+t.Name+" LIMIT 1").Scan(&one)
		if err == nil {
			return fmt.Errorf("%w: table %s has rows; restore into a new, empty database (or use --person for one person)", ErrNotEmpty, t.Name)
		}
		if !errors.Is(err, errNoRows) {
			return fmt.Errorf("restore: %w", err)
		}
	}
	return nil
}

// loader batches rows of one table into multi-row INSERTs.
type loader struct {
	table string
	cols  []column
	names string
	batch [][]any
	rows  int64
}

func (l *loader) start(t tableLine, have []store.Table) error {
	i := slices.IndexFunc(have, func(h store.Table) bool { return h.Name == t.Table })
	if i < 0 {
		return fmt.Errorf("the backup's table %s is not in the database's schema", t.Table)
	}
	if len(have[i].Columns) != len(t.Columns) {
		return fmt.Errorf("table %s: the backup has %d columns, the database %d", t.Table, len(t.Columns), len(have[i].Columns))
	}
	names := make([]string, len(t.Columns))
	for j, c := range t.Columns {
		if !slices.ContainsFunc(have[i].Columns, func(h store.Column) bool { return h.Name == c.Name && h.Type == c.Type }) {
			return fmt.Errorf("table %s: column %s (%s) is not in the database's schema", t.Table, c.Name, c.Type)
		}
		names[j] = c.Name
	}
	l.table, l.cols, l.names, l.rows, l.batch = t.Table, t.Columns, strings.Join(names, ", "), 0, l.batch[:0]
	return nil
}

func (l *loader) add(ctx context.Context, q store.Querier, raw []json.RawMessage) error {
	return l.addValues(ctx, q, raw)
}

func (l *loader) addValues(ctx context.Context, q store.Querier, raw []json.RawMessage) error {
	if len(raw) != len(l.cols) {
		return fmt.Errorf("%w: a row of %s has %d values, expected %d", ErrCorrupt, l.table, len(raw), len(l.cols))
	}
	vals := make([]any, len(raw))
	for i, r := range raw {
		v, err := decodeValue(r, l.cols[i].Type)
		if err != nil {
			return fmt.Errorf("%w: table %s column %s: %v", ErrCorrupt, l.table, l.cols[i].Name, err)
		}
		vals[i] = v
	}
	l.batch = append(l.batch, vals)
	l.rows++
	if len(l.batch) >= max(1, min(500, 30000/len(l.cols))) {
		return l.flush(ctx, q)
	}
	return nil
}

func (l *loader) flush(ctx context.Context, q store.Querier) error {
	if len(l.batch) == 0 {
		return nil
	}
	args := make([]any, 0, len(l.batch)*len(l.cols))
	for _, r := range l.batch {
		args = append(args, r...)
	}
	query := store.BulkInsert(q) + " " + l.table + " (" + l.names + ") VALUES " + store.Values(q, len(l.batch), len(l.cols))
	if _, err := q.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("load %s: %w", l.table, err)
	}
	l.batch = l.batch[:0]
	return nil
}

var errNoRows = sql.ErrNoRows
