// Package authn owns log-on: the log-on transaction that binds two factors of
// different categories (AUTH-1), the credentials (its tables are read by no
// other package, AUTH-5), sessions kept in the database so replicas share
// them, and the assurance level each session carries (AUTH-6).
//
// A log-on is two steps. Begin takes the user name and password and always
// answers with an opaque attempt token, whether or not the account exists or
// the password was right, so nothing is said before all input is in (AUTH-4).
// Complete takes the attempt token and a second factor; only if both factors
// of that same attempt passed does a session exist. The attempt is consumed
// by its first Complete, whatever the outcome.
//
// Brute-force protection (AUTH-4) is computed from the auth_events table, so
// every replica sees the same counters:
//
//   - per user name (known or not, so locks say nothing about existence):
//     after ThrottleAfter failures within FailureWindow each further attempt
//     must wait ThrottleBase, doubling per failure; at LockAfter failures
//     within FailureWindow the name is locked until failures age out of the
//     window. Blocked attempts are logged but not counted, so the lock always
//     ends FailureWindow after the attacker's last real guess.
//   - per source address: SourceLockAfter failures within FailureWindow lock
//     the source the same way.
//   - a victim is not locked out by others: from a source address where the
//     account logged on successfully within TrustedSourceAge, only failures
//     from that same source count against the account.
//
// A locked or throttled attempt runs the same password hash as any other and
// gets the same answer, so status and timing are the same for unknown
// accounts, wrong passwords and locked accounts.
package authn

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/password"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// ErrLogonFailed is the one answer to every failed log-on, whatever part was
// wrong (AUTH-4).
var ErrLogonFailed = errors.New("log-on failed")

// ErrNoSession means the session token is unknown, expired, idle too long or
// revoked.
var ErrNoSession = errors.New("no valid session")

// PasswordHasher hashes and verifies passwords (argon2id).
type PasswordHasher interface {
	Hash(ctx context.Context, password string) (string, error)
	Verify(ctx context.Context, encoded, password string) (ok, needsRehash bool, err error)
	// VerifyDummy costs what Verify costs, for unknown accounts.
	VerifyDummy(ctx context.Context, password string) error
}

// SecretSealer encrypts credential secrets (TOTP seeds) at rest; keys.Master is one.
type SecretSealer interface {
	Wrap(ctx context.Context, plaintext []byte, ad keys.AD) ([]byte, error)
	Unwrap(ctx context.Context, ciphertext []byte, ad keys.AD) ([]byte, error)
}

// Settings are the tunables of log-on and sessions.
type Settings struct {
	AttemptTTL      time.Duration // how long the second factor may follow the first
	IdleTimeout     time.Duration // default 15 min (AUTH-4)
	SessionLifetime time.Duration // default 12 h (AUTH-4)
	Issuer          string        // shown in authenticator apps

	ThrottleAfter    int           // failures per user name before attempts are spaced (3)
	ThrottleBase     time.Duration // first spacing, doubling per further failure (2 s)
	LockAfter        int           // failures per user name within FailureWindow that lock it (10)
	SourceLockAfter  int           // failures per source address within FailureWindow that lock it (50)
	FailureWindow    time.Duration // how long a failure counts (15 min)
	TrustedSourceAge time.Duration // a source with a success this recent is not locked out by others (30 days)

	CodeTTL         time.Duration // life of an SMS or e-mail code (5 min)
	TempPasswordTTL time.Duration // life of a temporary password (72 h, ID-6)
	HistoryLen      int           // previous passwords that may not be reused (10)

	// StepUpMaxAge is how recent the session's last proof of a second
	// factor must be to add or remove a factor or recovery codes (5 min).
	StepUpMaxAge time.Duration

	// Sender delivers SMS and e-mail codes; nil means those factors are
	// not offered.
	Sender Sender

	// Audit, when set, receives every log-on event and security event as a
	// technical event of the tamper-evident log (audit.Log is one), besides
	// the auth_events table the counters are computed from.
	Audit AuditAppender

	// RoleCurrent, when set, says whether the account still holds a role
	// now (a privileged right past its end or revoked does not count;
	// access.Decider.RoleCurrent is one). Log-on and role choice offer only
	// current roles, so an expired right never becomes a session's role.
	RoleCurrent func(ctx context.Context, accountID string, role access.Role) (bool, error)

	// Queue receives every security event (an attack on log-on, a key's
	// signature counter going back; LOG-9). Default: alert's queue in the
	// same database, sending no alerts.
	Queue *alert.Queue

	// Changes, when set, is the four-eyes service (GOV-1) a change of a
	// tenant's log-on settings (the weak-factor switch, password expiry)
	// waits in until a second admin approves it.
	Changes *change.Service
}

