package mgmtapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/password"
)

// authnRoutes are the self-service endpoints of a logged-on user: password
// change and factor enrolment.
func (s *Server) authnRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/password", s.withSession(s.changePassword))
	mux.HandleFunc("GET /api/v1/factors", s.withSession(s.listFactors))
	mux.HandleFunc("POST /api/v1/stepup", s.withSession(s.stepUp))
	mux.HandleFunc("POST /api/v1/stepup/webauthn/begin", s.withSession(s.beginWebAuthnStepUp))
	mux.HandleFunc("POST /api/v1/factors/totp", s.withSession(s.steppedUp(s.enrolTOTP)))
	mux.HandleFunc("DELETE /api/v1/factors/totp/{id}", s.withSession(s.steppedUp(s.removeTOTP)))
	mux.HandleFunc("PATCH /api/v1/factors/totp/{id}", s.withSession(s.renameFactor(authn.FactorTOTP)))
	mux.HandleFunc("POST /api/v1/factors/recovery", s.withSession(s.steppedUp(s.newRecoveryCodes)))
	mux.HandleFunc("POST /api/v1/factors/contact", s.withSession(s.steppedUp(s.addContact)))
	mux.HandleFunc("POST /api/v1/factors/contact/{id}/confirm", s.withSession(s.confirmContact))
}

type passwordRequest struct {
	Current string `json:"current"`
	New     string `json:"new"`
}

// changePassword changes the password with the current one (AUTH-5). The
// answer names the broken rules, never the password.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, c caller) {
	var req passwordRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	if len(req.Current) > 1024 || len(req.New) > 1024 {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid input", "password too long")
		return
	}
	err := s.d.Authn.ChangePassword(r.Context(), c.Session.AccountID, req.Current, req.New)
	var vs password.Violations
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, authn.ErrLogonFailed):
		httpx.Problem(w, r, http.StatusForbidden, "Current password wrong", "the current password is not right")
	case errors.Is(err, authn.ErrPasswordReused):
		httpx.Problem(w, r, http.StatusUnprocessableEntity, "Password used before", err.Error())
	case errors.As(err, &vs):
		httpx.Problem(w, r, http.StatusUnprocessableEntity, "Password too weak", vs.Error())
	default:
		s.d.Log.ErrorContext(r.Context(), "change password", "err", err, "request_id", httpx.RequestID(r.Context()))
		httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "the password could not be changed; try again")
	}
}

type totpApp struct {
	ID        string    `json:"id"`
	Label     string    `json:"label"`
	CreatedAt time.Time `json:"created_at"`
}

// listFactors answers the authenticator apps: "totp" their ids (as before),
// "totp_apps" with the owner's names.
func (s *Server) listFactors(w http.ResponseWriter, r *http.Request, c caller) {
	apps, err := s.d.Authn.TOTPApps(r.Context(), c.Session.AccountID)
	if err != nil {
		httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "try again")
		return
	}
	ids, out := make([]string, 0, len(apps)), make([]totpApp, 0, len(apps))
	for _, a := range apps {
		ids = append(ids, a.ID)
		out = append(out, totpApp{ID: a.ID, Label: a.Label, CreatedAt: a.CreatedAt})
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"totp": ids, "totp_apps": out})
}

// labelRequest names a factor: optional at enrolment, required to rename.
type labelRequest struct {
	Label string `json:"label"`
}

// decodeLabel reads an empty body or {"label": "..."}.
func decodeLabel(w http.ResponseWriter, r *http.Request) (string, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFactorBody))
	if err != nil {
		if httpx.IsMaxBytes(err) {
			httpx.Problem(w, r, http.StatusRequestEntityTooLarge, "Request body too large", "the body exceeds the size limit")
			return "", false
		}
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid JSON", "the body could not be read")
		return "", false
	}
	var req labelRequest
	if len(b) > 0 && !decodeStrict(w, r, b, &req) {
		return "", false
	}
	return req.Label, true
}

// badLabel answers a refused name with a 400 that says the rule.
func badLabel(w http.ResponseWriter, r *http.Request) {
	httpx.Problem(w, r, http.StatusBadRequest, "Invalid name", authn.ErrFactorLabel.Error())
}

