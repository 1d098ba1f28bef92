// Package backup makes and restores encrypted, checksummed backups of a
// whole installation (DP-5): a consistent snapshot of every table of the
// project, exported while the server runs, encrypted with age to the backup
// recipients, kept in a Store with a manifest; restore of everything into
// an empty database or of one person into the live one; the automatic
// restore test of each backup; and retention with thinning.
//
// Restore is the one place outside the owners that writes their tables:
// it puts back rows exactly as they were exported, table by table from the
// catalog, without knowing what they mean.
package backup

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Suffix ends every backup's name; its manifest is NAME + ManifestSuffix.
const (
	Suffix         = ".zkb"
	ManifestSuffix = ".json"
)

// Manifest describes one backup. The copy inside the encrypted stream is
// authoritative; the one beside it (NAME.json, unencrypted: ids, counts and
// hashes, no health data) adds the encrypted file's size and checksum, for
// listing and retention without the key.
type Manifest struct {
	Name       string           `json:"name"`
	Created    time.Time        `json:"created"`
	Engine     string           `json:"engine"`
	Schema     int64            `json:"schema"`
	Tables     map[string]int64 `json:"tables"`
	Trees      []TreeHead       `json:"trees"`              // the newest signed checkpoint of each audit tree
	Shredded   []Person         `json:"shredded,omitempty"` // patients whose key was shredded by then
	Recipients []string         `json:"recipients"`
	Plaintext  int64            `json:"plaintext_bytes"`
	Bytes      int64            `json:"bytes,omitempty"`  // the encrypted file (outer manifest only)
	SHA256     string           `json:"sha256,omitempty"` // of the encrypted file (outer manifest only)
	Took       string           `json:"took,omitempty"`
}

// TreeHead is an audit tree's newest signed checkpoint in the backup.
type TreeHead struct {
	TenantID string    `json:"tenant_id"`
	Size     int64     `json:"size"`
	Root     string    `json:"root"` // base64
	Time     time.Time `json:"time"`
}

// Person names a patient record.
type Person struct {
	TenantID  string `json:"tenant_id"`
	PatientID string `json:"patient_id"`
}

// Rows reports the number of rows in the backup.
func (m Manifest) Rows() int64 {
	var n int64
	for _, c := range m.Tables {
		n += c
	}
	return n
}

// Progress is told how far an export or restore is: the table and the rows
// done in it, and all rows done so far.
type Progress func(table string, rows, total int64)

// Create exports db's snapshot to st as a new backup, encrypted to k's
// recipients, and returns its manifest.
func Create(ctx context.Context, db *store.DB, st Store, k Keys, c clock.Clock, progress Progress) (Manifest, error) {
	if len(k.Recipients) == 0 {
		return Manifest{}, errors.New("backup: no recipients to encrypt to")
	}
	start := time.Now()
	now := c.Now().UTC()
	m := Manifest{Name: "zorgkluis-" + now.Format("20060102T150405.000Z") + Suffix, Created: now,
		Engine: string(db.Dialect()), Tables: map[string]int64{}, Recipients: k.Public}

	snap, err := db.Snapshot(ctx)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	defer snap.Close()
	if m.Schema, err = store.SchemaVersion(ctx, snap); err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	tables, err := store.Tables(ctx, snap)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}

	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(export(ctx, snap, tables, &m, pw, k, progress))
	}()
	sum := sha256.New()
	n, err := st.Put(ctx, m.Name, io.TeeReader(pr, sum))
	pr.CloseWithError(errors.New("backup: store stopped reading"))
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	m.Bytes, m.SHA256, m.Took = n, hex.EncodeToString(sum.Sum(nil)), time.Since(start).Round(time.Millisecond).String()
	b, _ := json.MarshalIndent(m, "", "  ")
	if _, err := st.Put(ctx, m.Name+ManifestSuffix, strings.NewReader(string(b)+"\n")); err != nil {
		_ = st.Remove(ctx, m.Name)
		return Manifest{}, fmt.Errorf("backup: manifest: %w", err)
	}
	return m, nil
}

// export writes the encrypted stream of every table to w.
func export(ctx context.Context, snap *store.Snapshot, tables []store.Table, m *Manifest, w io.Writer, k Keys, progress Progress) error {
	aw, err := age.Encrypt(w, k.Recipients...)
	if err != nil {
		return err
	}
	enc := newEncoder(aw)
	if err := enc.json(header{Format: formatName, Version: formatVersion, Created: m.Created.Format(time.RFC3339Nano),
		Engine: m.Engine, Schema: m.Schema}); err != nil {
		return err
	}
	var total int64
	for _, t := range tables {
		n, err := exportTable(ctx, snap, t, enc, m, func(rows int64) {
			if progress != nil {
				progress(t.Name, rows, total+rows)
			}
		})
		if err != nil {
			return fmt.Errorf("table %s: %w", t.Name, err)
		}
		total += n
		m.Tables[t.Name] = n
	}
	slices.SortFunc(m.Trees, func(a, b TreeHead) int { return strings.Compare(a.TenantID, b.TenantID) })
	m.Plaintext = enc.n
	inner := *m
	if err := enc.finish(&inner); err != nil {
		return err
	}
	return aw.Close()
}

