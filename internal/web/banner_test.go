package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/nlid"
)

// registerPatient registers a patient with a record (the Patient resource)
// as professional u would, and returns its id.
func (e *pageEnv) registerPatient(u pageUser, name, gender, birthDate, bsn string) string {
	e.t.Helper()
	pid, err := e.ids.NewID("p-")
	if err != nil {
		e.t.Fatal(err)
	}
	g, err := e.dec.DecideRegistration(e.ctx, u.subj, pid)
	if err != nil {
		e.t.Fatal(err)
	}
	given, family, _ := strings.Cut(name, " ")
	body, err := json.Marshal(map[string]any{"resourceType": "Patient", "id": pid,
		"identifier": []any{map[string]any{"system": nlid.SystemBSN, "value": bsn}},
		"name":       []any{map[string]any{"family": family, "given": []string{given}, "text": name}},
		"gender":     gender, "birthDate": birthDate})
	if err != nil {
		e.t.Fatal(err)
	}
	idx, _ := testIndex{}.BlindIndex(e.ctx, u.subj.TenantID(), "bsn", bsn)
	if _, err := e.kit.Records.RegisterPatient(e.ctx, g, e.ids, idx, body); err != nil {
		e.t.Fatal(err)
	}
	return pid
}

// request is page with the response's cookies and extra cookies sent.
func (e *pageEnv) request(u pageUser, path string, form url.Values, cookies ...*http.Cookie) (*http.Response, string) {
	e.t.Helper()
	method, body := http.MethodGet, ""
	if form != nil {
		method = http.MethodPost
		form.Set("csrf", testCSRF)
		body = form.Encode()
	}
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.AddCookie(&http.Cookie{Name: cookieSession, Value: u.token})
	req.AddCookie(&http.Cookie{Name: cookieCSRF, Value: testCSRF})
	for _, c := range cookies {
		req.AddCookie(c)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (e *pageEnv) patientReads(u pageUser, pid string) int {
	e.t.Helper()
	evs, err := e.log.Query(e.ctx, audit.Filter{TenantID: u.subj.TenantID(), UserID: u.subj.AccountID()})
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		for _, r := range ev.Resources {
			if ev.Action == audit.ActionRead && ev.PatientID == pid && strings.HasPrefix(r, "Patient/"+pid) {
				n++
			}
		}
	}
	return n
}

// A birth date known only to the year or month shows as recorded, without
// an age it cannot give.
func TestBannerAge(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		birth         string
		has           bool
		years, months int
		infant        bool
		shown         string
	}{
		{"1984-03-12", true, 42, 512, false, "12-03-1984"},
		{"2026-12-04", true, 0, 0, true, "04-12-2026"}, // born tomorrow by the record: not negative
		{"2025-10-04", true, 1, 13, true, "04-10-2025"},
		{"1984-03", false, 0, 0, false, "03-1984"},
		{"1984", false, 0, 0, false, "1984"},
	} {
		b := newBanner(personal{Name: "Pien Bos", BirthDate: c.birth}, now, false)
		if b.HasAge != c.has || b.Years != c.years || b.Months != c.months || b.Infant != c.infant || b.BirthDate != c.shown || b.Gender != "unknown" {
			t.Errorf("%s: %+v", c.birth, b)
		}
	}
}

func title(html string) string {
	_, after, _ := strings.Cut(html, "<title>")
	t, _, _ := strings.Cut(after, "</title>")
	return t
}

// The professional's record view carries the patient banner on every
// section: name, birth date dd-mm-jjjj with age, sex in Dutch, the BSN
// masked but for its last 3 digits, the basis in words; the title has the
// initials only. "toon BSN" shows the BSN in full, and that read is
// decided and logged.
// REQ: AZ-3, LOG-1
func TestRecordPageBanner(t *testing.T) {
	e := newPageEnv(t)
	tenant := e.tenant("Praktijk A")
	gp := e.login(tenant, identity.KindProfessional, access.RoleProfessional)
	pid := e.registerPatient(gp, "Sanne de Vries", "female", "1984-03-12", "123456782")
	if _, err := e.dec.AddRelationship(e.ctx, access.Relationship{TenantID: tenant, ProfessionalID: gp.subj.AccountID(), PatientID: pid,
		Kind: "gp", Start: e.clock.Now().Add(-time.Hour), RecordedBy: "test"}); err != nil {
		t.Fatal(err)
	}
	years := monthsBetween(time.Date(1984, 3, 12, 0, 0, 0, 0, time.UTC), e.clock.Now()) / 12
	for _, section := range []string{"personal", "measurements", "allergies"} {
		code, html := e.page(gp, "/patients/"+pid+"?section="+section, nil, false)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", section, code)
		}
		_, bannerHTML, _ := strings.Cut(html, `id="patient-banner"`)
		bannerHTML, _, _ = strings.Cut(bannerHTML, "</section>")
		for _, want := range []string{"Sanne de Vries", "12-03-1984 (" + strconv.Itoa(years) + " jaar)", "vrouw", "••••••", "782", "behandelrelatie", `id="show-bsn"`} {
			if !strings.Contains(bannerHTML, want) {
				t.Errorf("%s: banner lacks %q:\n%s", section, want, bannerHTML)
			}
		}
		if strings.Contains(html, "123456782") {
			t.Errorf("%s: BSN shown in full without asking", section)
		}
		if tt := title(html); !strings.HasPrefix(tt, "S.d.V. – ") || strings.Contains(tt, "Sanne") || strings.Contains(tt, "782") {
			t.Errorf("%s: title %q", section, tt)
		}
	}
	before := e.patientReads(gp, pid)
	code, html := e.page(gp, "/patients/"+pid+"/bsn", url.Values{"section": {"measurements"}}, false)
	if code != http.StatusOK || !strings.Contains(html, `id="banner-bsn">123456782`) || !strings.Contains(html, `id="section-title">Metingen`) {
		t.Fatalf("toon BSN: %d %s", code, html)
	}
	if after := e.patientReads(gp, pid); after != before+1 {
		t.Fatalf("showing the BSN logged %d reads of the patient; want 1", after-before)
	}
	if code, _ := e.page(gp, "/patients/"+pid+"/bsn", url.Values{"section": {"measurements"}}, true); code != http.StatusForbidden {
		t.Fatalf("toon BSN without CSRF token: %d", code)
	}
	_, html = e.page(gp, "/patients/"+pid+"?lang=en", nil, false)
	if !strings.Contains(html, "female") || !strings.Contains(html, strconv.Itoa(years)+" years") || !strings.Contains(html, "care relationship") {
		t.Errorf("English banner: %s", html)
	}

	// Another professional, without a relationship, is refused: no banner.
	gp2 := e.login(tenant, identity.KindProfessional, access.RoleProfessional)
	if code, html := e.page(gp2, "/patients/"+pid, nil, false); code != http.StatusForbidden || strings.Contains(html, "Sanne") || strings.Contains(html, "patient-banner") {
		t.Fatalf("refused record: %d", code)
	}
	if code, html := e.page(gp2, "/patients/"+pid+"/bsn", url.Values{}, false); code != http.StatusForbidden || strings.Contains(html, "123456782") {
		t.Fatalf("toon BSN without a basis: %d", code)
	}
}

