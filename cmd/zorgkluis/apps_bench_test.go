package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
)

// serverCPU is the CPU time the process pid has used (user + system).
func serverCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name in parentheses: state is field 3,
	// utime 14 and stime 15, in clock ticks (100 per second on Linux).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// TestOAuthFigures measures, on the real server (SQLite, demo data), token
// grants (refresh grants of public clients, each rotating its family),
// introspections (a resource server with a fresh private_key_jwt assertion
// each) and the person's FHIR Patient read through their own session and
// through an app's token (which adds the chain-log event), each as
// requests per second and
// server CPU per request, as a ratio to /healthz in the same run. A figure,
// not a pass mark: it runs only with ZK_BENCH=1, e.g.
//
//	ZK_BENCH=1 go test -run TestOAuthFigures -v ./cmd/zorgkluis
func TestOAuthFigures(t *testing.T) {
	if os.Getenv("ZK_BENCH") != "1" {
		t.Skip("set ZK_BENCH=1 for the authorisation server's figures")
	}
	bin := buildBinary(t)
	data := t.TempDir()
	srv := startServerArgs(t, bin, data, []string{"--demo", "--log-level", "error"})
	base := strings.Replace(srv.base, "//127.0.0.1:", "//localhost:", 1)
	creds := readCreds(t, data)
	c := client()
	admin := logon(t, c, base, demoUser(t, creds, "beheer.smit"))
	approver := logon(t, c, base, demoUser(t, creds, "beheer.visser")) // four eyes (GOV-1)
	_, b, _ := do(t, c, "PUT", base+"/api/v1/oauth/policy", admin, map[string]any{"allow_public_clients": true})
	approveChange(t, c, base, approver, b)
	who := newPerson(t, base, demoUser(t, creds, "s.devries"))
	const workers = 8
	// One public client (and so one consent and token family) per worker.
	refresh := make([]string, workers)
	var access string
	for i := range workers {
		redirect := fmt.Sprintf("http://127.0.0.1:9/cb%d", i)
		_, b, _ := do(t, c, "POST", base+"/api/v1/oauth/clients", admin, map[string]any{"client_name": fmt.Sprintf("Bench %d", i),
			"redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none", "scopes": []string{"patient/*.rs"}})
		approveChange(t, c, base, approver, b)
		var reg struct {
			ID string `json:"client_id"`
		}
		json.Unmarshal(b, &reg)
		conf := &oauth2.Config{ClientID: reg.ID, RedirectURL: redirect, Scopes: []string{"patient/*.rs"},
			Endpoint: oauth2.Endpoint{AuthURL: base + "/oauth/authorize", TokenURL: base + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
		v := oauth2.GenerateVerifier()
		loc, _ := url.Parse(who.consent(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("aud", base+"/fhir")), "Bench", true))
		tok, err := conf.Exchange(context.WithValue(t.Context(), oauth2.HTTPClient, c), loc.Query().Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		refresh[i], access = tok.RefreshToken+"|"+reg.ID, tok.AccessToken
	}
	// The introspecting resource server.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), Algorithm: "ES256", Use: "sig"}}})
	_, b, _ = do(t, c, "POST", base+"/api/v1/oauth/clients", admin, map[string]any{"client_name": "Resource server", "redirect_uris": []string{"https://rs.example/cb"},
		"token_endpoint_auth_method": "private_key_jwt", "jwks": json.RawMessage(pub), "introspect": true})
	approveChange(t, c, base, approver, b)
	var rs struct {
		ID string `json:"client_id"`
	}
	json.Unmarshal(b, &rs)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, nil)
	person := logon(t, c, base, demoUser(t, creds, "s.devries"))

	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: client().Transport.(*http.Transport).TLSClientConfig, MaxIdleConnsPerHost: 64}}
	send := func(b *testing.B, req *http.Request) {
		resp, err := hc.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Errorf("%s: status %d", req.URL.Path, resp.StatusCode)
		}
	}
	form := func(path string, v url.Values) *http.Request {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}
	var next atomic.Int64
	cases := []struct {
		name string
		fn   func(b *testing.B)
	}{
		{"/healthz", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", base+"/healthz", nil)
					send(b, req)
				}
			})
		}},
		{"token grant (refresh, rotating)", func(b *testing.B) {
			b.SetParallelism(1)
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(1)-1) % workers
				tok, id, _ := strings.Cut(refresh[i], "|")
				for pb.Next() {
					resp, err := hc.Do(form("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}, "client_id": {id}}))
					if err != nil {
						b.Error(err)
						return
					}
					var out struct {
						RefreshToken string `json:"refresh_token"`
					}
					json.NewDecoder(resp.Body).Decode(&out)
					resp.Body.Close()
					if out.RefreshToken == "" {
						b.Errorf("refresh: status %d", resp.StatusCode)
						return
					}
					tok = out.RefreshToken
				}
				refresh[i] = tok + "|" + id
			})
		}},
		{"introspection (private_key_jwt)", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					jti := make([]byte, 16)
					rand.Read(jti)
					now := time.Now()
					as, _ := jwt.Signed(signer).Claims(jwt.Claims{Issuer: rs.ID, Subject: rs.ID, Audience: jwt.Audience{base}, ID: base64.RawURLEncoding.EncodeToString(jti),
						IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
					send(b, form("/oauth/introspect", url.Values{"token": {access}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
						"client_assertion": {as}}))
				}
			})
		}},
		{"person's FHIR Patient read (session)", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", base+"/fhir/Patient/"+creds.PatientID, nil)
					req.Header.Set("Authorization", "Bearer "+person)
					send(b, req)
				}
			})
		}},
		{"app's FHIR Patient read", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", base+"/fhir/Patient/"+creds.PatientID, nil)
					req.Header.Set("Authorization", "Bearer "+access)
					send(b, req)
				}
			})
		}},
	}
	pid := srv.cmd.Process.Pid
	var floor time.Duration
	var lines []string
	for _, cs := range cases {
		before := serverCPU(t, pid)
		r := testing.Benchmark(cs.fn)
		cpu := (serverCPU(t, pid) - before) / time.Duration(max(r.N, 1))
		if cs.name == "/healthz" {
			floor = cpu
		}
		lines = append(lines, fmt.Sprintf("%-34s %7.0f req/s  %6.3f ms CPU/req  %5.1f× /healthz", cs.name, float64(r.N)/r.T.Seconds(),
			float64(cpu)/float64(time.Millisecond), float64(cpu)/float64(max(floor, time.Microsecond))))
	}
	report := strings.Join(lines, "\n")
	t.Log("\n" + report)
	fmt.Println(report)
}
