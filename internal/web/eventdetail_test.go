package web

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

// detailFormKeys are the locale keys of the known security-event details.
func detailFormKeys() []string {
	keys, n := []string{"username"}, map[string]int{}
	for _, f := range detailForms {
		n[f.kind]++
		k := f.kind
		if n[f.kind] > 1 {
			k += "." + strconv.Itoa(n[f.kind])
		}
		keys = append(keys, k)
	}
	return keys
}

// REQ: LOG-9, LOG-5 — the officer's security-event page says the events'
// details in Dutch (English on request) with Dutch dates and times: a
// log-on attack with the typed user name, an emergency access until when
// and why, an operator request's patients, data and duration; the English
// producers' wording and RFC 3339 times do not show.
func TestSecurityEventDetailsInWords(t *testing.T) {
	e := newPageEnv(t)
	tenant := e.tenant("Praktijk A")
	officer := e.login(tenant, identity.KindAdmin, access.RoleSecurityOfficer)
	gp := e.login(tenant, identity.KindProfessional, access.RoleProfessional)
	op := e.login("", identity.KindOperator, access.RoleOperator)
	pid := e.registerPatient(gp, "Jan de Vries", "male", "1984-03-12", "123456782")
	em, err := e.dec.DeclareEmergency(e.ctx, gp.subj, pid, "Bewusteloos binnengebracht op de SEH")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.dec.RequestOperatorAccess(e.ctx, op.subj, access.OperatorRequest{TenantID: tenant, PatientIDs: []string{pid},
		Categories: []string{fhir.CategoryDemographics}, Reason: "herstel na mislukte import", Duration: 90 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	// authn's detail of a burst of failed log-ons, as it writes it (its
	// settings: 10 within 15 minutes).
	q := alert.NewQueue(e.db, e.clock, rand.Reader, nil)
	if _, err := q.Raise(e.ctx, e.db, alert.Entry{TenantID: tenant, Kind: "account-attack", AccountID: gp.subj.AccountID(),
		Detail: fmt.Sprintf("%d failed log-ons within %s", 10, 15*time.Minute) + " (user name professional-4)"}); err != nil {
		t.Fatal(err)
	}
	until := em.End.In(clock.Amsterdam()).Format("02-01-2006 15:04")
	for _, c := range []struct {
		lang string
		want []string
	}{
		{"", []string{"10 mislukte aanmeldingen binnen 15 min (gebruikersnaam professional-4)",
			"tot " + until + ": Bewusteloos binnengebracht op de SEH",
			"1 patiënt(en), gegevens persoonsgegevens, 1 u 30 min: herstel na mislukte import"}},
		{"en", []string{"10 failed log-ons within 15 min (user name professional-4)",
			"until " + until + ": Bewusteloos binnengebracht op de SEH",
			"1 patient(s), data "}},
	} {
		path := "/security/events"
		if c.lang != "" {
			path += "?lang=" + c.lang
		}
		resp, html := e.request(officer, path, nil)
		words := visibleWords(html)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		for _, w := range c.want {
			if !strings.Contains(words, w) {
				t.Errorf("%s does not say %q: %s", path, w, words)
			}
		}
		for _, raw := range []string{"15m0s", "1h30m0s", em.End.UTC().Format(time.RFC3339), "categories demographics"} {
			if strings.Contains(words, raw) {
				t.Errorf("%s shows the recorded %q", path, raw)
			}
		}
	}
}

// A detail in no known form, or a known form whose value does not parse,
// is shown as recorded; a quoted key name is unquoted.
func TestEventDetailFallsBack(t *testing.T) {
	e := newPageEnv(t)
	s := &server{d: Deps{Log: e.kit.Log}}
	for _, c := range []struct{ kind, detail, want string }{
		{"emergency-reviewed-justified", "terecht, zie dossier", "terecht, zie dossier"},
		{"emergency-access", "until yesterday: reason", "until yesterday: reason"},
		{"account-attack", "10 failed log-ons within a while", "10 failed log-ons within a while"},
		{"webauthn-sign-count", `security key "Sleutel \"blauw\"": signature counter 3 not above the stored 7; the key may be cloned (user name a.b)`,
			"beveiligingssleutel “Sleutel \"blauw\"”: tellerstand 3 niet hoger dan de opgeslagen 7; de sleutel is mogelijk gekopieerd (gebruikersnaam a.b)"},
		{"right-revoked", "role professional revoked in the access review", "rol zorgverlener ingetrokken bij de rechtenreview"},
		{"role-definition-proposed", "role praktijkondersteuner proposed by Dr. A", "rol praktijkondersteuner voorgesteld door Dr. A"},
	} {
		if got := s.eventDetail("nl", c.kind, c.detail); got != c.want {
			t.Errorf("eventDetail(%s, %q) = %q; want %q", c.kind, c.detail, got, c.want)
		}
	}
}
