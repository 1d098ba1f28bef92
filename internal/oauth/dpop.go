package oauth

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// proofAlgs are the signature algorithms accepted for DPoP proofs and
// client assertions: asymmetric only (never "none" or HMAC).
var proofAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.PS256, jose.RS256, jose.EdDSA}

var thumbprintRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// proofWindow is how far a DPoP proof's iat may lie from now.
const proofWindow = 60 * time.Second

// DPoPProof is what the HTTP layer hands over of a request for RFC 9449:
// the DPoP header, the method and the URL the request was sent to.
type DPoPProof struct {
	Header string
	Method string
	URL    string // scheme, host and path, as the client addressed it
}

// checkDPoP verifies a proof and returns the thumbprint of its key. The
// access token's hash (ath) is checked when token is not empty. Each
// proof's jti works once.
func (s *Service) checkDPoP(ctx context.Context, p DPoPProof, token string) (string, *Error) {
	bad := func(format string, args ...any) (string, *Error) {
		e := fail("invalid_dpop_proof", format, args...)
		if token != "" {
			e.Code, e.Status = "invalid_token", 401
		}
		return "", e
	}
	if len(p.Header) > 8<<10 {
		return bad("the DPoP proof is too large")
	}
	sig, err := jose.ParseSigned(p.Header, proofAlgs)
	if err != nil || len(sig.Signatures) != 1 {
		return bad("the DPoP proof is not a compact JWS with an asymmetric algorithm")
	}
	h := sig.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return bad("the DPoP proof's typ must be dpop+jwt")
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() || !h.JSONWebKey.Valid() {
		return bad("the DPoP proof must carry its public key (jwk)")
	}
	payload, err := sig.Verify(h.JSONWebKey)
	if err != nil {
		return bad("the DPoP proof's signature does not verify")
	}
	var c struct {
		JTI string           `json:"jti"`
		HTM string           `json:"htm"`
		HTU string           `json:"htu"`
		IAT *jwt.NumericDate `json:"iat"`
		ATH string           `json:"ath"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return bad("the DPoP proof's claims are not JSON")
	}
	if c.JTI == "" || len(c.JTI) > 200 || c.HTM != p.Method || !sameHTU(c.HTU, p.URL) || c.IAT == nil {
		return bad("the DPoP proof must name this request (htm, htu) and carry jti and iat")
	}
	now := s.clock.Now()
	if d := now.Sub(c.IAT.Time()); d > proofWindow || d < -proofWindow {
		return bad("the DPoP proof's iat is not within %v of the server's time", proofWindow)
	}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		if c.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) {
			return bad("the DPoP proof's ath does not match the access token")
		}
	}
	tp, err := h.JSONWebKey.Thumbprint(crypto.SHA256)
	if err != nil {
		return bad("the DPoP key has no thumbprint")
	}
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	if fresh, err := s.once(ctx, "dpop\x00"+jkt+"\x00"+c.JTI, now.Add(2*proofWindow)); err != nil {
		return "", &Error{Code: "server_error", Description: "try again", Status: 503}
	} else if !fresh {
		return bad("the DPoP proof was used before (jti)")
	}
	return jkt, nil
}

// sameHTU compares a proof's htu with the request URL without query and
// fragment (RFC 9449 4.3).
func sameHTU(htu, reqURL string) bool {
	a, err1 := url.Parse(htu)
	b, err2 := url.Parse(reqURL)
	if err1 != nil || err2 != nil {
		return false
	}
	return a.Scheme == b.Scheme && a.Host == b.Host && a.Path == b.Path
}

// once records key until expires and reports whether it was new: the
// replay guard of assertion and proof ids. Expired keys are cleared on
// the way.
func (s *Service) once(ctx context.Context, key string, expires time.Time) (bool, error) {
	now := clock.Micros(s.clock.Now())
	_, err := s.db.ExecContext(ctx, `INSERT INTO oauth_jtis (hash, expires_at) VALUES ($1, $2)`, hash(key), clock.Micros(expires))
	if store.IsUniqueViolation(err) {
		var exp int64
		if err := s.db.QueryRowContext(ctx, `SELECT expires_at FROM oauth_jtis WHERE hash = $1`, hash(key)).Scan(&exp); err != nil {
			return false, fmt.Errorf("replay guard: %w", err)
		}
		if exp > now {
			return false, nil
		}
		_, err = s.db.ExecContext(ctx, `UPDATE oauth_jtis SET expires_at = $2 WHERE hash = $1`, hash(key), clock.Micros(expires))
	}
	if err != nil {
		return false, fmt.Errorf("replay guard: %w", err)
	}
	return true, nil
}
