package mgmtapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

// webauthnRoutes are the WebAuthn ceremonies for apps (AUTH-2). The begin
// steps answer the options for navigator.credentials.create/get as
// {"publicKey": {...}} (binary fields base64url); the finish steps take the
// PublicKeyCredential as PublicKeyCredential.toJSON() gives it.
func (s *Server) webauthnRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/factors/webauthn", s.withSession(s.listWebAuthn))
	mux.HandleFunc("POST /api/v1/factors/webauthn/begin", s.withSession(s.steppedUp(s.beginWebAuthnRegistration)))
	mux.HandleFunc("POST /api/v1/factors/webauthn/finish", s.withSession(s.steppedUp(s.finishWebAuthnRegistration)))
	mux.HandleFunc("DELETE /api/v1/factors/webauthn/{id}", s.withSession(s.steppedUp(s.removeWebAuthn)))
	mux.HandleFunc("PATCH /api/v1/factors/webauthn/{id}", s.withSession(s.renameFactor(authn.FactorWebAuthn)))
	mux.HandleFunc("POST /api/v1/logon/webauthn/begin", s.beginWebAuthnLogon)
	mux.HandleFunc("POST /api/v1/logon/webauthn/finish", s.finishWebAuthnLogon)
}

// maxCredentialJSON bounds the PublicKeyCredential a client may send.
const maxCredentialJSON = 32 << 10

type webauthnKey struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	AAGUID       string     `json:"aaguid"`
	Transports   []string   `json:"transports"`
	UserVerified bool       `json:"user_verified"`
	CreatedAt    time.Time  `json:"created_at"`
	LastUsed     *time.Time `json:"last_used,omitempty"`
}

func keyJSON(c authn.WebAuthnCredential) webauthnKey {
	k := webauthnKey{ID: c.ID, Name: c.Name, AAGUID: c.AAGUID, Transports: c.Transports, UserVerified: c.UserVerified, CreatedAt: c.CreatedAt}
	if k.Transports == nil {
		k.Transports = []string{}
	}
	if !c.LastUsed.IsZero() {
		t := c.LastUsed
		k.LastUsed = &t
	}
	return k
}

func (s *Server) webauthnOff(w http.ResponseWriter, r *http.Request) bool {
	if s.d.Authn.WebAuthnEnabled() {
		return false
	}
	httpx.Problem(w, r, http.StatusNotFound, "Not available", "security keys are not configured on this installation")
	return true
}

func (s *Server) listWebAuthn(w http.ResponseWriter, r *http.Request, c caller) {
	list, err := s.d.Authn.WebAuthnCredentials(r.Context(), c.Session.AccountID)
	if err != nil {
		s.unavailable(w, r, "list webauthn", err)
		return
	}
	out := make([]webauthnKey, 0, len(list))
	for _, k := range list {
		out = append(out, keyJSON(k))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"webauthn": out})
}

// writeOptions sends ceremony options; they hold a fresh challenge.
func writeOptions(w http.ResponseWriter, opts []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(opts)
}

func (s *Server) beginWebAuthnRegistration(w http.ResponseWriter, r *http.Request, c caller) {
	if s.webauthnOff(w, r) {
		return
	}
	opts, err := s.d.Authn.BeginWebAuthnRegistration(r.Context(), c.Session)
	switch {
	case err == nil:
		writeOptions(w, opts)
	case errors.Is(err, authn.ErrWebAuthnTooMany):
		httpx.Problem(w, r, http.StatusConflict, "Too many keys", err.Error())
	default:
		s.unavailable(w, r, "begin webauthn registration", err)
	}
}

type webauthnFinishRequest struct {
	Name       string          `json:"name"`
	Credential json.RawMessage `json:"credential"`
}

func (s *Server) finishWebAuthnRegistration(w http.ResponseWriter, r *http.Request, c caller) {
	if s.webauthnOff(w, r) {
		return
	}
	var req webauthnFinishRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	if len(req.Credential) == 0 || len(req.Credential) > maxCredentialJSON {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid input", "credential missing or too large")
		return
	}
	k, err := s.d.Authn.FinishWebAuthnRegistration(r.Context(), c.Session, req.Name, req.Credential, audit.SourceFrom(r.Context()).Addr)
	switch {
	case err == nil:
		httpx.WriteJSON(w, http.StatusCreated, keyJSON(k))
	case errors.Is(err, authn.ErrFactorLabel):
		badLabel(w, r)
	case errors.Is(err, authn.ErrWebAuthnCeremony):
		httpx.Problem(w, r, http.StatusUnprocessableEntity, "Key not registered", err.Error())
	default:
		s.unavailable(w, r, "finish webauthn registration", err)
	}
}

func (s *Server) removeWebAuthn(w http.ResponseWriter, r *http.Request, c caller) {
	err := s.d.Authn.RemoveWebAuthn(r.Context(), c.Session.AccountID, r.PathValue("id"), audit.SourceFrom(r.Context()).Addr)
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, authn.ErrLastStrongFactor):
		httpx.Problem(w, r, http.StatusConflict, "Last strong factor", err.Error())
	case errors.Is(err, identity.ErrNotFound):
		httpx.Problem(w, r, http.StatusNotFound, "Not found", "no such factor")
	default:
		s.unavailable(w, r, "remove webauthn", err)
	}
}

type webauthnLogonRequest struct {
	Attempt    string          `json:"attempt"`
	Credential json.RawMessage `json:"credential,omitempty"`
}

// beginWebAuthnLogon gives the options for the attempt's second step. They
// are the same kind for every attempt, so they say nothing about the
// account (AUTH-4).
func (s *Server) beginWebAuthnLogon(w http.ResponseWriter, r *http.Request) {
	if s.webauthnOff(w, r) {
		return
	}
	var req webauthnLogonRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	if len(req.Attempt) > 128 {
		httpx.Problem(w, r, http.StatusUnauthorized, "Log-on failed", logonFailed)
		return
	}
	opts, err := s.d.Authn.BeginWebAuthnLogon(r.Context(), req.Attempt)
	switch {
	case err == nil:
		writeOptions(w, opts)
	case errors.Is(err, authn.ErrLogonFailed):
		httpx.Problem(w, r, http.StatusUnauthorized, "Log-on failed", logonFailed)
	default:
		s.d.Log.ErrorContext(r.Context(), "begin webauthn log-on", "err", err, "request_id", httpx.RequestID(r.Context()))
		httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "log-on is temporarily unavailable")
	}
}

// finishWebAuthnLogon completes the attempt with the key's assertion, like
// a TOTP code: the attempt is consumed whatever the outcome.
func (s *Server) finishWebAuthnLogon(w http.ResponseWriter, r *http.Request) {
	if s.webauthnOff(w, r) {
		return
	}
	var req webauthnLogonRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	if len(req.Attempt) > 128 || len(req.Credential) > maxCredentialJSON {
		httpx.Problem(w, r, http.StatusUnauthorized, "Log-on failed", logonFailed)
		return
	}
	s.completeLogon(w, r, req.Attempt, authn.FactorWebAuthn, string(req.Credential))
}
