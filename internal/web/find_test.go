package web

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

// testIndex is a blind index for the tests: a hash per tenant.
type testIndex struct{}

func (testIndex) BlindIndex(_ context.Context, tenantID, kind, value string) ([]byte, error) {
	h := sha256.Sum256([]byte(tenantID + "\x00" + kind + "\x00" + value))
	return h[:], nil
}

// REQ: AZ-1, LOG-1 — finding a patient by BSN decides before it reveals
// whether the BSN is registered: an assistant without a relationship gets
// the same page for the registered patient's BSN as for a valid BSN nobody
// has; a professional with a relationship is sent to the record; one without
// gets the refusal with the emergency-access offer. Every lookup is in the
// access log when the handler answers, whether or not the browser follows a
// redirect. (Before, an existing BSN was redirected to for anyone, and only
// the record page, if followed, logged anything.)
func TestFindPatientDecidesFirst(t *testing.T) {
	e := newPageEnv(t, func(d *Deps) { d.Index = testIndex{} })
	tenant := e.tenant("Praktijk A")
	const bsn, unregistered = "123456782", "111222333"
	idx, _ := testIndex{}.BlindIndex(e.ctx, tenant, "bsn", bsn)
	pid, err := e.ids.NewID("p-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ids.CreatePatient(e.ctx, e.db, pid, tenant, idx); err != nil {
		t.Fatal(err)
	}
	gp := e.login(tenant, identity.KindProfessional, access.RoleProfessional)
	gp2 := e.login(tenant, identity.KindProfessional, access.RoleProfessional)
	assistant := e.login(tenant, identity.KindProfessional, access.RoleAssistant)
	if _, err := e.dec.AddRelationship(e.ctx, access.Relationship{TenantID: tenant, ProfessionalID: gp.subj.AccountID(), PatientID: pid,
		Kind: "gp", Start: e.clock.Now().Add(-time.Hour), RecordedBy: "test"}); err != nil {
		t.Fatal(err)
	}
	find := func(u pageUser, bsn string) (int, string) {
		return e.page(u, "/patients/find", url.Values{"bsn": {bsn}}, false)
	}
	logged := func(u pageUser) []audit.Event {
		evs, err := e.log.Query(e.ctx, audit.Filter{TenantID: tenant, UserID: u.subj.AccountID()})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}

	kc, kb := find(assistant, bsn)
	uc, ub := find(assistant, unregistered)
	if kc != uc || kb != ub || kc != http.StatusOK || strings.Contains(kb, pid) {
		t.Fatalf("assistant: registered BSN %d, unregistered %d; same page %v; names the patient %v", kc, uc, kb == ub, strings.Contains(kb, pid))
	}
	if evs := logged(assistant); len(evs) != 2 || evs[0].Outcome != audit.OutcomeDenied || evs[1].Outcome != audit.OutcomeDenied {
		t.Fatalf("assistant's lookups in the log: %+v", evs)
	}

	code, _ := find(gp, bsn)
	evs := logged(gp)
	if code != http.StatusSeeOther || len(evs) != 1 || evs[0].Action != audit.ActionSearch || evs[0].PatientID != pid || evs[0].Outcome != audit.OutcomeSuccess {
		t.Fatalf("professional with a relationship: %d, log %+v", code, evs)
	}

	code, body := find(gp2, bsn)
	if code != http.StatusForbidden || !strings.Contains(body, "/patients/"+pid+"/emergency") {
		t.Fatalf("professional without a relationship: %d %s", code, body)
	}
	if code, _ := find(gp2, unregistered); code != http.StatusOK {
		t.Fatalf("professional, unregistered BSN: %d", code)
	}
	if evs := logged(gp2); len(evs) != 2 || evs[0].Outcome != audit.OutcomeDenied || evs[1].Outcome != audit.OutcomeDenied {
		t.Fatalf("professional's refused lookups in the log: %+v", evs)
	}
}
