// Package onboard takes an empty installation to a working care
// organisation: tenants are created and deactivated, and accounts are
// invited with a one-time activation code (ID-6). An invited account is
// pending and cannot log on until its holder has activated it: the printed
// code plus a secret that came by a second channel (mail, SMS or a sealed
// letter), a password that passes the policy (AUTH-5) and an enrolled,
// confirmed authenticator app. No password is ever generated for anyone.
// Every step is an event in the access log (LOG-1).
package onboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/nlid"
	"github.com/zorgkluis/zorgkluis/internal/password"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// DefaultTTL is how long an invitation stays valid (ID-6).
const DefaultTTL = 72 * time.Hour

// Throttle: this many failed activation attempts from one source within
// the window, and further attempts are refused until it has passed; this
// many wrong secrets or TOTP codes on one code, and the code is revoked.
const (
	maxSourceFailures = 10
	failureWindow     = 15 * time.Minute
	maxCodeFailures   = 5
)

// Delivery channels of the second-channel secret.
const (
	DeliverEmail  = "email"
	DeliverSMS    = "sms"
	DeliverLetter = "letter"
)

// Errors. ErrInvalidCode is the one answer for an unknown, expired, used
// or revoked code and a wrong secret, so none can be told apart.
var (
	ErrInvalidCode = errors.New("the activation code is not valid (wrong, expired or already used)")
	ErrThrottled   = errors.New("too many failed activation attempts; try again later")
	ErrDuplicate   = errors.New("already registered")
	ErrTOTP        = errors.New("the authenticator code is not correct")
	// ErrRepresentation: the representation the invitation carries no
	// longer holds; an application admin must invite again.
	ErrRepresentation = errors.New("the representation this invitation carries no longer holds; ask the organisation for a new invitation")
)

// InputError names the field of a request that is wrong.
type InputError struct{ Field, Problem string }

func (e *InputError) Error() string { return e.Field + ": " + e.Problem }

func bad(field, problem string) error { return &InputError{Field: field, Problem: problem} }

// Config wires a Service.
type Config struct {
	DB    *store.DB
	IDs   *identity.Registry
	Authn *authn.Service
	Audit *audit.Log
	// Access records a representative's representation on activation
	// (AZ-4); nil refuses representatives' invitations.
	Access *access.Decider
	Clock  clock.Clock
	Rand   io.Reader
	// Sender delivers the secret by mail or SMS; nil leaves only letters.
	Sender authn.Sender
	// LetterDir receives the sealed letters (files of mode 0600).
	LetterDir string
	// TTL of an invitation; DefaultTTL when zero.
	TTL time.Duration
	// BaseURL of the server, for the activation link.
	BaseURL string
}

// Service creates tenants and invitations and activates accounts.
type Service struct{ c Config }

// New returns a Service.
func New(c Config) *Service {
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	return &Service{c: c}
}

// Tenant is a tenant with its lifecycle state.
type Tenant struct {
	identity.Tenant
	Active bool
}

// log appends one event built on the actor's template (who, from where).
func (s *Service) log(ctx context.Context, actor audit.Event, e func(*audit.Event)) error {
	ev := actor
	ev.Outcome = audit.OutcomeSuccess
	e(&ev)
	if _, err := s.c.Audit.Append(ctx, ev); err != nil {
		return fmt.Errorf("access log: %w", err)
	}
	return nil
}

