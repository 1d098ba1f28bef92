package oauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/oauth"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

const (
	issuer   = "https://zorgkluis.test"
	redirect = "https://app.example/callback"
	verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-this-is-a-verifier"
)

type fixture struct {
	t      *testing.T
	ctx    context.Context
	db     *store.DB
	clk    *clock.Fake
	svc    *oauth.Service
	log    *audit.Log
	key    *ecdsa.PrivateKey
	client oauth.Client
	public oauth.Client
	person oauth.Person

	changes *change.Service
	second  change.Actor // the tenant's second admin, who approves (GOV-1)
}

// approve has the tenant's second admin approve change request id.
func (f *fixture) approve(id string) {
	f.t.Helper()
	if _, err := f.changes.Decide(f.ctx, f.second, id, true, ""); err != nil {
		f.t.Fatal(err)
	}
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	log := audit.New(db, clk, rand.Reader)
	changes := change.New(change.Config{DB: db, Audit: log, Clock: clk, Rand: rand.Reader})
	svc := oauth.New(oauth.Config{DB: db, Clock: clk, Rand: rand.Reader, Audit: log, Alerts: alert.NewQueue(db, clk, rand.Reader, nil), Issuer: issuer, Changes: changes})
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	f := &fixture{t: t, ctx: ctx, db: db, clk: clk, svc: svc, log: log, key: key, changes: changes}
	ids := identity.NewRegistry(db, clk, rand.Reader)
	ten, err := ids.CreateTenant(ctx, identity.Tenant{Name: "Huisartsen De Linde"})
	if err != nil {
		t.Fatal(err)
	}
	acc, err := ids.CreateAccount(ctx, identity.Account{TenantID: ten.ID, Kind: identity.KindPerson, Username: "sanne", DisplayName: "Sanne de Vries", RegistrationMethod: 3})
	if err != nil {
		t.Fatal(err)
	}
	f.person = oauth.Person{AccountID: acc.ID, Name: "Sanne de Vries", TenantID: ten.ID, Organisation: ten.Name, PatientID: "p-1", Assurance: access.Hoog}
	by := oauth.Registrar{AccountID: "a-admin", TenantID: ten.ID}
	f.second = change.Actor{TenantID: ten.ID, AccountID: "a-second", Role: "application-admin"}
	f.client, err = svc.Register(ctx, by, oauth.Client{Name: "MijnGezondheid", RedirectURIs: []string{redirect},
		AuthMethod: oauth.AuthPrivateKeyJWT, JWKS: jwks, Scopes: []string{"patient/*.rs"}})
	if err != nil {
		t.Fatal(err)
	}
	f.approve(f.client.ChangeRequest)
	req, err := svc.SetPublicPolicy(ctx, by, true)
	if err != nil {
		t.Fatal(err)
	}
	f.approve(req.ID)
	f.public, err = svc.Register(ctx, by, oauth.Client{Name: "Dagboek", RedirectURIs: []string{"http://127.0.0.1:9999/cb"},
		AuthMethod: oauth.AuthNone, Scopes: []string{"patient/Observation.rs"}})
	if err != nil {
		t.Fatal(err)
	}
	f.approve(f.public.ChangeRequest)
	f.client.Active, f.public.Active = true, true
	return f
}

