package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

// REQ: AUTH-2 — the factors page names each authenticator app and key by
// the name its owner gave it, never by its id, which only the hidden
// fields of the remove and rename forms carry.
func TestFactorsNamedNotByID(t *testing.T) {
	html := renderPage(t, "factors", &factorsData{TOTP: []authn.TOTPApp{{ID: "totp-dff3a1", Label: "Telefoon werk"}, {ID: "totp-77b2c9", Label: "Authenticator-app 2"}},
		WebAuthn: true, Keys: []authn.WebAuthnCredential{{ID: "wa-5e1f", Name: "Blauwe sleutel", UserVerified: true}}})
	words := visibleWords(html)
	for _, want := range []string{"Telefoon werk", "Authenticator-app 2", "Blauwe sleutel", "Naam wijzigen"} {
		if !strings.Contains(words, want) {
			t.Fatalf("%q not on the page: %s", want, words)
		}
	}
	if strings.Contains(words, "totp-") || strings.Contains(words, "wa-5e1f") {
		t.Fatalf("a factor's id is shown: %s", words)
	}
	for _, form := range []string{"/me/factors/totp/remove", "/me/factors/totp/rename", "/me/factors/webauthn/rename"} {
		if !strings.Contains(html, `action="`+form+`"`) {
			t.Errorf("no form %s", form)
		}
	}
	if !strings.Contains(html, `type="hidden" name="id" value="totp-77b2c9"`) || !strings.Contains(html, `type="hidden" name="id" value="wa-5e1f"`) {
		t.Fatal("the forms lost the factors' ids")
	}
	if strings.Count(html, `value="totp-77b2c9"`) != 2 {
		t.Fatal("the id appears outside the rename and remove forms' hidden fields")
	}
}