// AuditAppender appends events to the audit log.
type AuditAppender interface {
	Append(ctx context.Context, events ...audit.Event) ([]audit.Event, error)
}

// DefaultSettings are the safe defaults.
func DefaultSettings() Settings {
	return Settings{
		AttemptTTL: 5 * time.Minute, IdleTimeout: 15 * time.Minute, SessionLifetime: 12 * time.Hour, Issuer: "zorgkluis",
		ThrottleAfter: 3, ThrottleBase: 2 * time.Second, LockAfter: 10, SourceLockAfter: 50,
		FailureWindow: 15 * time.Minute, TrustedSourceAge: 30 * 24 * time.Hour,
		CodeTTL: 5 * time.Minute, TempPasswordTTL: 72 * time.Hour, HistoryLen: 10,
		StepUpMaxAge: 5 * time.Minute,
	}
}

// withDefaults fills zero tunables, so callers that set only some keep safe values.
func (set Settings) withDefaults() Settings {
	d := DefaultSettings()
	fill := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	filln := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	fill(&set.AttemptTTL, d.AttemptTTL)
	fill(&set.IdleTimeout, d.IdleTimeout)
	fill(&set.SessionLifetime, d.SessionLifetime)
	fill(&set.ThrottleBase, d.ThrottleBase)
	fill(&set.FailureWindow, d.FailureWindow)
	fill(&set.TrustedSourceAge, d.TrustedSourceAge)
	fill(&set.CodeTTL, d.CodeTTL)
	fill(&set.TempPasswordTTL, d.TempPasswordTTL)
	fill(&set.StepUpMaxAge, d.StepUpMaxAge)
	filln(&set.ThrottleAfter, d.ThrottleAfter)
	filln(&set.LockAfter, d.LockAfter)
	filln(&set.SourceLockAfter, d.SourceLockAfter)
	filln(&set.HistoryLen, d.HistoryLen)
	if set.Issuer == "" {
		set.Issuer = d.Issuer
	}
	return set
}

// Service performs log-ons and checks sessions.
type Service struct {
	db       *store.DB
	ids      *identity.Registry
	hasher   PasswordHasher
	sealer   SecretSealer
	clock    clock.Clock
	rand     io.Reader
	settings Settings
	policy   *password.Policy
	wa       *webauthn.WebAuthn // nil until EnableWebAuthn
	cache    *sessionCache
}

// New returns a Service.
func New(db *store.DB, ids *identity.Registry, h PasswordHasher, s SecretSealer, c clock.Clock, r io.Reader, set Settings) *Service {
	if r == nil {
		r = rand.Reader
	}
	set = set.withDefaults()
	if set.Queue == nil {
		set.Queue = alert.NewQueue(db, c, r, nil)
	}
	svc := &Service{db: db, ids: ids, hasher: h, sealer: s, clock: c, rand: r, settings: set, policy: &password.Policy{},
		cache: newSessionCache()}
	if set.Changes != nil {
		svc.registerChanges()
	}
	return svc
}

// Session is an authenticated session.
type Session struct {
	ID         string // a short, non-secret reference (hash prefix) for logs
	AccountID  string
	TenantID   string
	Role       access.Role // empty until the user chose one of several (AZ-2)
	Assurance  access.Level
	Factors    string
	OnBehalfOf string // patient the person represents in this session (AZ-4)
	// MustChangePassword limits the session to changing the password
	// (temporary or expired password, ID-6).
	MustChangePassword bool
	CreatedAt          time.Time
	ExpiresAt          time.Time
	// SecondFactorAt is when the session last proved a second factor: at
	// log-on, then at each step-up.
	SecondFactorAt time.Time
	// AccountName and Organisation are the account's display name and the
	// name of the session's organisation, for the access log; filled by
	// Authenticate (principal.FromSession looks them up when empty).
	AccountName  string
	Organisation string

	// Filled only by a log-on: the previous successful log-on of the
	// account (zero if none) and the failed attempts since (AUTH-4).
	PreviousLogon time.Time
	FailedSince   int
}

