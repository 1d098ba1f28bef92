package pki_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/pki"
	"github.com/zorgkluis/zorgkluis/internal/principal"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

// world is two tenants, each with two admins, a professional responsible
// for systems, a patient, and an approved CA.
type world struct {
	ctx   context.Context
	clk   *clock.Fake
	kit   *testkit.Kit
	ca    *pki.CA
	t     [2]tenantFix
	admin audit.Event
	n     int // systems registered, for unique names
}

type tenantFix struct {
	id, patient, responsible string
	admin, second            audit.Event
}

func newWorld(t *testing.T, db *store.DB) *world {
	t.Helper()
	w := &world{ctx: context.Background(), clk: clock.NewFake(time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC))}
	w.kit = testkit.New(t, db, testkit.WithClock(w.clk))
	w.ca = pki.New(db, w.kit.Master, w.kit.Audit, w.clk, rand.Reader)
	for i, name := range []string{"Lab-tenant A", "Praktijk B"} {
		ten, err := w.kit.IDs.CreateTenant(w.ctx, identity.Tenant{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		acc := func(kind, user, display string) string {
			a, err := w.kit.IDs.CreateAccount(w.ctx, identity.Account{TenantID: ten.ID, Kind: kind, Username: user + ten.ID, DisplayName: display, RegistrationMethod: 3})
			if err != nil {
				t.Fatal(err)
			}
			return a.ID
		}
		f := tenantFix{id: ten.ID}
		f.responsible = acc(identity.KindProfessional, "resp", "Dr. Verantwoordelijk")
		a1, a2 := acc(identity.KindAdmin, "adm1", "Admin Een"), acc(identity.KindAdmin, "adm2", "Admin Twee")
		f.admin = audit.Event{TenantID: ten.ID, UserID: a1, UserName: "Admin Een", Role: "application-admin"}
		f.second = audit.Event{TenantID: ten.ID, UserID: a2, UserName: "Admin Twee", Role: "application-admin"}
		pid, err := w.kit.IDs.CreatePatient(w.ctx, db, newID(t, w), ten.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		f.patient = pid
		req, err := w.ca.ProposeIntermediate(w.ctx, f.admin, ten.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.ca.Approve(w.ctx, f.admin, req.ID); !errors.Is(err, pki.ErrForbidden) {
			t.Fatalf("the proposer approved their own CA request: %v", err)
		}
		if _, err := w.ca.Approve(w.ctx, f.second, req.ID); err != nil {
			t.Fatal(err)
		}
		w.t[i] = f
	}
	return w
}

func newID(t *testing.T, w *world) string {
	id, err := w.kit.IDs.NewID("p-")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func csrFor(t *testing.T, key *ecdsa.PrivateKey, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	if tmpl == nil {
		tmpl = &x509.CertificateRequest{}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (w *world) system(t *testing.T, i int, scopes []string, patients ...string) pki.System {
	t.Helper()
	w.n++
	s, err := w.ca.RegisterSystem(w.ctx, w.t[i].admin, pki.System{TenantID: w.t[i].id, Name: fmt.Sprintf("lab %d", w.n),
		ResponsibleID: w.t[i].responsible, Scopes: scopes, Categories: []string{"*"}, Patients: patients}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (w *world) issue(t *testing.T, i int, s pki.System, key *ecdsa.PrivateKey) pki.Certificate {
	t.Helper()
	c, err := w.ca.Issue(w.ctx, w.t[i].admin, w.t[i].id, s.ID, pki.PurposeTLS, csrFor(t, key, nil), 90*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (w *world) decide(s access.Subject, patient string, a access.Action) error {
	_, err := w.kit.Access.Decide(w.ctx, s, access.Request{PatientID: patient, Action: a, Purpose: "TREAT"})
	return err
}

// A system reads only within its registration: its tenant, its scopes, its
// patient set; the decision names the system and its responsible person in
// the log; tenant A's system cannot read tenant B's patient.
// REQ: DP-3
// REQ: ID-3
// REQ: LOG-1
func TestSystemDecisions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		key := newKey(t)
		sys := w.system(t, 0, []string{"read", "search"})
		cert := w.issue(t, 0, sys, key)
		if len(cert.Serial) != 32 || cert.NotAfter.Sub(w.clk.Now()) > 91*24*time.Hour {
			t.Fatalf("certificate %+v", cert)
		}
		leaf, _ := x509.ParseCertificate(cert.DER)
		peer, err := w.ca.Verify(w.ctx, [][]byte{cert.DER})
		if err != nil {
			t.Fatal(err)
		}
		if peer.SystemID != sys.ID || peer.TenantID != w.t[0].id || peer.ResponsibleID != w.t[0].responsible || leaf.DNSNames[0] != sys.DNSName() {
			t.Fatalf("peer %+v", peer)
		}
		subj := principal.FromSystem(peer)
		g, err := w.kit.Access.Decide(w.ctx, subj, access.Request{PatientID: w.t[0].patient, Action: access.Read})
		if err != nil {
			t.Fatal(err)
		}
		ev := g.Event(audit.ActionRead, audit.OutcomeSuccess)
		if ev.UserID != sys.ID || ev.PrincipalKind != "system" || ev.Responsible != w.t[0].responsible+" Dr. Verantwoordelijk" || ev.SourceApp != cert.Serial || g.Basis() != access.BasisSystem {
			t.Fatalf("grant event %+v", ev)
		}
		if err := w.decide(subj, w.t[1].patient, access.Read); !access.IsDenied(err) {
			t.Fatalf("tenant A's system reads tenant B's patient: %v", err)
		}
		if err := w.decide(subj, w.t[0].patient, access.Create); !access.IsDenied(err) {
			t.Fatalf("a read-only system creates: %v", err)
		}
		denials, err := w.kit.Audit.Query(w.ctx, audit.Filter{TenantID: w.t[0].id, UserID: sys.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(denials) == 0 || denials[0].Responsible == "" || denials[0].Outcome != audit.OutcomeDenied {
			t.Fatalf("denials in the log: %+v", denials)
		}
		// A patient set narrows the system to its patients.
		other, err := w.kit.IDs.CreatePatient(w.ctx, db, newID(t, w), w.t[0].id, nil)
		if err != nil {
			t.Fatal(err)
		}
		narrow := w.system(t, 0, []string{"read"}, w.t[0].patient)
		nc := w.issue(t, 0, narrow, newKey(t))
		np, err := w.ca.Verify(w.ctx, [][]byte{nc.DER})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.decide(principal.FromSystem(np), w.t[0].patient, access.Read); err != nil {
			t.Fatal(err)
		}
		if err := w.decide(principal.FromSystem(np), other, access.Read); !access.IsDenied(err) {
			t.Fatalf("a system reads outside its patient set: %v", err)
		}
		// Another tenant's patient cannot be put in a patient set.
		if _, err := w.ca.RegisterSystem(w.ctx, w.t[0].admin, pki.System{TenantID: w.t[0].id, Name: "x", ResponsibleID: w.t[0].responsible,
			Scopes: []string{"read"}, Categories: []string{"*"}, Patients: []string{w.t[1].patient}}, nil); !errors.Is(err, pki.ErrInvalid) {
			t.Fatalf("foreign patient in a patient set: %v", err)
		}
		// Revoked: refused at the next handshake and the next decision.
		if err := w.ca.Revoke(w.ctx, w.t[0].admin, w.t[0].id, cert.Serial, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := w.ca.Verify(w.ctx, [][]byte{cert.DER}); !isRefused(err, "revoked") {
			t.Fatalf("revoked certificate verified: %v", err)
		}
		if err := w.decide(subj, w.t[0].patient, access.Read); !access.IsDenied(err) {
			t.Fatalf("revoked certificate decided: %v", err)
		}
		if err := w.ca.Revoke(w.ctx, w.t[1].admin, w.t[1].id, nc.Serial, "other tenant"); !errors.Is(err, pki.ErrNotFound) {
			t.Fatalf("tenant B revokes tenant A's certificate: %v", err)
		}
	})
}

func isRefused(err error, want string) bool {
	var re *pki.RefusedError
	return errors.As(err, &re) && strings.Contains(re.Reason, want)
}

// Bad input at issuance and at the handshake: each refused with a clear
// reason, nothing stored.
// REQ: DP-3
func TestIssuanceAndHandshakeRefusals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		f := w.t[0]
		sys := w.system(t, 0, []string{"read"})
		key := newKey(t)
		issue := func(csr []byte, d time.Duration) error {
			_, err := w.ca.Issue(w.ctx, f.admin, f.id, sys.ID, pki.PurposeTLS, csr, d)
			return err
		}
		cases := []struct {
			name string
			err  error
			want string
		}{
			{"366 days", issue(csrFor(t, key, nil), 366*24*time.Hour), "366 days exceeds the policy's maximum of 365 days"},
			{"malformed", issue([]byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), 0), "does not parse"},
			{"wrong tenant SAN", issue(csrFor(t, key, &x509.CertificateRequest{DNSNames: []string{sys.ID + "." + w.t[1].id + "." + pki.Domain}}), 0), "names"},
			{"wrong CN", issue(csrFor(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "other-system"}}), 0), "common name"},
			{"no possession", issue(tamperCSR(t, key), 0), "proof of possession"},
		}
		for _, c := range cases {
			if !errors.Is(c.err, pki.ErrInvalid) || !strings.Contains(c.err.Error(), c.want) {
				t.Errorf("%s: %v; want %q", c.name, c.err, c.want)
			}
		}
		// A key another system holds is refused (a CSR with a foreign key).
		w.issue(t, 0, sys, key)
		other := w.system(t, 0, []string{"search"})
		if _, err := w.ca.Issue(w.ctx, f.admin, f.id, other.ID, pki.PurposeTLS, csrFor(t, key, nil), 0); err == nil || !strings.Contains(err.Error(), "another system") {
			t.Errorf("foreign key: %v", err)
		}
		// The TLS key cannot become the signing key (DP-4: separate keys).
		if _, err := w.ca.Issue(w.ctx, f.admin, f.id, sys.ID, pki.PurposeSigning, csrFor(t, key, nil), 0); err == nil || !strings.Contains(err.Error(), "key of its own") {
			t.Errorf("TLS key for signing: %v", err)
		}
		cs, _ := w.ca.Certificates(w.ctx, f.id)
		if len(cs) != 1 {
			t.Fatalf("%d certificates stored after refusals; want 1", len(cs))
		}

		// Handshake refusals: expired, not yet valid, an outside CA, a chain
		// longer than leaf, tenant CA, root.
		good := cs[0]
		w.clk.Advance(91 * 24 * time.Hour)
		if _, err := w.ca.Verify(w.ctx, [][]byte{good.DER}); !isRefused(err, "expired") {
			t.Errorf("expired: %v", err)
		}
		w.clk.Set(good.NotBefore.Add(-time.Hour))
		if _, err := w.ca.Verify(w.ctx, [][]byte{good.DER}); !isRefused(err, "not valid yet") {
			t.Errorf("not yet valid: %v", err)
		}
		w.clk.Set(good.NotBefore.Add(time.Hour))
		outside := selfSigned(t, key, nil, nil, true)
		if _, err := w.ca.Verify(w.ctx, [][]byte{outside.Raw}); !isRefused(err, "does not chain") {
			t.Errorf("outside CA: %v", err)
		}
		// A leaf of the tenant's CA used as a CA: the intermediate allows no
		// path below it, so a certificate signed by a leaf's key fails.
		goodCert, _ := x509.ParseCertificate(good.DER)
		deeper := selfSigned(t, newKey(t), goodCert, key, false)
		if _, err := w.ca.Verify(w.ctx, [][]byte{deeper.Raw, good.DER}); !isRefused(err, "does not chain") {
			t.Errorf("chain too long: %v", err)
		}
		if _, err := w.ca.Verify(w.ctx, [][]byte{good.DER}); err != nil {
			t.Errorf("the good certificate: %v", err)
		}
	})
}

func tamperCSR(t *testing.T, key *ecdsa.PrivateKey) []byte {
	b := csrFor(t, key, &x509.CertificateRequest{Subject: pkix.Name{Organization: []string{"Lab"}}})
	blk, _ := pem.Decode(b)
	der := blk.Bytes
	i := strings.Index(string(der), "Lab")
	der[i] = 'X' // the signature no longer covers the request
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// selfSigned makes a client certificate signed by parent (or itself).
func selfSigned(t *testing.T, key *ecdsa.PrivateKey, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, ca bool) *x509.Certificate {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "intruder"}, NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: ca, IsCA: ca}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// Deactivating a system revokes its certificates; deactivating its
// responsible person refuses it at once and the sweep revokes them, each
// revocation a leaf of the tenant's log; renewal overlaps; the CRL lists
// the revoked and is current for at most 7 days.
// REQ: ID-5
// REQ: DP-3
func TestDeactivationRevokes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		f := w.t[0]
		a := w.system(t, 0, []string{"read"})
		key := newKey(t)
		first := w.issue(t, 0, a, key)
		renewed := w.issue(t, 0, a, key) // renewal with the same key, beside the first
		for _, c := range []pki.Certificate{first, renewed} {
			if _, err := w.ca.Verify(w.ctx, [][]byte{c.DER}); err != nil {
				t.Fatalf("overlap: %v", err)
			}
		}
		n, err := w.ca.DeactivateSystem(w.ctx, f.admin, f.id, a.ID)
		if err != nil || n != 2 {
			t.Fatalf("deactivate: %d %v", n, err)
		}
		if _, err := w.ca.Verify(w.ctx, [][]byte{renewed.DER}); !isRefused(err, "revoked") {
			t.Fatalf("after deactivation: %v", err)
		}

		b := w.system(t, 0, []string{"read"})
		cb := w.issue(t, 0, b, newKey(t))
		if err := w.kit.IDs.Deactivate(w.ctx, f.responsible); err != nil {
			t.Fatal(err)
		}
		if _, err := w.ca.Verify(w.ctx, [][]byte{cb.DER}); !isRefused(err, "responsible person") {
			t.Fatalf("after the responsible person left: %v", err)
		}
		if n, err := w.ca.Sweep(w.ctx, pki.OperatorEvent("test")); err != nil || n != 1 {
			t.Fatalf("sweep: %d %v", n, err)
		}
		if n, _ := w.ca.Sweep(w.ctx, pki.OperatorEvent("test")); n != 0 {
			t.Fatalf("second sweep revoked %d again", n)
		}
		if _, err := w.ca.Issue(w.ctx, f.admin, f.id, b.ID, pki.PurposeTLS, csrFor(t, newKey(t), nil), 0); err == nil {
			t.Fatal("issued for a system whose responsible person left")
		}
		evs, err := w.kit.Audit.Query(w.ctx, audit.Filter{TenantID: f.id})
		if err != nil {
			t.Fatal(err)
		}
		var issued, revoked int
		for _, e := range evs {
			if e.Action == audit.ActionCertificate && strings.HasPrefix(e.Query, "issued tls") {
				issued++
			}
			if e.Action == audit.ActionCertificate && strings.HasPrefix(e.Query, "revoked") {
				revoked++
			}
		}
		if issued != 3 || revoked != 3 {
			t.Fatalf("certificate leaves: %d issued, %d revoked; want 3 and 3", issued, revoked)
		}
		der, err := w.ca.CRL(w.ctx, f.id)
		if err != nil {
			t.Fatal(err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		chain, _ := w.ca.Chain(w.ctx, f.id)
		if err := crl.CheckSignatureFrom(chain[0]); err != nil {
			t.Fatal(err)
		}
		if len(crl.RevokedCertificateEntries) != 3 || crl.NextUpdate.Sub(crl.ThisUpdate) > 7*24*time.Hour {
			t.Fatalf("CRL: %d entries, next update %s", len(crl.RevokedCertificateEntries), crl.NextUpdate)
		}
	})
}

// The CA policy changes by four eyes only, and a shorter maximum holds.
// REQ: GOV-1
func TestPolicyFourEyes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		f := w.t[0]
		if _, err := w.ca.ProposePolicy(w.ctx, f.admin, f.id, pki.Policy{MaxDays: 366}); !errors.Is(err, pki.ErrInvalid) {
			t.Fatalf("a policy beyond a year: %v", err)
		}
		r, err := w.ca.ProposePolicy(w.ctx, f.admin, f.id, pki.Policy{MaxDays: 30, RequireSigned: true})
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := w.ca.PolicyOf(w.ctx, f.id); p.MaxDays != 365 {
			t.Fatalf("policy changed before approval: %+v", p)
		}
		if _, err := w.ca.Approve(w.ctx, w.t[1].admin, r.ID); !errors.Is(err, pki.ErrNotFound) {
			t.Fatalf("another tenant's admin approved: %v", err)
		}
		if _, err := w.ca.Approve(w.ctx, f.second, r.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := w.ca.Approve(w.ctx, f.second, r.ID); !errors.Is(err, pki.ErrConflict) {
			t.Fatalf("approved twice: %v", err)
		}
		if p, _ := w.ca.PolicyOf(w.ctx, f.id); p.MaxDays != 30 || !p.RequireSigned {
			t.Fatalf("policy %+v", p)
		}
		sys := w.system(t, 0, []string{"read"})
		if _, err := w.ca.Issue(w.ctx, f.admin, f.id, sys.ID, pki.PurposeTLS, csrFor(t, newKey(t), nil), 31*24*time.Hour); err == nil ||
			!strings.Contains(err.Error(), "maximum of 30 days") {
			t.Fatalf("31 days under a 30-day policy: %v", err)
		}
	})
}

// A certificate that expires within 30 days raises one security event in
// its tenant's queue, naming the system and its responsible person.
// REQ: DP-3
// REQ: LOG-9
func TestExpiryWarning(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		sys := w.system(t, 0, []string{"read"})
		c := w.issue(t, 0, sys, newKey(t)) // 90 days
		q := alert.NewQueue(db, w.clk, rand.Reader, nil)
		if n, err := w.ca.WarnExpiring(w.ctx, q); err != nil || n != 0 {
			t.Fatalf("warned %d early: %v", n, err)
		}
		w.clk.Advance(61 * 24 * time.Hour)
		if n, err := w.ca.WarnExpiring(w.ctx, q); err != nil || n != 1 {
			t.Fatalf("warned %d: %v", n, err)
		}
		if n, _ := w.ca.WarnExpiring(w.ctx, q); n != 0 {
			t.Fatalf("warned again: %d", n)
		}
		es, err := q.List(w.ctx, w.t[0].id, time.Time{}, 0)
		if err != nil || len(es) != 1 || es[0].Kind != "certificate-expiring" || es[0].Ref != c.Serial || es[0].AccountID != w.t[0].responsible || es[0].SubjectID != sys.ID {
			t.Fatalf("queue %+v %v", es, err)
		}
	})
}

