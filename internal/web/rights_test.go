package web

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

// An application admin who names a user of another organisation on the
// rights, relationships or teams page gets exactly the refusal a user name
// that does not exist gets: the pages do not tell which names exist
// elsewhere, nor their account ids.
//
// REQ: AZ-7
// REQ: AZ-3
func TestAdminPagesHideOtherTenantsAccounts(t *testing.T) {
	e := newPageEnv(t)
	tenantA, tenantB := e.tenant("Praktijk A"), e.tenant("Ziekenhuis B")
	admin := e.login(tenantA, identity.KindAdmin, access.RoleAppAdmin)
	other := e.login(tenantB, identity.KindProfessional, access.RoleProfessional)
	otherAcc, err := e.ids.Account(e.ctx, other.subj.AccountID())
	if err != nil {
		t.Fatal(err)
	}
	team, err := e.dec.CreateTeam(e.ctx, admin.subj, "Wijkteam")
	if err != nil {
		t.Fatal(err)
	}
	problemRE := regexp.MustCompile(`<p class="error" role="alert">([^<]*)</p>`)
	for _, tc := range []struct {
		path string
		form func(username string) url.Values
	}{
		{"/admin/rights/request", func(u string) url.Values {
			return url.Values{"username": {u}, "role": {"assistant"}, "reason": {"cover at the desk"}}
		}},
		{"/admin/relationships", func(u string) url.Values {
			return url.Values{"professional": {u}, "patient": {"p-x"}, "kind": {"gp"}}
		}},
		{"/admin/teams", func(u string) url.Values {
			return url.Values{"op": {"member"}, "team": {team.ID}, "username": {u}}
		}},
		{"/admin/accounts/deactivate", func(u string) url.Values { return url.Values{"username": {u}} }},
	} {
		codeB, bodyB := e.page(admin, tc.path, tc.form(otherAcc.Username), false)
		codeU, bodyU := e.page(admin, tc.path, tc.form("nobody-here"), false)
		mB, mU := problemRE.FindStringSubmatch(bodyB), problemRE.FindStringSubmatch(bodyU)
		if codeB != http.StatusOK || codeU != http.StatusOK || mB == nil || mU == nil {
			t.Errorf("%s: %d / %d, refusal shown %v / %v", tc.path, codeB, codeU, mB != nil, mU != nil)
			continue
		}
		if strings.ReplaceAll(mB[1], otherAcc.Username, "NAME") != strings.ReplaceAll(mU[1], "nobody-here", "NAME") {
			t.Errorf("%s: other tenant's user %q, unknown user %q", tc.path, mB[1], mU[1])
		}
		if strings.Contains(bodyB, otherAcc.ID) {
			t.Errorf("%s: the answer shows the other tenant's account id", tc.path)
		}
	}
}
