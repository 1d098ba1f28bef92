package router_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/oauth"
	"github.com/zorgkluis/zorgkluis/internal/record"
	"github.com/zorgkluis/zorgkluis/internal/router"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

// accessEnv is the real handler wired like cmd/zorgkluis, with two tenants
// and a fake clock, for the end-to-end tests of the access rules.
type accessEnv struct {
	t       *testing.T
	ctx     context.Context
	srv     *httptest.Server
	clock   *clock.Fake
	kit     *testkit.Kit
	ids     *identity.Registry
	an      *authn.Service
	dec     *access.Decider
	records *record.Store
	log     *audit.Log
	oauth   *oauth.Service // the authorisation server, issuer https://localhost
	tenantA string
	tenantB string
	n       int
}

// user is a logged-on account.
type user struct {
	id    string
	name  string // user name
	token string
	subj  access.Subject
}

func newAccessEnv(t *testing.T, db *store.DB) *accessEnv {
	t.Helper()
	ctx := context.Background()
	c := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	k := testkit.New(t, db, testkit.WithClock(c))
	e := &accessEnv{t: t, ctx: ctx, clock: c, kit: k, ids: k.IDs, log: k.Audit, dec: k.Access, an: k.Authn, records: k.Records}
	e.oauth = oauth.New(oauth.Config{DB: db, Clock: c, Rand: rand.Reader, Audit: k.Audit, Issuer: "https://localhost", Changes: k.Changes})
	e.srv = serve(t, k, func(d *router.Deps) { d.OAuth = e.oauth })
	for i, name := range []string{"Praktijk A", "Ziekenhuis B"} {
		ten, err := e.ids.CreateTenant(ctx, identity.Tenant{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			e.tenantA = ten.ID
		} else {
			e.tenantB = ten.ID
		}
	}
	return e
}

func accountKind(r access.Role) string {
	switch r {
	case access.RolePerson:
		return identity.KindPerson
	case access.RoleAppAdmin, access.RoleSecurityOfficer:
		return identity.KindAdmin
	case access.RoleOperator:
		return identity.KindOperator
	}
	return identity.KindProfessional
}

// login creates an account with one role and logs it on with password and
// TOTP through authn, as the log-on endpoints do.
func (e *accessEnv) login(tenant string, role access.Role) user {
	e.t.Helper()
	e.n++
	if role == access.RoleOperator {
		tenant = ""
	}
	name := fmt.Sprintf("%s-%d", role, e.n)
	acc, err := e.ids.CreateAccount(e.ctx, identity.Account{TenantID: tenant, Kind: accountKind(role), Username: name, DisplayName: name, RegistrationMethod: 3})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.ids.GrantRole(e.ctx, acc.ID, string(role), "test set-up"); err != nil {
		e.t.Fatal(err)
	}
	u := e.logonAs(acc.ID, name)
	if u.subj.Role() != role {
		e.t.Fatalf("session role %s, want %s", u.subj.Role(), role)
	}
	return u
}

// logonAs gives an existing account a password and TOTP and logs it on; the
// session's role is the account's only role.
func (e *accessEnv) logonAs(accountID, name string) user {
	e.t.Helper()
	acc, err := e.ids.Account(e.ctx, accountID)
	if err != nil {
		e.t.Fatal(err)
	}
	l := e.kit.LogOn(e.t, acc.ID, name)
	return user{id: acc.ID, name: name, token: l.Token, subj: l.Subject}
}

// patient registers a patient with a Patient resource and one Observation,
// through the same decisions as real use, by a registering professional.
func (e *accessEnv) patient(tenant string) (patientID, observationID string) {
	e.t.Helper()
	reg := e.login(tenant, access.RoleProfessional)
	pid, err := e.ids.NewID("p-")
	if err != nil {
		e.t.Fatal(err)
	}
	g, err := e.dec.DecideRegistration(e.ctx, reg.subj, pid)
	if err != nil {
		e.t.Fatal(err)
	}
	body := fmt.Sprintf(`{"resourceType":"Patient","id":%q,"name":[{"family":"Test"}]}`, pid)
	if _, err := e.records.RegisterPatient(e.ctx, g, e.ids, nil, []byte(body)); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.dec.AddRelationship(e.ctx, access.Relationship{TenantID: tenant, ProfessionalID: reg.id, PatientID: pid, Kind: "registration",
		Start: e.clock.Now().Add(-time.Minute), RecordedBy: "test"}); err != nil {
		e.t.Fatal(err)
	}
	obs := fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"text":"weight"},"subject":{"reference":"Patient/%s"},"valueQuantity":{"value":70,"unit":"kg"}}`, pid)
	resp, b := e.do(reg, "POST", "/fhir/Observation", obs)
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("create observation: %d %s", resp.StatusCode, b)
	}
	var o struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &o); err != nil || o.ID == "" {
		e.t.Fatalf("created observation: %s", b)
	}
	return pid, o.ID
}

func (e *accessEnv) do(u user, method, path, body string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if u.token != "" {
		req.Header.Set("Authorization", "Bearer "+u.token)
	}
	if body != "" {
		if strings.HasPrefix(path, "/fhir/") {
			req.Header.Set("Content-Type", "application/fhir+json")
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// expect calls and checks the status, returning the decoded body.
func (e *accessEnv) expect(u user, method, path, body string, code int) map[string]any {
	e.t.Helper()
	resp, b := e.do(u, method, path, body)
	if resp.StatusCode != code {
		e.t.Fatalf("%s %s as %s: %d %s; want %d", method, path, u.subj.Role(), resp.StatusCode, b, code)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func (e *accessEnv) readPatient(u user, pid string) int {
	e.t.Helper()
	resp, _ := e.do(u, "GET", "/fhir/Patient/"+pid, "")
	return resp.StatusCode
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// One end-to-end run per access basis: without the basis the FHIR read is
// refused, the basis is set up through the management API by the role that
// owns it, and then the read works and the access log names the basis.
// REQ: AZ-1
// REQ: AZ-3
// REQ: AZ-4
// REQ: AZ-5
// REQ: AZ-6
// REQ: AZ-7
// REQ: LOG-9
func TestAccessBasesOverHTTP(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newAccessEnv(t, db)
		admin := e.login(e.tenantA, access.RoleAppAdmin)
		officer := e.login(e.tenantA, access.RoleSecurityOfficer)

		t.Run("relationship", func(t *testing.T) {
			e.t = t
			p, _ := e.patient(e.tenantA)
			prof := e.login(e.tenantA, access.RoleProfessional)
			if c := e.readPatient(prof, p); c != http.StatusForbidden {
				t.Fatalf("without relationship: %d", c)
			}
			e.expect(prof, "POST", "/api/v1/relationships", js(map[string]any{"professional_id": prof.id, "patient_id": p, "kind": "gp"}), http.StatusForbidden)
			rel := e.expect(admin, "POST", "/api/v1/relationships", js(map[string]any{"professional_id": prof.id, "patient_id": p, "kind": "gp"}), http.StatusCreated)
			if c := e.readPatient(prof, p); c != http.StatusOK {
				t.Fatalf("with relationship: %d", c)
			}
			list := e.do
			if resp, b := list(officer, "GET", "/api/v1/patients/"+p+"/relationships", ""); resp.StatusCode != 200 || !strings.Contains(string(b), rel["id"].(string)) {
				t.Fatalf("relationship list: %d %s", resp.StatusCode, b)
			}
			e.clock.Advance(time.Second)
			e.expect(admin, "POST", "/api/v1/relationships/"+rel["id"].(string)+"/end", "", http.StatusNoContent)
			if c := e.readPatient(prof, p); c != http.StatusForbidden {
				t.Fatalf("after the end: %d", c)
			}
		})

		t.Run("team", func(t *testing.T) {
			e.t = t
			p, _ := e.patient(e.tenantA)
			nurse := e.login(e.tenantA, access.RoleProfessional)
			team := e.expect(admin, "POST", "/api/v1/teams", `{"name":"Wijkteam"}`, http.StatusCreated)
			tid := team["id"].(string)
			e.expect(admin, "PUT", "/api/v1/teams/"+tid+"/members/"+nurse.id, "", http.StatusNoContent)
			if c := e.readPatient(nurse, p); c != http.StatusForbidden {
				t.Fatalf("patient not assigned: %d", c)
			}
			e.expect(admin, "PUT", "/api/v1/teams/"+tid+"/patients/"+p, "", http.StatusNoContent)
			if c := e.readPatient(nurse, p); c != http.StatusOK {
				t.Fatalf("team: %d", c)
			}
			e.expect(admin, "DELETE", "/api/v1/teams/"+tid+"/members/"+nurse.id, "", http.StatusNoContent)
			if c := e.readPatient(nurse, p); c != http.StatusForbidden {
				t.Fatalf("after leaving: %d", c)
			}
		})

		t.Run("delegation", func(t *testing.T) {
			e.t = t
			p, _ := e.patient(e.tenantA)
			gp, spec := e.login(e.tenantA, access.RoleProfessional), e.login(e.tenantA, access.RoleProfessional)
			body := js(map[string]any{"to": spec.id, "patient_id": p, "reason": "referral to cardiology", "until": e.clock.Now().Add(24 * time.Hour)})
			e.expect(gp, "POST", "/api/v1/delegations", body, http.StatusForbidden) // gp has no relationship yet
			e.expect(admin, "POST", "/api/v1/relationships", js(map[string]any{"professional_id": gp.id, "patient_id": p, "kind": "gp"}), http.StatusCreated)
			dl := e.expect(gp, "POST", "/api/v1/delegations", body, http.StatusCreated)
			if c := e.readPatient(spec, p); c != http.StatusOK {
				t.Fatalf("delegate: %d", c)
			}
			for _, u := range []user{gp, spec, admin} {
				if resp, b := e.do(u, "GET", "/api/v1/delegations?patient="+p, ""); resp.StatusCode != http.StatusOK || !strings.Contains(string(b), dl["id"].(string)) {
					t.Fatalf("delegations as %s: %d %s", u.subj.Role(), resp.StatusCode, b)
				}
			}
			e.expect(gp, "POST", "/api/v1/delegations/"+dl["id"].(string)+"/revoke", "", http.StatusNoContent)
			if c := e.readPatient(spec, p); c != http.StatusForbidden {
				t.Fatalf("after revocation: %d", c)
			}
		})

		t.Run("emergency", func(t *testing.T) {
			e.t = t
			p, _ := e.patient(e.tenantA)
			doc := e.login(e.tenantA, access.RoleProfessional)
			e.expect(doc, "POST", "/api/v1/emergencies", js(map[string]any{"patient_id": p, "reason": ""}), http.StatusBadRequest)
			e.expect(officer, "POST", "/api/v1/emergencies", js(map[string]any{"patient_id": p, "reason": "collapsed at the desk"}), http.StatusForbidden)
			em := e.expect(doc, "POST", "/api/v1/emergencies", js(map[string]any{"patient_id": p, "reason": "collapsed at the desk"}), http.StatusCreated)
			if c := e.readPatient(doc, p); c != http.StatusOK {
				t.Fatalf("emergency: %d", c)
			}
			evs, err := e.log.Query(e.ctx, audit.Filter{TenantID: e.tenantA, PatientID: p, UserID: doc.id, Action: audit.ActionRead, Limit: 5})
			if err != nil || len(evs) != 1 || !evs[0].Emergency || evs[0].EmergencyReason != "collapsed at the desk" {
				t.Fatalf("read under emergency in the log: %+v %v", evs, err)
			}
			resp, b := e.do(officer, "GET", "/api/v1/emergencies", "")
			if resp.StatusCode != 200 || !strings.Contains(string(b), em["id"].(string)) {
				t.Fatalf("review queue: %d %s", resp.StatusCode, b)
			}
			resp, b = e.do(officer, "GET", "/api/v1/security-events", "")
			if resp.StatusCode != 200 || !strings.Contains(string(b), "emergency-access") {
				t.Fatalf("security events: %d %s", resp.StatusCode, b)
			}
			e.expect(doc, "GET", "/api/v1/emergencies", "", http.StatusForbidden)
			e.expect(officer, "POST", "/api/v1/emergencies/"+em["id"].(string)+"/review", `{"justified":true,"note":"confirmed by the triage nurse"}`, http.StatusOK)
			e.clock.Advance(4 * time.Hour)
			// The session itself would have idled out; log on again.
			doc.token = e.relogin(doc)
			admin.token, officer.token = e.relogin(admin), e.relogin(officer)
			if c := e.readPatient(doc, p); c != http.StatusForbidden {
				t.Fatalf("after 4 h: %d", c)
			}
		})

		t.Run("own data and representation", func(t *testing.T) {
			e.t = t
			own, _ := e.patient(e.tenantA)
			child, _ := e.patient(e.tenantA)
			parent := e.login(e.tenantA, access.RolePerson)
			if err := e.ids.LinkPerson(e.ctx, parent.id, own); err != nil {
				t.Fatal(err)
			}
			if c := e.readPatient(parent, own); c != http.StatusOK {
				t.Fatalf("own data: %d", c)
			}
			e.expect(parent, "POST", "/api/v1/session/act-for", js(map[string]any{"patient_id": child}), http.StatusForbidden)
			birth := e.clock.Now().AddDate(-8, 0, 0).Format(time.DateOnly)
			e.expect(admin, "POST", "/api/v1/representations", js(map[string]any{"representative_id": parent.id, "patient_id": child,
				"kind": "parent", "patient_birth_date": birth}), http.StatusCreated)
			if c := e.readPatient(parent, child); c != http.StatusForbidden {
				t.Fatalf("not yet acting for the child: %d", c)
			}
			e.expect(parent, "POST", "/api/v1/session/act-for", js(map[string]any{"patient_id": child}), http.StatusNoContent)
			if c := e.readPatient(parent, child); c != http.StatusOK {
				t.Fatalf("acting for the child: %d", c)
			}
			evs, err := e.log.Query(e.ctx, audit.Filter{TenantID: e.tenantA, PatientID: child, UserID: parent.id, Action: audit.ActionRead, Limit: 5})
			ok := false
			for _, ev := range evs {
				ok = ok || (ev.Outcome == audit.OutcomeSuccess && ev.OnBehalfOf == child && strings.HasPrefix(ev.Basis, "representation:"))
			}
			if err != nil || !ok {
				t.Fatalf("representative's read in the log: %+v %v", evs, err)
			}

			// A parent's representation ends at the child's 16th birthday,
			// also for a session that already acts for the child.
			teen, _ := e.patient(e.tenantA)
			birth = e.clock.Now().Add(36*time.Hour).AddDate(-16, 0, 0).Format(time.DateOnly)
			e.expect(admin, "POST", "/api/v1/representations", js(map[string]any{"representative_id": parent.id, "patient_id": teen,
				"kind": "parent", "patient_birth_date": birth}), http.StatusCreated)
			e.expect(parent, "POST", "/api/v1/session/act-for", js(map[string]any{"patient_id": teen}), http.StatusNoContent)
			if c := e.readPatient(parent, teen); c != http.StatusOK {
				t.Fatalf("acting for the 15-year-old: %d", c)
			}
			e.clock.Advance(48 * time.Hour)
			parent.token, admin.token, officer.token = e.relogin(parent), e.relogin(admin), e.relogin(officer)
			e.expect(parent, "POST", "/api/v1/session/act-for", js(map[string]any{"patient_id": teen}), http.StatusForbidden)
			if c := e.readPatient(parent, teen); c != http.StatusForbidden {
				t.Fatalf("after the 16th birthday: %d", c)
			}
		})

		t.Run("operator", func(t *testing.T) {
			e.t = t
			p, _ := e.patient(e.tenantA)
			op := e.login("", access.RoleOperator)
			if c := e.readPatient(op, p); c != http.StatusForbidden {
				t.Fatalf("operator without procedure: %d", c)
			}
			req := e.expect(op, "POST", "/api/v1/operator-requests", js(map[string]any{"tenant_id": e.tenantA, "patient_ids": []string{p},
				"categories": []string{"demographics"}, "reason": "repair after failed import", "duration_minutes": 60}), http.StatusCreated)
			id := req["id"].(string)
			if c := e.readPatient(op, p); c != http.StatusForbidden {
				t.Fatalf("before approval: %d", c)
			}
			e.expect(admin, "POST", "/api/v1/operator-requests/"+id+"/decision", `{"approve":true,"note":"ok"}`, http.StatusForbidden)
			e.expect(officer, "POST", "/api/v1/operator-requests/"+id+"/decision", `{"approve":true,"note":"incident INC-7"}`, http.StatusOK)
			if c := e.readPatient(op, p); c != http.StatusOK {
				t.Fatalf("approved: %d", c)
			}
			resp, b := e.do(officer, "GET", "/api/v1/operator-requests", "")
			if resp.StatusCode != 200 || !strings.Contains(string(b), `"uses":1`) {
				t.Fatalf("operator report: %d %s", resp.StatusCode, b)
			}
			// The grant ends after the requested hour.
			e.clock.Advance(time.Hour)
			op.token, admin.token, officer.token = e.relogin(op), e.relogin(admin), e.relogin(officer)
			if c := e.readPatient(op, p); c != http.StatusForbidden {
				t.Fatalf("after the requested duration: %d", c)
			}
		})

		t.Run("rights", func(t *testing.T) {
			e.t = t
			prof := e.login(e.tenantA, access.RoleProfessional)
			acc, err := e.ids.CreateAccount(e.ctx, identity.Account{TenantID: e.tenantA, Kind: identity.KindAdmin, Username: "cover-officer", DisplayName: "Cover", RegistrationMethod: 3})
			if err != nil {
				t.Fatal(err)
			}
			until := e.clock.Now().Add(7 * 24 * time.Hour)
			e.expect(prof, "POST", "/api/v1/rights/requests", js(map[string]any{"account_id": acc.ID, "role": "security-officer", "valid_until": until, "reason": "cover"}), http.StatusForbidden)
			rr := e.expect(admin, "POST", "/api/v1/rights/requests", js(map[string]any{"account_id": acc.ID, "role": "security-officer", "valid_until": until, "reason": "holiday cover"}), http.StatusCreated)
			e.expect(admin, "POST", "/api/v1/rights/requests/"+rr["id"].(string)+"/decision", `{"approve":true,"note":"self"}`, http.StatusForbidden)
			e.expect(officer, "POST", "/api/v1/rights/requests/"+rr["id"].(string)+"/decision", `{"approve":true,"note":"board decision 12"}`, http.StatusOK)
			resp, b := e.do(officer, "GET", "/api/v1/rights", "")
			if resp.StatusCode != 200 || !strings.Contains(string(b), `"approved_by":"`+officer.id+`"`) || !strings.Contains(string(b), `"requested_by":"`+admin.id+`"`) {
				t.Fatalf("rights overview: %d %s", resp.StatusCode, b)
			}
		})
	})
}

// relogin starts a fresh session for an existing account.
func (e *accessEnv) relogin(u user) string {
	e.t.Helper()
	_, secret, err := e.an.EnrollTOTP(e.ctx, u.id, u.name+"-again")
	if err != nil {
		e.t.Fatal(err)
	}
	attempt, err := e.an.Begin(e.ctx, u.name, "correct horse battery staple 42", "127.0.0.1")
	if err != nil {
		e.t.Fatal(err)
	}
	code, _ := totp.GenerateCode(secret, e.clock.Now())
	tok, _, err := e.an.CompleteTOTP(e.ctx, attempt, code, "127.0.0.1", u.name)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// No IDOR: every patient-scoped endpoint, called by users of tenant A who
// hold a basis for A's own patient, with the id of a patient (or a
// resource) of tenant B, answers exactly as for an id that does not exist,
// and never with success; with the id of another patient of tenant A to
// whom the user has no basis, every health-data endpoint refuses and shows
// nothing of that patient, and nothing of theirs is changed.
// REQ: AZ-1
// REQ: AZ-3
func TestNoIDOROnPatientEndpoints(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newAccessEnv(t, db)
		pA, obsA := e.patient(e.tenantA)
		pA2, obsA2 := e.patient(e.tenantA) // no basis for anyone below
		pB, obsB := e.patient(e.tenantB)
		admin := e.login(e.tenantA, access.RoleAppAdmin)
		officer := e.login(e.tenantA, access.RoleSecurityOfficer)
		prof := e.login(e.tenantA, access.RoleProfessional)
		other := e.login(e.tenantA, access.RoleProfessional)
		person := e.login(e.tenantA, access.RolePerson)
		e.expect(admin, "POST", "/api/v1/relationships", js(map[string]any{"professional_id": prof.id, "patient_id": pA, "kind": "gp"}), http.StatusCreated)
		if err := e.ids.LinkPerson(e.ctx, person.id, pA); err != nil {
			t.Fatal(err)
		}
		team := e.expect(admin, "POST", "/api/v1/teams", `{"name":"T"}`, http.StatusCreated)["id"].(string)
		if c := e.readPatient(prof, pA); c != http.StatusOK {
			t.Fatalf("own patient: %d", c)
		}
		if c := e.readPatient(person, pA); c != http.StatusOK {
			t.Fatalf("own record: %d", c)
		}
		const unknown = "p-doesnotexist0000000000000000"
		obs := func(pid string) string {
			return fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/%s"}}`, pid)
		}
		type ep struct {
			u      user
			method string
			path   func(pid, res string) string
			body   func(pid string) string
			// sameTenant: also refused for a patient of the user's own tenant
			// to whom the user has no basis (health data, and rules only the
			// professional with a relationship may make).
			sameTenant bool
		}
		none := func(string) string { return "" }
		obsPut := func(p string) string {
			return fmt.Sprintf(`{"resourceType":"Observation","id":"RES","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/%s"}}`, p)
		}
		eps := []ep{
			{prof, "GET", func(p, _ string) string { return "/fhir/Patient/" + p }, none, true},
			{person, "GET", func(p, _ string) string { return "/fhir/Patient/" + p }, none, true},
			{prof, "GET", func(p, _ string) string { return "/fhir/Patient?_id=" + p }, none, true},
			{person, "GET", func(p, _ string) string { return "/fhir/Patient?_id=" + p }, none, true},
			{prof, "GET", func(p, _ string) string { return "/fhir/Patient/" + p + "/_history" }, none, true},
			{prof, "GET", func(p, _ string) string { return "/fhir/Patient/" + p + "/_history/1" }, none, true},
			{prof, "GET", func(p, _ string) string { return "/fhir/Patient/" + p + "/$everything" }, none, true},
			{person, "GET", func(p, _ string) string { return "/fhir/Patient/" + p + "/$everything" }, none, true},
			{prof, "GET", func(p, _ string) string { return "/fhir/Observation?patient=" + p }, none, true},
			{prof, "GET", func(p, _ string) string { return "/fhir/Observation?subject=Patient/" + p }, none, true},
			{person, "GET", func(p, _ string) string { return "/fhir/Observation?patient=" + p }, none, true},
			{prof, "GET", func(_, r string) string { return "/fhir/Observation/" + r }, none, true},
			{person, "GET", func(_, r string) string { return "/fhir/Observation/" + r }, none, true},
			{prof, "GET", func(_, r string) string { return "/fhir/Observation/" + r + "/_history" }, none, true},
			{prof, "GET", func(_, r string) string { return "/fhir/Observation/" + r + "/_history/1" }, none, true},
			{prof, "DELETE", func(_, r string) string { return "/fhir/Observation/" + r }, none, true},
			{prof, "PUT", func(_, r string) string { return "/fhir/Observation/" + r }, obsPut, true},
			{prof, "POST", func(string, string) string { return "/fhir/Observation" }, obs, true},
			{person, "POST", func(string, string) string { return "/fhir/Observation" }, obs, true},
			{prof, "PUT", func(p, _ string) string { return "/fhir/Patient/" + p },
				func(p string) string { return fmt.Sprintf(`{"resourceType":"Patient","id":%q}`, p) }, true},
			{admin, "GET", func(p, _ string) string { return "/api/v1/patients/" + p + "/relationships" }, none, false},
			{officer, "GET", func(p, _ string) string { return "/api/v1/patients/" + p + "/relationships" }, none, false},
			{admin, "POST", func(string, string) string { return "/api/v1/relationships" },
				func(p string) string {
					return js(map[string]any{"professional_id": other.id, "patient_id": p, "kind": "gp"})
				}, false},
			{admin, "PUT", func(p, _ string) string { return "/api/v1/teams/" + team + "/patients/" + p }, none, false},
			{admin, "DELETE", func(p, _ string) string { return "/api/v1/teams/" + team + "/patients/" + p }, none, false},
			{prof, "POST", func(string, string) string { return "/api/v1/delegations" },
				func(p string) string {
					return js(map[string]any{"to": other.id, "patient_id": p, "reason": "r", "until": e.clock.Now().Add(time.Hour)})
				}, true},
			// Declaring an emergency for an own-tenant patient is what
			// break-the-glass is for; it is the last request of this list, so
			// the emergency it creates cannot mask a refusal above.
			{admin, "POST", func(string, string) string { return "/api/v1/representations" },
				func(p string) string {
					return js(map[string]any{"representative_id": person.id, "patient_id": p, "kind": "authorised"})
				}, false},
			{person, "POST", func(string, string) string { return "/api/v1/session/act-for" },
				func(p string) string { return js(map[string]any{"patient_id": p}) }, true},
			{prof, "POST", func(string, string) string { return "/api/v1/emergencies" },
				func(p string) string {
					return js(map[string]any{"patient_id": p, "reason": "cardiac arrest in the hall"})
				}, false},
		}
		for _, x := range eps {
			name := x.method + " " + x.path("{patient}", "{resource}")
			body := func(p, res string) string { return strings.ReplaceAll(x.body(p), `"RES"`, `"`+res+`"`) }
			if x.sameTenant {
				// A patient of the own tenant without any basis: refused, and
				// nothing of theirs in the answer.
				resp, b := e.do(x.u, x.method, x.path(pA2, obsA2), body(pA2, obsA2))
				if resp.StatusCode < 400 || strings.Contains(string(b), "Test") || strings.Contains(string(b), "weight") {
					t.Errorf("%s as %s with another patient of the own tenant: %d %s", name, x.u.subj.Role(), resp.StatusCode, b)
				}
			}
			respB, bodyB := e.do(x.u, x.method, x.path(pB, obsB), body(pB, obsB))
			respU, bodyU := e.do(x.u, x.method, x.path(unknown, "obs-doesnotexist"), body(unknown, "obs-doesnotexist"))
			t.Logf("%s: %d / %d", name, respB.StatusCode, respU.StatusCode)
			if respB.StatusCode < 400 {
				t.Errorf("%s with tenant B's patient: %d %s", name, respB.StatusCode, bodyB)
			}
			if respB.StatusCode != respU.StatusCode {
				t.Errorf("%s: tenant B's patient %d, unknown patient %d: the answers tell them apart", name, respB.StatusCode, respU.StatusCode)
			}
			if strings.Contains(string(bodyB), pB) != strings.Contains(string(bodyU), unknown) {
				t.Errorf("%s: answers differ in echoing the id: %s / %s", name, bodyB, bodyU)
			}
		}
		// Nothing of B's patient leaked into A's view, and B's data and the
		// unrelated patient's are intact: still version 1.
		if _, err := e.records.ResourcePatient(e.ctx, e.tenantB, "Observation", obsB); err != nil {
			t.Errorf("B's observation: %v", err)
		}
		regA := e.login(e.tenantA, access.RoleProfessional)
		e.expect(admin, "POST", "/api/v1/relationships", js(map[string]any{"professional_id": regA.id, "patient_id": pA2, "kind": "gp"}), http.StatusCreated)
		for _, path := range []string{"/fhir/Observation/" + obsA2, "/fhir/Patient/" + pA2} {
			if resp, b := e.do(regA, "GET", path, ""); resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != `W/"1"` {
				t.Errorf("%s after the attempts: %d %s %s", path, resp.StatusCode, resp.Header.Get("ETag"), b)
			}
		}
		if n, _ := e.do(regA, "GET", "/fhir/Observation?patient="+pA2+"&_summary=count", ""); n.StatusCode != http.StatusOK {
			t.Errorf("count: %d", n.StatusCode)
		}
		// The same endpoints work for A's own patient: the refusals above are
		// about the tenant, not a broken endpoint.
		if resp, b := e.do(prof, "GET", "/fhir/Observation/"+obsA, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("own observation: %d %s", resp.StatusCode, b)
		}
	})
}

