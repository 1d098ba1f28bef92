package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

// pageEnv serves the pages over a test server with real sessions.
type pageEnv struct {
	t     *testing.T
	ctx   context.Context
	srv   *httptest.Server
	clock *clock.Fake
	kit   *testkit.Kit
	db    *store.DB
	ids   *identity.Registry
	an    *authn.Service
	dec   *access.Decider
	log   *audit.Log
	n     int
}

// newPageEnv starts the pages; opts change the dependencies first.
func newPageEnv(t *testing.T, opts ...func(*Deps)) *pageEnv {
	t.Helper()
	return newPageEnvAuthn(t, func(*authn.Settings) {}, opts...)
}

// newPageEnvAuthn is newPageEnv with the log-on settings changed first.
func newPageEnvAuthn(t *testing.T, set func(*authn.Settings), opts ...func(*Deps)) *pageEnv {
	t.Helper()
	db := storetest.SQLite(t)
	c := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	k := testkit.New(t, db, testkit.WithClock(c), testkit.WithAuthn(set))
	e := &pageEnv{t: t, ctx: context.Background(), clock: c, db: db, kit: k, ids: k.IDs, an: k.Authn, dec: k.Access, log: k.Audit}
	deps := Deps{IDs: e.ids, Authn: e.an, Access: e.dec, Audit: e.log, Records: k.Records, Clock: c, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		o(&deps)
	}
	hd, err := Routes(http.NewServeMux(), deps)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(hd)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *pageEnv) tenant(name string) string {
	e.t.Helper()
	ten, err := e.ids.CreateTenant(e.ctx, identity.Tenant{Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return ten.ID
}

// pageUser is a logged-on account: its session token and subject.
type pageUser struct {
	token string
	subj  access.Subject
}

func (e *pageEnv) login(tenant, kind string, role access.Role) pageUser {
	e.t.Helper()
	e.n++
	name := fmt.Sprintf("%s-%d", role, e.n)
	acc, err := e.ids.CreateAccount(e.ctx, identity.Account{TenantID: tenant, Kind: kind, Username: name, DisplayName: "Name " + name, RegistrationMethod: 3})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.ids.GrantRole(e.ctx, acc.ID, string(role), "test set-up"); err != nil {
		e.t.Fatal(err)
	}
	l := e.kit.LogOn(e.t, acc.ID, name)
	return pageUser{token: l.Token, subj: l.Subject}
}

const testCSRF = "csrf-token-of-this-test-0123456789"

// page requests path as u; form, when not nil, is posted with the CSRF
// token unless noCSRF.
func (e *pageEnv) page(u pageUser, path string, form url.Values, noCSRF bool) (int, string) {
	e.t.Helper()
	method, body := http.MethodGet, ""
	if form != nil {
		method = http.MethodPost
		if !noCSRF {
			form.Set("csrf", testCSRF)
		}
		body = form.Encode()
	}
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.AddCookie(&http.Cookie{Name: cookieSession, Value: u.token})
	req.AddCookie(&http.Cookie{Name: cookieCSRF, Value: testCSRF})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The security officer's operator page lists the tenant's operator requests
// with their uses and decides pending ones with a note; another tenant's
// officer neither sees nor decides them, other roles cannot open the page,
// and a post without the CSRF token changes nothing.
//
// REQ: AZ-6
func TestOperatorRequestsPage(t *testing.T) {
	e := newPageEnv(t)
	tenantA, tenantB := e.tenant("Praktijk A"), e.tenant("Ziekenhuis B")
	officer := e.login(tenantA, identity.KindAdmin, access.RoleSecurityOfficer)
	officerB := e.login(tenantB, identity.KindAdmin, access.RoleSecurityOfficer)
	admin := e.login(tenantA, identity.KindAdmin, access.RoleAppAdmin)
	op := e.login("", identity.KindOperator, access.RoleOperator)
	pid, err := e.ids.NewID("p-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ids.CreatePatient(e.ctx, e.db, pid, tenantA, nil); err != nil {
		t.Fatal(err)
	}
	req, err := e.dec.RequestOperatorAccess(e.ctx, op.subj, access.OperatorRequest{TenantID: tenantA, PatientIDs: []string{pid},
		Categories: []string{fhir.CategoryDemographics}, Reason: "herstel na mislukte import", Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	const path = "/security/operator-requests"

	code, body := e.page(officer, path, nil, false)
	if code != http.StatusOK || !strings.Contains(body, "herstel na mislukte import") || !strings.Contains(body, pid) ||
		!strings.Contains(body, `value="`+req.ID+`"`) || !strings.Contains(body, op.subj.Name()) {
		t.Fatalf("officer's page: %d %s", code, body)
	}
	if code, body := e.page(officerB, path, nil, false); code != http.StatusOK || strings.Contains(body, req.ID) || strings.Contains(body, pid) {
		t.Errorf("tenant B's officer sees A's request: %d", code)
	}
	if code, _ := e.page(admin, path, nil, false); code != http.StatusForbidden {
		t.Errorf("application admin opens the page: %d", code)
	}

	decide := func(u pageUser, decision, note string, noCSRF bool) (int, string) {
		return e.page(u, path, url.Values{"id": {req.ID}, "decision": {decision}, "note": {note}}, noCSRF)
	}
	pending := func() bool {
		rep, err := e.dec.OperatorReport(e.ctx, officer.subj)
		if err != nil || len(rep) != 1 {
			t.Fatalf("report %+v %v", rep, err)
		}
		return rep[0].Status == "pending"
	}
	if code, _ := decide(officer, "approve", "incident 12", true); code != http.StatusForbidden || !pending() {
		t.Errorf("post without CSRF token: %d", code)
	}
	if code, body := decide(officerB, "approve", "looks fine", false); code != http.StatusOK || !strings.Contains(body, `class="error"`) || !pending() {
		t.Errorf("tenant B's officer decides: %d", code)
	}
	if code, body := decide(officer, "approve", "", false); code != http.StatusOK || !strings.Contains(body, `class="error"`) || !pending() {
		t.Errorf("decision without a note: %d %s", code, body)
	}
	if _, err := e.dec.Decide(e.ctx, op.subj, access.Request{PatientID: pid, Action: access.Read}); !access.IsDenied(err) {
		t.Fatalf("operator before approval: %v", err)
	}
	code, body = decide(officer, "approve", "incident 12", false)
	if code != http.StatusOK || pending() || !strings.Contains(body, "goedgekeurd") || !strings.Contains(body, "incident 12") {
		t.Fatalf("approval: %d %s", code, body)
	}
	if g, err := e.dec.Decide(e.ctx, op.subj, access.Request{PatientID: pid, Action: access.Read}); err != nil || g.Basis() != access.BasisOperator {
		t.Fatalf("operator after approval: %v", err)
	}
	if code, body := decide(officer, "reject", "changed my mind", false); code != http.StatusOK || !strings.Contains(body, `class="error"`) {
		t.Errorf("second decision: %d", code)
	}
	if _, body := e.page(officer, path+"?lang=en", nil, false); !strings.Contains(body, "Access by platform operators") || !strings.Contains(body, "approved") {
		t.Errorf("English page: %s", body)
	}
}
