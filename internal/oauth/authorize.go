package oauth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// AuthRequest holds the parameters of an authorization request, from the
// query of /oauth/authorize or the form of a pushed request.
type AuthRequest struct {
	ClientID            string
	RedirectURI         string
	ResponseType        string
	Scope               string
	State               string
	CodeChallenge       string
	CodeChallengeMethod string
	Audience            string // SMART's aud: the FHIR base
	DPoPJKT             string // RFC 9449 10: binds the code to a DPoP key
	RequestURI          string // RFC 9126: a pushed request's reference
}

// AuthorizeError is a refused authorization request. When RedirectURI is
// set the error goes back to the client there (with state and iss);
// otherwise the client or its redirect URI could not be trusted and the
// browser gets an error page instead (RFC 6749 4.1.2.1).
type AuthorizeError struct {
	Err         *Error
	RedirectURI string
	State       string
}

func (e *AuthorizeError) Error() string { return e.Err.Error() }

// Location is where the browser is sent with the error.
func (e *AuthorizeError) Location(issuer string) string {
	q := url.Values{"error": {e.Err.Code}, "error_description": {e.Err.Description}, "iss": {issuer}}
	if e.State != "" {
		q.Set("state", e.State)
	}
	return withQuery(e.RedirectURI, q)
}

func withQuery(uri string, q url.Values) string {
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + q.Encode()
}

var challengeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43,128}$`)

// extraScopes are the scopes besides resource scopes that SMART clients
// send and that mean nothing more here: the patient context is always
// given (the person's own or represented record), and a refresh token is
// always issued.
var extraScopes = []string{"launch/patient", "offline_access"}

// checkRequest validates everything but the client and redirect URI, which
// the caller has checked; it returns the resource scopes asked for.
func (s *Service) checkRequest(c *Client, r AuthRequest) ([]fhir.Scope, *Error) {
	if r.ResponseType != "code" {
		return nil, fail("unsupported_response_type", "only response_type=code is supported")
	}
	switch r.CodeChallengeMethod {
	case "S256":
	case "":
		return nil, fail("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256")
	default:
		return nil, fail("invalid_request", "code_challenge_method must be S256 (plain is not allowed)")
	}
	if !challengeRE.MatchString(r.CodeChallenge) {
		return nil, fail("invalid_request", "code_challenge must be the base64url SHA-256 of the verifier (43 characters)")
	}
	if r.State == "" || len(r.State) > 512 {
		return nil, fail("invalid_request", "state is required (at most 512 characters)")
	}
	if r.Audience != s.Audience() {
		return nil, fail("invalid_request", "aud must be the FHIR base %s", s.Audience())
	}
	if r.DPoPJKT != "" && !thumbprintRE.MatchString(r.DPoPJKT) {
		return nil, fail("invalid_request", "dpop_jkt must be a base64url SHA-256 JWK thumbprint")
	}
	words := strings.Fields(r.Scope)
	if len(words) > 50 || len(r.Scope) > 2000 {
		return nil, fail("invalid_scope", "too many scopes")
	}
	var scopes []fhir.Scope
	for _, w := range words {
		if slices.Contains(extraScopes, w) {
			continue
		}
		sc, err := fhir.ParseScope(w)
		if err != nil {
			return nil, fail("invalid_scope", "%v", err)
		}
		scopes = append(scopes, sc)
	}
	if len(scopes) == 0 {
		return nil, fail("invalid_scope", "ask for at least one resource scope, e.g. patient/Observation.rs")
	}
	if !c.allowsScopes(scopes) {
		return nil, fail("invalid_scope", "the app is not registered for every scope asked for")
	}
	return scopes, nil
}

// clientAndRedirect finds the client and checks the redirect URI exactly;
// a failure here is never sent to the redirect URI.
func (s *Service) clientAndRedirect(ctx context.Context, clientID, redirect string) (*Client, error) {
	c, err := s.client(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, &AuthorizeError{Err: fail("invalid_request", "unknown or inactive client_id")}
	}
	if !slices.Contains(c.RedirectURIs, redirect) {
		return nil, &AuthorizeError{Err: fail("invalid_request", "redirect_uri is missing or not registered for this client (matched exactly)")}
	}
	return c, nil
}

// Authorize checks an authorization request and stores it as pending for
// the person's log-on and decision. It returns the pending reference the
// consent page is opened with.
func (s *Service) Authorize(ctx context.Context, r AuthRequest) (string, error) {
	if r.RequestURI != "" {
		return s.authorizePushed(ctx, r.ClientID, r.RequestURI)
	}
	c, err := s.clientAndRedirect(ctx, r.ClientID, r.RedirectURI)
	if err != nil {
		return "", err
	}
	if c.RequirePAR {
		return "", &AuthorizeError{Err: fail("invalid_request", "this client must push its authorization requests (RFC 9126): use request_uri"),
			RedirectURI: r.RedirectURI, State: r.State}
	}
	scopes, e := s.checkRequest(c, r)
	if e != nil {
		_ = s.chain(ctx, nil, "authorize", audit.Event{Outcome: audit.OutcomeFailed, TenantID: c.TenantID, UserID: c.ID, UserName: c.Name,
			SourceApp: c.ID, Reason: e.Code})
		return "", &AuthorizeError{Err: e, RedirectURI: r.RedirectURI, State: r.State}
	}
	return s.storePending(ctx, c, r, scopes)
}

func (s *Service) storePending(ctx context.Context, c *Client, r AuthRequest, scopes []fhir.Scope) (string, error) {
	ref, h, err := s.secret("zkq_")
	if err != nil {
		return "", err
	}
	now := s.clock.Now()
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO oauth_requests (hash, kind, client_id, redirect_uri, scopes, state, code_challenge, dpop_jkt, created_at, expires_at)
			VALUES ($1, 'pending', $2, $3, $4, $5, $6, $7, $8, $9)`, h, c.ID, r.RedirectURI, joinScopes(scopes), r.State, r.CodeChallenge, r.DPoPJKT,
			clock.Micros(now), clock.Micros(now.Add(PendingTTL))); err != nil {
			return fmt.Errorf("store authorization request: %w", err)
		}
		return s.chain(ctx, tx, "authorize", audit.Event{TenantID: c.TenantID, UserID: c.ID, UserName: c.Name, SourceApp: c.ID, Scopes: scopeStrings(scopes)})
	})
	if err != nil {
		return "", err
	}
	return ref, nil
}

