package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// An application admin follows the rights overview's link to the roles
// page and proposes a role with its actions and data categories; they
// cannot approve it themselves; a second admin approves it, and the page
// shows it in force with who proposed and who approved it.
// REQ: AZ-2, AZ-7, AZ-9
func TestBrowserRoleProposal(t *testing.T) {
	t.Parallel()
	r, creds := startBrowserServer(t)
	b := newBrowser(t, r)
	a1, a2 := demoUser(t, creds, "beheer.smit"), demoUser(t, creds, "beheer.visser")

	b.logon(a1.Username, a1.Password, a1.TOTPSecret)
	b.submit("#roles-link")
	if !strings.HasSuffix(b.location(), "/admin/roles") {
		t.Fatalf("the rights overview's link led to %s", b.location())
	}
	b.fill("#role-name", "praktijkondersteuner")
	b.do(chromedp.SetValue(chromedp.CSS("#role-base"), "professional"))
	for _, box := range []string{"#role-act-read", "#role-act-search", "#role-act-create", "#role-cat-demographics", "#role-cat-clinical", "#role-cat-medication"} {
		b.do(chromedp.Click(chromedp.CSS(box)))
	}
	b.submit("#role-send")
	pending := b.text("#roles-pending")
	for _, want := range []string{"praktijkondersteuner", "inzien, zoeken, toevoegen", "medische gegevens", "medicatie", "beheer.smit"} {
		if !strings.Contains(pending, want) {
			t.Fatalf("proposal lacks %q: %q", want, pending)
		}
	}
	b.doc("admin-roles.png")
	b.submit("#roles-pending button.approve")
	if !b.has(".error") || !b.has("#roles-pending") {
		t.Fatalf("the proposer approved their own role: %q", b.text("main"))
	}
	b.logoff()

	b.logon(a2.Username, a2.Password, a2.TOTPSecret)
	b.open("/admin/roles")
	b.fill("#roles-pending input[name=note]", "Akkoord, zoals besproken in het MT")
	b.submit("#roles-pending button.approve")
	if b.has("#roles-pending") {
		t.Fatalf("proposal still pending: %q", b.text("main"))
	}
	roles := b.text("#roles")
	for _, want := range []string{"praktijkondersteuner", "beheer.smit", "beheer.visser", "Akkoord, zoals besproken"} {
		if !strings.Contains(roles, want) {
			t.Fatalf("approved role lacks %q: %q", want, roles)
		}
	}
	// The role can now be given to someone on the rights page.
	b.open("/admin/rights")
	if !b.has(`#req-role option[value="praktijkondersteuner"]`) {
		t.Fatalf("the approved role is not offered on the rights page")
	}
}
