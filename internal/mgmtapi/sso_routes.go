package mgmtapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
	"github.com/zorgkluis/zorgkluis/internal/sso"
)

// ssoRoutes are the tenant's identity providers (AUTH-3): one application
// admin proposes, another approves (GOV-1); admins link upstream identities
// to accounts.
func (s *Server) ssoRoutes(mux *http.ServeMux) {
	if s.d.SSO == nil {
		return
	}
	mux.HandleFunc("GET /api/v1/sso/providers", s.withSession(s.ssoAdmin(s.ssoProviders)))
	mux.HandleFunc("POST /api/v1/sso/providers", s.withSession(s.ssoAdmin(s.ssoPropose)))
	mux.HandleFunc("POST /api/v1/sso/providers/{id}/approve", s.withSession(s.ssoAdmin(s.ssoDecide(true))))
	mux.HandleFunc("POST /api/v1/sso/providers/{id}/reject", s.withSession(s.ssoAdmin(s.ssoDecide(false))))
	mux.HandleFunc("POST /api/v1/sso/providers/{id}/disable", s.withSession(s.ssoAdmin(s.ssoDisable)))
	mux.HandleFunc("POST /api/v1/sso/links", s.withSession(s.ssoAdmin(s.ssoLink)))
}

func (s *Server) ssoAdmin(h sessionHandler) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		if c.Subject.Role() != access.RoleAppAdmin || c.Subject.TenantID() == "" {
			httpx.Problem(w, r, http.StatusForbidden, "Forbidden", "only the organisation's application admins manage its identity providers")
			return
		}
		if c.Subject.Assurance() < access.HealthDataLevel {
			httpx.Problem(w, r, http.StatusForbidden, "Forbidden", "log on with a second factor first")
			return
		}
		h(w, r, c)
	}
}

func ssoAdmin(c caller) sso.Admin {
	return sso.Admin{AccountID: c.Subject.AccountID(), Name: c.Subject.Name(), TenantID: c.Subject.TenantID()}
}

func (s *Server) ssoError(w http.ResponseWriter, r *http.Request, err error) {
	var bad *sso.InvalidError
	switch {
	case errors.As(err, &bad):
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", err.Error())
	case errors.Is(err, sso.ErrNotFound):
		httpx.Problem(w, r, http.StatusNotFound, "Not found", "no such identity provider in this organisation")
	case errors.Is(err, sso.ErrSameAdmin):
		httpx.Problem(w, r, http.StatusForbidden, "Four eyes", "another admin must approve what you proposed")
	default:
		s.unavailable(w, r, "sso", err)
	}
}

func (s *Server) ssoProviders(w http.ResponseWriter, r *http.Request, c caller) {
	ps, err := s.d.SSO.Providers(r.Context(), c.Subject.TenantID())
	if err != nil {
		s.ssoError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"providers": ps})
}

func (s *Server) ssoPropose(w http.ResponseWriter, r *http.Request, c caller) {
	var in struct {
		Name         string   `json:"name"`
		Issuer       string   `json:"issuer"`
		ClientID     string   `json:"client_id"`
		ClientSecret string   `json:"client_secret"`
		SecretEnv    string   `json:"client_secret_env"`
		AllowedAMR   []string `json:"allowed_amr"`
		TrustMFA     bool     `json:"trust_upstream_mfa"`
		RequiredACR  string   `json:"required_acr"`
		MaxAge       int64    `json:"max_age"`
	}
	if !httpx.DecodeJSON(w, r, &in) {
		return
	}
	if in.MaxAge < 0 || in.MaxAge > 86400 {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", "max_age: 0 (none) to 86400 seconds")
		return
	}
	p, err := s.d.SSO.Propose(r.Context(), ssoAdmin(c), sso.Proposal{Name: in.Name, Issuer: in.Issuer, ClientID: in.ClientID, ClientSecret: in.ClientSecret,
		SecretEnv: in.SecretEnv, AllowedAMR: in.AllowedAMR, TrustMFA: in.TrustMFA, RequiredACR: in.RequiredACR, MaxAge: time.Duration(in.MaxAge) * time.Second})
	if err != nil {
		s.ssoError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, p)
}

func (s *Server) ssoDecide(approve bool) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		if err := s.d.SSO.Decide(r.Context(), ssoAdmin(c), r.PathValue("id"), approve); err != nil {
			s.ssoError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) ssoDisable(w http.ResponseWriter, r *http.Request, c caller) {
	if err := s.d.SSO.Disable(r.Context(), ssoAdmin(c), r.PathValue("id")); err != nil {
		s.ssoError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) ssoLink(w http.ResponseWriter, r *http.Request, c caller) {
	var in struct {
		ProviderID string `json:"provider_id"`
		Subject    string `json:"subject"`
		AccountID  string `json:"account_id"`
	}
	if !httpx.DecodeJSON(w, r, &in) {
		return
	}
	if err := s.d.SSO.Link(r.Context(), ssoAdmin(c), in.ProviderID, in.Subject, in.AccountID); err != nil {
		s.ssoError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
