package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"filippo.io/age"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Errors of a restore of one person.
var (
	ErrShredded    = errors.New("restore: the patient's key was shredded; a shredded record is never restored")
	ErrNotInBackup = errors.New("restore: the patient is not in this backup")
)

// personTable is a table holding rows of one patient: the column naming
// the patient, the tenant's column (when it has one), and the columns that
// name a row elsewhere that must still exist for the row to come back (an
// account since removed leaves its link out).
type personTable struct {
	name, patient, tenant string
	refs                  [][2]string // column, table whose id it names
}

// personTables are a person's rows, in load order (a row after the rows it
// names). Their audit events are not among them: the log is never
// rewritten.
var personTables = []personTable{
	{name: "patients", patient: "id", tenant: "tenant_id"},
	{name: "patient_deks", patient: "patient_id", tenant: "tenant_id"},
	{name: "resources", patient: "patient_id", tenant: "tenant_id"},
	{name: "record_patient_names", patient: "patient_id", tenant: "tenant_id"},
	{name: "person_patients", patient: "patient_id", refs: [][2]string{{"account_id", "accounts"}}},
	{name: "care_relationships", patient: "patient_id", tenant: "tenant_id", refs: [][2]string{{"professional_id", "accounts"}}},
	{name: "access_team_patients", patient: "patient_id", refs: [][2]string{{"team_id", "access_teams"}}},
	{name: "access_delegations", patient: "patient_id", tenant: "tenant_id", refs: [][2]string{{"from_id", "accounts"}, {"to_id", "accounts"}}},
	{name: "access_representations", patient: "patient_id", tenant: "tenant_id", refs: [][2]string{{"representative_id", "accounts"}}},
	{name: "access_emergencies", patient: "patient_id", tenant: "tenant_id", refs: [][2]string{{"professional_id", "accounts"}}},
}

// PersonReport is what a restore of one person did.
type PersonReport struct {
	Backup   string           `json:"backup"`
	Person   Person           `json:"person"`
	Restored map[string]int64 `json:"restored"` // rows put back, by table
	Replaced map[string]int64 `json:"replaced"` // live rows of the person replaced, by table
	Skipped  int64            `json:"skipped"`  // links to accounts or teams that no longer exist
	EventID  string           `json:"event_id"` // the restore's own audit event
}

