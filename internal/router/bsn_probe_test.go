package router_test

import (
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/nlid"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// REQ: AZ-1, LOG-1 — a Patient create does not reveal whether a BSN is
// registered to a subject who may not register patients: the patient's own
// person account and an assistant get the same status and body for the
// registered patient's BSN as for a valid BSN nobody has, and both attempts
// are in the access log as refused. (Before, the registered BSN was
// answered 409 before the decision, and nothing was logged.)
func TestPatientCreateIsNoBSNProbe(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newFHIRWorld(t, db)
		const unregistered = "111222333"
		if !nlid.ValidBSN(unregistered) || unregistered == w.bsn {
			t.Fatal("the test needs a second valid BSN")
		}
		patient := func(bsn string) string {
			return `{"resourceType":"Patient","identifier":[{"system":"http://fhir.nl/fhir/NamingSystem/bsn","value":"` + bsn + `"}],` +
				`"name":[{"family":"Proef","given":["Testa"]}],"birthDate":"1990-01-01"}`
		}
		for _, who := range []struct{ name, tok string }{{"person", w.person}, {"assistant", w.assistant}} {
			known, kb := w.do("POST", "/fhir/Patient", who.tok, patient(w.bsn))
			unknown, ub := w.do("POST", "/fhir/Patient", who.tok, patient(unregistered))
			kb, ub = requestRE.ReplaceAll(kb, nil), requestRE.ReplaceAll(ub, nil) // the request id differs
			if known.StatusCode != unknown.StatusCode || string(kb) != string(ub) || known.StatusCode != 403 {
				t.Fatalf("%s: registered BSN %d %s, unregistered %d %s", who.name, known.StatusCode, kb, unknown.StatusCode, ub)
			}
		}
		// Both attempts of each are logged as refused registrations.
		for _, who := range []struct{ name, id string }{{"person", w.personID}, {"assistant", ""}} {
			f := audit.Filter{TenantID: w.tenantID, UserID: who.id, Action: audit.ActionCreate}
			if who.id == "" {
				a, err := w.ids.AccountByUsername(t.Context(), "assistant")
				if err != nil {
					t.Fatal(err)
				}
				f.UserID = a.ID
			}
			evs, err := w.audit.Query(t.Context(), f)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 2 || evs[0].Outcome != audit.OutcomeDenied || evs[1].Outcome != audit.OutcomeDenied {
				t.Fatalf("%s: refused attempts in the log: %+v", who.name, evs)
			}
		}
		// A subject allowed to register still learns of the duplicate.
		if resp, b := w.do("POST", "/fhir/Patient", w.gp2, patient(w.bsn)); resp.StatusCode != 409 || !isOutcome(b, "Patient.identifier") {
			t.Fatalf("duplicate for a professional: %d %s", resp.StatusCode, b)
		}
	})
}

// REQ: LOG-1 — a Patient search by BSN is logged whether the BSN is
// registered or not: a subject who may not see the patient gets the same
// empty bundle for both, and both lookups are in the access log as refused.
// (Before, a BSN nobody has was answered without a decision and left no
// trace.)
func TestPatientSearchByBSNIsLogged(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newFHIRWorld(t, db)
		const unregistered = "111222333"
		search := func(bsn string) string {
			return "/fhir/Patient?identifier=http://fhir.nl/fhir/NamingSystem/bsn|" + bsn
		}
		// gp2 is a professional without a relationship with the patient.
		known, kb := w.do("GET", search(w.bsn), w.gp2, "")
		unknown, ub := w.do("GET", search(unregistered), w.gp2, "")
		if known.StatusCode != 200 || unknown.StatusCode != 200 || parseBundle(t, kb).Total != 0 || parseBundle(t, ub).Total != 0 {
			t.Fatalf("registered BSN %d %s, unregistered %d %s", known.StatusCode, kb, unknown.StatusCode, ub)
		}
		evs, err := w.audit.Query(t.Context(), audit.Filter{TenantID: w.tenantID, UserID: w.gp2ID, Action: audit.ActionSearch})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 2 || evs[0].Outcome != audit.OutcomeDenied || evs[1].Outcome != audit.OutcomeDenied {
			t.Fatalf("BSN lookups in the log: %+v", evs)
		}
	})
}
