package main

import (
	"strings"
	"testing"
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
