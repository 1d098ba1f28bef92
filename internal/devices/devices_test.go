package devices_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/devices"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// A pairing code works once and for five minutes; it is stored only as its
// hash; the device then acts as the account that made the code.
//
// REQ: AUTH-7
func TestPairingCodeOnceAndExpiry(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		code, err := f.svc.NewPairing(f.ctx, f.person, "https://zk.test")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(code.Code, "ZKP-") || !strings.Contains(code.URI, "server=https%3A%2F%2Fzk.test") || code.Expires.Sub(f.clk.Now()) != devices.PairingTTL {
			t.Fatalf("pairing code %+v", code)
		}
		var stored []byte
		if err := db.QueryRowContext(f.ctx, `SELECT hash FROM devices_pairings`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(stored, []byte(code.Code[4:8])) || len(stored) != sha256.Size {
			t.Fatal("the pairing code is stored as itself, not as its hash")
		}
		p := newPhone(t)
		req := devices.PairRequest{Code: strings.ToLower(code.Code), PublicSPKI: p.spki(), PIN: pin, Name: "iPhone van Sanne"}
		got, err := f.svc.Pair(f.ctx, req)
		if err != nil {
			t.Fatalf("redeem (lower case): %v", err)
		}
		if _, err := f.svc.Pair(f.ctx, req); asError(t, err).Status != http.StatusBadRequest {
			t.Fatalf("the code redeemed twice: %v", err)
		}
		p.id = got.DeviceID
		mine, err := f.svc.Mine(f.ctx, f.person)
		if err != nil || len(mine) != 1 || mine[0].ID != got.DeviceID || mine[0].Status != devices.StatusActive || mine[0].Name != "iPhone van Sanne" {
			t.Fatalf("Sanne's devices: %+v %v", mine, err)
		}

		late, err := f.svc.NewPairing(f.ctx, f.person, "https://zk.test")
		if err != nil {
			t.Fatal(err)
		}
		f.clk.Advance(devices.PairingTTL)
		if _, err := f.svc.Pair(f.ctx, devices.PairRequest{Code: late.Code, PublicSPKI: newPhone(t).spki(), PIN: pin, Name: "x"}); asError(t, err).Detail != asError(t, errOf(f.svc.Pair(f.ctx, req))).Detail {
			t.Fatalf("an expired code is not refused like a used one: %v", err)
		}
		if _, err := f.svc.Pair(f.ctx, devices.PairRequest{Code: "ZKP-AAAA", PublicSPKI: p.spki(), PIN: pin, Name: "x"}); asError(t, err).Status != http.StatusBadRequest {
			t.Fatalf("an unknown code: %v", err)
		}
		if steps := f.steps(got.DeviceID); !slices.Equal(steps, []string{"pair success"}) {
			t.Fatalf("the pairing's log: %v", steps)
		}
		// A day after, the sweep removes the spent codes; the device stays.
		f.clk.Advance(25 * time.Hour)
		if err := f.svc.Sweep(f.ctx); err != nil {
			t.Fatal(err)
		}
		var codes int
		if err := db.QueryRowContext(f.ctx, `SELECT COUNT(*) FROM devices_pairings`).Scan(&codes); err != nil || codes != 0 {
			t.Fatalf("pairing codes after the sweep: %d %v", codes, err)
		}
		if mine, _ := f.svc.Mine(f.ctx, f.person); len(mine) != 1 {
			t.Fatalf("the sweep removed a device: %+v", mine)
		}
		// A device's own subject cannot make a pairing code.
		dev := access.NewSubject(access.SubjectSpec{AccountID: f.person.AccountID(), TenantID: f.tenant, Role: access.RolePerson, Kind: access.KindDevice, Assurance: access.Hoog})
		if _, err := f.svc.NewPairing(f.ctx, dev, "https://zk.test"); asError(t, err).Status != http.StatusForbidden {
			t.Fatalf("a device made a pairing code: %v", err)
		}
	})
}

func errOf[T any](_ T, err error) error { return err }

