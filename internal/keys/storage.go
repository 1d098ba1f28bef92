package keys

import (
	"context"
	"errors"
	"time"
)

// Errors a Store returns (wrapped or not; callers use errors.Is).
var (
	ErrNotFound = errors.New("keys: key not found")
	ErrExists   = errors.New("keys: key already exists")
	ErrInUse    = errors.New("keys: tenant key still in use")
	// ErrShredded means the patient's key was destroyed on purpose: their
	// sealed data can never be read again and nothing new may be sealed.
	ErrShredded = errors.New("keys: patient key destroyed (crypto-shredded)")
)

// TenantKEK is one version of a tenant's key-encryption key, wrapped by a
// master key.
type TenantKEK struct {
	TenantID string
	Version  int    // 1, 2, ...; the highest is current
	MasterID string // Master.ID of the master key that wrapped it
	Wrapped  []byte
	Created  time.Time
	Retired  time.Time // when a newer version superseded it; zero while current
}

// PatientDEK is a patient's data-encryption key, wrapped by one version of
// their tenant's KEK. The tenant's blind-index key is kept as the DEK of the
// reserved patient id "" (see Keyring.BlindIndex).
type PatientDEK struct {
	TenantID   string
	PatientID  string
	KEKVersion int
	Wrapped    []byte
	Created    time.Time
}

// Store keeps wrapped keys; it never sees an unwrapped one. Every method is
// safe for concurrent use, also from several processes on one database, and
// keeps these invariants:
//   - a (tenant, version) KEK and a (tenant, patient) DEK are inserted at
//     most once: concurrent creators see ErrExists and re-read the winner;
//   - a DEK can only reference a KEK version that exists, and a KEK version
//     cannot be deleted while a DEK references it (the SQL store uses a
//     foreign key), so no key is ever left without its wrapping key;
//   - a shredded DEK row stays as a tombstone with no key material, so the
//     patient can never get a new key.
type Store interface {
	// TenantKEKs returns every version of the tenant's KEK, oldest first;
	// none is not an error.
	TenantKEKs(ctx context.Context, tenantID string) ([]TenantKEK, error)
	// PutTenantKEK inserts a new version (ErrExists if that version exists)
	// and marks older versions retired at k.Created.
	PutTenantKEK(ctx context.Context, k TenantKEK) error
	// RewrapTenantKEK replaces MasterID and Wrapped of k's version if it is
	// still wrapped by oldMasterID, else returns ErrNotFound.
	RewrapTenantKEK(ctx context.Context, oldMasterID string, k TenantKEK) error
	// TenantKEKsNotUnder returns up to limit KEKs, of any tenant, wrapped by
	// a master key other than masterID.
	TenantKEKsNotUnder(ctx context.Context, masterID string, limit int) ([]TenantKEK, error)
	// DeleteTenantKEK destroys a version that is not the newest and that no
	// DEK references (else ErrInUse; ErrNotFound if absent).
	DeleteTenantKEK(ctx context.Context, tenantID string, version int) error

	// PatientDEK returns the patient's wrapped key, ErrNotFound or ErrShredded.
	PatientDEK(ctx context.Context, tenantID, patientID string) (PatientDEK, error)
	// PutPatientDEK inserts the patient's key once: ErrExists if the
	// patient has a key or a tombstone, ErrNotFound if k.KEKVersion does not
	// exist (it was just deleted by a rotation).
	PutPatientDEK(ctx context.Context, k PatientDEK) error
	// PatientDEKsBelow returns up to limit live DEKs of the tenant wrapped by
	// a KEK version lower than kekVersion.
	PatientDEKsBelow(ctx context.Context, tenantID string, kekVersion, limit int) ([]PatientDEK, error)
	// RewrapPatientDEK replaces KEKVersion and Wrapped if the DEK is live and
	// still wrapped by oldKEKVersion, else returns ErrNotFound.
	RewrapPatientDEK(ctx context.Context, oldKEKVersion int, k PatientDEK) error
	// ShredPatientDEK destroys the patient's wrapped key and leaves a
	// tombstone (also when there was no key yet). Repeating it is no error.
	ShredPatientDEK(ctx context.Context, tenantID, patientID string, at time.Time) error
}
