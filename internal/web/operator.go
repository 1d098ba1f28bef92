package web

import (
	"net/http"
	"strings"

	"github.com/zorgkluis/zorgkluis/internal/access"
)

// operatorRoutes are the security officer's pages of the operator procedure
// (AZ-6): the report of every operator request for the tenant, with the
// accesses logged under each, and the approval or rejection of pending ones.
// Operators file their requests on their own page (operator_own.go) or
// through the API.
func (s *server) operatorRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /security/operator-requests", s.authed(s.role(s.operatorRequests, access.RoleSecurityOfficer)))
	mux.HandleFunc("POST /security/operator-requests", s.authed(s.role(s.operatorDecide, access.RoleSecurityOfficer)))
	s.operatorOwnRoutes(mux)
}

type operatorData struct {
	Requests []access.OperatorRequest
	Names    map[string]string // operator and officer account id -> display name
	Patients map[string]string // patient id -> name (queueNames); absent without one
	Problem  string
}

func (s *server) operatorRequests(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.renderOperatorRequests(w, r, c, "", "")
}

func (s *server) renderOperatorRequests(w http.ResponseWriter, r *http.Request, c *sessionCtx, message, problem string) {
	reqs, err := s.d.Access.OperatorReport(r.Context(), c.subject)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	d := &operatorData{Requests: reqs, Names: map[string]string{}, Problem: problem}
	for _, q := range reqs {
		for _, id := range []string{q.OperatorID, q.DecidedBy} {
			if _, done := d.Names[id]; id == "" || done {
				continue
			}
			if a, err := s.d.IDs.Account(r.Context(), id); err == nil {
				d.Names[id] = a.DisplayName
			}
		}
	}
	var pids []string
	for _, q := range reqs {
		pids = append(pids, q.PatientIDs...)
	}
	if d.Patients, err = s.queueNames(r, c, pids); err != nil {
		s.failed(w, r, err)
		return
	}
	v := s.page(w, r, c, "sec.op.title", d)
	v.Message = message
	s.render(w, r, http.StatusOK, "operators", v)
}

// operatorDecide approves or rejects one request; access checks that the
// officer belongs to the request's tenant and gave a note.
func (s *server) operatorDecide(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	approve := r.PostFormValue("decision") == "approve"
	_, err := s.d.Access.DecideOperatorRequest(r.Context(), c.subject, r.PostFormValue("id"), approve, strings.TrimSpace(r.PostFormValue("note")))
	if err != nil {
		s.manageError(w, r, err, func(m string) { s.renderOperatorRequests(w, r, c, "", m) })
		return
	}
	s.renderOperatorRequests(w, r, c, "admin.decided", "")
}
