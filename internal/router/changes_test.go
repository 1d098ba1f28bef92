package router_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// REQ: GOV-1, AZ-7 — /api/v1/changes over HTTP: a role proposed by one
// admin is listed as pending, its proposer's approval is refused (403),
// another tenant's admin does not find it (404), a professional has no
// access (403), another admin's approval puts the role in force, a second
// decision conflicts (409), and a stale request cannot be approved (409).
// Each step is in the tenant's access log.
func TestChangesOverHTTP(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newAccessEnv(t, db)
		admin := e.login(e.tenantA, access.RoleAppAdmin)
		admin2 := e.login(e.tenantA, access.RoleAppAdmin)
		adminB := e.login(e.tenantB, access.RoleAppAdmin)
		prof := e.login(e.tenantA, access.RoleProfessional)
		def := e.expect(admin, "POST", "/api/v1/roles", js(map[string]any{"name": "dietitian", "base": "professional",
			"actions": []string{"read"}, "categories": []string{"clinical"}}), http.StatusCreated)
		id := def["id"].(string)
		list := e.expect(admin2, "GET", "/api/v1/changes", "", http.StatusOK)
		pending := list["pending"].([]any)
		if len(pending) != 1 || pending[0].(map[string]any)["id"] != id || pending[0].(map[string]any)["kind"] != access.ChangeRole {
			t.Fatalf("pending: %v", list)
		}
		e.expect(admin, "POST", "/api/v1/changes/"+id+"/approve", `{"note":"mine"}`, http.StatusForbidden)
		e.expect(adminB, "POST", "/api/v1/changes/"+id+"/approve", "", http.StatusNotFound)
		e.expect(adminB, "GET", "/api/v1/changes/"+id, "", http.StatusNotFound)
		e.expect(prof, "GET", "/api/v1/changes", "", http.StatusForbidden)
		e.expect(admin2, "POST", "/api/v1/changes/"+id+"/approve", `{"note":"x","extra":1}`, http.StatusBadRequest)
		e.expect(admin2, "POST", "/api/v1/changes/bad%20id/approve", "", http.StatusBadRequest)
		got := e.expect(admin2, "POST", "/api/v1/changes/"+id+"/approve", `{"note":"policy 2026-7"}`, http.StatusOK)
		if got["status"] != "approved" || got["decided_by"] != admin2.id {
			t.Fatalf("approved: %v", got)
		}
		e.expect(admin2, "POST", "/api/v1/changes/"+id+"/reject", "", http.StatusConflict)
		one := e.expect(admin, "GET", "/api/v1/changes/"+id, "", http.StatusOK)
		if one["status"] != "approved" {
			t.Fatalf("GET one: %v", one)
		}
		// The role is in force: the roles list shows the version approved.
		var roles []access.RoleDef
		if _, b := e.do(admin, "GET", "/api/v1/roles", ""); json.Unmarshal(b, &roles) != nil ||
			!slices.ContainsFunc(roles, func(r access.RoleDef) bool { return r.ID == id && r.Status == "approved" }) {
			t.Fatalf("roles after approval: %+v", roles)
		}

		// A stale request cannot be approved.
		old := e.expect(admin, "POST", "/api/v1/roles", js(map[string]any{"name": "podiatrist", "base": "professional",
			"actions": []string{"read"}, "categories": []string{"clinical"}}), http.StatusCreated)["id"].(string)
		e.clock.Advance(change.DefaultExpiry)
		admin2.token = e.relogin(admin2) // the old session timed out meanwhile
		e.expect(admin2, "POST", "/api/v1/changes/"+old+"/approve", "", http.StatusConflict)
		recent := e.expect(admin2, "GET", "/api/v1/changes", "", http.StatusOK)["recent"].([]any)
		if len(recent) != 2 || recent[0].(map[string]any)["status"] != "expired" {
			t.Fatalf("recent: %v", recent)
		}

		evs, err := e.log.Query(e.ctx, audit.Filter{TenantID: e.tenantA, Action: audit.ActionUpdate})
		if err != nil {
			t.Fatal(err)
		}
		var steps int
		for _, ev := range evs {
			if len(ev.Resources) == 1 && ev.Resources[0] == "ChangeRequest/"+id {
				steps++
			}
		}
		// proposed, refused (the proposer), approved; the other tenant's
		// attempt does not reach tenant A's request.
		if steps != 3 {
			t.Fatalf("%d logged steps of %s, want 3", steps, id)
		}
	})
}

// REQ: GOV-1, AUTH-2 — the weak-factor switch is a four-eyes change: the
// proposal is accepted (202) but not in force, its proposer cannot approve
// it, a second admin's approval switches SMS and e-mail codes off; a
// switch on without a configured sender is refused at once (400).
func TestWeakFactorSwitchFourEyes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newAccessEnv(t, db)
		admin := e.login(e.tenantA, access.RoleAppAdmin)
		admin2 := e.login(e.tenantA, access.RoleAppAdmin)
		officer := e.login(e.tenantA, access.RoleSecurityOfficer)
		if got := e.expect(officer, "GET", "/api/v1/logon-settings", "", http.StatusOK); got["weak_factors"] != true {
			t.Fatalf("default settings: %v", got)
		}
		e.expect(officer, "PUT", "/api/v1/logon-settings", `{"weak_factors":false}`, http.StatusForbidden)
		e.expect(admin, "PUT", "/api/v1/logon-settings", `{"weak_factors":true}`, http.StatusBadRequest) // no sender here
		e.expect(admin, "PUT", "/api/v1/logon-settings", `{"weak_factors":false,"password_max_age_days":10}`, http.StatusBadRequest)
		id := e.expect(admin, "PUT", "/api/v1/logon-settings", `{"weak_factors":false,"password_max_age_days":365}`, http.StatusAccepted)["change_request"].(string)
		if got := e.expect(admin, "GET", "/api/v1/logon-settings", "", http.StatusOK); got["weak_factors"] != true {
			t.Fatalf("in force before its approval: %v", got)
		}
		e.expect(admin, "POST", "/api/v1/changes/"+id+"/approve", "", http.StatusForbidden)
		e.expect(admin2, "POST", "/api/v1/changes/"+id+"/approve", `{"note":"policy"}`, http.StatusOK)
		if got := e.expect(officer, "GET", "/api/v1/logon-settings", "", http.StatusOK); got["weak_factors"] != false || got["password_max_age_days"] != 365.0 {
			t.Fatalf("after approval: %v", got)
		}
	})
}
