// Package record stores FHIR resources per patient, sealed with the patient's
// data key (DP-1). Every function that touches a patient's data takes an
// access.Grant, and appends its access-log event before it returns the data:
// either durably in the same transaction as a write, or durably after a read
// and before the caller sees anything (LOG-3). A log failure returns no data.
//
// Every version of a resource is kept (update and delete add a version), so
// history and vread work and a delete is soft. A row holds only what routing
// and access need in the clear: tenant, type, id, version, patient id,
// deletion flag, access categories and time. Everything else, including the
// searchable values (codes, dates, categories of the FHIR content), exists
// only inside the sealed body. Search therefore decrypts and filters within
// one patient's resources of one type (see Search for the cost).
package record

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// ErrNotFound means no such resource for this grant. A resource the grant's
// role may not see is not found either: the role must not learn it exists.
var ErrNotFound = errors.New("resource not found")

// ErrDeleted means the resource exists but its current version is a
// deletion.
var ErrDeleted = errors.New("resource deleted")

// ErrErased means the patient's data key was destroyed (crypto-shredding,
// DP-1): the data exists only as ciphertext nobody can open.
var ErrErased = errors.New("the patient's data was erased")

// ErrIntegrity means a stored body does not open under its row's
// associated data: it was altered or moved from another row.
var ErrIntegrity = errors.New("stored resource failed its integrity check")

// ErrWrongGrant means the grant does not cover the operation.
var ErrWrongGrant = errors.New("grant does not cover this operation")

// ErrConflict means a version was written concurrently, or the version the
// caller expected is not the current one.
var ErrConflict = errors.New("version conflict")

// Sealer encrypts and decrypts under a patient's data key, and computes
// the tenant's keyed hashes of identifiers (keys.Keyring is one).
type Sealer interface {
	Seal(ctx context.Context, tenantID, patientID string, plaintext []byte, ad keys.AD) ([]byte, error)
	Open(ctx context.Context, tenantID, patientID string, ciphertext []byte, ad keys.AD) ([]byte, error)
	BlindIndex(ctx context.Context, tenantID, kind, value string) ([]byte, error)
}

// BSNIndex returns the blind index of a BSN in the tenant: the only form in
// which a BSN is stored outside a sealed body (DP-1, ID-4).
func (s *Store) BSNIndex(ctx context.Context, tenantID, bsn string) ([]byte, error) {
	idx, err := s.seal.BlindIndex(ctx, tenantID, "bsn", bsn)
	if err != nil {
		return nil, fmt.Errorf("bsn index: %w", err)
	}
	return idx, nil
}

// Resource is one version of a FHIR resource.
type Resource struct {
	Type        string
	ID          string
	Version     int64
	PatientID   string
	Categories  []string
	LastUpdated time.Time
	Deleted     bool
	Body        []byte // the FHIR JSON as stored (id and meta set by the server); nil for a deletion
}

// Ref is the "Type/id" form of the resource.
func (r Resource) Ref() string { return r.Type + "/" + r.ID }

// VersionRef is the "Type/id/_history/version" form of the resource.
func (r Resource) VersionRef() string {
	return r.Ref() + "/_history/" + strconv.FormatInt(r.Version, 10)
}

// Store reads and writes resources.
type Store struct {
	db    *store.DB
	seal  Sealer
	log   *audit.Log
	clock clock.Clock
}

// New returns a Store.
func New(db *store.DB, s Sealer, log *audit.Log, c clock.Clock) *Store {
	return &Store{db: db, seal: s, log: log, clock: c}
}

func check(g access.Grant, want access.Action) error {
	if !g.Valid() || g.Action() != want {
		return ErrWrongGrant
	}
	return nil
}

