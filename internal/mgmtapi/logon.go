package mgmtapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
)

func (s *Server) logonRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/logon", s.logonBegin)
	mux.HandleFunc("POST /api/v1/logon/totp", s.logonTOTP)
	mux.HandleFunc("POST /api/v1/logon/complete", s.logonComplete)
	mux.HandleFunc("POST /api/v1/logon/send", s.logonSend)
	mux.HandleFunc("POST /api/v1/logoff", s.withSession(s.logoff))
	mux.HandleFunc("POST /api/v1/logoff/all", s.withSession(s.logoffAll))
	mux.HandleFunc("GET /api/v1/session", s.withSession(s.session))
	mux.HandleFunc("POST /api/v1/session/role", s.withSession(s.chooseRole))
	s.authnRoutes(mux)
}

// The one log-on failure message, whatever was wrong (AUTH-4).
const logonFailed = "De aanmelding is mislukt. Controleer uw gegevens en probeer het opnieuw. / The log-on failed. Check your details and try again."

type logonRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type logonResponse struct {
	Attempt string   `json:"attempt"`
	Factors []string `json:"factors"`
	Warning string   `json:"warning"`
}

// logonBegin is the first step. It answers the same way for every input:
// which part was wrong is only settled after the second factor.
func (s *Server) logonBegin(w http.ResponseWriter, r *http.Request) {
	var req logonRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	if len(req.Username) > 256 || len(req.Password) > 1024 {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid input", "user name or password too long")
		return
	}
	attempt, err := s.d.Authn.Begin(r.Context(), req.Username, req.Password, audit.SourceFrom(r.Context()).Addr)
	if err != nil {
		s.d.Log.ErrorContext(r.Context(), "log-on begin", "err", err, "request_id", httpx.RequestID(r.Context()))
		httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "log-on is temporarily unavailable")
		return
	}
	httpx.WriteJSON(w, http.StatusOK, logonResponse{Attempt: attempt, Factors: s.d.Authn.FactorKinds(), Warning: banner})
}

// banner is shown before log-on: a warning, and nothing about the system.
const banner = "Alleen bevoegde gebruikers mogen zich aanmelden. Elk gebruik wordt vastgelegd. / Only authorised users may log on. All use is logged."

type totpRequest struct {
	Attempt  string `json:"attempt"`
	Code     string `json:"code"`
	Username string `json:"username,omitempty"`
}

type sessionResponse struct {
	Token              string     `json:"token,omitempty"`
	AccountID          string     `json:"account_id"`
	Role               string     `json:"role"`
	Roles              []string   `json:"roles,omitempty"`
	Assurance          string     `json:"assurance"`
	OnBehalfOf         string     `json:"on_behalf_of,omitempty"`
	MustChangePassword bool       `json:"must_change_password,omitempty"`
	ExpiresAt          time.Time  `json:"expires_at"`
	PreviousLogon      *time.Time `json:"previous_logon,omitempty"`
	FailedSince        *int       `json:"failed_attempts_since,omitempty"`
}

func (s *Server) sessionJSON(r *http.Request, tok string, sess authn.Session, logon bool) sessionResponse {
	resp := sessionResponse{Token: tok, AccountID: sess.AccountID, Role: string(sess.Role), Assurance: sess.Assurance.String(),
		OnBehalfOf: sess.OnBehalfOf, MustChangePassword: sess.MustChangePassword, ExpiresAt: sess.ExpiresAt}
	if roles, err := s.d.Authn.CurrentRoles(r.Context(), sess.AccountID); err == nil && len(roles) > 1 {
		resp.Roles = roles
	}
	if logon {
		// "Your last log-on" (AUTH-4): shown right after log-on.
		n := sess.FailedSince
		resp.FailedSince = &n
		if !sess.PreviousLogon.IsZero() {
			p := sess.PreviousLogon
			resp.PreviousLogon = &p
		}
	}
	return resp
}

