package mgmtapi

import (
	"net/http"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
)

// changeRoutes are the four-eyes change requests (GOV-1) of every kind:
// the tenant's pending and recent requests, one request, and its decision.
// A kind's own endpoints (roles, rights, ...) propose; any request is
// decided here or there, by another admin than its proposer.
func (s *Server) changeRoutes(mux *http.ServeMux) {
	deciders := []access.Role{access.RoleAppAdmin, access.RoleSecurityOfficer, access.RoleOperator}
	mux.HandleFunc("GET /api/v1/changes", s.as(deciders, s.listChanges))
	mux.HandleFunc("GET /api/v1/changes/{id}", s.as(deciders, s.getChange))
	mux.HandleFunc("POST /api/v1/changes/{id}/approve", s.as(deciders, s.decideChange(true)))
	mux.HandleFunc("POST /api/v1/changes/{id}/reject", s.as(deciders, s.decideChange(false)))
}

func (s *Server) listChanges(w http.ResponseWriter, r *http.Request, c caller) {
	pending, recent, err := s.d.Access.ChangeRequests(r.Context(), c.Subject)
	s.reply(w, r, http.StatusOK, map[string]any{"pending": pending, "recent": recent}, err)
}

func (s *Server) getChange(w http.ResponseWriter, r *http.Request, c caller) {
	if !validID(w, r, "id") {
		return
	}
	out, err := s.d.Access.ChangeRequest(r.Context(), c.Subject, r.PathValue("id"))
	s.reply(w, r, http.StatusOK, out, err)
}

// decideChange takes an optional body {"note": "..."}.
func (s *Server) decideChange(approve bool) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		var b struct {
			Note string `json:"note"`
		}
		if !validID(w, r, "id") {
			return
		}
		if r.ContentLength != 0 && !httpx.DecodeJSON(w, r, &b) {
			return
		}
		out, err := s.d.Access.DecideChange(r.Context(), c.Subject, r.PathValue("id"), approve, b.Note)
		s.reply(w, r, http.StatusOK, out, err)
	}
}
