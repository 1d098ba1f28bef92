package web

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/devices"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

var pairingCodeRE = regexp.MustCompile(`id="pairing-code">([^<]+)<`)

// newDevicePages is the page environment with the devices service on.
func newDevicePages(t *testing.T) (*pageEnv, *devices.Service) {
	e := newPageEnv(t)
	svc := devices.New(devices.Config{DB: e.db, Clock: e.clock, Rand: rand.Reader, Hasher: e.kit.Hasher, Audit: e.log,
		Alerts: alert.NewQueue(e.db, e.clock, rand.Reader, nil), Access: e.dec})
	hd, err := Routes(http.NewServeMux(), Deps{IDs: e.ids, Authn: e.an, Access: e.dec, Audit: e.log, Clock: e.clock,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), BaseURL: "https://zk.test", Devices: svc})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Close()
	e.srv = httptest.NewServer(hd)
	t.Cleanup(e.srv.Close)
	return e, svc
}

// "Mijn apparaten": a user pairs a device with the code and QR code shown
// once, sees it listed and unlinks it; a post without the CSRF token
// changes nothing; the page is there in English too.
//
// REQ: AUTH-7
func TestMyDevicesPage(t *testing.T) {
	e, svc := newDevicePages(t)
	ten := e.tenant("Praktijk")
	person := e.login(ten, identity.KindPerson, access.RolePerson)
	code, body := e.page(person, "/me/devices", nil, false)
	if code != http.StatusOK || !strings.Contains(body, "Mijn apparaten") || !strings.Contains(body, `href="/me/devices"`) {
		t.Fatalf("/me/devices: %d\n%s", code, body)
	}
	code, body = e.page(person, "/me/devices/pair", url.Values{}, false)
	if code != http.StatusOK || !strings.Contains(body, `src="data:image/png;base64,`) {
		t.Fatalf("pair: %d\n%s", code, body)
	}
	id := pairWith(t, svc, body)
	if _, body = e.page(person, "/me/devices", nil, false); !strings.Contains(body, "Telefoon van test") || !strings.Contains(body, `id="unlink-`+id+`"`) {
		t.Fatalf("the paired device is not listed:\n%s", body)
	}
	if code, _ = e.page(person, "/me/devices/unlink", url.Values{"device": {id}}, true); code != http.StatusForbidden {
		t.Fatalf("unlink without the CSRF token: %d", code)
	}
	if ds, _ := svc.Mine(e.ctx, person.subj); len(ds) != 1 || ds[0].Status != devices.StatusActive {
		t.Fatalf("after a refused post: %+v", ds)
	}
	code, body = e.page(person, "/me/devices/unlink", url.Values{"device": {id}}, false)
	if code != http.StatusOK || !strings.Contains(body, "Ontkoppeld; wacht op het wissen") {
		t.Fatalf("unlink: %d\n%s", code, body)
	}
	if ds, _ := svc.Mine(e.ctx, person.subj); len(ds) != 1 || ds[0].Status != devices.StatusUnlinked {
		t.Fatalf("after the unlink: %+v", ds)
	}
	if _, body = e.page(person, "/me/devices?lang=en", nil, false); !strings.Contains(body, "My devices") || !strings.Contains(body, "Unlinked; waiting for the wipe") {
		t.Fatalf("the English page:\n%s", body)
	}
}

// The admin's page lists the organisation's devices with their accounts
// and unlinks one without the device; another organisation's admin sees
// none of them, and a person cannot open the page.
//
// REQ: AUTH-7
func TestAdminDevicesPage(t *testing.T) {
	e, svc := newDevicePages(t)
	tenA, tenB := e.tenant("Praktijk A"), e.tenant("Ziekenhuis B")
	pro := e.login(tenA, identity.KindProfessional, access.RoleProfessional)
	admin := e.login(tenA, identity.KindAdmin, access.RoleAppAdmin)
	adminB := e.login(tenB, identity.KindAdmin, access.RoleAppAdmin)
	_, body := e.page(pro, "/me/devices/pair", url.Values{}, false)
	id := pairWith(t, svc, body)
	if _, body = e.page(admin, "/admin/accounts", nil, false); !strings.Contains(body, `href="/admin/accounts/devices"`) {
		t.Fatalf("no link to the devices on the accounts page:\n%s", body)
	}
	code, body := e.page(admin, "/admin/accounts/devices", nil, false)
	if code != http.StatusOK || !strings.Contains(body, "Telefoon van test") || !strings.Contains(body, pro.subj.Name()) {
		t.Fatalf("the admin's devices page: %d\n%s", code, body)
	}
	if _, body = e.page(adminB, "/admin/accounts/devices", nil, false); strings.Contains(body, id) {
		t.Fatal("another organisation's admin sees the device")
	}
	if code, _ = e.page(adminB, "/admin/accounts/devices/unlink", url.Values{"device": {id}}, false); code != http.StatusNotFound {
		t.Fatalf("another organisation's admin unlinking: %d", code)
	}
	if code, _ = e.page(pro, "/admin/accounts/devices", nil, false); code != http.StatusForbidden {
		t.Fatalf("a professional on the admin's page: %d", code)
	}
	code, body = e.page(admin, "/admin/accounts/devices/unlink", url.Values{"device": {id}}, false)
	if code != http.StatusOK || !strings.Contains(body, "Het apparaat is ontkoppeld") {
		t.Fatalf("the admin's unlink: %d\n%s", code, body)
	}
	if ds, _ := svc.Mine(e.ctx, pro.subj); len(ds) != 1 || ds[0].Status != devices.StatusUnlinked {
		t.Fatalf("after the admin's unlink: %+v", ds)
	}
}

// pairWith redeems the code shown on page with a new key, as the app does.
func pairWith(t *testing.T, svc *devices.Service, page string) string {
	t.Helper()
	m := pairingCodeRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no pairing code on the page:\n%s", page)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	p, err := svc.Pair(t.Context(), devices.PairRequest{Code: html.UnescapeString(m[1]), PublicSPKI: base64.StdEncoding.EncodeToString(der),
		PIN: "48213", Name: "Telefoon van test"})
	if err != nil {
		t.Fatalf("pair with the page's code: %v", err)
	}
	return p.DeviceID
}