// CreateTenant registers a care organisation with a valid URA (and AGB
// when given); a URA that is registered already is refused and nothing is
// created. actor is the event template of whoever does it.
func (s *Service) CreateTenant(ctx context.Context, actor audit.Event, name, ura, agb string) (identity.Tenant, error) {
	name, ura, agb = strings.TrimSpace(name), strings.TrimSpace(ura), strings.TrimSpace(agb)
	switch {
	case name == "" || len(name) > 200 || !oneLine(name):
		return identity.Tenant{}, bad("name", "required, one line of at most 200 characters")
	case !nlid.ValidURA(ura):
		return identity.Tenant{}, bad("ura", "a URA is 8 digits")
	case agb != "" && !nlid.ValidAGB(agb):
		return identity.Tenant{}, bad("agb", "an AGB code is 8 digits")
	}
	existing, err := s.c.IDs.Tenants(ctx)
	if err != nil {
		return identity.Tenant{}, err
	}
	for _, t := range existing {
		if t.URA == ura {
			return identity.Tenant{}, fmt.Errorf("URA %s: %w (tenant %s)", ura, ErrDuplicate, t.ID)
		}
	}
	id, err := s.c.IDs.NewID("t-")
	if err != nil {
		return identity.Tenant{}, err
	}
	// The lifecycle row (its unique URA settles a race of two creates), the
	// tenant and the log line commit together or not at all (LOG-3).
	var t identity.Tenant
	err = s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO onboard_tenants (tenant_id, ura, status, created_by, created_at) VALUES ($1, $2, 'active', $3, $4)`,
			id, ura, actor.UserID, clock.Micros(s.c.Clock.Now()))
		if store.IsUniqueViolation(err) {
			return fmt.Errorf("URA %s: %w", ura, ErrDuplicate)
		}
		if err != nil {
			return fmt.Errorf("create tenant: %w", err)
		}
		if t, err = s.c.IDs.In(tx).CreateTenant(ctx, identity.Tenant{ID: id, Name: name, URA: ura, AGB: agb}); err != nil {
			return fmt.Errorf("create tenant: %w", err)
		}
		ev := actor
		ev.Outcome, ev.Action, ev.TenantID, ev.Organisation, ev.Resources = audit.OutcomeSuccess, audit.ActionCreate, id, name, []string{"Organization/" + id}
		ev.Reason = "tenant created (URA " + ura + ")"
		if _, err := s.c.Audit.AppendIn(ctx, tx, ev); err != nil {
			return fmt.Errorf("create tenant: access log: %w; nothing was created", err)
		}
		return nil
	})
	if err != nil {
		return identity.Tenant{}, err
	}
	return t, nil
}

// Tenants lists the tenants with their state.
func (s *Service) Tenants(ctx context.Context) ([]Tenant, error) {
	ts, err := s.c.IDs.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.c.DB.QueryContext(ctx, `SELECT tenant_id FROM onboard_tenants WHERE status = 'deactivated'`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	off := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		off[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	out := make([]Tenant, len(ts))
	for i, t := range ts {
		out[i] = Tenant{Tenant: t, Active: !off[t.ID]}
	}
	return out, nil
}

const errDeactivated = "the tenant is deactivated"

func (s *Service) tenantActive(ctx context.Context, id string) (identity.Tenant, error) {
	t, err := s.c.IDs.Tenant(ctx, id)
	if errors.Is(err, identity.ErrNotFound) {
		return identity.Tenant{}, bad("tenant", "no such tenant")
	}
	if err != nil {
		return identity.Tenant{}, err
	}
	var status string
	err = s.c.DB.QueryRowContext(ctx, `SELECT status FROM onboard_tenants WHERE tenant_id = $1`, id).Scan(&status)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return identity.Tenant{}, fmt.Errorf("tenant %s: %w", id, err)
	}
	if status == "deactivated" {
		return identity.Tenant{}, bad("tenant", errDeactivated)
	}
	return t, nil
}

// DeactivateTenant ends a tenant: every account of it is deactivated with
// all it holds revoked (ID-5), open invitations are revoked, and no new
// one can be made. Ids stay taken (ID-1).
func (s *Service) DeactivateTenant(ctx context.Context, actor audit.Event, id string) error {
	t, err := s.tenantActive(ctx, id)
	var ie *InputError
	if errors.As(err, &ie) && ie.Problem == errDeactivated {
		// A deactivation that stopped half-way (one account could not be
		// deactivated) is finished by running it again.
		if accounts, aerr := s.c.IDs.TenantAccounts(ctx, id); aerr != nil || len(accounts) == 0 {
			return err
		}
		t, err = s.c.IDs.Tenant(ctx, id)
	}
	if err != nil {
		return err
	}
	now := clock.Micros(s.c.Clock.Now())
	err = s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE onboard_tenants SET status = 'deactivated', deactivated_at = $1 WHERE tenant_id = $2 AND status = 'active'`, now, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 { // a tenant from before onboarding (demo, synth), or a second run
			if _, err := tx.ExecContext(ctx, `INSERT INTO onboard_tenants (tenant_id, ura, status, created_by, created_at, deactivated_at)
				VALUES ($1, $2, 'deactivated', $3, $4, $4) ON CONFLICT (tenant_id) DO NOTHING`,
				id, "legacy:"+id, actor.UserID, now); err != nil {
				return err
			}
		}
		if _, err = tx.ExecContext(ctx, `UPDATE onboard_invitations SET state = 'revoked' WHERE tenant_id = $1 AND state IN ('issued', 'enrolling')`, id); err != nil {
			return err
		}
		ev := actor
		ev.Outcome, ev.Action, ev.TenantID, ev.Organisation, ev.Resources = audit.OutcomeSuccess, audit.ActionDelete, t.ID, t.Name, []string{"Organization/" + t.ID}
		ev.Reason = "tenant deactivated"
		if _, err := s.c.Audit.AppendIn(ctx, tx, ev); err != nil {
			return fmt.Errorf("access log: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("deactivate tenant: %w", err)
	}
	// authn's deactivation revokes each account's sessions and factors in
	// its own transaction; the tenant is closed to new invitations first,
	// and a run that fails here is finished by running it again.
	accounts, err := s.c.IDs.TenantAccounts(ctx, id)
	if err != nil {
		return err
	}
	for _, a := range accounts {
		if err := s.c.Authn.Deactivate(ctx, a); err != nil && !errors.Is(err, identity.ErrNotFound) {
			return fmt.Errorf("deactivate tenant: account %s: %w; run the deactivation again to finish it", a, err)
		}
	}
	return nil
}

// Invite describes the account to create and how its secret travels.
type Invite struct {
	TenantID    string
	Kind        string // identity.KindAdmin, KindProfessional or KindPerson
	Name, Email string
	// Username is the log-on name; the e-mail address when empty.
	Username  string
	Phone     string // for DeliverSMS
	BirthDate string // persons: YYYY-MM-DD
	// RegistrationMethod is NEN 7512 Tabel 5 registratiewijze 1..4 and
	// VerifiedBy who verified the identity (ID-2); the assurance level of
	// the account's sessions follows from it (AUTH-6).
	RegistrationMethod int
	VerifiedBy         string
	Professional       *identity.Professional // professionals: BIG, UZI, AGB, function
	PatientID          string                 // persons: the record the account is linked to
	// Represents is, for a representative (a person without a record of
	// their own), the representation an application admin checked with
	// access.CheckRepresentation (patient, kind, the child's birth date for
	// a parent); it is recorded when the account is activated (AZ-4).
	Represents *access.Representation
	Deliver    string // DeliverEmail, DeliverSMS or DeliverLetter
	// Role is granted at once, by the actor: only for the first
	// application admin and security officer of a tenant, whom the operator
	// creates (with nobody in the tenant yet, the operator's invitation is
	// the approval): refused once an active account of the tenant holds
	// the role. Every other role goes through access's rights with a
	// second person's approval (AZ-7): the security officer approves what
	// the single admin requests.
	Role string
}

// Invitation is what the inviter hands over: the code (or the link that
// holds it). The secret went by the second channel; Letter is the sealed
// letter's file when it went by letter.
type Invitation struct {
	ID, AccountID, Username string
	Code, Link              string
	Expires                 time.Time
	Letter                  string
}

var codeEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newCode returns 160 random bits (>= 128, ID-6) as base32 in groups of 4.
func (s *Service) newCode() (string, error) {
	var b [20]byte
	if _, err := io.ReadFull(s.c.Rand, b[:]); err != nil {
		return "", fmt.Errorf("activation code: %w", err)
	}
	raw := codeEncoding.EncodeToString(b[:])
	var parts []string
	for i := 0; i < len(raw); i += 4 {
		parts = append(parts, raw[i:min(i+4, len(raw))])
	}
	return strings.Join(parts, "-"), nil
}

// normalize is the form codes are hashed in: upper case, no separators.
func normalize(code string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, code)
}

