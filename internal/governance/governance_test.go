package governance_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/governance"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

type world struct {
	ctx    context.Context
	clk    *clock.Fake
	kit    *testkit.Kit
	gov    *governance.Service
	queue  *alert.Queue
	tenant string
}

func newWorld(t *testing.T, db *store.DB) *world {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC))
	k := testkit.New(t, db, testkit.WithClock(clk))
	q := alert.NewQueue(db, clk, rand.Reader, nil)
	ten, err := k.IDs.CreateTenant(ctx, identity.Tenant{Name: "Huisartsen De Linde"})
	if err != nil {
		t.Fatal(err)
	}
	return &world{ctx: ctx, clk: clk, kit: k, queue: q, tenant: ten.ID,
		gov: governance.New(governance.Config{DB: db, Clock: clk, Rand: rand.Reader, Audit: k.Audit, Alerts: q, Access: k.Access, IDs: k.IDs})}
}

func (w *world) account(t *testing.T, kind, username string, role access.Role) string {
	acc, err := w.kit.IDs.CreateAccount(w.ctx, identity.Account{TenantID: w.tenant, Kind: kind, Username: username, DisplayName: username, RegistrationMethod: 3})
	if err != nil {
		t.Fatal(err)
	}
	if role != "" {
		if err := w.kit.IDs.GrantRole(w.ctx, acc.ID, string(role), "set-up"); err != nil {
			t.Fatal(err)
		}
	}
	return acc.ID
}

