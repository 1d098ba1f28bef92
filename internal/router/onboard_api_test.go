package router_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/onboard"
	"github.com/zorgkluis/zorgkluis/internal/router"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

var letterSecret = regexp.MustCompile(`(?m)^    ([A-Z2-7-]+)$`)

func letterOf(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := letterSecret.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no secret in %s", path)
	}
	return string(m[1])
}

type onboardAPI struct {
	srv *httptest.Server
	clk *clock.Fake
	kit *testkit.Kit
}

func (o onboardAPI) post(t *testing.T, path, token string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	hdr := []string{"Content-Type", "application/json"}
	if token != "" {
		hdr = append(hdr, "Authorization", "Bearer "+token)
	}
	resp, out := call(t, o.srv, "POST", path, string(b), hdr...)
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	return resp.StatusCode, m
}

// activate runs the activation through the API and returns the TOTP secret.
func (o onboardAPI) activate(t *testing.T, code, secret, pw string) string {
	t.Helper()
	st, m := o.post(t, "/api/v1/activation", "", map[string]string{"code": code, "secret": secret, "password": pw})
	if st != 200 {
		t.Fatalf("activation: %d %v", st, m)
	}
	totpSecret := m["totp_secret"].(string)
	c, _ := totp.GenerateCode(totpSecret, o.clk.Now())
	if st, m := o.post(t, "/api/v1/activation/complete", "", map[string]string{"code": code, "secret": secret, "totp": c}); st != 200 || m["active"] != true {
		t.Fatalf("complete: %d %v", st, m)
	}
	return totpSecret
}

// logon logs on through the API with password and TOTP.
func (o onboardAPI) logon(t *testing.T, user, pw, totpSecret string) string {
	t.Helper()
	o.clk.Advance(31 * time.Second) // a fresh TOTP step
	_, m := o.post(t, "/api/v1/logon", "", map[string]string{"username": user, "password": pw})
	c, _ := totp.GenerateCode(totpSecret, o.clk.Now())
	st, m := o.post(t, "/api/v1/logon/totp", "", map[string]string{"attempt": fmt.Sprint(m["attempt"]), "code": c})
	if st != 200 {
		t.Fatalf("log on %s: %d %v", user, st, m)
	}
	return m["token"].(string)
}