func challenge(v string) string {
	s := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

func (f *fixture) request(c oauth.Client) oauth.AuthRequest {
	return oauth.AuthRequest{ClientID: c.ID, RedirectURI: c.RedirectURIs[0], ResponseType: "code", Scope: c.Scopes[0] + " launch/patient",
		State: "st-123", CodeChallenge: challenge(verifier), CodeChallengeMethod: "S256", Audience: issuer + "/fhir"}
}

// code runs the front channel: authorize, the person agrees; it returns the
// code from the redirect.
func (f *fixture) code(c oauth.Client, r oauth.AuthRequest) string {
	f.t.Helper()
	ref, err := f.svc.Authorize(f.ctx, r)
	if err != nil {
		f.t.Fatalf("authorize: %v", err)
	}
	loc, err := f.svc.Decide(f.ctx, ref, f.person, true)
	if err != nil {
		f.t.Fatalf("decide: %v", err)
	}
	u, _ := url.Parse(loc)
	q := u.Query()
	if !strings.HasPrefix(loc, c.RedirectURIs[0]+"?") || q.Get("state") != r.State || q.Get("iss") != issuer || q.Get("code") == "" {
		f.t.Fatalf("redirect after consent: %s", loc)
	}
	return q.Get("code")
}

func (f *fixture) assertion(aud string) string {
	f.t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: f.key, KeyID: "k1"}}, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	jti := make([]byte, 16)
	rand.Read(jti)
	now := f.clk.Now()
	s, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: f.client.ID, Subject: f.client.ID, Audience: jwt.Audience{aud}, ID: base64.RawURLEncoding.EncodeToString(jti),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) auth() *oauth.Client {
	f.t.Helper()
	c, err := f.svc.AuthenticateClient(f.ctx, oauth.ClientAuth{AssertionType: oauth.AssertionType, Assertion: f.assertion(issuer + "/oauth/token"), Endpoint: issuer + "/oauth/token"})
	if err != nil {
		f.t.Fatalf("client authentication: %v", err)
	}
	return c
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var oe *oauth.Error
	var ae *oauth.AuthorizeError
	switch {
	case errors.As(err, &ae):
		oe = ae.Err
	case !errors.As(err, &oe):
		t.Fatalf("error %v; want OAuth error %s", err, code)
	}
	if oe.Code != code {
		t.Fatalf("error %q (%s); want %s", oe.Code, oe.Description, code)
	}
}

// The whole flow: authorization request, consent, code for tokens with
// PKCE and private_key_jwt, the access token looked up as the person's app
// with the consent's scopes, a refresh rotating the pair, revocation; the
// consent and every step logged (LOG-8, LOG-6).
//
// REQ: EX-1, LOG-8, LOG-6
func TestCodeFlow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		code := f.code(f.client, f.request(f.client))
		tok, err := f.svc.Exchange(f.ctx, f.auth(), code, redirect, verifier, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tok.AccessToken, "zka_") || !strings.HasPrefix(tok.RefreshToken, "zkr_") || tok.TokenType != "Bearer" ||
			tok.ExpiresIn != 900 || tok.Patient != "p-1" || tok.Scope != "patient/*.rs" {
			t.Fatalf("tokens %+v", tok)
		}
		a, err := f.svc.Lookup(f.ctx, tok.AccessToken, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.AccountID != f.person.AccountID || a.PatientID != "p-1" || a.ClientID != f.client.ID || a.ClientName != "MijnGezondheid" ||
			a.Assurance != access.Hoog || len(a.Scopes) != 1 || a.OnBehalf {
			t.Fatalf("access %+v", a)
		}
		// Stored only hashed: neither token appears in the database.
		var n int
		if err := db.QueryRowContext(f.ctx, `SELECT COUNT(*) FROM oauth_tokens WHERE hash = $1 OR hash = $2`, []byte(tok.AccessToken), []byte(tok.RefreshToken)).Scan(&n); err != nil || n != 0 {
			t.Fatalf("a token stored in the clear: %d %v", n, err)
		}
		f.clk.Advance(time.Minute)
		next, err := f.svc.Refresh(f.ctx, f.auth(), tok.RefreshToken, nil)
		if err != nil {
			t.Fatal(err)
		}
		if next.RefreshToken == tok.RefreshToken || next.AccessToken == tok.AccessToken {
			t.Fatal("refresh did not rotate")
		}
		// An access token expires after 15 minutes.
		f.clk.Advance(oauth.AccessTTL)
		_, err = f.svc.Lookup(f.ctx, next.AccessToken, nil)
		wantCode(t, err, "invalid_token")
		third, err := f.svc.Refresh(f.ctx, f.auth(), next.RefreshToken, nil)
		if err != nil {
			t.Fatal(err)
		}
		c := f.auth()
		if err := f.svc.Revoke(f.ctx, c, third.RefreshToken); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Lookup(f.ctx, third.AccessToken, nil)
		wantCode(t, err, "invalid_token")
		evs, err := f.log.Query(f.ctx, audit.Filter{TenantID: f.person.TenantID})
		if err != nil {
			t.Fatal(err)
		}
		steps := map[string]int{}
		consents := 0
		for _, e := range evs {
			if e.Action == audit.ActionExchange && e.Kind == audit.KindChain {
				steps[e.Query]++
			}
			if e.Action == audit.ActionConsent && e.PatientID == "p-1" && e.UserID == f.person.AccountID && e.SourceApp == f.client.ID {
				consents++
			}
		}
		for _, s := range []string{"authorize", "consent", "token", "refresh", "revoke"} {
			if steps[s] == 0 {
				t.Errorf("no chain-log event for %s: %v", s, steps)
			}
		}
		if consents != 1 || steps["refresh"] != 2 {
			t.Errorf("consent events %d, refreshes %d", consents, steps["refresh"])
		}
		// A deactivated person's apps stop at once (ID-5).
		code = f.code(f.client, f.request(f.client))
		tok, err = f.svc.Exchange(f.ctx, f.auth(), code, redirect, verifier, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(f.ctx, `UPDATE accounts SET status = 'deactivated' WHERE id = $1`, f.person.AccountID); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Lookup(f.ctx, tok.AccessToken, nil)
		wantCode(t, err, "invalid_token")
	})
}

