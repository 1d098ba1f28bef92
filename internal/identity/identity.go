// Package identity owns the registration of tenants (care organisations),
// accounts, professionals and patients. Every id is 128 random bits and is
// never reissued: accounts are deactivated, never deleted (ID-1), and user
// names stay taken after deactivation.
package identity

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Account kinds. Privileged work is done from admin and operator accounts,
// separate from the same person's everyday account (AUTH-8).
const (
	KindPerson       = "person"
	KindProfessional = "professional"
	KindAdmin        = "admin"
	KindOperator     = "operator"
)

// ErrNotFound means no such entity; ErrExists means a unique value is taken.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// Tenant is a care organisation.
type Tenant struct {
	ID   string
	Name string
	URA  string // UZI-register abonneenummer
	AGB  string
}

// Account is a log-on identity.
type Account struct {
	ID                 string
	TenantID           string // empty for platform operators
	Kind               string
	Username           string
	DisplayName        string
	Email              string
	BirthDate          string // YYYY-MM-DD, for persons; used by the password policy
	RegistrationMethod int    // NEN 7512 Tabel 5 registratiewijze 1..4 (ID-2)
	VerifiedBy         string
	Active             bool
	// Pending is set for an invited account that has not been activated:
	// it cannot log on until Activate (ID-6). On CreateAccount it asks for
	// that state.
	Pending   bool
	CreatedAt time.Time
}

// Professional holds the verified professional data of an account (ID-2).
type Professional struct {
	AccountID     string
	BIG, UZI, AGB string
	FunctionTitle string
	VerifiedBy    string
}

// Registry reads and writes identities.
type Registry struct {
	db    store.Querier
	clock clock.Clock
	rand  io.Reader
}

// NewRegistry returns a Registry on db.
func NewRegistry(db *store.DB, c clock.Clock, r io.Reader) *Registry {
	if r == nil {
		r = rand.Reader
	}
	return &Registry{db: db, clock: c, rand: r}
}

// In returns the registry working inside q, a caller's transaction, so
// that an account, its roles and its links are written together with the
// caller's own rows and log line, or not at all.
func (r *Registry) In(q store.Querier) *Registry {
	c := *r
	c.db = q
	return &c
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewID returns a fresh random identifier with a readable prefix.
func (r *Registry) NewID(prefix string) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r.rand, b[:]); err != nil {
		return "", fmt.Errorf("new id: %w", err)
	}
	return prefix + strings.ToLower(idEncoding.EncodeToString(b[:])), nil
}

// CreateTenant registers a care organisation; an empty ID gets a fresh one.
func (r *Registry) CreateTenant(ctx context.Context, t Tenant) (Tenant, error) {
	if strings.TrimSpace(t.Name) == "" {
		return Tenant{}, errors.New("create tenant: name is required")
	}
	if t.ID == "" {
		id, err := r.NewID("t-")
		if err != nil {
			return Tenant{}, err
		}
		t.ID = id
	}
	_, err := r.db.ExecContext(ctx, `INSERT INTO tenants (id, name, ura, agb, created_at) VALUES ($1, $2, $3, $4, $5)`,
		t.ID, t.Name, t.URA, t.AGB, clock.Micros(r.clock.Now()))
	if store.IsUniqueViolation(err) {
		return Tenant{}, fmt.Errorf("create tenant %s: %w", t.ID, ErrExists)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("create tenant: %w", err)
	}
	return t, nil
}

