package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/onboard"
)

func (s *server) adminRoutes(mux *http.ServeMux) {
	admins := []access.Role{access.RoleAppAdmin, access.RoleSecurityOfficer}
	mux.HandleFunc("GET /admin/rights", s.authed(s.role(s.rights, admins...)))
	mux.HandleFunc("POST /admin/rights/request", s.authed(s.role(s.rightRequest, admins...)))
	mux.HandleFunc("POST /admin/rights/decide", s.authed(s.role(s.rightDecide, admins...)))
	mux.HandleFunc("POST /admin/rights/revoke", s.authed(s.role(s.rightRevoke, admins...)))
	mux.HandleFunc("GET /admin/relationships", s.authed(s.role(s.relationships, access.RoleAppAdmin)))
	mux.HandleFunc("POST /admin/relationships", s.authed(s.role(s.relationshipAdd, access.RoleAppAdmin)))
	mux.HandleFunc("POST /admin/relationships/end", s.authed(s.role(s.relationshipEnd, access.RoleAppAdmin)))
	mux.HandleFunc("GET /admin/teams", s.authed(s.role(s.teams, access.RoleAppAdmin)))
	mux.HandleFunc("POST /admin/teams", s.authed(s.role(s.teamChange, access.RoleAppAdmin)))
	mux.HandleFunc("GET /admin/accounts", s.authed(s.role(s.accounts, access.RoleAppAdmin)))
	mux.HandleFunc("POST /admin/accounts/deactivate", s.authed(s.role(s.deactivate, access.RoleAppAdmin)))
	if s.d.Onboard != nil {
		mux.HandleFunc("POST /admin/accounts/invite", s.authed(s.role(s.inviteStaff, access.RoleAppAdmin)))
	}
	mux.HandleFunc("GET /security/emergencies", s.authed(s.role(s.emergencies, access.RoleSecurityOfficer)))
	mux.HandleFunc("POST /security/emergencies", s.authed(s.role(s.emergencyReview, access.RoleSecurityOfficer)))
	mux.HandleFunc("GET /security/events", s.authed(s.role(s.securityEvents, access.RoleSecurityOfficer)))
	if s.d.Backups != nil {
		mux.HandleFunc("GET /security/backups", s.authed(s.role(s.backups, access.RoleSecurityOfficer)))
	}
	s.operatorRoutes(mux)
	s.roleRoutes(mux)
	mux.HandleFunc("GET /security/audit", s.authed(s.logReader(s.auditSearch)))
	mux.HandleFunc("POST /security/audit", s.authed(s.logReader(s.auditFind)))
	mux.HandleFunc("GET /security/audit/export", s.authed(s.logReader(s.auditExport)))
}

// logReader limits a page to subjects that access.DecideLogRead allows to
// inspect the tenant's log (a security officer whose role is current); a
// refusal is logged there, like every refused reading of the log (LOG-1,
// LOG-5). The page decides again when it opens the reading.
func (s *server) logReader(h sessionHandler) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
		if _, err := s.d.Access.DecideLogRead(r.Context(), c.subject, access.LogScope{}); err != nil {
			s.readFailed(w, r, err)
			return
		}
		h(w, r, c)
	}
}

// role limits a page to sessions acting in one of roles, checked by access
// (assurance Hoog, role still current).
func (s *server) role(h sessionHandler, roles ...access.Role) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
		if !s.requireRole(w, r, c, roles...) {
			return
		}
		h(w, r, c)
	}
}

// manageError renders a rule-management refusal on the page it came from,
// or fails.
func (s *server) manageError(w http.ResponseWriter, r *http.Request, err error, again func(msg string)) {
	if m, ok := userError(s.lang(w, r), err); ok {
		again(m)
		return
	}
	s.failed(w, r, err)
}

type rightsData struct {
	Rights   []access.Right
	Pending  []access.RightRequest
	Roles    []access.Role
	Problem  string
	Accounts map[string]string // account id -> user name, for the pending list
}

func (s *server) rights(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.renderRights(w, r, c, "", "")
}

