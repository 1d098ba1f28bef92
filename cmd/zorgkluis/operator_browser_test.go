package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// A platform operator requests access to the demo patient's personal data
// from their page; the organisation's security officer approves it from the
// queue; the operator sees it approved, with the time left.
// REQ: AZ-6
func TestBrowserOperatorRequest(t *testing.T) {
	t.Parallel()
	r, creds := startBrowserServer(t)
	b := newBrowser(t, r)
	op, sec := demoUser(t, creds, "platform.dekker"), demoUser(t, creds, "security.mulder")

	b.logon(op.Username, op.Password, op.TOTPSecret)
	if !strings.HasSuffix(b.location(), "/operator") {
		t.Fatalf("operator landed on %s", b.location())
	}
	if !strings.Contains(b.text("main"), "U hebt nog geen verzoeken") {
		t.Fatalf("operator's page: %q", b.text("main"))
	}
	b.fill("#op-patients", creds.PatientID)
	b.do(chromedp.Click(chromedp.CSS("#op-cat-demographics")))
	b.fill("#op-reason", "Herstel van een mislukte import, ticket 4711")
	b.do(chromedp.SetValue(chromedp.CSS("#op-minutes"), "60"))
	b.submit("#op-send")
	if own := b.text("#own-requests"); !strings.Contains(own, "wacht op besluit") || !strings.Contains(own, "Huisartsenpraktijk De Linde") || !strings.Contains(own, "persoonsgegevens") {
		t.Fatalf("filed request: %q", b.text("main"))
	}
	b.doc("operator-request.png")
	b.logoff()

	b.logon(sec.Username, sec.Password, sec.TOTPSecret)
	b.open("/security/operator-requests")
	if q := b.text("#operator-requests"); !strings.Contains(q, "ticket 4711") || !strings.Contains(q, "Dekker") {
		t.Fatalf("request not in the officer's queue: %q", q)
	}
	b.fill("#operator-requests input[name=note]", "Akkoord, incident 12")
	b.submit("#operator-requests button.approve")
	if !strings.Contains(b.text("#operator-requests"), "goedgekeurd") {
		t.Fatalf("approval not recorded: %q", b.text("main"))
	}
	b.logoff()

	b.logon(op.Username, op.Password, op.TOTPSecret)
	state, left := b.text("#own-requests .op-state"), b.text("#own-requests .op-left")
	if !strings.Contains(state, "goedgekeurd") || !strings.Contains(state, "incident 12") || !strings.Contains(left, "nog ") {
		t.Fatalf("operator's view after approval: %q / %q", state, left)
	}
	b.doc("operator-approved.png")
}