// REQ: ID-2, ID-6, AUTH-1, AUTH-5, AUTH-6, AUTH-8, AZ-4, AZ-7
func TestOnboardingAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
		kit := testkit.New(t, db, testkit.WithClock(clk))
		letters := t.TempDir()
		svc := onboard.New(onboard.Config{DB: db, IDs: kit.IDs, Authn: kit.Authn, Audit: kit.Audit, Access: kit.Access, Clock: clk, LetterDir: letters, BaseURL: "https://localhost"})
		o := onboardAPI{srv: serve(t, kit, func(d *router.Deps) { d.Onboard = svc }), clk: clk, kit: kit}

		opAcc, err := kit.IDs.CreateAccount(ctx, identity.Account{Kind: identity.KindOperator, Username: "op", DisplayName: "Operator", RegistrationMethod: 3})
		if err != nil {
			t.Fatal(err)
		}
		if err := kit.IDs.GrantRole(ctx, opAcc.ID, string(access.RoleOperator), "set-up"); err != nil {
			t.Fatal(err)
		}
		op := kit.LogOn(t, opAcc.ID, "op").Token

		if st, _ := o.post(t, "/api/v1/tenants", "", map[string]string{"name": "X", "ura": "90000123"}); st != 401 {
			t.Errorf("without session: %d", st)
		}
		if st, m := o.post(t, "/api/v1/tenants", op, map[string]string{"name": "X", "ura": "123"}); st != 400 {
			t.Errorf("bad URA: %d %v", st, m)
		}
		st, m := o.post(t, "/api/v1/tenants", op, map[string]string{"name": "Praktijk De Eik", "ura": "90000123", "agb": "01000123"})
		if st != 201 {
			t.Fatalf("create tenant: %d %v", st, m)
		}
		tid := m["id"].(string)
		if st, m := o.post(t, "/api/v1/tenants", op, map[string]string{"name": "Ander", "ura": "90000123"}); st != 409 {
			t.Errorf("duplicate URA: %d %v", st, m)
		}
		st, m = o.post(t, "/api/v1/tenants/"+tid+"/admins", op, map[string]any{"name": "Anna de Vries", "email": "anna@eik.example",
			"registration_method": 3, "verified_by": "operator, passport seen", "deliver": "letter"})
		if st != 201 {
			t.Fatalf("invite admin: %d %v", st, m)
		}
		code, secret := m["code"].(string), letterOf(t, m["letter"].(string))

		// Bad activations: a guessed code, a weak password; one clear 4xx each.
		if st, m := o.post(t, "/api/v1/activation", "", map[string]string{"code": "AAAA-BBBB", "secret": secret, "password": "paarse olifant danst op het ijs 7"}); st != 400 {
			t.Errorf("guessed code: %d %v", st, m)
		}
		if st, m := o.post(t, "/api/v1/activation", "", map[string]string{"code": code, "secret": secret, "password": "welkom123"}); st != 422 {
			t.Errorf("weak password: %d %v", st, m)
		}
		if st, m := o.post(t, "/api/v1/activation", "", map[string]string{"code": code, "secret": secret, "password": "x", "extra": "y"}); st != 400 {
			t.Errorf("unknown field: %d %v", st, m)
		}
		const adminPW = "paarse olifant danst op het ijs 7"
		adminTOTP := o.activate(t, code, secret, adminPW)
		if st, m := o.post(t, "/api/v1/activation", "", map[string]string{"code": code, "secret": secret, "password": adminPW}); st != 400 {
			t.Errorf("reused code: %d %v", st, m)
		}
		admin := o.logon(t, "anna@eik.example", adminPW, adminTOTP)

		// The admin is no operator; the admin invites a professional of their tenant.
		if st, _ := o.post(t, "/api/v1/tenants", admin, map[string]string{"name": "Y", "ura": "90000124"}); st != 403 {
			t.Errorf("admin creates a tenant: %d", st)
		}
		if st, m := o.post(t, "/api/v1/accounts", admin, map[string]any{"name": "Dr. P. Jansen", "email": "p@eik.example", "registration_method": 3,
			"verified_by": "Anna de Vries, BIG-register checked", "deliver": "letter", "big": "123"}); st != 400 {
			t.Errorf("bad BIG: %d %v", st, m)
		}
		st, m = o.post(t, "/api/v1/accounts", admin, map[string]any{"name": "Dr. P. Jansen", "email": "p@eik.example", "registration_method": 3,
			"verified_by": "Anna de Vries, BIG-register checked", "deliver": "letter", "big": "12345678901", "function": "huisarts"})
		if st != 201 {
			t.Fatalf("invite professional: %d %v", st, m)
		}
		acc, err := kit.IDs.Account(ctx, m["account_id"].(string))
		if err != nil || acc.TenantID != tid || acc.Kind != identity.KindProfessional || acc.VerifiedBy == "" {
			t.Fatalf("professional %+v %v", acc, err)
		}
		if roles, _ := kit.IDs.Roles(ctx, acc.ID); len(roles) != 0 {
			t.Errorf("professional invited with roles %v; the first role needs approval (AZ-7)", roles)
		}
		const proPW = "groene kikker springt over de sloot 9"
		proTOTP := o.activate(t, m["code"].(string), letterOf(t, m["letter"].(string)), proPW)

		// The first role goes through four eyes (AZ-7): the single admin
		// requests, the security officer the operator invited approves.
		st, m = o.post(t, "/api/v1/tenants/"+tid+"/admins", op, map[string]any{"name": "Sam Veilig", "email": "so@eik.example",
			"registration_method": 3, "verified_by": "operator, passport seen", "deliver": "letter", "role": "security-officer"})
		if st != 201 {
			t.Fatalf("invite officer: %d %v", st, m)
		}
		const soPW = "blauwe reiger vangt een vis 3"
		officer := o.logon(t, "so@eik.example", soPW, o.activate(t, m["code"].(string), letterOf(t, m["letter"].(string)), soPW))
		st, m = o.post(t, "/api/v1/rights/requests", admin, map[string]any{"account_id": acc.ID, "role": "professional", "reason": "new GP, contract signed"})
		if st != 201 {
			t.Fatalf("right request: %d %v", st, m)
		}
		rr := m["id"].(string)
		if st, m := o.post(t, "/api/v1/rights/requests/"+rr+"/decision", admin, map[string]any{"approve": true}); st != 403 {
			t.Errorf("the requester approves: %d %v", st, m)
		}
		if st, m := o.post(t, "/api/v1/rights/requests/"+rr+"/decision", officer, map[string]any{"approve": true, "note": "checked"}); st != 200 {
			t.Fatalf("officer approves: %d %v", st, m)
		}
		pro := o.logon(t, "p@eik.example", proPW, proTOTP)
		resp, b := call(t, o.srv, "GET", "/api/v1/session", "", "Authorization", "Bearer "+pro)
		var sess struct{ Role, Assurance string }
		if err := json.Unmarshal(b, &sess); err != nil || resp.StatusCode != 200 || sess.Role != "professional" || sess.Assurance != "hoog" {
			t.Fatalf("professional's session: %d %s", resp.StatusCode, b)
		}

		// The professional registers a patient; the admin records the care
		// relationship; the professional hands the person an activation
		// code after checking their identity at the desk (AUTH-6, AZ-4).
		resp, b = call(t, o.srv, "POST", "/fhir/Patient", `{"resourceType":"Patient","name":[{"family":"Bos","given":["Eva"]}]}`,
			"Authorization", "Bearer "+pro, "Content-Type", "application/fhir+json")
		var pat struct{ ID string }
		if err := json.Unmarshal(b, &pat); err != nil || resp.StatusCode != 201 || pat.ID == "" {
			t.Fatalf("register patient: %d %s", resp.StatusCode, b)
		}
		person := map[string]any{"name": "Eva Bos", "email": "eva@example.nl", "birth_date": "1980-05-01", "registration_method": 3,
			"verified_by": "Dr. P. Jansen, ID card at the desk", "deliver": "letter"}
		if st, m := o.post(t, "/api/v1/patients/"+pat.ID+"/invitations", pro, person); st != 403 {
			t.Errorf("invitation without a care relationship: %d %v", st, m)
		}
		if st, m := o.post(t, "/api/v1/relationships", admin, map[string]any{"professional_id": acc.ID, "patient_id": pat.ID, "kind": "gp"}); st != 201 {
			t.Fatalf("relationship: %d %v", st, m)
		}
		st, m = o.post(t, "/api/v1/patients/"+pat.ID+"/invitations", pro, person)
		if st != 201 {
			t.Fatalf("person invitation: %d %v", st, m)
		}
		const evaPW = "de rode kater slaapt in de zon 5"
		evaTOTP := o.activate(t, m["code"].(string), letterOf(t, m["letter"].(string)), evaPW)
		eva := o.logon(t, "eva@example.nl", evaPW, evaTOTP)
		resp, b = call(t, o.srv, "GET", "/fhir/Patient/"+pat.ID, "", "Authorization", "Bearer "+eva)
		if resp.StatusCode != 200 {
			t.Fatalf("the person reads their own record: %d %s", resp.StatusCode, b)
		}
		// A representative is invited by the admin, without a record of
		// their own; the invitation carries the patient and the kind of
		// representation, checked now, recorded when the account becomes
		// active (AZ-4).
		rep := map[string]any{"name": "Jan Bos", "email": "jan@example.nl", "registration_method": 3,
			"verified_by": "Anna de Vries, court order seen", "deliver": "letter", "patient_id": pat.ID, "representation": "legal-representative"}
		if st, m := o.post(t, "/api/v1/representatives", pro, rep); st != 403 {
			t.Errorf("a professional invites a representative: %d %v", st, m)
		}
		for field, v := range map[string]any{"representation": "uncle", "patient_id": "p-nobody"} {
			bad := map[string]any{}
			for k, x := range rep {
				bad[k] = x
			}
			bad[field] = v
			if st, m := o.post(t, "/api/v1/representatives", admin, bad); st != 400 && st != 404 {
				t.Errorf("representative with a bad %s: %d %v", field, st, m)
			}
		}
		if _, err := kit.IDs.AccountByUsername(ctx, "jan@example.nl"); err == nil {
			t.Fatal("a refused representative's invitation created an account")
		}
		st, m = o.post(t, "/api/v1/representatives", admin, rep)
		if st != 201 {
			t.Fatalf("representative invitation: %d %v", st, m)
		}
		janID := m["account_id"].(string)
		if ok, _ := kit.Access.MayRepresent(ctx, janID, pat.ID); ok {
			t.Fatal("the representation holds before the account is active")
		}
		const janPW = "de wilde wind waait om het huis 8"
		o.activate(t, m["code"].(string), letterOf(t, m["letter"].(string)), janPW)
		if ok, err := kit.Access.MayRepresent(ctx, janID, pat.ID); !ok || err != nil {
			t.Fatalf("after activation the representative may not represent: %v", err)
		}
		resp, b = call(t, o.srv, "GET", "/api/v1/representations", "", "Authorization", "Bearer "+admin)
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"representative_id":"`+janID+`"`) || !strings.Contains(string(b), `"kind":"legal-representative"`) {
			t.Errorf("representations: %d %s", resp.StatusCode, b)
		}

		// Tenant isolation: a second organisation and its patient are out of
		// reach of this tenant's admin and professional.
		st, m = o.post(t, "/api/v1/tenants", op, map[string]string{"name": "Praktijk De Linde", "ura": "90000200"})
		if st != 201 {
			t.Fatalf("second tenant: %d %v", st, m)
		}
		other := m["id"].(string)
		otherPat, err := kit.IDs.CreatePatient(ctx, db, "p-linde", other, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, _ = call(t, o.srv, "GET", "/api/v1/tenants", "", "Authorization", "Bearer "+admin)
		if resp.StatusCode != 403 {
			t.Errorf("the admin lists tenants: %d", resp.StatusCode)
		}
		if st, _ := o.post(t, "/api/v1/tenants/"+other+"/deactivate", admin, map[string]any{}); st != 403 {
			t.Errorf("the admin deactivates another tenant: %d", st)
		}
		if st, _ := o.post(t, "/api/v1/tenants/"+other+"/admins", admin, map[string]any{"name": "X", "email": "x@linde.example",
			"registration_method": 3, "verified_by": "me", "deliver": "letter"}); st != 403 {
			t.Errorf("the admin invites into another tenant: %d", st)
		}
		if st, _ := o.post(t, "/api/v1/patients/"+otherPat+"/invitations", pro, person); st != 403 {
			t.Errorf("the professional hands a code for another tenant's patient: %d", st)
		}
		bad := map[string]any{}
		for k, x := range rep {
			bad[k] = x
		}
		bad["patient_id"], bad["email"] = otherPat, "kees@example.nl"
		if st, m := o.post(t, "/api/v1/representatives", admin, bad); st != 404 && st != 400 {
			t.Errorf("a representative for another tenant's patient: %d %v", st, m)
		}
		for _, u := range []string{"x@linde.example", "kees@example.nl"} {
			if _, err := kit.IDs.AccountByUsername(ctx, u); err == nil {
				t.Errorf("a refused invitation created %s", u)
			}
		}
		if ts, _ := svc.Tenants(ctx); len(ts) != 2 || !ts[0].Active || !ts[1].Active {
			t.Errorf("tenants after the refusals: %+v", ts)
		}
		// Bad bodies are 4xx: too large, not JSON, wrong types.
		if st, _ := o.post(t, "/api/v1/activation", "", map[string]any{"code": 12}); st != 400 {
			t.Errorf("code as a number: %d", st)
		}
		resp, _ = call(t, o.srv, "POST", "/api/v1/activation", `{"code":"`+strings.Repeat("A", 2<<20)+`"}`, "Content-Type", "application/json")
		if resp.StatusCode != 413 && resp.StatusCode != 400 {
			t.Errorf("a 2 MiB body: %d", resp.StatusCode)
		}
		resp, _ = call(t, o.srv, "POST", "/api/v1/accounts", `{"name":`, "Authorization", "Bearer "+admin, "Content-Type", "application/json")
		if resp.StatusCode != 400 {
			t.Errorf("broken JSON: %d", resp.StatusCode)
		}
	})
}

var (
	csrfField   = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	totpKeyHTML = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
)

// REQ: ID-6, AUTH-5
func TestActivationPage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
		kit := testkit.New(t, db, testkit.WithClock(clk))
		svc := onboard.New(onboard.Config{DB: db, IDs: kit.IDs, Authn: kit.Authn, Audit: kit.Audit, Clock: clk, LetterDir: t.TempDir(), BaseURL: "https://localhost"})
		srv := serve(t, kit, func(d *router.Deps) { d.Onboard = svc })
		tn, err := svc.CreateTenant(ctx, audit.Event{UserID: "os:test"}, "Praktijk", "90000777", "")
		if err != nil {
			t.Fatal(err)
		}
		inv, err := svc.CreateInvitation(ctx, audit.Event{UserID: "os:test"}, onboard.Invite{TenantID: tn.ID, Kind: identity.KindAdmin, Name: "Anna de Vries",
			Email: "anna@eik.example", RegistrationMethod: 3, VerifiedBy: "test", Deliver: onboard.DeliverLetter, Role: string(access.RoleAppAdmin)})
		if err != nil {
			t.Fatal(err)
		}
		secret := letterOf(t, inv.Letter)
		jar, _ := cookiejar.New(nil)
		c := srv.Client()
		c.Jar = jar
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		page := func(method, path string, form url.Values) (int, string) {
			t.Helper()
			var req *http.Request
			if form != nil {
				req, _ = http.NewRequest(method, srv.URL+path, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Origin", srv.URL)
			} else {
				req, _ = http.NewRequest(method, srv.URL+path, nil)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		st, body := page("GET", "/activate?code="+url.QueryEscape(inv.Code)+"&lang=en", nil)
		if st != 200 || !strings.Contains(body, "Activate your account") || !strings.Contains(body, inv.Code) {
			t.Fatalf("activation page: %d %s", st, body)
		}
		csrf := csrfField.FindStringSubmatch(body)[1]
		form := func(kv ...string) url.Values {
			v := url.Values{"csrf": {csrf}}
			for i := 0; i+1 < len(kv); i += 2 {
				v.Set(kv[i], kv[i+1])
			}
			return v
		}
		const pw = "paarse olifant danst op het ijs 7"
		if st, body := page("POST", "/activate", form("code", "WRONG-CODE", "secret", secret, "password", pw, "repeat", pw)); st != 400 || !strings.Contains(body, "not valid") {
			t.Errorf("guessed code: %d", st)
		}
		if st, _ := page("POST", "/activate", form("code", inv.Code, "secret", secret, "password", "welkom01", "repeat", "welkom01")); st != 422 {
			t.Errorf("weak password: %d", st)
		}
		st, body = page("POST", "/activate", form("code", inv.Code, "secret", secret, "password", pw, "repeat", pw))
		m := totpKeyHTML.FindStringSubmatch(body)
		if st != 200 || m == nil || !strings.Contains(body, `src="data:image/png;base64,`) {
			t.Fatalf("enrolment step: %d %s", st, body)
		}
		if st, _ := page("POST", "/activate/complete", form("code", inv.Code, "secret", secret, "totp", "000000")); st != 400 {
			t.Errorf("wrong TOTP: %d", st)
		}
		code, _ := totp.GenerateCode(m[1], clk.Now())
		if st, body := page("POST", "/activate/complete", form("code", inv.Code, "secret", secret, "totp", code)); st != 200 || !strings.Contains(body, "Your account is active") {
			t.Fatalf("complete: %d %s", st, body)
		}
		if st, _ := page("POST", "/activate", form("code", inv.Code, "secret", secret, "password", pw, "repeat", pw)); st != 400 {
			t.Errorf("reused code: %d", st)
		}
		// Dutch by default.
		c.Jar, _ = cookiejar.New(nil)
		if _, body := page("GET", "/activate", nil); !strings.Contains(body, "Account activeren") {
			t.Error("the page is not Dutch by default")
		}
	})
}
