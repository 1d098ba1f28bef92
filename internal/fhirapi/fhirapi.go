// Package fhirapi is the FHIR R4 API under /fhir: the resources of a
// patient's record (read, vread, history, search, create, update, delete,
// $everything) and, for persons, the AuditEvents of their own record.
// Handlers stay short: they authenticate through httpx, ask access.Decide,
// and hand the Grant to record, which logs before it returns data. Errors
// are OperationOutcomes. internal/router mounts it.
package fhirapi

import (
	"log/slog"
	"net/http"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/pki"
	"github.com/zorgkluis/zorgkluis/internal/record"
)

// Deps are what the handlers need.
type Deps struct {
	Sessions httpx.Guard // bearer sessions (public listener) or client certificates (API listener)
	IDs      *identity.Registry
	Access   *access.Decider
	Records  *record.Store
	Audit    *audit.Log
	Clock    clock.Clock
	Log      *slog.Logger
	Version  string
	BaseURL  string  // e.g. https://localhost:8443, the base of every fullUrl
	CA       *pki.CA // signed documents (DP-4); nil: POST /fhir/Bundle and _signed are off
}

// Server is the FHIR API.
type Server struct{ d Deps }

// New returns the FHIR API.
func New(d Deps) *Server { return &Server{d: d} }

// Mount registers the FHIR routes on mux.
func (s *Server) Mount(mux *http.ServeMux) { s.fhirRoutes(mux) }

type (
	caller         = httpx.Caller
	sessionHandler = httpx.SessionHandler
)

func (s *Server) withSession(h sessionHandler) http.HandlerFunc {
	return s.d.Sessions.Require(h, sessionFailed)
}

// sessionFailed answers a refused session as an OperationOutcome.
func sessionFailed(w http.ResponseWriter, r *http.Request, code int, _, detail string) {
	if code == http.StatusUnauthorized {
		outcome(w, r, code, "login", "log on first: "+detail)
		return
	}
	outcome(w, r, code, "transient", detail)
}
