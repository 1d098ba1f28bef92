package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/password"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

const (
	testRPID   = "localhost"
	testOrigin = "https://localhost:8443"
)

var b64 = base64.RawURLEncoding

// softKey is a software authenticator: one ES256 resident credential,
// producing the JSON a browser's PublicKeyCredential.toJSON() gives.
type softKey struct {
	t       testing.TB
	key     *ecdsa.PrivateKey
	id      []byte
	handle  []byte // user handle, learnt at registration
	counter uint32
	uv      bool // the key verifies its user (PIN, biometrics)
	origin  string
}

func newSoftKey(t testing.TB, uv bool) *softKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	return &softKey{t: t, key: k, id: id, uv: uv, origin: testOrigin}
}

func (k *softKey) flags(extra byte) byte {
	f := byte(0x01) | extra // UP
	if k.uv {
		f |= 0x04 // UV
	}
	return f
}

func (k *softKey) authData(flags byte) []byte {
	rp := sha256.Sum256([]byte(testRPID))
	out := append([]byte{}, rp[:]...)
	out = append(out, flags)
	return binary.BigEndian.AppendUint32(out, k.counter)
}

func clientData(typ, challenge, origin string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return b
}

// register answers creation options (as BeginWebAuthnRegistration gives them).
func (k *softKey) register(options []byte) []byte {
	k.t.Helper()
	var opt struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			User      struct {
				ID string `json:"id"`
			} `json:"user"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &opt); err != nil {
		k.t.Fatal(err)
	}
	h, err := b64.DecodeString(opt.PublicKey.User.ID)
	if err != nil {
		k.t.Fatal(err)
	}
	k.handle = h
	x, y := k.key.PublicKey.X.FillBytes(make([]byte, 32)), k.key.PublicKey.Y.FillBytes(make([]byte, 32))
	cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
	if err != nil {
		k.t.Fatal(err)
	}
	ad := k.authData(k.flags(0x40)) // AT: attested credential data follows
	ad = append(ad, make([]byte, 16)...)
	ad = binary.BigEndian.AppendUint16(ad, uint16(len(k.id)))
	ad = append(ad, k.id...)
	ad = append(ad, cose...)
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": ad})
	if err != nil {
		k.t.Fatal(err)
	}
	out, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(clientData("webauthn.create", opt.PublicKey.Challenge, k.origin)),
			"attestationObject": b64.EncodeToString(att),
			"transports":        []string{"internal"},
		},
		"clientExtensionResults": map[string]any{},
	})
	return out
}

// assert answers request options with a signed assertion.
func (k *softKey) assert(options []byte) []byte {
	k.t.Helper()
	var opt struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &opt); err != nil {
		k.t.Fatal(err)
	}
	k.counter++
	ad := k.authData(k.flags(0))
	cd := clientData("webauthn.get", opt.PublicKey.Challenge, k.origin)
	cdh := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		k.t.Fatal(err)
	}
	out, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cd),
			"authenticatorData": b64.EncodeToString(ad),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(k.handle),
		},
		"clientExtensionResults": map[string]any{},
	})
	return out
}

func newWebAuthnFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	f := newFixture(t, db, password.TestParams())
	if err := f.svc.EnableWebAuthn(testRPID, []string{testOrigin}); err != nil {
		t.Fatal(err)
	}
	return f
}

// enrolKey registers k for u in a session of u's.
func (f *fixture) enrolKey(t *testing.T, u user, k *softKey) WebAuthnCredential {
	t.Helper()
	ctx := context.Background()
	sess := Session{ID: "s-" + u.id[:8], AccountID: u.id}
	opts, err := f.svc.BeginWebAuthnRegistration(ctx, sess)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.FinishWebAuthnRegistration(ctx, sess, "Sleutel van "+u.name, k.register(opts), "127.0.0.1")
	if err != nil {
		t.Fatalf("register key: %v", err)
	}
	return c
}

// keyLogon runs a log-on: password, then the key's answer to options begun
// for the attempt.
func (f *fixture) keyLogon(t *testing.T, u user, pw string, k *softKey) (Session, error) {
	t.Helper()
	ctx := context.Background()
	att, err := f.svc.Begin(ctx, u.name, pw, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := f.svc.BeginWebAuthnLogon(ctx, att)
	if err != nil {
		t.Fatal(err)
	}
	_, sess, err := f.svc.Complete(ctx, att, FactorWebAuthn, string(k.assert(opts)), "127.0.0.1")
	return sess, err
}

func countKeyEvents(t *testing.T, db *store.DB, accountID, outcome string) int {
	t.Helper()
	var n int64
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM auth_events WHERE account_id = $1 AND outcome = $2 AND factor = $3`,
		accountID, outcome, FactorWebAuthn).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// REQ: AUTH-1, AUTH-2, AUTH-6
