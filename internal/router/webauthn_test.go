package router_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/pquerna/otp/totp"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// apiKey is a software security key answering the API's options the way a
// browser's PublicKeyCredential.toJSON() would.
type apiKey struct {
	t       *testing.T
	key     *ecdsa.PrivateKey
	id      []byte
	handle  []byte
	counter uint32
}

var raw64 = base64.RawURLEncoding

func newAPIKey(t *testing.T) *apiKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return &apiKey{t: t, key: k, id: id}
}

func (k *apiKey) authData(flags byte) []byte {
	rp := sha256.Sum256([]byte("localhost"))
	return binary.BigEndian.AppendUint32(append(rp[:], flags), k.counter)
}

func (k *apiKey) clientData(typ string, options []byte) []byte {
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			User      struct {
				ID string `json:"id"`
			} `json:"user"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil {
		k.t.Fatalf("options %s: %v", options, err)
	}
	if o.PublicKey.User.ID != "" {
		k.handle, _ = raw64.DecodeString(o.PublicKey.User.ID)
	}
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": o.PublicKey.Challenge, "origin": "https://localhost"})
	return b
}

func (k *apiKey) register(options []byte) string {
	cd := k.clientData("webauthn.create", options)
	x, y := k.key.PublicKey.X.FillBytes(make([]byte, 32)), k.key.PublicKey.Y.FillBytes(make([]byte, 32))
	cose, _ := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
	ad := append(k.authData(0x01|0x04|0x40), make([]byte, 16)...)
	ad = append(binary.BigEndian.AppendUint16(ad, uint16(len(k.id))), k.id...)
	att, _ := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": append(ad, cose...)})
	b, _ := json.Marshal(map[string]any{"id": raw64.EncodeToString(k.id), "rawId": raw64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{"clientDataJSON": raw64.EncodeToString(cd), "attestationObject": raw64.EncodeToString(att), "transports": []string{"usb"}}})
	return string(b)
}

func (k *apiKey) assert(options []byte) string {
	cd := k.clientData("webauthn.get", options)
	k.counter++
	ad := k.authData(0x01 | 0x04)
	cdh := sha256.Sum256(cd)
	d := sha256.Sum256(append(append([]byte{}, ad...), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, d[:])
	if err != nil {
		k.t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"id": raw64.EncodeToString(k.id), "rawId": raw64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{"clientDataJSON": raw64.EncodeToString(cd), "authenticatorData": raw64.EncodeToString(ad),
			"signature": raw64.EncodeToString(sig), "userHandle": raw64.EncodeToString(k.handle)}})
	return string(b)
}

// REQ: AUTH-1, AUTH-2, AUTH-6
// The JSON API for apps: register a key in a session, list it, log on with
// password + key inside the attempt (assurance Hoog), a replayed answer and
// bad input get clear 4xx answers, and the only strong factor cannot be
// removed while the key was added beside TOTP can.
func TestWebAuthnJSONFlow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		srv, an, accID := foundationServer(t, db)
		ctx := context.Background()
		_, secret, err := an.EnrollTOTP(ctx, accID, "known")
		if err != nil {
			t.Fatal(err)
		}
		begin := func() string {
			_, b := call(t, srv, "POST", "/api/v1/logon", `{"username":"known","password":"a perfectly fine passphrase"}`)
			var m struct {
				Attempt string `json:"attempt"`
			}
			_ = json.Unmarshal(b, &m)
			return m.Attempt
		}
		code, _ := totp.GenerateCode(secret, time.Now())
		_, b := call(t, srv, "POST", "/api/v1/logon/complete", `{"attempt":"`+begin()+`","factor":"totp","code":"`+code+`"}`)
		var sess struct {
			Token     string `json:"token"`
			Assurance string `json:"assurance"`
		}
		if err := json.Unmarshal(b, &sess); err != nil || sess.Token == "" {
			t.Fatalf("TOTP log-on: %s", b)
		}
		bearer := []string{"Authorization", "Bearer " + sess.Token}

		// Not configured yet: a clear 404, and the log-on does not offer it.
		if resp, _ := call(t, srv, "POST", "/api/v1/factors/webauthn/begin", "", bearer...); resp.StatusCode != 404 {
			t.Fatalf("begin without a relying party: %d", resp.StatusCode)
		}
		if err := an.EnableWebAuthn("localhost", []string{"https://localhost"}); err != nil {
			t.Fatal(err)
		}

		key := newAPIKey(t)
		resp, opts := call(t, srv, "POST", "/api/v1/factors/webauthn/begin", "", bearer...)
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" || !strings.Contains(string(opts), `"challenge"`) {
			t.Fatalf("registration options: %d %s", resp.StatusCode, opts)
		}
		if resp, b := call(t, srv, "POST", "/api/v1/factors/webauthn/finish", `{"name":"blauw","credential":{"id":"x"}}`, bearer...); resp.StatusCode != 422 {
			t.Fatalf("garbage credential: %d %s", resp.StatusCode, b)
		}
		// A name is optional (else "Beveiligingssleutel N"), but not one with control characters.
		if resp, _ := call(t, srv, "POST", "/api/v1/factors/webauthn/finish", `{"name":"bel\u0007","credential":`+key.register(opts)+`}`, bearer...); resp.StatusCode != 400 {
			t.Fatalf("name with a control character: %d", resp.StatusCode)
		}
		resp, b = call(t, srv, "POST", "/api/v1/factors/webauthn/finish", `{"name":"blauwe sleutel","credential":`+key.register(opts)+`}`, bearer...)
		var added struct {
			ID         string   `json:"id"`
			Name       string   `json:"name"`
			Transports []string `json:"transports"`
		}
		if resp.StatusCode != 201 || json.Unmarshal(b, &added) != nil || added.Name != "blauwe sleutel" || strings.Join(added.Transports, ",") != "usb" {
			t.Fatalf("registration: %d %s", resp.StatusCode, b)
		}
		resp, b = call(t, srv, "GET", "/api/v1/factors/webauthn", "", bearer...)
		if resp.StatusCode != 200 || !strings.Contains(string(b), added.ID) {
			t.Fatalf("list: %d %s", resp.StatusCode, b)
		}

		// Log on with password + key.
		att := begin()
		resp, lopts := call(t, srv, "POST", "/api/v1/logon/webauthn/begin", `{"attempt":"`+att+`"}`)
		if resp.StatusCode != 200 || strings.Contains(string(lopts), "allowCredentials") {
			t.Fatalf("log-on options: %d %s", resp.StatusCode, lopts)
		}
		answer := key.assert(lopts)
		resp, b = call(t, srv, "POST", "/api/v1/logon/webauthn/finish", `{"attempt":"`+att+`","credential":`+answer+`}`)
		if err := json.Unmarshal(b, &sess); resp.StatusCode != 200 || err != nil || sess.Token == "" || sess.Assurance != "hoog" {
			t.Fatalf("key log-on: %d %s", resp.StatusCode, b)
		}
		// The same answer on a new attempt: refused with the one message.
		att2 := begin()
		call(t, srv, "POST", "/api/v1/logon/webauthn/begin", `{"attempt":"`+att2+`"}`)
		if resp, _ := call(t, srv, "POST", "/api/v1/logon/webauthn/finish", `{"attempt":"`+att2+`","credential":`+answer+`}`); resp.StatusCode != 401 {
			t.Fatalf("replayed answer: %d", resp.StatusCode)
		}
		if resp, _ := call(t, srv, "POST", "/api/v1/logon/webauthn/begin", `{"attempt":"nonsense"}`); resp.StatusCode != 401 {
			t.Fatalf("unknown attempt: %d", resp.StatusCode)
		}
		if resp, _ := call(t, srv, "POST", "/api/v1/logon/webauthn/begin", `not json`); resp.StatusCode != 400 {
			t.Fatalf("bad JSON: %d", resp.StatusCode)
		}

		// The key sits beside TOTP; removing it is allowed, an unknown id is 404.
		if resp, _ := call(t, srv, "DELETE", "/api/v1/factors/webauthn/wa-nope", "", bearer...); resp.StatusCode != 404 {
			t.Fatalf("remove unknown: %d", resp.StatusCode)
		}
		if resp, b := call(t, srv, "DELETE", "/api/v1/factors/webauthn/"+added.ID, "", bearer...); resp.StatusCode != 204 {
			t.Fatalf("remove: %d %s", resp.StatusCode, b)
		}
	})
}