func (s *Service) token() (string, []byte, error) {
	var b [32]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", nil, fmt.Errorf("token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	return tok, hashToken(tok), nil
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// Authenticate returns the session for a token, enforcing the idle timeout
// and the absolute lifetime, and marks it used.
func (s *Service) Authenticate(ctx context.Context, token string) (Session, error) {
	if token == "" || len(token) > 128 {
		return Session{}, ErrNoSession
	}
	h := sha256.Sum256([]byte(token))
	now := s.clock.Now()
	if e, ok := s.cache.get(h, now); ok {
		switch {
		case now.After(e.sess.ExpiresAt):
			s.cache.drop(h)
			return Session{}, ErrNoSession
		case now.Sub(e.lastSeen) <= s.settings.IdleTimeout:
			if err := s.touch(ctx, h, e.lastSeen, now); err != nil {
				return Session{}, err
			}
			return e.sess, nil
		}
		// Idle by this replica's record: another replica may have seen the
		// session since, so the database decides.
		s.cache.drop(h)
	}
	gen := s.cache.generation()
	var sess Session
	var tenant sql.NullString
	var level, created, lastSeen, expires, second int64
	var revoked sql.NullInt64
	err := s.db.Stmt(`SELECT s.account_id, s.tenant_id, s.role, s.assurance, s.factors, s.on_behalf_of, s.must_change_password,
		s.created_at, s.last_seen, s.expires_at, s.revoked_at, s.second_factor_at, a.display_name, COALESCE(t.name, '')
		FROM sessions s JOIN accounts a ON a.id = s.account_id LEFT JOIN tenants t ON t.id = s.tenant_id
		WHERE s.id_hash = $1 AND a.status = 'active'`).QueryRowContext(ctx, h[:]).
		Scan(&sess.AccountID, &tenant, &sess.Role, &level, &sess.Factors, &sess.OnBehalfOf, &sess.MustChangePassword,
			&created, &lastSeen, &expires, &revoked, &second, &sess.AccountName, &sess.Organisation)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("authenticate: %w", err)
	}
	seen := clock.FromMicros(lastSeen)
	if revoked.Valid || now.After(clock.FromMicros(expires)) || now.Sub(seen) > s.settings.IdleTimeout {
		return Session{}, ErrNoSession
	}
	sess.ID = fmt.Sprintf("%x", h[:8])
	sess.TenantID = tenant.String
	sess.Assurance = access.Level(level)
	sess.CreatedAt, sess.ExpiresAt = clock.FromMicros(created), clock.FromMicros(expires)
	if second > 0 {
		sess.SecondFactorAt = clock.FromMicros(second)
	}
	s.cache.put(h, cachedSession{sess: sess, lastSeen: seen}, gen)
	if err := s.touch(ctx, h, seen, now); err != nil {
		return Session{}, err
	}
	return sess, nil
}

// touch writes last_seen when the record is more than touchEvery old, for
// the idle limit (AUTH-4): at most one write per session every few seconds.
func (s *Service) touch(ctx context.Context, h [32]byte, seen, now time.Time) error {
	if now.Sub(seen) <= touchEvery {
		return nil
	}
	if _, err := s.db.Stmt(`UPDATE sessions SET last_seen = $1 WHERE id_hash = $2`).ExecContext(ctx, clock.Micros(now), h[:]); err != nil {
		return fmt.Errorf("authenticate: %w", err)
	}
	s.cache.touched(h, now)
	return nil
}

// Logout revokes one session.
func (s *Service) Logout(ctx context.Context, token string) error {
	_, err := s.changeSessions(ctx, `UPDATE sessions SET revoked_at = $1 WHERE id_hash = $2 AND revoked_at IS NULL`,
		clock.Micros(s.clock.Now()), hashToken(token))
	if err != nil {
		return fmt.Errorf("log off: %w", err)
	}
	return nil
}

// LogoutAll revokes every session of an account ("log off everywhere").
func (s *Service) LogoutAll(ctx context.Context, accountID string) error {
	_, err := s.changeSessions(ctx, `UPDATE sessions SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL`,
		clock.Micros(s.clock.Now()), accountID)
	if err != nil {
		return fmt.Errorf("log off everywhere: %w", err)
	}
	return s.recordEvent(ctx, event{accountID: accountID, outcome: "logoff-all"})
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