func (s *server) renderRights(w http.ResponseWriter, r *http.Request, c *sessionCtx, message, problem string) {
	rights, pending, err := s.d.Access.RightsOverview(r.Context(), c.subject)
	if err != nil {
		s.manageError(w, r, err, func(m string) { s.errorPage(w, r, http.StatusForbidden, "err.forbidden") })
		return
	}
	d := &rightsData{Rights: rights, Pending: pending, Problem: problem, Accounts: map[string]string{}}
	for _, rt := range rights {
		d.Accounts[rt.AccountID] = rt.Username
	}
	for _, p := range pending {
		for _, id := range []string{p.AccountID, p.RequestedBy} {
			if _, ok := d.Accounts[id]; !ok {
				if a, err := s.d.IDs.Account(r.Context(), id); err == nil {
					d.Accounts[id] = a.Username
				}
			}
		}
	}
	defs, err := s.d.Access.RoleDefs(r.Context(), c.subject)
	if err == nil {
		for _, def := range defs {
			if (def.Status == "" || def.Status == "approved") && !slices.Contains(d.Roles, def.Name) {
				d.Roles = append(d.Roles, def.Name)
			}
		}
	}
	v := s.page(w, r, c, "admin.rights.title", d)
	v.Message = message
	s.render(w, r, http.StatusOK, "rights", v)
}

func (s *server) rightRequest(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	again := func(m string) { s.renderRights(w, r, c, "", m) }
	id, err := s.accountID(r, c, r.PostFormValue("username"))
	if err != nil {
		s.manageError(w, r, err, again)
		return
	}
	req := access.RightRequest{AccountID: id, Role: access.Role(r.PostFormValue("role")), Reason: strings.TrimSpace(r.PostFormValue("reason"))}
	if days, err := strconv.Atoi(r.PostFormValue("days")); err == nil && days > 0 {
		until := s.d.Clock.Now().AddDate(0, 0, days)
		req.ValidUntil = &until
	}
	if _, err := s.d.Access.RequestRight(r.Context(), c.subject, req); err != nil {
		s.manageError(w, r, err, again)
		return
	}
	s.renderRights(w, r, c, "admin.requested", "")
}

func (s *server) rightDecide(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	approve := r.PostFormValue("decision") == "approve"
	if _, err := s.d.Access.DecideRight(r.Context(), c.subject, r.PostFormValue("id"), approve, strings.TrimSpace(r.PostFormValue("note"))); err != nil {
		s.manageError(w, r, err, func(m string) { s.renderRights(w, r, c, "", m) })
		return
	}
	s.renderRights(w, r, c, "admin.decided", "")
}

func (s *server) rightRevoke(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if err := s.d.Access.RevokeRight(r.Context(), c.subject, r.PostFormValue("id")); err != nil {
		s.manageError(w, r, err, func(m string) { s.renderRights(w, r, c, "", m) })
		return
	}
	s.renderRights(w, r, c, "admin.decided", "")
}

type relData struct {
	PatientID     string
	Relationships []access.Relationship
	Names         map[string]string
	Problem       string
}

func (s *server) relationships(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.renderRelationships(w, r, c, r.URL.Query().Get("patient"), "", "")
}

func (s *server) renderRelationships(w http.ResponseWriter, r *http.Request, c *sessionCtx, pid, message, problem string) {
	d := &relData{PatientID: pid, Names: map[string]string{}, Problem: problem}
	if pid != "" && patientIDRE.MatchString(pid) {
		rels, err := s.d.Access.Relationships(r.Context(), c.subject, pid)
		if err != nil {
			s.manageError(w, r, err, func(m string) { d.Problem = m })
		}
		d.Relationships = rels
		for _, rl := range rels {
			if a, err := s.d.IDs.Account(r.Context(), rl.ProfessionalID); err == nil {
				d.Names[rl.ProfessionalID] = a.DisplayName + " (" + a.Username + ")"
			}
		}
	}
	v := s.page(w, r, c, "admin.rel.title", d)
	v.Message = message
	s.render(w, r, http.StatusOK, "relationships", v)
}

func (s *server) relationshipAdd(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	pid := strings.TrimSpace(r.PostFormValue("patient"))
	again := func(m string) { s.renderRelationships(w, r, c, pid, "", m) }
	pro, err := s.accountID(r, c, r.PostFormValue("professional"))
	if err != nil {
		s.manageError(w, r, err, again)
		return
	}
	if _, err := s.d.Access.RecordRelationship(r.Context(), c.subject, access.Relationship{
		ProfessionalID: pro, PatientID: pid, Kind: strings.TrimSpace(r.PostFormValue("kind"))}); err != nil {
		s.manageError(w, r, err, again)
		return
	}
	s.renderRelationships(w, r, c, pid, "admin.done", "")
}

