package router_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

// fhirWorld is a running API over HTTPS with one organisation: a GP who
// registers patient P over FHIR and has a care relationship with it, a GP
// without one, an assistant with a relationship (who may see only
// demographic and administrative data), and P's own person account.
type fhirWorld struct {
	t        testing.TB
	db       *store.DB
	srv      *httptest.Server
	keys     *keys.Keyring
	ids      *identity.Registry
	audit    *audit.Log
	decider  *access.Decider
	tenantID string
	patient  string // P
	bsn      string // P's BSN

	gp, gp2, assistant, person string // bearer tokens
	gpID, gp2ID, personID      string
}

func newFHIRWorld(t testing.TB, db *store.DB) *fhirWorld {
	t.Helper()
	ctx := context.Background()
	k := testkit.New(t, db)
	w := &fhirWorld{t: t, db: db, keys: k.Keys, ids: k.IDs, audit: k.Audit, decider: k.Access}
	w.srv = serve(t, k, baseURL("https://zk.test"), bodyLimit(64<<10))
	ten, err := w.ids.CreateTenant(ctx, identity.Tenant{Name: "Praktijk Test"})
	if err != nil {
		t.Fatal(err)
	}
	w.tenantID = ten.ID
	logon := func(name, kind string, role access.Role) (string, string) {
		acc, err := w.ids.CreateAccount(ctx, identity.Account{TenantID: ten.ID, Kind: kind, Username: name, DisplayName: name, RegistrationMethod: 3})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.ids.GrantRole(ctx, acc.ID, string(role), "test"); err != nil {
			t.Fatal(err)
		}
		l := k.LogOn(t, acc.ID, name)
		if l.Session.Assurance != access.Hoog {
			t.Fatalf("log-on of %s: assurance %v", name, l.Session.Assurance)
		}
		return l.Token, acc.ID
	}
	w.gp, w.gpID = logon("gp", identity.KindProfessional, access.RoleProfessional)
	w.gp2, w.gp2ID = logon("gp2", identity.KindProfessional, access.RoleProfessional)
	var assistantID string
	w.assistant, assistantID = logon("assistant", identity.KindProfessional, access.RoleAssistant)
	w.person, w.personID = logon("person", identity.KindPerson, access.RolePerson)

	w.bsn = "123456782"
	w.patient = w.register(w.gp, w.bsn, "Zeldzaamheid", "1911-11-11")
	for _, who := range []string{w.gpID, assistantID} {
		if _, err := w.decider.AddRelationship(ctx, access.Relationship{TenantID: ten.ID, ProfessionalID: who, PatientID: w.patient,
			Kind: "gp", Start: time.Now().Add(-time.Hour), RecordedBy: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.ids.LinkPerson(ctx, w.personID, w.patient); err != nil {
		t.Fatal(err)
	}
	return w
}

// register creates a Patient over FHIR and returns its id.
func (w *fhirWorld) register(tok, bsn, family, birth string) string {
	w.t.Helper()
	body := `{"resourceType":"Patient","identifier":[{"system":"http://fhir.nl/fhir/NamingSystem/bsn","value":"` + bsn + `"}],` +
		`"name":[{"family":"` + family + `","given":["Testa"]}],"gender":"female","birthDate":"` + birth + `"}`
	resp, b := w.do("POST", "/fhir/Patient", tok, body)
	if resp.StatusCode != 201 {
		w.t.Fatalf("register patient: %d %s", resp.StatusCode, b)
	}
	var p struct{ ID string }
	json.Unmarshal(b, &p)
	return p.ID
}

// do sends a FHIR request; hdr are extra header name/value pairs.
func (w *fhirWorld) do(method, path, tok, body string, hdr ...string) (*http.Response, []byte) {
	w.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
		if len(body) > 64<<10 {
			// Sent without Content-Length, so the handler's own limit
			// answers (a declared oversize length is refused earlier by
			// server.LimitBody, as problem JSON).
			rd = io.MultiReader(rd)
		}
	}
	req, err := http.NewRequest(method, w.srv.URL+path, rd)
	if err != nil {
		w.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := w.srv.Client().Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// observation is an Observation of patient pid with a LOINC code and an
// effective date.
func observation(pid, code, date string, extra ...string) string {
	s := `{"resourceType":"Observation","status":"final",` +
		`"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],` +
		`"code":{"coding":[{"system":"http://loinc.org","code":"` + code + `"}]},` +
		`"subject":{"reference":"Patient/` + pid + `"},"effectiveDateTime":"` + date + `"`
	for _, e := range extra {
		s += "," + e
	}
	return s + "}"
}

// create posts a resource and returns its id.
func (w *fhirWorld) create(tok, typ, body string) string {
	w.t.Helper()
	resp, b := w.do("POST", "/fhir/"+typ, tok, body)
	if resp.StatusCode != 201 {
		w.t.Fatalf("create %s: %d %s", typ, resp.StatusCode, b)
	}
	var r struct{ ID string }
	json.Unmarshal(b, &r)
	return r.ID
}

type bundle struct {
	Type  string
	Total int
	Link  []struct{ Relation, URL string }
	Entry []struct {
		FullURL  string
		Resource json.RawMessage
		Request  *struct{ Method string }
	}
}

func parseBundle(t testing.TB, b []byte) bundle {
	t.Helper()
	var out bundle
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("bundle: %v: %s", err, b)
	}
	return out
}

// events counts access-log events.
func (w *fhirWorld) events(user, action, outcome string) int {
	w.t.Helper()
	var n int
	if err := w.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM audit_events WHERE user_id = $1 AND action = $2 AND outcome = $3`,
		user, action, outcome).Scan(&n); err != nil {
		w.t.Fatal(err)
	}
	return n
}

// isOutcome reports whether b is an OperationOutcome, optionally naming
// the element expr in an issue's expression.
func isOutcome(b []byte, expr string) bool {
	var oo struct {
		ResourceType string
		Issue        []struct{ Expression []string }
	}
	if json.Unmarshal(b, &oo) != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		return false
	}
	if expr == "" {
		return true
	}
	for _, is := range oo.Issue {
		for _, e := range is.Expression {
			if strings.Contains(e, expr) {
				return true
			}
		}
	}
	return false
}
