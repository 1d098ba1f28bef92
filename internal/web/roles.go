package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
)

// The roles page (AZ-2, AZ-7, AZ-9): the organisation's roles with what
// each may do with which data, every version of its own roles with who
// proposed and who decided, and a proposal for a new role (or a new version)
// that takes effect only when a second admin approves it (access.ProposeRole
// and DecideRole, on the one four-eyes mechanism, internal/change; the
// proposal is also decidable on /governance/changes).

type roleForm struct {
	Name, Base          string
	Actions, Categories []string
}

type rolesData struct {
	Roles      []access.RoleDef // predefined first, then the tenant's versions, newest first per name
	Pending    []access.RoleDef
	Names      map[string]string // account id -> user name
	Bases      []choice
	Actions    []choice
	Categories []choice
	Form       roleForm
	Propose    bool // the session may propose (application admins)
	Problem    string
}

// roleBases are the rules a tenant's own role can build on.
var roleBases = []access.Role{access.RoleProfessional, access.RoleAssistant}

func (s *server) roleRoutes(mux *http.ServeMux) {
	admins := []access.Role{access.RoleAppAdmin, access.RoleSecurityOfficer}
	mux.HandleFunc("GET /admin/roles", s.authed(s.role(s.roles, admins...)))
	mux.HandleFunc("POST /admin/roles", s.authed(s.role(s.roleProposal, access.RoleAppAdmin)))
	mux.HandleFunc("POST /admin/roles/decide", s.authed(s.role(s.roleDecision, admins...)))
}

func (s *server) roles(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.renderRoles(w, r, c, http.StatusOK, "", roleForm{Base: string(access.RoleProfessional)}, "")
}

func (s *server) renderRoles(w http.ResponseWriter, r *http.Request, c *sessionCtx, status int, message string, form roleForm, problem string) {
	defs, err := s.d.Access.RoleDefs(r.Context(), c.subject)
	if err != nil {
		s.manageError(w, r, err, func(string) { s.errorPage(w, r, http.StatusForbidden, "err.forbidden") })
		return
	}
	d := &rolesData{Names: map[string]string{}, Form: form, Propose: c.subject.Role() == access.RoleAppAdmin, Problem: problem}
	for _, def := range defs {
		if def.Status == "pending" {
			d.Pending = append(d.Pending, def)
		} else {
			d.Roles = append(d.Roles, def)
		}
		for _, id := range []string{def.ProposedBy, def.DecidedBy} {
			if _, done := d.Names[id]; id != "" && !done {
				if a, err := s.d.IDs.Account(r.Context(), id); err == nil {
					d.Names[id] = a.Username
				}
			}
		}
	}
	for _, b := range roleBases {
		d.Bases = append(d.Bases, choice{Value: string(b), Checked: form.Base == string(b)})
	}
	for _, a := range access.Actions() {
		d.Actions = append(d.Actions, choice{Value: string(a), Checked: slices.Contains(form.Actions, string(a))})
	}
	for _, cat := range append(fhir.AllCategories(), access.CategoryAll) {
		d.Categories = append(d.Categories, choice{Value: cat, Checked: slices.Contains(form.Categories, cat)})
	}
	v := s.page(w, r, c, "roles.title", d)
	v.Message = message
	s.render(w, r, status, "roles", v)
}

// roleProposal proposes a role; access checks the name, that the actions and
// categories are within the base role's, and records who proposed it.
func (s *server) roleProposal(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "err.input")
		return
	}
	form := roleForm{Name: strings.TrimSpace(r.PostFormValue("name")), Base: r.PostFormValue("base"), Actions: r.PostForm["action"], Categories: r.PostForm["category"]}
	def := access.RoleDef{Name: access.Role(form.Name), Base: access.Role(form.Base), Categories: form.Categories}
	for _, a := range form.Actions {
		def.Actions = append(def.Actions, access.Action(a))
	}
	if _, err := s.d.Access.ProposeRole(r.Context(), c.subject, def); err != nil {
		s.manageError(w, r, err, func(m string) { s.renderRoles(w, r, c, http.StatusBadRequest, "", form, m) })
		return
	}
	s.renderRoles(w, r, c, http.StatusOK, "roles.proposed", roleForm{Base: string(access.RoleProfessional)}, "")
}

// roleDecision approves or rejects a pending role; access refuses the
// proposer (four eyes).
func (s *server) roleDecision(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	approve := r.PostFormValue("decision") == "approve"
	again := roleForm{Base: string(access.RoleProfessional)}
	if _, err := s.d.Access.DecideRole(r.Context(), c.subject, r.PostFormValue("id"), approve, strings.TrimSpace(r.PostFormValue("note"))); err != nil {
		s.manageError(w, r, err, func(m string) { s.renderRoles(w, r, c, http.StatusOK, "", again, m) })
		return
	}
	s.renderRoles(w, r, c, http.StatusOK, "admin.decided", again, "")
}