// REQ: AUTH-2, LOG-3 — a person names an authenticator app when adding it
// and renames it beside the list; a name with control characters or too
// long is a 400 that adds or changes nothing; a post naming another
// account's factor is not found; a post without the CSRF token is refused;
// each rename is in the log with both names.
func TestFactorRenamePage(t *testing.T) {
	e := newPageEnv(t)
	tenant := e.tenant("Praktijk")
	u := e.login(tenant, identity.KindPerson, access.RolePerson)
	other := e.login(tenant, identity.KindPerson, access.RolePerson)
	apps := func(acc string) []authn.TOTPApp {
		a, err := e.an.TOTPApps(e.ctx, acc)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if code, html := e.page(u, "/me/factors", nil, false); code != http.StatusOK || !strings.Contains(visibleWords(html), "Authenticator-app 1") {
		t.Fatalf("factors page: %d %s", code, visibleWords(html))
	}
	e.clock.Advance(time.Second) // oldest first
	if code, html := e.page(u, "/me/factors/totp", url.Values{"label": {" Werktelefoon "}}, false); code != http.StatusOK || !strings.Contains(html, `id="totp-secret"`) ||
		!strings.Contains(visibleWords(html), "Werktelefoon") {
		t.Fatalf("add a named app: %d", code)
	}
	for _, bad := range []string{"met\nregeleinde", "bel\u0007", strings.Repeat("x", 65)} {
		code, html := e.page(u, "/me/factors/totp", url.Values{"label": {bad}}, false)
		if code != http.StatusBadRequest || strings.Contains(html, `id="totp-secret"`) || !strings.Contains(html, msg("nl", "factors.label.bad")) {
			t.Errorf("add with name %q: %d", bad, code)
		}
	}
	mine := apps(u.subj.AccountID())
	if len(mine) != 2 || mine[1].Label != "Werktelefoon" {
		t.Fatalf("apps %+v", mine)
	}
	if code, html := e.page(u, "/me/factors/totp/rename", url.Values{"id": {mine[0].ID}, "label": {"tab\there"}}, false); code != http.StatusBadRequest ||
		!strings.Contains(html, `aria-invalid="true"`) {
		t.Errorf("rename with a tab: %d", code)
	}
	if code, _ := e.page(other, "/me/factors/totp/rename", url.Values{"id": {mine[0].ID}, "label": {"Van mij"}}, false); code != http.StatusNotFound {
		t.Errorf("another account's rename: %d", code)
	}
	if code, _ := e.page(u, "/me/factors/totp/rename", url.Values{"id": {mine[0].ID}, "label": {"Zonder token"}}, true); code != http.StatusForbidden {
		t.Errorf("rename without CSRF: %d", code)
	}
	code, html := e.page(u, "/me/factors/totp/rename", url.Values{"id": {mine[0].ID}, "label": {"Oude telefoon"}}, false)
	if words := visibleWords(html); code != http.StatusOK || !strings.Contains(words, "Oude telefoon") || !strings.Contains(words, msg("nl", "factors.renamed")) || strings.Contains(words, mine[0].ID) {
		t.Fatalf("rename: %d %s", code, words)
	}
	if got := apps(u.subj.AccountID())[0].Label; got != "Oude telefoon" {
		t.Fatalf("after rename: %q", got)
	}
	var renamed int
	if err := e.db.QueryRowContext(e.ctx, `SELECT COUNT(*) FROM auth_events WHERE account_id = $1 AND outcome = 'factor-renamed' AND reason = $2`,
		u.subj.AccountID(), `renamed "Authenticator-app 1" to "Oude telefoon"`).Scan(&renamed); err != nil {
		t.Fatal(err)
	}
	if renamed != 1 {
		t.Fatalf("%d rename lines in the log", renamed)
	}
}

// REQ: LOG-4 — the person's log has its emergency column only when a line
// used emergency access.
func TestMeLogEmergencyColumnOnlyWithEmergency(t *testing.T) {
	plain := audit.PatientLine{Count: 1, Action: audit.ActionRead, Outcome: audit.OutcomeSuccess, Role: "professional", Basis: "care-relationship"}
	html := renderPage(t, "melog", &logData{Lines: []audit.PatientLine{plain}})
	if strings.Contains(html, ">Noodtoegang</th>") || strings.Contains(html, `data-label="Noodtoegang"`) {
		t.Fatal("emergency column without an emergency line")
	}
	em := plain
	em.Emergency, em.Basis = true, "emergency"
	html = renderPage(t, "melog", &logData{Lines: []audit.PatientLine{plain, em}})
	if !strings.Contains(html, ">Noodtoegang</th>") || strings.Count(html, `class="tag-emergency"`) != 1 {
		t.Fatal("emergency column or mark missing")
	}
}

// REQ: AZ-6, LOG-9 — the officer's security events name the account by its
// name, not its id, and an operator's refused reach for health data says
// the action and the refusal in Dutch.
func TestSecurityEventsInWords(t *testing.T) {
	e := newPageEnv(t)
	tenant := e.tenant("Praktijk A")
	officer := e.login(tenant, identity.KindAdmin, access.RoleSecurityOfficer)
	op := e.login("", identity.KindOperator, access.RoleOperator)
	if _, err := e.ids.CreatePatient(e.ctx, e.db, "p-1", tenant, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dec.Decide(e.ctx, op.subj, access.Request{PatientID: "p-1", Action: access.Read}); !access.IsDenied(err) {
		t.Fatalf("operator's read: %v; want a refusal", err)
	}
	code, html := e.page(officer, "/security/events", nil, false)
	words := visibleWords(html)
	if code != http.StatusOK || !strings.Contains(words, "Name operator-") || strings.Contains(words, op.subj.AccountID()) ||
		!strings.Contains(words, "ingezien: operators komen alleen bij gezondheidsgegevens via een goedgekeurd operatorverzoek") {
		t.Fatalf("security events: %d %s", code, words)
	}
}

// REQ: AZ-5, AZ-6 — the officer's emergency queue and operator requests name
// the patient (by the person account) instead of showing the id, and lead to
// the patient's lines in the log.
func TestOfficerQueuesNamePatients(t *testing.T) {
	e := newPageEnv(t)
	tenant := e.tenant("Praktijk A")
	officer := e.login(tenant, identity.KindAdmin, access.RoleSecurityOfficer)
	gp := e.login(tenant, identity.KindProfessional, access.RoleProfessional)
	op := e.login("", identity.KindOperator, access.RoleOperator)
	const pid = "p-sanne"
	if _, err := e.ids.CreatePatient(e.ctx, e.db, pid, tenant, nil); err != nil {
		t.Fatal(err)
	}
	sanne, err := e.ids.CreateAccount(e.ctx, identity.Account{TenantID: tenant, Kind: identity.KindPerson, Username: "s.devries", DisplayName: "Sanne de Vries", RegistrationMethod: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ids.LinkPerson(e.ctx, sanne.ID, pid); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dec.DeclareEmergency(e.ctx, gp.subj, pid, "Bewusteloos binnengebracht op de SEH"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dec.RequestOperatorAccess(e.ctx, op.subj, access.OperatorRequest{TenantID: tenant, PatientIDs: []string{pid},
		Categories: []string{"demographics"}, Reason: "herstel na mislukte import", Duration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/security/emergencies", "/security/operator-requests"} {
		code, html := e.page(officer, path, nil, false)
		words := visibleWords(html)
		if code != http.StatusOK || !strings.Contains(words, "Sanne de Vries") || strings.Contains(words, pid) || strings.Contains(words, op.subj.AccountID()) {
			t.Errorf("%s: %d %s", path, code, words)
		}
		if !strings.Contains(html, `href="/security/audit?search=1&amp;patient=`+pid+`"`) {
			t.Errorf("%s does not lead to the patient's lines", path)
		}
	}
}
