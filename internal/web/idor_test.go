package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

// No IDOR on the pages: every patient-scoped page and form, used by users
// of tenant A with the id of a patient of tenant B, answers exactly as for a
// patient id that does not exist, and never with success; a professional
// without a basis for another patient of the own tenant is refused.
//
// REQ: AZ-1
// REQ: AZ-3
func TestPatientPagesNoIDOR(t *testing.T) {
	e := newPageEnv(t)
	tenantA, tenantB := e.tenant("Praktijk A"), e.tenant("Ziekenhuis B")
	newPatient := func(tenant string) string {
		id, err := e.ids.NewID("p-")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.ids.CreatePatient(e.ctx, e.db, id, tenant, nil); err != nil {
			t.Fatal(err)
		}
		return id
	}
	pA, pA2, pB := newPatient(tenantA), newPatient(tenantA), newPatient(tenantB)
	const unknown = "p-doesnotexist0000000000000000"
	admin := e.login(tenantA, identity.KindAdmin, access.RoleAppAdmin)
	prof := e.login(tenantA, identity.KindProfessional, access.RoleProfessional)
	person := e.login(tenantA, identity.KindPerson, access.RolePerson)
	profAcc, err := e.ids.Account(e.ctx, prof.subj.AccountID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.dec.AddRelationship(e.ctx, access.Relationship{TenantID: tenantA, ProfessionalID: prof.subj.AccountID(), PatientID: pA,
		Kind: "gp", Start: e.clock.Now().Add(-time.Hour), RecordedBy: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := e.ids.LinkPerson(e.ctx, person.subj.AccountID(), pA); err != nil {
		t.Fatal(err)
	}
	team, err := e.dec.CreateTeam(e.ctx, admin.subj, "Wijkteam")
	if err != nil {
		t.Fatal(err)
	}
	type ep struct {
		u    pageUser
		path func(pid string) string
		form func(pid string) url.Values // nil: GET
	}
	eps := []ep{
		{prof, func(p string) string { return "/patients/" + p }, nil},
		{prof, func(p string) string { return "/patients/" + p + "?section=measurements" }, nil},
		{person, func(string) string { return "/me/actfor" }, func(p string) url.Values { return url.Values{"patient": {p}} }},
		{admin, func(p string) string { return "/admin/relationships?patient=" + p }, nil},
		{admin, func(string) string { return "/admin/relationships" },
			func(p string) url.Values {
				return url.Values{"professional": {profAcc.Username}, "patient": {p}, "kind": {"gp"}}
			}},
		{admin, func(string) string { return "/admin/teams" },
			func(p string) url.Values { return url.Values{"op": {"patient"}, "team": {team.ID}, "patient": {p}} }},
		// Last: for a patient of the own tenant this is what
		// break-the-glass is for.
		{prof, func(p string) string { return "/patients/" + p + "/emergency" },
			func(string) url.Values { return url.Values{"reason": {"collapsed in the waiting room"}} }},
	}
	call := func(x ep, pid string) (int, string) {
		var form url.Values
		if x.form != nil {
			form = x.form(pid)
		}
		code, body := e.page(x.u, x.path(pid), form, false)
		return code, strings.ReplaceAll(body, pid, "ID")
	}
	for _, x := range eps {
		name := x.path("{patient}")
		codeB, bodyB := call(x, pB)
		codeU, bodyU := call(x, unknown)
		t.Logf("%s: %d / %d", name, codeB, codeU)
		if codeB != codeU || bodyB != bodyU {
			t.Errorf("%s: tenant B's patient %d, unknown patient %d; the answers differ", name, codeB, codeU)
		}
		refused := codeB == http.StatusForbidden || (codeB == http.StatusOK && strings.Contains(bodyB, `class="error"`))
		if !refused {
			t.Errorf("%s with tenant B's patient: %d, not refused", name, codeB)
		}
	}
	for _, x := range eps[:3] {
		if code, _ := call(x, pA2); code != http.StatusForbidden {
			t.Errorf("%s with a patient of the own tenant without a basis: %d", x.path("{patient}"), code)
		}
	}
	// Nothing changed for B's patient: no relationship, team or emergency.
	if g, err := e.dec.Decide(e.ctx, prof.subj, access.Request{PatientID: pB, Action: access.Read}); !access.IsDenied(err) {
		t.Errorf("tenant B's patient reachable after the attempts: %v", g.Explanation())
	}
	if ts, _ := e.dec.Teams(e.ctx, admin.subj); len(ts) != 1 || len(ts[0].Patients) != 0 {
		t.Errorf("team after the attempts: %+v", ts)
	}
}
