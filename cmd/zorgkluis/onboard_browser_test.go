package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/zorgkluis/zorgkluis/internal/server"
)

// activateInBrowser follows the activation link, types the secret from the
// letter and a password, reads the authenticator app's key from the page,
// confirms it with its first code and returns the key.
func (b *browser) activateInBrowser(link, secret, password string) string {
	b.t.Helper()
	b.open(link[strings.Index(link, "/activate"):])
	if !strings.Contains(b.text("h1"), "Account activeren") {
		b.t.Fatalf("activation page: %q", b.text("main"))
	}
	b.fill("#secret", secret)
	b.fill("#password", password)
	b.fill("#repeat", password)
	b.submit("#activate-next")
	if !b.has("#totp-new img.qr") {
		b.t.Fatalf("no QR code: %q", b.text("main"))
	}
	key := strings.TrimSpace(b.text("#totp-secret"))
	code, err := totp.GenerateCode(key, time.Now())
	if err != nil {
		b.t.Fatal(err)
	}
	b.fill("#totp", code)
	b.submit("#activate-complete")
	if !b.has("#activate-done") {
		b.t.Fatalf("activation not completed: %q", b.text("main"))
	}
	return key
}

// The browser journey, without --demo: the first administrator
// activates from the link in a browser, logs on and invites a professional
// on the accounts page; after the role's approval and the patient's
// registration (over the API), the person activates in the browser and
// reads her own record.
//
// REQ: ID-6, AUTH-1, AUTH-5, AUTH-8, AZ-4, AZ-7
func TestBrowserRealOrganisation(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	data := t.TempDir()
	cli := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append(args, "--data", data)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	tid := tenantIDRe.FindStringSubmatch(cli("tenant", "create", "--name", "Huisartsenpraktijk De Eik", "--ura", "90000123"))[1]
	adminOut := cli("tenant", "invite-admin", tid, "--name", "Anna de Vries", "--email", "anna@eik.example", "--verified-by", "operator, passport seen")
	officerOut := cli("tenant", "invite-admin", tid, "--name", "Sam Veilig", "--email", "sam@eik.example", "--role", "security-officer", "--verified-by", "operator, passport seen")
	tlsDir := t.TempDir()
	if _, _, err := server.DemoCertificate(tlsDir, time.Now()); err != nil {
		t.Fatal(err)
	}
	r := startServerArgs(t, bin, data, []string{"--tls-cert", filepath.Join(tlsDir, "demo-cert.pem"), "--tls-key", filepath.Join(tlsDir, "demo-key.pem")})
	b := newBrowser(t, r)

	const adminPW = "paarse olifant danst op het ijs 7"
	link := regexpFind(t, `activation link: (\S+)`, adminOut)
	adminKey := b.activateInBrowser(link, readLetter(t, letterRe.FindStringSubmatch(adminOut)[1]), adminPW)
	b.logon("anna@eik.example", adminPW, adminKey)
	b.open("/admin/accounts")
	b.fill("#inv-name", "Dr. P. Jansen")
	b.fill("#inv-email", "p@eik.example")
	b.fill("#inv-function", "huisarts")
	b.fill("#inv-big", "12345678901")
	b.fill("#inv-verified", "Anna de Vries, BIG-register and passport")
	b.submit("#invite-go")
	proCode := strings.TrimSpace(b.text("#invited-code"))
	proLetter := strings.TrimSpace(b.text("#invited-letter"))
	b.logoff()

	// The rest of the staff side over the API, as in TestRealOrganisationJourney.
	c := client()
	officer := invitee{user: "sam@eik.example", code: codeRe.FindStringSubmatch(officerOut)[1], secret: readLetter(t, letterRe.FindStringSubmatch(officerOut)[1]), password: "blauwe reiger vangt een vis 3"}
	activateOver(t, c, r.base, &officer)
	pro := invitee{user: "p@eik.example", code: proCode, secret: readLetter(t, proLetter), password: "groene kikker springt over de sloot 9"}
	activateOver(t, c, r.base, &pro)
	// The browser's log-on may have used the next time step; a TOTP step
	// counts once, so the API log-on waits for the step after it.
	time.Sleep(time.Until(time.Now().Truncate(30*time.Second).Add(30*time.Second)) + 500*time.Millisecond)
	adminTok := logonOver(t, c, r.base, invitee{user: "anna@eik.example", password: adminPW, totp: adminKey})
	officerTok := logonOver(t, c, r.base, officer)
	code, body, _ := do(t, c, "POST", r.base+"/api/v1/rights/requests", adminTok, map[string]any{"account_id": pro.account, "role": "professional", "reason": "new GP"})
	var rr struct{ ID string }
	json.Unmarshal(body, &rr)
	if code != 201 {
		t.Fatalf("right request: %d %s", code, body)
	}
	if code, body, _ = do(t, c, "POST", r.base+"/api/v1/rights/requests/"+rr.ID+"/decision", officerTok, map[string]any{"approve": true}); code != 200 {
		t.Fatalf("approval: %d %s", code, body)
	}
	proTok := logonOver(t, c, r.base, pro)
	code, body, _ = do(t, c, "POST", r.base+"/fhir/Patient", proTok, map[string]any{"resourceType": "Patient", "name": []map[string]any{{"family": "Bos", "given": []string{"Eva"}}}})
	var pat struct{ ID string }
	json.Unmarshal(body, &pat)
	if code != 201 {
		t.Fatalf("register patient: %d %s", code, body)
	}
	if code, body, _ = do(t, c, "POST", r.base+"/api/v1/relationships", adminTok, map[string]any{"professional_id": pro.account, "patient_id": pat.ID, "kind": "gp"}); code != 201 {
		t.Fatalf("relationship: %d %s", code, body)
	}
	code, body, _ = do(t, c, "POST", r.base+"/api/v1/patients/"+pat.ID+"/invitations", proTok, map[string]any{"name": "Eva Bos", "email": "eva@example.nl",
		"registration_method": 3, "verified_by": "Dr. P. Jansen, ID card at the desk", "deliver": "letter"})
	var inv struct{ Link, Letter string }
	json.Unmarshal(body, &inv)
	if code != 201 {
		t.Fatalf("person invitation: %d %s", code, body)
	}

	// The person, in the browser.
	const evaPW = "de rode kater slaapt in de zon 5"
	evaKey := b.activateInBrowser(inv.Link, readLetter(t, inv.Letter), evaPW)
	b.logon("eva@example.nl", evaPW, evaKey)
	if !strings.HasSuffix(b.location(), "/me") || !strings.Contains(b.text("main"), "Bos") {
		t.Fatalf("the person's own record: %s %q", b.location(), b.text("main"))
	}
	// A part with nothing in it says so in words a reader cannot take for
	// "no allergies" (issue 20).
	b.open("/me/record?section=allergies")
	if main := b.text("main"); !strings.Contains(main, "Niets vastgelegd") || strings.Contains(main, "Geen gegevens") {
		t.Fatalf("the empty parts of a new record: %q", main)
	}
	if _, err := os.Stat(inv.Letter); err != nil {
		t.Fatal(err)
	}
}

func regexpFind(t *testing.T, expr, s string) string {
	t.Helper()
	m := regexp.MustCompile(expr).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %s in %q", expr, s)
	}
	return m[1]
}