// renameFactor lets the owner rename one of their own factors; a factor of
// another account is not found. A name is no security change: no step-up.
func (s *Server) renameFactor(kind string) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		if kind == authn.FactorWebAuthn && s.webauthnOff(w, r) {
			return
		}
		label, ok := decodeLabel(w, r)
		if !ok {
			return
		}
		err := s.d.Authn.RenameFactor(r.Context(), c.Session.AccountID, kind, r.PathValue("id"), label, audit.SourceFrom(r.Context()).Addr)
		switch {
		case err == nil:
			w.WriteHeader(http.StatusNoContent)
		case errors.Is(err, authn.ErrFactorLabel):
			badLabel(w, r)
		case errors.Is(err, identity.ErrNotFound):
			httpx.Problem(w, r, http.StatusNotFound, "Not found", "no such factor")
		default:
			s.unavailable(w, r, "rename factor", err)
		}
	}
}

// Step-up (AUTH-2): adding or removing a factor or recovery codes needs a
// second factor proven within the last few minutes. The log-on counts; after
// that POST /api/v1/stepup renews the proof.

// problemStepUp is the machine-readable type of the 403 a stale session gets.
const problemStepUp = "urn:zorgkluis:problem:step-up-required"

// maxFactorBody bounds the (empty) body of an enrolment request.
const maxFactorBody = 1 << 10

// steppedUp lets h run only for a session with a fresh second factor.
func (s *Server) steppedUp(h sessionHandler) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		if err := s.d.Authn.RequireStepUp(c.Session); err != nil {
			w.Header().Set("Content-Type", "application/problem+json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(map[string]any{
				"type":            problemStepUp,
				"title":           "Step-up required",
				"status":          http.StatusForbidden,
				"detail":          "prove a second factor again (POST /api/v1/stepup) before changing your log-on methods",
				"instance":        httpx.RequestID(r.Context()),
				"stepup":          "/api/v1/stepup",
				"factors":         s.d.Authn.StepUpFactors(),
				"max_age_seconds": int64(s.d.Authn.StepUpMaxAge() / time.Second),
			})
			return
		}
		h(w, r, c)
	}
}

// decodeEmpty accepts an empty body or exactly the JSON object {}: an
// enrolment takes no parameters, and anything else is a client's mistake.
func decodeEmpty(w http.ResponseWriter, r *http.Request) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFactorBody))
	if err != nil {
		if httpx.IsMaxBytes(err) {
			httpx.Problem(w, r, http.StatusRequestEntityTooLarge, "Request body too large", "the body exceeds the size limit")
			return false
		}
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid JSON", "the body could not be read")
		return false
	}
	if len(b) == 0 {
		return true
	}
	return decodeStrict(w, r, b, &struct{}{})
}

// decodeStrict decodes exactly one JSON object with no unknown fields and
// nothing after it.
func decodeStrict(w http.ResponseWriter, r *http.Request, b []byte, v any) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid JSON", "the body must be a JSON object with the documented fields")
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid JSON", "the body must be one JSON object and nothing after it")
		return false
	}
	return true
}

type stepUpRequest struct {
	Factor     string          `json:"factor"` // totp, recovery, webauthn
	Code       string          `json:"code,omitempty"`
	Credential json.RawMessage `json:"credential,omitempty"` // webauthn: PublicKeyCredential.toJSON()
}

// stepUp renews the session's proof of a second factor. A wrong code is
// counted and logged like a failed log-on (AUTH-4).
func (s *Server) stepUp(w http.ResponseWriter, r *http.Request, c caller) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCredentialJSON+1024))
	if err != nil {
		httpx.Problem(w, r, http.StatusRequestEntityTooLarge, "Request body too large", "the body exceeds the size limit")
		return
	}
	var req stepUpRequest
	if !decodeStrict(w, r, b, &req) {
		return
	}
	code := req.Code
	if req.Factor == authn.FactorWebAuthn {
		code = string(req.Credential)
	}
	if !slices.Contains(s.d.Authn.StepUpFactors(), req.Factor) || code == "" || len(code) > maxCredentialJSON ||
		req.Factor != authn.FactorWebAuthn && (len(code) > 32 || len(req.Credential) > 0) {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid input", "factor must be one of the step-up factors, with its code (or credential for webauthn)")
		return
	}
	sess, err := s.d.Authn.StepUp(r.Context(), c.Token, req.Factor, code, audit.SourceFrom(r.Context()).Addr)
	switch {
	case err == nil:
		w.Header().Set("Cache-Control", "no-store")
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"second_factor_at": sess.SecondFactorAt,
			"valid_until": sess.SecondFactorAt.Add(s.d.Authn.StepUpMaxAge())})
	case errors.Is(err, authn.ErrStepUpFailed):
		httpx.Problem(w, r, http.StatusUnauthorized, "Step-up failed", "the second factor was not right")
	case errors.Is(err, authn.ErrNoSession):
		httpx.Problem(w, r, http.StatusUnauthorized, "Not logged on", "no valid session (expired, idle too long or logged off)")
	default:
		s.d.Log.ErrorContext(r.Context(), "step-up", "err", err, "request_id", httpx.RequestID(r.Context()))
		httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "the step-up is temporarily unavailable; try again")
	}
}

