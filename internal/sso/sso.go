// Package sso is single sign-on per tenant through the organisation's own
// OpenID Connect provider (Entra ID, Okta, HelloID…; AUTH-3): the
// providers an application admin proposes and a second admin approves
// (GOV-1), the code flow with PKCE, state and nonce, the ID token's
// issuer, audience, auth_time against max_age and acr checked, and the
// rule that decides whether the upstream log-on counts as two factors: only
// at a provider approved to be trusted for it, and only when its amr proves
// factors of two categories (RFC 8176). Otherwise the platform asks its own
// second factor; internal/authn makes the session either way.
//
// Upstream identities are linked to accounts by (issuer, subject) after a
// first local log-on or by an admin, never by e-mail address.
package sso

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

const (
	// ProposalTTL is how long a proposed provider waits for its second
	// admin by default (the change requests' expiry, GOV-1); an older
	// proposal has expired and must be made again.
	ProposalTTL = change.DefaultExpiry
	// ChangeProvider is the kind of change request of a provider's trust.
	ChangeProvider = "sso.provider"
	// FlowTTL is how long a log-on may stay at the provider.
	FlowTTL = 10 * time.Minute
	// clockSkew is allowed on auth_time against max_age.
	clockSkew = time.Minute
)

// Config is what the service needs.
type Config struct {
	DB     *store.DB
	Clock  clock.Clock
	Rand   io.Reader
	Master keys.Master // seals client secrets
	Audit  *audit.Log
	Alerts *alert.Queue
	// Changes is the four-eyes service (GOV-1) a proposed provider waits
	// in; nil: one of its own on DB.
	Changes *change.Service
	// HTTP talks to the providers (discovery, token, keys); nil: a client
	// with a 10 s timeout.
	HTTP *http.Client
	// Getenv reads a client secret kept in the environment; nil: os.Getenv.
	Getenv func(string) string
}

// Service holds the providers and runs the log-on flow.
type Service struct {
	c Config
	// discovered caches each provider's discovery document and keys, per
	// issuer: fetched at the first log-on, not on every one.
	mu         sync.Mutex
	discovered map[string]*oidc.Provider
}

// New returns the service.
func New(c Config) *Service {
	if c.HTTP == nil {
		c.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Changes == nil {
		c.Changes = change.New(change.Config{DB: c.DB, Audit: c.Audit, Clock: c.Clock, Rand: c.Rand})
	}
	s := &Service{c: c, discovered: map[string]*oidc.Provider{}}
	c.Changes.Register(ChangeProvider, change.Handler{
		Approvers: []string{adminRole},
		Apply: func(ctx context.Context, tx *store.Tx, r change.Request, by change.Actor) error {
			return s.settle(ctx, tx, r, "active", Admin{AccountID: by.AccountID, Name: by.Name, TenantID: by.TenantID})
		},
		Closed: func(ctx context.Context, tx *store.Tx, r change.Request) error {
			status := map[change.Status]string{change.Expired: "expired"}[r.Status]
			if status == "" {
				status = "rejected"
			}
			return s.settle(ctx, tx, r, status, Admin{AccountID: r.DecidedBy, TenantID: r.TenantID})
		},
	})
	return s
}

// adminRole is the session role that manages a tenant's providers.
const adminRole = "application-admin"

// Provider is a tenant's identity provider.
type Provider struct {
	ID          string        `json:"id"`
	TenantID    string        `json:"tenant_id"`
	Name        string        `json:"name"`
	Issuer      string        `json:"issuer"`
	ClientID    string        `json:"client_id"`
	SecretEnv   string        `json:"client_secret_env,omitempty"`
	HasSecret   bool          `json:"client_secret_sealed"`
	AllowedAMR  []string      `json:"allowed_amr"`
	TrustMFA    bool          `json:"trust_upstream_mfa"`
	RequiredACR string        `json:"required_acr,omitempty"`
	MaxAge      time.Duration `json:"-"`
	MaxAgeSecs  int64         `json:"max_age"`
	Status      string        `json:"status"` // proposed, active, rejected, disabled, expired
	ProposedBy  string        `json:"proposed_by"`
	ProposedAt  time.Time     `json:"proposed_at"`
	DecidedBy   string        `json:"decided_by,omitempty"`
}

// Admin is the application admin acting.
type Admin struct {
	AccountID string
	Name      string
	TenantID  string
}

// Proposal is a provider as an admin proposes it.
type Proposal struct {
	Name         string
	Issuer       string
	ClientID     string
	ClientSecret string // sealed under the master key; or
	SecretEnv    string // the environment variable that holds it (ZK_SSO_...)
	AllowedAMR   []string
	TrustMFA     bool
	RequiredACR  string
	MaxAge       time.Duration
}

// Errors the callers tell apart.
var (
	ErrNotFound  = errors.New("sso: no such provider")
	ErrSameAdmin = errors.New("sso: a change is approved by another admin than the one who proposed it")
)

// InvalidError names the field of a proposal that cannot be accepted.
type InvalidError struct{ Field, Reason string }

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

// RefusedError is an upstream log-on refused, with the reason for the log
// (the user sees one message whatever it was).
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "sso: log-on refused: " + e.Reason }

