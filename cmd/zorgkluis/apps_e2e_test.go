package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/zorgkluis/zorgkluis/internal/demo"
)

// openidClientVersion and oauth4webapiVersion are the npm releases the
// test pins.
const (
	openidClientVersion = "6.8.9"
	oauth4webapiVersion = "3.8.8"
)

// person is the demo patient's browser: a cookie jar that logs on once
// (password and TOTP) and then decides on apps' consent pages, as the
// person would, without following the final redirect to the app.
type person struct {
	t    *testing.T
	c    *http.Client
	base string
	user demo.User
	on   bool
}

func newPerson(t *testing.T, base string, u demo.User) *person {
	jar, _ := cookiejar.New(nil)
	c := client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &person{t: t, c: c, base: base, user: u}
}

var (
	csrfRE    = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	requestRE = regexp.MustCompile(`name="request" value="([^"]+)"`)
	patientRE = regexp.MustCompile(`name="patient" value="([^"]+)"`)
)

func (p *person) get(u string) (*http.Response, string) {
	p.t.Helper()
	if strings.HasPrefix(u, "/") {
		u = p.base + u
	}
	resp, err := p.c.Get(u)
	if err != nil {
		p.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func (p *person) post(path string, form url.Values) *http.Response {
	p.t.Helper()
	resp, err := p.c.PostForm(p.base+path, form)
	if err != nil {
		p.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func field(t *testing.T, re *regexp.Regexp, page string) string {
	t.Helper()
	m := re.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no %s on the page:\n%s", re, page)
	}
	return m[1]
}

// consent follows an authorization URL to the consent page (logging on
// first when needed), checks the page names the app and the organisation,
// agrees or refuses, and returns where the browser is sent: the app's
// redirect URI with the code or the error.
func (p *person) consent(authorize, app string, agree bool) string {
	p.t.Helper()
	resp, _ := p.get(authorize)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/apps/consent?request=") {
		p.t.Fatalf("authorize: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	next := resp.Header.Get("Location")
	resp, page := p.get(next)
	if !p.on {
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/logon" {
			p.t.Fatalf("consent page without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		_, page = p.get("/logon")
		csrf := field(p.t, csrfRE, page)
		if r := p.post("/logon", url.Values{"csrf": {csrf}, "username": {p.user.Username}, "password": {p.user.Password}}); r.StatusCode != http.StatusSeeOther {
			p.t.Fatalf("logon: %d", r.StatusCode)
		}
		r := p.post("/logon/factor", url.Values{"csrf": {csrf}, "factor": {"totp"}, "code": {oathtool(p.t, p.user.TOTPSecret, 0)}})
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != next {
			p.t.Fatalf("after the log-on the browser goes to %d %q, not back to the consent page %q", r.StatusCode, r.Header.Get("Location"), next)
		}
		p.on = true
		resp, page = p.get(next)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, app) || !strings.Contains(page, "Huisartsenpraktijk De Linde") ||
		!strings.Contains(page, "toestemming") {
		p.t.Fatalf("consent page: %d\n%s", resp.StatusCode, page)
	}
	decision := "refuse"
	if agree {
		decision = "agree"
	}
	r := p.post("/apps/consent", url.Values{"csrf": {field(p.t, csrfRE, page)}, "request": {field(p.t, requestRE, page)},
		"patient": {field(p.t, patientRE, page)}, "decision": {decision}})
	if r.StatusCode != http.StatusSeeOther {
		p.t.Fatalf("decision: %d", r.StatusCode)
	}
	return r.Header.Get("Location")
}

// TestAppsOverOAuth: a person's apps connect through the authorisation
// server with clients nobody here wrote. openid-client (npm, v6) discovers
// the server (RFC 8414), pushes its request (PAR) with PKCE S256,
// authenticates with private_key_jwt, gets DPoP-bound tokens after the
// person logged on with two factors and consented, reads the person's
// Observations and Patient with MedMij-Request-ID carried, refreshes
// (rotation) and revokes. golang.org/x/oauth2 does the same as a public
// client with PKCE, and oauth4webapi (npm) too, sending its code a second
// time, which is refused and revokes what the code gave. The refusals an
// app must see: a redirect URI not
// registered (an error page, no redirect), PKCE plain (an error at the
// redirect URI with state and iss), a scope outside the consent, another
// patient's record, a withdrawn consent; and every step is in the chain
// log with the app as the client.
//
// REQ: EX-1, EX-2, LOG-6, LOG-8, AZ-4
func TestAppsOverOAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("installs an npm package and starts the server")
	}
	dir := t.TempDir()
	install := exec.Command("npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "openid-client@"+openidClientVersion,
		"oauth4webapi@"+oauth4webapiVersion)
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm install openid-client@%s oauth4webapi@%s: %v\n%s", openidClientVersion, oauth4webapiVersion, err, out)
	}
	for from, to := range map[string]string{"apps_openid_client.mjs": "app.mjs", "apps_oauth4webapi.mjs": "app4.mjs"} {
		script, err := os.ReadFile(filepath.Join("testdata", from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, to), script, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	bin := buildBinary(t)
	data := t.TempDir()
	srv := startServer(t, bin, data)
	// The issuer is the public URL the server was given (localhost, the
	// WebAuthn RP ID), and apps check that they talk to exactly that.
	base := strings.Replace(srv.base, "//127.0.0.1:", "//localhost:", 1)
	creds := readCreds(t, data)
	c := client()
	admin := logon(t, c, base, demoUser(t, creds, "beheer.smit"))
	approver := logon(t, c, base, demoUser(t, creds, "beheer.visser")) // four eyes (GOV-1)

	// The admin registers two apps: a confidential one with its public key
	// (private_key_jwt, DPoP and PAR required) and, once the organisation
	// allows public clients, a public one for Observations only.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), Algorithm: "ES256", Use: "sig"}}})
	priv, _ := json.Marshal(jose.JSONWebKey{Key: key, Algorithm: "ES256"})
	appRedirect := "http://127.0.0.1:7/callback"
	code, b, _ := do(t, c, "POST", base+"/api/v1/oauth/clients", admin, map[string]any{"client_name": "MijnPGO", "redirect_uris": []string{appRedirect},
		"token_endpoint_auth_method": "private_key_jwt", "jwks": json.RawMessage(pub), "scopes": []string{"patient/*.rs"},
		"require_pushed_authorization_requests": true, "dpop_bound_access_tokens": true})
	if code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, b)
	}
	approveChange(t, c, base, approver, b)
	var pgo struct {
		ID string `json:"client_id"`
	}
	json.Unmarshal(b, &pgo)
	code, b, _ = do(t, c, "POST", base+"/api/v1/oauth/clients", admin, map[string]any{"client_name": "Dagboek", "redirect_uris": []string{"http://127.0.0.1:8/cb"},
		"token_endpoint_auth_method": "none", "scopes": []string{"patient/Observation.rs"}})
	if code != http.StatusBadRequest || !strings.Contains(string(b), "public") {
		t.Fatalf("a public client before the organisation allows them: %d %s", code, b)
	}
	if code, b, _ = do(t, c, "PUT", base+"/api/v1/oauth/policy", admin, map[string]any{"allow_public_clients": true}); code != http.StatusAccepted {
		t.Fatalf("policy: %d %s", code, b)
	} else {
		approveChange(t, c, base, approver, b)
	}
	code, b, _ = do(t, c, "POST", base+"/api/v1/oauth/clients", admin, map[string]any{"client_name": "Dagboek", "redirect_uris": []string{"http://127.0.0.1:8/cb"},
		"token_endpoint_auth_method": "none", "scopes": []string{"patient/Observation.rs"}})
	if code != http.StatusCreated {
		t.Fatalf("register public: %d %s", code, b)
	}
	approveChange(t, c, base, approver, b)
	var diary struct {
		ID string `json:"client_id"`
	}
	json.Unmarshal(b, &diary)

	who := newPerson(t, base, demoUser(t, creds, "s.devries"))

	// openid-client: PAR, private_key_jwt, PKCE, DPoP.
	node := exec.Command("node", "app.mjs")
	node.Dir = dir
	node.Env = append(os.Environ(), "ZK_BASE="+base, "ZK_CLIENT_ID="+pgo.ID, "ZK_CLIENT_KEY="+string(priv), "ZK_REDIRECT="+appRedirect,
		"ZK_TRACE=3f2b8c1e-5d4a-4e7b-9c0d-1a2b3c4d5e6f", "NODE_EXTRA_CA_CERTS="+filepath.Join(data, "demo-cert.pem"))
	stdin, _ := node.StdinPipe()
	stdout, _ := node.StdoutPipe()
	var stderr strings.Builder
	node.Stderr = &stderr
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	var first struct{ Authorize string }
	if !lines.Scan() || json.Unmarshal(lines.Bytes(), &first) != nil || !strings.Contains(first.Authorize, "request_uri=") {
		node.Process.Kill()
		t.Fatalf("openid-client: %q\n%s", lines.Text(), stderr.String())
	}
	callback := who.consent(first.Authorize, "MijnPGO", true)
	if !strings.HasPrefix(callback, appRedirect+"?") || !strings.Contains(callback, "iss=") {
		t.Fatalf("callback %s", callback)
	}
	io.WriteString(stdin, callback+"\n")
	stdin.Close()
	var got struct {
		TokenType, Patient, Scope, MedmijEcho, CorrelationEcho string
		ExpiresIn, SearchStatus, PatientStatus, BearerStatus   float64
		Observations                                           int
		Rotated                                                bool
		AfterRefresh, AfterRevoke                              any
	}
	if !lines.Scan() || json.Unmarshal(lines.Bytes(), &got) != nil {
		t.Fatalf("openid-client result: %q\n%s", lines.Text(), stderr.String())
	}
	t.Logf("openid-client: %+v", got)
	if err := node.Wait(); err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	for _, ch := range []struct {
		name string
		ok   bool
	}{
		{"DPoP token type", got.TokenType == "dpop"},
		{"patient context", got.Patient == creds.PatientID},
		{"15-minute access token", got.ExpiresIn == 900},
		{"Observation search", got.SearchStatus == 200 && got.Observations > 0},
		{"MedMij-Request-ID echoed", got.MedmijEcho == "3f2b8c1e-5d4a-4e7b-9c0d-1a2b3c4d5e6f"},
		{"X-Correlation-ID echoed", got.CorrelationEcho == "pgo-corr-0001"},
		{"Patient read", got.PatientStatus == 200},
		{"a DPoP-bound token without its proof is refused", got.BearerStatus == 401},
		{"refresh rotates", got.Rotated && got.AfterRefresh == float64(200)},
		{"revocation stops the token at once", got.AfterRevoke == float64(401)},
	} {
		if !ch.ok {
			t.Errorf("openid-client: %s: %+v", ch.name, got)
		}
	}

	// golang.org/x/oauth2 as a public client with PKCE.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, c)
	conf := &oauth2.Config{ClientID: diary.ID, RedirectURL: "http://127.0.0.1:8/cb", Scopes: []string{"patient/Observation.rs"},
		Endpoint: oauth2.Endpoint{AuthURL: base + "/oauth/authorize", TokenURL: base + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	loc := who.consent(conf.AuthCodeURL("diary-state", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("aud", base+"/fhir")), "Dagboek", true)
	u, _ := url.Parse(loc)
	if u.Query().Get("state") != "diary-state" {
		t.Fatalf("x/oauth2 callback %s", loc)
	}
	tok, err := conf.Exchange(ctx, u.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Extra("patient") != creds.PatientID || tok.RefreshToken == "" {
		t.Fatalf("x/oauth2 token %+v", tok)
	}
	read := func(tok string, path string) int {
		code, _, _ := do(t, c, "GET", base+path, tok, nil)
		return code
	}
	if code := read(tok.AccessToken, "/fhir/Observation?patient="+creds.PatientID); code != http.StatusOK {
		t.Errorf("x/oauth2 Observation search: %d", code)
	}
	// Outside the consent's scope (Observations only), another patient's
	// record, and the management API: refused.
	if code := read(tok.AccessToken, "/fhir/Condition?patient="+creds.PatientID); code != http.StatusForbidden {
		t.Errorf("a scope outside the consent: %d", code)
	}
	pro := logon(t, c, base, demoUser(t, creds, "dr.jansen"))
	code, b, _ = do(t, c, "POST", base+"/fhir/Patient", pro, map[string]any{"resourceType": "Patient", "name": []map[string]any{{"family": "Bos", "given": []string{"Eva"}}}})
	if code != http.StatusCreated {
		t.Fatalf("another patient: %d %s", code, b)
	}
	var other struct{ ID string }
	json.Unmarshal(b, &other)
	if code := read(tok.AccessToken, "/fhir/Observation?patient="+other.ID); code != http.StatusForbidden {
		t.Errorf("another patient's record through the app: %d", code)
	}
	if code := read(tok.AccessToken, "/api/v1/session"); code != http.StatusUnauthorized {
		t.Errorf("an app token on the management API: %d", code)
	}
	// The token source refreshes (rotating) when the access token is old.
	tok.Expiry = time.Now().Add(-time.Minute)
	fresh, err := conf.TokenSource(ctx, tok).Token()
	if err != nil || fresh.RefreshToken == tok.RefreshToken || fresh.AccessToken == tok.AccessToken {
		t.Fatalf("x/oauth2 refresh: %v", err)
	}

	// Refusals at the front channel.
	bad := conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("aud", base+"/fhir"))
	bad = strings.Replace(bad, url.QueryEscape("http://127.0.0.1:8/cb"), url.QueryEscape("https://evil.example/cb"), 1)
	resp, page := who.get(bad)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(page, "niet mogelijk") {
		t.Errorf("an unregistered redirect URI: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	plain := conf.AuthCodeURL("s2", oauth2.SetAuthURLParam("code_challenge", verifier), oauth2.SetAuthURLParam("code_challenge_method", "plain"),
		oauth2.SetAuthURLParam("aud", base+"/fhir"))
	resp, _ = who.get(plain)
	if l := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(l, "error=invalid_request") || !strings.Contains(l, "state=s2") || !strings.Contains(l, "iss=") {
		t.Errorf("PKCE plain: %d %s", resp.StatusCode, l)
	}

	// The person sees each app's accesses in "Wie heeft mijn dossier bekeken".
	resp, page = who.get("/me/log")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "via de app MijnPGO") || !strings.Contains(page, "via de app Dagboek") {
		t.Errorf("the person's log does not name the apps: %d\n%s", resp.StatusCode, page)
	}

	// The person sees both apps under "Mijn apps" and withdraws the diary's
	// consent: its token stops at once.
	resp, page = who.get("/me/apps")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "MijnPGO") || !strings.Contains(page, "Dagboek") {
		t.Fatalf("Mijn apps: %d\n%s", resp.StatusCode, page)
	}
	m := regexp.MustCompile(`name="consent" value="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(m) != 2 {
		t.Fatalf("active consents on the page: %v", m)
	}
	// Newest first: the diary's.
	if r := who.post("/me/apps/withdraw", url.Values{"csrf": {field(t, csrfRE, page)}, "consent": {m[0][1]}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("withdraw: %d", r.StatusCode)
	}
	if code := read(fresh.AccessToken, "/fhir/Observation?patient="+creds.PatientID); code != http.StatusUnauthorized {
		t.Errorf("a withdrawn consent's token: %d", code)
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: fresh.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token(); err == nil ||
		!strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("a withdrawn consent's refresh token: %v", err)
	}

	// oauth4webapi as a public client; the code sent twice is refused and
	// the tokens it gave are revoked.
	code, b, _ = do(t, c, "POST", base+"/api/v1/oauth/clients", admin, map[string]any{"client_name": "Meetlat", "redirect_uris": []string{"http://127.0.0.1:9/cb"},
		"token_endpoint_auth_method": "none", "scopes": []string{"patient/Observation.rs"}})
	if code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, b)
	}
	approveChange(t, c, base, approver, b)
	var meetlat struct {
		ID string `json:"client_id"`
	}
	json.Unmarshal(b, &meetlat)
	node = exec.Command("node", "app4.mjs")
	node.Dir = dir
	node.Env = append(os.Environ(), "ZK_BASE="+base, "ZK_CLIENT_ID="+meetlat.ID, "ZK_REDIRECT=http://127.0.0.1:9/cb",
		"NODE_EXTRA_CA_CERTS="+filepath.Join(data, "demo-cert.pem"))
	stdin, _ = node.StdinPipe()
	stdout, _ = node.StdoutPipe()
	stderr.Reset()
	node.Stderr = &stderr
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	lines = bufio.NewScanner(stdout)
	first.Authorize = ""
	if !lines.Scan() || json.Unmarshal(lines.Bytes(), &first) != nil || first.Authorize == "" {
		node.Process.Kill()
		t.Fatalf("oauth4webapi: %q\n%s", lines.Text(), stderr.String())
	}
	io.WriteString(stdin, who.consent(first.Authorize, "Meetlat", true)+"\n")
	stdin.Close()
	var o4 struct {
		TokenType, Replay string
		Read, AfterReplay any
	}
	if !lines.Scan() || json.Unmarshal(lines.Bytes(), &o4) != nil {
		t.Fatalf("oauth4webapi result: %q\n%s", lines.Text(), stderr.String())
	}
	if err := node.Wait(); err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	if o4.TokenType != "bearer" || o4.Read != float64(200) || o4.Replay != "invalid_grant" || o4.AfterReplay != float64(401) {
		t.Errorf("oauth4webapi: %+v (want a read, the replayed code refused with invalid_grant and its token revoked)", o4)
	}

	// The chain log and the access log, as the security officer reads them.
	sec := logon(t, c, base, demoUser(t, creds, "security.mulder"))
	code, b, _ = do(t, c, "GET", base+"/api/v1/audit?action=exchange&limit=500", sec, nil)
	if code != http.StatusOK {
		t.Fatalf("audit search: %d %s", code, b)
	}
	var found struct {
		Events []struct {
			Query, SourceApp, TraceID, PatientID, Kind string
			Resources                                  []string
		}
	}
	json.Unmarshal(b, &found)
	steps := map[string]bool{}
	traced := false
	for _, e := range found.Events {
		if e.Kind == "chain" && (e.SourceApp == pgo.ID || e.SourceApp == diary.ID || e.SourceApp == meetlat.ID) {
			steps[e.Query] = true
		}
		if e.Query == "fhir" && e.TraceID == "3f2b8c1e-5d4a-4e7b-9c0d-1a2b3c4d5e6f" && e.PatientID == creds.PatientID &&
			slices.Contains(e.Resources, "X-Correlation-ID pgo-corr-0001") {
			traced = true
		}
	}
	for _, s := range []string{"par", "authorize", "consent", "token", "refresh", "revoke", "fhir", "consent-withdrawn", "code-replay"} {
		if !steps[s] {
			t.Errorf("no chain-log step %q among %v", s, steps)
		}
	}
	if !traced {
		t.Error("no chain-log event of a FHIR call with the app's MedMij-Request-ID and X-Correlation-ID")
	}
}

// fhirclientVersion is the fhirclient (SMART client-js) release the test pins.
const fhirclientVersion = "2.6.3"

// TestSMARTAppFhirclient: fhirclient, the SMART App Launch library, finds
// the server through /fhir/.well-known/smart-configuration, sends the
// person to authorize as a public client with PKCE S256 and aud, and reads
// the person's Observations with the token it gets after the consent.
//
// REQ: EX-1, EX-2
func TestSMARTAppFhirclient(t *testing.T) {
	if testing.Short() {
		t.Skip("installs an npm package and starts the server")
	}
	dir := t.TempDir()
	install := exec.Command("npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "fhirclient@"+fhirclientVersion)
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm install fhirclient@%s: %v\n%s", fhirclientVersion, err, out)
	}
	script, err := os.ReadFile(filepath.Join("testdata", "apps_fhirclient.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.mjs"), script, 0o600); err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)
	data := t.TempDir()
	srv := startServer(t, bin, data)
	base := strings.Replace(srv.base, "//127.0.0.1:", "//localhost:", 1)
	creds := readCreds(t, data)
	c := client()

	code, b, _ := do(t, c, "GET", base+"/fhir/.well-known/smart-configuration", "", nil)
	var smart struct {
		AuthorizationEndpoint string   `json:"authorization_endpoint"`
		Methods               []string `json:"code_challenge_methods_supported"`
		Capabilities          []string `json:"capabilities"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &smart) != nil || smart.AuthorizationEndpoint != base+"/oauth/authorize" ||
		len(smart.Methods) != 1 || smart.Methods[0] != "S256" {
		t.Fatalf("smart-configuration: %d %s", code, b)
	}

	node := exec.Command("node", "app.mjs")
	node.Dir = dir
	node.Env = append(os.Environ(), "ZK_BASE="+base, "NODE_EXTRA_CA_CERTS="+filepath.Join(data, "demo-cert.pem"))
	stdout, _ := node.StdoutPipe()
	var stderr strings.Builder
	node.Stderr = &stderr
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	defer node.Process.Kill()
	var app struct{ Port int }
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || json.Unmarshal(lines.Bytes(), &app) != nil || app.Port == 0 {
		t.Fatalf("fhirclient app: %q\n%s", lines.Text(), stderr.String())
	}
	appBase := "http://127.0.0.1:" + strconv.Itoa(app.Port)
	// The app's redirect URI has the port it picked, so it is registered
	// now; the app reads its client id from the launch URL.
	admin := logon(t, c, base, demoUser(t, creds, "beheer.smit"))
	approver := logon(t, c, base, demoUser(t, creds, "beheer.visser")) // four eyes (GOV-1)
	if code, b, _ := do(t, c, "PUT", base+"/api/v1/oauth/policy", admin, map[string]any{"allow_public_clients": true}); code != http.StatusAccepted {
		t.Fatalf("policy: %d %s", code, b)
	} else {
		approveChange(t, c, base, approver, b)
	}
	code, b, _ = do(t, c, "POST", base+"/api/v1/oauth/clients", admin, map[string]any{"client_name": "SMART-meetwaarden", "redirect_uris": []string{appBase + "/callback"},
		"token_endpoint_auth_method": "none", "scopes": []string{"patient/Observation.rs"}})
	if code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, b)
	}
	approveChange(t, c, base, approver, b)
	var reg struct {
		ID string `json:"client_id"`
	}
	json.Unmarshal(b, &reg)
	plain := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := plain.Get(appBase + "/launch?client_id=" + url.QueryEscape(reg.ID))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	authorize := resp.Header.Get("Location")
	if !strings.HasPrefix(authorize, base+"/oauth/authorize?") || !strings.Contains(authorize, "code_challenge_method=S256") {
		t.Fatalf("fhirclient launch: %d %q\n%s", resp.StatusCode, authorize, stderr.String())
	}
	who := newPerson(t, base, demoUser(t, creds, "s.devries"))
	callback := who.consent(authorize, "SMART-meetwaarden", true)
	resp, err = plain.Get(callback)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got struct {
		Patient, Scope string
		Observations   int
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil {
		t.Fatalf("fhirclient callback: %d %s\n%s", resp.StatusCode, body, stderr.String())
	}
	if got.Patient != creds.PatientID || got.Observations == 0 || got.Scope != "patient/Observation.rs" {
		t.Fatalf("fhirclient read %+v", got)
	}
}