// A person registers a security key and logs on with password + key; the
// session carries the assurance of Tabel 6 (Hoog at registration method 3,
// Zeer Hoog at 4); the key's data is stored; enrolment and log-on are
// logged as events.
func TestWebAuthnRegisterAndLogon(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newWebAuthnFixture(t, db)
		ctx := context.Background()
		if !strings.Contains(strings.Join(f.svc.FactorKinds(), " "), FactorWebAuthn) {
			t.Fatalf("webauthn not offered: %v", f.svc.FactorKinds())
		}
		for _, tc := range []struct {
			method int
			want   access.Level
		}{{3, access.Hoog}, {4, access.ZeerHoog}} {
			u := f.addUser(t, "key.user"+string(rune('0'+tc.method)), identity.KindPerson, tc.method, true, string(access.RolePerson))
			k := newSoftKey(t, true)
			c := f.enrolKey(t, u, k)
			if c.Name != "Sleutel van "+u.name || !c.UserVerified || c.AAGUID != "00000000-0000-0000-0000-000000000000" || strings.Join(c.Transports, ",") != "internal" {
				t.Fatalf("credential %+v", c)
			}
			sess, err := f.keyLogon(t, u, u.pw, k)
			if err != nil {
				t.Fatalf("log-on with key: %v", err)
			}
			if sess.Assurance != tc.want || sess.Factors != "pwd webauthn" {
				t.Fatalf("method %d: session %+v, want %s", tc.method, sess, tc.want)
			}
			var count int64
			var pk []byte
			if err := db.QueryRowContext(ctx, `SELECT sign_count, public_key FROM webauthn_credentials WHERE id = $1`, c.ID).Scan(&count, &pk); err != nil {
				t.Fatal(err)
			}
			if count != 1 || len(pk) < 64 {
				t.Fatalf("stored sign count %d, public key %d bytes", count, len(pk))
			}
			list, err := f.svc.WebAuthnCredentials(ctx, u.id)
			if err != nil || len(list) != 1 || list[0].LastUsed.IsZero() {
				t.Fatalf("list %+v %v", list, err)
			}
			if countKeyEvents(t, db, u.id, "factor-enrolled") != 1 || countKeyEvents(t, db, u.id, "success") != 1 {
				t.Fatal("enrolment or log-on not logged")
			}
			// A wrong password with the right key still fails, with the one answer.
			if _, err := f.keyLogon(t, u, u.pw+"x", k); !errors.Is(err, ErrLogonFailed) {
				t.Fatalf("wrong password + key: %v", err)
			}
		}
	})
}

