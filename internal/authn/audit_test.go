package authn

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/password"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// REQ: AUTH-4, AUTH-6
// Failed and successful log-ons reach the tamper-evident audit log as
// technical log-on events; the success carries the assurance level.
func TestLogonEventsInAuditLog(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		log := audit.New(db, f.clock, rand.Reader)
		ctx := context.Background()
		u := f.addUser(t, "audit.user", identity.KindProfessional, 3, true, string(access.RoleProfessional))
		f.svc.settings.Audit = log // after provisioning: its enrolment event has no source address
		if _, _, err := f.logon(t, u, "wrong password", "192.0.2.8"); err == nil {
			t.Fatal("wrong password logged on")
		}
		f.clock.Advance(f.svc.settings.ThrottleBase * 4)
		if _, _, err := f.logon(t, u, u.pw, "192.0.2.8"); err != nil {
			t.Fatal(err)
		}
		evs, err := log.Query(ctx, audit.Filter{TenantID: f.tenant, UserID: u.id, Action: audit.ActionLogon})
		if err != nil {
			t.Fatal(err)
		}
		var failed, success int
		for _, e := range evs {
			if e.Kind != audit.KindTechnical || e.SourceAddr != "192.0.2.8" {
				t.Errorf("event %+v", e)
			}
			switch {
			case e.Outcome == audit.OutcomeFailed && strings.HasPrefix(e.Reason, "failure"):
				failed++
			case e.Outcome == audit.OutcomeSuccess && strings.HasPrefix(e.Reason, "success"):
				success++
				if e.Assurance != access.Hoog.String() {
					t.Errorf("success without assurance: %+v", e)
				}
			}
		}
		if failed != 1 || success != 1 {
			t.Fatalf("audit log has %d failures and %d successes: %+v", failed, success, evs)
		}
	})
}