// Each way a request can be wrong gets its RFC error: plain PKCE, no PKCE,
// a wrong redirect (never redirected to), wrong aud, a scope outside the
// registration, a wrong verifier, an expired code, a code used twice
// (whose tokens are then revoked), a refresh token used again (its family
// revoked, the person told, a security event raised), a withdrawn consent,
// a replayed client assertion.
//
// REQ: EX-1
func TestRefusals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		r := f.request(f.client)
		plain := r
		plain.CodeChallengeMethod = "plain"
		_, err := f.svc.Authorize(f.ctx, plain)
		wantCode(t, err, "invalid_request")
		var ae *oauth.AuthorizeError
		if !errors.As(err, &ae) || ae.RedirectURI != redirect || !strings.Contains(ae.Location(issuer), "state=st-123") {
			t.Fatalf("plain: %v", err)
		}
		none := r
		none.CodeChallenge, none.CodeChallengeMethod = "", ""
		_, err = f.svc.Authorize(f.ctx, none)
		wantCode(t, err, "invalid_request")
		wrong := r
		wrong.RedirectURI = "https://evil.example/callback"
		_, err = f.svc.Authorize(f.ctx, wrong)
		if !errors.As(err, &ae) || ae.RedirectURI != "" {
			t.Fatalf("a wrong redirect_uri must not be redirected to: %v", err)
		}
		aud := r
		aud.Audience = "https://other.example/fhir"
		_, err = f.svc.Authorize(f.ctx, aud)
		wantCode(t, err, "invalid_request")
		scope := f.request(f.public)
		scope.Scope = "patient/Condition.rs"
		_, err = f.svc.Authorize(f.ctx, scope)
		wantCode(t, err, "invalid_scope")
		typ := r
		typ.ResponseType = "token"
		_, err = f.svc.Authorize(f.ctx, typ)
		wantCode(t, err, "unsupported_response_type")

		code := f.code(f.client, r)
		_, err = f.svc.Exchange(f.ctx, f.auth(), code, redirect, verifier+"x", nil)
		wantCode(t, err, "invalid_grant")
		// The code was spent by that attempt: using it again is a replay.
		_, err = f.svc.Exchange(f.ctx, f.auth(), code, redirect, verifier, nil)
		wantCode(t, err, "invalid_grant")

		code = f.code(f.client, r)
		_, err = f.svc.Exchange(f.ctx, f.auth(), code, "https://app.example/other", verifier, nil)
		wantCode(t, err, "invalid_grant")

		code = f.code(f.client, r)
		f.clk.Advance(oauth.CodeTTL + time.Second)
		_, err = f.svc.Exchange(f.ctx, f.auth(), code, redirect, verifier, nil)
		wantCode(t, err, "invalid_grant")

		// Code replay after a successful exchange revokes what it gave.
		code = f.code(f.client, r)
		tok, err := f.svc.Exchange(f.ctx, f.auth(), code, redirect, verifier, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Exchange(f.ctx, f.auth(), code, redirect, verifier, nil)
		wantCode(t, err, "invalid_grant")
		_, err = f.svc.Lookup(f.ctx, tok.AccessToken, nil)
		wantCode(t, err, "invalid_token")
		_, err = f.svc.Refresh(f.ctx, f.auth(), tok.RefreshToken, nil)
		wantCode(t, err, "invalid_grant")

		// Refresh reuse: within 30 s the previous token works once more
		// (crossing refreshes); later its reuse revokes the family.
		code = f.code(f.client, r)
		tok, err = f.svc.Exchange(f.ctx, f.auth(), code, redirect, verifier, nil)
		if err != nil {
			t.Fatal(err)
		}
		second, err := f.svc.Refresh(f.ctx, f.auth(), tok.RefreshToken, nil)
		if err != nil {
			t.Fatal(err)
		}
		f.clk.Advance(5 * time.Second)
		if _, err := f.svc.Refresh(f.ctx, f.auth(), tok.RefreshToken, nil); err != nil {
			t.Fatalf("crossing refresh within the grace: %v", err)
		}
		f.clk.Advance(oauth.RefreshGrace)
		_, err = f.svc.Refresh(f.ctx, f.auth(), tok.RefreshToken, nil)
		wantCode(t, err, "invalid_grant")
		_, err = f.svc.Refresh(f.ctx, f.auth(), second.RefreshToken, nil)
		wantCode(t, err, "invalid_grant")
		_, err = f.svc.Lookup(f.ctx, second.AccessToken, nil)
		wantCode(t, err, "invalid_token")
		cs, err := f.svc.Consents(f.ctx, f.person.AccountID)
		if err != nil || len(cs) == 0 || cs[0].Reuse == nil {
			t.Fatalf("the person is not shown the reuse: %+v %v", cs, err)
		}
		var raised int
		if err := db.QueryRowContext(f.ctx, `SELECT COUNT(*) FROM alert_security_events WHERE kind = 'refresh-token-reuse' AND tenant_id = $1`, f.person.TenantID).Scan(&raised); err != nil || raised != 1 {
			t.Fatalf("security events for the reuse: %d %v", raised, err)
		}

		// A withdrawn consent stops its tokens at once.
		code = f.code(f.client, r)
		tok, err = f.svc.Exchange(f.ctx, f.auth(), code, redirect, verifier, nil)
		if err != nil {
			t.Fatal(err)
		}
		cs, _ = f.svc.Consents(f.ctx, f.person.AccountID)
		if err := f.svc.Withdraw(f.ctx, f.person, cs[0].ID); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Lookup(f.ctx, tok.AccessToken, nil)
		wantCode(t, err, "invalid_token")
		_, err = f.svc.Refresh(f.ctx, f.auth(), tok.RefreshToken, nil)
		wantCode(t, err, "invalid_grant")
		if err := f.svc.Withdraw(f.ctx, oauth.Person{AccountID: "a-other"}, cs[0].ID); !errors.Is(err, oauth.ErrNotFound) {
			t.Fatalf("another person withdrew a consent: %v", err)
		}

		// A client assertion works once; a public client cannot pose as a
		// confidential one.
		as := f.assertion(issuer)
		if _, err := f.svc.AuthenticateClient(f.ctx, oauth.ClientAuth{AssertionType: oauth.AssertionType, Assertion: as}); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.AuthenticateClient(f.ctx, oauth.ClientAuth{AssertionType: oauth.AssertionType, Assertion: as})
		wantCode(t, err, "invalid_client")
		_, err = f.svc.AuthenticateClient(f.ctx, oauth.ClientAuth{ClientID: f.client.ID})
		wantCode(t, err, "invalid_client")
		if _, err := f.svc.AuthenticateClient(f.ctx, oauth.ClientAuth{ClientID: f.public.ID}); err != nil {
			t.Fatal(err)
		}
	})
}

