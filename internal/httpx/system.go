package httpx

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/zorgkluis/zorgkluis/internal/pki"
	"github.com/zorgkluis/zorgkluis/internal/principal"
)

// Guard authenticates a request and builds the caller's subject: Sessions
// (a bearer token) on the public listener, Systems (a client certificate)
// on the API listener.
type Guard interface {
	Require(h SessionHandler, fail Fail) http.HandlerFunc
}

// Systems guards handlers with the client certificate a third-party
// system presented at the handshake (DP-3). The handshake already checked
// the chain and the revocation table (pki.CA.Verify); every request looks
// the certificate up again, so a revocation holds on an open connection
// too. The caller has no session; its subject is principal.FromSystem's.
type Systems struct {
	CA  *pki.CA
	Log *slog.Logger
}

// Require authenticates the request by its client certificate.
func (s *Systems) Require(h SessionHandler, fail Fail) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			fail(w, r, http.StatusUnauthorized, "No client certificate", "this listener requires a client certificate issued by the organisation's CA")
			return
		}
		peer, err := s.CA.Lookup(r.Context(), r.TLS.PeerCertificates[0])
		var re *pki.RefusedError
		if errors.As(err, &re) {
			s.Log.WarnContext(r.Context(), "client certificate refused", "reason", re.Reason, "request_id", RequestID(r.Context()))
			fail(w, r, http.StatusUnauthorized, "Certificate refused", re.Reason)
			return
		}
		if err != nil {
			s.Log.ErrorContext(r.Context(), "client certificate lookup", "err", err, "request_id", RequestID(r.Context()))
			fail(w, r, http.StatusServiceUnavailable, "Unavailable", "the service is temporarily unavailable")
			return
		}
		h(w, r, Caller{Subject: principal.FromSystem(peer)})
	}
}