// Keys come as a JWK or as SPKI; signatures as DER or r||s. Anything else
// is a clear refusal, never a device.
//
// REQ: AUTH-7
func TestPairingKeyFormats(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		p := newPhone(t)
		jwk, _ := json.Marshal(map[string]string{"kty": "EC", "crv": "P-256",
			"x": base64.RawURLEncoding.EncodeToString(p.key.PublicKey.X.FillBytes(make([]byte, 32))),
			"y": base64.RawURLEncoding.EncodeToString(p.key.PublicKey.Y.FillBytes(make([]byte, 32)))})
		code, _ := f.svc.NewPairing(f.ctx, f.person, "https://zk.test")
		got, err := f.svc.Pair(f.ctx, devices.PairRequest{Code: code.Code, PublicKey: jwk, PIN: pin, Name: "Android"})
		if err != nil {
			t.Fatalf("pair with a JWK: %v", err)
		}
		p.id = got.DeviceID
		// r||s, as JOSE writes ES256 signatures.
		c, err := f.svc.Challenge(f.ctx, p.id)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(devices.SignedMessage(true, p.id, c.Challenge))
		r, s, _ := ecdsa.Sign(rand.Reader, p.key, sum[:])
		raw := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
		if _, err := f.svc.Authenticate(f.ctx, devices.AuthRequest{DeviceID: p.id, Challenge: c.Challenge, Signature: base64.StdEncoding.EncodeToString(raw)}); err != nil {
			t.Fatalf("an r||s signature: %v", err)
		}
		// A wipe signature is not an authentication signature.
		c, _ = f.svc.Challenge(f.ctx, p.id)
		if _, err := f.svc.Authenticate(f.ctx, devices.AuthRequest{DeviceID: p.id, Challenge: c.Challenge, Signature: p.sign(false, c.Challenge)}); asError(t, err).Status != http.StatusUnauthorized {
			t.Fatalf("a signature for another purpose was taken: %v", err)
		}
		p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		withD, _ := json.Marshal(map[string]string{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"})
		offCurve, _ := json.Marshal(map[string]string{"kty": "EC", "crv": "P-256", "x": base64.RawURLEncoding.EncodeToString(make([]byte, 32)),
			"y": base64.RawURLEncoding.EncodeToString(make([]byte, 32))})
		der384 := (&phone{key: p384}).spki()
		for name, req := range map[string]devices.PairRequest{
			"P-384":        {PublicSPKI: der384},
			"private JWK":  {PublicKey: withD},
			"off curve":    {PublicKey: offCurve},
			"no key":       {},
			"garbage SPKI": {PublicSPKI: "!!!"},
			"short PIN":    {PublicSPKI: p.spki(), PIN: "1234"},
			"run PIN":      {PublicSPKI: p.spki(), PIN: "123456"},
			"letters PIN":  {PublicSPKI: p.spki(), PIN: "12a45"},
			"no name":      {PublicSPKI: p.spki(), PIN: pin, Name: " "},
		} {
			code, _ := f.svc.NewPairing(f.ctx, f.person, "https://zk.test")
			req.Code = code.Code
			if req.PIN == "" {
				req.PIN = pin
			}
			if req.Name == "" {
				req.Name = "x"
			}
			if _, err := f.svc.Pair(f.ctx, req); asError(t, err).Status != http.StatusBadRequest {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
}

// The PIN is asked again after 15 minutes without activity, verified on the
// server; activity before then keeps the device going without it.
//
// REQ: AUTH-7
func TestPINAfterFifteenIdleMinutes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		p := f.pair(f.person)
		c, err := f.svc.Challenge(f.ctx, p.id)
		if err != nil || c.PINRequired {
			t.Fatalf("right after pairing (the PIN was just chosen): %+v %v", c, err)
		}
		tok := f.mustToken(p, "")
		f.clk.Advance(4 * time.Minute)
		if a, err := f.svc.Lookup(f.ctx, tok); err != nil || a.AccountID != f.person.AccountID() || a.Role != access.RolePerson || a.Assurance != access.Hoog || a.DeviceID != p.id {
			t.Fatalf("the token after 4 minutes: %+v %v", a, err)
		}
		f.clk.Advance(devices.TokenTTL) // 9 minutes: the token expired, the device was active 5 minutes ago
		if _, err := f.svc.Lookup(f.ctx, tok); asError(t, err).Status != http.StatusUnauthorized {
			t.Fatalf("an expired token: %v", err)
		}
		tok = f.mustToken(p, "") // signature alone: not idle for 15 minutes
		f.clk.Advance(devices.PINIdle)
		if _, err := f.svc.Lookup(f.ctx, tok); err == nil {
			t.Fatal("a token of an idle device still works")
		}
		c, err = f.svc.Challenge(f.ctx, p.id)
		if err != nil || !c.PINRequired {
			t.Fatalf("after 15 idle minutes the PIN is not required: %+v %v", c, err)
		}
		if _, err := f.svc.Authenticate(f.ctx, devices.AuthRequest{DeviceID: p.id, Challenge: c.Challenge, Signature: p.sign(true, c.Challenge)}); asError(t, err).Title != "PIN required" {
			t.Fatalf("no PIN after 15 idle minutes: %v", err)
		}
		tok = f.mustToken(p, pin)
		if _, err := f.svc.Lookup(f.ctx, tok); err != nil {
			t.Fatalf("the token after the PIN: %v", err)
		}
		// A challenge works once.
		c, _ = f.svc.Challenge(f.ctx, p.id)
		req := devices.AuthRequest{DeviceID: p.id, Challenge: c.Challenge, Signature: p.sign(true, c.Challenge)}
		if _, err := f.svc.Authenticate(f.ctx, req); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Authenticate(f.ctx, req); asError(t, err).Status != http.StatusUnauthorized {
			t.Fatalf("a challenge used twice: %v", err)
		}
		steps := f.steps(p.id)
		if !slices.Contains(steps, "authenticate signature+pin success") || !slices.Contains(steps, "authenticate signature success") || !slices.Contains(steps, "authenticate failed") {
			t.Fatalf("the authentications' log: %v", steps)
		}
	})
}

// Five wrong PINs in a row lock the device: its tokens stop, it gets no
// more tokens, and the security officer's queue has the event.
//
// REQ: AUTH-7, LOG-9
func TestPINAttemptsLockDevice(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		p := f.pair(f.person)
		f.clk.Advance(devices.PINIdle)
		for i := 1; i < devices.MaxPINFailures; i++ {
			_, err := f.token(p, "99881")
			if e := asError(t, err); e.AttemptsLeft != devices.MaxPINFailures-i {
				t.Fatalf("wrong PIN %d: %+v", i, e)
			}
		}
		// A right PIN now resets the count...
		f.mustToken(p, pin)
		f.clk.Advance(devices.PINIdle)
		for i := 1; i < devices.MaxPINFailures; i++ {
			if _, err := f.token(p, "99881"); asError(t, err).AttemptsLeft != devices.MaxPINFailures-i {
				t.Fatalf("after the reset, wrong PIN %d: %v", i, err)
			}
		}
		_, err := f.token(p, "99881")
		if e := asError(t, err); e.Status != http.StatusForbidden || e.Title != "Device locked" {
			t.Fatalf("the fifth wrong PIN: %+v", e)
		}
		if _, err := f.token(p, pin); asError(t, err).Title != "Device locked" {
			t.Fatalf("the right PIN on a locked device: %v", err)
		}
		evs, err := f.queue.List(f.ctx, f.tenant, time.Time{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].Kind != "device-locked" || evs[0].Ref != p.id || evs[0].AccountID != f.person.AccountID() {
			t.Fatalf("security events: %+v", evs)
		}
		steps := f.steps(p.id)
		n := 0
		for _, s := range steps {
			if s == "pin-failed failed" {
				n++
			}
		}
		if n != 2*devices.MaxPINFailures-1 || !slices.Contains(steps, "locked success") {
			t.Fatalf("the log of the wrong PINs: %v", steps)
		}
		if mine, _ := f.svc.Mine(f.ctx, f.person); len(mine) != 1 || mine[0].Status != devices.StatusLocked {
			t.Fatalf("the locked device as its user sees it: %+v", mine)
		}
	})
}