// REQ: AUTH-1, AUTH-4
// A challenge works once and only for the attempt it was begun for: the key's
// answer given to attempt B does not complete B and leaves A's challenge
// usable; the same answer replayed fails; a registration response replayed
// or sent after the challenge expired is refused.
func TestWebAuthnChallengeBinding(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newWebAuthnFixture(t, db)
		ctx := context.Background()
		u := f.addUser(t, "bound.user", identity.KindPerson, 3, true, string(access.RolePerson))
		k := newSoftKey(t, true)
		f.enrolKey(t, u, k)

		attA, _ := f.svc.Begin(ctx, u.name, u.pw, "127.0.0.1")
		attB, _ := f.svc.Begin(ctx, u.name, u.pw, "127.0.0.1")
		optsA, err := f.svc.BeginWebAuthnLogon(ctx, attA)
		if err != nil {
			t.Fatal(err)
		}
		answerA := string(k.assert(optsA))
		if _, _, err := f.svc.Complete(ctx, attB, FactorWebAuthn, answerA, "127.0.0.1"); !errors.Is(err, ErrLogonFailed) {
			t.Fatalf("answer for attempt A completed attempt B: %v", err)
		}
		if _, _, err := f.svc.Complete(ctx, attA, FactorWebAuthn, answerA, "127.0.0.1"); err != nil {
			t.Fatalf("attempt A with its own answer: %v", err)
		}
		// Replay of the same answer on a fresh attempt (its challenge is spent).
		attC, _ := f.svc.Begin(ctx, u.name, u.pw, "127.0.0.1")
		if _, err := f.svc.BeginWebAuthnLogon(ctx, attC); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.svc.Complete(ctx, attC, FactorWebAuthn, answerA, "127.0.0.1"); !errors.Is(err, ErrLogonFailed) {
			t.Fatalf("replayed answer accepted: %v", err)
		}
		// A finished attempt begins no new ceremony.
		if _, err := f.svc.BeginWebAuthnLogon(ctx, attA); !errors.Is(err, ErrLogonFailed) {
			t.Fatalf("ceremony begun for a used attempt: %v", err)
		}

		// Registration: replay and expiry.
		sess := Session{ID: "s-reg", AccountID: u.id}
		k2 := newSoftKey(t, true)
		opts, err := f.svc.BeginWebAuthnRegistration(ctx, sess)
		if err != nil {
			t.Fatal(err)
		}
		resp := k2.register(opts)
		other := Session{ID: "s-other", AccountID: u.id}
		if _, err := f.svc.FinishWebAuthnRegistration(ctx, other, "k2", resp, "127.0.0.1"); !errors.Is(err, ErrWebAuthnCeremony) {
			t.Fatalf("another session finished the registration: %v", err)
		}
		if _, err := f.svc.FinishWebAuthnRegistration(ctx, sess, "k2", resp, "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.FinishWebAuthnRegistration(ctx, sess, "k2", resp, "127.0.0.1"); !errors.Is(err, ErrWebAuthnCeremony) {
			t.Fatalf("replayed registration: %v", err)
		}
		k3 := newSoftKey(t, true)
		opts, _ = f.svc.BeginWebAuthnRegistration(ctx, sess)
		f.clock.Advance(webauthnCeremonyTTL + time.Second)
		if _, err := f.svc.FinishWebAuthnRegistration(ctx, sess, "k3", k3.register(opts), "127.0.0.1"); !errors.Is(err, ErrWebAuthnCeremony) {
			t.Fatalf("expired registration: %v", err)
		}
		if countKeyEvents(t, db, u.id, "enrol-denied") != 3 {
			t.Fatalf("refused registrations not logged: %d", countKeyEvents(t, db, u.id, "enrol-denied"))
		}
		// A response from another origin is refused.
		k4 := newSoftKey(t, true)
		k4.origin = "https://evil.example"
		opts, _ = f.svc.BeginWebAuthnRegistration(ctx, sess)
		if _, err := f.svc.FinishWebAuthnRegistration(ctx, sess, "k4", k4.register(opts), "127.0.0.1"); !errors.Is(err, ErrWebAuthnCeremony) {
			t.Fatalf("foreign origin registered: %v", err)
		}
	})
}

// REQ: AUTH-1, AUTH-4
// A signature counter that goes back (a cloned key) fails the log-on and
// raises a security event; another account's key does not complete this
// account's log-on.
func TestWebAuthnSignCountAndOwner(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newWebAuthnFixture(t, db)
		ctx := context.Background()
		u := f.addUser(t, "count.user", identity.KindPerson, 3, true, string(access.RolePerson))
		k := newSoftKey(t, true)
		f.enrolKey(t, u, k)
		k.counter = 10
		if _, err := f.keyLogon(t, u, u.pw, k); err != nil {
			t.Fatal(err)
		}
		start := f.clock.Now()
		k.counter = 3 // a copy of the key that was used less
		if _, err := f.keyLogon(t, u, u.pw, k); !errors.Is(err, ErrLogonFailed) {
			t.Fatalf("regressed counter accepted: %v", err)
		}
		evs, err := f.securityEvents(ctx, f.tenant, start)
		if err != nil || len(evs) != 1 || evs[0].Kind != "webauthn-sign-count" || evs[0].AccountID != u.id {
			t.Fatalf("security events %+v %v", evs, err)
		}
		var stored int64
		if err := db.QueryRowContext(ctx, `SELECT sign_count FROM webauthn_credentials WHERE account_id = $1`, u.id).Scan(&stored); err != nil || stored != 11 {
			t.Fatalf("stored counter %d (%v); want 11 kept", stored, err)
		}

		v := f.addUser(t, "other.user", identity.KindPerson, 3, true, string(access.RolePerson))
		kv := newSoftKey(t, true)
		f.enrolKey(t, v, kv)
		if _, err := f.keyLogon(t, u, u.pw, kv); !errors.Is(err, ErrLogonFailed) {
			t.Fatalf("another account's key logged on: %v", err)
		}
	})
}

