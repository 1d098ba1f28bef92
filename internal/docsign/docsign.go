// Package docsign signs and verifies FHIR documents (DP-4): a Bundle is
// signed as a detached JWS (RFC 7515, ES256) over its RFC 8785 canonical
// JSON without the signature element, carried in Bundle.signature with
// sigFormat application/jose; the JWS header names the signer's
// certificate (kid: its serial in hex) and carries its chain (x5c: signer,
// tenant CA). The signer is the tenant's document-signing key (internal/pki,
// a key of its own, never a TLS key) for outgoing documents, and a
// system's signing certificate for incoming ones. Verify names the fault:
// unsigned, alg not ES256 (none, HS256, ...), a kid that is not the x5c
// signer's, a chain or revocation problem, or a signature that does not
// match the exact canonical bytes. The format and its test vectors are in
// docs/exchange.md and testdata/.
package docsign

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/gowebpki/jcs"

	"github.com/zorgkluis/zorgkluis/internal/pki"
)

// SigFormat is Bundle.signature.sigFormat of a zorgkluis signature.
const SigFormat = "application/jose"

// Signature type: ASTM E1762 "Author's Signature"
// (urn:iso-astm:E1762-95:2013 1.2.840.10065.1.12.1.1).
const (
	typeSystem = "urn:iso-astm:E1762-95:2013"
	typeCode   = "1.2.840.10065.1.12.1.1"
)

// Fault is a signature that does not verify; Reason names what is wrong
// (safe to show the sender).
type Fault struct{ Reason string }

func (f *Fault) Error() string { return "signature: " + f.Reason }

func fault(format string, args ...any) error { return &Fault{Reason: fmt.Sprintf(format, args...)} }

// ErrUnsigned is a document without a signature.
var ErrUnsigned = &Fault{Reason: "the Bundle has no signature (this organisation requires signed documents)"}

// Canonical returns the RFC 8785 canonical JSON of a Bundle without its
// signature element: the bytes the JWS signs.
func Canonical(bundle []byte) ([]byte, json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(bundle, &m); err != nil {
		return nil, nil, fault("the document is not a JSON object: %v", err)
	}
	sig := m["signature"]
	delete(m, "signature")
	b, err := json.Marshal(m)
	if err != nil {
		return nil, nil, err
	}
	c, err := jcs.Transform(b)
	if err != nil {
		return nil, nil, fault("the document cannot be canonicalised: %v", err)
	}
	return c, sig, nil
}

// Sign returns bundle with a Bundle.signature by key (an ECDSA P-256 key)
// whose chain is chain (signer first), made at now. who names the signer
// in the signature (an organisation reference's display).
func Sign(bundle []byte, key *ecdsa.PrivateKey, chain []*x509.Certificate, who string, now time.Time) ([]byte, error) {
	payload, _, err := Canonical(bundle)
	if err != nil {
		return nil, err
	}
	x5c := make([]string, len(chain))
	for i, c := range chain {
		x5c[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	// go-jose puts x5c from the JSONWebKey's certificates; the header is
	// set explicitly so it is exactly kid, x5c and alg.
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).
		WithHeader("kid", pki.SerialHex(chain[0].SerialNumber)).WithHeader("x5c", x5c))
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	detached, err := obj.DetachedCompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(bundle, &m); err != nil {
		return nil, fault("the document is not a JSON object")
	}
	sig, _ := json.Marshal(map[string]any{
		"type":      []map[string]string{{"system": typeSystem, "code": typeCode}},
		"when":      now.UTC().Format(time.RFC3339),
		"who":       map[string]string{"display": who},
		"sigFormat": SigFormat,
		"data":      base64.StdEncoding.EncodeToString([]byte(detached)),
	})
	m["signature"] = sig
	return json.Marshal(m)
}

// Verifier checks a signer's chain (pki.CA.VerifySigner).
type Verifier interface {
	VerifySigner(ctx context.Context, chain []*x509.Certificate) (pki.Peer, error)
}

