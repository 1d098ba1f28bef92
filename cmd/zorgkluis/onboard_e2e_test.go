package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/server"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// invitee is what a new account holder has: the code (from the inviter)
// and the secret (from the second channel).
type invitee struct {
	user, code, secret, account, password, totp string
}

var letterSecretRe = regexp.MustCompile(`(?m)^    ([A-Z2-7-]+)$`)

func readLetter(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("letter %s has mode %v; want 0600", path, fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	m := letterSecretRe.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no secret in the letter %s", path)
	}
	return string(m[1])
}

// activateOver runs the activation over HTTPS with an oathtool code.
func activateOver(t *testing.T, c *http.Client, base string, in *invitee) {
	t.Helper()
	code, b, _ := do(t, c, "POST", base+"/api/v1/activation", "", map[string]string{"code": in.code, "secret": in.secret, "password": in.password})
	if code != 200 {
		t.Fatalf("activation of %s: %d %s", in.user, code, b)
	}
	var enr struct {
		TOTPSecret string `json:"totp_secret"`
		AccountID  string `json:"account_id"`
	}
	json.Unmarshal(b, &enr)
	in.totp, in.account = enr.TOTPSecret, enr.AccountID
	if code, b, _ = do(t, c, "POST", base+"/api/v1/activation/complete", "", map[string]string{"code": in.code, "secret": in.secret, "totp": oathtool(t, in.totp, 0)}); code != 200 {
		t.Fatalf("activation of %s: complete: %d %s", in.user, code, b)
	}
}

// logonOver logs on with the next TOTP step (activation used the current one).
func logonOver(t *testing.T, c *http.Client, base string, in invitee) string {
	t.Helper()
	code, b, _ := do(t, c, "POST", base+"/api/v1/logon", "", map[string]string{"username": in.user, "password": in.password})
	var a struct{ Attempt string }
	json.Unmarshal(b, &a)
	code, b, _ = do(t, c, "POST", base+"/api/v1/logon/totp", "", map[string]string{"attempt": a.Attempt, "code": oathtool(t, in.totp, 1)})
	var s struct{ Token, Assurance string }
	json.Unmarshal(b, &s)
	if code != 200 || s.Assurance != "hoog" {
		t.Fatalf("log-on of %s: %d %s", in.user, code, b)
	}
	return s.Token
}

