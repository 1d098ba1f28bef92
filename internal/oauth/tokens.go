package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// AssertionType is the client_assertion_type of private_key_jwt (RFC 7523).
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// ClientAuth is what a request to the token, PAR, revocation or
// introspection endpoint carries to authenticate its client.
type ClientAuth struct {
	ClientID      string
	AssertionType string
	Assertion     string
	Endpoint      string // the URL the request was sent to; an assertion's aud may name it
}

// AuthenticateClient returns the client a request authenticates as: a
// private_key_jwt client by a fresh assertion signed with one of its
// keys, a public client by its id alone.
func (s *Service) AuthenticateClient(ctx context.Context, a ClientAuth) (*Client, error) {
	if a.Assertion == "" {
		c, err := s.client(ctx, a.ClientID)
		if err != nil {
			return nil, err
		}
		if c == nil {
			return nil, fail("invalid_client", "unknown or inactive client")
		}
		if c.AuthMethod != AuthNone {
			return nil, fail("invalid_client", "this client must authenticate with private_key_jwt")
		}
		return c, nil
	}
	if a.AssertionType != AssertionType {
		return nil, fail("invalid_client", "client_assertion_type must be %s", AssertionType)
	}
	if len(a.Assertion) > 8<<10 {
		return nil, fail("invalid_client", "the client assertion is too large")
	}
	tok, err := jwt.ParseSigned(a.Assertion, proofAlgs)
	if err != nil {
		return nil, fail("invalid_client", "the client assertion is not a JWT signed with an asymmetric algorithm")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, fail("invalid_client", "the client assertion's claims are not readable")
	}
	c, err := s.client(ctx, unverified.Issuer)
	if err != nil {
		return nil, err
	}
	if c == nil || c.AuthMethod != AuthPrivateKeyJWT || (a.ClientID != "" && a.ClientID != c.ID) {
		return nil, fail("invalid_client", "unknown client, or not one that authenticates with private_key_jwt")
	}
	set, err := parseJWKS(c.JWKS)
	if err != nil {
		return nil, fail("invalid_client", "the client's registered keys are unusable")
	}
	keys := set.Keys
	if kid := tok.Headers[0].KeyID; kid != "" {
		keys = set.Key(kid)
	}
	var claims jwt.Claims
	verified := false
	for _, k := range keys {
		if tok.Claims(k.Key, &claims) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, fail("invalid_client", "the client assertion is not signed with a registered key")
	}
	now := s.clock.Now()
	err = claims.ValidateWithLeeway(jwt.Expected{Issuer: c.ID, Subject: c.ID, Time: now,
		AnyAudience: jwt.Audience{s.issuer, s.issuer + "/oauth/token", a.Endpoint}}, 30*time.Second)
	if err != nil || claims.Expiry == nil || claims.ID == "" || claims.Expiry.Time().After(now.Add(10*time.Minute)) {
		return nil, fail("invalid_client", "the client assertion must name this server as aud, the client as iss and sub, and carry jti and an exp within 10 minutes")
	}
	fresh, err := s.once(ctx, "assertion\x00"+c.ID+"\x00"+claims.ID, claims.Expiry.Time().Add(time.Minute))
	if err != nil {
		return nil, err
	}
	if !fresh {
		return nil, fail("invalid_client", "the client assertion was used before (jti)")
	}
	return c, nil
}

// Tokens is a token response (RFC 6749 5.1) with SMART's patient context.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
	Patient      string `json:"patient"`
}

var verifierRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// Exchange redeems a code (grant_type authorization_code). A code is
// spent at its first presentation by its client; a second presentation
// revokes every token issued from it.
func (s *Service) Exchange(ctx context.Context, c *Client, code, redirectURI, verifier string, proof *DPoPProof) (Tokens, error) {
	if !strings.HasPrefix(code, "zkc_") || len(code) > 100 {
		return Tokens{}, fail("invalid_grant", "unknown code")
	}
	now := s.clock.Now()
	var consentID, clientID, redirect, challenge, jkt, family string
	var expires int64
	var used sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT consent_id, client_id, redirect_uri, code_challenge, dpop_jkt, family, expires_at, used_at
		FROM oauth_codes WHERE hash = $1`, hash(code)).Scan(&consentID, &clientID, &redirect, &challenge, &jkt, &family, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return Tokens{}, fail("invalid_grant", "unknown code")
	}
	if err != nil {
		return Tokens{}, fmt.Errorf("read code: %w", err)
	}
	if clientID != c.ID {
		return Tokens{}, fail("invalid_grant", "the code was issued to another client")
	}
	if used.Valid {
		return Tokens{}, s.codeReplayed(ctx, c, consentID, family)
	}
	r, err := s.db.ExecContext(ctx, `UPDATE oauth_codes SET used_at = $2 WHERE hash = $1 AND used_at IS NULL`, hash(code), clock.Micros(now))
	if err != nil {
		return Tokens{}, fmt.Errorf("spend code: %w", err)
	}
	if n, _ := r.RowsAffected(); n != 1 {
		return Tokens{}, s.codeReplayed(ctx, c, consentID, family)
	}
	switch {
	case expires <= clock.Micros(now):
		return Tokens{}, fail("invalid_grant", "the code has expired (it is valid for %v)", CodeTTL)
	case redirectURI != redirect:
		return Tokens{}, fail("invalid_grant", "redirect_uri differs from the authorization request's")
	case !verifierRE.MatchString(verifier):
		return Tokens{}, fail("invalid_grant", "code_verifier is missing or malformed")
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) != 1 {
		return Tokens{}, fail("invalid_grant", "code_verifier does not match the code_challenge")
	}
	bound, err := s.binding(ctx, c, proof, jkt)
	if err != nil {
		return Tokens{}, err
	}
	cs, err := s.consent(ctx, s.db, consentID)
	if err != nil {
		return Tokens{}, err
	}
	if !cs.current(now) {
		return Tokens{}, fail("invalid_grant", "the consent was withdrawn or has ended")
	}
	var t Tokens
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		t, err = s.issue(ctx, tx, cs, family, bound, nil)
		if err != nil {
			return err
		}
		return s.chain(ctx, tx, "token", cs.event(c))
	})
	return t, err
}

// binding checks the DPoP proof of a token request: required when the
// client or the code (dpop_jkt) demands one, and then for the same key.
func (s *Service) binding(ctx context.Context, c *Client, proof *DPoPProof, want string) (string, error) {
	if proof == nil || proof.Header == "" {
		if c.RequireDPoP || want != "" {
			return "", fail("invalid_dpop_proof", "a DPoP proof is required for this client")
		}
		return "", nil
	}
	jkt, e := s.checkDPoP(ctx, *proof, "")
	if e != nil {
		return "", e
	}
	if want != "" && jkt != want {
		return "", fail("invalid_dpop_proof", "the DPoP key is not the one the tokens are bound to")
	}
	return jkt, nil
}

func (s *Service) codeReplayed(ctx context.Context, c *Client, consentID, family string) error {
	now := clock.Micros(s.clock.Now())
	if _, err := s.db.ExecContext(ctx, `UPDATE oauth_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL`, family, now); err != nil {
		return fmt.Errorf("revoke tokens of a replayed code: %w", err)
	}
	ev := audit.Event{Outcome: audit.OutcomeDenied, UserID: c.ID, UserName: c.Name, SourceApp: c.ID, Reason: "code used twice: its tokens are revoked"}
	if cs, err := s.consent(ctx, s.db, consentID); err == nil {
		ev = cs.event(c)
		ev.Outcome, ev.Reason = audit.OutcomeDenied, "code used twice: its tokens are revoked"
	}
	if err := s.chain(ctx, nil, "code-replay", ev); err != nil {
		return err
	}
	return fail("invalid_grant", "the code was used before; every token issued from it is revoked")
}

// consentRow is a consent as the token paths need it.
type consentRow struct {
	id, tenantID, clientID, accountID, patientID, scopes, assurance string
	onBehalf                                                        bool
	expires                                                         int64
	revoked                                                         sql.NullInt64
}

func (cs consentRow) current(now time.Time) bool {
	return !cs.revoked.Valid && cs.expires > clock.Micros(now)
}

// event is the chain-log event of a step under this consent.
func (cs consentRow) event(c *Client) audit.Event {
	ev := audit.Event{TenantID: cs.tenantID, UserID: cs.accountID, Role: string(access.RolePerson), PatientID: cs.patientID,
		SourceApp: c.ID, Scopes: strings.Fields(cs.scopes), Assurance: cs.assurance}
	if cs.onBehalf {
		ev.OnBehalfOf = cs.patientID
	}
	return ev
}

func (s *Service) consent(ctx context.Context, q store.Querier, id string) (consentRow, error) {
	cs := consentRow{id: id}
	err := q.QueryRowContext(ctx, `SELECT tenant_id, client_id, account_id, patient_id, on_behalf, scopes, assurance, expires_at, revoked_at
		FROM oauth_consents WHERE id = $1`, id).Scan(&cs.tenantID, &cs.clientID, &cs.accountID, &cs.patientID, &cs.onBehalf, &cs.scopes,
		&cs.assurance, &cs.expires, &cs.revoked)
	if err != nil {
		return cs, fmt.Errorf("read consent: %w", err)
	}
	return cs, nil
}

// issue stores a new access and refresh token of the family.
func (s *Service) issue(ctx context.Context, tx *store.Tx, cs consentRow, family, jkt string, parent []byte) (Tokens, error) {
	now := s.clock.Now()
	at, ah, err := s.secret("zka_")
	if err != nil {
		return Tokens{}, err
	}
	rt, rh, err := s.secret("zkr_")
	if err != nil {
		return Tokens{}, err
	}
	accessEnd := min(clock.Micros(now.Add(AccessTTL)), cs.expires)
	ins := `INSERT INTO oauth_tokens (hash, kind, family, consent_id, client_id, dpop_jkt, parent, issued_at, expires_at) VALUES ` +
		`($1, 'access', $2, $3, $4, $5, NULL, $6, $7), ($8, 'refresh', $2, $3, $4, $5, $9, $6, $10)`
	if _, err := tx.ExecContext(ctx, ins, ah, family, cs.id, cs.clientID, jkt, clock.Micros(now), accessEnd, rh, parent, cs.expires); err != nil {
		return Tokens{}, fmt.Errorf("store tokens: %w", err)
	}
	t := Tokens{AccessToken: at, TokenType: "Bearer", ExpiresIn: int(time.Duration((accessEnd-clock.Micros(now))*1000) / time.Second),
		RefreshToken: rt, Scope: cs.scopes, Patient: cs.patientID}
	if jkt != "" {
		t.TokenType = "DPoP"
	}
	return t, nil
}

// Refresh rotates a refresh token (grant_type refresh_token).
func (s *Service) Refresh(ctx context.Context, c *Client, token string, proof *DPoPProof) (Tokens, error) {
	if !strings.HasPrefix(token, "zkr_") || len(token) > 100 {
		return Tokens{}, fail("invalid_grant", "unknown refresh token")
	}
	now := s.clock.Now()
	h := hash(token)
	var family, consentID, clientID, jkt string
	var expires int64
	var rotated, revoked sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT family, consent_id, client_id, dpop_jkt, expires_at, rotated_at, revoked_at
		FROM oauth_tokens WHERE hash = $1 AND kind = 'refresh'`, h).Scan(&family, &consentID, &clientID, &jkt, &expires, &rotated, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return Tokens{}, fail("invalid_grant", "unknown refresh token")
	}
	if err != nil {
		return Tokens{}, fmt.Errorf("read refresh token: %w", err)
	}
	if clientID != c.ID {
		return Tokens{}, fail("invalid_grant", "the refresh token was issued to another client")
	}
	cs, err := s.consent(ctx, s.db, consentID)
	if err != nil {
		return Tokens{}, err
	}
	if revoked.Valid || !cs.current(now) || expires <= clock.Micros(now) {
		return Tokens{}, fail("invalid_grant", "the refresh token is revoked or expired, or its consent was withdrawn")
	}
	bound, err := s.binding(ctx, c, proof, jkt)
	if err != nil {
		return Tokens{}, err
	}
	var t Tokens
	var reuse bool
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		reuse = false
		if rotated.Valid {
			ok, err := s.inGrace(ctx, tx, h, rotated.Int64, now)
			if err != nil {
				return err
			}
			if !ok {
				reuse = true
				return nil
			}
		} else {
			r, err := tx.ExecContext(ctx, `UPDATE oauth_tokens SET rotated_at = $2 WHERE hash = $1 AND rotated_at IS NULL AND revoked_at IS NULL`, h, clock.Micros(now))
			if err != nil {
				return fmt.Errorf("rotate refresh token: %w", err)
			}
			if n, _ := r.RowsAffected(); n != 1 {
				return errRetry
			}
		}
		var err error
		if t, err = s.issue(ctx, tx, cs, family, bound, h); err != nil {
			return err
		}
		return s.chain(ctx, tx, "refresh", cs.event(c))
	})
	if errors.Is(err, errRetry) {
		return Tokens{}, fail("invalid_grant", "the refresh token was used concurrently; use the newest one")
	}
	if err != nil {
		return Tokens{}, err
	}
	if reuse {
		return Tokens{}, s.refreshReused(ctx, c, cs, family)
	}
	return t, nil
}