// The lock revokes every token the device holds, in its transaction
// (they have expired by then in practice: the PIN is due only after 15
// idle minutes, the token lives 5; the revocation does not rely on that).
//
// REQ: AUTH-7
func TestLockRevokesTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		p := f.pair(f.person)
		tok := f.mustToken(p, "")
		f.clk.Advance(devices.PINIdle)
		for i := 0; i < devices.MaxPINFailures; i++ {
			_, _ = f.token(p, "99881")
		}
		if _, err := f.svc.Lookup(f.ctx, tok); err == nil {
			t.Fatal("a token of a locked device still works")
		}
		var revoked int
		if err := db.QueryRowContext(f.ctx, `SELECT COUNT(*) FROM devices_tokens WHERE device_id = $1 AND revoked_at IS NOT NULL`, p.id).Scan(&revoked); err != nil || revoked != 1 {
			t.Fatalf("revoked tokens: %d %v", revoked, err)
		}
	})
}

// The user unlinks a device without having it: its token stops at once,
// its next contact is a wipe instruction, its signed acknowledgement is
// logged and the device is forgotten.
//
// REQ: AUTH-7
func TestUnlinkByUser(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		p := f.pair(f.person)
		keep := f.pair(f.person)
		tok := f.mustToken(p, "")
		other := f.account(f.tenant, "jan", "person", access.RolePerson)
		if err := f.svc.Unlink(f.ctx, other, p.id); !errors.Is(err, devices.ErrNotFound) {
			t.Fatalf("another person unlinked Sanne's device: %v", err)
		}
		if err := f.svc.Unlink(f.ctx, f.person, p.id); err != nil {
			t.Fatal(err)
		}
		w := asWipe(t, errOf(f.svc.Lookup(f.ctx, tok)))
		if w.Instruction != "wipe" || w.DeviceID != p.id || w.Reason != "unlinked" || w.Nonce == "" {
			t.Fatalf("wipe instruction on the token's use: %+v", w)
		}
		w = asWipe(t, errOf(f.svc.Challenge(f.ctx, p.id)))
		if err := f.svc.AcknowledgeWipe(f.ctx, devices.WipeAck{DeviceID: p.id, Nonce: w.Nonce, Signature: keep.sign(false, w.Nonce)}); asError(t, err).Status != http.StatusBadRequest {
			t.Fatalf("an acknowledgement signed by another key: %v", err)
		}
		if err := f.svc.AcknowledgeWipe(f.ctx, devices.WipeAck{DeviceID: p.id, Nonce: w.Nonce, Signature: p.sign(true, w.Nonce)}); asError(t, err).Status != http.StatusBadRequest {
			t.Fatalf("an authentication signature as acknowledgement: %v", err)
		}
		if err := f.svc.AcknowledgeWipe(f.ctx, devices.WipeAck{DeviceID: p.id, Nonce: w.Nonce, Signature: p.sign(false, w.Nonce)}); err != nil {
			t.Fatalf("acknowledge: %v", err)
		}
		steps := f.steps(p.id)
		for _, want := range []string{"unlink success", "wipe-instruction success", "wipe-ack success", "wipe-ack failed"} {
			if !slices.Contains(steps, want) {
				t.Fatalf("the unlink's log %v lacks %q", steps, want)
			}
		}
		if _, err := f.svc.Challenge(f.ctx, p.id); !errors.Is(err, devices.ErrNotFound) {
			t.Fatalf("the forgotten device: %v", err)
		}
		for _, table := range []string{"devices_tokens", "devices_challenges"} {
			var n int
			if err := db.QueryRowContext(f.ctx, `SELECT COUNT(*) FROM `+table+` WHERE device_id = $1`, p.id).Scan(&n); err != nil || n != 0 {
				t.Fatalf("%s keeps %d rows of the forgotten device (%v)", table, n, err)
			}
		}
		if mine, _ := f.svc.Mine(f.ctx, f.person); len(mine) != 1 || mine[0].ID != keep.id {
			t.Fatalf("Sanne's devices after the wipe: %+v", mine)
		}
		if err := f.svc.AcknowledgeWipe(f.ctx, devices.WipeAck{DeviceID: keep.id, Nonce: "x", Signature: keep.sign(false, "x")}); asError(t, err).Status != http.StatusConflict {
			t.Fatalf("an acknowledgement of a linked device: %v", err)
		}
	})
}