// A pushed request (RFC 9126) is redeemed once by its own client; a client
// that requires PAR cannot send its request through the browser.
//
// REQ: EX-1
func TestPushedRequests(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		r := f.request(f.client)
		uri, ttl, err := f.svc.Push(f.ctx, f.auth(), r)
		if err != nil || !strings.HasPrefix(uri, "urn:ietf:params:oauth:request_uri:") || ttl != oauth.PushedTTL {
			t.Fatalf("push: %q %v %v", uri, ttl, err)
		}
		if _, err := f.svc.Authorize(f.ctx, oauth.AuthRequest{ClientID: f.public.ID, RequestURI: uri}); err == nil {
			t.Fatal("another client redeemed the request_uri")
		}
		ref, err := f.svc.Authorize(f.ctx, oauth.AuthRequest{ClientID: f.client.ID, RequestURI: uri})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Authorize(f.ctx, oauth.AuthRequest{ClientID: f.client.ID, RequestURI: uri}); err == nil {
			t.Fatal("a request_uri worked twice")
		}
		p, err := f.svc.Pending(f.ctx, ref)
		if err != nil || p.Client.ID != f.client.ID || len(p.Categories) != 4 || p.Days != 90 {
			t.Fatalf("pending %+v %v", p, err)
		}
		loc, err := f.svc.Decide(f.ctx, ref, f.person, false)
		if err != nil || !strings.Contains(loc, "error=access_denied") || !strings.Contains(loc, "state=st-123") {
			t.Fatalf("refusal: %s %v", loc, err)
		}
		if _, err := f.svc.Decide(f.ctx, ref, f.person, true); !errors.Is(err, oauth.ErrNotFound) {
			t.Fatalf("a decided request decided again: %v", err)
		}
		if _, err := f.svc.Decide(f.ctx, "zkq_unknown", f.person, true); !errors.Is(err, oauth.ErrNotFound) {
			t.Fatalf("unknown request: %v", err)
		}
		// A day later the sweep has removed what can never be used again.
		f.code(f.client, r)
		f.clk.Advance(25 * time.Hour)
		if err := f.svc.Sweep(f.ctx); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"oauth_requests", "oauth_codes", "oauth_jtis"} {
			var n int
			if err := db.QueryRowContext(f.ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil || n != 0 {
				t.Fatalf("%s after the sweep: %d rows (%v)", table, n, err)
			}
		}
	})
}