var errRetry = errors.New("oauth: changed concurrently")

// inGrace reports whether a rotated refresh token may be used once more:
// it was rotated at most RefreshGrace ago and its successor is the family's
// live head (unused, not revoked), so this is two refreshes crossing, not
// an old token coming back.
func (s *Service) inGrace(ctx context.Context, tx *store.Tx, h []byte, rotatedAt int64, now time.Time) (bool, error) {
	if clock.Micros(now)-rotatedAt > RefreshGrace.Microseconds() {
		return false, nil
	}
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM oauth_tokens WHERE parent = $1 AND kind = 'refresh' AND rotated_at IS NULL AND revoked_at IS NULL`, h).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("refresh grace: %w", err)
	}
	return n > 0, nil
}

// refreshReused revokes the family of a refresh token used again, marks the
// consent so the person sees it, and raises a security event (stolen
// credentials?).
func (s *Service) refreshReused(ctx context.Context, c *Client, cs consentRow, family string) error {
	now := clock.Micros(s.clock.Now())
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE oauth_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL`, family, now); err != nil {
			return fmt.Errorf("revoke token family: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE oauth_consents SET reuse_at = $2 WHERE id = $1`, cs.id, now); err != nil {
			return fmt.Errorf("mark consent: %w", err)
		}
		ev := cs.event(c)
		ev.Outcome, ev.Reason = audit.OutcomeDenied, "refresh token used twice: its family is revoked"
		if err := s.chain(ctx, tx, "refresh-reuse", ev); err != nil {
			return err
		}
		if s.alerts != nil {
			if _, err := s.alerts.Raise(ctx, tx, alert.Entry{TenantID: cs.tenantID, Kind: "refresh-token-reuse", AccountID: cs.accountID,
				SubjectID: cs.patientID, Ref: c.ID, Detail: "app " + c.Name + ": a refresh token was used twice; every token of its family is revoked"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return fail("invalid_grant", "the refresh token was used before; every token of its family is revoked")
}

// Revoke revokes a token of the client (RFC 7009): an access token alone,
// a refresh token with its family. Unknown tokens and tokens of other
// clients are not an error (the answer says nothing about them).
func (s *Service) Revoke(ctx context.Context, c *Client, token string) error {
	if len(token) > 100 {
		return nil
	}
	var kind, family, consentID, clientID string
	err := s.db.QueryRowContext(ctx, `SELECT kind, family, consent_id, client_id FROM oauth_tokens WHERE hash = $1`, hash(token)).
		Scan(&kind, &family, &consentID, &clientID)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && clientID != c.ID) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	now := clock.Micros(s.clock.Now())
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		q, arg := `UPDATE oauth_tokens SET revoked_at = $2 WHERE hash = $1 AND revoked_at IS NULL`, any(hash(token))
		if kind == "refresh" {
			q, arg = `UPDATE oauth_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL`, family
		}
		if _, err := tx.ExecContext(ctx, q, arg, now); err != nil {
			return fmt.Errorf("revoke: %w", err)
		}
		cs, err := s.consent(ctx, tx, consentID)
		if err != nil {
			return err
		}
		return s.chain(ctx, tx, "revoke", cs.event(c))
	})
}