// A role or basis that may not see a data category does not learn that data
// of that category exists: a mental-health Observation is, for a tenant role
// limited to demographic and clinical data and for an operator whose
// approved request names only those categories, and for a person
// authorised for only those categories, answered exactly like an
// Observation that does not exist, on read, version read, history, update
// and search (where it is not counted in the total either), and left out of
// $everything. A professional sees it.
//
// REQ: AZ-9
// REQ: AZ-2
// REQ: AZ-6
func TestHiddenCategoriesOverHTTP(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newAccessEnv(t, db)
		admin := e.login(e.tenantA, access.RoleAppAdmin)
		officer := e.login(e.tenantA, access.RoleSecurityOfficer)
		p, plain := e.patient(e.tenantA)
		doc := e.login(e.tenantA, access.RoleProfessional)
		e.expect(admin, "POST", "/api/v1/relationships", js(map[string]any{"professional_id": doc.id, "patient_id": p, "kind": "psychiatry"}), http.StatusCreated)
		psy := e.expect(doc, "POST", "/fhir/Observation", fmt.Sprintf(`{"resourceType":"Observation","status":"final",
		"meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"PSY"}]},
		"code":{"text":"PHQ-9 score"},"subject":{"reference":"Patient/%s"},"valueQuantity":{"value":19}}`, p), http.StatusCreated)["id"].(string)

		// A tenant role for physiotherapists: demographic and clinical data.
		def := e.expect(admin, "POST", "/api/v1/roles", js(map[string]any{"name": "physiotherapist", "base": "professional",
			"actions": []string{"read", "search", "create", "update"}, "categories": []string{"demographics", "clinical"}}), http.StatusCreated)
		e.expect(officer, "POST", "/api/v1/roles/"+def["id"].(string)+"/decision", `{"approve":true,"note":"policy 2026-5"}`, http.StatusOK)
		physio := e.login(e.tenantA, access.Role("physiotherapist"))
		e.expect(admin, "POST", "/api/v1/relationships", js(map[string]any{"professional_id": physio.id, "patient_id": p, "kind": "physiotherapy"}), http.StatusCreated)

		op := e.login("", access.RoleOperator)
		or := e.expect(op, "POST", "/api/v1/operator-requests", js(map[string]any{"tenant_id": e.tenantA, "patient_ids": []string{p},
			"categories": []string{"demographics", "clinical"}, "reason": "repair after failed import", "duration_minutes": 60}), http.StatusCreated)
		e.expect(officer, "POST", "/api/v1/operator-requests/"+or["id"].(string)+"/decision", `{"approve":true,"note":"incident INC-9"}`, http.StatusOK)

		// A person authorised by the patient for demographic and clinical data.
		rep := e.login(e.tenantA, access.RolePerson)
		e.expect(admin, "POST", "/api/v1/representations", js(map[string]any{"representative_id": rep.id, "patient_id": p,
			"kind": "authorised", "categories": []string{"demographics", "clinical"}}), http.StatusCreated)
		e.expect(rep, "POST", "/api/v1/session/act-for", js(map[string]any{"patient_id": p}), http.StatusNoContent)

		const unknown = "obs-doesnotexist"
		total := func(u user, path string) (int, string) {
			t.Helper()
			resp, b := e.do(u, "GET", path, "")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s as %s: %d %s", path, u.subj.Role(), resp.StatusCode, b)
			}
			var bundle struct {
				Total int `json:"total"`
			}
			if err := json.Unmarshal(b, &bundle); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			return bundle.Total, string(b)
		}
		if n, body := total(doc, "/fhir/Observation?patient="+p); n != 2 || !strings.Contains(body, psy) {
			t.Fatalf("the professional sees %d observations: %s", n, body)
		}
		for _, u := range []user{physio, op, rep} {
			name := string(u.subj.Role())
			if resp, b := e.do(u, "GET", "/fhir/Observation/"+plain, ""); resp.StatusCode != http.StatusOK {
				t.Errorf("%s reads a plain observation: %d %s", name, resp.StatusCode, b)
			}
			put := func(id string) string {
				return fmt.Sprintf(`{"resourceType":"Observation","id":%q,"status":"final","code":{"text":"x"},"subject":{"reference":"Patient/%s"}}`, id, p)
			}
			for _, x := range []struct{ method, path, body string }{
				{"GET", "/fhir/Observation/%s", ""},
				{"GET", "/fhir/Observation/%s/_history/1", ""},
				{"GET", "/fhir/Observation/%s/_history", ""},
				{"PUT", "/fhir/Observation/%s", put("%s")},
			} {
				if x.method == "PUT" && u.subj.Role() != physio.subj.Role() {
					continue // operators and persons may not update at all
				}
				hidden, missing := fmt.Sprintf(x.path, psy), fmt.Sprintf(x.path, unknown)
				respH, bodyH := e.do(u, x.method, hidden, strings.ReplaceAll(x.body, "%s", psy))
				respU, bodyU := e.do(u, x.method, missing, strings.ReplaceAll(x.body, "%s", unknown))
				if respH.StatusCode != respU.StatusCode || respH.StatusCode < 400 {
					t.Errorf("%s %s %s: hidden %d %s, unknown %d %s", name, x.method, x.path, respH.StatusCode, bodyH, respU.StatusCode, bodyU)
				}
				if strings.Contains(string(bodyH), "PHQ") || strings.Contains(strings.ToLower(string(bodyH)), "mental") ||
					normalise(string(bodyH), psy) != normalise(string(bodyU), unknown) {
					t.Errorf("%s %s %s: the answers differ: %s / %s", name, x.method, x.path, bodyH, bodyU)
				}
			}
			for _, path := range []string{"/fhir/Observation?patient=" + p, "/fhir/Observation?patient=" + p + "&_summary=count"} {
				if n, body := total(u, path); n != 1 || strings.Contains(body, psy) {
					t.Errorf("%s %s: total %d: %s", name, path, n, body)
				}
			}
			// Only the person may export; the others are refused $everything.
			resp, b := e.do(u, "GET", "/fhir/Patient/"+p+"/$everything", "")
			if u.subj.Role() == access.RolePerson && (resp.StatusCode != http.StatusOK || strings.Contains(string(b), psy) || !strings.Contains(string(b), plain)) {
				t.Errorf("%s $everything: %d %s", name, resp.StatusCode, b)
			}
		}
		// The hidden observation is untouched.
		if resp, b := e.do(doc, "GET", "/fhir/Observation/"+psy, ""); resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "PHQ-9") ||
			resp.Header.Get("ETag") != `W/"1"` {
			t.Errorf("the professional's mental-health observation: %d %s %s", resp.StatusCode, resp.Header.Get("ETag"), b)
		}
	})
}