// REQ: AUTH-2
// When the key is the account's only possession factor (no authenticator
// app), it must verify its user: registration and log-on without user
// verification are refused; beside TOTP a key without it is accepted. The
// last strong factor cannot be removed.
func TestWebAuthnUserVerification(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newWebAuthnFixture(t, db)
		ctx := context.Background()
		only := f.addUser(t, "only.key", identity.KindPerson, 3, false, string(access.RolePerson))
		sess := Session{ID: "s-only", AccountID: only.id}
		opts, err := f.svc.BeginWebAuthnRegistration(ctx, sess)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(opts), `"userVerification":"required"`) || !strings.Contains(string(opts), `"residentKey":"required"`) {
			t.Fatalf("options for a sole key: %s", opts)
		}
		noUV := newSoftKey(t, false)
		if _, err := f.svc.FinishWebAuthnRegistration(ctx, sess, "zonder pin", noUV.register(opts), "127.0.0.1"); !errors.Is(err, ErrWebAuthnCeremony) {
			t.Fatalf("key without user verification registered as only factor: %v", err)
		}
		k := newSoftKey(t, true)
		c := f.enrolKey(t, only, k)
		k.uv = false // e.g. the PIN prompt was skipped
		if _, err := f.keyLogon(t, only, only.pw, k); !errors.Is(err, ErrLogonFailed) {
			t.Fatalf("log-on without user verification: %v", err)
		}
		k.uv = true
		if _, err := f.keyLogon(t, only, only.pw, k); err != nil {
			t.Fatalf("log-on with user verification: %v", err)
		}
		if err := f.svc.RemoveWebAuthn(ctx, only.id, c.ID, "127.0.0.1"); !errors.Is(err, ErrLastStrongFactor) {
			t.Fatalf("last strong factor removed: %v", err)
		}

		both := f.addUser(t, "key.and.app", identity.KindPerson, 3, true, string(access.RolePerson))
		plain := newSoftKey(t, false)
		pc := f.enrolKey(t, both, plain)
		if _, err := f.keyLogon(t, both, both.pw, plain); err != nil {
			t.Fatalf("key without UV beside TOTP: %v", err)
		}
		// The key without UV is not strong on its own: the app stays.
		apps, _ := f.svc.TOTPCredentials(ctx, both.id)
		if err := f.svc.RemoveTOTP(ctx, both.id, apps[0]); !errors.Is(err, ErrLastStrongFactor) {
			t.Fatalf("app removed leaving only a key without UV: %v", err)
		}
		if err := f.svc.RemoveWebAuthn(ctx, both.id, pc.ID, "127.0.0.1"); err != nil {
			t.Fatalf("remove key beside the app: %v", err)
		}
		if countKeyEvents(t, db, both.id, "factor-removed") != 1 || countKeyEvents(t, db, only.id, "remove-denied") != 1 {
			t.Fatal("removal not logged")
		}
		if list, _ := f.svc.WebAuthnCredentials(ctx, both.id); len(list) != 0 {
			t.Fatalf("removed key still listed: %+v", list)
		}
		if _, err := f.keyLogon(t, both, both.pw, plain); !errors.Is(err, ErrLogonFailed) {
			t.Fatalf("removed key logged on: %v", err)
		}
	})
}

