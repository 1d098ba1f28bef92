package router_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/oauth"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// A parent's app acts for the child the parent represents, and only for
// the child: the child's record is served, the parent's own is not (the
// consent was for the child), the log names the parent, the child and the
// app; when the representation is revoked the app's next read is refused,
// though its token is still current (AZ-4 is decided on every call).
//
// REQ: AZ-4, EX-2
func TestAppActsForRepresentedPerson(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newAccessEnv(t, db)
		admin := e.login(e.tenantA, access.RoleAppAdmin)
		own, _ := e.patient(e.tenantA)
		child, obs := e.patient(e.tenantA)
		parent := e.login(e.tenantA, access.RolePerson)
		if err := e.ids.LinkPerson(e.ctx, parent.id, own); err != nil {
			t.Fatal(err)
		}
		rep := e.expect(admin, "POST", "/api/v1/representations", js(map[string]any{"representative_id": parent.id, "patient_id": child,
			"kind": "parent", "patient_birth_date": e.clock.Now().AddDate(-8, 0, 0).Format(time.DateOnly)}), http.StatusCreated)

		by := oauth.Registrar{AccountID: admin.id, TenantID: e.tenantA}
		admin2 := e.login(e.tenantA, access.RoleAppAdmin) // approves (GOV-1)
		policy, err := e.oauth.SetPublicPolicy(e.ctx, by, true)
		if err != nil {
			t.Fatal(err)
		}
		e.expect(admin2, "POST", "/api/v1/changes/"+policy.ID+"/approve", "", http.StatusOK)
		const redirect = "https://app.example/cb"
		cl, err := e.oauth.Register(e.ctx, by, oauth.Client{Name: "Kinddossier", RedirectURIs: []string{redirect}, AuthMethod: oauth.AuthNone,
			Scopes: []string{"patient/*.rs"}})
		if err != nil {
			t.Fatal(err)
		}
		e.expect(admin2, "POST", "/api/v1/changes/"+cl.ChangeRequest+"/approve", "", http.StatusOK)
		verifier := strings.Repeat("v", 50)
		sum := sha256.Sum256([]byte(verifier))
		ref, err := e.oauth.Authorize(e.ctx, oauth.AuthRequest{ClientID: cl.ID, RedirectURI: redirect, ResponseType: "code", Scope: "patient/*.rs",
			State: "s", CodeChallenge: base64.RawURLEncoding.EncodeToString(sum[:]), CodeChallengeMethod: "S256", Audience: "https://localhost/fhir"})
		if err != nil {
			t.Fatal(err)
		}
		loc, err := e.oauth.Decide(e.ctx, ref, oauth.Person{AccountID: parent.id, Name: parent.name, TenantID: e.tenantA, PatientID: child,
			OnBehalf: true, Assurance: access.Hoog}, true)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(loc)
		tok, err := e.oauth.Exchange(e.ctx, &cl, u.Query().Get("code"), redirect, verifier, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tok.Patient != child {
			t.Fatalf("the token's patient context is %q, not the child", tok.Patient)
		}
		app := user{token: tok.AccessToken}
		if c := e.readPatient(app, child); c != http.StatusOK {
			t.Fatalf("the app reading the represented child: %d", c)
		}
		if resp, _ := e.do(app, "GET", "/fhir/Observation/"+obs, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("the app reading the child's observation: %d", resp.StatusCode)
		}
		if c := e.readPatient(app, own); c != http.StatusForbidden {
			t.Fatalf("the app reading the parent's own record under the child's consent: %d", c)
		}
		if resp, _ := e.do(app, "POST", "/fhir/Observation", `{"resourceType":"Observation"}`); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("an app writing: %d", resp.StatusCode)
		}
		evs, err := e.log.Query(e.ctx, audit.Filter{TenantID: e.tenantA, PatientID: child, Action: audit.ActionRead})
		if err != nil {
			t.Fatal(err)
		}
		logged := false
		for _, ev := range evs {
			logged = logged || (ev.UserID == parent.id && ev.OnBehalfOf == child && ev.PrincipalKind == "app" && ev.SourceApp == cl.ID &&
				ev.Outcome == audit.OutcomeSuccess && strings.HasPrefix(ev.Basis, "representation"))
		}
		if !logged {
			t.Fatalf("the app's read on the child's behalf is not in the log as such: %+v", evs)
		}
		e.expect(admin, "POST", "/api/v1/representations/"+rep["id"].(string)+"/revoke", `{"reason":"custody changed"}`, http.StatusNoContent)
		if c := e.readPatient(app, child); c != http.StatusForbidden {
			t.Fatalf("the app after the representation was revoked: %d", c)
		}
	})
}