// A registration and a change of the public-client policy are four-eyes
// change requests: the app cannot start an authorization before a second
// admin approves it, its registrar cannot approve it, a rejected app never
// becomes active, and an approved public client whose organisation
// withdrew public clients meanwhile is not activated.
//
// REQ: GOV-1, EX-1
func TestRegistrationFourEyes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		by := oauth.Registrar{AccountID: "a-admin", TenantID: f.person.TenantID}
		cl, err := f.svc.Register(f.ctx, by, oauth.Client{Name: "Wachtend", RedirectURIs: []string{"https://app.example/cb"},
			AuthMethod: oauth.AuthNone, Scopes: []string{"patient/Observation.rs"}})
		if err != nil || cl.Active || cl.ChangeRequest == "" {
			t.Fatalf("registered: %+v %v", cl, err)
		}
		r := f.request(cl)
		if _, err := f.svc.Authorize(f.ctx, r); err == nil {
			t.Fatal("a proposed app started an authorization")
		}
		if _, err := f.changes.Decide(f.ctx, change.Actor{TenantID: by.TenantID, AccountID: by.AccountID, Role: "application-admin"}, cl.ChangeRequest, true, ""); !errors.Is(err, change.ErrSelf) {
			t.Fatalf("the registrar approved: %v", err)
		}
		// The organisation withdraws public clients before the approval.
		off, err := f.svc.SetPublicPolicy(f.ctx, by, false)
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := f.svc.AllowsPublic(f.ctx, by.TenantID); !ok {
			t.Fatal("the policy changed before its approval")
		}
		f.approve(off.ID)
		if ok, _ := f.svc.AllowsPublic(f.ctx, by.TenantID); ok {
			t.Fatal("the approved policy is not in force")
		}
		if _, err := f.changes.Decide(f.ctx, f.second, cl.ChangeRequest, true, ""); !errors.Is(err, change.ErrInapplicable) {
			t.Fatalf("a public client approved after the policy changed: %v", err)
		}
		if got, _, _ := f.svc.Client(f.ctx, cl.ID); got.Active {
			t.Fatal("the inapplicable client is active")
		}
		rej, err := f.svc.Register(f.ctx, by, oauth.Client{Name: "Afgewezen", RedirectURIs: []string{"https://app2.example/cb"},
			AuthMethod: oauth.AuthPrivateKeyJWT, JWKS: f.client.JWKS, Scopes: []string{"patient/*.rs"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.changes.Decide(f.ctx, f.second, rej.ChangeRequest, false, "unknown vendor"); err != nil {
			t.Fatal(err)
		}
		if got, _, _ := f.svc.Client(f.ctx, rej.ID); got.Active {
			t.Fatal("a rejected client is active")
		}
	})
}