// A monthly access review lists every current right with its last use and
// flags those unused for 60 days; a reviewer never decides on their own
// rights; a revocation takes effect at once (through the approval, or the
// role itself); the campaign closes only when every line is decided, and
// its evidence is kept with the hash the signed log names. A tenant without
// a closed campaign for a month is reported overdue, once.
//
// REQ: GOV-2, AZ-8, LOG-9
func TestAccessReviewCampaign(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		ctx := w.ctx
		a1 := w.account(t, identity.KindAdmin, "beheer.een", access.RoleAppAdmin)
		a2 := w.account(t, identity.KindAdmin, "beheer.twee", access.RoleAppAdmin)
		doc := w.account(t, identity.KindProfessional, "dr.oud", "")
		nurse := w.account(t, identity.KindProfessional, "nooit.gebruikt", access.RoleAssistant)
		one, two := w.kit.LogOn(t, a1, "beheer.een"), w.kit.LogOn(t, a2, "beheer.twee")
		req, err := w.kit.Access.RequestRight(ctx, one.Subject, access.RightRequest{AccountID: doc, Role: access.RoleProfessional, Reason: "new GP"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.kit.Access.DecideRight(ctx, two.Subject, req.ID, true, ""); err != nil {
			t.Fatal(err)
		}
		w.kit.LogOn(t, doc, "dr.oud")
		w.clk.Advance(61 * 24 * time.Hour)
		one, two = w.kit.LogOn(t, a1, "beheer.een"), w.kit.LogOn(t, a2, "beheer.twee")

		if _, err := w.gov.OpenReview(ctx, w.kit.LogOn(t, w.account(t, identity.KindProfessional, "dr.x", access.RoleProfessional), "dr.x").Subject, ""); !errors.Is(err, governance.ErrForbidden) {
			t.Fatalf("a professional opened a review: %v", err)
		}
		rev, err := w.gov.OpenReview(ctx, one.Subject, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.gov.OpenReview(ctx, two.Subject, rev.Period); err == nil {
			t.Fatal("a second campaign for the same month")
		}
		line := map[string]governance.Line{}
		for _, l := range rev.Lines {
			line[l.AccountName] = l
		}
		if l := line["dr.oud"]; !l.Unused || l.RequestID != req.ID || l.LastUse == nil {
			t.Fatalf("the GP's right, used 61 days ago: %+v", l)
		}
		if l := line["nooit.gebruikt"]; !l.Unused || l.LastUse != nil {
			t.Fatalf("a right never used: %+v", l)
		}
		if l := line["beheer.een"]; l.Unused {
			t.Fatalf("a right used today flagged unused: %+v", l)
		}
		if err := w.gov.DecideLine(ctx, one.Subject, rev.ID, line["beheer.een"].N, "keep", ""); !errors.Is(err, governance.ErrOwnLine) {
			t.Fatalf("a reviewer kept their own right: %v", err)
		}
		if _, err := w.gov.CloseReview(ctx, one.Subject, rev.ID); err == nil {
			t.Fatal("closed with undecided lines")
		}
		for _, d := range []struct {
			by       access.Subject
			name, do string
		}{{one.Subject, "dr.oud", "revoke"}, {one.Subject, "nooit.gebruikt", "revoke"}, {two.Subject, "beheer.een", "keep"}, {one.Subject, "beheer.twee", "keep"}, {one.Subject, "dr.x", "keep"}} {
			if err := w.gov.DecideLine(ctx, d.by, rev.ID, line[d.name].N, d.do, "maandcontrole"); err != nil {
				t.Fatalf("%s %s: %v", d.do, d.name, err)
			}
		}
		// Revoked at once: the approval no longer counts, the role is gone.
		if ok, err := w.kit.Access.RoleCurrent(ctx, doc, access.RoleProfessional); err != nil || ok {
			t.Fatalf("the GP's revoked right still current: %v %v", ok, err)
		}
		if roles, _ := w.kit.IDs.Roles(ctx, nurse); len(roles) != 0 {
			t.Fatalf("the unused assistant role still held: %v", roles)
		}
		closed, err := w.gov.CloseReview(ctx, two.Subject, rev.ID)
		if err != nil {
			t.Fatal(err)
		}
		body, h, err := w.gov.Evidence(ctx, one.Subject, rev.ID)
		sum := sha256.Sum256(body)
		if err != nil || hex.EncodeToString(sum[:]) != h || h != closed.EvidenceHash || !strings.Contains(string(body), "maandcontrole") {
			t.Fatalf("the kept evidence does not match its hash: %v", err)
		}
		evs, err := w.kit.Audit.Query(ctx, audit.Filter{TenantID: w.tenant, UserID: a2})
		if err != nil {
			t.Fatal(err)
		}
		logged := false
		for _, e := range evs {
			logged = logged || strings.Contains(e.Query, "evidence sha256 "+h)
		}
		if !logged {
			t.Fatal("the closing is not in the log with the evidence hash")
		}

		// Overdue: this tenant closed one today; another, older than a
		// month, never did.
		other, err := w.kit.IDs.CreateTenant(ctx, identity.Tenant{Name: "Praktijk Zonder Review"})
		if err != nil {
			t.Fatal(err)
		}
		w.clk.Advance(32 * 24 * time.Hour)
		n, err := w.gov.WarnOverdueReviews(ctx)
		if err != nil || n != 2 {
			t.Fatalf("overdue warnings: %d %v; want both tenants (the first's campaign is now 32 days old)", n, err)
		}
		if n, _ := w.gov.WarnOverdueReviews(ctx); n != 0 {
			t.Fatalf("overdue warned twice in one month: %d", n)
		}
		events, err := w.queue.List(ctx, other.ID, time.Time{}, 10)
		if err != nil || len(events) != 1 || events[0].Kind != "access-review-overdue" {
			t.Fatalf("the other tenant's events: %+v %v", events, err)
		}
	})
}

// An incident's 48-hour clock runs from its discovery (the security event
// it was opened from); an alert is raised once when the deadline nears;
// past it unreported, the incident shows overdue; reported, it does not;
// a closed incident takes no more steps. Only the security officer keeps
// the register.
//
// REQ: GOV-4, LOG-9
func TestIncidentRegister(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		ctx := w.ctx
		off := w.kit.LogOn(t, w.account(t, identity.KindAdmin, "security.mulder", access.RoleSecurityOfficer), "security.mulder")
		adm := w.kit.LogOn(t, w.account(t, identity.KindAdmin, "beheer.een", access.RoleAppAdmin), "beheer.een")
		src, err := w.queue.Raise(ctx, db, alert.Entry{TenantID: w.tenant, Kind: "logon-burst", AccountID: "a-x", Detail: "many failures"})
		if err != nil {
			t.Fatal(err)
		}
		w.clk.Advance(2 * time.Hour)
		if _, err := w.gov.OpenIncident(ctx, adm.Subject, governance.NewIncident{Title: "x"}); !errors.Is(err, governance.ErrForbidden) {
			t.Fatalf("an admin opened an incident: %v", err)
		}
		in, err := w.gov.OpenIncident(ctx, off.Subject, governance.NewIncident{Title: "Aanval op aanmelden", SourceEvent: src.ID})
		if err != nil {
			t.Fatal(err)
		}
		if !in.Deadline.Equal(src.Time.Add(governance.ReportDeadline)) || in.Status != "open" || in.Overdue {
			t.Fatalf("incident %+v; want its clock from the security event", in)
		}
		if _, err := w.gov.OpenIncident(ctx, off.Subject, governance.NewIncident{Title: ""}); err == nil {
			t.Fatal("an incident without a title")
		}
		if n, err := w.gov.WarnDeadlines(ctx); err != nil || n != 0 {
			t.Fatalf("warned 46 h early: %d %v", n, err)
		}
		w.clk.Advance(36*time.Hour + time.Minute) // 38 h after discovery: under 12 h left
		if n, err := w.gov.WarnDeadlines(ctx); err != nil || n != 1 {
			t.Fatalf("deadline warnings: %d %v", n, err)
		}
		if n, _ := w.gov.WarnDeadlines(ctx); n != 0 {
			t.Fatal("warned twice")
		}
		w.clk.Advance(11 * time.Hour)
		list, err := w.gov.Incidents(ctx, adm.Subject)
		if err != nil || len(list) != 1 || !list[0].Overdue {
			t.Fatalf("past 48 h unreported: %+v %v", list, err)
		}
		in, err = w.gov.UpdateIncident(ctx, off.Subject, in.ID, governance.Update{ReportedTo: "Autoriteit Persoonsgegevens", Note: "melding gedaan", Evidence: "AP-2026-123"})
		if err != nil || in.Status != "reported" || in.Overdue || len(in.Notes) != 1 {
			t.Fatalf("reported: %+v %v", in, err)
		}
		if _, err := w.gov.UpdateIncident(ctx, off.Subject, in.ID, governance.Update{Close: true, Note: "maatregelen genomen"}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.gov.UpdateIncident(ctx, off.Subject, in.ID, governance.Update{Note: "nog iets"}); err == nil {
			t.Fatal("a step on a closed incident")
		}
	})
}

