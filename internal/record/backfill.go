package record

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// BackfillResult counts what BackfillNames did. It holds counts only: the
// backfill returns nothing of any record to its caller.
type BackfillResult struct {
	Patients int // patients with a current Patient resource
	Named    int // name rows written by this run
	Already  int // already named (before the run, or by a write or another run meanwhile)
	Shredded int // skipped: the patient's key was shredded (DP-1)
	Nameless int // skipped: the Patient resource names nobody
	Damaged  int // skipped: the Patient resource failed its integrity check
}

// BackfillNames writes the sealed display name of every patient whose
// current Patient resource has no row in record_patient_names: patients
// written before migration 00520, whom the security officer's pages would
// otherwise call "patiënt zonder naam" until their Patient is written again.
// It reads batch patients at a time (bounded memory), in (tenant, patient)
// order, and calls progress (when not nil) after each batch with the
// patients seen and the total unnamed at the start.
//
// It is the server's own maintenance, not an access to a record by a
// person: it takes no grant and logs no access per patient, because it
// releases nothing. The Patient body is opened only to derive the name,
// which is sealed again at once under the same patient key; the caller
// gets counts only. The command that runs it logs the run as one event.
//
// Idempotent: a name row that exists is never touched (a concurrent write
// of the Patient stores the newer name itself), so a second run, or a run
// on another replica at the same time, writes nothing new. A shredded
// patient's key does not open: skipped and counted. A body that fails its
// integrity check is counted and, after the rest is done, reported as an
// ErrIntegrity error naming the first such patient (an id, no content).
func (s *Store) BackfillNames(ctx context.Context, batch int, progress func(done, total int)) (BackfillResult, error) {
	if batch <= 0 {
		batch = 200
	}
	var res BackfillResult
	var unnamed int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN `+unnamedCond+` THEN 1 ELSE 0 END), 0)
		FROM resources r WHERE `+currentPatientCond).Scan(&res.Patients, &unnamed)
	if err != nil {
		return res, fmt.Errorf("count unnamed patients: %w", err)
	}
	res.Already = res.Patients - unnamed
	if unnamed == 0 {
		return res, nil
	}
	var lastTenant, lastPatient, firstDamaged string
	done := 0
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		rows, err := s.unnamedPatients(ctx, lastTenant, lastPatient, batch)
		if err != nil {
			return res, err
		}
		if len(rows) == 0 {
			break
		}
		lastTenant, lastPatient = rows[len(rows)-1].tenant, rows[len(rows)-1].patient
		// Sealed before the transaction opens, as a write does: opening
		// and sealing may read the patient's key.
		var todo []unnamedPatient
		for _, p := range rows {
			body, err := s.seal.Open(ctx, p.tenant, p.patient, p.body, keys.ResourceAD(p.tenant, p.patient, "Patient", p.patient, p.version))
			p.body = nil
			switch {
			case errors.Is(err, keys.ErrShredded):
				res.Shredded++
				continue
			case errors.Is(err, keys.ErrDecrypt):
				res.Damaged++
				if firstDamaged == "" {
					firstDamaged = p.tenant + "/" + p.patient
				}
				continue
			case err != nil:
				return res, fmt.Errorf("open patient %s/%s: %w", p.tenant, p.patient, err)
			}
			name := DisplayName(body)
			clear(body)
			if name == "" {
				res.Nameless++
				continue
			}
			p.name, err = s.seal.Seal(ctx, p.tenant, p.patient, []byte(name), keys.PatientNameAD(p.tenant, p.patient))
			if errors.Is(err, keys.ErrShredded) {
				res.Shredded++ // shredded between the open and the seal
				continue
			}
			if err != nil {
				return res, fmt.Errorf("seal patient %s/%s's name: %w", p.tenant, p.patient, err)
			}
			todo = append(todo, p)
		}
		if len(todo) > 0 {
			named, already, err := s.putBackfilled(ctx, todo)
			if err != nil {
				return res, err
			}
			res.Named += named
			res.Already += already
		}
		done += len(rows)
		if progress != nil {
			progress(min(done, unnamed), unnamed)
		}
		if len(rows) < batch {
			break
		}
	}
	if res.Damaged > 0 {
		return res, fmt.Errorf("%d Patient resource(s) did not open, first of patient %s: %w", res.Damaged, firstDamaged, ErrIntegrity)
	}
	return res, nil
}

// currentPatientCond selects, as r, the current version of each patient's
// Patient resource (its id is the patient's), when it is not a deletion.
const currentPatientCond = `r.type = 'Patient' AND r.id = r.patient_id AND r.deleted = FALSE
	AND r.version = (SELECT MAX(v.version) FROM resources v WHERE v.tenant_id = r.tenant_id AND v.type = 'Patient' AND v.id = r.id)`

// unnamedCond holds for a patient r without a name row.
const unnamedCond = `NOT EXISTS (SELECT 1 FROM record_patient_names n WHERE n.tenant_id = r.tenant_id AND n.patient_id = r.patient_id)`

type unnamedPatient struct {
	tenant, patient string
	version         int64
	body, name      []byte
}

// unnamedPatients reads the next n unnamed patients after (tenant, patient)
// and closes the rows before any body is opened (see collect).
func (s *Store) unnamedPatients(ctx context.Context, tenant, patient string, n int) ([]unnamedPatient, error) {
	rows, err := s.db.Stmt(`SELECT r.tenant_id, r.patient_id, r.version, r.body FROM resources r
		WHERE `+currentPatientCond+` AND `+unnamedCond+`
		AND (r.tenant_id > $1 OR (r.tenant_id = $1 AND r.patient_id > $2))
		ORDER BY r.tenant_id, r.patient_id LIMIT $3`).QueryContext(ctx, tenant, patient, n)
	if err != nil {
		return nil, fmt.Errorf("unnamed patients: %w", err)
	}
	var out []unnamedPatient
	for rows.Next() {
		var p unnamedPatient
		if err := rows.Scan(&p.tenant, &p.patient, &p.version, &p.body); err != nil {
			rows.Close()
			return nil, fmt.Errorf("unnamed patients: %w", err)
		}
		out = append(out, p)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("unnamed patients: %w", err)
	}
	return out, nil
}

// putBackfilled stores the batch's names in one transaction, each only if
// the patient still has none and the version it was derived from is still
// the current one (else the newer write stored its own name, or removed it).
func (s *Store) putBackfilled(ctx context.Context, ps []unnamedPatient) (named, already int, err error) {
	now := s.clock.Now()
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		named, already = 0, 0
		for _, p := range ps {
			var cur int64
			err := tx.Stmt(`SELECT MAX(version) FROM resources WHERE tenant_id = $1 AND type = 'Patient' AND id = $2`).
				QueryRowContext(ctx, p.tenant, p.patient).Scan(&cur)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("patient %s/%s's version: %w", p.tenant, p.patient, err)
			}
			if cur != p.version {
				already++
				continue
			}
			r, err := tx.Stmt(`INSERT INTO record_patient_names (tenant_id, patient_id, name, updated_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT (tenant_id, patient_id) DO NOTHING`).ExecContext(ctx, p.tenant, p.patient, p.name, clock.Micros(now))
			if err != nil {
				return fmt.Errorf("store patient %s/%s's name: %w", p.tenant, p.patient, err)
			}
			if n, _ := r.RowsAffected(); n == 1 {
				named++
			} else {
				already++
			}
		}
		return nil
	})
	return named, already, err
}
