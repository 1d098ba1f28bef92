package router_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/devices"
	"github.com/zorgkluis/zorgkluis/internal/router"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// app is a mobile app as the server sees it: its own P-256 key and the
// device id it was given, speaking the protocol of docs/devices.md.
type app struct {
	e   *accessEnv
	key *ecdsa.PrivateKey
	id  string
}

func newApp(e *accessEnv) *app {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	return &app{e: e, key: k}
}

func (a *app) sign(label, value string) string {
	sum := sha256.Sum256([]byte(label + "\x00" + a.id + "\x00" + value))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, sum[:])
	if err != nil {
		a.e.t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(sig)
}

// post sends JSON without a session, as the device does, and returns the
// status and the decoded answer.
func (a *app) post(path string, body any) (int, map[string]any) {
	a.e.t.Helper()
	resp, b := a.e.do(user{}, "POST", path, js(body))
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// pair redeems a code with the app's key as a JWK and pin.
func (a *app) pair(code, pin string) {
	a.e.t.Helper()
	jwk := map[string]string{"kty": "EC", "crv": "P-256",
		"x": base64.RawURLEncoding.EncodeToString(a.key.PublicKey.X.FillBytes(make([]byte, 32))),
		"y": base64.RawURLEncoding.EncodeToString(a.key.PublicKey.Y.FillBytes(make([]byte, 32)))}
	st, m := a.post("/api/v1/devices/pair", map[string]any{"code": code, "public_key": jwk, "pin": pin, "name": "Telefoon"})
	if st != http.StatusCreated || m["device_id"] == nil || m["pin_idle_seconds"] != float64(900) {
		a.e.t.Fatalf("pair: %d %v", st, m)
	}
	a.id = m["device_id"].(string)
}

// logon asks a challenge, signs it (with pin when asked) and returns the
// token answer's status and body.
func (a *app) logon(pin string) (int, map[string]any) {
	a.e.t.Helper()
	st, c := a.post("/api/v1/devices/challenge", map[string]any{"device_id": a.id})
	if st != http.StatusOK {
		return st, c
	}
	req := map[string]any{"device_id": a.id, "challenge": c["challenge"], "signature": a.sign("zorgkluis device auth v1", c["challenge"].(string))}
	if c["pin_required"] == true {
		req["pin"] = pin
	}
	return a.post("/api/v1/devices/token", req)
}

func (a *app) token(pin string) user {
	a.e.t.Helper()
	st, m := a.logon(pin)
	if st != http.StatusOK || !strings.HasPrefix(m["access_token"].(string), "zkd_") {
		a.e.t.Fatalf("device token: %d %v", st, m)
	}
	return user{token: m["access_token"].(string)}
}

// wiped checks that a contact got the wipe instruction, acknowledges it
// and checks that the device is forgotten.
func (a *app) wiped(st int, m map[string]any) {
	a.e.t.Helper()
	if st != http.StatusGone || m["instruction"] != "wipe" || m["device_id"] != a.id {
		a.e.t.Fatalf("no wipe instruction: %d %v", st, m)
	}
	nonce := m["nonce"].(string)
	if st, m := a.post("/api/v1/devices/wipe-ack", map[string]any{"device_id": a.id, "nonce": nonce, "signature": a.sign("zorgkluis device auth v1", nonce)}); st != http.StatusBadRequest {
		a.e.t.Fatalf("an acknowledgement signed for another purpose: %d %v", st, m)
	}
	if st, m := a.post("/api/v1/devices/wipe-ack", map[string]any{"device_id": a.id, "nonce": nonce, "signature": a.sign("zorgkluis device wipe v1", nonce)}); st != http.StatusNoContent {
		a.e.t.Fatalf("wipe-ack: %d %v", st, m)
	}
	if st, _ := a.post("/api/v1/devices/challenge", map[string]any{"device_id": a.id}); st != http.StatusNotFound {
		a.e.t.Fatalf("the forgotten device's challenge: %d", st)
	}
}

func newDeviceEnv(t *testing.T, db *store.DB) (*accessEnv, *devices.Service) {
	e := newAccessEnv(t, db)
	svc := devices.New(devices.Config{DB: db, Clock: e.clock, Rand: rand.Reader, Hasher: e.kit.Hasher, Audit: e.log,
		Alerts: alert.NewQueue(db, e.clock, rand.Reader, nil), Access: e.dec})
	e.srv = serve(t, e.kit, func(d *router.Deps) { d.OAuth, d.Devices = e.oauth, svc })
	return e, svc
}

// A person pairs a phone over HTTP, as the app would with its own key: the
// phone reads the person's record through /fhir (logged as the person,
// through the device), is refused another person's record exactly as the
// person's own session is, and stops at once when the person unlinks it;
// its acknowledgement of the wipe is logged and it is forgotten. The
// management API does not take a device's token.
//
// REQ: AUTH-7, LOG-1
func TestDeviceOverHTTP(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e, _ := newDeviceEnv(t, db)
		ownA, obsA := e.patient(e.tenantA)
		ownB, _ := e.patient(e.tenantA)
		a := e.login(e.tenantA, access.RolePerson)
		b := e.login(e.tenantA, access.RolePerson)
		for _, l := range [][2]string{{a.id, ownA}, {b.id, ownB}} {
			if err := e.ids.LinkPerson(e.ctx, l[0], l[1]); err != nil {
				t.Fatal(err)
			}
		}
		code := e.expect(a, "POST", "/api/v1/devices/pairings", "", http.StatusCreated)
		if !strings.HasPrefix(code["uri"].(string), "zorgkluis-pair:?") {
			t.Fatalf("pairing code: %v", code)
		}
		phone := newApp(e)
		phone.pair(code["code"].(string), "48213")
		if st, m := newApp(e).post("/api/v1/devices/pair", map[string]any{"code": code["code"], "public_key_spki": "AAAA", "pin": "48213", "name": "x"}); st != http.StatusBadRequest || m["title"] == nil {
			t.Fatalf("a second redemption with a bad key: %d %v", st, m)
		}
		dev := phone.token("")

		if c := e.readPatient(dev, ownA); c != http.StatusOK {
			t.Fatalf("the phone reading its person's record: %d", c)
		}
		if resp, b := e.do(dev, "GET", "/fhir/Observation/"+obsA, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("the phone reading an observation: %d %s", resp.StatusCode, b)
		}
		evs, err := e.log.Query(e.ctx, audit.Filter{TenantID: e.tenantA, PatientID: ownA, Action: audit.ActionRead})
		if err != nil {
			t.Fatal(err)
		}
		logged := false
		for _, ev := range evs {
			logged = logged || (ev.UserID == a.id && ev.Device == phone.id && ev.PrincipalKind == "device" && ev.Outcome == audit.OutcomeSuccess)
		}
		if !logged {
			t.Fatalf("the phone's read is not in the log with the device: %+v", evs)
		}
		// Another person's record: refused for the phone as for A's session.
		if own, viaPhone := e.readPatient(a, ownB), e.readPatient(dev, ownB); own != http.StatusForbidden || viaPhone != own {
			t.Fatalf("B's record: A's session %d, A's phone %d", own, viaPhone)
		}
		denied, err := e.log.Query(e.ctx, audit.Filter{TenantID: e.tenantA, PatientID: ownB, UserID: a.id})
		if err != nil {
			t.Fatal(err)
		}
		deviceDenied := false
		for _, ev := range denied {
			deviceDenied = deviceDenied || (ev.Outcome == audit.OutcomeDenied && ev.Device == phone.id)
		}
		if !deviceDenied {
			t.Fatalf("the phone's refused read is not logged with the device: %+v", denied)
		}
		if resp, _ := e.do(dev, "GET", "/api/v1/devices", ""); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a device token on the management API: %d", resp.StatusCode)
		}
		if resp, _ := e.do(dev, "POST", "/api/v1/devices/pairings", ""); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a device made a pairing code: %d", resp.StatusCode)
		}
		list := e.expect(a, "GET", "/api/v1/devices", "", http.StatusOK)["devices"].([]any)
		if len(list) != 1 || list[0].(map[string]any)["id"] != phone.id {
			t.Fatalf("A's devices: %v", list)
		}
		e.expect(b, "POST", "/api/v1/devices/"+phone.id+"/unlink", "", http.StatusNotFound)

		e.expect(a, "POST", "/api/v1/devices/"+phone.id+"/unlink", "", http.StatusNoContent)
		resp, body := e.do(dev, "GET", "/fhir/Patient/"+ownA, "")
		var wipe map[string]any
		_ = json.Unmarshal(body, &wipe)
		phone.wiped(resp.StatusCode, wipe)
		acks, err := e.log.Query(e.ctx, audit.Filter{TenantID: e.tenantA, UserID: a.id, Action: audit.ActionDevice})
		if err != nil {
			t.Fatal(err)
		}
		acked := false
		for _, ev := range acks {
			acked = acked || (ev.Query == "wipe-ack" && ev.Outcome == audit.OutcomeSuccess && ev.Device == phone.id)
		}
		if !acked {
			t.Fatalf("the wipe's acknowledgement is not in the access log: %+v", acks)
		}
	})
}