// Tenant returns the tenant with id.
func (r *Registry) Tenant(ctx context.Context, id string) (Tenant, error) {
	var t Tenant
	err := r.db.Stmt(`SELECT id, name, ura, agb FROM tenants WHERE id = $1`).QueryRowContext(ctx, id).Scan(&t.ID, &t.Name, &t.URA, &t.AGB)
	if errors.Is(err, sql.ErrNoRows) {
		return Tenant{}, fmt.Errorf("tenant %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("tenant %s: %w", id, err)
	}
	return t, nil
}

// Tenants lists every tenant.
func (r *Registry) Tenants(ctx context.Context) ([]Tenant, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT id, name, ura, agb FROM tenants ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	var out []Tenant
	for rows.Next() {
		var t Tenant
		if err := rows.Scan(&t.ID, &t.Name, &t.URA, &t.AGB); err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// NormalizeUsername is the form user names are stored and compared in.
func NormalizeUsername(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// CreateAccount registers an account and returns it with its new id.
func (r *Registry) CreateAccount(ctx context.Context, a Account) (Account, error) {
	a.Username = NormalizeUsername(a.Username)
	if a.Username == "" || len(a.Username) > 128 {
		return Account{}, errors.New("create account: user name must be 1 to 128 characters")
	}
	switch a.Kind {
	case KindPerson, KindProfessional, KindAdmin:
		if a.TenantID == "" {
			return Account{}, fmt.Errorf("create account: a %s belongs to a tenant", a.Kind)
		}
	case KindOperator:
		if a.TenantID != "" {
			return Account{}, errors.New("create account: operators belong to the platform, not a tenant")
		}
	default:
		return Account{}, fmt.Errorf("create account: unknown kind %q", a.Kind)
	}
	if a.RegistrationMethod < 1 || a.RegistrationMethod > 4 {
		return Account{}, errors.New("create account: registration method must be 1..4 (NEN 7512 Tabel 5)")
	}
	id, err := r.NewID("a-")
	if err != nil {
		return Account{}, err
	}
	status := "active"
	if a.Pending {
		status = "pending"
	}
	a.ID, a.Active, a.CreatedAt = id, !a.Pending, r.clock.Now()
	_, err = r.db.ExecContext(ctx, `INSERT INTO accounts
		(id, tenant_id, kind, username, display_name, email, birth_date, registration_method, verified_by, status, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		a.ID, nullable(a.TenantID), a.Kind, a.Username, a.DisplayName, a.Email, a.BirthDate,
		int64(a.RegistrationMethod), a.VerifiedBy, status, clock.Micros(a.CreatedAt))
	if store.IsUniqueViolation(err) {
		return Account{}, fmt.Errorf("create account: %w", ErrExists)
	}
	if err != nil {
		return Account{}, fmt.Errorf("create account: %w", err)
	}
	return a, nil
}

const accountCols = `id, COALESCE(tenant_id, ''), kind, username, display_name, email, birth_date, registration_method, verified_by, status, created_at`

func scanAccount(row interface{ Scan(...any) error }) (Account, error) {
	var a Account
	var status string
	var method, created int64
	err := row.Scan(&a.ID, &a.TenantID, &a.Kind, &a.Username, &a.DisplayName, &a.Email, &a.BirthDate, &method, &a.VerifiedBy, &status, &created)
	if err != nil {
		return Account{}, err
	}
	a.RegistrationMethod, a.Active, a.Pending, a.CreatedAt = int(method), status == "active", status == "pending", clock.FromMicros(created)
	return a, nil
}

// Account returns the account with id.
func (r *Registry) Account(ctx context.Context, id string) (Account, error) {
	a, err := scanAccount(r.db.Stmt(`SELECT `+accountCols+` FROM accounts WHERE id = $1`).QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("account: %w", ErrNotFound)
	}
	if err != nil {
		return Account{}, fmt.Errorf("account: %w", err)
	}
	return a, nil
}

// AccountByUsername returns the account with the given user name.
func (r *Registry) AccountByUsername(ctx context.Context, username string) (Account, error) {
	a, err := scanAccount(r.db.Stmt(`SELECT `+accountCols+` FROM accounts WHERE username = $1`).QueryRowContext(ctx, NormalizeUsername(username)))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("account: %w", ErrNotFound)
	}
	if err != nil {
		return Account{}, fmt.Errorf("account: %w", err)
	}
	return a, nil
}

// Deactivate marks an account inactive. The row, its id and its user name
// stay, so neither is ever reissued (ID-1). Revoking what the account holds
// (sessions, tokens) is the caller's next step (ID-5).
func (r *Registry) Deactivate(ctx context.Context, id string) error {
	res, err := r.db.ExecContext(ctx, `UPDATE accounts SET status = 'deactivated', deactivated_at = $1 WHERE id = $2 AND status IN ('active', 'pending')`,
		clock.Micros(r.clock.Now()), id)
	if err != nil {
		return fmt.Errorf("deactivate account: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("deactivate account: %w", ErrNotFound)
	}
	return nil
}

// Activate makes an invited (pending) account active; it fails with
// ErrNotFound for any other account, so a deactivated one stays so.
func (r *Registry) Activate(ctx context.Context, id string) error {
	res, err := r.db.ExecContext(ctx, `UPDATE accounts SET status = 'active' WHERE id = $1 AND status = 'pending'`, id)
	if err != nil {
		return fmt.Errorf("activate account: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("activate account: %w", ErrNotFound)
	}
	return nil
}

// TenantAccounts lists the ids of a tenant's accounts that are active or
// pending (for a tenant's deactivation).
func (r *Registry) TenantAccounts(ctx context.Context, tenantID string) ([]string, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT id FROM accounts WHERE tenant_id = $1 AND status IN ('active', 'pending') ORDER BY id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("tenant accounts: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("tenant accounts: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// RegisterProfessional records the verified professional data of an account.
func (r *Registry) RegisterProfessional(ctx context.Context, p Professional) error {
	_, err := r.db.ExecContext(ctx, `INSERT INTO professionals (account_id, big, uzi, agb, function_title, verified_by, verified_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		p.AccountID, p.BIG, p.UZI, p.AGB, p.FunctionTitle, p.VerifiedBy, clock.Micros(r.clock.Now()))
	if err != nil {
		return fmt.Errorf("register professional: %w", err)
	}
	return nil
}

// GrantRole gives an account a role. (Approval of role grants, AZ-7, sits on
// top of this in the governance flow.)
func (r *Registry) GrantRole(ctx context.Context, accountID, role, grantedBy string) error {
	// ON CONFLICT rather than catching the unique violation: in a
	// PostgreSQL transaction (a four-eyes approval) a violation would abort
	// the caller's transaction.
	_, err := r.db.ExecContext(ctx, `INSERT INTO account_roles (account_id, role, granted_by, granted_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, accountID, role, grantedBy, clock.Micros(r.clock.Now()))
	if err != nil {
		return fmt.Errorf("grant role: %w", err)
	}
	return nil
}

// RevokeRoles removes every role grant of an account (ID-5: a leaver keeps
// no role). It returns the roles that were held, for the caller's log.
func (r *Registry) RevokeRoles(ctx context.Context, accountID string) ([]string, error) {
	held, err := r.Roles(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("revoke roles: %w", err)
	}
	if _, err := r.db.ExecContext(ctx, `DELETE FROM account_roles WHERE account_id = $1`, accountID); err != nil {
		return nil, fmt.Errorf("revoke roles: %w", err)
	}
	return held, nil
}

// RevokeRole removes one role grant of an account (a review's decision,
// GOV-2); ErrNotFound when the account does not hold it.
func (r *Registry) RevokeRole(ctx context.Context, accountID, role string) error {
	res, err := r.db.ExecContext(ctx, `DELETE FROM account_roles WHERE account_id = $1 AND role = $2`, accountID, role)
	if err != nil {
		return fmt.Errorf("revoke role: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("revoke role %s: %w", role, ErrNotFound)
	}
	return nil
}

// Roles lists the roles an account holds, sorted.
func (r *Registry) Roles(ctx context.Context, accountID string) ([]string, error) {
	rows, err := r.db.Stmt(`SELECT role FROM account_roles WHERE account_id = $1 ORDER BY role`).QueryContext(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("roles: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("roles: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// CreatePatient registers patient id in a tenant, inside the caller's
// transaction. bsnIndex is the keyed hash of the BSN (never the BSN itself);
// nil when the patient has none (ID-4).
func (r *Registry) CreatePatient(ctx context.Context, q store.Querier, id, tenantID string, bsnIndex []byte) (string, error) {
	var idx any
	if bsnIndex != nil {
		idx = bsnIndex
	}
	_, err := q.ExecContext(ctx, `INSERT INTO patients (id, tenant_id, bsn_index, created_at) VALUES ($1, $2, $3, $4)`,
		id, tenantID, idx, clock.Micros(r.clock.Now()))
	if store.IsUniqueViolation(err) {
		return "", fmt.Errorf("create patient: %w", ErrExists)
	}
	if err != nil {
		return "", fmt.Errorf("create patient: %w", err)
	}
	return id, nil
}

// PatientByBSNIndex finds a patient of a tenant by the blind index of a BSN.
func (r *Registry) PatientByBSNIndex(ctx context.Context, tenantID string, bsnIndex []byte) (string, error) {
	var id string
	err := r.db.QueryRowContext(ctx, `SELECT id FROM patients WHERE tenant_id = $1 AND bsn_index = $2`, tenantID, bsnIndex).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("patient: %w", ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("patient: %w", err)
	}
	return id, nil
}

// LinkPerson makes patientID the person account's own record (AZ-4).
func (r *Registry) LinkPerson(ctx context.Context, accountID, patientID string) error {
	_, err := r.db.ExecContext(ctx, `INSERT INTO person_patients (account_id, patient_id) VALUES ($1, $2)`, accountID, patientID)
	if err != nil && !store.IsUniqueViolation(err) {
		return fmt.Errorf("link person: %w", err)
	}
	return nil
}

// PatientPerson returns the person account whose own record patientID
// is (AZ-4), so that pages can name the patient by the name the account was
// registered under without reading the record; ErrNotFound when the patient
// has no account. With several (not made by the pages), the oldest.
func (r *Registry) PatientPerson(ctx context.Context, patientID string) (Account, error) {
	a, err := scanAccount(r.db.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = (
		SELECT pp.account_id FROM person_patients pp JOIN accounts a ON a.id = pp.account_id
		WHERE pp.patient_id = $1 ORDER BY a.created_at, a.id LIMIT 1)`, patientID))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("patient's account: %w", ErrNotFound)
	}
	if err != nil {
		return Account{}, fmt.Errorf("patient's account: %w", err)
	}
	return a, nil
}

// PersonPatients lists the patient records that are the person's own.
func (r *Registry) PersonPatients(ctx context.Context, accountID string) ([]string, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT patient_id FROM person_patients WHERE account_id = $1 ORDER BY patient_id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("person patients: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("person patients: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