// TestRealOrganisationJourney is issue 13's "done means" with the real
// binary from an empty data directory: tenant create → invite-admin (and
// the security officer) → activation with password and an oathtool code →
// the admin invites a professional → the officer approves the role → the
// professional activates, registers a patient and hands an activation code
// → the person activates and reads their record; every step is in the
// access log. No --demo, no default password.
//
// REQ: ID-1, ID-2, ID-6, AUTH-1, AUTH-5, AUTH-6, AUTH-8, AZ-4, AZ-7, LOG-1
func TestRealOrganisationJourney(t *testing.T) {
	bin := buildBinary(t)
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			data := t.TempDir()
			dbURL := filepath.Join(data, "zorgkluis.db")
			var env []string
			if dialect == "postgres" {
				dbURL = storetest.PostgresURL(t)
				env = append(env, "ZK_DATABASE_URL="+dbURL)
			}
			cli := func(wantOK bool, args ...string) string {
				t.Helper()
				cmd := exec.Command(bin, append(args, "--data", data)...)
				cmd.Env = append(os.Environ(), env...)
				out, err := cmd.CombinedOutput()
				if (err == nil) != wantOK {
					t.Fatalf("%v: %v\n%s", args, err, out)
				}
				return string(out)
			}
			out := cli(true, "tenant", "create", "--name", "Huisartsenpraktijk De Eik", "--ura", "90000123", "--agb", "01000123")
			tid := tenantIDRe.FindStringSubmatch(out)[1]
			if out := cli(false, "tenant", "create", "--name", "Dubbel", "--ura", "90000123"); !strings.Contains(out, "already registered") {
				t.Errorf("duplicate URA: %s", out)
			}
			invite := func(email, name, role, pw string) invitee {
				out := cli(true, "tenant", "invite-admin", tid, "--name", name, "--email", email, "--role", role,
					"--verified-by", "operator, passport seen at the desk", "--url", "https://zorg.example")
				return invitee{user: email, code: codeRe.FindStringSubmatch(out)[1], secret: readLetter(t, letterRe.FindStringSubmatch(out)[1]), password: pw}
			}
			admin := invite("anna@eik.example", "Anna de Vries", "application-admin", "paarse olifant danst op het ijs 7")
			officer := invite("sam@eik.example", "Sam Veilig", "security-officer", "blauwe reiger vangt een vis 3")

			// A real installation brings its certificate; a self-signed one
			// stands in for it here.
			tlsDir := t.TempDir()
			if _, _, err := server.DemoCertificate(tlsDir, time.Now()); err != nil {
				t.Fatal(err)
			}
			srv := startServerArgs(t, bin, data, []string{"--tls-cert", filepath.Join(tlsDir, "demo-cert.pem"), "--tls-key", filepath.Join(tlsDir, "demo-key.pem")}, env...)
			c := client()
			// Bad codes: guessed, weak password; both a clear 4xx.
			if code, _, _ := do(t, c, "POST", srv.base+"/api/v1/activation", "", map[string]string{"code": "ABCD-EFGH", "secret": admin.secret, "password": admin.password}); code != 400 {
				t.Errorf("guessed code: %d", code)
			}
			if code, _, _ := do(t, c, "POST", srv.base+"/api/v1/activation", "", map[string]string{"code": admin.code, "secret": admin.secret, "password": "welkom01"}); code != 422 {
				t.Errorf("weak password: %d", code)
			}
			activateOver(t, c, srv.base, &admin)
			activateOver(t, c, srv.base, &officer)
			if code, _, _ := do(t, c, "POST", srv.base+"/api/v1/activation", "", map[string]string{"code": admin.code, "secret": admin.secret, "password": admin.password}); code != 400 {
				t.Errorf("reused code: %d", code)
			}
			adminTok, officerTok := logonOver(t, c, srv.base, admin), logonOver(t, c, srv.base, officer)

			code, b, _ := do(t, c, "POST", srv.base+"/api/v1/accounts", adminTok, map[string]any{"name": "Dr. P. Jansen", "email": "p@eik.example",
				"registration_method": 3, "verified_by": "Anna de Vries, BIG-register and passport", "deliver": "letter", "big": "12345678901", "function": "huisarts"})
			if code != 201 {
				t.Fatalf("invite professional: %d %s", code, b)
			}
			var invm map[string]any
			json.Unmarshal(b, &invm)
			pro := invitee{user: "p@eik.example", code: invm["code"].(string), secret: readLetter(t, invm["letter"].(string)), password: "groene kikker springt over de sloot 9"}
			activateOver(t, c, srv.base, &pro)
			code, b, _ = do(t, c, "POST", srv.base+"/api/v1/rights/requests", adminTok, map[string]any{"account_id": pro.account, "role": "professional", "reason": "new GP"})
			var rr struct{ ID string }
			json.Unmarshal(b, &rr)
			if code != 201 {
				t.Fatalf("right request: %d %s", code, b)
			}
			if code, b, _ = do(t, c, "POST", srv.base+"/api/v1/rights/requests/"+rr.ID+"/decision", officerTok, map[string]any{"approve": true, "note": "four eyes"}); code != 200 {
				t.Fatalf("approval: %d %s", code, b)
			}
			proTok := logonOver(t, c, srv.base, pro)
			code, b, _ = do(t, c, "POST", srv.base+"/fhir/Patient", proTok, map[string]any{"resourceType": "Patient", "name": []map[string]any{{"family": "Bos", "given": []string{"Eva"}}}})
			var pat struct{ ID string }
			json.Unmarshal(b, &pat)
			if code != 201 || pat.ID == "" {
				t.Fatalf("register patient: %d %s", code, b)
			}
			if code, b, _ = do(t, c, "POST", srv.base+"/api/v1/relationships", adminTok, map[string]any{"professional_id": pro.account, "patient_id": pat.ID, "kind": "gp"}); code != 201 {
				t.Fatalf("relationship: %d %s", code, b)
			}
			code, b, _ = do(t, c, "POST", srv.base+"/api/v1/patients/"+pat.ID+"/invitations", proTok, map[string]any{"name": "Eva Bos", "email": "eva@example.nl",
				"registration_method": 3, "verified_by": "Dr. P. Jansen, ID card at the desk", "deliver": "letter"})
			if code != 201 {
				t.Fatalf("person invitation: %d %s", code, b)
			}
			json.Unmarshal(b, &invm)
			eva := invitee{user: "eva@example.nl", code: invm["code"].(string), secret: readLetter(t, invm["letter"].(string)), password: "de rode kater slaapt in de zon 5"}
			activateOver(t, c, srv.base, &eva)
			evaTok := logonOver(t, c, srv.base, eva)
			if code, b, _ = do(t, c, "GET", srv.base+"/fhir/Patient/"+pat.ID, evaTok, nil); code != 200 || !strings.Contains(string(b), "Bos") {
				t.Fatalf("the person reads her record: %d %s", code, b)
			}
			srv.stop(t)

			// Every step is in the access log.
			ctx := context.Background()
			db, err := store.Open(ctx, dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			count := func(where string, args ...any) int {
				var n int
				if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_events WHERE `+where, args...).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			if n := count(`tenant_id = $1 AND action = 'create' AND user_id LIKE 'os:%'`, tid); n < 3 {
				t.Errorf("%d create events by the operator's OS identity; want the tenant and two invitations", n)
			}
			for _, who := range []invitee{admin, officer, pro, eva} {
				if n := count(`user_id = $1 AND action = 'logon' AND outcome = 'success'`, who.account); n < 3 {
					t.Errorf("%s: %d log-on events; want activation start, complete and a log-on", who.user, n)
				}
			}
			if n := count(`user_id = $1 AND action = 'create' AND patient_id = $2`, pro.account, pat.ID); n < 2 {
				t.Errorf("%d events of the registration and the person's invitation", n)
			}
			if n := count(`user_id = $1 AND action = 'read' AND outcome = 'success' AND patient_id = $2`, eva.account, pat.ID); n != 1 {
				t.Errorf("%d reads by the person; want 1", n)
			}
			// The refused weak password is logged, without the password; no
			// code, secret or password is in any log line.
			if n := count(`user_id = $1 AND action = 'logon' AND outcome = 'failed' AND body LIKE '%password refused by the policy%'`, admin.account); n != 1 {
				t.Errorf("%d logged refusals of the admin's weak password; want 1", n)
			}
			for _, secret := range []string{"welkom01", admin.password, admin.code, admin.secret, eva.code, eva.secret, eva.password} {
				if n := count(`body LIKE $1`, "%"+secret+"%"); n != 0 {
					t.Errorf("%d log lines hold a code, secret or password", n)
				}
			}
		})
	}
}
