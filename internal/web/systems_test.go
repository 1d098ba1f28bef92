package web

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/pki"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

func newCSR(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// The admin's systems page: the CA by four eyes, a system registered with
// its responsible person, a CSR signed (365 days; 366 refused with the
// policy's reason), an expiry warning 30 days ahead, revocation; another
// tenant's admin sees and changes nothing; a post without the CSRF token
// changes nothing; other roles cannot open it; Dutch and English.
//
// REQ: DP-3
// REQ: ID-3
// REQ: GOV-1
func TestSystemsPage(t *testing.T) {
	db := storetest.SQLite(t)
	c := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	k := testkit.New(t, db, testkit.WithClock(c))
	ca := pki.New(db, k.Master, k.Audit, c, rand.Reader)
	deps := Deps{IDs: k.IDs, Authn: k.Authn, Access: k.Access, Audit: k.Audit, Clock: c, CA: ca, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	hd, err := Routes(http.NewServeMux(), deps)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hd)
	t.Cleanup(srv.Close)
	e := &pageEnv{t: t, ctx: t.Context(), srv: srv, clock: c, kit: k, db: db, ids: k.IDs, an: k.Authn, dec: k.Access, log: k.Audit}

	tenantA, tenantB := e.tenant("Praktijk A"), e.tenant("Ziekenhuis B")
	smit, visser := e.login(tenantA, identity.KindAdmin, access.RoleAppAdmin), e.login(tenantA, identity.KindAdmin, access.RoleAppAdmin)
	adminB := e.login(tenantB, identity.KindAdmin, access.RoleAppAdmin)
	pro := e.login(tenantA, identity.KindProfessional, access.RoleProfessional)
	const path = "/admin/systems"
	post := func(u pageUser, form url.Values) (int, string) { return e.page(u, path, form, false) }

	if code, body := e.page(smit, path, nil, false); code != http.StatusOK || !strings.Contains(body, "Gekoppelde systemen") || !strings.Contains(body, `href="/admin/systems"`) {
		t.Fatalf("the page: %d %s", code, body)
	}
	if code, _ := e.page(pro, path, nil, false); code != http.StatusForbidden {
		t.Fatalf("a professional opens the page: %d", code)
	}

	// Four eyes: smit asks for the CA, cannot approve it, visser does.
	if code, body := post(smit, url.Values{"op": {"propose-intermediate"}}); code != http.StatusOK || !strings.Contains(body, "wacht op tweede beheerder") || strings.Contains(body, `value="approve"`) {
		t.Fatalf("propose: %d %s", code, body)
	}
	reqs, err := ca.Requests(e.ctx, tenantA)
	if err != nil || len(reqs) != 1 {
		t.Fatalf("requests %v %v", reqs, err)
	}
	if code, _ := post(adminB, url.Values{"op": {"approve"}, "request": {reqs[0].ID}}); code != http.StatusNotFound {
		t.Fatalf("another tenant's admin approves: %d", code)
	}
	if code, body := post(smit, url.Values{"op": {"approve"}, "request": {reqs[0].ID}}); code != http.StatusForbidden || !strings.Contains(body, "Vier ogen: u beslist niet over uw eigen verzoek") {
		t.Fatalf("the proposer approves: %d", code)
	}
	if _, body := e.page(visser, path, nil, false); !strings.Contains(body, `value="approve"`) {
		t.Fatalf("the second admin is not offered the decision: %s", body)
	}
	if code, body := post(visser, url.Values{"op": {"approve"}, "request": {reqs[0].ID}}); code != http.StatusOK || !strings.Contains(body, "goedgekeurd") {
		t.Fatalf("approve: %d %s", code, body)
	}

	// A system with its responsible person (ID-3); an unknown one is refused.
	if code, _ := post(smit, url.Values{"op": {"register"}, "name": {"Lab Noord"}, "responsible": {"nobody"}, "scope": {"read"}, "categories": {"*"}}); code != http.StatusNotFound {
		t.Fatalf("unknown responsible person: %d", code)
	}
	proAcc, err := k.IDs.Account(e.ctx, pro.subj.AccountID())
	if err != nil {
		t.Fatal(err)
	}
	if code, body := post(smit, url.Values{"op": {"register"}, "name": {"Lab Noord"}, "responsible": {proAcc.Username}, "scope": {"read", "search"}, "categories": {"*"}}); code != http.StatusOK || !strings.Contains(body, "Lab Noord") {
		t.Fatalf("register: %d %s", code, body)
	}
	syss, err := ca.Systems(e.ctx, tenantA)
	if err != nil || len(syss) != 1 || syss[0].ResponsibleID != proAcc.ID {
		t.Fatalf("systems %+v %v", syss, err)
	}
	sys := syss[0].ID
	if code, body := post(smit, url.Values{"op": {"issue"}, "system": {sys}, "purpose": {"tls"}, "days": {"366"}, "csr": {newCSR(t)}}); code != http.StatusBadRequest ||
		!strings.Contains(body, "Een geldigheid van 366 dagen is langer dan het beleid toestaat (hoogstens 365 dagen") || strings.Contains(body, "invalid request") {
		t.Fatalf("366 days: %d %s", code, body)
	}
	if code, body := post(smit, url.Values{"op": {"issue"}, "system": {sys}, "purpose": {"tls"}, "days": {"365"}, "csr": {"garbage"}}); code != http.StatusBadRequest ||
		!strings.Contains(body, "De aanvraag (CSR) moet één PEM-blok") {
		t.Fatalf("malformed CSR: %d", code)
	}
	if code, body := post(smit, url.Values{"op": {"issue"}, "system": {sys}, "purpose": {"tls"}, "days": {"een jaar"}, "csr": {newCSR(t)}}); code != http.StatusBadRequest ||
		!strings.Contains(body, "Geef de geldigheid in hele dagen") || strings.Contains(body, "invalid request") {
		t.Fatalf("days not a number: %d", code)
	}
	code, body := post(smit, url.Values{"op": {"issue"}, "system": {sys}, "purpose": {"tls"}, "days": {"365"}, "csr": {newCSR(t)}})
	if code != http.StatusOK || !strings.Contains(body, "BEGIN CERTIFICATE") || !strings.Contains(body, `id="issued-pem"`) {
		t.Fatalf("issue: %d %s", code, body)
	}
	// A short certificate is near its end: the page warns.
	if code, body := post(smit, url.Values{"op": {"issue"}, "system": {sys}, "purpose": {"tls"}, "days": {"20"}, "csr": {newCSR(t)}}); code != http.StatusOK ||
		!strings.Contains(body, "verloopt binnen 30 dagen") {
		t.Fatalf("expiry warning: %d %s", code, body)
	}
	certs, err := ca.Certificates(e.ctx, tenantA)
	if err != nil || len(certs) != 2 {
		t.Fatalf("certificates %v %v", certs, err)
	}
	serial := certs[0].Serial

	// Tenant B's admin neither sees nor revokes A's certificates.
	if _, body := e.page(adminB, path, nil, false); strings.Contains(body, "Lab Noord") || strings.Contains(body, serial) {
		t.Fatalf("tenant B's admin sees A's system: %s", body)
	}
	if code, _ := post(adminB, url.Values{"op": {"revoke"}, "serial": {serial}, "reason": {"x"}}); code < 400 || code >= 500 {
		t.Fatalf("tenant B's admin revokes: %d", code)
	}
	if code, _ := e.page(smit, path, url.Values{"op": {"revoke"}, "serial": {serial}, "reason": {"sleutel kwijt"}}, true); code != http.StatusForbidden {
		t.Fatalf("revoke without the CSRF token: %d", code)
	}
	if cs, _ := ca.Certificates(e.ctx, tenantA); cs[0].RevokedAt != nil {
		t.Fatal("revoked by a refused post")
	}
	if code, body := post(smit, url.Values{"op": {"revoke"}, "serial": {serial}, "reason": {"sleutel kwijt"}}); code != http.StatusOK || !strings.Contains(body, "ingetrokken") {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if cs, _ := ca.Certificates(e.ctx, tenantA); cs[0].RevokedAt == nil {
		t.Fatal("not revoked")
	}
	if code, body := e.page(smit, path+"?lang=en", nil, false); code != http.StatusOK || !strings.Contains(body, "Connected systems") || !strings.Contains(body, "revoked") {
		t.Fatalf("English: %d %s", code, body)
	}
}