// stamp sets version and time on r and writes id, meta.versionId and
// meta.lastUpdated into its body, so the body and the row always agree.
func (s *Store) stamp(r *Resource, version int64) error {
	r.Version = version
	// The row keeps microseconds; the body must say the same instant.
	r.LastUpdated = s.clock.Now().UTC().Truncate(time.Microsecond)
	if r.Deleted {
		r.Body = nil
		return nil
	}
	b, err := fhir.WithMeta(r.Body, r.ID, strconv.FormatInt(version, 10), r.LastUpdated)
	if err != nil {
		return fmt.Errorf("stamp %s: %w", r.Ref(), err)
	}
	r.Body = b
	return nil
}

// Insert writes version 1 of a new resource (its id chosen by the caller)
// and its create event in one transaction. The server sets id, versionId
// and lastUpdated in the body.
func (s *Store) Insert(ctx context.Context, g access.Grant, r Resource) (Resource, error) {
	b := s.NewBatch()
	r, err := b.Insert(ctx, g, r)
	if err != nil {
		return Resource{}, err
	}
	if err := b.Commit(ctx); err != nil {
		return Resource{}, err
	}
	return r, nil
}

func (s *Store) insertLogged(ctx context.Context, tx *store.Tx, g access.Grant, action audit.Action, r Resource, sealed []byte) error {
	if err := insertRow(ctx, tx, g.TenantID(), r, sealed); err != nil {
		return err
	}
	ev := g.Event(action, audit.OutcomeSuccess)
	ev.Resources = []string{r.VersionRef()}
	_, err := s.log.AppendIn(ctx, tx, ev)
	return err
}

func (s *Store) sealBody(ctx context.Context, tenantID string, r Resource) ([]byte, error) {
	// Bound to tenant, patient, resource and version: a body copied to
	// another row does not open.
	sealed, err := s.seal.Seal(ctx, tenantID, r.PatientID, r.Body, keys.ResourceAD(tenantID, r.PatientID, r.Type, r.ID, r.Version))
	if errors.Is(err, keys.ErrShredded) {
		return nil, fmt.Errorf("seal %s: %w", r.Ref(), ErrErased)
	}
	if err != nil {
		return nil, fmt.Errorf("seal resource: %w", err)
	}
	return sealed, nil
}

