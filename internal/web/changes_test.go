package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

// The four-eyes page lists the organisation's pending change requests of
// every kind: the proposer (and the account receiving a right) sees the
// request without a decision form and is refused when posting one anyway;
// a second admin approves it and it moves to the recent decisions; a
// decision without the CSRF token is refused; a professional and another
// tenant's admin see nothing.
//
// REQ: GOV-1, AZ-7
func TestChangesPageFourEyes(t *testing.T) {
	e := newPageEnv(t)
	tenant, other := e.tenant("Praktijk A"), e.tenant("Ziekenhuis B")
	a1, a2 := e.login(tenant, identity.KindAdmin, access.RoleAppAdmin), e.login(tenant, identity.KindAdmin, access.RoleAppAdmin)
	gp := e.login(tenant, identity.KindProfessional, access.RoleProfessional)
	adminB := e.login(other, identity.KindAdmin, access.RoleAppAdmin)

	if code, body := e.page(a1, "/governance/changes", nil, false); code != http.StatusOK || !strings.Contains(body, `id="changes-none"`) ||
		!strings.Contains(body, `href="/governance/changes"`) {
		t.Fatalf("empty page: %d %s", code, body)
	}
	rr, err := e.dec.RequestRight(e.ctx, a1.subj, access.RightRequest{AccountID: gp.subj.AccountID(), Role: access.RoleAssistant, Reason: "also assists"})
	if err != nil {
		t.Fatal(err)
	}
	_, body := e.page(a1, "/governance/changes", nil, false)
	if !strings.Contains(body, `id="own-`+rr.ID+`"`) || strings.Contains(body, `value="`+rr.ID+`"`) || !strings.Contains(body, "Recht") {
		t.Fatalf("the proposer's page offers a decision: %s", body)
	}
	decide := func(u pageUser, noCSRF bool) (int, string) {
		return e.page(u, "/governance/changes/decide", url.Values{"id": {rr.ID}, "decision": {"approve"}, "note": {"akkoord"}}, noCSRF)
	}
	if _, body := decide(a1, false); !strings.Contains(body, `id="changes-problem"`) {
		t.Fatalf("the proposer approved their own change: %s", body)
	}
	if code, _ := decide(gp, false); code != http.StatusForbidden {
		t.Errorf("a professional decides: %d", code)
	}
	if _, body := e.page(adminB, "/governance/changes", nil, false); strings.Contains(body, rr.ID) {
		t.Error("another tenant's admin sees the request")
	}
	if _, body := decide(adminB, false); !strings.Contains(body, `id="changes-problem"`) {
		t.Error("another tenant's admin decided the request")
	}
	_, body = e.page(a2, "/governance/changes?lang=en", nil, false)
	if !strings.Contains(body, `value="`+rr.ID+`"`) || !strings.Contains(body, "Changes under four eyes") {
		t.Fatalf("the second admin's page lacks the form: %s", body)
	}
	if code, _ := decide(a2, true); code != http.StatusForbidden {
		t.Errorf("a decision without the CSRF token: %d", code)
	}
	if ok, _ := e.dec.RoleCurrent(e.ctx, gp.subj.AccountID(), access.RoleAssistant); ok {
		t.Fatal("granted before a valid approval")
	}
	if code, body := decide(a2, false); code != http.StatusOK || !strings.Contains(body, `id="changes-recent"`) || !strings.Contains(body, "goedgekeurd en doorgevoerd") {
		t.Fatalf("approval: %d %s", code, body)
	}
	if ok, err := e.dec.RoleCurrent(e.ctx, gp.subj.AccountID(), access.RoleAssistant); err != nil || !ok {
		t.Fatalf("approved right not in force: %v %v", ok, err)
	}
}

// A security officer decides roles and rights but not an organisation's
// log-on settings: the page offers no form for those and says why.
//
// REQ: GOV-1
func TestChangesPageOnlyOffersWhatTheRoleDecides(t *testing.T) {
	e := newPageEnv(t)
	tenant := e.tenant("Praktijk A")
	a1 := e.login(tenant, identity.KindAdmin, access.RoleAppAdmin)
	officer := e.login(tenant, identity.KindAdmin, access.RoleSecurityOfficer)
	gp := e.login(tenant, identity.KindProfessional, access.RoleProfessional)
	settings, err := e.kit.Authn.ProposeTenantSettings(e.ctx, access.ChangeActor(a1.subj), authn.TenantAuthSettings{WeakFactors: false})
	if err != nil {
		t.Fatal(err)
	}
	rr, err := e.dec.RequestRight(e.ctx, a1.subj, access.RightRequest{AccountID: gp.subj.AccountID(), Role: access.RoleAssistant, Reason: "also assists"})
	if err != nil {
		t.Fatal(err)
	}
	_, body := e.page(officer, "/governance/changes", nil, false)
	if !strings.Contains(body, `id="other-role-`+settings.ID+`"`) || strings.Contains(body, `value="`+settings.ID+`"`) || !strings.Contains(body, `value="`+rr.ID+`"`) {
		t.Fatalf("the officer's page: %s", body)
	}
}
