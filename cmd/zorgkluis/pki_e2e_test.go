package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/synth"

	"github.com/zorgkluis/zorgkluis/internal/docsign"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// opensslCSR makes a P-256 key and its CSR with openssl, as a system's
// operator would.
func opensslCSR(t *testing.T, dir, name string) (keyPath, csrPEM string) {
	t.Helper()
	keyPath, csrPath := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".csr")
	out, err := exec.Command("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", keyPath, "-out", csrPath, "-subj", "/O=Lab").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(csrPath)
	return keyPath, string(b)
}

// curlCert reads url over mutual TLS with curl; it returns curl's exit
// status and the HTTP status and body.
func curlCert(t *testing.T, url, cert, key string) (int, string) {
	t.Helper()
	cmd := exec.Command("curl", "-sS", "-k", "--max-time", "10", "--cert", cert, "--key", key, "-w", "\n%{http_code}", url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		t.Fatal(err)
	}
	return 0, string(out)
}

// TestSystemOverMutualTLS is issue 15's journey with the real binary and
// real clients: two admins set up the tenant's CA (four eyes), register a
// lab system with its responsible person, have its openssl CSR signed (366
// days refused), and the lab reads the demo patient over the API listener
// with curl and openssl s_client; a certificate of an outside CA (mkcert)
// is refused at the handshake, a revoked certificate on the next request
// without a restart; the access log names the system and its responsible
// person, every certificate is a leaf of the tenant's tree, audit verify
// passes and a proof of the issued certificate checks offline.
// REQ: DP-3
// REQ: ID-3
// REQ: LOG-1
// REQ: GOV-1
// REQ: DP-4
// REQ: LOG-8
func TestSystemOverMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server")
	}
	for _, tool := range []string{"openssl", "curl", "mkcert"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (scripts/test installs it): %v", tool, err)
		}
	}
	bin := buildBinary(t)
	data := t.TempDir()
	apiAddr := freeAddr(t)
	srv := startServerArgs(t, bin, data, []string{"--demo", "--api-addr", apiAddr})
	cred := readCreds(t, data)
	srv.stop(t)
	// A second organisation on the same installation, with patients of its
	// own: the demo tenant's system must never reach them.
	if code, _, errOut := runCLI(t, "generate", "--data", data, "--patients", "2", "--resources-per-patient", "1", "--professionals", "1", "--persons", "1", "--seed", "7"); code != 0 {
		t.Fatalf("generate the second tenant: %d %s", code, errOut)
	}
	var other synth.Credentials
	if b, err := os.ReadFile(filepath.Join(data, "synth-credentials.json")); err != nil || json.Unmarshal(b, &other) != nil || len(other.Persons) == 0 {
		t.Fatalf("second tenant's credentials: %v", err)
	}
	otherPatient := other.Persons[0].Patients[0]
	srv = startServerArgs(t, bin, data, []string{"--demo", "--api-addr", apiAddr})
	api := "https://" + apiAddr
	c := client()
	smit := logon(t, c, srv.base, demoUser(t, cred, "beheer.smit"))
	visser := logon(t, c, srv.base, demoUser(t, cred, "beheer.visser"))
	jansen := demoUser(t, cred, "dr.jansen")

	// Four eyes: smit proposes the tenant's CA, smit cannot approve it,
	// visser does.
	code, b, _ := do(t, c, "POST", srv.base+"/api/v1/pki/requests", smit, map[string]string{"kind": "intermediate"})
	if code != 201 {
		t.Fatalf("propose: %d %s", code, b)
	}
	var req struct{ ID string }
	json.Unmarshal(b, &req)
	if code, b, _ = do(t, c, "POST", srv.base+"/api/v1/pki/requests/"+req.ID+"/approve", smit, nil); code != 403 || !strings.Contains(string(b), "four eyes") {
		t.Fatalf("proposer approves own request: %d %s", code, b)
	}
	if code, b, _ = do(t, c, "POST", srv.base+"/api/v1/pki/requests/"+req.ID+"/approve", visser, nil); code != 200 {
		t.Fatalf("approve: %d %s\n%s", code, b, srv.stderr)
	}

	// A system with its responsible person (ID-3); a patient is no
	// responsible person.
	sysBody := map[string]any{"name": "Lab Noord", "responsible_id": jansen.AccountID, "scopes": []string{"read", "search"}, "categories": []string{"*"}}
	code, b, _ = do(t, c, "POST", srv.base+"/api/v1/pki/systems", smit, map[string]any{"name": "Lab X", "responsible_id": demoUser(t, cred, "s.devries").AccountID,
		"scopes": []string{"read"}, "categories": []string{"*"}})
	if code != 400 || !strings.Contains(string(b), "ID-3") {
		t.Fatalf("patient as responsible person: %d %s", code, b)
	}
	code, b, _ = do(t, c, "POST", srv.base+"/api/v1/pki/systems", smit, sysBody)
	if code != 201 {
		t.Fatalf("register: %d %s", code, b)
	}
	var sys struct{ ID string }
	json.Unmarshal(b, &sys)

	dir := t.TempDir()
	key, csr := opensslCSR(t, dir, "lab")
	// 366 days is refused with the policy's reason; 365 is issued.
	code, b, _ = do(t, c, "POST", srv.base+"/api/v1/pki/systems/"+sys.ID+"/certificates", smit, map[string]any{"csr": csr, "days": 366})
	if code != 400 || !strings.Contains(string(b), "366 days exceeds the policy's maximum of 365 days") {
		t.Fatalf("366 days: %d %s", code, b)
	}
	if code, b, _ = do(t, c, "POST", srv.base+"/api/v1/pki/systems/"+sys.ID+"/certificates", smit, map[string]any{"csr": "garbage"}); code != 400 {
		t.Fatalf("malformed CSR: %d %s", code, b)
	}
	code, b, _ = do(t, c, "POST", srv.base+"/api/v1/pki/systems/"+sys.ID+"/certificates", smit, map[string]any{"csr": csr, "days": 365})
	if code != 201 {
		t.Fatalf("issue: %d %s", code, b)
	}
	var cert struct {
		Serial   string    `json:"serial"`
		PEM      string    `json:"certificate_pem"`
		ChainPEM string    `json:"chain_pem"`
		NotAfter time.Time `json:"not_after"`
	}
	json.Unmarshal(b, &cert)
	if len(cert.Serial) != 32 || time.Until(cert.NotAfter) > 365*24*time.Hour {
		t.Fatalf("certificate %s until %s", cert.Serial, cert.NotAfter)
	}
	certPath := filepath.Join(dir, "lab.pem")
	os.WriteFile(certPath, []byte(cert.PEM+cert.ChainPEM), 0o600)

	// curl reads the patient; the response is the patient's.
	exit, out := curlCert(t, api+"/fhir/Patient/"+cred.PatientID, certPath, key)
	if exit != 0 || !strings.HasSuffix(out, "\n200") || !strings.Contains(out, `"resourceType":"Patient"`) {
		t.Fatalf("curl with the system's certificate: exit %d\n%s", exit, out)
	}
	// Tenant A's system cannot read tenant B's patient: the same answer as
	// for a patient that does not exist, and nothing of the record.
	// REQ: AZ-1
	if other.TenantID == cred.TenantID {
		t.Fatal("the second tenant is the demo's")
	}
	exit, out = curlCert(t, api+"/fhir/Patient/"+otherPatient, certPath, key)
	if exit != 0 || !(strings.HasSuffix(out, "\n404") || strings.HasSuffix(out, "\n403")) || !strings.Contains(out, `"resourceType":"OperationOutcome"`) ||
		strings.Contains(out, `"resourceType":"Patient"`) {
		t.Fatalf("tenant A's system reads tenant B's patient: exit %d\n%s", exit, out)
	}
	_, missing := curlCert(t, api+"/fhir/Patient/p-does-not-exist", certPath, key)
	if out[strings.LastIndex(out, "\n"):] != missing[strings.LastIndex(missing, "\n"):] {
		t.Fatalf("another tenant's patient (%s) is told apart from a missing one (%s)", out[strings.LastIndex(out, "\n")+1:], missing[strings.LastIndex(missing, "\n")+1:])
	}
	exit, out = curlCert(t, api+"/fhir/Observation?patient="+otherPatient, certPath, key)
	if exit != 0 || strings.Contains(out, `"resourceType":"Observation"`) {
		t.Fatalf("tenant A's system searches tenant B's patient: exit %d\n%s", exit, out)
	}
	// The scopes hold: the system may not write.
	cmd := exec.Command("curl", "-sS", "-k", "--cert", certPath, "--key", key, "-X", "POST", "-H", "Content-Type: application/fhir+json",
		"--data", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/`+cred.PatientID+`"}}`,
		"-w", "\n%{http_code}", api+"/fhir/Observation")
	if o, _ := cmd.CombinedOutput(); !strings.HasSuffix(string(o), "\n403") {
		t.Fatalf("a read-only system writes: %s", o)
	}
	// openssl s_client completes the handshake with the certificate and
	// fails it without one.
	sc := exec.Command("openssl", "s_client", "-connect", apiAddr, "-cert", certPath, "-key", key, "-brief", "-ign_eof")
	sc.Stdin = strings.NewReader("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if o, err := sc.CombinedOutput(); err != nil || !strings.Contains(string(o), "CONNECTION ESTABLISHED") || !strings.Contains(string(o), `"status":"ok"`) {
		t.Fatalf("openssl s_client with the certificate: %v\n%s", err, o)
	}
	sc = exec.Command("openssl", "s_client", "-connect", apiAddr, "-brief", "-ign_eof")
	sc.Stdin = strings.NewReader("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if o, _ := sc.CombinedOutput(); strings.Contains(string(o), `"status":"ok"`) {
		t.Fatalf("openssl s_client without a certificate was served:\n%s", o)
	}

	// A client certificate of an outside CA (mkcert) is refused.
	caroot := t.TempDir()
	mk := exec.Command("mkcert", "-client", "-cert-file", filepath.Join(dir, "mk.pem"), "-key-file", filepath.Join(dir, "mk.key"), "lab.example")
	mk.Env = append(os.Environ(), "CAROOT="+caroot)
	if o, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("mkcert: %v\n%s", err, o)
	}
	if exit, out := curlCert(t, api+"/fhir/Patient/"+cred.PatientID, filepath.Join(dir, "mk.pem"), filepath.Join(dir, "mk.key")); exit == 0 {
		t.Fatalf("mkcert's certificate was accepted:\n%s", out)
	}

	epd := signedDocuments(t, c, srv.base, api, smit, visser, cred.PatientID, jansen.AccountID, dir)

	// Revoked: the next request fails, without a restart.
	if code, b, _ = do(t, c, "POST", srv.base+"/api/v1/pki/certificates/"+cert.Serial+"/revoke", smit, map[string]string{"reason": "key lost"}); code != 200 {
		t.Fatalf("revoke: %d %s", code, b)
	}
	if exit, out := curlCert(t, api+"/fhir/Patient/"+cred.PatientID, certPath, key); exit == 0 {
		t.Fatalf("revoked certificate was accepted:\n%s", out)
	}
	if !strings.Contains(srv.stderr.String(), "is revoked") {
		t.Fatalf("the refusal is not logged:\n%s", srv.stderr)
	}
	// The public listener's CRL lists it.
	crlPath := filepath.Join(dir, "crl.der")
	if o, err := exec.Command("curl", "-sS", "-k", "-o", crlPath, srv.base+"/api/v1/pki/tenants/"+cred.TenantID+"/crl").CombinedOutput(); err != nil {
		t.Fatalf("crl: %v %s", err, o)
	}
	if o, err := exec.Command("openssl", "crl", "-inform", "DER", "-in", crlPath, "-noout", "-text").CombinedOutput(); err != nil ||
		!strings.Contains(strings.ToLower(strings.ReplaceAll(string(o), ":", "")), cert.Serial) {
		t.Fatalf("openssl crl: %v\n%s", err, o)
	}
	srv.stop(t)

	// The log: the read names the system and its responsible person; the
	// certificate's issue and revocation are leaves of the tenant's tree.
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(data, "zorgkluis.db"))
	if err != nil {
		t.Fatal(err)
	}
	var body string
	if err := db.QueryRowContext(ctx, `SELECT body FROM audit_events WHERE user_id = $1 AND action = 'read' AND outcome = 'success'`, sys.ID).Scan(&body); err != nil {
		t.Fatalf("the system's read is not in the log: %v", err)
	}
	if !strings.Contains(body, `"principalKind":"system"`) || !strings.Contains(body, `"responsible":"`+jansen.AccountID+` Dr. A. Jansen"`) || !strings.Contains(body, cert.Serial) {
		t.Fatalf("read event %s", body)
	}
	// Sharing the record with the system is logged as an export by the
	// system (LOG-8), and the signed document it sent as a create.
	for _, action := range []string{"export", "create"} {
		var n int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_events WHERE user_id = $1 AND action = $2 AND outcome = 'success'`, epd, action).Scan(&n)
		if n == 0 {
			t.Errorf("no %s event of system %s", action, epd)
		}
	}
	var issued, revoked string
	db.QueryRowContext(ctx, `SELECT id FROM audit_events WHERE action = 'certificate' AND body LIKE $1`, `%"Certificate/`+cert.Serial+`"%issued tls%`).Scan(&issued)
	db.QueryRowContext(ctx, `SELECT id FROM audit_events WHERE action = 'certificate' AND body LIKE $1`, `%"Certificate/`+cert.Serial+`"%revoked%`).Scan(&revoked)
	db.Close()
	if issued == "" || revoked == "" {
		t.Fatalf("certificate leaves: issued %q revoked %q", issued, revoked)
	}
	if o, err := exec.Command(bin, "audit", "verify", "--data", data).CombinedOutput(); err != nil {
		t.Fatalf("audit verify: %v\n%s", err, o)
	}
	proof, err := exec.Command(bin, "audit", "proof", issued, "--data", data).Output()
	if err != nil {
		t.Fatalf("audit proof: %v", err)
	}
	keyText, err := exec.Command(bin, "audit", "public-key", "--data", data).Output()
	if err != nil {
		t.Fatal(err)
	}
	away := t.TempDir()
	os.WriteFile(filepath.Join(away, "proof.json"), proof, 0o600)
	if o, err := exec.Command(bin, "audit", "check-proof", filepath.Join(away, "proof.json"), "--key", strings.TrimSpace(string(keyText))).CombinedOutput(); err != nil {
		t.Fatalf("check-proof of the certificate's leaf: %v\n%s", err, o)
	}
	// The CLI lists every certificate ever issued for the tenant.
	if code, out, errOut := runCLI(t, "pki", "certificates", "--tenant", cred.TenantID, "--data", data); code != 0 || !strings.Contains(out, cert.Serial) || !strings.Contains(out, "revoked") {
		t.Fatalf("pki certificates: %d\n%s%s", code, out, errOut)
	}
}

// signedDocuments: an EHR system posts signed Bundles over the API listener
// (DP-4): a good signature is stored, a changed byte, alg none and a
// wrong kid are refused naming the fault, nothing stored; once the tenant
// requires signatures (four eyes) an unsigned Bundle is refused; and the
// patient's $everything comes back signed by the tenant's signer.
func signedDocuments(t *testing.T, c *http.Client, base, api, smit, visser, patient, responsible, dir string) (systemID string) {
	t.Helper()
	code, b, _ := do(t, c, "POST", base+"/api/v1/pki/systems", smit, map[string]any{"name": "EPD Zuid", "responsible_id": responsible,
		"scopes": []string{"read", "create", "export"}, "categories": []string{"*"}, "patients": []string{patient}})
	if code != 201 {
		t.Fatalf("register EPD: %d %s", code, b)
	}
	var sys struct{ ID string }
	json.Unmarshal(b, &sys)
	tlsKey, tlsCSR := opensslCSR(t, dir, "epd")
	code, b, _ = do(t, c, "POST", base+"/api/v1/pki/systems/"+sys.ID+"/certificates", smit, map[string]any{"csr": tlsCSR, "days": 30})
	if code != 201 {
		t.Fatalf("EPD TLS certificate: %d %s", code, b)
	}
	var tc struct {
		PEM      string `json:"certificate_pem"`
		ChainPEM string `json:"chain_pem"`
	}
	json.Unmarshal(b, &tc)
	tlsCert := filepath.Join(dir, "epd.pem")
	os.WriteFile(tlsCert, []byte(tc.PEM+tc.ChainPEM), 0o600)
	// The signing key is a key of its own.
	signKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, signKey)
	code, b, _ = do(t, c, "POST", base+"/api/v1/pki/systems/"+sys.ID+"/certificates", smit, map[string]any{"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})),
		"days": 30, "purpose": "signing"})
	if code != 201 {
		t.Fatalf("EPD signing certificate: %d %s", code, b)
	}
	var sc struct {
		Serial   string `json:"serial"`
		PEM      string `json:"certificate_pem"`
		ChainPEM string `json:"chain_pem"`
	}
	json.Unmarshal(b, &sc)
	var chain []*x509.Certificate
	rest := []byte(sc.PEM + sc.ChainPEM)
	for {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		x, _ := x509.ParseCertificate(blk.Bytes)
		chain = append(chain, x)
	}
	doc := `{"resourceType":"Bundle","type":"document","entry":[{"resource":{"resourceType":"Observation","status":"final",
		"code":{"coding":[{"system":"http://loinc.org","code":"2339-0"}]},"subject":{"reference":"Patient/` + patient + `"},
		"valueQuantity":{"value":5.4,"unit":"mmol/L"}}}]}`
	signed, err := docsign.Sign([]byte(doc), signKey, chain[:2], "EPD Zuid", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	post := func(body []byte) (int, string) {
		os.WriteFile(filepath.Join(dir, "doc.json"), body, 0o600)
		out, _ := exec.Command("curl", "-sS", "-k", "--cert", tlsCert, "--key", tlsKey, "-H", "Content-Type: application/fhir+json",
			"--data-binary", "@"+filepath.Join(dir, "doc.json"), "-w", "\n%{http_code}", api+"/fhir/Bundle").CombinedOutput()
		s := string(out)
		i := strings.LastIndex(s, "\n")
		code := 0
		json.Unmarshal([]byte(s[i+1:]), &code)
		return code, s[:i]
	}
	if code, out := post(bytes1(signed, "5.4", "5.5")); code != 400 || !strings.Contains(out, "does not match the document's canonical bytes") {
		t.Fatalf("a changed byte: %d %s", code, out)
	}
	if code, out := post(withJWSHeader(t, signed, `{"alg":"none"}`)); code != 400 || !strings.Contains(out, `alg \"none\" is not allowed`) {
		t.Fatalf("alg none: %d %s", code, out)
	}
	if code, out := post(withJWSHeader(t, signed, `{"alg":"ES256","kid":"0badc0de","x5c":["`+base64.StdEncoding.EncodeToString(chain[0].Raw)+`"]}`)); code != 400 || !strings.Contains(out, "kid") {
		t.Fatalf("wrong kid: %d %s", code, out)
	}
	if code, out := post(signed); code != 200 || !strings.Contains(out, "201 Created") {
		t.Fatalf("signed document: %d %s", code, out)
	}
	// The tenant requires signatures, by four eyes.
	code, b, _ = do(t, c, "POST", base+"/api/v1/pki/requests", smit, map[string]any{"kind": "policy", "policy": map[string]any{"max_days": 365, "require_signed": true}})
	var req struct{ ID string }
	json.Unmarshal(b, &req)
	if code != 201 {
		t.Fatalf("propose policy: %d %s", code, b)
	}
	if code, b, _ = do(t, c, "POST", base+"/api/v1/pki/requests/"+req.ID+"/approve", visser, nil); code != 200 {
		t.Fatalf("approve policy: %d %s", code, b)
	}
	if code, out := post([]byte(doc)); code != 400 || !strings.Contains(out, "has no signature") {
		t.Fatalf("unsigned under require-signed: %d %s", code, out)
	}
	// $everything, signed by the tenant's signer (not the TLS key).
	out, err := exec.Command("curl", "-sS", "-k", "--cert", tlsCert, "--key", tlsKey, api+"/fhir/Patient/"+patient+"/$everything?_signed=true").Output()
	if err != nil {
		t.Fatalf("$everything: %v", err)
	}
	var everything struct {
		Entry     []json.RawMessage
		Signature struct{ Data string }
	}
	json.Unmarshal(out, &everything)
	jws, _ := base64.StdEncoding.DecodeString(everything.Signature.Data)
	hb, _ := base64.RawURLEncoding.DecodeString(strings.Split(string(jws), ".")[0])
	var h struct{ X5c []string }
	json.Unmarshal(hb, &h)
	if len(h.X5c) < 2 || len(everything.Entry) < 2 {
		t.Fatalf("signed $everything: %.300s", out)
	}
	der, _ := base64.StdEncoding.DecodeString(h.X5c[0])
	leaf, err := x509.ParseCertificate(der)
	if err != nil || leaf.Subject.CommonName != "zorgkluis document signer" {
		t.Fatalf("signer %v %v", leaf, err)
	}
	if err := docsign.VerifyWithKey(out, leaf.PublicKey); err != nil {
		t.Fatalf("signed $everything does not verify: %v", err)
	}
	return sys.ID
}

func bytes1(b []byte, from, to string) []byte { return []byte(strings.Replace(string(b), from, to, 1)) }

func withJWSHeader(t *testing.T, signed []byte, header string) []byte {
	var m map[string]any
	json.Unmarshal(signed, &m)
	sig := m["signature"].(map[string]any)
	jws, _ := base64.StdEncoding.DecodeString(sig["data"].(string))
	parts := strings.Split(string(jws), ".")
	parts[0] = base64.RawURLEncoding.EncodeToString([]byte(header))
	sig["data"] = base64.StdEncoding.EncodeToString([]byte(strings.Join(parts, ".")))
	b, _ := json.Marshal(m)
	return b
}