func hash(purpose, code string) []byte {
	h := sha256.Sum256([]byte("zorgkluis activation " + purpose + "\x00" + normalize(code)))
	return h[:]
}

// CheckInvite validates an invitation without creating anything (an
// import's dry run); the returned Invite is the normalised one.
func (s *Service) CheckInvite(ctx context.Context, in Invite) (Invite, error) {
	_, in, err := s.checkInvite(ctx, in)
	return in, err
}

func (s *Service) checkInvite(ctx context.Context, in Invite) (identity.Tenant, Invite, error) {
	t, err := s.tenantActive(ctx, in.TenantID)
	if err != nil {
		return identity.Tenant{}, in, err
	}
	var function string
	if in.Professional != nil {
		function = in.Professional.FunctionTitle
	}
	// Text is checked as given, before any of it reaches the database, which
	// would refuse a NUL (PostgreSQL) or store what no one can read.
	for field, v := range map[string]string{"name": in.Name, "email": in.Email, "username": in.Username, "verified_by": in.VerifiedBy, "function": function} {
		if !oneLine(v) {
			return identity.Tenant{}, in, bad(field, "text of one line, valid UTF-8 without control characters")
		}
	}
	in.Name, in.Email, in.Phone = strings.TrimSpace(in.Name), strings.TrimSpace(in.Email), strings.TrimSpace(in.Phone)
	in.Username = identity.NormalizeUsername(in.Username)
	in.VerifiedBy, in.BirthDate = strings.TrimSpace(in.VerifiedBy), strings.TrimSpace(in.BirthDate)
	rep := in.Represents
	switch {
	case in.Kind != identity.KindAdmin && in.Kind != identity.KindProfessional && in.Kind != identity.KindPerson:
		return identity.Tenant{}, in, bad("kind", "admin, professional or person")
	case in.Name == "" || len(in.Name) > 200 || strings.ContainsAny(in.Name, "\r\n"):
		return identity.Tenant{}, in, bad("name", "required, one line of at most 200 characters")
	case !strings.Contains(in.Email, "@") || len(in.Email) > 128 || strings.ContainsAny(in.Email, " \r\n"):
		return identity.Tenant{}, in, bad("email", "a valid e-mail address is required (it is the user name)")
	case len(in.Username) > 128 || strings.ContainsAny(in.Username, " \t\r\n"):
		return identity.Tenant{}, in, bad("username", "at most 128 characters, no spaces")
	case in.RegistrationMethod < 1 || in.RegistrationMethod > 4:
		return identity.Tenant{}, in, bad("registration_method", "registratiewijze 1..4 (NEN 7512 Tabel 5)")
	case len(in.VerifiedBy) > 200 || strings.ContainsAny(in.VerifiedBy, "\r\n"):
		return identity.Tenant{}, in, bad("verified_by", "one line of at most 200 characters")
	case in.BirthDate != "" && !validDate(in.BirthDate):
		return identity.Tenant{}, in, bad("birth_date", "a date as YYYY-MM-DD")
	case in.Phone != "" && !validPhone(in.Phone):
		return identity.Tenant{}, in, bad("phone", "a telephone number in international form, such as +31612345678")
	case in.Kind == identity.KindPerson && (in.PatientID == "") == (rep == nil):
		return identity.Tenant{}, in, bad("patient", "a person's account is linked to their own record, or is a representative's without one")
	case rep != nil && in.Kind != identity.KindPerson:
		return identity.Tenant{}, in, bad("kind", "a representative has a person account")
	case in.Kind != identity.KindPerson && in.PatientID != "":
		return identity.Tenant{}, in, bad("patient", "only a person's account is linked to a record")
	case in.Role != "" && (in.Kind != identity.KindAdmin || (in.Role != string(access.RoleAppAdmin) && in.Role != string(access.RoleSecurityOfficer))):
		return identity.Tenant{}, in, bad("role", "only a tenant's first administrators get a role with the invitation: application-admin or security-officer")
	case in.Deliver == DeliverSMS && in.Phone == "":
		return identity.Tenant{}, in, bad("phone", "required for delivery by SMS")
	}
	if p := in.Professional; p != nil {
		switch {
		case p.BIG != "" && !nlid.ValidBIG(p.BIG):
			return identity.Tenant{}, in, bad("big", "a BIG number is 11 digits")
		case p.UZI != "" && !nlid.ValidUZI(p.UZI):
			return identity.Tenant{}, in, bad("uzi", "a UZI number is 9 digits")
		case p.AGB != "" && !nlid.ValidAGB(p.AGB):
			return identity.Tenant{}, in, bad("agb", "an AGB code is 8 digits")
		case len(p.FunctionTitle) > 200:
			return identity.Tenant{}, in, bad("function", "at most 200 characters")
		}
	}
	if rep != nil {
		// The admin's decision was made by access.CheckRepresentation; here
		// only that it is one of this tenant's and complete.
		switch {
		case s.c.Access == nil:
			return identity.Tenant{}, in, bad("representation", "representatives cannot be invited here")
		case rep.TenantID != t.ID || rep.RecordedBy == "" || rep.PatientID == "" || rep.Kind == "":
			return identity.Tenant{}, in, bad("representation", "the representation must be checked by an application admin of this tenant")
		}
	}
	if err := s.checkDelivery(in.Deliver); err != nil {
		return identity.Tenant{}, in, err
	}
	if in.Role != "" {
		if err := firstHolder(ctx, s.c.DB, t.ID, in.Role); err != nil {
			return identity.Tenant{}, in, err
		}
	}
	if patient := in.PatientID; patient != "" || rep != nil {
		if rep != nil {
			patient = rep.PatientID
		}
		var tenant string
		err := s.c.DB.QueryRowContext(ctx, `SELECT tenant_id FROM patients WHERE id = $1`, patient).Scan(&tenant)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return identity.Tenant{}, in, fmt.Errorf("invitation: %w", err)
		}
		if err != nil || tenant != t.ID {
			return identity.Tenant{}, in, bad("patient", "no such patient in this tenant")
		}
	}
	if in.Username == "" {
		in.Username = in.Email
	}
	if _, err := s.c.IDs.AccountByUsername(ctx, in.Username); err == nil {
		return identity.Tenant{}, in, bad("email", "this user name is taken")
	} else if !errors.Is(err, identity.ErrNotFound) {
		return identity.Tenant{}, in, err
	}
	return t, in, nil
}

