package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

// A platform operator requests access from their own page (tenant,
// patients, categories, reason, duration) and follows it there: pending,
// then approved by the tenant's security officer with the time left, then
// ended. What access refuses is said on the page and files nothing; another
// operator does not see the request, and no other role opens the page.
//
// REQ: AZ-6
func TestOperatorRequestsOwnPage(t *testing.T) {
	e := newPageEnv(t)
	tenant := e.tenant("Praktijk A")
	op, other := e.login("", identity.KindOperator, access.RoleOperator), e.login("", identity.KindOperator, access.RoleOperator)
	officer := e.login(tenant, identity.KindAdmin, access.RoleSecurityOfficer)
	gp := e.login(tenant, identity.KindProfessional, access.RoleProfessional)
	pid, err := e.ids.NewID("p-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ids.CreatePatient(e.ctx, e.db, pid, tenant, nil); err != nil {
		t.Fatal(err)
	}

	code, body := e.page(op, "/operator", nil, false)
	if code != http.StatusOK || !strings.Contains(body, `<option value="`+tenant+`"`) || !strings.Contains(body, "Praktijk A") ||
		!strings.Contains(body, `value="`+fhir.CategoryDemographics+`"`) || !strings.Contains(body, "U hebt nog geen verzoeken") {
		t.Fatalf("operator's page: %d %s", code, body)
	}
	if code, _ := e.page(gp, "/operator", nil, false); code != http.StatusForbidden {
		t.Errorf("a professional opens the operator's page: %d", code)
	}
	if resp, _ := e.request(op, "/", nil); resp.Header.Get("Location") != "/operator" {
		t.Errorf("operator's start page: %s", resp.Header.Get("Location"))
	}
	file := func(u pageUser, reason, minutes string, noCSRF bool) (int, string) {
		return e.page(u, "/operator/requests", url.Values{"tenant": {tenant}, "patients": {pid + "\n"}, "category": {fhir.CategoryDemographics, fhir.CategoryClinical},
			"reason": {reason}, "minutes": {minutes}}, noCSRF)
	}
	requests := func() []access.OperatorRequest {
		t.Helper()
		rep, err := e.dec.OperatorReport(e.ctx, op.subj)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	for _, c := range []struct {
		name, reason, minutes, want string
	}{
		{"short reason", "kort", "60", "reason"},
		{"duration not offered", "herstel na mislukte import", "600", "Kies een duur"},
	} {
		code, body := file(op, c.reason, c.minutes, false)
		if code != http.StatusBadRequest || !strings.Contains(body, c.want) || len(requests()) != 0 {
			t.Errorf("%s: %d, filed %d; page %s", c.name, code, len(requests()), body)
		}
		// What was typed is kept.
		if !strings.Contains(body, pid) || !strings.Contains(body, `value="clinical" id="op-cat-clinical" checked`) {
			t.Errorf("%s: the form lost what was typed", c.name)
		}
	}
	if code, _ := file(op, "herstel na mislukte import", "60", true); code != http.StatusForbidden || len(requests()) != 0 {
		t.Errorf("a post without the CSRF token: %d", code)
	}
	code, body = file(op, "herstel na mislukte import", "60", false)
	if code != http.StatusOK || len(requests()) != 1 || !strings.Contains(body, "Uw verzoek is ingediend") || !strings.Contains(body, "wacht op besluit") {
		t.Fatalf("filing: %d %s", code, body)
	}
	req := requests()[0]
	if req.TenantID != tenant || len(req.PatientIDs) != 1 || req.PatientIDs[0] != pid || req.Duration != time.Hour || len(req.Categories) != 2 {
		t.Fatalf("filed %+v", req)
	}
	if _, body := e.page(other, "/operator", nil, false); strings.Contains(body, "herstel na mislukte import") {
		t.Error("another operator sees the request")
	}

	if _, err := e.dec.DecideOperatorRequest(e.ctx, officer.subj, req.ID, true, "incident 12"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Minute)
	_, body = e.page(op, "/operator", nil, false)
	if !strings.Contains(body, "goedgekeurd") || !strings.Contains(body, "incident 12") || !strings.Contains(body, "nog 50 min") {
		t.Errorf("approved request with its time left: %s", body)
	}
	// An hour on, the session has gone idle: the operator logs on again.
	e.clock.Advance(time.Hour)
	op = pageUser{token: e.kit.LogOn(t, op.subj.AccountID(), "operator-1").Token, subj: op.subj}
	if _, body = e.page(op, "/operator?lang=en", nil, false); !strings.Contains(body, "approved") || !strings.Contains(body, "ended") {
		t.Errorf("ended request: %s", body)
	}
}