var requestRE = regexp.MustCompile(`\(request [0-9a-f]+\)`)

// normalise removes what differs between two equal answers: the id asked
// for and the request id.
func normalise(body, id string) string {
	return requestRE.ReplaceAllString(strings.ReplaceAll(body, id, "ID"), "")
}

// A privileged right granted through the API works only between its
// approval and its end: the cover officer's session is refused before
// approval, works during the period, and is refused after the end and after
// an early revocation, while the rights overview shows the state.
//
// REQ: AZ-8
// REQ: AZ-7
// REQ: AUTH-8
func TestPrivilegedRightEndsOverHTTP(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newAccessEnv(t, db)
		admin := e.login(e.tenantA, access.RoleAppAdmin)
		officer := e.login(e.tenantA, access.RoleSecurityOfficer)
		acc, err := e.ids.CreateAccount(e.ctx, identity.Account{TenantID: e.tenantA, Kind: identity.KindAdmin, Username: "cover-officer",
			DisplayName: "Cover", RegistrationMethod: 3})
		if err != nil {
			t.Fatal(err)
		}
		state := func() string {
			t.Helper()
			var o struct {
				Rights []access.Right `json:"rights"`
			}
			_, b := e.do(officer, "GET", "/api/v1/rights", "")
			if err := json.Unmarshal(b, &o); err != nil {
				t.Fatal(err)
			}
			for _, r := range o.Rights {
				if r.AccountID == acc.ID && r.Role == access.RoleSecurityOfficer {
					return r.State
				}
			}
			return "none"
		}
		e.expect(admin, "POST", "/api/v1/rights/requests", js(map[string]any{"account_id": acc.ID, "role": "security-officer", "reason": "cover"}), http.StatusBadRequest)
		until := e.clock.Now().Add(8 * time.Hour)
		rr := e.expect(admin, "POST", "/api/v1/rights/requests", js(map[string]any{"account_id": acc.ID, "role": "security-officer",
			"valid_until": until, "reason": "evening cover"}), http.StatusCreated)
		if state() != "none" {
			t.Fatalf("a pending request is already a right: %s", state())
		}
		e.expect(officer, "POST", "/api/v1/rights/requests/"+rr["id"].(string)+"/decision", `{"approve":true,"note":"roster"}`, http.StatusOK)
		cover := e.logonAs(acc.ID, "cover-officer")
		if cover.subj.Role() != access.RoleSecurityOfficer {
			t.Fatalf("cover session role %q", cover.subj.Role())
		}
		e.expect(cover, "GET", "/api/v1/emergencies", "", http.StatusOK)
		if s := state(); s != "current" {
			t.Errorf("state during the period: %s", s)
		}
		e.clock.Advance(8 * time.Hour)
		cover.token, officer.token, admin.token = e.relogin(cover), e.relogin(officer), e.relogin(admin)
		e.expect(cover, "GET", "/api/v1/emergencies", "", http.StatusForbidden)
		e.expect(cover, "GET", "/api/v1/security-events", "", http.StatusForbidden)
		// A log-on after the end does not take the ended right as its role,
		// and the right cannot be chosen either.
		if sess := e.expect(cover, "GET", "/api/v1/session", "", http.StatusOK); sess["role"] != "" && sess["role"] != nil {
			t.Errorf("log-on after the end took role %v", sess["role"])
		}
		e.expect(cover, "POST", "/api/v1/session/role", `{"role":"security-officer"}`, http.StatusForbidden)
		if s := state(); s != "expired" {
			t.Errorf("state after the end: %s", s)
		}
		// A new period, revoked early.
		rr = e.expect(admin, "POST", "/api/v1/rights/requests", js(map[string]any{"account_id": acc.ID, "role": "security-officer",
			"valid_until": e.clock.Now().Add(8 * time.Hour), "reason": "second evening"}), http.StatusCreated)
		e.expect(cover, "GET", "/api/v1/emergencies", "", http.StatusForbidden)
		e.clock.Advance(time.Second)
		e.expect(officer, "POST", "/api/v1/rights/requests/"+rr["id"].(string)+"/decision", `{"approve":true,"note":"roster"}`, http.StatusOK)
		// The session without a role takes the approved right by choosing it.
		chosen := e.expect(cover, "POST", "/api/v1/session/role", `{"role":"security-officer"}`, http.StatusOK)
		cover.token = chosen["token"].(string)
		e.expect(cover, "GET", "/api/v1/emergencies", "", http.StatusOK)
		e.expect(officer, "POST", "/api/v1/rights/requests/"+rr["id"].(string)+"/revoke", "", http.StatusNoContent)
		e.expect(cover, "GET", "/api/v1/emergencies", "", http.StatusForbidden)
		if s := state(); s != "revoked" {
			t.Errorf("state after revocation: %s", s)
		}
	})
}

