// Package deviceapi is the HTTP surface of the paired devices (AUTH-7,
// internal/devices) under /api/v1/devices: the device's own protocol
// (redeem a pairing code, challenge, token, wipe acknowledgement; no
// session, the device's key is its credential) and its user's and the
// admin's management (pairing codes, the list, unlink; a session's bearer
// token, never a device's). docs/devices.md describes the protocol.
// Errors are RFC 9457 problem documents; a wipe instruction is a 410 with
// its own JSON. internal/router mounts it.
package deviceapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/devices"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
)

// maxBody bounds every request body here: a key, a signature and a PIN.
const maxBody = 16 << 10

// Deps are what the handlers need.
type Deps struct {
	Devices  *devices.Service
	Sessions *httpx.Sessions // users' sessions; must not take device tokens
	Log      *slog.Logger
	BaseURL  string // the server's public URL, in the pairing QR code
}

// Server is the devices' API.
type Server struct{ d Deps }

// New returns the devices' API.
func New(d Deps) *Server { return &Server{d: d} }

// Mount registers the routes on mux.
func (s *Server) Mount(mux *http.ServeMux) {
	// The device's protocol.
	mux.HandleFunc("POST /api/v1/devices/pair", s.pair)
	mux.HandleFunc("POST /api/v1/devices/challenge", s.challenge)
	mux.HandleFunc("POST /api/v1/devices/token", s.token)
	mux.HandleFunc("POST /api/v1/devices/wipe-ack", s.wipeAck)
	// The user's devices.
	mux.HandleFunc("POST /api/v1/devices/pairings", s.session(s.newPairing))
	mux.HandleFunc("GET /api/v1/devices", s.session(s.mine))
	mux.HandleFunc("POST /api/v1/devices/{id}/unlink", s.session(s.unlink))
	// An admin's view of an account's devices.
	mux.HandleFunc("GET /api/v1/accounts/{account}/devices", s.session(s.ofAccount))
	mux.HandleFunc("POST /api/v1/accounts/{account}/devices/{id}/unlink", s.session(s.unlink))
}

func (s *Server) session(h httpx.SessionHandler) http.HandlerFunc {
	return s.d.Sessions.Require(h, httpx.Problem)
}

// decode reads a JSON body of at most maxBody bytes into v.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	return httpx.DecodeJSON(w, r, v)
}

// fail answers an error of the devices service: a refusal as its problem,
// a wipe instruction as 410 with its JSON, anything else as 503.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var we *devices.WipeError
	var de *devices.Error
	switch {
	case errors.As(err, &we):
		httpx.WriteJSON(w, http.StatusGone, we.Wipe)
	case errors.As(err, &de):
		problem(w, r, de)
	case errors.Is(err, access.ErrForbidden) || access.IsDenied(err):
		httpx.Problem(w, r, http.StatusForbidden, "Forbidden", err.Error())
	default:
		s.d.Log.ErrorContext(r.Context(), "devices", "err", err, "request_id", httpx.RequestID(r.Context()))
		httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "try again")
	}
}

// problem writes a refusal as RFC 9457, with attempts_left after a wrong PIN.
func problem(w http.ResponseWriter, r *http.Request, e *devices.Error) {
	body := map[string]any{"type": "about:blank", "title": e.Title, "status": e.Status, "detail": e.Detail, "instance": httpx.RequestID(r.Context())}
	if e.AttemptsLeft > 0 {
		body["attempts_left"] = e.AttemptsLeft
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="zorgkluis"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(body)
}