// Verify checks bundle's signature: format, header (alg ES256 only, kid
// the x5c signer's serial), the signer's chain and revocation (v), and the
// signature over the exact canonical bytes. It returns the signer.
func Verify(ctx context.Context, v Verifier, bundle []byte) (pki.Peer, error) {
	payload, rawSig, err := Canonical(bundle)
	if err != nil {
		return pki.Peer{}, err
	}
	if len(rawSig) == 0 || string(rawSig) == "null" {
		return pki.Peer{}, ErrUnsigned
	}
	var sig struct {
		SigFormat string `json:"sigFormat"`
		Data      string `json:"data"`
	}
	if err := json.Unmarshal(rawSig, &sig); err != nil {
		return pki.Peer{}, fault("Bundle.signature is not a Signature")
	}
	if sig.SigFormat != SigFormat {
		return pki.Peer{}, fault("sigFormat %q; want %s", sig.SigFormat, SigFormat)
	}
	compact, err := base64.StdEncoding.DecodeString(sig.Data)
	if err != nil {
		return pki.Peer{}, fault("Bundle.signature.data is not base64")
	}
	parts := strings.Split(string(compact), ".")
	if len(parts) != 3 || parts[1] != "" {
		return pki.Peer{}, fault("Bundle.signature.data is not a detached compact JWS (header..signature)")
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return pki.Peer{}, fault("the JWS header is not base64url")
	}
	var h struct {
		Alg  string   `json:"alg"`
		Kid  string   `json:"kid"`
		X5c  []string `json:"x5c"`
		Crit []string `json:"crit"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return pki.Peer{}, fault("the JWS header is not JSON")
	}
	switch {
	case h.Alg != "ES256":
		return pki.Peer{}, fault("alg %q is not allowed; ES256 only", h.Alg)
	case len(h.Crit) > 0:
		return pki.Peer{}, fault("crit header parameters are not supported")
	case len(h.X5c) == 0:
		return pki.Peer{}, fault("the JWS header has no x5c (the signer's chain)")
	}
	chain := make([]*x509.Certificate, len(h.X5c))
	for i, s := range h.X5c {
		der, err := base64.StdEncoding.DecodeString(s)
		if err == nil {
			chain[i], err = x509.ParseCertificate(der)
		}
		if err != nil {
			return pki.Peer{}, fault("x5c[%d] is not a certificate", i)
		}
	}
	if h.Kid != pki.SerialHex(chain[0].SerialNumber) {
		return pki.Peer{}, fault("kid %q is not the signer certificate's serial %s", h.Kid, pki.SerialHex(chain[0].SerialNumber))
	}
	peer, err := v.VerifySigner(ctx, chain)
	var re *pki.RefusedError
	if errors.As(err, &re) {
		return pki.Peer{}, fault("signer: %s", re.Reason)
	}
	if err != nil {
		return pki.Peer{}, err
	}
	obj, err := jose.ParseDetached(string(compact), payload, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return pki.Peer{}, fault("the JWS does not parse: %v", err)
	}
	if _, err := obj.Verify(chain[0].PublicKey); err != nil {
		return pki.Peer{}, fault("the signature does not match the document's canonical bytes")
	}
	return peer, nil
}

// VerifyWithKey checks only the signature of a signed Bundle over its
// canonical bytes with key: for test vectors and offline checks, where
// chain and revocation are the reader's business.
func VerifyWithKey(bundle []byte, key any) error {
	payload, rawSig, err := Canonical(bundle)
	if err != nil {
		return err
	}
	var sig struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(rawSig, &sig); err != nil {
		return ErrUnsigned
	}
	compact, err := base64.StdEncoding.DecodeString(sig.Data)
	if err != nil {
		return fault("Bundle.signature.data is not base64")
	}
	obj, err := jose.ParseDetached(string(compact), payload, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return fault("the JWS does not parse: %v", err)
	}
	if _, err := obj.Verify(key); err != nil {
		return fault("the signature does not match the document's canonical bytes")
	}
	return nil
}
