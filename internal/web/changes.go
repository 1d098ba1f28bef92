package web

import (
	"net/http"
	"strings"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/change"
)

// The four-eyes page (GOV-1): every pending change request of the
// organisation, whatever its kind (a role, a right, ...), with a decision
// form for each one the admin did not propose and does not receive, and the
// recent decisions with who made them. The kinds' own pages (roles,
// rights) propose; this page and those decide through the same mechanism.

type changesData struct {
	Pending []changeLine
	Recent  []changeLine
	Names   map[string]string // account id -> user name
	Problem string
}

// changeLine is a request and whether the session may decide it.
type changeLine struct {
	change.Request
	Own bool // proposed by, or concerning, the session's account
	May bool // the session may decide it (not its own, a role that decides its kind)
}

func (s *server) changeRoutes(mux *http.ServeMux) {
	deciders := []access.Role{access.RoleAppAdmin, access.RoleSecurityOfficer}
	mux.HandleFunc("GET /governance/changes", s.authed(s.role(s.changes, deciders...)))
	mux.HandleFunc("POST /governance/changes/decide", s.authed(s.role(s.changeDecision, deciders...)))
}

func (s *server) changes(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.renderChanges(w, r, c, http.StatusOK, "", "")
}

func (s *server) renderChanges(w http.ResponseWriter, r *http.Request, c *sessionCtx, status int, message, problem string) {
	pending, recent, err := s.d.Access.ChangeRequests(r.Context(), c.subject)
	if err != nil {
		s.manageError(w, r, err, func(string) { s.errorPage(w, r, http.StatusForbidden, "err.forbidden") })
		return
	}
	me := c.subject.AccountID()
	d := &changesData{Names: map[string]string{}, Problem: problem}
	for _, set := range []struct {
		in  []change.Request
		out *[]changeLine
	}{{pending, &d.Pending}, {recent, &d.Recent}} {
		for _, q := range set.in {
			*set.out = append(*set.out, changeLine{Request: q, Own: q.ProposedBy == me || q.SubjectID == me, May: s.d.Access.MayDecideChange(c.subject, q)})
			for _, id := range []string{q.ProposedBy, q.DecidedBy} {
				if _, done := d.Names[id]; id != "" && !done {
					if a, err := s.d.IDs.Account(r.Context(), id); err == nil {
						d.Names[id] = a.Username
					}
				}
			}
		}
	}
	v := s.page(w, r, c, "chg.title", d)
	v.Message = message
	s.render(w, r, status, "changes", v)
}

// changeDecision approves or rejects a request; change refuses the
// proposer and the account concerned, and a stale request.
func (s *server) changeDecision(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	approve := r.PostFormValue("decision") == "approve"
	if _, err := s.d.Access.DecideChange(r.Context(), c.subject, r.PostFormValue("id"), approve, strings.TrimSpace(r.PostFormValue("note"))); err != nil {
		s.manageError(w, r, err, func(m string) { s.renderChanges(w, r, c, http.StatusOK, "", m) })
		return
	}
	s.renderChanges(w, r, c, http.StatusOK, "admin.decided", "")
}