func (s *Server) logonTOTP(w http.ResponseWriter, r *http.Request) {
	var req totpRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	if len(req.Attempt) > 128 || len(req.Code) > 16 || len(req.Username) > 256 {
		httpx.Problem(w, r, http.StatusUnauthorized, "Log-on failed", logonFailed)
		return
	}
	s.completeLogon(w, r, req.Attempt, authn.FactorTOTP, req.Code)
}

type completeRequest struct {
	Attempt string `json:"attempt"`
	Factor  string `json:"factor"`
	Code    string `json:"code"`
}

// logonComplete is the second step with any offered factor.
func (s *Server) logonComplete(w http.ResponseWriter, r *http.Request) {
	var req completeRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	if len(req.Attempt) > 128 || len(req.Code) > 32 || len(req.Factor) > 16 {
		httpx.Problem(w, r, http.StatusUnauthorized, "Log-on failed", logonFailed)
		return
	}
	s.completeLogon(w, r, req.Attempt, req.Factor, req.Code)
}

func (s *Server) completeLogon(w http.ResponseWriter, r *http.Request, attempt, factor, code string) {
	tok, sess, err := s.d.Authn.Complete(r.Context(), attempt, factor, code, audit.SourceFrom(r.Context()).Addr)
	if errors.Is(err, authn.ErrLogonFailed) {
		httpx.Problem(w, r, http.StatusUnauthorized, "Log-on failed", logonFailed)
		return
	}
	if err != nil {
		s.d.Log.ErrorContext(r.Context(), "log-on complete", "err", err, "request_id", httpx.RequestID(r.Context()))
		httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "log-on is temporarily unavailable")
		return
	}
	httpx.WriteJSON(w, http.StatusOK, s.sessionJSON(r, tok, sess, true))
}

type sendRequest struct {
	Attempt string `json:"attempt"`
	Channel string `json:"channel"`
}

// logonSend asks for an SMS or e-mail code. The answer is 202 whatever the
// attempt, so it tells nothing about the account (AUTH-4).
func (s *Server) logonSend(w http.ResponseWriter, r *http.Request) {
	var req sendRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	if len(req.Attempt) <= 128 {
		if err := s.d.Authn.SendLogonCode(r.Context(), req.Attempt, req.Channel); err != nil {
			s.d.Log.ErrorContext(r.Context(), "send code", "err", err, "request_id", httpx.RequestID(r.Context()))
		}
	}
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) logoff(w http.ResponseWriter, r *http.Request, c caller) {
	if err := s.d.Authn.Logout(r.Context(), c.Token); err != nil {
		httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "log-off failed; try again")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) logoffAll(w http.ResponseWriter, r *http.Request, c caller) {
	if err := s.d.Authn.LogoutAll(r.Context(), c.Session.AccountID); err != nil {
		httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "log-off failed; try again")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) session(w http.ResponseWriter, r *http.Request, c caller) {
	httpx.WriteJSON(w, http.StatusOK, s.sessionJSON(r, "", c.Session, false))
}

type roleRequest struct {
	Role string `json:"role"`
}

// chooseRole sets the session's one role (AZ-2) and returns the new token:
// the old one stops working.
func (s *Server) chooseRole(w http.ResponseWriter, r *http.Request, c caller) {
	var req roleRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	tok, sess, err := s.d.Authn.ChooseRole(r.Context(), c.Token, req.Role)
	switch {
	case errors.Is(err, authn.ErrNotPermitted):
		httpx.Problem(w, r, http.StatusForbidden, "Role not held", "the account does not hold that role")
	case err != nil:
		httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "the role could not be changed; try again")
	default:
		httpx.WriteJSON(w, http.StatusOK, s.sessionJSON(r, tok, sess, false))
	}
}

func (s *Server) apiNotFound(w http.ResponseWriter, r *http.Request) {
	httpx.Problem(w, r, http.StatusNotFound, "Not found", "no such endpoint")
}