// Access is what a valid access token lets its app do: act for the person
// who consented, on the record consented for, within the scopes.
type Access struct {
	ClientID   string
	ClientName string
	TenantID   string
	AccountID  string
	PatientID  string
	OnBehalf   bool
	Scopes     []string
	Assurance  access.Level
	ConsentID  string
	Expires    time.Time
	DPoP       bool
}

// Lookup checks an access token for the resource server: known, current,
// its consent current, its client active, and, when it is DPoP-bound, a
// valid proof of the same key for this request.
func (s *Service) Lookup(ctx context.Context, token string, proof *DPoPProof) (Access, error) {
	if !strings.HasPrefix(token, "zka_") || len(token) > 100 {
		return Access{}, fail("invalid_token", "unknown access token")
	}
	now := s.clock.Now()
	var a Access
	var jkt, scopes, level, status, person string
	var expires, consentEnd int64
	var revoked, consentRevoked, lastUsed sql.NullInt64
	err := s.db.Stmt(lookupQuery).QueryRowContext(ctx, hash(token)).Scan(&a.ClientID, &jkt, &expires, &revoked, &a.ConsentID, &a.TenantID,
		&a.AccountID, &a.PatientID, &a.OnBehalf, &scopes, &level, &consentEnd, &consentRevoked, &lastUsed, &a.ClientName, &status, &person)
	if errors.Is(err, sql.ErrNoRows) {
		return Access{}, fail("invalid_token", "unknown access token")
	}
	if err != nil {
		return Access{}, fmt.Errorf("look up access token: %w", err)
	}
	n := clock.Micros(now)
	if revoked.Valid || expires <= n || consentRevoked.Valid || consentEnd <= n || status != "active" || person != "active" {
		return Access{}, fail("invalid_token", "the access token is revoked or expired, or its consent was withdrawn")
	}
	if jkt != "" {
		if proof == nil || proof.Header == "" {
			return Access{}, fail("invalid_token", "this access token is DPoP-bound: send a DPoP proof")
		}
		got, e := s.checkDPoP(ctx, *proof, token)
		if e != nil {
			return Access{}, e
		}
		if got != jkt {
			return Access{}, fail("invalid_token", "the DPoP key is not the one the token is bound to")
		}
		a.DPoP = true
	}
	a.Scopes, a.Expires, a.Assurance = strings.Fields(scopes), clock.FromMicros(expires), parseLevel(level)
	if !lastUsed.Valid || n-lastUsed.Int64 > time.Minute.Microseconds() {
		// The person's overview shows when an app last used its consent; a
		// minute is precise enough and spares a write per request.
		if _, err := s.db.ExecContext(ctx, `UPDATE oauth_consents SET last_used_at = $2 WHERE id = $1`, a.ConsentID, n); err != nil {
			return Access{}, fmt.Errorf("note consent use: %w", err)
		}
	}
	return a, nil
}