// firstHolder refuses a role with the invitation once an active account
// of the tenant holds it: the operator's invitation stands in for the
// approval only while nobody of the tenant is there to give it. After
// that every role, also a second admin's, is a right request that another
// person approves (AZ-7), with an end (AZ-8); without this the operator
// could give an account of their own a tenant's privileged role at any
// time, unapproved and unending.
func firstHolder(ctx context.Context, q store.Querier, tenantID, role string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM account_roles ar JOIN accounts a ON a.id = ar.account_id
		WHERE a.tenant_id = $1 AND ar.role = $2 AND a.status = 'active' LIMIT 1`, tenantID, role).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("invitation: %w", err)
	}
	return bad("role", "the tenant has an active "+role+" already: a further one gets the role through a right request and a second person's approval (AZ-7)")
}

// lockTenant checks again, inside the invitation's transaction, that the
// tenant is active. The no-op update takes the lifecycle row's lock, so a
// deactivation running at the same time either waits for this transaction
// (and then revokes its invitation and deactivates its account) or has
// committed and this one is refused: no invitation outlives its tenant.
// (SQLite serialises the transactions anyway.)
func lockTenant(ctx context.Context, tx *store.Tx, tenantID string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE onboard_tenants SET status = status WHERE tenant_id = $1`, tenantID); err != nil {
		return fmt.Errorf("invitation: %w", err)
	}
	var status string
	err := tx.QueryRowContext(ctx, `SELECT status FROM onboard_tenants WHERE tenant_id = $1`, tenantID).Scan(&status)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("invitation: %w", err)
	}
	if status == "deactivated" {
		return bad("tenant", errDeactivated)
	}
	return nil
}