// A tenant's application admin unlinks a user's device; another tenant's
// admin cannot, nor can an admin of the tenant without a current role.
//
// REQ: AUTH-7
func TestUnlinkByAdmin(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		p := f.pair(f.person)
		tok := f.mustToken(p, "")
		ten2, err := f.ids.CreateTenant(f.ctx, identity.Tenant{Name: "Ziekenhuis B"})
		if err != nil {
			t.Fatal(err)
		}
		stranger := f.account(ten2.ID, "beheer-b", "admin", access.RoleAppAdmin)
		if err := f.svc.Unlink(f.ctx, stranger, p.id); !errors.Is(err, devices.ErrNotFound) {
			t.Fatalf("another organisation's admin: %v", err)
		}
		if _, err := f.svc.OfTenant(f.ctx, f.person); err == nil {
			t.Fatal("a person listed the tenant's devices")
		}
		list, err := f.svc.OfAccount(f.ctx, f.admin, f.person.AccountID())
		if err != nil || len(list) != 1 || list[0].ID != p.id || list[0].Username != "sanne" {
			t.Fatalf("the admin's list of Sanne's devices: %+v %v", list, err)
		}
		if list, _ := f.svc.OfAccount(f.ctx, stranger, f.person.AccountID()); len(list) != 0 {
			t.Fatalf("another organisation's admin sees %+v", list)
		}
		if err := f.svc.Unlink(f.ctx, f.admin, p.id); err != nil {
			t.Fatal(err)
		}
		w := asWipe(t, errOf(f.svc.Lookup(f.ctx, tok)))
		if err := f.svc.AcknowledgeWipe(f.ctx, devices.WipeAck{DeviceID: p.id, Nonce: w.Nonce, Signature: p.sign(false, w.Nonce)}); err != nil {
			t.Fatal(err)
		}
		evs, err := f.log.Query(f.ctx, audit.Filter{TenantID: f.tenant, UserID: f.admin.AccountID(), Action: audit.ActionDevice})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].Query != "unlink" || evs[0].Resources[0] != "Device/"+p.id || !strings.Contains(evs[0].Reason, f.person.AccountID()) {
			t.Fatalf("the admin's unlink in the log: %+v", evs)
		}
	})
}