func joinScopes(sc []fhir.Scope) string { return strings.Join(scopeStrings(sc), " ") }

func scopeStrings(sc []fhir.Scope) []string {
	out := make([]string, len(sc))
	for i, s := range sc {
		out[i] = s.String()
	}
	return out
}

// Push stores a pushed authorization request (RFC 9126) of an
// authenticated client and returns its request_uri.
func (s *Service) Push(ctx context.Context, c *Client, r AuthRequest) (string, time.Duration, error) {
	if r.RequestURI != "" {
		return "", 0, fail("invalid_request", "request_uri is not allowed in a pushed request")
	}
	if r.ClientID != "" && r.ClientID != c.ID {
		return "", 0, fail("invalid_request", "client_id does not match the authenticated client")
	}
	if !slices.Contains(c.RedirectURIs, r.RedirectURI) {
		return "", 0, fail("invalid_request", "redirect_uri is missing or not registered for this client (matched exactly)")
	}
	scopes, e := s.checkRequest(c, r)
	if e != nil {
		return "", 0, e
	}
	ref, _, err := s.secret("")
	if err != nil {
		return "", 0, err
	}
	uri := "urn:ietf:params:oauth:request_uri:" + ref
	now := s.clock.Now()
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO oauth_requests (hash, kind, client_id, redirect_uri, scopes, state, code_challenge, dpop_jkt, created_at, expires_at)
			VALUES ($1, 'pushed', $2, $3, $4, $5, $6, $7, $8, $9)`, hash(uri), c.ID, r.RedirectURI, joinScopes(scopes), r.State, r.CodeChallenge, r.DPoPJKT,
			clock.Micros(now), clock.Micros(now.Add(PushedTTL))); err != nil {
			return fmt.Errorf("store pushed request: %w", err)
		}
		return s.chain(ctx, tx, "par", audit.Event{TenantID: c.TenantID, UserID: c.ID, UserName: c.Name, SourceApp: c.ID, Scopes: scopeStrings(scopes)})
	})
	if err != nil {
		return "", 0, err
	}
	return uri, PushedTTL, nil
}

// authorizePushed turns a pushed request into a pending one; a request_uri
// works once and only for its client.
func (s *Service) authorizePushed(ctx context.Context, clientID, uri string) (string, error) {
	c, err := s.client(ctx, clientID)
	if err != nil {
		return "", err
	}
	if c == nil {
		return "", &AuthorizeError{Err: fail("invalid_request", "unknown or inactive client_id")}
	}
	now := clock.Micros(s.clock.Now())
	var r AuthRequest
	var scopes string
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT redirect_uri, scopes, state, code_challenge, dpop_jkt FROM oauth_requests
			WHERE hash = $1 AND kind = 'pushed' AND client_id = $2 AND used_at IS NULL AND expires_at > $3`, hash(uri), c.ID, now).
			Scan(&r.RedirectURI, &scopes, &r.State, &r.CodeChallenge, &r.DPoPJKT)
		if errors.Is(err, sql.ErrNoRows) {
			return &AuthorizeError{Err: fail("invalid_request", "request_uri is unknown, expired, used or of another client")}
		}
		if err != nil {
			return fmt.Errorf("read pushed request: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE oauth_requests SET used_at = $2 WHERE hash = $1`, hash(uri), now)
		return err
	})
	if err != nil {
		return "", err
	}
	var sc []fhir.Scope
	for _, w := range strings.Fields(scopes) {
		p, err := fhir.ParseScope(w)
		if err != nil {
			return "", fmt.Errorf("stored scope: %w", err)
		}
		sc = append(sc, p)
	}
	return s.storePending(ctx, c, r, sc)
}

