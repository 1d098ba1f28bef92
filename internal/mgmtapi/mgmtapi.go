// Package mgmtapi is the management API under /api/v1: log-on and its
// factors, the access rules (relationships, teams, delegations,
// representation, emergency access, operator requests, rights and roles)
// and the security officer's log inspection. Errors are RFC 9457 problem
// documents. internal/router mounts it.
package mgmtapi

import (
	"log/slog"
	"net/http"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/compliance"
	"github.com/zorgkluis/zorgkluis/internal/governance"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/oauth"
	"github.com/zorgkluis/zorgkluis/internal/onboard"
	"github.com/zorgkluis/zorgkluis/internal/pki"
	"github.com/zorgkluis/zorgkluis/internal/sso"
)

// Deps are what the handlers need.
type Deps struct {
	Sessions *httpx.Sessions
	IDs      *identity.Registry
	Authn    *authn.Service
	Access   *access.Decider
	Audit    *audit.Log
	Clock    clock.Clock
	Log      *slog.Logger
	BaseURL  string           // the server's own URL, named in log exports
	Onboard  *onboard.Service // tenants, invitations, activation; nil: not mounted
	CA       *pki.CA          // the tenant's CA and systems (DP-3); nil: not mounted
	OAuth    *oauth.Service   // persons' apps (EX-1); nil: not mounted
	SSO      *sso.Service     // the tenants' identity providers (AUTH-3); nil: not mounted
	// Governance keeps the access reviews and the incident register
	// (GOV-2, GOV-4); nil: not mounted.
	Governance *governance.Service
	// Compliance is the controls register and the compliance report
	// (GOV-3); nil: not mounted.
	Compliance *compliance.Service
}

// Server is the management API.
type Server struct{ d Deps }

// New returns the management API.
func New(d Deps) *Server { return &Server{d: d} }

// Mount registers the management routes on mux; any other /api/ path is a
// 404 problem.
func (s *Server) Mount(mux *http.ServeMux) {
	s.logonRoutes(mux)
	s.webauthnRoutes(mux)
	s.accessRoutes(mux)
	s.auditRoutes(mux)
	s.onboardRoutes(mux)
	s.pkiRoutes(mux)
	s.oauthRoutes(mux)
	s.ssoRoutes(mux)
	s.governanceRoutes(mux)
	s.complianceRoutes(mux)
	s.changeRoutes(mux)
	s.settingsRoutes(mux)
	mux.HandleFunc("/api/", s.apiNotFound)
}

type (
	caller         = httpx.Caller
	sessionHandler = httpx.SessionHandler
)

func (s *Server) withSession(h sessionHandler) http.HandlerFunc {
	return s.d.Sessions.Require(h, httpx.Problem)
}

// unavailable logs an internal failure (never the request's secrets: err
// comes from the services) and answers 503.
func (s *Server) unavailable(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.d.Log.ErrorContext(r.Context(), what, "err", err, "request_id", httpx.RequestID(r.Context()))
	httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "try again")
}
