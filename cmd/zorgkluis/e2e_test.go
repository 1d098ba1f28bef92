package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/demo"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// The e2e tests build the real binary once and talk to it over HTTPS, as a
// newcomer following the README would.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "zorgkluis")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type running struct {
	cmd     *exec.Cmd
	base    string
	metrics string
	data    string
	stdout  *bytes.Buffer
	stderr  *bytes.Buffer
	done    chan error
}

// startServer runs `zorgkluis serve --demo` and waits until it listens.
func startServer(t *testing.T, bin, data string, extraEnv ...string) *running {
	t.Helper()
	return startServerArgs(t, bin, data, []string{"--demo"}, extraEnv...)
}

// startServerArgs runs `zorgkluis serve` with args and waits until it listens.
func startServerArgs(t *testing.T, bin, data string, args []string, extraEnv ...string) *running {
	t.Helper()
	addr, maddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, append([]string{"serve", "--data", data, "--addr", addr, "--metrics-addr", maddr}, args...)...)
	// Tests talk to loopback only: no NTP pool, no backup schedule, unless
	// a test's extraEnv asks for them.
	cmd.Env = append(append(os.Environ(), "ZK_NTP_SERVERS=off", "ZK_BACKUP_INTERVAL=0"), extraEnv...)
	r := &running{cmd: cmd, base: "https://" + addr, metrics: "http://" + maddr + "/metrics", data: data, stdout: new(bytes.Buffer), stderr: new(bytes.Buffer), done: make(chan error, 1)}
	pr, pw := io.Pipe()
	cmd.Stdout = io.MultiWriter(r.stdout, pw)
	cmd.Stderr = r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- cmd.Wait(); pw.Close() }()
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "zorgkluis listening on") {
				close(listening)
				io.Copy(io.Discard, pr)
				return
			}
		}
	}()
	select {
	case <-listening:
	case err := <-r.done:
		t.Fatalf("server exited early: %v\nstderr:\n%s", err, r.stderr)
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("server did not start\nstderr:\n%s", r.stderr)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("server exit after SIGTERM: %v\nstderr:\n%s", err, r.stderr)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("server did not stop on SIGTERM")
	}
}

func client() *http.Client {
	// The demo certificate is self-signed; the test checks the TLS version
	// and trusts the certificate it was given.
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
	}}
}

func do(t *testing.T, c *http.Client, method, url, token string, body any) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// oathtool computes the TOTP code with the real third-party tool, for the
// time step `ahead` steps from now.
func oathtool(t *testing.T, secret string, ahead int) string {
	t.Helper()
	out, err := exec.Command("oathtool", "--totp", "-b", secret, "-N", fmt.Sprintf("now + %d seconds", 30*ahead)).Output()
	if err != nil {
		t.Fatalf("oathtool (apt-get install oathtool): %v", err)
	}
	return strings.TrimSpace(string(out))
}

// logon performs the two-step log-on. A code works once, so when the current
// step was already used by an earlier log-on of the same user it retries
// with the next step's code, which the one-step skew window accepts.
func logon(t *testing.T, c *http.Client, base string, u demo.User) string {
	t.Helper()
	for try := 0; try < 2; try++ {
		code, b, _ := do(t, c, "POST", base+"/api/v1/logon", "", map[string]string{"username": u.Username, "password": u.Password})
		if code != 200 {
			t.Fatalf("logon step 1: %d %s", code, b)
		}
		var a struct{ Attempt string }
		json.Unmarshal(b, &a)
		code, b, _ = do(t, c, "POST", base+"/api/v1/logon/totp", "", map[string]string{"attempt": a.Attempt, "code": oathtool(t, u.TOTPSecret, try)})
		if code == 200 {
			var s struct{ Token, Assurance string }
			json.Unmarshal(b, &s)
			if s.Assurance != "hoog" {
				t.Fatalf("assurance = %q; want hoog", s.Assurance)
			}
			return s.Token
		}
	}
	t.Fatalf("log-on of %s failed", u.Username)
	return ""
}