func (s *server) relationshipEnd(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	pid := r.PostFormValue("patient")
	if err := s.d.Access.EndRelationship(r.Context(), c.subject, r.PostFormValue("id"), time.Time{}); err != nil {
		s.manageError(w, r, err, func(m string) { s.renderRelationships(w, r, c, pid, "", m) })
		return
	}
	s.renderRelationships(w, r, c, pid, "admin.done", "")
}

type teamsData struct {
	Teams   []access.Team
	Names   map[string]string
	Problem string
}

func (s *server) teams(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.renderTeams(w, r, c, "", "")
}

func (s *server) renderTeams(w http.ResponseWriter, r *http.Request, c *sessionCtx, message, problem string) {
	ts, err := s.d.Access.Teams(r.Context(), c.subject)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	d := &teamsData{Teams: ts, Names: map[string]string{}, Problem: problem}
	for _, t := range ts {
		for _, m := range t.Members {
			if a, err := s.d.IDs.Account(r.Context(), m); err == nil {
				d.Names[m] = a.DisplayName + " (" + a.Username + ")"
			}
		}
	}
	v := s.page(w, r, c, "admin.teams.title", d)
	v.Message = message
	s.render(w, r, http.StatusOK, "teams", v)
}

func (s *server) teamChange(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	again := func(m string) { s.renderTeams(w, r, c, "", m) }
	var err error
	switch r.PostFormValue("op") {
	case "create":
		_, err = s.d.Access.CreateTeam(r.Context(), c.subject, strings.TrimSpace(r.PostFormValue("name")))
	case "member":
		var id string
		if id, err = s.accountID(r, c, r.PostFormValue("username")); err == nil {
			err = s.d.Access.SetTeamMember(r.Context(), c.subject, r.PostFormValue("team"), id, true)
		}
	case "patient":
		err = s.d.Access.SetTeamPatient(r.Context(), c.subject, r.PostFormValue("team"), strings.TrimSpace(r.PostFormValue("patient")), true)
	default:
		err = access.ErrInvalid
	}
	if err != nil {
		s.manageError(w, r, err, again)
		return
	}
	s.renderTeams(w, r, c, "admin.done", "")
}

type accountsData struct {
	Rights  []access.Right
	Problem string
	Invite  bool                // the invitation form is offered
	Invited *onboard.Invitation // the invitation just made: its code is shown once
}

func (s *server) accounts(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.renderAccounts(w, r, c, "", "")
}

func (s *server) renderAccounts(w http.ResponseWriter, r *http.Request, c *sessionCtx, message, problem string) {
	rights, _, err := s.d.Access.RightsOverview(r.Context(), c.subject)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	s.renderAccountsData(w, r, c, http.StatusOK, message, &accountsData{Rights: rights, Problem: problem})
}

func (s *server) renderAccountsData(w http.ResponseWriter, r *http.Request, c *sessionCtx, status int, message string, d *accountsData) {
	d.Invite = s.d.Onboard != nil
	v := s.page(w, r, c, "admin.acc.title", d)
	v.Message = message
	s.render(w, r, status, "accounts", v)
}

// inviteProblem is the message for an invitation's wrong field in lang:
// the field's label and what it must be; a field without a message of its
// own (none the form sends) keeps onboard's English text.
func inviteProblem(lang string, ie *onboard.InputError) string {
	key := "inv.err." + ie.Field
	if _, ok := messages["nl"][key]; !ok {
		return ie.Error()
	}
	return msg(lang, key)
}