// lookupQuery reads a token with its consent, its client and the state of
// the person who consented, so that a deactivated account (ID-5) stops its
// apps at once.
const lookupQuery = `SELECT t.client_id, t.dpop_jkt, t.expires_at, t.revoked_at, c.id, c.tenant_id, c.account_id, c.patient_id, c.on_behalf,
	c.scopes, c.assurance, c.expires_at, c.revoked_at, c.last_used_at, cl.name, cl.status, COALESCE(a.status, '')
	FROM oauth_tokens t JOIN oauth_consents c ON c.id = t.consent_id JOIN oauth_clients cl ON cl.id = t.client_id
	LEFT JOIN accounts a ON a.id = c.account_id
	WHERE t.hash = $1 AND t.kind = 'access'`

func parseLevel(s string) access.Level {
	for l := access.Laag; l <= access.ZeerHoog; l++ {
		if l.String() == s {
			return l
		}
	}
	return 0
}

// Introspect answers RFC 7662 for a resource server (a client registered
// with introspect): active and, when active, what the token grants.
func (s *Service) Introspect(ctx context.Context, c *Client, token string) (map[string]any, error) {
	if !c.Introspect {
		return nil, fail("unauthorized_client", "this client may not introspect tokens")
	}
	inactive := map[string]any{"active": false}
	if len(token) > 100 {
		return inactive, nil
	}
	var kind, clientID, jkt, scopes, tenant, account, patient, person string
	var issued, expires, consentEnd int64
	var revoked, consentRevoked sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT t.kind, t.client_id, t.dpop_jkt, t.issued_at, t.expires_at, t.revoked_at, c.scopes, c.tenant_id,
		c.account_id, c.patient_id, c.expires_at, c.revoked_at, COALESCE(a.status, '') FROM oauth_tokens t JOIN oauth_consents c ON c.id = t.consent_id
		LEFT JOIN accounts a ON a.id = c.account_id WHERE t.hash = $1`,
		hash(token)).Scan(&kind, &clientID, &jkt, &issued, &expires, &revoked, &scopes, &tenant, &account, &patient, &consentEnd, &consentRevoked, &person)
	if errors.Is(err, sql.ErrNoRows) {
		return inactive, nil
	}
	if err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	n := clock.Micros(s.clock.Now())
	if revoked.Valid || expires <= n || consentRevoked.Valid || consentEnd <= n || person != "active" {
		return inactive, nil
	}
	out := map[string]any{"active": true, "scope": scopes, "client_id": clientID, "sub": account, "patient": patient,
		"iat": issued / 1e6, "exp": expires / 1e6, "iss": s.issuer, "aud": s.Audience(), "token_type": "Bearer"}
	if kind == "refresh" {
		out["token_type"] = "refresh_token"
	}
	if jkt != "" {
		out["cnf"] = map[string]string{"jkt": jkt}
		if kind == "access" {
			out["token_type"] = "DPoP"
		}
	}
	return out, nil
}

// Sweep deletes what can never be used again: expired replay-guard
// entries, requests and codes. Consents and tokens stay (the person's
// overview and the revocation history).
func (s *Service) Sweep(ctx context.Context) error {
	n := clock.Micros(s.clock.Now().Add(-24 * time.Hour))
	for _, q := range []string{`DELETE FROM oauth_jtis WHERE expires_at < $1`, `DELETE FROM oauth_requests WHERE expires_at < $1`,
		`DELETE FROM oauth_codes WHERE expires_at < $1`} {
		if _, err := s.db.ExecContext(ctx, q, n); err != nil {
			return fmt.Errorf("oauth sweep: %w", err)
		}
	}
	return nil
}