// beginWebAuthnStepUp gives the options for a step-up with a security key.
func (s *Server) beginWebAuthnStepUp(w http.ResponseWriter, r *http.Request, c caller) {
	if s.webauthnOff(w, r) || !decodeEmpty(w, r) {
		return
	}
	opts, err := s.d.Authn.BeginWebAuthnStepUp(r.Context(), c.Session)
	switch {
	case err == nil:
		writeOptions(w, opts)
	case errors.Is(err, authn.ErrWebAuthnTooMany):
		httpx.Problem(w, r, http.StatusConflict, "Too many attempts", err.Error())
	default:
		s.unavailable(w, r, "begin webauthn step-up", err)
	}
}

// enrolTOTP adds an authenticator app; the body may name it ({"label"}).
func (s *Server) enrolTOTP(w http.ResponseWriter, r *http.Request, c caller) {
	label, ok := decodeLabel(w, r)
	if !ok {
		return
	}
	acc, err := s.d.IDs.Account(r.Context(), c.Session.AccountID)
	if err != nil {
		httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "try again")
		return
	}
	uri, secret, err := s.d.Authn.EnrollNamedTOTP(r.Context(), acc.ID, acc.Username, label)
	if errors.Is(err, authn.ErrFactorLabel) {
		badLabel(w, r)
		return
	}
	if err != nil {
		s.unavailable(w, r, "enrol totp", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusCreated, map[string]string{"otpauth_uri": uri, "secret": secret})
}

func (s *Server) removeTOTP(w http.ResponseWriter, r *http.Request, c caller) {
	err := s.d.Authn.RemoveTOTP(r.Context(), c.Session.AccountID, r.PathValue("id"))
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, authn.ErrLastStrongFactor):
		httpx.Problem(w, r, http.StatusConflict, "Last strong factor", err.Error())
	case errors.Is(err, identity.ErrNotFound):
		httpx.Problem(w, r, http.StatusNotFound, "Not found", "no such factor")
	default:
		s.unavailable(w, r, "remove totp", err)
	}
}

func (s *Server) newRecoveryCodes(w http.ResponseWriter, r *http.Request, c caller) {
	if !decodeEmpty(w, r) {
		return
	}
	codes, err := s.d.Authn.NewRecoveryCodes(r.Context(), c.Session.AccountID)
	if err != nil {
		s.unavailable(w, r, "recovery codes", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusCreated, map[string]any{"recovery_codes": codes})
}

type contactRequest struct {
	Channel string `json:"channel"` // sms or email
	Address string `json:"address"`
}

func (s *Server) addContact(w http.ResponseWriter, r *http.Request, c caller) {
	var req contactRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	id, err := s.d.Authn.AddContact(r.Context(), c.Session.AccountID, req.Channel, req.Address)
	switch {
	case err == nil:
		httpx.WriteJSON(w, http.StatusAccepted, map[string]string{"id": id})
	case errors.Is(err, authn.ErrWeakFactorRefused):
		httpx.Problem(w, r, http.StatusConflict, "Not available", err.Error())
	default:
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid contact", "check the channel and address")
	}
}

type confirmRequest struct {
	Code string `json:"code"`
}

func (s *Server) confirmContact(w http.ResponseWriter, r *http.Request, c caller) {
	var req confirmRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	ok, err := s.d.Authn.ConfirmContact(r.Context(), c.Session.AccountID, r.PathValue("id"), req.Code)
	switch {
	case err != nil:
		httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "try again")
	case !ok:
		httpx.Problem(w, r, http.StatusUnprocessableEntity, "Wrong code", "the code is wrong, used or expired")
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}
