package oauth

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Client authentication methods (RFC 8414 names).
const (
	AuthPrivateKeyJWT = "private_key_jwt" // a JWT signed with a key of the client's JWKS (RFC 7523)
	AuthNone          = "none"            // a public client: PKCE only, where its tenant allows
)

// Client is a registered app (or a resource server that introspects).
type Client struct {
	ID           string          `json:"client_id"`
	TenantID     string          `json:"tenant_id,omitempty"` // "": for every tenant (an operator's)
	Name         string          `json:"client_name"`
	RedirectURIs []string        `json:"redirect_uris"`
	AuthMethod   string          `json:"token_endpoint_auth_method"`
	JWKS         json.RawMessage `json:"jwks,omitempty"`
	Scopes       []string        `json:"scopes"` // the SMART scopes it may ask for (its data services)
	RequirePAR   bool            `json:"require_pushed_authorization_requests"`
	RequireDPoP  bool            `json:"dpop_bound_access_tokens"`
	Introspect   bool            `json:"introspect"`
	ConsentDays  int             `json:"consent_days"`
	Active       bool            `json:"active"`
	CreatedBy    string          `json:"created_by"`
	// ChangeRequest is the four-eyes request (GOV-1) a new registration
	// waits in until another admin approves it; set by Register only.
	ChangeRequest string `json:"change_request,omitempty"`
}

// Registrar is who registers a client: an application admin of a tenant
// (for that tenant) or an operator (TenantID "", for every tenant).
type Registrar struct {
	AccountID string
	TenantID  string
}

