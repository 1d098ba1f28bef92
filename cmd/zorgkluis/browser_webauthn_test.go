package main

import (
	"strings"
	"testing"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// virtualKey gives the browser a virtual CTAP2 authenticator that holds
// resident keys (passkeys) and verifies its user, and answers every
// presence test itself.
func (b *browser) virtualKey() webauthn.AuthenticatorID {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		b.t.Fatalf("webauthn enable: %v", err)
	}
	res, err := chromedp.Call(b.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
			Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true,
			HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		b.t.Fatalf("add virtual authenticator: %v", err)
	}
	return res.AuthenticatorID
}

func (b *browser) keyCredentials(id webauthn.AuthenticatorID) []*webauthn.Credential {
	b.t.Helper()
	res, err := chromedp.Call(b.ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
	if err != nil {
		b.t.Fatalf("credentials of the virtual authenticator: %v", err)
	}
	return res.Credentials
}

// A person adds a security key (a passkey on a virtual authenticator) on
// the factors page and then logs on with password + key; the key's session
// reaches the assurance that health data needs, so the person sees their own
// record.
// REQ: AUTH-1, AUTH-2, AUTH-6
func TestBrowserPersonEnrolsWebAuthn(t *testing.T) {
	t.Parallel()
	r, creds := startBrowserServer(t)
	b := newBrowser(t, r) // https://localhost:PORT, so the relying party id is localhost
	key := b.virtualKey()
	p := demoUser(t, creds, "s.devries")

	b.logon(p.Username, p.Password, p.TOTPSecret)
	b.open("/me/factors")
	if !b.has("#webauthn-none") {
		t.Fatalf("factors page before enrolment: %q", b.text("main"))
	}
	b.fill("#webauthn-name", "Testsleutel")
	b.submit("#webauthn-add")
	if !b.has("#webauthn-list") || !strings.Contains(b.text("#webauthn-list"), "Testsleutel") {
		t.Fatalf("key not listed after enrolment: %q", b.text("main"))
	}
	if !strings.Contains(b.text("main"), "toegevoegd") {
		t.Fatalf("no confirmation: %q", b.text("main"))
	}
	cs := b.keyCredentials(key)
	if len(cs) != 1 || !cs[0].IsResidentCredential || cs[0].RpID != "localhost" || len(cs[0].UserHandle) != 32 {
		t.Fatalf("credential on the key: %+v", cs)
	}
	if strings.Contains(string(cs[0].UserHandle), p.Username) {
		t.Fatal("the user handle on the key carries the user name")
	}
	b.doc("factors-webauthn.png")
	b.logoff()

	// Log on with password + key.
	b.open("/logon")
	b.fill("#username", p.Username)
	b.fill("#password", p.Password)
	b.submit("#logon-next")
	if !b.has("#webauthn-logon") {
		t.Fatalf("the second step offers no key: %q", b.text("main"))
	}
	b.submit("#webauthn-logon")
	b.waitLoaded()
	if strings.Contains(b.location(), "/logon") {
		t.Fatalf("log-on with the key failed; at %s: %q", b.location(), b.text("main"))
	}
	if !b.has("#logon-notice") || !strings.Contains(b.text("#personal"), "Sanne de Vries") {
		t.Fatalf("after key log-on: %q", b.text("main"))
	}
	if cs := b.keyCredentials(key); len(cs) != 1 || cs[0].SignCount < 1 {
		t.Fatalf("the key was not used: %+v", cs)
	}
}