// Under emergency access the banner says so with the time left, kept by
// the declaring browser; another browser shows the longest duration.
// REQ: AZ-5
func TestRecordPageBannerEmergency(t *testing.T) {
	e := newPageEnv(t)
	tenant := e.tenant("Praktijk A")
	gp, er := e.login(tenant, identity.KindProfessional, access.RoleProfessional), e.login(tenant, identity.KindProfessional, access.RoleProfessional)
	pid := e.registerPatient(gp, "Kees Bos", "male", "1950-07-01", "111222333")
	resp, _ := e.request(er, "/patients/"+pid+"/emergency", url.Values{"reason": {"Bewusteloos binnengebracht op de SEH"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("declare: %d", resp.StatusCode)
	}
	var em *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == cookieEmergency+pid {
			em = c
		}
	}
	if em == nil || em.MaxAge != int(e.dec.EmergencyDuration()/time.Second) || !em.Secure || !em.HttpOnly {
		t.Fatalf("emergency end cookie: %+v", em)
	}
	e.clock.Advance(12 * time.Minute)
	_, html := e.request(er, "/patients/"+pid+"?section=measurements", nil, em)
	if !strings.Contains(html, `id="banner-basis">noodtoegang – nog 3 u 48 min`) || !strings.Contains(html, "Kees Bos") || !strings.Contains(html, "man") {
		t.Fatalf("emergency banner: %s", html)
	}
	_, html = e.request(er, "/patients/"+pid, nil)
	if !strings.Contains(html, "noodtoegang – ten hoogste 4 u na de melding") {
		t.Fatalf("emergency banner without the cookie: %s", html)
	}
	// The cookie of another account says nothing here.
	_, html = e.request(gp, "/patients/"+pid, nil, em)
	if strings.Contains(html, "noodtoegang") {
		t.Fatalf("emergency shown to a professional with a relationship")
	}
}

// A parent acting for a child sees whose record it is and by which
// representation on every section; the own record has no banner.
// REQ: AZ-4
func TestPersonBannerActingFor(t *testing.T) {
	e := newPageEnv(t)
	tenant := e.tenant("Praktijk A")
	gp := e.login(tenant, identity.KindProfessional, access.RoleProfessional)
	admin := e.login(tenant, identity.KindAdmin, access.RoleAppAdmin)
	parent := e.login(tenant, identity.KindPerson, access.RolePerson)
	birth := e.clock.Now().AddDate(0, -14, -3).Format(time.DateOnly)
	own := e.registerPatient(gp, "Jan Bos", "male", "1990-01-05", "111222333")
	child := e.registerPatient(gp, "Pien Bos", "female", birth, "123456782")
	if err := e.ids.LinkPerson(e.ctx, parent.subj.AccountID(), own); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dec.AddRepresentation(e.ctx, admin.subj, access.Representation{RepresentativeID: parent.subj.AccountID(), PatientID: child,
		Kind: access.RepresentParent, PatientBirthDate: birth}); err != nil {
		t.Fatal(err)
	}
	if _, html := e.page(parent, "/me", nil, false); strings.Contains(html, "patient-banner") || !strings.Contains(html, "Jan Bos") {
		t.Fatalf("own record: %s", html)
	}
	if code, _ := e.page(parent, "/me/actfor", url.Values{"patient": {child}}, false); code != http.StatusSeeOther {
		t.Fatalf("act for: %d", code)
	}
	for _, path := range []string{"/me", "/me/record?section=allergies"} {
		_, html := e.page(parent, path, nil, false)
		for _, want := range []string{`id="banner-acting">U bekijkt het dossier van Pien Bos, als ouder van minderjarige.`, "14 maanden", "vertegenwoordiging", "vrouw"} {
			if !strings.Contains(html, want) {
				t.Errorf("%s lacks %q", path, want)
			}
		}
		if tt := title(html); !strings.HasPrefix(tt, "P.B. – ") || strings.Contains(html, "123456782") {
			t.Errorf("%s: title %q, or BSN in full", path, tt)
		}
	}
	_, html := e.page(parent, "/me/record/bsn", url.Values{"section": {"allergies"}}, false)
	if !strings.Contains(html, "123456782") {
		t.Fatal("toon BSN for a representative")
	}
}