// Pending is an authorization request waiting for the person.
type Pending struct {
	Client     Client
	Scopes     []string // granted as asked
	Categories []string // what they reach (fhir categories), for the consent text
	Days       int      // how long the consent would last
}

type pendingRow struct {
	Pending
	redirect, state, challenge, jkt string
}

func (s *Service) pending(ctx context.Context, q store.Querier, ref string) (pendingRow, error) {
	var p pendingRow
	var clientID, scopes string
	err := q.QueryRowContext(ctx, `SELECT client_id, redirect_uri, scopes, state, code_challenge, dpop_jkt FROM oauth_requests
		WHERE hash = $1 AND kind = 'pending' AND used_at IS NULL AND expires_at > $2`, hash(ref), clock.Micros(s.clock.Now())).
		Scan(&clientID, &p.redirect, &scopes, &p.state, &p.challenge, &p.jkt)
	if errors.Is(err, sql.ErrNoRows) {
		return p, ErrNotFound
	}
	if err != nil {
		return p, fmt.Errorf("read authorization request: %w", err)
	}
	c, err := s.client(ctx, clientID)
	if err != nil {
		return p, err
	}
	if c == nil {
		return p, ErrNotFound
	}
	p.Client, p.Scopes, p.Days = *c, strings.Fields(scopes), c.ConsentDays
	p.Categories = fhir.ScopeCategories(p.Scopes, 'r')
	return p, nil
}

// Pending returns the request behind a consent page's reference;
// ErrNotFound when it is unknown, expired or decided.
func (s *Service) Pending(ctx context.Context, ref string) (Pending, error) {
	if !strings.HasPrefix(ref, "zkq_") || len(ref) > 100 {
		return Pending{}, ErrNotFound
	}
	p, err := s.pending(ctx, s.db, ref)
	return p.Pending, err
}

// Person is who decides on a pending request: a person logged on with two
// factors, and the record they decide for (their own, or one they
// represent, which the page checked against the representations).
type Person struct {
	AccountID    string
	Name         string
	TenantID     string
	Organisation string
	PatientID    string
	OnBehalf     bool
	Assurance    access.Level
}