// Register validates c and stores it with a new client id as proposed: it
// becomes active only when a second admin of the tenant (an operator's:
// another operator) approves its change request (GOV-1).
func (s *Service) Register(ctx context.Context, by Registrar, c Client) (Client, error) {
	c.TenantID, c.CreatedBy, c.Active = by.TenantID, by.AccountID, false
	if c.ConsentDays == 0 {
		c.ConsentDays = 90
	}
	if err := s.validateClient(ctx, c); err != nil {
		return Client{}, err
	}
	id, err := s.newID("app-")
	if err != nil {
		return Client{}, err
	}
	c.ID = id
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_clients (id, tenant_id, name, redirect_uris, auth_method, jwks, scopes,
			require_par, require_dpop, introspect, consent_days, status, created_by, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'proposed', $12, $13)`,
			c.ID, c.TenantID, c.Name, strings.Join(c.RedirectURIs, " "), c.AuthMethod, string(c.JWKS), strings.Join(c.Scopes, " "),
			c.RequirePAR, c.RequireDPoP, c.Introspect, c.ConsentDays, c.CreatedBy, clock.Micros(s.clock.Now()))
		if err != nil {
			return fmt.Errorf("register client: %w", err)
		}
		req, err := s.changes.Propose(ctx, tx, changeActor(by), change.Proposal{Kind: ChangeClient,
			Summary: fmt.Sprintf("app %s (%s, %s), redirect %s, scopes %s", c.Name, c.ID, c.AuthMethod, strings.Join(c.RedirectURIs, " "), strings.Join(c.Scopes, " ")),
			Payload: clientChange{ClientID: c.ID}})
		if err != nil {
			return fmt.Errorf("register client: %w", err)
		}
		c.ChangeRequest = req.ID
		return nil
	})
	if err != nil {
		return Client{}, err
	}
	return c, nil
}

// The kinds of four-eyes change (GOV-1) oauth owns.
const (
	ChangeClient       = "oauth.client"        // a new app registration
	ChangePublicPolicy = "oauth.public-policy" // whether a tenant allows public clients
)

type clientChange struct {
	ClientID string `json:"client_id"`
}

type policyChange struct {
	AllowPublic bool `json:"allow_public_clients"`
}

// changeActor: a tenant's registrar is its application admin, a
// platform-wide one an operator.
func changeActor(by Registrar) change.Actor {
	role := "application-admin"
	if by.TenantID == "" {
		role = "operator"
	}
	return change.Actor{TenantID: by.TenantID, AccountID: by.AccountID, Role: role}
}

func (s *Service) registerChanges() {
	approvers := []string{"application-admin", "operator"} // change keeps each to its own tenant ("" for operators)
	s.changes.Register(ChangeClient, change.Handler{
		Approvers: approvers,
		Apply: func(ctx context.Context, tx *store.Tx, r change.Request, by change.Actor) error {
			var p clientChange
			if err := json.Unmarshal(r.Payload, &p); err != nil {
				return fmt.Errorf("client change: %w", err)
			}
			var method string
			err := tx.QueryRowContext(ctx, `SELECT auth_method FROM oauth_clients WHERE id = $1 AND tenant_id = $2 AND status = 'proposed'`, p.ClientID, r.TenantID).Scan(&method)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("client %s is no longer proposed: %w", p.ClientID, change.ErrInapplicable)
			}
			if err != nil {
				return fmt.Errorf("client change: %w", err)
			}
			if method == AuthNone {
				// The tenant may have withdrawn public clients since.
				if ok, err := s.allowsPublic(ctx, tx, r.TenantID); err != nil || !ok {
					return errors.Join(err, fmt.Errorf("the organisation no longer allows public clients: %w", change.ErrInapplicable))
				}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE oauth_clients SET status = 'active' WHERE id = $1 AND status = 'proposed'`, p.ClientID); err != nil {
				return fmt.Errorf("client change: %w", err)
			}
			return s.chain(ctx, tx, "client-registered", audit.Event{TenantID: r.TenantID, UserID: r.ProposedBy, SourceApp: p.ClientID,
				Resources: []string{"Client/" + p.ClientID}})
		},
		Closed: func(ctx context.Context, tx *store.Tx, r change.Request) error {
			var p clientChange
			if err := json.Unmarshal(r.Payload, &p); err != nil {
				return fmt.Errorf("client change: %w", err)
			}
			_, err := tx.ExecContext(ctx, `UPDATE oauth_clients SET status = 'rejected' WHERE id = $1 AND status = 'proposed'`, p.ClientID)
			return err
		},
	})
	s.changes.Register(ChangePublicPolicy, change.Handler{
		Approvers: []string{"application-admin"},
		Apply: func(ctx context.Context, tx *store.Tx, r change.Request, by change.Actor) error {
			var p policyChange
			if err := json.Unmarshal(r.Payload, &p); err != nil {
				return fmt.Errorf("policy change: %w", err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO oauth_tenant_policies (tenant_id, allow_public, set_by, set_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT (tenant_id) DO UPDATE SET allow_public = $2, set_by = $3, set_at = $4`,
				r.TenantID, p.AllowPublic, r.ProposedBy+" approved by "+by.AccountID, clock.Micros(*r.DecidedAt))
			if err != nil {
				return fmt.Errorf("set public-client policy: %w", err)
			}
			return nil
		},
	})
}

// ErrInvalidClient is a registration that cannot be accepted; the message
// names the field.
type ErrInvalidClient struct{ Field, Reason string }

func (e *ErrInvalidClient) Error() string { return e.Field + ": " + e.Reason }

func (s *Service) validateClient(ctx context.Context, c Client) error {
	bad := func(field, format string, args ...any) error {
		return &ErrInvalidClient{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if n := utf8.RuneCountInString(strings.TrimSpace(c.Name)); n == 0 || n > 100 || !utf8.ValidString(c.Name) {
		return bad("client_name", "a name of 1 to 100 characters is required: the person sees it on the consent page")
	}
	if len(c.RedirectURIs) == 0 || len(c.RedirectURIs) > 10 {
		return bad("redirect_uris", "1 to 10 redirect URIs are required")
	}
	for _, u := range c.RedirectURIs {
		if err := checkRedirect(u); err != nil {
			return bad("redirect_uris", "%v", err)
		}
	}
	switch c.AuthMethod {
	case AuthPrivateKeyJWT:
		if _, err := parseJWKS(c.JWKS); err != nil {
			return bad("jwks", "%v", err)
		}
	case AuthNone:
		if c.Introspect {
			return bad("introspect", "a public client cannot introspect tokens")
		}
		if c.TenantID == "" {
			return bad("token_endpoint_auth_method", "a client for every tenant must authenticate (private_key_jwt)")
		}
		ok, err := s.AllowsPublic(ctx, c.TenantID)
		if err != nil {
			return err
		}
		if !ok {
			return bad("token_endpoint_auth_method", "this organisation does not allow public clients")
		}
	default:
		return bad("token_endpoint_auth_method", "must be private_key_jwt or none")
	}
	if len(c.Scopes) == 0 && !c.Introspect {
		return bad("scopes", "name the SMART scopes (data services) the app may ask for, e.g. patient/Observation.rs")
	}
	for _, sc := range c.Scopes {
		p, err := fhir.ParseScope(sc)
		if err != nil {
			return bad("scopes", "%v", err)
		}
		if strings.Trim(p.Perms, "rs") != "" {
			return bad("scopes", "%s: apps read and search only (r, s)", sc)
		}
	}
	if c.ConsentDays < 1 || c.ConsentDays > MaxConsentDays {
		return bad("consent_days", "between 1 and %d", MaxConsentDays)
	}
	return nil
}

// checkRedirect allows https URLs, and http only on the loopback address
// (native apps, RFC 8252); never a fragment.
func checkRedirect(raw string) error {
	if len(raw) > 500 {
		return errors.New("a redirect URI is at most 500 characters")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not an absolute URL without fragment", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() {
			return nil
		}
	}
	return fmt.Errorf("%q: https, or http on a loopback address only", raw)
}

func parseJWKS(raw json.RawMessage) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if len(raw) == 0 || len(raw) > 32<<10 {
		return set, errors.New("the client's public keys (a JWKS of at most 32 KiB) are required for private_key_jwt")
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		return set, fmt.Errorf("not a JWKS: %v", err)
	}
	if len(set.Keys) == 0 {
		return set, errors.New("the JWKS holds no key")
	}
	for _, k := range set.Keys {
		if !k.Valid() || !k.IsPublic() {
			return set, errors.New("every key must be a valid public key")
		}
	}
	return set, nil
}

const clientColumns = `id, tenant_id, name, redirect_uris, auth_method, jwks, scopes, require_par, require_dpop, introspect, consent_days, status, created_by`

func scanClient(row interface{ Scan(...any) error }) (Client, error) {
	var c Client
	var redirects, jwks, scopes, status string
	if err := row.Scan(&c.ID, &c.TenantID, &c.Name, &redirects, &c.AuthMethod, &jwks, &scopes, &c.RequirePAR, &c.RequireDPoP,
		&c.Introspect, &c.ConsentDays, &status, &c.CreatedBy); err != nil {
		return Client{}, err
	}
	c.RedirectURIs, c.Scopes, c.Active = strings.Fields(redirects), strings.Fields(scopes), status == "active"
	if jwks != "" {
		c.JWKS = json.RawMessage(jwks)
	}
	return c, nil
}

// client returns an active client, or nil when there is none by that id.
func (s *Service) client(ctx context.Context, id string) (*Client, error) {
	if id == "" || len(id) > 100 {
		return nil, nil
	}
	c, err := scanClient(s.db.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM oauth_clients WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read client: %w", err)
	}
	if !c.Active {
		return nil, nil
	}
	return &c, nil
}

// Client returns a client by id (active or not); ok is false when unknown.
func (s *Service) Client(ctx context.Context, id string) (Client, bool, error) {
	c, err := scanClient(s.db.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM oauth_clients WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Client{}, false, nil
	}
	if err != nil {
		return Client{}, false, fmt.Errorf("read client: %w", err)
	}
	return c, true, nil
}

// Clients lists the clients a tenant's admin sees: the tenant's own and the
// operators' (for every tenant). An operator (tenant "") sees all.
func (s *Service) Clients(ctx context.Context, tenantID string) ([]Client, error) {
	q, args := `SELECT `+clientColumns+` FROM oauth_clients ORDER BY created_at`, []any{}
	if tenantID != "" {
		q, args = `SELECT `+clientColumns+` FROM oauth_clients WHERE tenant_id = $1 OR tenant_id = '' ORDER BY created_at`, []any{tenantID}
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	defer rows.Close()
	var out []Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("list clients: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Deactivate stops a client: it can start no authorization, and every
// token and consent it holds is revoked at once. Only its registrar's
// tenant (or an operator) may.
func (s *Service) Deactivate(ctx context.Context, by Registrar, id string) error {
	now := clock.Micros(s.clock.Now())
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE oauth_clients SET status = 'deactivated' WHERE id = $1 AND status = 'active' AND (tenant_id = $2 OR $2 = '')`, id, by.TenantID)
		if err != nil {
			return fmt.Errorf("deactivate client: %w", err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `UPDATE oauth_consents SET revoked_at = $2, revoked_why = 'client deactivated' WHERE client_id = $1 AND revoked_at IS NULL`, id, now); err != nil {
			return fmt.Errorf("deactivate client: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE oauth_tokens SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL`, id, now); err != nil {
			return fmt.Errorf("deactivate client: %w", err)
		}
		return s.chain(ctx, tx, "client-deactivated", audit.Event{TenantID: by.TenantID, UserID: by.AccountID, SourceApp: id,
			Resources: []string{"Client/" + id}})
	})
}

// ErrNotFound: no such client, consent or request for this caller.
var ErrNotFound = errors.New("oauth: not found")

// AllowsPublic reports whether the tenant allows public clients.
func (s *Service) AllowsPublic(ctx context.Context, tenantID string) (bool, error) {
	return s.allowsPublic(ctx, s.db, tenantID)
}

func (s *Service) allowsPublic(ctx context.Context, q store.Querier, tenantID string) (bool, error) {
	var ok bool
	err := q.QueryRowContext(ctx, `SELECT allow_public FROM oauth_tenant_policies WHERE tenant_id = $1`, tenantID).Scan(&ok)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read public-client policy: %w", err)
	}
	return ok, nil
}

// SetPublicPolicy proposes whether the tenant allows public clients (PKCE
// only, no client authentication; off by default): the policy changes when
// a second admin approves the returned change request (GOV-1).
func (s *Service) SetPublicPolicy(ctx context.Context, by Registrar, allow bool) (change.Request, error) {
	if by.TenantID == "" {
		return change.Request{}, errors.New("oauth: the public-client policy is a tenant's")
	}
	var req change.Request
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		req, err = s.changes.Propose(ctx, tx, changeActor(by), change.Proposal{Kind: ChangePublicPolicy,
			Summary: fmt.Sprintf("public clients (PKCE only, no client authentication) allowed: %t", allow), Payload: policyChange{AllowPublic: allow}})
		return err
	})
	if err != nil {
		return change.Request{}, fmt.Errorf("propose public-client policy: %w", err)
	}
	return req, nil
}

// allowsScopes reports whether every scope asked for is one the client
// may ask for: the same type (or "*") with no more permissions.
func (c *Client) allowsScopes(asked []fhir.Scope) bool {
	for _, a := range asked {
		ok := slices.ContainsFunc(c.Scopes, func(raw string) bool {
			have, err := fhir.ParseScope(raw)
			if err != nil || (have.Type != "*" && have.Type != a.Type) {
				return false
			}
			return strings.Trim(a.Perms, have.Perms) == ""
		})
		if !ok {
			return false
		}
	}
	return true
}