// oneLine reports whether s is valid UTF-8 without control characters
// (line breaks included).
func oneLine(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

func validDate(s string) bool {
	d, err := time.Parse(time.DateOnly, s)
	return err == nil && d.Year() >= 1900
}

// validPhone accepts E.164: a plus and 8 to 15 digits.
func validPhone(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' {
		return false
	}
	for _, r := range s[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// BatchError is the failure of the invitation at Index of a batch; none of
// the batch was created.
type BatchError struct {
	Index int
	Err   error
}

func (e *BatchError) Error() string { return fmt.Sprintf("invitation %d: %v", e.Index+1, e.Err) }
func (e *BatchError) Unwrap() error { return e.Err }

// CreateInvitation creates a pending account and its invitation; the
// secret goes by the second channel, the code is returned.
func (s *Service) CreateInvitation(ctx context.Context, actor audit.Event, in Invite) (Invitation, error) {
	invs, err := s.CreateInvitations(ctx, actor, []Invite{in}, nil)
	var be *BatchError
	if errors.As(err, &be) {
		return Invitation{}, be.Err
	}
	if err != nil {
		return Invitation{}, err
	}
	return invs[0], nil
}

type pendingSecret struct {
	in     Invite
	t      identity.Tenant
	acc    identity.Account
	secret string
}

// CreateInvitations creates the invitations all or none (an import): the
// accounts, their professional data and first roles, the invitations and
// their log lines are written in one transaction. The secrets go out after
// it has committed (a slow mail server must not hold the database's write
// lock); when one cannot be sent, every invitation of the batch is
// withdrawn again (codes revoked, the never-activated accounts
// deactivated, their letters removed) and the error says which failed.
//
// progress, when not nil, is told how far each step ("written", "sent")
// is, for a terminal.
func (s *Service) CreateInvitations(ctx context.Context, actor audit.Event, ins []Invite, progress func(step string, done, total int)) ([]Invitation, error) {
	if progress == nil {
		progress = func(string, int, int) {}
	}
	type checked struct {
		t  identity.Tenant
		in Invite
	}
	var cs []checked
	for i, in := range ins {
		t, in, err := s.checkInvite(ctx, in)
		if err == nil && in.Represents != nil && in.Represents.RecordedBy != actor.UserID {
			err = bad("representation", "the representation must be checked by the admin who invites")
		}
		if err != nil {
			return nil, &BatchError{Index: i, Err: err}
		}
		cs = append(cs, checked{t, in})
	}
	var out []Invitation
	var secrets []pendingSecret
	err := s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		out, secrets = out[:0], secrets[:0]
		for i, c := range cs {
			inv, sec, err := s.createIn(ctx, tx, actor, c.t, c.in)
			if err != nil {
				return &BatchError{Index: i, Err: err}
			}
			out, secrets = append(out, inv), append(secrets, sec)
			progress("written", i+1, len(cs))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		letter, err := s.deliver(ctx, secrets[i], out[i])
		if err == nil {
			out[i].Letter = letter
			progress("sent", i+1, len(out))
			continue
		}
		err = fmt.Errorf("deliver the secret: %w; nothing was activated", err)
		for _, inv := range out {
			if werr := s.Withdraw(ctx, actor, inv.AccountID); werr != nil {
				return nil, &BatchError{Index: i, Err: fmt.Errorf("%w; and withdrawing %s failed: %v", err, inv.Username, werr)}
			}
			if inv.Letter != "" {
				_ = os.Remove(inv.Letter)
			}
		}
		return nil, &BatchError{Index: i, Err: err}
	}
	return out, nil
}

// createIn writes one invitation inside tx; the secret is returned for
// delivery after the commit.
func (s *Service) createIn(ctx context.Context, tx *store.Tx, actor audit.Event, t identity.Tenant, in Invite) (Invitation, pendingSecret, error) {
	code, err := s.newCode()
	if err != nil {
		return Invitation{}, pendingSecret{}, err
	}
	secret, err := s.newCode()
	if err != nil {
		return Invitation{}, pendingSecret{}, err
	}
	invID, err := s.c.IDs.NewID("inv-")
	if err != nil {
		return Invitation{}, pendingSecret{}, err
	}
	if err := lockTenant(ctx, tx, t.ID); err != nil {
		return Invitation{}, pendingSecret{}, err
	}
	if in.Role != "" {
		if err := firstHolder(ctx, tx, t.ID, in.Role); err != nil {
			return Invitation{}, pendingSecret{}, err
		}
	}
	ids := s.c.IDs.In(tx)
	acc, err := ids.CreateAccount(ctx, identity.Account{TenantID: t.ID, Kind: in.Kind, Username: in.Username, DisplayName: in.Name,
		Email: in.Email, BirthDate: in.BirthDate, RegistrationMethod: in.RegistrationMethod, VerifiedBy: in.VerifiedBy, Pending: true})
	if errors.Is(err, identity.ErrExists) {
		return Invitation{}, pendingSecret{}, bad("email", "this user name is taken")
	}
	if err != nil {
		return Invitation{}, pendingSecret{}, err
	}
	if in.Role != "" {
		if err := ids.GrantRole(ctx, acc.ID, in.Role, actor.UserID); err != nil {
			return Invitation{}, pendingSecret{}, err
		}
	}
	if in.Professional != nil {
		p := *in.Professional
		p.AccountID = acc.ID
		if p.VerifiedBy == "" {
			p.VerifiedBy = in.VerifiedBy
		}
		if err := ids.RegisterProfessional(ctx, p); err != nil {
			return Invitation{}, pendingSecret{}, err
		}
	}
	patient, repKind, repBirth := in.PatientID, "", ""
	what := string(in.Kind)
	if r := in.Represents; r != nil {
		patient, repKind, repBirth = r.PatientID, r.Kind, r.PatientBirthDate
		what = "representative's (" + r.Kind + ")"
	}
	now := s.c.Clock.Now()
	inv := Invitation{ID: invID, AccountID: acc.ID, Username: acc.Username, Code: code, Expires: now.Add(s.c.TTL)}
	inv.Link = strings.TrimRight(s.c.BaseURL, "/") + "/activate?code=" + code
	_, err = tx.ExecContext(ctx, `INSERT INTO onboard_invitations
		(id, tenant_id, account_id, code_hash, secret_hash, patient_id, represent_kind, represent_birth_date, state, created_by, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'issued', $9, $10, $11)`,
		invID, t.ID, acc.ID, hash("code", code), hash("secret", secret), patient, repKind, repBirth, actor.UserID, clock.Micros(now), clock.Micros(inv.Expires))
	if err != nil {
		return Invitation{}, pendingSecret{}, fmt.Errorf("invitation: %w", err)
	}
	ev := actor
	ev.Outcome, ev.Action, ev.TenantID, ev.Organisation = audit.OutcomeSuccess, audit.ActionCreate, t.ID, t.Name
	ev.Resources, ev.PatientID = []string{"Account/" + acc.ID}, patient
	ev.Reason = fmt.Sprintf("%s account invited (registratiewijze %d, verified by %q; secret by %s)", what, in.RegistrationMethod, in.VerifiedBy, in.Deliver)
	if _, err := s.c.Audit.AppendIn(ctx, tx, ev); err != nil {
		return Invitation{}, pendingSecret{}, fmt.Errorf("access log: %w", err)
	}
	return inv, pendingSecret{in: in, t: t, acc: acc, secret: secret}, nil
}

func (s *Service) checkDelivery(d string) error {
	switch d {
	case DeliverLetter:
		if s.c.LetterDir == "" {
			return bad("deliver", "no directory for sealed letters is configured")
		}
	case DeliverEmail, DeliverSMS:
		if s.c.Sender == nil {
			return bad("deliver", "no mail or SMS sender is configured (smtp-addr, sms-webhook); use a sealed letter")
		}
		if ms, ok := s.c.Sender.(authn.MultiSender); ok && !ms.Supports(d) {
			return bad("deliver", "no sender is configured for "+d)
		}
	default:
		return bad("deliver", "email, sms or letter")
	}
	return nil
}

// deliver sends the secret by the second channel; for a letter it returns
// the file written.
func (s *Service) deliver(ctx context.Context, p pendingSecret, inv Invitation) (string, error) {
	in, t, acc, secret := p.in, p.t, p.acc, p.secret
	body := fmt.Sprintf("Activeringsgeheim voor %s bij %s / Activation secret for %s at %s:\n\n    %s\n\n"+
		"Gebruik het samen met de activeringscode die u apart ontving, vóór %s.\n"+
		"Use it together with the activation code you received separately, before %s.\n",
		acc.DisplayName, t.Name, acc.DisplayName, t.Name, secret, inv.Expires.UTC().Format(time.RFC3339), inv.Expires.UTC().Format(time.RFC3339))
	switch in.Deliver {
	case DeliverEmail:
		return "", s.c.Sender.Send(ctx, authn.Message{Channel: authn.FactorEmail, To: acc.Email, Subject: "zorgkluis: activeringsgeheim / activation secret", Body: body})
	case DeliverSMS:
		return "", s.c.Sender.Send(ctx, authn.Message{Channel: authn.FactorSMS, To: in.Phone, Body: "zorgkluis: " + secret})
	}
	if err := os.MkdirAll(s.c.LetterDir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(s.c.LetterDir, "letter-"+inv.ID+".txt")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	letter := fmt.Sprintf("VERTROUWELIJK / CONFIDENTIAL\n\n%s\n%s\n\n%s", acc.DisplayName, acc.Email, body)
	if _, err := f.WriteString(letter); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}

// Enrolment is the authenticator app to set up: the otpauth:// URI (for a
// QR code) and its base32 secret.
type Enrolment struct {
	AccountID, Username string
	URI, Secret         string
}

type invitation struct {
	id, tenantID, accountID, patientID, state string
	representKind, representBirth, createdBy  string
	secretHash                                []byte
	failures, expires                         int64
}

// throttled counts the source's recent failures.
func (s *Service) throttled(ctx context.Context, source string) (bool, error) {
	var n int64
	since := clock.Micros(s.c.Clock.Now().Add(-failureWindow))
	if err := s.c.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM onboard_attempts WHERE source = $1 AND at > $2`, source, since).Scan(&n); err != nil {
		return false, fmt.Errorf("activation throttle: %w", err)
	}
	return n >= maxSourceFailures, nil
}

// fail records and logs a failed attempt and returns err.
func (s *Service) fail(ctx context.Context, source, step string, inv *invitation, err error) error {
	// A throttled source is not counted again: its rows stay bounded by
	// the throttle, and rows older than the window are pruned as it fails.
	if !errors.Is(err, ErrThrottled) {
		now := s.c.Clock.Now()
		if _, derr := s.c.DB.ExecContext(ctx, `DELETE FROM onboard_attempts WHERE source = $1 AND at <= $2`, source, clock.Micros(now.Add(-failureWindow))); derr != nil {
			return fmt.Errorf("activation: %w", derr)
		}
		if _, derr := s.c.DB.ExecContext(ctx, `INSERT INTO onboard_attempts (source, at) VALUES ($1, $2)`, source, clock.Micros(now)); derr != nil {
			return fmt.Errorf("activation: %w", derr)
		}
	}
	ev := audit.Event{UserID: "anonymous", SourceAddr: source, SourceApp: "zorgkluis activation"}
	if inv != nil {
		ev.UserID, ev.TenantID, ev.Resources = inv.accountID, inv.tenantID, []string{"Account/" + inv.accountID}
		// Counted in the database, not from what find read: parallel
		// wrong guesses each count, and a state another request changed
		// meanwhile (used, revoked) is never written back to an open one.
		if _, derr := s.c.DB.ExecContext(ctx, `UPDATE onboard_invitations SET failures = failures + 1,
			state = CASE WHEN failures + 1 >= $1 AND state IN ('issued', 'enrolling') THEN 'revoked' ELSE state END WHERE id = $2`,
			maxCodeFailures, inv.id); derr != nil {
			return fmt.Errorf("activation: %w", derr)
		}
	}
	if lerr := s.log(ctx, ev, func(e *audit.Event) {
		e.Action, e.Outcome, e.Query, e.Reason = audit.ActionLogon, audit.OutcomeFailed, "activation-"+step, err.Error()
	}); lerr != nil {
		return lerr
	}
	return err
}

// find looks the code up and checks the secret, in the given states.
func (s *Service) find(ctx context.Context, code, secret, source, step string, states ...string) (*invitation, error) {
	if throttled, err := s.throttled(ctx, source); err != nil {
		return nil, err
	} else if throttled {
		return nil, s.fail(ctx, source, step, nil, ErrThrottled)
	}
	var inv invitation
	err := s.c.DB.QueryRowContext(ctx, `SELECT id, tenant_id, account_id, patient_id, represent_kind, represent_birth_date, created_by,
		state, secret_hash, failures, expires_at FROM onboard_invitations WHERE code_hash = $1`, hash("code", code)).
		Scan(&inv.id, &inv.tenantID, &inv.accountID, &inv.patientID, &inv.representKind, &inv.representBirth, &inv.createdBy,
			&inv.state, &inv.secretHash, &inv.failures, &inv.expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, s.fail(ctx, source, step, nil, ErrInvalidCode)
	}
	if err != nil {
		return nil, fmt.Errorf("activation: %w", err)
	}
	ok := false
	for _, st := range states {
		ok = ok || inv.state == st
	}
	if !ok || clock.Micros(s.c.Clock.Now()) >= inv.expires {
		return nil, s.fail(ctx, source, step, nil, ErrInvalidCode)
	}
	if subtle.ConstantTimeCompare(hash("secret", secret), inv.secretHash) != 1 {
		return nil, s.fail(ctx, source, step, &inv, ErrInvalidCode)
	}
	return &inv, nil
}

// StartActivation checks the code and the second-channel secret, stores
// the chosen password after the policy (password.Violations when weak)
// and enrols an authenticator app. The account stays pending until
// CompleteActivation confirms the app; a start may be repeated until then
// (a new app replaces the unconfirmed one).
func (s *Service) StartActivation(ctx context.Context, code, secret, pw, source string) (Enrolment, error) {
	inv, err := s.find(ctx, code, secret, source, "start", "issued", "enrolling")
	if err != nil {
		return Enrolment{}, err
	}
	acc, err := s.c.IDs.Account(ctx, inv.accountID)
	if err != nil {
		return Enrolment{}, fmt.Errorf("activation: %w", err)
	}
	if !acc.Pending {
		return Enrolment{}, s.fail(ctx, source, "start", nil, ErrInvalidCode)
	}
	if err := s.c.Authn.CheckFirstPassword(ctx, acc.ID, pw); err != nil {
		var pv password.Violations
		if !errors.As(err, &pv) {
			return Enrolment{}, err
		}
		// A refused password is an event of its own (LOG-1): which rules it
		// broke, never the password. It is no guess at the code, so it does
		// not count towards the throttle.
		if lerr := s.log(ctx, activationActor(acc, source), func(e *audit.Event) {
			e.Action, e.Outcome, e.Query, e.Resources = audit.ActionLogon, audit.OutcomeFailed, "activation-start", []string{"Account/" + acc.ID}
			e.Reason = "password refused by the policy: " + pv.Error()
		}); lerr != nil {
			return Enrolment{}, lerr
		}
		return Enrolment{}, err
	}
	// The invitation is claimed for enrolment only while it is still open:
	// one that was used, revoked or withdrawn since find read it stays so
	// (never set back to enrolling), and its account gets no password.
	res, err := s.c.DB.ExecContext(ctx, `UPDATE onboard_invitations SET state = 'enrolling' WHERE id = $1 AND state IN ('issued', 'enrolling')`, inv.id)
	if err != nil {
		return Enrolment{}, fmt.Errorf("activation: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Enrolment{}, s.fail(ctx, source, "start", nil, ErrInvalidCode)
	}
	if err := s.c.Authn.SetFirstPassword(ctx, acc.ID, pw); err != nil {
		return Enrolment{}, err
	}
	if err := s.c.Authn.RevokeTOTP(ctx, acc.ID); err != nil {
		return Enrolment{}, err
	}
	uri, totpSecret, err := s.c.Authn.EnrollTOTP(ctx, acc.ID, acc.Username)
	if err != nil {
		return Enrolment{}, err
	}
	if err := s.log(ctx, activationActor(acc, source), func(e *audit.Event) {
		e.Action, e.Query, e.Resources, e.Reason = audit.ActionLogon, "activation-start", []string{"Account/" + acc.ID}, "password set, authenticator app enrolled"
	}); err != nil {
		return Enrolment{}, err
	}
	return Enrolment{AccountID: acc.ID, Username: acc.Username, URI: uri, Secret: totpSecret}, nil
}

func activationActor(acc identity.Account, source string) audit.Event {
	return audit.Event{TenantID: acc.TenantID, UserID: acc.ID, UserName: acc.Username, SourceAddr: source, SourceApp: "zorgkluis activation"}
}

// CompleteActivation confirms the authenticator app with its first code;
// then, in one transaction, the invitation is used up, the account becomes
// active, a person's account is linked to their record or a
// representative's representation is recorded (AZ-4), and the log line is
// written: all of it or none.
func (s *Service) CompleteActivation(ctx context.Context, code, secret, totpCode, source string) (identity.Account, error) {
	inv, err := s.find(ctx, code, secret, source, "complete", "enrolling")
	if err != nil {
		return identity.Account{}, err
	}
	ok, err := s.c.Authn.ConfirmTOTP(ctx, inv.accountID, strings.TrimSpace(totpCode))
	if err != nil {
		return identity.Account{}, err
	}
	if !ok {
		return identity.Account{}, s.fail(ctx, source, "complete", inv, ErrTOTP)
	}
	errUsed := errors.New("used concurrently")
	var acc identity.Account
	err = s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE onboard_invitations SET state = 'used', used_at = $1 WHERE id = $2 AND state = 'enrolling'`,
			clock.Micros(s.c.Clock.Now()), inv.id)
		if err != nil {
			return fmt.Errorf("activation: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errUsed
		}
		ids := s.c.IDs.In(tx)
		pending, err := ids.Account(ctx, inv.accountID)
		if err != nil {
			return err
		}
		if inv.patientID != "" && inv.representKind == "" {
			if err := ids.LinkPerson(ctx, inv.accountID, inv.patientID); err != nil {
				return err
			}
		}
		// A person's one role comes with the account: it opens only their
		// own record and those they represent, so it needs no second
		// approval; the staff's roles do (AZ-7).
		if pending.Kind == identity.KindPerson {
			if err := ids.GrantRole(ctx, inv.accountID, string(access.RolePerson), "invitation "+inv.id); err != nil {
				return err
			}
		}
		if err := ids.Activate(ctx, inv.accountID); err != nil {
			return err
		}
		reason := "account activated"
		if inv.representKind != "" {
			if s.c.Access == nil {
				return errors.New("activation: no access decider to record the representation")
			}
			r, err := s.c.Access.RecordRepresentationIn(ctx, tx, access.Representation{TenantID: inv.tenantID, RepresentativeID: inv.accountID,
				PatientID: inv.patientID, Kind: inv.representKind, PatientBirthDate: inv.representBirth, RecordedBy: inv.createdBy})
			if err != nil {
				return fmt.Errorf("activation: the representation cannot be recorded: %w", err)
			}
			reason += "; representation " + r.ID + " (" + r.Kind + ") recorded, decided by " + inv.createdBy
		}
		if acc, err = ids.Account(ctx, inv.accountID); err != nil {
			return err
		}
		ev := activationActor(acc, source)
		ev.Outcome, ev.Action, ev.Query, ev.Resources, ev.PatientID = audit.OutcomeSuccess, audit.ActionLogon, "activation-complete", []string{"Account/" + acc.ID}, inv.patientID
		ev.Reason = reason
		if _, err := s.c.Audit.AppendIn(ctx, tx, ev); err != nil {
			return fmt.Errorf("access log: %w", err)
		}
		return nil
	})
	if errors.Is(err, errUsed) || errors.Is(err, identity.ErrNotFound) {
		// A concurrent completion won, or the pending account was
		// deactivated meanwhile: the one answer for a code that is not valid.
		return identity.Account{}, s.fail(ctx, source, "complete", nil, ErrInvalidCode)
	}
	var denied *access.Denied
	if errors.Is(err, access.ErrInvalid) || errors.Is(err, access.ErrNotFound) || errors.As(err, &denied) {
		// The representation no longer holds (a child turned 16, the
		// patient left): the admin must decide again. Nothing was activated.
		return identity.Account{}, s.fail(ctx, source, "complete", nil, ErrRepresentation)
	}
	if err != nil {
		return identity.Account{}, err
	}
	return acc, nil
}

// Withdraw ends an invitation that was not used: the account is
// deactivated (its id and user name stay taken, ID-1) and the code revoked.
// An import that fails half-way withdraws what it had made.
func (s *Service) Withdraw(ctx context.Context, actor audit.Event, accountID string) error {
	acc, err := s.c.IDs.Account(ctx, accountID)
	if err != nil {
		return err
	}
	if !acc.Pending {
		return bad("account", "only an account that was not activated can be withdrawn")
	}
	if err := s.log(ctx, actor, func(e *audit.Event) {
		e.Action, e.TenantID, e.Resources, e.Reason = audit.ActionDelete, acc.TenantID, []string{"Account/" + acc.ID}, "invitation withdrawn"
	}); err != nil {
		return err
	}
	if _, err := s.c.DB.ExecContext(ctx, `UPDATE onboard_invitations SET state = 'revoked' WHERE account_id = $1 AND state IN ('issued', 'enrolling')`, accountID); err != nil {
		return fmt.Errorf("withdraw invitation: %w", err)
	}
	return s.c.Authn.Deactivate(ctx, accountID)
}