func insertRow(ctx context.Context, q store.Querier, tenantID string, r Resource, sealed []byte) error {
	_, err := q.Stmt(`INSERT INTO resources (tenant_id, type, id, version, patient_id, deleted, categories, last_updated, body)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`).ExecContext(ctx,
		tenantID, r.Type, r.ID, r.Version, r.PatientID, r.Deleted, strings.Join(r.Categories, " "), clock.Micros(r.LastUpdated), sealed)
	if store.IsUniqueViolation(err) {
		return fmt.Errorf("insert %s version %d: %w", r.Ref(), r.Version, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("insert resource: %w", err)
	}
	return nil
}

// PatientRegistrar creates the patient row in the caller's transaction.
type PatientRegistrar interface {
	CreatePatient(ctx context.Context, q store.Querier, id, tenantID string, bsnIndex []byte) (string, error)
}

// RegisterPatient stores a new patient (identifier row and Patient resource)
// under a registration grant, with its assign-identifier and create events,
// in one transaction; see Batch.RegisterPatient.
func (s *Store) RegisterPatient(ctx context.Context, g access.Grant, reg PatientRegistrar, bsnIndex, body []byte) (Resource, error) {
	b := s.NewBatch()
	r, err := b.RegisterPatient(ctx, g, reg, bsnIndex, body)
	if err != nil {
		return Resource{}, err
	}
	if err := b.Commit(ctx); err != nil {
		return Resource{}, err
	}
	return r, nil
}

const columns = `type, id, version, patient_id, deleted, categories, last_updated, body`

// current reads and opens the newest version of a resource of the grant's
// patient, deleted or not.
func (s *Store) current(ctx context.Context, g access.Grant, typ, id string) (Resource, error) {
	row := s.db.Stmt(`SELECT `+columns+` FROM resources
		WHERE tenant_id = $1 AND type = $2 AND id = $3 ORDER BY version DESC LIMIT 1`).QueryRowContext(ctx, g.TenantID(), typ, id)
	return s.scanOpen(ctx, g, row)
}

// Read returns the current version of a resource of the grant's patient and
// logs the read durably before returning it. A deleted resource gives
// ErrDeleted; one of an erased patient ErrErased (and a failed-read event).
func (s *Store) Read(ctx context.Context, g access.Grant, typ, id string) (Resource, error) {
	if err := check(g, access.Read); err != nil {
		return Resource{}, err
	}
	r, err := s.current(ctx, g, typ, id)
	if err != nil {
		return Resource{}, s.logFailure(ctx, g, audit.ActionRead, typ+"/"+id, err)
	}
	if r.Deleted {
		return Resource{}, ErrDeleted
	}
	if err := s.logRead(ctx, g, audit.ActionRead, "", r); err != nil {
		return Resource{}, err
	}
	return r, nil
}

// VRead returns one version of a resource; a deleted version gives
// ErrDeleted.
func (s *Store) VRead(ctx context.Context, g access.Grant, typ, id string, version int64) (Resource, error) {
	if err := check(g, access.Read); err != nil {
		return Resource{}, err
	}
	row := s.db.Stmt(`SELECT `+columns+` FROM resources
		WHERE tenant_id = $1 AND type = $2 AND id = $3 AND version = $4`).QueryRowContext(ctx, g.TenantID(), typ, id, version)
	r, err := s.scanOpen(ctx, g, row)
	if err != nil {
		return Resource{}, s.logFailure(ctx, g, audit.ActionRead, typ+"/"+id, err)
	}
	if r.Deleted {
		return Resource{}, ErrDeleted
	}
	if err := s.logRead(ctx, g, audit.ActionRead, "", r); err != nil {
		return Resource{}, err
	}
	return r, nil
}

// History returns every version of a resource, newest first, under a read
// grant, and logs one read event naming the versions returned.
func (s *Store) History(ctx context.Context, g access.Grant, typ, id string) ([]Resource, error) {
	if err := check(g, access.Read); err != nil {
		return nil, err
	}
	rows, err := s.db.Stmt(`SELECT `+columns+` FROM resources
		WHERE tenant_id = $1 AND type = $2 AND id = $3 ORDER BY version DESC`).QueryContext(ctx, g.TenantID(), typ, id)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	out, err := s.collect(ctx, g, rows, true, false, func(Resource) bool { return true })
	if err != nil {
		return nil, s.logFailure(ctx, g, audit.ActionRead, typ+"/"+id, err)
	}
	if len(out) == 0 {
		return nil, ErrNotFound
	}
	if err := s.logRead(ctx, g, audit.ActionRead, "_history", out...); err != nil {
		return nil, err
	}
	return out, nil
}

// logRead appends the event of a read, search or export durably; the
// caller releases the data only when it returns nil (LOG-3).
func (s *Store) logRead(ctx context.Context, g access.Grant, action audit.Action, query string, rs ...Resource) error {
	ev := g.Event(action, audit.OutcomeSuccess)
	ev.Query = query
	for _, r := range rs {
		ev.Resources = append(ev.Resources, r.VersionRef())
	}
	if _, err := s.log.Append(ctx, ev); err != nil {
		return err
	}
	return nil
}

// logFailure records an attempt on an erased patient's data (NEN 7513 logs
// failed attempts too) and returns err, or the log failure.
func (s *Store) logFailure(ctx context.Context, g access.Grant, action audit.Action, ref string, err error) error {
	if !errors.Is(err, ErrErased) {
		return err
	}
	ev := g.Event(action, audit.OutcomeFailed)
	ev.Reason = "the patient's data was erased (crypto-shredded)"
	ev.Resources = []string{ref}
	if _, lerr := s.log.Append(ctx, ev); lerr != nil {
		return lerr
	}
	return err
}

type scanner interface{ Scan(...any) error }

// sealedRow is a row as stored, before its body is opened.
type sealedRow struct {
	r       Resource
	cats    string
	updated int64
	sealed  []byte
}

func scanSealed(row scanner) (sealedRow, error) {
	var x sealedRow
	err := row.Scan(&x.r.Type, &x.r.ID, &x.r.Version, &x.r.PatientID, &x.r.Deleted, &x.cats, &x.updated, &x.sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return sealedRow{}, ErrNotFound
	}
	if err != nil {
		return sealedRow{}, fmt.Errorf("read resource: %w", err)
	}
	return x, nil
}

// scanOpen decodes a row and opens its body, refusing rows of another
// patient or of a category the grant's role may not see.
func (s *Store) scanOpen(ctx context.Context, g access.Grant, row scanner) (Resource, error) {
	x, err := scanSealed(row)
	if err != nil {
		return Resource{}, err
	}
	return s.open(ctx, g, x)
}

// open opens a stored row's body for the grant.
func (s *Store) open(ctx context.Context, g access.Grant, x sealedRow) (Resource, error) {
	r := x.r
	if r.PatientID != g.PatientID() {
		return Resource{}, ErrNotFound
	}
	r.Categories = strings.Fields(x.cats)
	for _, c := range r.Categories {
		if !g.AllowsCategory(c) {
			return Resource{}, ErrNotFound
		}
	}
	r.LastUpdated = clock.FromMicros(x.updated)
	body, err := s.seal.Open(ctx, g.TenantID(), r.PatientID, x.sealed, keys.ResourceAD(g.TenantID(), r.PatientID, r.Type, r.ID, r.Version))
	if errors.Is(err, keys.ErrShredded) {
		return Resource{}, fmt.Errorf("open %s: %w", r.Ref(), ErrErased)
	}
	if errors.Is(err, keys.ErrDecrypt) {
		return Resource{}, fmt.Errorf("open %s version %d: %w: %v", r.Ref(), r.Version, ErrIntegrity, err)
	}
	if err != nil {
		return Resource{}, fmt.Errorf("open %s: %w", r.Ref(), err)
	}
	if !r.Deleted {
		r.Body = body
	}
	return r, nil
}

// collect opens the rows that the grant may see, keeping those match
// accepts; deleted versions only when withDeleted; with newest, rows
// ordered by (type, id, version) and only the newest version of each
// (current). It reads every row and
// closes the result before opening any body: opening may need the
// patient's data key from the database, and holding one connection per
// search while asking for a second deadlocks a busy, bounded pool.
func (s *Store) collect(ctx context.Context, g access.Grant, rows *sql.Rows, withDeleted, newest bool, match func(Resource) bool) ([]Resource, error) {
	var stored []sealedRow
	for rows.Next() {
		x, err := scanSealed(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		stored = append(stored, x)
	}
	err := rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("read resources: %w", err)
	}
	if newest {
		stored = current(stored)
	}
	var out []Resource
	for _, x := range stored {
		r, err := s.open(ctx, g, x)
		if errors.Is(err, ErrNotFound) {
			continue // a category this role may not see
		}
		if err != nil {
			return nil, err
		}
		if (r.Deleted && !withDeleted) || !match(r) {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// ResourcePatient returns the patient whose record holds the resource
// typ/id in the tenant (any tenant when tenantID is empty, for operators),
// so the caller can ask access.Decide about that patient before reading it.
// It reveals only the patient id, never content, and needs no grant for
// that reason. ErrNotFound when there is no such resource.
func (s *Store) ResourcePatient(ctx context.Context, tenantID, typ, id string) (string, error) {
	q := `SELECT patient_id FROM resources WHERE type = $1 AND id = $2 AND tenant_id = $3 LIMIT 1`
	args := []any{typ, id, tenantID}
	if tenantID == "" {
		q, args = `SELECT patient_id FROM resources WHERE type = $1 AND id = $2 LIMIT 1`, args[:2]
	}
	var p string
	err := s.db.Stmt(q).QueryRowContext(ctx, args...).Scan(&p) // one of two constant texts
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("resource patient: %w", err)
	}
	return p, nil
}
