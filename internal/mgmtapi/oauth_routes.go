package mgmtapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
	"github.com/zorgkluis/zorgkluis/internal/oauth"
)

// oauthRoutes register persons' apps (EX-1): a tenant's application admin
// registers the tenant's apps and sets whether public clients are allowed;
// an operator registers apps for every tenant. A registration and a policy
// change are four-eyes change requests (GOV-1), approved by another admin
// (or operator) at /api/v1/changes; a deactivation holds at once.
func (s *Server) oauthRoutes(mux *http.ServeMux) {
	if s.d.OAuth == nil {
		return
	}
	mux.HandleFunc("GET /api/v1/oauth/clients", s.withSession(s.oauthAdmin(s.oauthClients)))
	mux.HandleFunc("POST /api/v1/oauth/clients", s.withSession(s.oauthAdmin(s.oauthRegister)))
	mux.HandleFunc("POST /api/v1/oauth/clients/{id}/deactivate", s.withSession(s.oauthAdmin(s.oauthDeactivate)))
	mux.HandleFunc("PUT /api/v1/oauth/policy", s.withSession(s.oauthAdmin(s.oauthPolicy)))
}

// oauthAdmin lets a tenant's application admins and the operators in, at
// the assurance every change of the rules needs.
func (s *Server) oauthAdmin(h sessionHandler) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		role := c.Subject.Role()
		if !(role == access.RoleAppAdmin && c.Subject.TenantID() != "") && role != access.RoleOperator {
			httpx.Problem(w, r, http.StatusForbidden, "Forbidden", "only the organisation's application admins and the operators register apps")
			return
		}
		if c.Subject.Assurance() < access.HealthDataLevel {
			httpx.Problem(w, r, http.StatusForbidden, "Forbidden", "log on with a second factor first")
			return
		}
		h(w, r, c)
	}
}

func registrar(c caller) oauth.Registrar {
	if c.Subject.Role() == access.RoleOperator {
		return oauth.Registrar{AccountID: c.Subject.AccountID()}
	}
	return oauth.Registrar{AccountID: c.Subject.AccountID(), TenantID: c.Subject.TenantID()}
}

func (s *Server) oauthClients(w http.ResponseWriter, r *http.Request, c caller) {
	cs, err := s.d.OAuth.Clients(r.Context(), registrar(c).TenantID)
	if err != nil {
		s.unavailable(w, r, "oauth clients", err)
		return
	}
	if cs == nil {
		cs = []oauth.Client{}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"clients": cs})
}

func (s *Server) oauthRegister(w http.ResponseWriter, r *http.Request, c caller) {
	var in struct {
		Name         string          `json:"client_name"`
		RedirectURIs []string        `json:"redirect_uris"`
		AuthMethod   string          `json:"token_endpoint_auth_method"`
		JWKS         json.RawMessage `json:"jwks"`
		Scopes       []string        `json:"scopes"`
		RequirePAR   bool            `json:"require_pushed_authorization_requests"`
		RequireDPoP  bool            `json:"dpop_bound_access_tokens"`
		Introspect   bool            `json:"introspect"`
		ConsentDays  int             `json:"consent_days"`
	}
	if !httpx.DecodeJSON(w, r, &in) {
		return
	}
	cl, err := s.d.OAuth.Register(r.Context(), registrar(c), oauth.Client{Name: in.Name, RedirectURIs: in.RedirectURIs, AuthMethod: in.AuthMethod,
		JWKS: in.JWKS, Scopes: in.Scopes, RequirePAR: in.RequirePAR, RequireDPoP: in.RequireDPoP, Introspect: in.Introspect, ConsentDays: in.ConsentDays})
	var bad *oauth.ErrInvalidClient
	if errors.As(err, &bad) {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid client", err.Error())
		return
	}
	if err != nil {
		s.unavailable(w, r, "oauth register", err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, cl)
}

func (s *Server) oauthDeactivate(w http.ResponseWriter, r *http.Request, c caller) {
	err := s.d.OAuth.Deactivate(r.Context(), registrar(c), r.PathValue("id"))
	if errors.Is(err, oauth.ErrNotFound) {
		httpx.Problem(w, r, http.StatusNotFound, "Not found", "no active client by that id that you registered")
		return
	}
	if err != nil {
		s.unavailable(w, r, "oauth deactivate", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) oauthPolicy(w http.ResponseWriter, r *http.Request, c caller) {
	var in struct {
		AllowPublic *bool `json:"allow_public_clients"`
	}
	if !httpx.DecodeJSON(w, r, &in) {
		return
	}
	if in.AllowPublic == nil {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", "allow_public_clients (true or false) is required")
		return
	}
	by := registrar(c)
	if by.TenantID == "" {
		httpx.Problem(w, r, http.StatusForbidden, "Forbidden", "the public-client policy is an organisation's own")
		return
	}
	req, err := s.d.OAuth.SetPublicPolicy(r.Context(), by, *in.AllowPublic)
	if err != nil {
		s.unavailable(w, r, "oauth policy", err)
		return
	}
	// Accepted, not applied: another admin approves the change (GOV-1).
	httpx.WriteJSON(w, http.StatusAccepted, map[string]any{"allow_public_clients": *in.AllowPublic, "change_request": req.ID})
}