// inviteStaff invites a professional of the admin's tenant with their
// professional data and who verified it and how (ID-2). The account gets
// no role: that is a right request for a second person to approve (AZ-7).
func (s *server) inviteStaff(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	method, _ := strconv.Atoi(r.PostFormValue("registration_method"))
	src := audit.SourceFrom(r.Context())
	actor := audit.Event{TenantID: c.subject.TenantID(), UserID: c.subject.AccountID(), UserName: c.subject.Name(), Role: string(c.subject.Role()),
		Assurance: c.subject.Assurance().String(), SourceAddr: src.Addr, SourceApp: src.App, Device: src.Device, TraceID: src.TraceID, SessionID: src.SessionID}
	inv, err := s.d.Onboard.CreateInvitation(r.Context(), actor, onboard.Invite{TenantID: c.subject.TenantID(), Kind: identity.KindProfessional,
		Name: r.PostFormValue("name"), Email: r.PostFormValue("email"), RegistrationMethod: method, VerifiedBy: r.PostFormValue("verified_by"),
		Deliver: r.PostFormValue("deliver"), Professional: &identity.Professional{BIG: r.PostFormValue("big"), UZI: r.PostFormValue("uzi"),
			AGB: r.PostFormValue("agb"), FunctionTitle: r.PostFormValue("function")}})
	var ie *onboard.InputError
	if errors.As(err, &ie) {
		// The field's message in the page's language; nothing was created.
		rights, _, rerr := s.d.Access.RightsOverview(r.Context(), c.subject)
		if rerr != nil {
			s.failed(w, r, rerr)
			return
		}
		s.renderAccountsData(w, r, c, http.StatusBadRequest, "", &accountsData{Rights: rights, Problem: inviteProblem(s.lang(w, r), ie)})
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	rights, _, err := s.d.Access.RightsOverview(r.Context(), c.subject)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	s.renderAccountsData(w, r, c, http.StatusOK, "admin.done", &accountsData{Rights: rights, Invited: &inv})
}

// deactivate ends a leaver's access at once (ID-5), for an account of the
// admin's own tenant.
func (s *server) deactivate(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	// accountID answers another organisation's name like an unknown one.
	id, err := s.accountID(r, c, r.PostFormValue("username"))
	if err == nil && id == c.subject.AccountID() {
		err = identity.ErrNotFound // not one's own account
	}
	if err == nil {
		err = s.d.Authn.Deactivate(r.Context(), id)
	}
	if err != nil {
		s.manageError(w, r, err, func(m string) { s.renderAccounts(w, r, c, "", m) })
		return
	}
	s.renderAccounts(w, r, c, "admin.done", "")
}

type emergencyData struct {
	Emergencies []access.Emergency
	Names       map[string]string
	Patients    map[string]string // patient id -> name (queueNames); absent without one
	Problem     string
	Activity    *activityData // the last 30 days in a chart: this is the officer's start page
}

func (s *server) emergencies(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.renderEmergencies(w, r, c, "", "")
}

func (s *server) renderEmergencies(w http.ResponseWriter, r *http.Request, c *sessionCtx, message, problem string) {
	es, err := s.d.Access.EmergencyReviews(r.Context(), c.subject, false)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	d := &emergencyData{Emergencies: es, Names: map[string]string{}, Problem: problem}
	if d.Activity, err = s.securityActivity(r, c); err != nil {
		s.readFailed(w, r, err)
		return
	}
	var pids []string
	for _, e := range es {
		pids = append(pids, e.PatientID)
		if a, err := s.d.IDs.Account(r.Context(), e.ProfessionalID); err == nil {
			d.Names[e.ProfessionalID] = a.DisplayName
		}
	}
	if d.Patients, err = s.queueNames(r, c, pids); err != nil {
		s.failed(w, r, err)
		return
	}
	v := s.page(w, r, c, "sec.em.title", d)
	v.Message = message
	s.render(w, r, http.StatusOK, "emergencies", v)
}

func (s *server) emergencyReview(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	_, err := s.d.Access.ReviewEmergency(r.Context(), c.subject, r.PostFormValue("id"), r.PostFormValue("verdict") == "justified", strings.TrimSpace(r.PostFormValue("note")))
	if err != nil {
		s.manageError(w, r, err, func(m string) { s.renderEmergencies(w, r, c, "", m) })
		return
	}
	s.renderEmergencies(w, r, c, "admin.decided", "")
}

type eventLine struct {
	Time                  time.Time
	Kind, Account, Detail string
}

// securityEvents is the tenant's security-event queue, the same list the
// API's GET /api/v1/security-events answers: access's and authn's events
// alike (LOG-9).
func (s *server) securityEvents(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	since := s.d.Clock.Now().AddDate(0, 0, -30)
	evs, err := s.d.Access.SecurityEvents(r.Context(), c.subject, since)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	var lines []eventLine
	names, lang := map[string]string{}, s.lang(w, r)
	for _, e := range evs {
		detail := s.eventDetail(lang, e.Kind, e.Detail)
		name, ok := names[e.AccountID]
		if !ok && e.AccountID != "" {
			// The account by its name, not its id.
			a, err := s.d.IDs.Account(r.Context(), e.AccountID)
			switch {
			case err == nil:
				name = a.DisplayName + " (" + a.Username + ")"
			case errors.Is(err, identity.ErrNotFound):
				name = e.AccountID
			default:
				s.failed(w, r, err)
				return
			}
			names[e.AccountID] = name
		}
		lines = append(lines, eventLine{Time: e.Time, Kind: e.Kind, Account: name, Detail: strings.Join(nonEmpty(detail, e.Source, e.Ref), " ")})
	}
	s.render(w, r, http.StatusOK, "events", s.page(w, r, c, "sec.ev.title", lines))
}

func nonEmpty(vals ...string) []string {
	out := vals[:0]
	for _, v := range vals {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// readLog decides that the security officer may inspect the log and opens
// the selection; the reading is logged (NEN 7513: access to the log is
// logged too) before any line is shown (LOG-3).
func (s *server) readLog(r *http.Request, c *sessionCtx, f audit.Search, query template.URL) (*audit.Reading, error) {
	p, err := s.d.Access.DecideLogRead(r.Context(), c.subject, access.LogScope{})
	if err != nil {
		return nil, err
	}
	return s.d.Audit.Read(r.Context(), p, f, r.URL.Path+"?"+string(query))
}

// readFailed answers a failed inspection: a refusal as forbidden,
// anything else as unavailable.
func (s *server) readFailed(w http.ResponseWriter, r *http.Request, err error) {
	if access.IsDenied(err) {
		s.errorPage(w, r, http.StatusForbidden, "err.forbidden")
		return
	}
	s.failed(w, r, err)
}

// maxWebExport bounds one download; the API (GET /api/v1/audit/export)
// continues larger selections with next links.
const maxWebExport = 10000

// auditExport downloads the matching log lines, oldest first, for
// inspection with an exchange partner (LOG-5), at once: as the stored JSON
// events, as a FHIR Bundle of AuditEvents with IHE BALP codes, or as NDJSON
// AuditEvents. The export is logged before it is written.
func (s *server) auditExport(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	f, d, err := s.auditFilter(r.Context(), c, r.URL.Query())
	if err != nil {
		s.failed(w, r, err)
		return
	}
	if d.Problem != "" {
		s.errorPage(w, r, http.StatusBadRequest, "err.input")
		return
	}
	format := r.URL.Query().Get("format")
	switch format {
	case "":
		format = "json"
	case "json", "fhir", "ndjson":
	default:
		s.errorPage(w, r, http.StatusBadRequest, "err.input")
		return
	}
	f.Oldest, f.After, f.Limit = true, audit.Cursor{}, maxWebExport
	rd, err := s.readLog(r, c, f, d.Query+"&export="+template.URL(format))
	if err != nil {
		s.readFailed(w, r, err)
		return
	}
	var evs []audit.Event
	if _, err := rd.Each(r.Context(), func(e audit.Event) error {
		evs = append(evs, e)
		return nil
	}); err != nil {
		s.failed(w, r, err)
		return
	}
	if evs == nil {
		evs = []audit.Event{}
	}
	now := s.d.Clock.Now().UTC()
	server := s.d.BaseURL // configured, never the client's Host header
	var b []byte
	ext, ctype := ".json", "application/json"
	switch format {
	case "json":
		b, err = json.MarshalIndent(map[string]any{"exported": now, "tenant": c.subject.TenantID(), "events": evs}, "", "  ")
	case "fhir":
		entries := make([]map[string]any, len(evs))
		for i, e := range evs {
			entries[i] = map[string]any{"fullUrl": audit.EventURN(e.ID), "resource": audit.ToAuditEvent(e, server)}
		}
		b, err = json.Marshal(map[string]any{"resourceType": "Bundle", "type": "collection", "timestamp": now.Format(time.RFC3339), "entry": entries})
		ctype = "application/fhir+json"
	case "ndjson":
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for _, e := range evs {
			if err = enc.Encode(audit.ToAuditEvent(e, server)); err != nil {
				break
			}
		}
		b, ext, ctype = buf.Bytes(), ".ndjson", "application/x-ndjson"
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", `attachment; filename="zorgkluis-log-`+now.Format("20060102-150405")+ext+`"`)
	_, _ = w.Write(b)
}