// REQ: AUTH-4
// The log-on options say nothing about the account: an unknown user name, a
// wrong password and a right one get options of the same form, with no
// allowed credentials listed.
func TestWebAuthnOptionsRevealNothing(t *testing.T) {
	db := storetest.SQLite(t)
	f := newWebAuthnFixture(t, db)
	ctx := context.Background()
	u := f.addUser(t, "quiet.user", identity.KindPerson, 3, true, string(access.RolePerson))
	f.enrolKey(t, u, newSoftKey(t, true))
	shape := func(name, pw string) string {
		att, err := f.svc.Begin(ctx, name, pw, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		opts, err := f.svc.BeginWebAuthnLogon(ctx, att)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]map[string]any
		if err := json.Unmarshal(opts, &m); err != nil {
			t.Fatal(err)
		}
		pk := m["publicKey"]
		if _, ok := pk["allowCredentials"]; ok {
			t.Fatalf("options list credentials: %s", opts)
		}
		delete(pk, "challenge")
		b, _ := json.Marshal(m)
		return string(b)
	}
	right, wrong, unknown := shape(u.name, u.pw), shape(u.name, "wrong password!"), shape("nobody.here", "whatever")
	if right != wrong || right != unknown {
		t.Fatalf("options differ:\n%s\n%s\n%s", right, wrong, unknown)
	}
	// A key's real answer after a wrong password or for an unknown user
	// name fails the same way: the dry check runs for both.
	k := newSoftKey(t, true)
	for _, c := range []struct{ name, pw string }{{u.name, "wrong password!"}, {"nobody.here", "whatever"}} {
		att, err := f.svc.Begin(ctx, c.name, c.pw, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		opts, err := f.svc.BeginWebAuthnLogon(ctx, att)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.svc.Complete(ctx, att, FactorWebAuthn, string(k.assert(opts)), "127.0.0.1"); !errors.Is(err, ErrLogonFailed) {
			t.Fatalf("%s: answer after a failed first step: %v; want the generic failure", c.name, err)
		}
	}
	if _, err := f.svc.BeginWebAuthnLogon(ctx, "no-such-attempt"); !errors.Is(err, ErrLogonFailed) {
		t.Fatalf("unknown attempt: %v", err)
	}
}

func TestWebAuthnRelyingParty(t *testing.T) {
	for _, tc := range []struct{ id, origin, base, wantID, wantOrigin string }{
		{"", "", "https://127.0.0.1:8443", "localhost", "https://localhost:8443"},
		{"", "", "https://zorg.example.nl", "zorg.example.nl", "https://zorg.example.nl"},
		{"zorg.example.nl", "", "https://zorg.example.nl:443", "zorg.example.nl", "https://zorg.example.nl"},
		{"example.nl", "https://zorg.example.nl", "https://127.0.0.1:8443", "example.nl", "https://zorg.example.nl"},
	} {
		id, origins, err := WebAuthnRelyingParty(tc.id, tc.origin, tc.base)
		if err != nil || id != tc.wantID || len(origins) != 1 || origins[0] != tc.wantOrigin {
			t.Errorf("%+v: got %q %v %v", tc, id, origins, err)
		}
	}
	if _, _, err := WebAuthnRelyingParty("", "", "https://10.1.2.3:8443"); err == nil {
		t.Error("a non-loopback IP address became the relying party id")
	}
}

// BenchmarkWebAuthnLogon measures one whole log-on with password + key
// (test argon2 parameters, SQLite): Begin, the options, and Complete with a
// signed assertion. The key's own signing is part of the loop.
func BenchmarkWebAuthnLogon(b *testing.B) {
	db := storetest.SQLite(b)
	f := newFixture(b, db, password.TestParams())
	if err := f.svc.EnableWebAuthn(testRPID, []string{testOrigin}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	u := f.addUser(b, "bench.key", identity.KindPerson, 3, true, string(access.RolePerson))
	k := newSoftKey(b, true)
	sess := Session{ID: "s-bench", AccountID: u.id}
	opts, err := f.svc.BeginWebAuthnRegistration(ctx, sess)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.svc.FinishWebAuthnRegistration(ctx, sess, "bench", k.register(opts), "127.0.0.1"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		att, err := f.svc.Begin(ctx, u.name, u.pw, "127.0.0.1")
		if err != nil {
			b.Fatal(err)
		}
		opts, err := f.svc.BeginWebAuthnLogon(ctx, att)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := f.svc.Complete(ctx, att, FactorWebAuthn, string(k.assert(opts)), "127.0.0.1"); err != nil {
			b.Fatal(err)
		}
	}
}