// Decide records the person's answer to a pending request and returns the
// client's redirect location: with a code (valid CodeTTL) when agreed, with
// access_denied when refused. Agreeing stores the consent, replacing an
// earlier one of the same app for the same record, and logs it (LOG-8).
func (s *Service) Decide(ctx context.Context, ref string, p Person, agree bool) (string, error) {
	if p.Assurance < access.HealthDataLevel {
		return "", fmt.Errorf("oauth: consent needs assurance %s, the log-on has %s", access.HealthDataLevel, p.Assurance)
	}
	now := s.clock.Now()
	var location string
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		pr, err := s.pending(ctx, tx, ref)
		if err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, `UPDATE oauth_requests SET used_at = $2 WHERE hash = $1 AND used_at IS NULL`, hash(ref), clock.Micros(now))
		if err != nil {
			return fmt.Errorf("decide authorization request: %w", err)
		}
		if n, _ := r.RowsAffected(); n != 1 {
			return ErrNotFound
		}
		c := pr.Client
		ev := audit.Event{TenantID: p.TenantID, Organisation: p.Organisation, UserID: p.AccountID, UserName: p.Name, Role: string(access.RolePerson),
			Assurance: p.Assurance.String(), PatientID: p.PatientID, SourceApp: c.ID, Scopes: pr.Scopes, Purpose: "PATRQT"}
		if p.OnBehalf {
			ev.OnBehalfOf = p.PatientID
		}
		refuse := func(why string) error {
			ev.Action, ev.Outcome, ev.Query = audit.ActionConsent, audit.OutcomeSuccess, "refused: "+c.Name
			if why != "" {
				ev.Outcome, ev.Reason = audit.OutcomeDenied, why
			}
			if _, err := s.log.AppendIn(ctx, tx, ev); err != nil {
				return err
			}
			if err := s.chain(ctx, tx, "consent-refused", ev); err != nil {
				return err
			}
			desc := "the person refused"
			if why != "" {
				desc = why
			}
			location = (&AuthorizeError{Err: fail("access_denied", "%s", desc), RedirectURI: pr.redirect, State: pr.state}).Location(s.issuer)
			return nil
		}
		if c.TenantID != "" && c.TenantID != p.TenantID {
			return refuse("this app is not registered for the person's organisation")
		}
		if c.AuthMethod == AuthNone {
			ok, err := s.AllowsPublic(ctx, p.TenantID)
			if err != nil {
				return err
			}
			if !ok {
				return refuse("the person's organisation does not allow public clients")
			}
		}
		if !agree {
			return refuse("")
		}
		id, err := s.newID("cs-")
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE oauth_consents SET revoked_at = $4, revoked_why = 'replaced by a new consent'
			WHERE client_id = $1 AND account_id = $2 AND patient_id = $3 AND revoked_at IS NULL`, c.ID, p.AccountID, p.PatientID, clock.Micros(now)); err != nil {
			return fmt.Errorf("replace consent: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE oauth_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND consent_id IN
			(SELECT id FROM oauth_consents WHERE client_id = $1 AND account_id = $3 AND patient_id = $4 AND revoked_why = 'replaced by a new consent')`,
			c.ID, clock.Micros(now), p.AccountID, p.PatientID); err != nil {
			return fmt.Errorf("replace consent: %w", err)
		}
		expires := now.Add(time.Duration(pr.Days) * 24 * time.Hour)
		if _, err := tx.ExecContext(ctx, `INSERT INTO oauth_consents (id, tenant_id, client_id, account_id, patient_id, on_behalf, scopes, assurance, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, id, p.TenantID, c.ID, p.AccountID, p.PatientID, p.OnBehalf, strings.Join(pr.Scopes, " "),
			p.Assurance.String(), clock.Micros(now), clock.Micros(expires)); err != nil {
			return fmt.Errorf("store consent: %w", err)
		}
		code, ch, err := s.secret("zkc_")
		if err != nil {
			return err
		}
		family, err := s.newID("fam-")
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO oauth_codes (hash, consent_id, client_id, redirect_uri, code_challenge, dpop_jkt, family, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, ch, id, c.ID, pr.redirect, pr.challenge, pr.jkt, family, clock.Micros(now.Add(CodeTTL))); err != nil {
			return fmt.Errorf("store code: %w", err)
		}
		ev.Action, ev.Outcome = audit.ActionConsent, audit.OutcomeSuccess
		ev.Query = fmt.Sprintf("consent %s: %s until %s", id, c.Name, expires.UTC().Format(time.DateOnly))
		if _, err := s.log.AppendIn(ctx, tx, ev); err != nil {
			return err
		}
		if err := s.chain(ctx, tx, "consent", ev); err != nil {
			return err
		}
		location = withQuery(pr.redirect, url.Values{"code": {code}, "state": {pr.state}, "iss": {s.issuer}})
		return nil
	})
	if err != nil {
		return "", err
	}
	return location, nil
}
