package web

import (
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/zorgkluis/zorgkluis/internal/audit"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/onboard"
)

// The admin's accounts page invites a professional with their professional
// data and who verified them and how; the code is shown once, the secret
// goes by letter, the account holds no role and is pending; bad input is a
// clear message and creates nothing; a professional cannot invite.
//
// REQ: ID-2, ID-6, AZ-7
func TestAdminInvitesStaff(t *testing.T) {
	letters := t.TempDir()
	svc := new(onboard.Service) // filled in once the kit exists
	e := newPageEnv(t, func(d *Deps) { d.Onboard = svc })
	*svc = *onboard.New(onboard.Config{DB: e.db, IDs: e.ids, Authn: e.an, Audit: e.log, Clock: e.clock, LetterDir: letters, BaseURL: "https://zorg.example"})
	tenant := e.tenant("Praktijk")
	admin := e.login(tenant, identity.KindAdmin, access.RoleAppAdmin)
	if st, body := e.page(admin, "/admin/accounts", nil, false); st != 200 || !strings.Contains(body, `id="invite-form"`) {
		t.Fatalf("accounts page: %d", st)
	}
	form := func(big string) url.Values {
		return url.Values{"name": {"Dr. P. Jansen"}, "email": {"p@praktijk.example"}, "function": {"huisarts"}, "big": {big},
			"registration_method": {"3"}, "verified_by": {"A. de Vries, BIG-register"}, "deliver": {"letter"}}
	}
	// A wrong field is a 400 naming it, in Dutch by default, in English
	// on request, and creates nothing.
	if st, body := e.page(admin, "/admin/accounts/invite", form("123"), false); st != 400 || !strings.Contains(body, "BIG-nummer: 11 cijfers.") {
		t.Errorf("bad BIG: %d", st)
	}
	if st, body := e.page(admin, "/admin/accounts/invite?lang=en", form("123"), false); st != 400 || !strings.Contains(body, "BIG number: 11 digits.") {
		t.Errorf("bad BIG in English: %d", st)
	}
	bad := form("12345678901")
	bad.Set("registration_method", "9")
	if st, body := e.page(admin, "/admin/accounts/invite", bad, false); st != 400 || !strings.Contains(body, "Registratiewijze: kies 1 tot en met 4") {
		t.Errorf("bad registration method: %d", st)
	}
	if _, err := e.ids.AccountByUsername(e.ctx, "p@praktijk.example"); err == nil {
		t.Fatal("a refused invitation created an account")
	}
	st, body := e.page(admin, "/admin/accounts/invite", form("12345678901"), false)
	if st != 200 || !strings.Contains(body, `id="invited-code"`) || !strings.Contains(body, "https://zorg.example/activate?code=") {
		t.Fatalf("invite: %d %s", st, body)
	}
	acc, err := e.ids.AccountByUsername(e.ctx, "p@praktijk.example")
	if err != nil || !acc.Pending || acc.Kind != identity.KindProfessional || acc.RegistrationMethod != 3 || acc.VerifiedBy != "A. de Vries, BIG-register" {
		t.Fatalf("invited %+v %v", acc, err)
	}
	if roles, _ := e.ids.Roles(e.ctx, acc.ID); len(roles) != 0 {
		t.Errorf("invited with roles %v", roles)
	}
	files, _ := os.ReadDir(letters)
	if len(files) != 1 {
		t.Errorf("%d letters, want 1", len(files))
	}
	pro := e.login(tenant, identity.KindProfessional, access.RoleProfessional)
	if st, _ := e.page(pro, "/admin/accounts/invite", form("12345678901"), false); st == 200 {
		t.Error("a professional invited staff")
	}
}

// The activation page says so when the representation an invitation
// carries no longer holds (the child turned 16 before the parent
// activated): 400, in Dutch by default, and nothing is activated.
//
// REQ: AZ-4, ID-6
func TestActivationPageRepresentationEnded(t *testing.T) {
	letters := t.TempDir()
	svc := new(onboard.Service)
	e := newPageEnv(t, func(d *Deps) { d.Onboard = svc })
	*svc = *onboard.New(onboard.Config{DB: e.db, IDs: e.ids, Authn: e.an, Audit: e.log, Access: e.dec, Clock: e.clock, LetterDir: letters, BaseURL: "https://zorg.example"})
	tenant := e.tenant("Praktijk")
	admin := e.login(tenant, identity.KindAdmin, access.RoleAppAdmin)
	child, err := e.ids.CreatePatient(e.ctx, e.db, "p-kind", tenant, nil)
	if err != nil {
		t.Fatal(err)
	}
	birth := e.clock.Now().AddDate(-access.AdulthoodAge, 0, 1).Format(time.DateOnly) // 16 tomorrow
	rep, err := e.dec.CheckRepresentation(e.ctx, admin.subj, access.Representation{PatientID: child, Kind: access.RepresentParent, PatientBirthDate: birth})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := svc.CreateInvitation(e.ctx, audit.Event{TenantID: tenant, UserID: admin.subj.AccountID()}, onboard.Invite{TenantID: tenant,
		Kind: identity.KindPerson, Name: "Jan Bos", Email: "jan@example.nl", RegistrationMethod: 3, VerifiedBy: "geboorteakte", Deliver: onboard.DeliverLetter, Represents: &rep})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(inv.Letter)
	if err != nil {
		t.Fatal(err)
	}
	secret := regexp.MustCompile(`(?m)^    ([A-Z2-7-]+)$`).FindSubmatch(b)[1]
	enr, err := svc.StartActivation(e.ctx, inv.Code, string(secret), "paarse olifant danst op het ijs 7", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(26 * time.Hour)
	code, _ := totp.GenerateCode(enr.Secret, e.clock.Now())
	st, body := e.page(pageUser{}, "/activate/complete", url.Values{"code": {inv.Code}, "secret": {string(secret)}, "totp": {code}}, false)
	if st != 400 || !strings.Contains(body, "De vertegenwoordiging in deze uitnodiging geldt niet meer") {
		t.Errorf("activation after the 16th birthday: %d", st)
	}
	if acc, _ := e.ids.Account(e.ctx, inv.AccountID); acc.Active {
		t.Error("the account was activated")
	}
}