func readCreds(t *testing.T, data string) demo.Credentials {
	t.Helper()
	p := filepath.Join(data, "demo-credentials.json")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("demo-credentials.json mode %v; want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(p)
	var c demo.Credentials
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestNewcomerJourney is the "done means": start the demo, log on
// with password and an oathtool TOTP code, read the demo patient over HTTPS,
// find the read in the audit table; the second professional is denied and
// the denial is logged. Run on SQLite and on PostgreSQL.
func TestNewcomerJourney(t *testing.T) {
	bin := buildBinary(t)
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			data := t.TempDir()
			var env []string
			dbURL := filepath.Join(data, "zorgkluis.db")
			if dialect == "postgres" {
				dbURL = storetest.PostgresURL(t)
				env = append(env, "ZK_DATABASE_URL="+dbURL)
			}
			srv := startServer(t, bin, data, env...)
			creds := readCreds(t, data)
			if !strings.Contains(srv.stdout.String(), "otpauth://totp/") {
				t.Fatalf("demo output lacks log-ins:\n%s", srv.stdout)
			}
			c := client()
			jansen, bakker, patient := demoUser(t, creds, "dr.jansen"), demoUser(t, creds, "dr.bakker"), demoUser(t, creds, "s.devries")

			// REQ: AZ-3 — a professional with a care relationship reads.
			tok := logon(t, c, srv.base, jansen)
			code, body, hdr := do(t, c, "GET", srv.base+"/fhir/Patient/"+creds.PatientID, tok, nil)
			if code != 200 || !strings.Contains(string(body), `"resourceType":"Patient"`) {
				t.Fatalf("read patient: %d %s", code, body)
			}
			if hdr.Get("Strict-Transport-Security") == "" || hdr.Get("Content-Security-Policy") == "" || hdr.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("security headers missing: %v", hdr) // REQ: DP-2
			}
			code, body, _ = do(t, c, "GET", srv.base+"/fhir/Observation?patient="+creds.PatientID, tok, nil)
			var bundle struct {
				Total int
				Entry []json.RawMessage
			}
			json.Unmarshal(body, &bundle)
			if code != 200 || bundle.Total != 5 || len(bundle.Entry) != 5 {
				t.Fatalf("search observations: %d total=%d %s", code, bundle.Total, body)
			}

			// REQ: AZ-1, AZ-3 — no relationship: denied, as an OperationOutcome.
			tokB := logon(t, c, srv.base, bakker)
			code, body, _ = do(t, c, "GET", srv.base+"/fhir/Patient/"+creds.PatientID, tokB, nil)
			if code != 403 || !strings.Contains(string(body), "OperationOutcome") || strings.Contains(string(body), "de Vries") {
				t.Fatalf("unrelated professional: %d %s", code, body)
			}
			// REQ: AZ-4 — the patient reads her own record.
			tokP := logon(t, c, srv.base, patient)
			if code, body, _ = do(t, c, "GET", srv.base+"/fhir/Patient/"+creds.PatientID, tokP, nil); code != 200 {
				t.Fatalf("own record: %d %s", code, body)
			}
			// Without a session: 401.
			if code, _, _ = do(t, c, "GET", srv.base+"/fhir/Patient/"+creds.PatientID, "", nil); code != 401 {
				t.Fatalf("no session: %d", code)
			}
			// Log-off ends the session.
			if code, _, _ = do(t, c, "POST", srv.base+"/api/v1/logoff", tokP, nil); code != 204 {
				t.Fatalf("logoff: %d", code)
			}
			if code, _, _ = do(t, c, "GET", srv.base+"/fhir/Patient/"+creds.PatientID, tokP, nil); code != 401 {
				t.Fatalf("after logoff: %d", code)
			}
			// Metrics are on their own listener, never on the public port.
			mresp, err := http.Get(srv.metrics)
			if err != nil {
				t.Fatal(err)
			}
			mb, _ := io.ReadAll(mresp.Body)
			mresp.Body.Close()
			if !strings.Contains(string(mb), `zorgkluis_http_requests_total{code="200",route="GET /fhir/{type}/{id}"}`) {
				t.Fatal("metrics lack the request counter of the Patient read")
			}
			if code, _, _ = do(t, c, "GET", srv.base+"/metrics", "", nil); code == 200 {
				t.Fatal("metrics served on the public port")
			}
			// Log lines are JSON with request ids and never carry the password.
			for _, line := range strings.Split(strings.TrimSpace(srv.stderr.String()), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					continue // plain start-up warnings
				}
				if m["msg"] == "request" && m["request_id"] == nil {
					t.Fatalf("request log line without request id: %s", line)
				}
			}
			for _, u := range creds.Users {
				if strings.Contains(srv.stderr.String(), u.Password) || strings.Contains(srv.stderr.String(), u.TOTPSecret) {
					t.Fatal("a secret reached the log")
				}
			}
			srv.stop(t)

			// REQ: LOG-1 — the read and the denial are in the audit table.
			ctx := context.Background()
			db, err := store.Open(ctx, dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			count := func(action, outcome, user string) int {
				var n int
				if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_events WHERE action = $1 AND outcome = $2 AND user_id = $3 AND patient_id = $4`,
					action, outcome, user, creds.PatientID).Scan(&n); err != nil && err != sql.ErrNoRows {
					t.Fatal(err)
				}
				return n
			}
			if n := count("read", "success", jansen.AccountID); n != 1 {
				t.Errorf("audit: %d successful reads by the GP; want 1", n)
			}
			if n := count("search", "success", jansen.AccountID); n != 1 {
				t.Errorf("audit: %d searches by the GP; want 1", n)
			}
			if n := count("read", "denied", bakker.AccountID); n != 1 {
				t.Errorf("audit: %d denied reads by the unrelated GP; want 1", n)
			}

			// A second start reuses the data and the credentials.
			srv2 := startServer(t, bin, data, env...)
			if again := readCreds(t, data); again.PatientID != creds.PatientID {
				t.Fatalf("second start re-seeded: %s != %s", again.PatientID, creds.PatientID)
			}
			tok = logon(t, c, srv2.base, jansen)
			if code, body, _ = do(t, c, "GET", srv2.base+"/fhir/Patient/"+creds.PatientID, tok, nil); code != 200 {
				t.Fatalf("read after restart: %d %s", code, body)
			}
			srv2.stop(t)
		})
	}
}

func TestHelpAndBadConfig(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "serve") || !strings.Contains(string(out), "migrate") {
		t.Fatalf("help: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "serve", "--addr", "nonsense", "--demo").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "setting addr") {
		t.Fatalf("bad addr should stop start-up naming the setting: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "serve", "--insecure-http", "--addr", "0.0.0.0:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "insecure-http") {
		t.Fatalf("plain HTTP on a public address must be refused: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "zorgkluis ") {
		t.Fatalf("version: %v %s", err, out)
	}
	data := t.TempDir()
	out, err = exec.Command(bin, "migrate", "--data", data).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "applied") {
		t.Fatalf("migrate: %v %s", err, out)
	}
}

// approveChange has approver approve the four-eyes change request (GOV-1)
// named by the answer b's change_request (or b itself when it is an id).
func approveChange(t *testing.T, c *http.Client, base, approver string, b []byte) {
	t.Helper()
	var v struct {
		ID string `json:"change_request"`
	}
	if json.Unmarshal(b, &v) != nil || v.ID == "" {
		v.ID = string(b)
	}
	if code, out, _ := do(t, c, "POST", base+"/api/v1/changes/"+v.ID+"/approve", approver, nil); code != http.StatusOK {
		t.Fatalf("approve change %s: %d %s", v.ID, code, out)
	}
}
