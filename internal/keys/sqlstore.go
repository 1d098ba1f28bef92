package keys

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// SQLStore is the Store in the zorgkluis database (SQLite or PostgreSQL),
// tables tenant_keks and patient_deks (migration 00400_keys.sql). The
// invariants of Store rest on the primary keys, the foreign key from a
// patient key to its KEK version and the tombstone check.
type SQLStore struct {
	db *store.DB
}

// NewSQLStore returns a Store on db; db must be migrated.
func NewSQLStore(db *store.DB) *SQLStore { return &SQLStore{db: db} }

var _ Store = (*SQLStore)(nil)

const kekColumns = "tenant_id, version, master_id, wrapped, created_at, retired_at"

func (s *SQLStore) TenantKEKs(ctx context.Context, tenantID string) ([]TenantKEK, error) {
	return s.queryKEKs(ctx, "SELECT "+kekColumns+" FROM tenant_keks WHERE tenant_id = $1 ORDER BY version", tenantID)
}

func (s *SQLStore) TenantKEKsNotUnder(ctx context.Context, masterID string, limit int) ([]TenantKEK, error) {
	return s.queryKEKs(ctx, "SELECT "+kekColumns+" FROM tenant_keks WHERE master_id <> $1 ORDER BY tenant_id, version LIMIT $2", masterID, limit)
}

func (s *SQLStore) queryKEKs(ctx context.Context, q string, args ...any) ([]TenantKEK, error) {
	rows, err := s.db.Stmt(q).QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("read tenant keys: %w", err)
	}
	defer rows.Close()
	var out []TenantKEK
	for rows.Next() {
		var k TenantKEK
		var created int64
		var retired sql.NullInt64
		if err := rows.Scan(&k.TenantID, &k.Version, &k.MasterID, &k.Wrapped, &created, &retired); err != nil {
			return nil, fmt.Errorf("read tenant keys: %w", err)
		}
		k.Created = clock.FromMicros(created)
		if retired.Valid {
			k.Retired = clock.FromMicros(retired.Int64)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read tenant keys: %w", err)
	}
	return out, nil
}

func (s *SQLStore) PutTenantKEK(ctx context.Context, k TenantKEK) error {
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx,
			"INSERT INTO tenant_keks (tenant_id, version, master_id, wrapped, created_at) VALUES ($1, $2, $3, $4, $5)",
			k.TenantID, k.Version, k.MasterID, k.Wrapped, clock.Micros(k.Created))
		if store.IsUniqueViolation(err) {
			return ErrExists
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx,
			"UPDATE tenant_keks SET retired_at = $3 WHERE tenant_id = $1 AND version < $2 AND retired_at IS NULL",
			k.TenantID, k.Version, clock.Micros(k.Created))
		return err
	})
	if err != nil && !errors.Is(err, ErrExists) {
		return fmt.Errorf("store tenant key: %w", err)
	}
	return err
}

func (s *SQLStore) RewrapTenantKEK(ctx context.Context, oldMasterID string, k TenantKEK) error {
	res, err := s.db.ExecContext(ctx,
		"UPDATE tenant_keks SET master_id = $4, wrapped = $5 WHERE tenant_id = $1 AND version = $2 AND master_id = $3",
		k.TenantID, k.Version, oldMasterID, k.MasterID, k.Wrapped)
	return oneRow(res, err, "re-wrap tenant key")
}

