package docsign_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/docsign"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/pki"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

// Pinned npm releases the interoperability test installs.
const (
	joseVersion         = "6.2.17"
	canonicalizeVersion = "2.1.0"
)

var update = flag.Bool("update", false, "rewrite testdata/vector.json")

const bundle = `{"resourceType":"Bundle","type":"document","timestamp":"2026-05-04T09:00:00+02:00",
 "entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Observation","status":"final","valueQuantity":{"value":1.50,"unit":"mmol/L"},
 "code":{"text":"Glucose \u00e9\u20ac"}}}]}`

type fixture struct {
	ctx      context.Context
	ca       *pki.CA
	tenant   string
	admin    audit.Event
	sysKey   *ecdsa.PrivateKey
	sysCert  pki.Certificate
	sysChain []*x509.Certificate
}

func setup(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	kit := testkit.New(t, db)
	ca := pki.New(db, kit.Master, kit.Audit, kit.Clock, rand.Reader)
	ten, err := kit.IDs.CreateTenant(ctx, identity.Tenant{Name: "Lab Noord"})
	if err != nil {
		t.Fatal(err)
	}
	var accs []string
	for _, u := range []string{"a1", "a2", "resp"} {
		a, err := kit.IDs.CreateAccount(ctx, identity.Account{TenantID: ten.ID, Kind: identity.KindAdmin, Username: u, DisplayName: u, RegistrationMethod: 3})
		if err != nil {
			t.Fatal(err)
		}
		accs = append(accs, a.ID)
	}
	f := &fixture{ctx: ctx, ca: ca, tenant: ten.ID, admin: audit.Event{TenantID: ten.ID, UserID: accs[0], Role: "application-admin"}}
	req, err := ca.ProposeIntermediate(ctx, f.admin, ten.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The second admin approves (four eyes, GOV-1), in that role.
	if _, err := ca.Approve(ctx, audit.Event{TenantID: ten.ID, UserID: accs[1], Role: "application-admin"}, req.ID); err != nil {
		t.Fatal(err)
	}
	sys, err := ca.RegisterSystem(ctx, f.admin, pki.System{TenantID: ten.ID, Name: "lab", ResponsibleID: accs[2], Scopes: []string{"create"}, Categories: []string{"*"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.sysKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, f.sysKey)
	f.sysCert, err = ca.Issue(ctx, f.admin, ten.ID, sys.ID, pki.PurposeSigning, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(f.sysCert.DER)
	chain, _ := ca.Chain(ctx, ten.ID)
	f.sysChain = []*x509.Certificate{leaf, chain[0]}
	return f
}

func faultIs(err error, want string) bool {
	var f *docsign.Fault
	return errors.As(err, &f) && strings.Contains(f.Reason, want)
}

// Outgoing documents are signed by the tenant's document signer (a key of
// its own), verified here and by npm jose; a system's document signed with
// npm jose verifies here; each fault is named.
// REQ: DP-4
func TestSignedDocuments(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		key, chain, err := f.ca.DocumentSigner(f.ctx, f.tenant)
		if err != nil {
			t.Fatal(err)
		}
		if chain[0].Equal(f.sysChain[0]) || key.PublicKey.Equal(&f.sysKey.PublicKey) {
			t.Fatal("the document signer is a system's key")
		}
		signed, err := docsign.Sign([]byte(bundle), key, chain, "Lab Noord", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		peer, err := docsign.Verify(f.ctx, f.ca, signed)
		if err != nil || peer.TenantID != f.tenant {
			t.Fatalf("verify our own: %+v %v", peer, err)
		}
		// One changed byte of the document: the signature no longer holds.
		changed := bytes.Replace(signed, []byte(`1.50`), []byte(`1.51`), 1)
		if _, err := docsign.Verify(f.ctx, f.ca, changed); !faultIs(err, "does not match the document's canonical bytes") {
			t.Fatalf("changed byte: %v", err)
		}
		// Whitespace and key order are not the document: canonical JSON.
		var m map[string]any
		json.Unmarshal(signed, &m)
		reordered, _ := json.MarshalIndent(m, "", "   ")
		if _, err := docsign.Verify(f.ctx, f.ca, reordered); err != nil {
			t.Fatalf("re-serialised document: %v", err)
		}
		if _, err := docsign.Verify(f.ctx, f.ca, []byte(bundle)); !errors.Is(err, docsign.ErrUnsigned) {
			t.Fatalf("unsigned: %v", err)
		}
		for _, c := range []struct{ header, want string }{
			{`{"alg":"none"}`, `alg "none" is not allowed`},
			{`{"alg":"HS256","kid":"x"}`, `alg "HS256" is not allowed`},
			{`{"alg":"ES256","kid":"00","x5c":["` + base64.StdEncoding.EncodeToString(chain[0].Raw) + `"]}`, "kid \"00\" is not the signer"},
			{`{"alg":"ES256","kid":"` + f.sysCert.Serial + `","x5c":["` + base64.StdEncoding.EncodeToString(f.sysChain[0].Raw) + `"]}`, "does not match"},
		} {
			forged := withHeader(t, signed, c.header)
			if _, err := docsign.Verify(f.ctx, f.ca, forged); !faultIs(err, c.want) {
				t.Errorf("header %s: %v; want %q", c.header, err, c.want)
			}
		}

		dir := npmJose(t)
		in := filepath.Join(dir, "signed.json")
		os.WriteFile(in, signed, 0o600)
		out := node(t, dir, "verify", in)
		if !strings.Contains(out, `"ok":true`) {
			t.Fatalf("npm jose: %s", out)
		}
		// The system signs with npm jose; we verify, and after its
		// revocation we refuse.
		pk, _ := x509.MarshalPKCS8PrivateKey(f.sysKey)
		os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600)
		x5c, _ := json.Marshal([]string{base64.StdEncoding.EncodeToString(f.sysChain[0].Raw), base64.StdEncoding.EncodeToString(f.sysChain[1].Raw)})
		os.WriteFile(filepath.Join(dir, "x5c.json"), x5c, 0o600)
		os.WriteFile(filepath.Join(dir, "unsigned.json"), []byte(bundle), 0o600)
		theirs := node(t, dir, "sign", filepath.Join(dir, "unsigned.json"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "x5c.json"), f.sysCert.Serial)
		peer, err = docsign.Verify(f.ctx, f.ca, []byte(theirs))
		if err != nil || peer.SystemID != f.sysCert.SystemID {
			t.Fatalf("npm jose's signature: %+v %v", peer, err)
		}
		if err := f.ca.Revoke(f.ctx, f.admin, f.tenant, f.sysCert.Serial, "key lost"); err != nil {
			t.Fatal(err)
		}
		if _, err := docsign.Verify(f.ctx, f.ca, []byte(theirs)); !faultIs(err, "revoked") {
			t.Fatalf("revoked signer: %v", err)
		}
		writeVector(t, signed, chain)
	})
}

// withHeader replaces the JWS header of a signed bundle, keeping the
// signature.
func withHeader(t *testing.T, signed []byte, header string) []byte {
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

func npmJose(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	install := exec.Command("npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "jose@"+joseVersion, "canonicalize@"+canonicalizeVersion)
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm install: %v\n%s", err, out)
	}
	script, err := os.ReadFile(filepath.Join("testdata", "jose.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "jose.mjs"), script, 0o600)
	return dir
}

func node(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("node", append([]string{"jose.mjs"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// vector is a test vector of the format (docs/exchange.md): a signed
// Bundle, the canonical bytes its signature covers, and the signer's
// certificate chain.
type vector struct {
	Signed    json.RawMessage `json:"signed"`
	Canonical string          `json:"canonical"`
	X5c       []string        `json:"x5c"`
}

func writeVector(t *testing.T, signed []byte, chain []*x509.Certificate) {
	if !*update {
		return
	}
	c, _, _ := docsign.Canonical(signed)
	v := vector{Signed: signed, Canonical: string(c)}
	for _, x := range chain {
		v.X5c = append(v.X5c, base64.StdEncoding.EncodeToString(x.Raw))
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	os.WriteFile(filepath.Join("testdata", "vector.json"), b, 0o644)
}

// The stored vector still holds: its canonical bytes are what Canonical
// makes of it, and its signature verifies with the signer certificate's
// key over them (offline, without a CA in the database).
// REQ: DP-4
func TestVector(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "vector.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vector
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	c, _, err := docsign.Canonical(v.Signed)
	if err != nil || string(c) != v.Canonical {
		t.Fatalf("canonical:\n%s\nwant\n%s", c, v.Canonical)
	}
	der, _ := base64.StdEncoding.DecodeString(v.X5c[0])
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := docsign.VerifyWithKey(v.Signed, leaf.PublicKey); err != nil {
		t.Fatal(err)
	}
	if err := docsign.VerifyWithKey(bytes.Replace(v.Signed, []byte("mmol"), []byte("mmoL"), 1), leaf.PublicKey); err == nil {
		t.Fatal("a changed vector verifies")
	}
}
