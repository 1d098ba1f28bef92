package mgmtapi

import (
	"errors"
	"net/http"

	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
	"github.com/zorgkluis/zorgkluis/internal/password"
)

// authnRoutes are the self-service endpoints of a logged-on user: password
// change and factor enrolment.
func (s *Server) authnRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/password", s.withSession(s.changePassword))
	mux.HandleFunc("GET /api/v1/factors", s.withSession(s.listFactors))
	mux.HandleFunc("POST /api/v1/factors/totp", s.withSession(s.enrolTOTP))
	mux.HandleFunc("DELETE /api/v1/factors/totp/{id}", s.withSession(s.removeTOTP))
	mux.HandleFunc("POST /api/v1/factors/recovery", s.withSession(s.newRecoveryCodes))
	mux.HandleFunc("POST /api/v1/factors/contact", s.withSession(s.addContact))
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

func (s *Server) listFactors(w http.ResponseWriter, r *http.Request, c caller) {
	ids, err := s.d.Authn.TOTPCredentials(r.Context(), c.Session.AccountID)
	if err != nil {
		httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "try again")
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"totp": ids})
}

func (s *Server) enrolTOTP(w http.ResponseWriter, r *http.Request, c caller) {
	acc, err := s.d.IDs.Account(r.Context(), c.Session.AccountID)
	if err != nil {
		httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "try again")
		return
	}
	uri, secret, err := s.d.Authn.EnrollTOTP(r.Context(), acc.ID, acc.Username)
	if err != nil {
		httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "try again")
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
	default:
		httpx.Problem(w, r, http.StatusNotFound, "Not found", "no such factor")
	}
}

func (s *Server) newRecoveryCodes(w http.ResponseWriter, r *http.Request, c caller) {
	codes, err := s.d.Authn.NewRecoveryCodes(r.Context(), c.Session.AccountID)
	if err != nil {
		httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "try again")
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