func (s *SQLStore) DeleteTenantKEK(ctx context.Context, tenantID string, version int) error {
	// The newest version and versions still referenced stay. The NOT EXISTS
	// avoids most foreign-key errors; the foreign key decides races.
	res, err := s.db.ExecContext(ctx, `DELETE FROM tenant_keks
		WHERE tenant_id = $1 AND version = $2
		  AND version < (SELECT MAX(version) FROM tenant_keks WHERE tenant_id = $1)
		  AND NOT EXISTS (SELECT 1 FROM patient_deks WHERE tenant_id = $1 AND kek_version = $2)`,
		tenantID, version)
	if store.IsForeignKeyViolation(err) {
		return ErrInUse
	}
	if err := oneRow(res, err, "delete tenant key"); !errors.Is(err, ErrNotFound) {
		return err
	}
	var n int
	err = s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM tenant_keks WHERE tenant_id = $1 AND version = $2", tenantID, version).Scan(&n)
	if err != nil {
		return fmt.Errorf("delete tenant key: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return ErrInUse
}

func (s *SQLStore) PatientDEK(ctx context.Context, tenantID, patientID string) (PatientDEK, error) {
	d := PatientDEK{TenantID: tenantID, PatientID: patientID}
	var version, shredded sql.NullInt64
	var created int64
	err := s.db.Stmt("SELECT kek_version, wrapped, created_at, shredded_at FROM patient_deks WHERE tenant_id = $1 AND patient_id = $2").
		QueryRowContext(ctx, tenantID, patientID).Scan(&version, &d.Wrapped, &created, &shredded)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return PatientDEK{}, ErrNotFound
	case err != nil:
		return PatientDEK{}, fmt.Errorf("read patient key: %w", err)
	case shredded.Valid:
		return PatientDEK{}, ErrShredded
	}
	d.KEKVersion = int(version.Int64)
	d.Created = clock.FromMicros(created)
	return d, nil
}

func (s *SQLStore) PutPatientDEK(ctx context.Context, k PatientDEK) error {
	return putPatientDEK(ctx, s.db, k)
}

// PutPatientDEKs inserts new patients' keys in one transaction: all or,
// when any patient has a key or a tombstone already (ErrExists) or a KEK
// version is missing (ErrNotFound), none.
func (s *SQLStore) PutPatientDEKs(ctx context.Context, ks []PatientDEK) error {
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		for _, k := range ks {
			if err := putPatientDEK(ctx, tx, k); err != nil {
				return err
			}
		}
		return nil
	})
}

func putPatientDEK(ctx context.Context, q store.Querier, k PatientDEK) error {
	res, err := q.ExecContext(ctx, `INSERT INTO patient_deks (tenant_id, patient_id, kek_version, wrapped, created_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, patient_id) DO NOTHING`,
		k.TenantID, k.PatientID, k.KEKVersion, k.Wrapped, clock.Micros(k.Created))
	if store.IsForeignKeyViolation(err) {
		return fmt.Errorf("tenant key version %d: %w", k.KEKVersion, ErrNotFound)
	}
	if err := oneRow(res, err, "store patient key"); errors.Is(err, ErrNotFound) {
		return ErrExists
	} else if err != nil {
		return err
	}
	return nil
}

func (s *SQLStore) PatientDEKsBelow(ctx context.Context, tenantID string, kekVersion, limit int) ([]PatientDEK, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT patient_id, kek_version, wrapped, created_at FROM patient_deks
		WHERE tenant_id = $1 AND shredded_at IS NULL AND kek_version < $2 ORDER BY patient_id LIMIT $3`,
		tenantID, kekVersion, limit)
	if err != nil {
		return nil, fmt.Errorf("read patient keys: %w", err)
	}
	defer rows.Close()
	var out []PatientDEK
	for rows.Next() {
		d := PatientDEK{TenantID: tenantID}
		var created int64
		if err := rows.Scan(&d.PatientID, &d.KEKVersion, &d.Wrapped, &created); err != nil {
			return nil, fmt.Errorf("read patient keys: %w", err)
		}
		d.Created = clock.FromMicros(created)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read patient keys: %w", err)
	}
	return out, nil
}

func (s *SQLStore) RewrapPatientDEK(ctx context.Context, oldKEKVersion int, k PatientDEK) error {
	res, err := s.db.ExecContext(ctx, `UPDATE patient_deks SET kek_version = $4, wrapped = $5
		WHERE tenant_id = $1 AND patient_id = $2 AND kek_version = $3 AND shredded_at IS NULL`,
		k.TenantID, k.PatientID, oldKEKVersion, k.KEKVersion, k.Wrapped)
	if store.IsForeignKeyViolation(err) {
		return fmt.Errorf("tenant key version %d: %w", k.KEKVersion, ErrNotFound)
	}
	return oneRow(res, err, "re-wrap patient key")
}

func (s *SQLStore) ShredPatientDEK(ctx context.Context, tenantID, patientID string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO patient_deks (tenant_id, patient_id, kek_version, wrapped, created_at, shredded_at)
		VALUES ($1, $2, NULL, NULL, $3, $3)
		ON CONFLICT (tenant_id, patient_id) DO UPDATE SET kek_version = NULL, wrapped = NULL,
			shredded_at = COALESCE(patient_deks.shredded_at, excluded.shredded_at)`,
		tenantID, patientID, clock.Micros(at))
	if err != nil {
		return fmt.Errorf("shred patient key: %w", err)
	}
	return nil
}

// oneRow turns "no row changed" into ErrNotFound.
func oneRow(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