// Bad input to the access endpoints is a clear 400 problem on both
// databases, never a 5xx, and writes nothing: malformed JSON, wrong types,
// unknown fields, and text with a NUL or another control character (which
// PostgreSQL cannot store) in any field.
//
// REQ: AZ-1
func TestAccessEndpointsRejectBadInput(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newAccessEnv(t, db)
		p, _ := e.patient(e.tenantA)
		admin := e.login(e.tenantA, access.RoleAppAdmin)
		officer := e.login(e.tenantA, access.RoleSecurityOfficer)
		doc := e.login(e.tenantA, access.RoleProfessional)
		person := e.login(e.tenantA, access.RolePerson)
		op := e.login("", access.RoleOperator)
		e.expect(admin, "POST", "/api/v1/relationships", js(map[string]any{"professional_id": doc.id, "patient_id": p, "kind": "gp"}), http.StatusCreated)
		team := e.expect(admin, "POST", "/api/v1/teams", `{"name":"Wijkteam"}`, http.StatusCreated)["id"].(string)
		em := e.expect(doc, "POST", "/api/v1/emergencies", js(map[string]any{"patient_id": p, "reason": "collapsed in the hall"}), http.StatusCreated)["id"].(string)
		orq := e.expect(op, "POST", "/api/v1/operator-requests", js(map[string]any{"tenant_id": e.tenantA, "patient_ids": []string{p},
			"categories": []string{"demographics"}, "reason": "repair after failed import", "duration_minutes": 60}), http.StatusCreated)["id"].(string)
		acc, err := e.ids.CreateAccount(e.ctx, identity.Account{TenantID: e.tenantA, Kind: identity.KindProfessional, Username: "new-gp", DisplayName: "GP", RegistrationMethod: 3})
		if err != nil {
			t.Fatal(err)
		}
		rr := e.expect(admin, "POST", "/api/v1/rights/requests", js(map[string]any{"account_id": acc.ID, "role": "professional", "reason": "new GP"}), http.StatusCreated)["id"].(string)
		role := e.expect(admin, "POST", "/api/v1/roles", js(map[string]any{"name": "dietitian", "base": "professional", "actions": []string{"read"},
			"categories": []string{"clinical"}}), http.StatusCreated)["id"].(string)
		until := e.clock.Now().Add(24 * time.Hour).Format(time.RFC3339)

		const nul, ctl = `a\u0000b`, `a\u001bb`
		type call struct {
			u            user
			method, path string
			body         string // %s is replaced by the bad text
		}
		calls := []call{
			{admin, "POST", "/api/v1/relationships", `{"professional_id":"` + doc.id + `","patient_id":"` + p + `","kind":"%s"}`},
			{admin, "POST", "/api/v1/relationships", `{"professional_id":"%s","patient_id":"` + p + `","kind":"gp"}`},
			{admin, "POST", "/api/v1/relationships", `{"professional_id":"` + doc.id + `","patient_id":"%s","kind":"gp"}`},
			{admin, "POST", "/api/v1/teams", `{"name":"%s"}`},
			{doc, "POST", "/api/v1/delegations", `{"to":"%s","patient_id":"` + p + `","reason":"referral","until":"` + until + `"}`},
			{doc, "POST", "/api/v1/delegations", `{"to":"` + acc.ID + `","patient_id":"` + p + `","reason":"%s","until":"` + until + `"}`},
			{admin, "POST", "/api/v1/representations", `{"representative_id":"` + person.id + `","patient_id":"` + p + `","kind":"authorised","categories":["%s"]}`},
			{admin, "POST", "/api/v1/representations", `{"representative_id":"%s","patient_id":"` + p + `","kind":"authorised"}`},
			{doc, "POST", "/api/v1/emergencies", `{"patient_id":"` + p + `","reason":"collapsed %s in the hall"}`},
			{doc, "POST", "/api/v1/emergencies", `{"patient_id":"%s","reason":"collapsed in the hall"}`},
			{officer, "POST", "/api/v1/emergencies/" + em + "/review", `{"justified":true,"note":"%s"}`},
			{op, "POST", "/api/v1/operator-requests", `{"tenant_id":"` + e.tenantA + `","patient_ids":["%s"],"categories":["demographics"],"reason":"repair after failed import","duration_minutes":60}`},
			{op, "POST", "/api/v1/operator-requests", `{"tenant_id":"` + e.tenantA + `","patient_ids":["` + p + `"],"categories":["demographics"],"reason":"repair %s after failed import","duration_minutes":60}`},
			{op, "POST", "/api/v1/operator-requests", `{"tenant_id":"%s","patient_ids":["` + p + `"],"categories":["demographics"],"reason":"repair after failed import","duration_minutes":60}`},
			{officer, "POST", "/api/v1/operator-requests/" + orq + "/decision", `{"approve":true,"note":"%s"}`},
			{admin, "POST", "/api/v1/rights/requests", `{"account_id":"` + acc.ID + `","role":"professional","reason":"%s"}`},
			{admin, "POST", "/api/v1/rights/requests", `{"account_id":"%s","role":"professional","reason":"new GP"}`},
			{officer, "POST", "/api/v1/rights/requests/" + rr + "/decision", `{"approve":true,"note":"%s"}`},
			{admin, "POST", "/api/v1/roles", `{"name":"%s","base":"professional","actions":["read"],"categories":["clinical"]}`},
			{officer, "POST", "/api/v1/roles/" + role + "/decision", `{"approve":true,"note":"%s"}`},
			{person, "POST", "/api/v1/session/act-for", `{"patient_id":"%s"}`},
			{admin, "PUT", "/api/v1/teams/" + team + "/members/%s", ""},
			{admin, "PUT", "/api/v1/teams/" + team + "/patients/%s", ""},
		}
		check := func(c call, body string) {
			t.Helper()
			path := c.path
			if strings.Contains(path, "%s") { // bad text in the path, escaped as a client would
				path, body = strings.ReplaceAll(path, "%s", url.PathEscape(body)), ""
			}
			resp, b := e.do(c.u, c.method, path, body)
			if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
				t.Errorf("%s %s %s: %d %s", c.method, c.path, body, resp.StatusCode, b)
			}
		}
		for _, c := range calls {
			if strings.Contains(c.path, "%s") {
				check(c, "a\x00b")
				check(c, "a\x1bb")
				continue
			}
			check(c, strings.ReplaceAll(c.body, "%s", nul))
			check(c, strings.ReplaceAll(c.body, "%s", ctl))
		}
		for _, c := range []call{calls[0], calls[3], calls[5], calls[8], calls[10], calls[12], calls[15]} {
			bodies := []string{"", "{", "[]", `"text"`, `{"unknown":1}`}
			if strings.Contains(c.body, `"%s"`) { // a number where text belongs
				bodies = append(bodies, strings.Replace(c.body, `"%s"`, `42`, 1))
			}
			for _, body := range bodies {
				check(c, body)
			}
		}
		// Nothing was written: the team is still empty, the review and the
		// decisions are still pending, one relationship and one emergency.
		if ts, _ := e.dec.Teams(e.ctx, admin.subj); len(ts) != 1 || ts[0].ID != team || len(ts[0].Members)+len(ts[0].Patients) != 0 {
			t.Errorf("teams after bad input: %+v", ts)
		}
		if rels, _ := e.dec.Relationships(e.ctx, admin.subj, p); len(rels) != 2 { // the registration's and the one above
			t.Errorf("relationships after bad input: %+v", rels)
		}
		if q, _ := e.dec.EmergencyReviews(e.ctx, officer.subj, true); len(q) != 1 {
			t.Errorf("emergencies after bad input: %+v", q)
		}
		if rep, _ := e.dec.OperatorReport(e.ctx, officer.subj); len(rep) != 1 || rep[0].Status != "pending" {
			t.Errorf("operator requests after bad input: %+v", rep)
		}
		if _, pending, _ := e.dec.RightsOverview(e.ctx, officer.subj); len(pending) != 1 {
			t.Errorf("right requests after bad input: %+v", pending)
		}
	})
}