var (
	envRE = regexp.MustCompile(`^ZK_SSO_[A-Z0-9_]{1,60}$`)
	amrRE = regexp.MustCompile(`^[a-z]{2,10}$`)
)

// checkIssuer allows https, and http only on the loopback (tests, a
// provider on the same host).
func checkIssuer(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || len(raw) > 300 {
		return errors.New("an absolute URL without query or fragment is required")
	}
	if u.Scheme == "https" {
		return nil
	}
	if ip := net.ParseIP(u.Hostname()); u.Scheme == "http" && ((ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost") {
		return nil
	}
	return errors.New("the issuer must be https")
}

// Propose records a provider proposed by admin; it is used only after a
// different admin of the tenant approves it.
func (s *Service) Propose(ctx context.Context, admin Admin, p Proposal) (Provider, error) {
	bad := func(f, r string) (Provider, error) { return Provider{}, &InvalidError{Field: f, Reason: r} }
	switch {
	case admin.TenantID == "":
		return bad("tenant", "a provider belongs to an organisation")
	case strings.TrimSpace(p.Name) == "" || utf8.RuneCountInString(p.Name) > 100:
		return bad("name", "1 to 100 characters; the log-on page shows it")
	case checkIssuer(p.Issuer) != nil:
		return bad("issuer", checkIssuer(p.Issuer).Error())
	case p.ClientID == "" || len(p.ClientID) > 200:
		return bad("client_id", "required, at most 200 characters")
	case p.ClientSecret != "" && p.SecretEnv != "":
		return bad("client_secret", "give the secret or the environment variable that holds it, not both")
	case p.SecretEnv != "" && !envRE.MatchString(p.SecretEnv):
		return bad("client_secret_env", "an environment variable named ZK_SSO_...")
	case len(p.ClientSecret) > 500:
		return bad("client_secret", "at most 500 characters")
	case p.MaxAge < 0 || p.MaxAge > 24*time.Hour:
		return bad("max_age", "0 (none) to 86400 seconds")
	case len(p.RequiredACR) > 200:
		return bad("required_acr", "at most 200 characters")
	}
	for _, v := range p.AllowedAMR {
		if !amrRE.MatchString(v) {
			return bad("allowed_amr", "RFC 8176 values such as pwd, otp, hwk, mfa")
		}
	}
	var id string
	now := s.c.Clock.Now()
	err := s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		// The provider's id is its change request's (GOV-1); the payload
		// says whether there is a secret, never the secret, which is sealed
		// here, bound to that id.
		req, err := s.c.Changes.Propose(ctx, tx, changeActor(admin), change.Proposal{Kind: ChangeProvider,
			Summary: fmt.Sprintf("identity provider %s (%s), client %s, trust upstream mfa %t", p.Name, p.Issuer, p.ClientID, p.TrustMFA),
			Payload: map[string]any{"name": p.Name, "issuer": p.Issuer, "client_id": p.ClientID, "client_secret_sealed": p.ClientSecret != "",
				"client_secret_env": p.SecretEnv, "allowed_amr": p.AllowedAMR, "trust_upstream_mfa": p.TrustMFA, "required_acr": p.RequiredACR,
				"max_age": int64(p.MaxAge / time.Second)}})
		if err != nil {
			return fmt.Errorf("propose provider: %w", err)
		}
		id, now = req.ID, req.ProposedAt
		var sealed []byte
		if p.ClientSecret != "" {
			if sealed, err = s.c.Master.Wrap(ctx, []byte(p.ClientSecret), keys.SSOSecretAD(admin.TenantID, id)); err != nil {
				return fmt.Errorf("seal client secret: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sso_providers (id, tenant_id, name, issuer, client_id, secret_sealed, secret_env, allowed_amr,
			trust_mfa, required_acr, max_age, status, proposed_by, proposed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'proposed', $12, $13)`,
			id, admin.TenantID, p.Name, p.Issuer, p.ClientID, sealed, p.SecretEnv, strings.Join(p.AllowedAMR, " "), p.TrustMFA, p.RequiredACR,
			int64(p.MaxAge/time.Second), admin.AccountID, clock.Micros(now)); err != nil {
			return fmt.Errorf("propose provider: %w", err)
		}
		return s.adminEvent(ctx, tx, admin, id, fmt.Sprintf("sso provider proposed: %s (%s), trust upstream mfa %t", p.Name, p.Issuer, p.TrustMFA))
	})
	if err != nil {
		return Provider{}, err
	}
	return s.Provider(ctx, admin.TenantID, id)
}

func changeActor(a Admin) change.Actor {
	return change.Actor{TenantID: a.TenantID, AccountID: a.AccountID, Name: a.Name, Role: adminRole}
}

// Decide approves or rejects a proposed provider through its change
// request (GOV-1): only another admin of the same tenant, and only while
// the proposal has not expired.
func (s *Service) Decide(ctx context.Context, admin Admin, id string, approve bool) error {
	_, err := s.c.Changes.DecideKind(ctx, changeActor(admin), ChangeProvider, id, approve, "")
	switch {
	case err == nil:
		return nil
	case errors.Is(err, change.ErrSelf):
		return ErrSameAdmin
	case errors.Is(err, change.ErrNotFound), errors.Is(err, change.ErrInvalid):
		return ErrNotFound
	case errors.Is(err, change.ErrExpired):
		return &InvalidError{Field: "status", Reason: "the proposal has expired; propose it again"}
	case errors.Is(err, change.ErrDecided), errors.Is(err, change.ErrInapplicable):
		return &InvalidError{Field: "status", Reason: "the provider is no longer proposed"}
	}
	return err
}

// settle records the end of a provider's change request: active when
// approved (it must still be proposed), else rejected or expired.
func (s *Service) settle(ctx context.Context, tx *store.Tx, r change.Request, status string, admin Admin) error {
	var name string
	err := tx.QueryRowContext(ctx, `SELECT name FROM sso_providers WHERE id = $1 AND tenant_id = $2 AND status = 'proposed'`, r.ID, r.TenantID).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		if status != "active" {
			return nil
		}
		return fmt.Errorf("provider %s is no longer proposed: %w", r.ID, change.ErrInapplicable)
	}
	if err != nil {
		return fmt.Errorf("decide provider: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sso_providers SET status = $1, decided_by = $2, decided_at = $3 WHERE id = $4 AND status = 'proposed'`,
		status, admin.AccountID, clock.Micros(*r.DecidedAt), r.ID); err != nil {
		return fmt.Errorf("decide provider: %w", err)
	}
	if admin.AccountID == "" {
		admin.AccountID = "system"
	}
	return s.adminEvent(ctx, tx, admin, r.ID, "sso provider "+status+": "+name)
}

// Disable stops a provider at once: no new log-on through it.
func (s *Service) Disable(ctx context.Context, admin Admin, id string) error {
	return s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE sso_providers SET status = 'disabled', decided_by = $1, decided_at = $2 WHERE id = $3 AND tenant_id = $4 AND status IN ('active', 'proposed')`,
			admin.AccountID, clock.Micros(s.c.Clock.Now()), id, admin.TenantID)
		if err != nil {
			return fmt.Errorf("disable provider: %w", err)
		}
		if n, _ := r.RowsAffected(); n != 1 {
			return ErrNotFound
		}
		return s.adminEvent(ctx, tx, admin, id, "sso provider disabled")
	})
}

// adminEvent logs a change of the SSO configuration (LOG-7's admin log).
func (s *Service) adminEvent(ctx context.Context, q store.Querier, admin Admin, id, what string) error {
	_, err := s.c.Audit.AppendIn(ctx, q, audit.Event{Action: audit.ActionUpdate, Outcome: audit.OutcomeSuccess, TenantID: admin.TenantID,
		UserID: admin.AccountID, UserName: admin.Name, Role: "application-admin", Resources: []string{"IdentityProvider/" + id}, Query: what})
	if err != nil {
		return fmt.Errorf("log sso change: %w", err)
	}
	return nil
}

const providerColumns = `id, tenant_id, name, issuer, client_id, secret_sealed IS NOT NULL, secret_env, allowed_amr, trust_mfa, required_acr, max_age,
	status, proposed_by, proposed_at, decided_by`

func scanProvider(row interface{ Scan(...any) error }) (Provider, error) {
	var p Provider
	var amr string
	var proposed int64
	if err := row.Scan(&p.ID, &p.TenantID, &p.Name, &p.Issuer, &p.ClientID, &p.HasSecret, &p.SecretEnv, &amr, &p.TrustMFA, &p.RequiredACR,
		&p.MaxAgeSecs, &p.Status, &p.ProposedBy, &proposed, &p.DecidedBy); err != nil {
		return Provider{}, err
	}
	p.AllowedAMR, p.MaxAge, p.ProposedAt = strings.Fields(amr), time.Duration(p.MaxAgeSecs)*time.Second, clock.FromMicros(proposed)
	if p.AllowedAMR == nil {
		p.AllowedAMR = []string{}
	}
	return p, nil
}

// Provider returns one of the tenant's providers.
func (s *Service) Provider(ctx context.Context, tenantID, id string) (Provider, error) {
	p, err := scanProvider(s.c.DB.QueryRowContext(ctx, `SELECT `+providerColumns+` FROM sso_providers WHERE id = $1 AND tenant_id = $2`, id, tenantID))
	if errors.Is(err, sql.ErrNoRows) {
		return Provider{}, ErrNotFound
	}
	if err != nil {
		return Provider{}, fmt.Errorf("read provider: %w", err)
	}
	return p, nil
}

// Providers lists a tenant's providers, or (tenantID "") every active one,
// for the log-on page.
func (s *Service) Providers(ctx context.Context, tenantID string) ([]Provider, error) {
	q, args := `SELECT `+providerColumns+` FROM sso_providers WHERE tenant_id = $1 ORDER BY proposed_at`, []any{tenantID}
	if tenantID == "" {
		q, args = `SELECT `+providerColumns+` FROM sso_providers WHERE status = 'active' ORDER BY name`, nil
	}
	rows, err := s.c.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list providers: %w", err)
	}
	defer rows.Close()
	out := []Provider{}
	for rows.Next() {
		p, err := scanProvider(rows)
		if err != nil {
			return nil, fmt.Errorf("list providers: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (s *Service) random(prefix string, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.c.Rand, b); err != nil {
		return "", fmt.Errorf("sso: randomness: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

func hash(v string) []byte {
	h := sha256.Sum256([]byte(v))
	return h[:]
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// activeProvider reads an active provider by id (any tenant) with its
// client secret.
func (s *Service) activeProvider(ctx context.Context, id string) (Provider, string, error) {
	var sealed []byte
	row := s.c.DB.QueryRowContext(ctx, `SELECT `+providerColumns+`, secret_sealed FROM sso_providers WHERE id = $1 AND status = 'active'`, id)
	var p Provider
	var amr string
	var proposed int64
	err := row.Scan(&p.ID, &p.TenantID, &p.Name, &p.Issuer, &p.ClientID, &p.HasSecret, &p.SecretEnv, &amr, &p.TrustMFA, &p.RequiredACR,
		&p.MaxAgeSecs, &p.Status, &p.ProposedBy, &proposed, &p.DecidedBy, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return Provider{}, "", ErrNotFound
	}
	if err != nil {
		return Provider{}, "", fmt.Errorf("read provider: %w", err)
	}
	p.AllowedAMR, p.MaxAge = strings.Fields(amr), time.Duration(p.MaxAgeSecs)*time.Second
	secret := ""
	switch {
	case sealed != nil:
		b, err := s.c.Master.Unwrap(ctx, sealed, keys.SSOSecretAD(p.TenantID, p.ID))
		if err != nil {
			return Provider{}, "", fmt.Errorf("open client secret: %w", err)
		}
		secret = string(b)
	case p.SecretEnv != "":
		secret = s.c.Getenv(p.SecretEnv)
	}
	return p, secret, nil
}

// discover returns the provider's OpenID configuration, fetched once.
func (s *Service) discover(ctx context.Context, issuer string) (*oidc.Provider, error) {
	s.mu.Lock()
	op := s.discovered[issuer]
	s.mu.Unlock()
	if op != nil {
		return op, nil
	}
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, s.c.HTTP), issuer)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", issuer, err)
	}
	s.mu.Lock()
	s.discovered[issuer] = op
	s.mu.Unlock()
	return op, nil
}

func (s *Service) oauthConfig(p Provider, secret, callback string, op *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: p.ClientID, ClientSecret: secret, Endpoint: op.Endpoint(), RedirectURL: callback, Scopes: []string{oidc.ScopeOpenID}}
}
