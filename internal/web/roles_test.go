package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

// An application admin proposes a role with its actions and categories on
// the roles page; the proposer cannot approve it, a second admin can, and
// the page then shows who proposed and who approved it; the role can then
// be requested on the rights page, which links to the roles page. A role
// beyond its base is refused with nothing filed; the security officer
// decides but does not propose; other roles and other tenants see nothing.
//
// REQ: AZ-2, AZ-7, AZ-9
func TestRolePagesFourEyes(t *testing.T) {
	e := newPageEnv(t)
	tenant, other := e.tenant("Praktijk A"), e.tenant("Ziekenhuis B")
	a1, a2 := e.login(tenant, identity.KindAdmin, access.RoleAppAdmin), e.login(tenant, identity.KindAdmin, access.RoleAppAdmin)
	officer := e.login(tenant, identity.KindAdmin, access.RoleSecurityOfficer)
	gp := e.login(tenant, identity.KindProfessional, access.RoleProfessional)
	adminB := e.login(other, identity.KindAdmin, access.RoleAppAdmin)

	code, body := e.page(a1, "/admin/roles", nil, false)
	if code != http.StatusOK || !strings.Contains(body, `id="role-form"`) || !strings.Contains(body, "vaste rol") || !strings.Contains(body, "Er wachten geen voorstellen") {
		t.Fatalf("roles page: %d %s", code, body)
	}
	if _, body := e.page(a1, "/admin/rights", nil, false); !strings.Contains(body, `href="/admin/roles"`) {
		t.Error("the rights overview does not link to the roles page")
	}
	if code, _ := e.page(gp, "/admin/roles", nil, false); code != http.StatusForbidden {
		t.Errorf("a professional opens the roles page: %d", code)
	}
	propose := func(u pageUser, base string, cats ...string) (int, string) {
		return e.page(u, "/admin/roles", url.Values{"name": {"praktijkondersteuner"}, "base": {base}, "action": {"read", "search"}, "category": cats}, false)
	}
	pending := func() []access.RoleDef {
		t.Helper()
		defs, err := e.dec.RoleDefs(e.ctx, a1.subj)
		if err != nil {
			t.Fatal(err)
		}
		var out []access.RoleDef
		for _, d := range defs {
			if d.Status == "pending" {
				out = append(out, d)
			}
		}
		return out
	}
	// An assistant's rules do not reach clinical data: refused, kept in the form.
	code, body = propose(a1, "assistant", fhir.CategoryClinical)
	if code != http.StatusBadRequest || !strings.Contains(body, `class="error"`) || len(pending()) != 0 || !strings.Contains(body, `value="praktijkondersteuner"`) {
		t.Fatalf("a role beyond its base: %d, %d pending", code, len(pending()))
	}
	if code, _ := e.page(officer, "/admin/roles", url.Values{"name": {"x-role"}, "base": {"professional"}, "action": {"read"}, "category": {"clinical"}}, false); code != http.StatusForbidden {
		t.Errorf("the security officer proposes a role: %d", code)
	}
	code, body = propose(a1, "professional", fhir.CategoryDemographics, fhir.CategoryClinical)
	if code != http.StatusOK || len(pending()) != 1 || !strings.Contains(body, "Het voorstel is ingediend") {
		t.Fatalf("proposal: %d %s", code, body)
	}
	id := pending()[0].ID
	if _, body := e.page(a2, "/admin/roles", nil, false); !strings.Contains(body, `id="roles-pending"`) || !strings.Contains(body, "inzien, zoeken") || !strings.Contains(body, "medische gegevens") {
		t.Errorf("the second admin's page lacks the proposal: %s", body)
	}
	if _, body := e.page(adminB, "/admin/roles", nil, false); strings.Contains(body, `id="roles-pending"`) || strings.Contains(body, id) {
		t.Error("another tenant's admin sees the proposal")
	}
	decide := func(u pageUser) (int, string) {
		return e.page(u, "/admin/roles/decide", url.Values{"id": {id}, "decision": {"approve"}, "note": {"akkoord"}}, false)
	}
	if _, body := decide(a1); !strings.Contains(body, `class="error"`) || len(pending()) != 1 {
		t.Fatal("the proposer approved their own role")
	}
	code, body = decide(a2)
	if code != http.StatusOK || len(pending()) != 0 {
		t.Fatalf("second admin's approval: %d %s", code, body)
	}
	_, roles, _ := strings.Cut(body, `id="roles"`)
	roles, _, _ = strings.Cut(roles, "</table>")
	if !strings.Contains(roles, "<strong>praktijkondersteuner</strong>") || !strings.Contains(roles, "application-admin-1") || !strings.Contains(roles, "application-admin-2") || !strings.Contains(roles, "akkoord") {
		t.Errorf("approved role without its proposer and approver: %s", roles)
	}
	if _, body := e.page(a1, "/admin/rights", nil, false); !strings.Contains(body, `<option value="praktijkondersteuner">`) {
		t.Error("the approved role cannot be requested on the rights page")
	}
}