// RestorePerson puts one person's record back from the backup in r into
// the live db: the patient row, their key, every resource version, their sealed name, their
// links, relationships, representations and emergency accesses, as in the
// backup; the person's live rows of those tables are replaced, nobody
// else's rows are touched, and the audit log only gains the restore's own
// event (ev, filled in here), appended in the same transaction. A patient
// whose key is shredded, live or in the backup, stays shredded.
func RestorePerson(ctx context.Context, r io.Reader, ids []age.Identity, db *store.DB, log *audit.Log, p Person, ev audit.Event) (PersonReport, error) {
	d, err := open(r, ids)
	if err != nil {
		return PersonReport{}, err
	}
	rows, m, err := personRows(d, p)
	if err != nil {
		return PersonReport{}, err
	}
	rep := PersonReport{Backup: m.Name, Person: p, Restored: map[string]int64{}, Replaced: map[string]int64{}}
	if len(rows["patients"]) == 0 {
		return rep, ErrNotInBackup
	}
	if slices.Contains(m.Shredded, p) {
		return rep, ErrShredded
	}
	live, err := store.Tables(ctx, db)
	if err != nil {
		return rep, err
	}
	err = db.Tx(ctx, func(tx *store.Tx) error {
		var shredded *int64
		err := tx.QueryRowContext(ctx, `SELECT shredded_at FROM patient_deks WHERE tenant_id = $1 AND patient_id = $2`, p.TenantID, p.PatientID).Scan(&shredded)
		if err != nil && !errors.Is(err, errNoRows) {
			return err
		}
		if shredded != nil {
			return ErrShredded
		}
		for i := len(personTables) - 1; i >= 0; i-- {
			t := personTables[i]
			q, args := "DELETE FROM "+t.name+" WHERE "+t.patient+" = $1", []any{p.PatientID}
			if t.tenant != "" {
				q, args = q+" AND "+t.tenant+" = $2", append(args, p.TenantID)
			}
			res, err := tx.ExecContext(ctx, q, args...)
			if err != nil {
				return fmt.Errorf("clear %s: %w", t.name, err)
			}
			n, _ := res.RowsAffected()
			if n > 0 {
				rep.Replaced[t.name] = n
			}
		}
		for _, t := range personTables {
			lt := slices.IndexFunc(live, func(x store.Table) bool { return x.Name == t.name })
			bt := rows[t.name+"/cols"]
			if lt < 0 || len(rows[t.name]) == 0 {
				continue
			}
			var l loader
			if err := l.start(tableLine{Table: t.name, Columns: colsOf(bt)}, live); err != nil {
				return err
			}
		row:
			for _, raw := range rows[t.name] {
				for _, ref := range t.refs {
					j := slices.IndexFunc(l.cols, func(c column) bool { return c.Name == ref[0] })
					v, err := decodeValue(raw[j], "text")
					if err != nil {
						return err
					}
					var one int
					err = tx.QueryRowContext(ctx, "SELECT 1 FROM "+ref[1]+" WHERE id = $1", v).Scan(&one)
					if errors.Is(err, errNoRows) {
						rep.Skipped++
						continue row
					}
					if err != nil {
						return err
					}
				}
				if err := l.addValues(ctx, tx, raw); err != nil {
					return err
				}
			}
			if err := l.flush(ctx, tx); err != nil {
				if store.IsUniqueViolation(err) {
					return fmt.Errorf("%w (a record created since the backup holds the same identifier, e.g. the BSN)", err)
				}
				if store.IsForeignKeyViolation(err) {
					return fmt.Errorf("%w (what the record names, e.g. its tenant or tenant key version, is gone)", err)
				}
				return err
			}
			rep.Restored[t.name] = l.rows
		}
		ev.TenantID, ev.PatientID = p.TenantID, p.PatientID
		ev.Action, ev.Outcome = audit.ActionUpdate, audit.OutcomeSuccess
		ev.Basis = "restore-from-backup"
		ev.Query = "restore of the person from backup " + m.Name
		got, err := log.AppendIn(ctx, tx, ev)
		if err != nil {
			return fmt.Errorf("log the restore: %w", err)
		}
		rep.EventID = got[0].ID
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("restore of %s/%s: %w", p.TenantID, p.PatientID, err)
	}
	return rep, nil
}

// personRows reads the whole backup (every chunk is authenticated and the
// trailer checked, so a damaged backup restores nothing) and keeps the
// person's rows of personTables, under the table's name; the table's
// columns are kept as one row under NAME/cols.
func personRows(d *decoder, p Person) (map[string][][]json.RawMessage, Manifest, error) {
	d.lazy = true // most rows are someone else's: only the person's are parsed
	pid, _ := json.Marshal(p.PatientID)
	tid, _ := json.Marshal(p.TenantID)
	out := map[string][][]json.RawMessage{}
	var cur *personTable
	pcol, tcol := -1, -1
	for {
		rec, err := d.read()
		if err != nil {
			return nil, Manifest{}, err
		}
		switch {
		case rec.table != nil:
			cur, pcol, tcol = nil, -1, -1
			i := slices.IndexFunc(personTables, func(t personTable) bool { return t.name == rec.table.Table })
			if i < 0 {
				continue
			}
			cur = &personTables[i]
			var cols []json.RawMessage
			for j, c := range rec.table.Columns {
				b, _ := json.Marshal(c)
				cols = append(cols, b)
				if c.Name == cur.patient {
					pcol = j
				}
				if c.Name == cur.tenant {
					tcol = j
				}
			}
			if pcol < 0 || (cur.tenant != "" && tcol < 0) {
				return nil, Manifest{}, fmt.Errorf("backup table %s lacks the column %s or %s", cur.name, cur.patient, cur.tenant)
			}
			out[cur.name+"/cols"] = [][]json.RawMessage{cols}
		case rec.raw != nil:
			if cur == nil || !bytes.Contains(rec.raw, pid) {
				continue
			}
			if err := json.Unmarshal(rec.raw, &rec.row); err != nil {
				return nil, Manifest{}, fmt.Errorf("%w: a row is not JSON", ErrCorrupt)
			}
			if pcol >= len(rec.row) || !bytes.Equal(rec.row[pcol], pid) {
				continue
			}
			if tcol >= 0 && (tcol >= len(rec.row) || !bytes.Equal(rec.row[tcol], tid)) {
				continue
			}
			out[cur.name] = append(out[cur.name], slices.Clone(rec.row))
		case rec.trailer != nil:
			return out, *rec.trailer.Manifest, nil
		}
	}
}

func colsOf(rows [][]json.RawMessage) []column {
	if len(rows) == 0 {
		return nil
	}
	cols := make([]column, len(rows[0]))
	for i, b := range rows[0] {
		_ = json.Unmarshal(b, &cols[i])
	}
	return cols
}