// The monthly admin-log review lists every use of admin, officer or
// operator rights in the month, and only those; a reviewer never marks
// their own admin actions (per line, nor through the report's "the rest is
// ok"), so the report closes only when another reviewer has marked them;
// the closed report is kept with the hash its closing log event names.
//
// REQ: LOG-7
func TestAdminLogReview(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		ctx := w.ctx
		a1 := w.account(t, identity.KindAdmin, "beheer.een", access.RoleAppAdmin)
		a2 := w.account(t, identity.KindAdmin, "beheer.twee", access.RoleAppAdmin)
		offID := w.account(t, identity.KindAdmin, "security.mulder", access.RoleSecurityOfficer)
		doc := w.account(t, identity.KindProfessional, "dr.linde", "")
		one, two := w.kit.LogOn(t, a1, "beheer.een"), w.kit.LogOn(t, a2, "beheer.twee")
		w.kit.LogOn(t, doc, "dr.linde")
		// October's admin actions: beheer.een opens the access review,
		// beheer.twee decides a line of it.
		rev, err := w.gov.OpenReview(ctx, one.Subject, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := w.gov.DecideLine(ctx, two.Subject, rev.ID, rev.Lines[0].N, "keep", ""); err != nil {
			t.Fatal(err)
		}
		w.clk.Advance(31 * 24 * time.Hour) // into November: October is reviewed
		off := w.kit.LogOn(t, offID, "security.mulder")
		one, two = w.kit.LogOn(t, a1, "beheer.een"), w.kit.LogOn(t, a2, "beheer.twee")

		if _, err := w.gov.OpenAdminLog(ctx, one.Subject, ""); !errors.Is(err, governance.ErrForbidden) {
			t.Fatalf("an admin opened the review of the admin log: %v", err)
		}
		rep, err := w.gov.OpenAdminLog(ctx, off.Subject, "")
		if err != nil {
			t.Fatal(err)
		}
		if rep.Period != "2026-10" {
			t.Fatalf("period %s, want the previous month", rep.Period)
		}
		// Its lines are the log's: giving them is a logged reading (LOG-3).
		var reads int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_events WHERE action = 'read' AND user_id = $1 AND body LIKE $2`,
			off.Subject.AccountID(), "%AdminLogReview/"+rep.ID+"%").Scan(&reads); err != nil || reads != 1 {
			t.Fatalf("the report's reading in the log: %d %v", reads, err)
		}
		var own, other []governance.AdminLogLine
		for _, l := range rep.Lines {
			switch {
			case l.Role != string(access.RoleAppAdmin) && l.Role != string(access.RoleSecurityOfficer) && l.Role != string(access.RoleOperator):
				t.Fatalf("a line not of an admin role: %+v", l)
			case l.ActorID == a1:
				own = append(own, l)
			case l.ActorID == a2:
				other = append(other, l)
			}
			if l.ActorID == doc {
				t.Fatalf("the professional's events are in the admin-log review: %+v", l)
			}
		}
		if len(own) == 0 || len(other) == 0 {
			t.Fatalf("both admins' actions belong in the report: %+v", rep.Lines)
		}
		if !slicesContain(own, "AccessReview/"+rev.ID) {
			t.Fatalf("the opening of the access review is not among beheer.een's lines: %+v", own)
		}

		// Never one's own line, nor through "the rest is ok".
		if err := w.gov.MarkAdminLogLine(ctx, one.Subject, rep.ID, own[0].N, "ok", ""); !errors.Is(err, governance.ErrOwnAction) {
			t.Fatalf("an admin reviewed their own admin action: %v", err)
		}
		if err := w.gov.MarkAdminLogLine(ctx, one.Subject, rep.ID, other[0].N, "unjustified", ""); err == nil {
			t.Fatal("a finding without its follow-up")
		}
		n, err := w.gov.MarkAdminLog(ctx, one.Subject, rep.ID, governance.ReportMark{Finding: "geen onterecht gebruik", RestOK: true})
		if err != nil || n != len(rep.Lines)-len(own) {
			t.Fatalf("rest ok marked %d lines (%v), want every line but the reviewer's own %d of %d", n, err, len(own), len(rep.Lines))
		}
		if _, err := w.gov.CloseAdminLog(ctx, off.Subject, rep.ID); err == nil {
			t.Fatal("closed while the admin's own actions are unreviewed")
		}
		for _, l := range own {
			if err := w.gov.MarkAdminLogLine(ctx, two.Subject, rep.ID, l.N, "question", "navragen bij beheer.een"); err != nil {
				t.Fatal(err)
			}
		}
		closed, err := w.gov.CloseAdminLog(ctx, off.Subject, rep.ID)
		if err != nil {
			t.Fatal(err)
		}
		body, h, err := w.gov.AdminLogEvidence(ctx, two.Subject, rep.ID)
		sum := sha256.Sum256(body)
		if err != nil || hex.EncodeToString(sum[:]) != h || h != closed.EvidenceHash || !strings.Contains(string(body), "navragen bij beheer.een") {
			t.Fatalf("the kept evidence does not match its hash: %v", err)
		}
		if err := w.gov.MarkAdminLogLine(ctx, two.Subject, rep.ID, own[0].N, "ok", ""); err == nil {
			t.Fatal("a line changed after closing")
		}
		_, last, _, ok, err := w.gov.LastClosed(ctx, w.tenant)
		if err != nil || !ok || last.Hash != h || last.Event == "" || last.Period != "2026-10" {
			t.Fatalf("last closed admin-log review: %+v %v %v", last, ok, err)
		}
		evs, err := w.kit.Audit.Query(ctx, audit.Filter{TenantID: w.tenant, UserID: offID})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range evs {
			found = found || (e.ID == last.Event && strings.Contains(e.Query, h))
		}
		if !found {
			t.Fatal("the closing event named by the report is not in the log with the hash")
		}
	})
}

func slicesContain(ls []governance.AdminLogLine, s string) bool {
	for _, l := range ls {
		if strings.Contains(l.What, s) {
			return true
		}
	}
	return false
}
