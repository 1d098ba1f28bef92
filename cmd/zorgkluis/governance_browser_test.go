package main

import (
	"strings"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/demo"
)

// TestBrowserReviewCampaign: the monthly rights review in a browser, by two
// admins. The first opens the month's campaign and decides every line but
// their own, which the page does not let them decide; the second decides
// that one and closes the campaign, whose evidence hash the page shows.
//
// REQ: GOV-2
func TestBrowserReviewCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server and Chromium")
	}
	srv, creds := startBrowserServer(t)
	b := newBrowser(t, srv)
	smit, visser := demoUser(t, creds, "beheer.smit"), demoUser(t, creds, "beheer.visser")
	b.logon(smit.Username, smit.Password, smit.TOTPSecret)
	b.open("/governance/reviews")
	b.submit("#review-open")
	campaign := b.location()
	if !strings.Contains(campaign, "/governance/reviews/rev-") {
		t.Fatalf("after opening: %s", campaign)
	}
	lines := strings.Count(b.text("#review-lines tbody"), "\n") + 1
	if !strings.Contains(b.text("#review-lines"), "een ander beoordeelt dit") {
		t.Fatalf("the admin's own right is decidable: %q", b.text("#review-lines"))
	}
	for i := 0; i < lines+2 && b.has(`[id^="keep-"]`); i++ {
		b.submit(`[id^="keep-"]`)
	}
	if b.has("#review-close") || !strings.Contains(b.text("main"), "Nog 1 regels") {
		t.Fatalf("one line (the admin's own) should be left: %q", b.text("main"))
	}
	b.logoff()

	b.logon(visser.Username, visser.Password, visser.TOTPSecret)
	b.open(strings.TrimPrefix(campaign, b.base))
	if !b.has(`[id^="keep-"]`) {
		t.Fatalf("the second admin cannot decide the first's right: %q", b.text("main"))
	}
	b.fill(`[id^="note-"]`, "beheerder, nodig")
	b.submit(`[id^="keep-"]`)
	b.submit("#review-close")
	if ev := b.text("#review-evidence"); !strings.Contains(ev, "SHA-256") || len(ev) < 64 {
		t.Fatalf("no evidence after closing: %q", ev)
	}
	b.open("/governance/reviews")
	if !strings.Contains(b.text("#reviews"), "Afgesloten op") {
		t.Fatalf("the list does not show the closed review: %q", b.text("#reviews"))
	}
}

// TestBrowserComplianceAndAdminLog: the officer's compliance pages in a
// browser, each checked with axe-core: the controls register with its red
// and green rows, a control's page whose entry is saved, and the admin-log
// review of the current month, in which the officer's own reading of the
// log is a line the officer cannot mark; an admin marks it and closes the
// review, whose evidence hash the page shows.
//
// REQ: GOV-3, LOG-7
func TestBrowserComplianceAndAdminLog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server and Chromium")
	}
	srv, creds := startBrowserServer(t)
	b := newBrowser(t, srv)
	mulder, smit := demoUser(t, creds, "security.mulder"), demoUser(t, creds, "beheer.smit")
	b.logon(mulder.Username, mulder.Password, mulder.TOTPSecret)
	b.open("/governance/controls")
	if s := b.text("#controls-summary"); !strings.Contains(s, "groen") || !strings.Contains(s, "rood") {
		t.Fatalf("controls summary: %q", s)
	}
	b.open("/governance/controls/medmij/A.18.2.3")
	b.fill("#responsible", "CISO")
	b.fill("#audit_method", "greybox pentest door extern bureau")
	b.submit("#control-save")
	if !strings.Contains(b.text("main"), "Opgeslagen") || b.value("#responsible") != "CISO" {
		t.Fatalf("the saved control: %q", b.text("main"))
	}
	b.open("/governance/admin-log")
	b.eval(`(document.querySelector("#period").value = new Date().toISOString().slice(0, 7)) !== ""`)
	b.submit("#adminlog-open")
	report := b.location()
	if !strings.Contains(report, "/governance/admin-log/alr-") || !strings.Contains(b.text("#adminlog-lines"), "uw eigen handeling") {
		t.Fatalf("the officer's own reading should be a line they cannot mark: %s %q", report, b.text("main"))
	}
	b.logoff()

	// beheer.smit marks what is not his own (the demo's set-up made him
	// act as admin this month too); beheer.visser marks his, and closes.
	for _, u := range []demo.User{smit, demoUser(t, creds, "beheer.visser")} {
		b.logon(u.Username, u.Password, u.TOTPSecret)
		b.open(strings.TrimPrefix(report, b.base))
		for i := 0; i < 100 && b.has(`[id^="mark-"]`); i++ {
			b.fill(`[id^="follow-"]`, "maandcontrole")
			b.submit(`[id^="mark-"]`)
		}
		if b.has("#adminlog-close") {
			break
		}
		if !strings.Contains(b.text("#adminlog-lines"), "uw eigen handeling") {
			t.Fatalf("%s left lines unmarked that are not their own: %q", u.Username, b.text("main"))
		}
		b.logoff()
	}
	b.submit("#adminlog-close")
	if ev := b.text("#adminlog-evidence"); !strings.Contains(ev, "SHA-256") {
		t.Fatalf("no evidence after closing: %q", ev)
	}
}
