package record

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// A patient's display name ("J. de Vries (1984)") is kept beside the record
// in record_patient_names, sealed with the patient's data key, so that the
// security officer's log pages can say whose record was accessed without a
// grant to read it: the name is derived from the Patient resource whenever
// record writes one, and read only through PatientNames, under a logged
// reading of the log. Shredding the patient's key makes it unreadable with
// the rest of the record.

// ErrNoReading means PatientNames was not given a security officer's
// reading of the log whose lines were released.
var ErrNoReading = errors.New("patient names need a released reading of the tenant's log")

// maxDisplayName bounds a stored display name (runes).
const maxDisplayName = 80

// DisplayName derives a patient's display name from a Patient resource's
// FHIR JSON: the initials of the given names and the family name of the
// official name (else the usual one, else the first), or the name's text
// when it has no family name, and the birth year in brackets. "" when the
// resource names nobody.
func DisplayName(body []byte) string {
	res, err := fhir.Parse(body)
	if err != nil || res.Type != "Patient" || len(res.Names) == 0 {
		return ""
	}
	n := res.Names[0]
	for _, use := range []string{"official", "usual"} {
		if i := indexUse(res.Names, use); i >= 0 {
			n = res.Names[i]
			break
		}
	}
	var b strings.Builder
	if n.Family != "" {
		for _, g := range n.Given {
			for _, part := range strings.Fields(g) {
				r, _ := utf8.DecodeRuneInString(part)
				b.WriteRune(unicode.ToUpper(r))
				b.WriteByte('.')
			}
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strings.Join(strings.Fields(n.Family), " "))
	} else {
		b.WriteString(strings.Join(strings.Fields(n.Text), " "))
	}
	name := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, b.String())
	if name == "" {
		return ""
	}
	if r := []rune(name); len(r) > maxDisplayName {
		name = string(r[:maxDisplayName-1]) + "…"
	}
	if len(res.BirthDate) >= 4 {
		name += " (" + res.BirthDate[:4] + ")"
	}
	return name
}

func indexUse(ns []fhir.HumanName, use string) int {
	for i, n := range ns {
		if n.Use == use {
			return i
		}
	}
	return -1
}

// sealName seals the display name of a Patient resource r about to be
// written (nil when r is no Patient, or a deletion, which keeps the name
// the log's lines were written under). Like the body it is sealed before
// the transaction opens. name is "" when the resource names nobody.
func (s *Store) sealName(ctx context.Context, tenantID string, r Resource) (sealed []byte, named bool, err error) {
	if r.Type != "Patient" || r.Deleted {
		return nil, false, nil
	}
	name := DisplayName(r.Body)
	if name == "" {
		return nil, true, nil
	}
	sealed, err = s.seal.Seal(ctx, tenantID, r.PatientID, []byte(name), keys.PatientNameAD(tenantID, r.PatientID))
	if errors.Is(err, keys.ErrShredded) {
		return nil, false, fmt.Errorf("seal the patient's name: %w", ErrErased)
	}
	if err != nil {
		return nil, false, fmt.Errorf("seal the patient's name: %w", err)
	}
	return sealed, true, nil
}

// putName stores (or, for a Patient that names nobody, removes) the
// patient's sealed name in the write's transaction.
func (s *Store) putName(ctx context.Context, tx *store.Tx, tenantID, patientID string, sealed []byte) error {
	var err error
	if sealed == nil {
		_, err = tx.ExecContext(ctx, `DELETE FROM record_patient_names WHERE tenant_id = $1 AND patient_id = $2`, tenantID, patientID)
	} else {
		_, err = tx.Stmt(`INSERT INTO record_patient_names (tenant_id, patient_id, name, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (tenant_id, patient_id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at`).ExecContext(ctx,
			tenantID, patientID, sealed, clock.Micros(s.clock.Now()))
	}
	if err != nil {
		return fmt.Errorf("store the patient's name: %w", err)
	}
	return nil
}

// PatientNames names the patients whose events the security officer's
// readings released (audit.Reading.Released, after Each), by id: only those
// patients, and only of the readings' tenant. It reads no record and logs
// nothing of its own: the names are shown with the lines the reading
// released, which its log-read event (appended durably before any line was
// released) records. A patient without a stored name, or whose key was
// shredded, is absent from the map. A person's reading of their own log,
// an unreleased reading or none gives ErrNoReading.
func (s *Store) PatientNames(ctx context.Context, readings ...*audit.Reading) (map[string]string, error) {
	if len(readings) == 0 {
		return nil, ErrNoReading
	}
	byTenant := map[string][]string{}
	for _, rd := range readings {
		if rd == nil {
			return nil, ErrNoReading
		}
		tenant, ids, ok := rd.Released()
		if !ok {
			return nil, ErrNoReading
		}
		byTenant[tenant] = append(byTenant[tenant], ids...)
	}
	out := map[string]string{}
	for tenant, ids := range byTenant {
		for len(ids) > 0 {
			part := ids[:min(len(ids), 500)]
			ids = ids[len(part):]
			if err := s.names(ctx, tenant, part, out); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func (s *Store) names(ctx context.Context, tenant string, ids []string, out map[string]string) error {
	list, args := store.InList(s.db, ids, 2)
	rows, err := s.db.QueryContext(ctx, `SELECT patient_id, name FROM record_patient_names WHERE tenant_id = $1 AND patient_id IN (`+list+`)`,
		append([]any{tenant}, args...)...)
	if err != nil {
		return fmt.Errorf("patient names: %w", err)
	}
	type sealedName struct {
		patient string
		name    []byte
	}
	var found []sealedName
	for rows.Next() {
		var n sealedName
		if err := rows.Scan(&n.patient, &n.name); err != nil {
			rows.Close()
			return fmt.Errorf("patient names: %w", err)
		}
		found = append(found, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("patient names: %w", err)
	}
	// Opened after the rows are closed: opening may read the patient's key.
	for _, n := range found {
		b, err := s.seal.Open(ctx, tenant, n.patient, n.name, keys.PatientNameAD(tenant, n.patient))
		switch {
		case errors.Is(err, keys.ErrShredded):
			continue // crypto-shredded (DP-1): the name went with the record
		case errors.Is(err, keys.ErrDecrypt):
			return fmt.Errorf("patient %s's name: %w: %v", n.patient, ErrIntegrity, err)
		case err != nil:
			return fmt.Errorf("patient %s's name: %w", n.patient, err)
		}
		out[n.patient] = string(b)
	}
	return nil
}