func exportTable(ctx context.Context, snap *store.Snapshot, t store.Table, enc *encoder, m *Manifest, progress func(int64)) (int64, error) {
	cols := make([]column, len(t.Columns))
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		switch c.Type {
		case "text", "bigint", "boolean", "bytea":
		default:
			return 0, fmt.Errorf("column %s has type %s, which backups do not carry", c.Name, c.Type)
		}
		cols[i], names[i] = column{Name: c.Name, Type: c.Type}, c.Name
	}
	if err := enc.json(tableLine{Table: t.Name, Columns: cols}); err != nil {
		return 0, err
	}
	rows, err := snap.QueryContext(ctx, "SELECT "+strings.Join(names, ", ")+" FROM "+t.Name)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	dest := scanTargets(t.Columns)
	vals := make([]any, len(dest))
	watch := watcherFor(t, m)
	var n int64
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return n, err
		}
		for i, d := range dest {
			vals[i] = scanned(d)
		}
		if watch != nil {
			watch(vals)
		}
		if err := enc.row(vals); err != nil {
			return n, err
		}
		n++
		if n%10000 == 0 {
			progress(n)
		}
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	progress(n)
	return n, enc.json(endLine{End: t.Name, Rows: n})
}

func scanTargets(cols []store.Column) []any {
	dest := make([]any, len(cols))
	for i, c := range cols {
		switch c.Type {
		case "text":
			dest[i] = new(sql.NullString)
		case "bigint":
			dest[i] = new(sql.NullInt64)
		case "boolean":
			dest[i] = new(sql.NullBool)
		default:
			dest[i] = new(sql.Null[[]byte])
		}
	}
	return dest
}

func scanned(d any) any {
	switch d := d.(type) {
	case *sql.NullString:
		if d.Valid {
			return d.String
		}
	case *sql.NullInt64:
		if d.Valid {
			return d.Int64
		}
	case *sql.NullBool:
		if d.Valid {
			return d.Bool
		}
	case *sql.Null[[]byte]:
		if d.Valid {
			if d.V == nil {
				return []byte{}
			}
			return d.V
		}
	}
	return nil
}

// watcherFor notes, while a table streams past, what the manifest tells of
// it: the newest checkpoint of every audit tree, the shredded patients.
func watcherFor(t store.Table, m *Manifest) func(vals []any) {
	idx := func(name string) int {
		return slices.IndexFunc(t.Columns, func(c store.Column) bool { return c.Name == name })
	}
	switch t.Name {
	case "audit_checkpoints":
		tenant, size, root, at := idx("tenant_id"), idx("size"), idx("root"), idx("time")
		if min(tenant, size, root, at) < 0 {
			return nil
		}
		return func(v []any) {
			h := TreeHead{TenantID: asString(v[tenant]), Size: asInt(v[size]), Time: clock.FromMicros(asInt(v[at]))}
			if b, ok := v[root].([]byte); ok {
				h.Root = base64.StdEncoding.EncodeToString(b)
			}
			for i := range m.Trees {
				if m.Trees[i].TenantID == h.TenantID {
					if h.Size > m.Trees[i].Size {
						m.Trees[i] = h
					}
					return
				}
			}
			m.Trees = append(m.Trees, h)
		}
	case "patient_deks":
		tenant, patient, shredded := idx("tenant_id"), idx("patient_id"), idx("shredded_at")
		if min(tenant, patient, shredded) < 0 {
			return nil
		}
		return func(v []any) {
			if v[shredded] != nil {
				m.Shredded = append(m.Shredded, Person{TenantID: asString(v[tenant]), PatientID: asString(v[patient])})
			}
		}
	}
	return nil
}

func asString(v any) string { s, _ := v.(string); return s }
func asInt(v any) int64     { n, _ := v.(int64); return n }

// List returns the manifests of the backups in st (from the files beside
// them), oldest first. A backup without its manifest is incomplete and
// left out.
func List(ctx context.Context, st Store) ([]Manifest, error) {
	names, err := st.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []Manifest
	for _, n := range names {
		if !strings.HasSuffix(n, Suffix) || !slices.Contains(names, n+ManifestSuffix) {
			continue
		}
		m, err := ReadManifest(ctx, st, n)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Manifest) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// ReadManifest reads the manifest beside backup name.
func ReadManifest(ctx context.Context, st Store, name string) (Manifest, error) {
	r, err := st.Open(ctx, name+ManifestSuffix)
	if err != nil {
		return Manifest{}, err
	}
	defer r.Close()
	var m Manifest
	if err := json.NewDecoder(io.LimitReader(r, 64<<20)).Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("manifest of %s: %w", name, err)
	}
	return m, nil
}