// After a master-key rotation the CA keys are re-sealed under the new
// master key, so the old one can go: a CA with only the new key still
// signs. No CA key is stored in plain.
// REQ: DP-1
func TestRewrapAfterMasterRotation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		rows, err := db.QueryContext(w.ctx, `SELECT key_sealed FROM pki_cas`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var ct []byte
			rows.Scan(&ct)
			if _, err := x509.ParseECPrivateKey(ct); err == nil || len(ct) < 100 {
				t.Fatalf("a CA key is stored in plain (%d bytes)", len(ct))
			}
		}
		rows.Close()
		next, err := keys.MasterFromEnv(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
		if err != nil {
			t.Fatal(err)
		}
		rotated := pki.New(db, keys.Chain(next, w.kit.Master), w.kit.Audit, w.clk, rand.Reader)
		n, err := rotated.Rewrap(w.ctx)
		if err != nil || n != 3 { // the root and two intermediates
			t.Fatalf("rewrap: %d %v", n, err)
		}
		only := pki.New(db, next, w.kit.Audit, w.clk, rand.Reader)
		sys := w.system(t, 0, []string{"read"})
		if _, err := only.Issue(w.ctx, w.t[0].admin, w.t[0].id, sys.ID, pki.PurposeTLS, csrFor(t, newKey(t), nil), 0); err != nil {
			t.Fatalf("issue under the new master key only: %v", err)
		}
		if _, err := pki.New(db, w.kit.Master, w.kit.Audit, w.clk, rand.Reader).Issue(w.ctx, w.t[0].admin, w.t[0].id, sys.ID, pki.PurposeTLS,
			csrFor(t, newKey(t), nil), 0); err == nil {
			t.Fatal("the old master key still opens the CA keys")
		}
	})
}