// Deactivating the account unlinks every device at once (ID-5): the next
// look-up of any of its tokens is a wipe instruction.
//
// REQ: ID-5, AUTH-7
func TestDeactivationUnlinksDevices(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		p1, p2 := f.pair(f.person), f.pair(f.person)
		t1, t2 := f.mustToken(p1, ""), f.mustToken(p2, "")
		pending, err := f.svc.NewPairing(f.ctx, f.person, "https://zk.test")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.ids.Deactivate(f.ctx, f.person.AccountID()); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{t1, t2} {
			if w := asWipe(t, errOf(f.svc.Lookup(f.ctx, tok))); w.Reason != "account-deactivated" {
				t.Fatalf("after the deactivation: %+v", w)
			}
		}
		asWipe(t, errOf(f.svc.Challenge(f.ctx, p2.id)))
		mine, err := f.svc.Mine(f.ctx, f.person)
		if err != nil || len(mine) != 2 || mine[0].Status != devices.StatusUnlinked || mine[1].Status != devices.StatusUnlinked {
			t.Fatalf("the devices after the deactivation: %+v %v", mine, err)
		}
		if _, err := f.svc.Pair(f.ctx, devices.PairRequest{Code: pending.Code, PublicSPKI: newPhone(t).spki(), PIN: pin, Name: "x"}); err == nil {
			t.Fatal("a deactivated account's pairing code still pairs")
		}
		if !slices.Contains(f.steps(p1.id), "unlink success") {
			t.Fatalf("the deactivation's unlink is not logged: %v", f.steps(p1.id))
		}
	})
}
