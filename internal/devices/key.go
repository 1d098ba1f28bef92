package devices

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
)

// The messages a device signs, each with its own label so that a signature
// for one purpose is never valid for another: the label, a NUL, the device
// id, a NUL, the challenge or nonce as sent (docs/devices.md).
const (
	labelAuth = "zorgkluis device auth v1"
	labelWipe = "zorgkluis device wipe v1"
)

// SignedMessage is the message a device signs (ECDSA P-256 with SHA-256)
// for label's purpose: exported for the devices' own tests and clients.
func SignedMessage(auth bool, deviceID, value string) []byte {
	label := labelWipe
	if auth {
		label = labelAuth
	}
	return []byte(label + "\x00" + deviceID + "\x00" + value)
}

// jwk is the part of an RFC 7517 EC public key a device sends.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
}

// parseKey reads a device's P-256 public key, as a JWK object or as base64
// (standard or URL alphabet) of its SubjectPublicKeyInfo DER, and returns
// the key's DER.
func parseKey(jwkRaw json.RawMessage, spki string) ([]byte, error) {
	bad := func(format string, args ...any) error {
		return refuse(http.StatusBadRequest, "Invalid public key", format, args...)
	}
	var pub *ecdsa.PublicKey
	switch {
	case len(jwkRaw) > 0 && spki != "":
		return nil, bad("send public_key (a JWK) or public_key_spki, not both")
	case len(jwkRaw) > 0:
		var k jwk
		if err := json.Unmarshal(jwkRaw, &k); err != nil {
			return nil, bad("public_key must be a JWK object")
		}
		if k.D != "" {
			return nil, bad("public_key holds a private key: send the public part only, and make a new key")
		}
		if k.Kty != "EC" || k.Crv != "P-256" {
			return nil, bad("public_key must be an EC key on P-256 (kty EC, crv P-256)")
		}
		x, err1 := base64.RawURLEncoding.DecodeString(k.X)
		y, err2 := base64.RawURLEncoding.DecodeString(k.Y)
		if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
			return nil, bad("x and y must be 32 bytes each, base64url without padding")
		}
		// Through the uncompressed point encoding, which checks that the
		// point is on the curve.
		pt := append(append([]byte{4}, x...), y...)
		ek, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
		if err != nil {
			return nil, bad("the point is not on P-256")
		}
		pub = ek
	case spki != "":
		der, err := decodeB64(spki)
		if err != nil || len(der) > 512 {
			return nil, bad("public_key_spki must be base64 of a SubjectPublicKeyInfo")
		}
		k, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, bad("public_key_spki is not a SubjectPublicKeyInfo")
		}
		ek, ok := k.(*ecdsa.PublicKey)
		if !ok || ek.Curve != elliptic.P256() {
			return nil, bad("public_key_spki must be an ECDSA key on P-256")
		}
		pub = ek
	default:
		return nil, bad("public_key (a JWK) or public_key_spki is required")
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("devices: encode key: %w", err)
	}
	return der, nil
}

// verify checks sig, base64 of an ASN.1 DER ECDSA signature (what Android's
// and Apple's key stores produce) or of the 64-byte r||s form (JOSE), over
// msg with the device's key.
func verify(keyDER []byte, msg []byte, sig string) bool {
	k, err := x509.ParsePKIXPublicKey(keyDER)
	if err != nil {
		return false
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return false
	}
	raw, err := decodeB64(sig)
	if err != nil || len(raw) > 128 {
		return false
	}
	sum := sha256.Sum256(msg)
	if len(raw) == 64 {
		r, s := new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])
		return ecdsa.Verify(pub, sum[:], r, s)
	}
	return ecdsa.VerifyASN1(pub, sum[:], raw)
}

// decodeB64 reads base64 in either alphabet, padded or not.
func decodeB64(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	if strings.ContainsAny(s, "+/") {
		return base64.RawStdEncoding.DecodeString(s)
	}
	return base64.RawURLEncoding.DecodeString(s)
}