// The admin unlinks a user's phone from the devices of the account; a
// wrong PIN is told with the attempts left; the PIN is asked after 15 idle
// minutes; deactivating the account makes its phones wipe (ID-5). Bad
// input is a 4xx problem.
//
// REQ: AUTH-7, ID-5
func TestDeviceUnlinkByAdminAndDeactivationOverHTTP(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e, _ := newDeviceEnv(t, db)
		own, _ := e.patient(e.tenantA)
		admin := e.login(e.tenantA, access.RoleAppAdmin)
		pro := e.login(e.tenantA, access.RoleProfessional)
		if _, err := e.dec.AddRelationship(e.ctx, access.Relationship{TenantID: e.tenantA, ProfessionalID: pro.id, PatientID: own, Kind: "gp",
			Start: e.clock.Now().Add(-time.Minute), RecordedBy: "test"}); err != nil {
			t.Fatal(err)
		}
		p1, p2 := newApp(e), newApp(e)
		p1.pair(e.expect(pro, "POST", "/api/v1/devices/pairings", "", http.StatusCreated)["code"].(string), "48213")
		p2.pair(e.expect(pro, "POST", "/api/v1/devices/pairings", "", http.StatusCreated)["code"].(string), "48213")
		t1 := p1.token("")
		list := e.expect(admin, "GET", "/api/v1/accounts/"+pro.id+"/devices", "", http.StatusOK)["devices"].([]any)
		if len(list) != 2 {
			t.Fatalf("the admin's list of the account's devices: %v", list)
		}
		e.expect(pro, "GET", "/api/v1/accounts/"+pro.id+"/devices", "", http.StatusForbidden)
		e.expect(admin, "POST", "/api/v1/accounts/"+admin.id+"/devices/"+p1.id+"/unlink", "", http.StatusNotFound)
		e.expect(admin, "POST", "/api/v1/accounts/"+pro.id+"/devices/"+p1.id+"/unlink", "", http.StatusNoContent)
		resp, body := e.do(t1, "GET", "/fhir/Patient/"+own, "")
		var wipe map[string]any
		_ = json.Unmarshal(body, &wipe)
		p1.wiped(resp.StatusCode, wipe)

		// Bad input: a clear problem, never a 500.
		for _, c := range []struct {
			path, body string
			code       int
		}{
			{"/api/v1/devices/pair", `{"code":`, http.StatusBadRequest},
			{"/api/v1/devices/pair", `{"code":"x","extra":1}`, http.StatusBadRequest},
			{"/api/v1/devices/pair", `{"code":"` + strings.Repeat("A", 20<<10) + `"}`, http.StatusRequestEntityTooLarge},
			{"/api/v1/devices/challenge", `{"device_id":"dev-unknown"}`, http.StatusNotFound},
			{"/api/v1/devices/token", `{"device_id":"` + p2.id + `","challenge":"nope","signature":"AA"}`, http.StatusUnauthorized},
			{"/api/v1/devices/wipe-ack", `{"device_id":"` + p2.id + `","nonce":"n","signature":"AA"}`, http.StatusConflict},
		} {
			resp, b := e.do(user{}, "POST", c.path, c.body)
			if resp.StatusCode != c.code || !strings.Contains(resp.Header.Get("Content-Type"), "problem+json") {
				t.Errorf("%s %.40s: %d %s", c.path, c.body, resp.StatusCode, b)
			}
		}

		e.clock.Advance(devices.PINIdle)
		if st, m := p2.logon("11223"); st != http.StatusUnauthorized || m["attempts_left"] != float64(devices.MaxPINFailures-1) {
			t.Fatalf("a wrong PIN: %d %v", st, m)
		}
		t2 := p2.token("48213")
		if c := e.readPatient(t2, own); c != http.StatusOK {
			t.Fatalf("the professional's phone after the PIN: %d", c)
		}
		if err := e.an.Deactivate(e.ctx, pro.id); err != nil {
			t.Fatal(err)
		}
		resp, body = e.do(t2, "GET", "/fhir/Patient/"+own, "")
		wipe = nil
		_ = json.Unmarshal(body, &wipe)
		if wipe["reason"] != "account-deactivated" {
			t.Fatalf("after the deactivation: %d %s", resp.StatusCode, body)
		}
		p2.wiped(resp.StatusCode, wipe)
	})
}
