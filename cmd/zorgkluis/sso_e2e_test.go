package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// oauth2MockServerVersion is the upstream provider the SSO test runs (8.x
// is the line for Node 20).
const oauth2MockServerVersion = "8.2.3"

var continueRE = regexp.MustCompile(`http-equiv="refresh" content="0;url=([^"]+)"`)

// ssoLogon runs one log-on through the upstream provider with the person's
// cookie jar: zorgkluis's start, the provider's authorize (which logs on at
// once), the callback. It returns where the continue page sends the
// browser.
func (p *person) ssoLogon(providerID string) string {
	p.t.Helper()
	resp, _ := p.get("/logon/sso/" + providerID)
	if resp.StatusCode != http.StatusSeeOther {
		return "status " + resp.Status
	}
	resp, _ = p.get(resp.Header.Get("Location")) // the provider
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		p.t.Fatalf("upstream authorize: %d", resp.StatusCode)
	}
	resp, page := p.get(resp.Header.Get("Location")) // our callback
	m := continueRE.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		p.t.Fatalf("callback: %d\n%s", resp.StatusCode, page)
	}
	u, _ := url.PathUnescape(m[1])
	return strings.ReplaceAll(u, "&amp;", "&")
}

// TestSSOWithUpstreamProvider: single sign-on through a tenant's own
// OpenID Connect provider (oauth2-mock-server on loopback). A provider is
// used only after a second admin approved it; an upstream identity is linked
// by its first local log-on, never by e-mail; then amr ["pwd","otp"] from
// the approved, trusted provider is a session without a local second factor,
// ["pwd"] and no amr at all ask the local second factor (and the drop from
// two factors to one is a security event), two knowledge factors are one; a
// stale auth_time beyond max_age, a wrong nonce, issuer or audience, and an
// unapproved provider are refused. A browser does the journey too.
//
// REQ: AUTH-3, AUTH-1, AUTH-6, GOV-1, LOG-9
func TestSSOWithUpstreamProvider(t *testing.T) {
	if testing.Short() {
		t.Skip("installs an npm package and starts the server")
	}
	dir := t.TempDir()
	install := exec.Command("npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "oauth2-mock-server@"+oauth2MockServerVersion)
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm install oauth2-mock-server@%s: %v\n%s", oauth2MockServerVersion, err, out)
	}
	script, err := os.ReadFile(filepath.Join("testdata", "sso_mock_idp.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "idp.mjs"), script, 0o600); err != nil {
		t.Fatal(err)
	}
	idp := exec.Command("node", "idp.mjs")
	idp.Dir = dir
	out, _ := idp.StdoutPipe()
	var idpErr strings.Builder
	idp.Stderr = &idpErr
	if err := idp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Process.Kill(); idp.Wait() })
	var up struct{ Issuer, Control string }
	lines := bufio.NewScanner(out)
	if !lines.Scan() || json.Unmarshal(lines.Bytes(), &up) != nil || up.Issuer == "" {
		t.Fatalf("mock provider: %q\n%s", lines.Text(), idpErr.String())
	}
	next := func(v map[string]any) {
		b, _ := json.Marshal(v)
		resp, err := http.Post(up.Control, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	bin := buildBinary(t)
	data := t.TempDir()
	srv := startServer(t, bin, data)
	base := strings.Replace(srv.base, "//127.0.0.1:", "//localhost:", 1)
	creds := readCreds(t, data)
	c := client()
	smit := logon(t, c, base, demoUser(t, creds, "beheer.smit"))
	visser := logon(t, c, base, demoUser(t, creds, "beheer.visser"))

	proposal := map[string]any{"name": "Ziekenhuis-IdP", "issuer": up.Issuer, "client_id": "zorgkluis", "client_secret": "geheim-van-de-idp",
		"trust_upstream_mfa": true, "max_age": 3600}
	code, b, _ := do(t, c, "POST", base+"/api/v1/sso/providers", smit, proposal)
	if code != http.StatusCreated || strings.Contains(string(b), "geheim-van-de-idp") {
		t.Fatalf("propose: %d %s", code, b)
	}
	var prov struct{ ID, Status string }
	json.Unmarshal(b, &prov)
	if prov.Status != "proposed" {
		t.Fatalf("a proposal is %q", prov.Status)
	}
	who := newPerson(t, base, demoUser(t, creds, "dr.jansen"))
	// Not approved yet: no log-on through it.
	if got := who.ssoLogon(prov.ID); !strings.Contains(got, "404") {
		t.Fatalf("an unapproved provider: %s", got)
	}
	if code, b, _ := do(t, c, "POST", base+"/api/v1/sso/providers/"+prov.ID+"/approve", smit, nil); code != http.StatusForbidden {
		t.Fatalf("the proposer approving their own provider: %d %s", code, b)
	}
	if code, b, _ := do(t, c, "POST", base+"/api/v1/sso/providers/"+prov.ID+"/approve", visser, nil); code != http.StatusNoContent {
		t.Fatalf("approve: %d %s", code, b)
	}

	// First time: not linked; the local log-on links it.
	next(map[string]any{"sub": "jansen@ziekenhuis", "amr": []string{"pwd", "otp"}})
	if got := who.ssoLogon(prov.ID); got != "/logon?sso=link" {
		t.Fatalf("an unlinked identity goes to %q", got)
	}
	_, page := who.get("/logon")
	csrf := field(t, csrfRE, page)
	who.post("/logon", url.Values{"csrf": {csrf}, "username": {who.user.Username}, "password": {who.user.Password}})
	if r := who.post("/logon/factor", url.Values{"csrf": {csrf}, "factor": {"totp"}, "code": {oathtool(t, who.user.TOTPSecret, 0)}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the linking log-on: %d", r.StatusCode)
	}
	who.post("/logoff", url.Values{"csrf": {csrf}})

	// Linked: two factors proven upstream at a trusted provider.
	next(map[string]any{"sub": "jansen@ziekenhuis", "amr": []string{"pwd", "otp"}})
	if got := who.ssoLogon(prov.ID); got != "/" {
		t.Fatalf("amr pwd+otp goes to %q; want a session", got)
	}
	resp, page := who.get("/patients")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Jansen") {
		t.Fatalf("after the upstream log-on: %d", resp.StatusCode)
	}
	who.post("/logoff", url.Values{"csrf": {field(t, csrfRE, page)}})

	// Password only: the local second factor, and the drop is reported.
	next(map[string]any{"sub": "jansen@ziekenhuis", "amr": []string{"pwd"}})
	if got := who.ssoLogon(prov.ID); got != "/logon/factor" {
		t.Fatalf("amr pwd goes to %q; want the local second factor", got)
	}
	_, page = who.get("/logon/factor")
	if r := who.post("/logon/factor", url.Values{"csrf": {field(t, csrfRE, page)}, "factor": {"totp"}, "code": {oathtool(t, who.user.TOTPSecret, 1)}}); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") == "/logon?failed=1" {
		t.Fatalf("the local second factor after an upstream password: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	resp, page = who.get("/patients")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after upstream password and local TOTP: %d", resp.StatusCode)
	}
	who.post("/logoff", url.Values{"csrf": {field(t, csrfRE, page)}})
	sec := logon(t, c, base, demoUser(t, creds, "security.mulder"))
	if code, b, _ := do(t, c, "GET", base+"/api/v1/security-events", sec, nil); code != http.StatusOK || !strings.Contains(string(b), "sso-mfa-downgrade") {
		t.Errorf("no security event for the drop from two factors to one: %d %s", code, b)
	}

	// No amr at all (many Entra ID tokens), and two knowledge factors: the
	// local second factor.
	for _, amr := range []any{nil, []string{"pwd", "pin"}} {
		next(map[string]any{"sub": "jansen@ziekenhuis", "amr": amr})
		if got := who.ssoLogon(prov.ID); got != "/logon/factor" {
			t.Fatalf("amr %v goes to %q; want the local second factor", amr, got)
		}
	}
	// Refusals.
	for name, tweak := range map[string]map[string]any{
		"auth_time beyond max_age": {"authAge": 7200},
		"wrong nonce":              {"nonce": "not-the-one-sent"},
		"wrong issuer":             {"iss": "http://127.0.0.1:1/other"},
		"wrong audience":           {"aud": "another-client"},
	} {
		tweak["sub"], tweak["amr"] = "jansen@ziekenhuis", []string{"pwd", "otp"}
		next(tweak)
		if got := who.ssoLogon(prov.ID); got != "/logon?sso=refused" {
			t.Errorf("%s: the log-on goes to %q; want refused", name, got)
		}
	}

	// The journey in a browser: the log-on page's link, the provider, back
	// logged on.
	b2 := newBrowser(t, srv)
	next(map[string]any{"sub": "jansen@ziekenhuis", "amr": []string{"pwd", "hwk"}})
	b2.open("/logon")
	b2.do(chromedp.Click(chromedp.CSS(`[id="sso-` + prov.ID + `"]`)))
	b2.poll(`location.host.startsWith("localhost") && (location.pathname === "/" || location.pathname === "/patients")`)
	if main := b2.text("main"); !strings.Contains(b2.text("header"), "Jansen") {
		t.Fatalf("the browser after the upstream log-on: %s %q", b2.location(), main)
	}
}
