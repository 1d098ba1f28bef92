package mgmtapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
)

// accessRoutes are the management endpoints of the access rules: care
// relationships and teams (application admin), delegation and emergency
// declaration (professional), the emergency review queue and security
// events (security officer), the operator procedure, representation, roles
// and the rights overview. Every endpoint checks the session's role itself
// (deny by default), and the access package checks again.
func (s *Server) accessRoutes(mux *http.ServeMux) {
	admin := []access.Role{access.RoleAppAdmin}
	officer := []access.Role{access.RoleSecurityOfficer}
	adminOrOfficer := []access.Role{access.RoleAppAdmin, access.RoleSecurityOfficer}
	prof := []access.Role{access.RoleProfessional}

	mux.HandleFunc("POST /api/v1/relationships", s.as(admin, s.postRelationship))
	mux.HandleFunc("POST /api/v1/relationships/{id}/end", s.as(admin, s.endRelationship))
	mux.HandleFunc("GET /api/v1/patients/{id}/relationships", s.as(adminOrOfficer, s.listRelationships))

	mux.HandleFunc("GET /api/v1/teams", s.as(adminOrOfficer, s.listTeams))
	mux.HandleFunc("POST /api/v1/teams", s.as(admin, s.postTeam))
	mux.HandleFunc("PUT /api/v1/teams/{id}/members/{account}", s.as(admin, s.teamMember(true)))
	mux.HandleFunc("DELETE /api/v1/teams/{id}/members/{account}", s.as(admin, s.teamMember(false)))
	mux.HandleFunc("PUT /api/v1/teams/{id}/patients/{patient}", s.as(admin, s.teamPatient(true)))
	mux.HandleFunc("DELETE /api/v1/teams/{id}/patients/{patient}", s.as(admin, s.teamPatient(false)))

	mux.HandleFunc("POST /api/v1/delegations", s.as(prof, s.postDelegation))
	mux.HandleFunc("GET /api/v1/delegations", s.as([]access.Role{access.RoleProfessional, access.RoleAppAdmin, access.RoleSecurityOfficer}, s.listDelegations))
	mux.HandleFunc("POST /api/v1/delegations/{id}/revoke", s.as([]access.Role{access.RoleProfessional, access.RoleAppAdmin}, s.revokeDelegation))

	mux.HandleFunc("POST /api/v1/representations", s.as(admin, s.postRepresentation))
	mux.HandleFunc("GET /api/v1/representations", s.as([]access.Role{access.RoleAppAdmin, access.RoleSecurityOfficer, access.RolePerson}, s.listRepresentations))
	mux.HandleFunc("POST /api/v1/representations/{id}/revoke", s.as(admin, s.revokeRepresentation))
	mux.HandleFunc("POST /api/v1/session/act-for", s.as([]access.Role{access.RolePerson}, s.actFor))

	mux.HandleFunc("POST /api/v1/emergencies", s.as(prof, s.postEmergency))
	mux.HandleFunc("GET /api/v1/emergencies", s.as(officer, s.listEmergencies))
	mux.HandleFunc("POST /api/v1/emergencies/{id}/review", s.as(officer, s.reviewEmergency))
	mux.HandleFunc("GET /api/v1/security-events", s.as(officer, s.listSecurityEvents))

	mux.HandleFunc("POST /api/v1/operator-requests", s.as([]access.Role{access.RoleOperator}, s.postOperatorRequest))
	mux.HandleFunc("GET /api/v1/operator-requests", s.as([]access.Role{access.RoleSecurityOfficer, access.RoleOperator}, s.operatorReport))
	mux.HandleFunc("POST /api/v1/operator-requests/{id}/decision", s.as(officer, s.decideOperatorRequest))

	mux.HandleFunc("GET /api/v1/rights", s.as(adminOrOfficer, s.rightsOverview))
	mux.HandleFunc("POST /api/v1/rights/requests", s.as(admin, s.postRightRequest))
	mux.HandleFunc("POST /api/v1/rights/requests/{id}/decision", s.as(adminOrOfficer, s.decideRight))
	mux.HandleFunc("POST /api/v1/rights/requests/{id}/revoke", s.as(adminOrOfficer, s.revokeRight))

	mux.HandleFunc("GET /api/v1/roles", s.as(adminOrOfficer, s.listRoles))
	mux.HandleFunc("POST /api/v1/roles", s.as(admin, s.proposeRole))
	mux.HandleFunc("POST /api/v1/roles/{id}/decision", s.as(adminOrOfficer, s.decideRole))
}

// as authenticates the session and lets only the given roles through, with
// a current right and assurance Hoog.
func (s *Server) as(roles []access.Role, h sessionHandler) http.HandlerFunc {
	return s.withSession(func(w http.ResponseWriter, r *http.Request, c caller) {
		if err := s.d.Access.CheckActor(r.Context(), c.Subject, roles...); err != nil {
			s.accessError(w, r, err)
			return
		}
		h(w, r, c)
	})
}

// accessError answers an error of the access package as a problem. Its
// messages are safe to show; an unknown patient and another tenant's
// patient give the same answer.
func (s *Server) accessError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, access.ErrForbidden):
		httpx.Problem(w, r, http.StatusForbidden, "Forbidden", err.Error())
	case errors.Is(err, access.ErrNotFound):
		httpx.Problem(w, r, http.StatusNotFound, "Not found", err.Error())
	case errors.Is(err, access.ErrInvalid):
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", err.Error())
	case errors.Is(err, access.ErrConflict):
		httpx.Problem(w, r, http.StatusConflict, "Conflict", err.Error())
	default:
		s.d.Log.ErrorContext(r.Context(), "access management failed", "err", err, "request_id", httpx.RequestID(r.Context()))
		httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "the service is temporarily unavailable")
	}
}

// validID checks a path id before it reaches a query.
func validID(w http.ResponseWriter, r *http.Request, names ...string) bool {
	for _, n := range names {
		if !fhir.ValidID(r.PathValue(n)) {
			httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", "invalid "+n)
			return false
		}
	}
	return true
}

func (s *Server) reply(w http.ResponseWriter, r *http.Request, code int, v any, err error) {
	if err != nil {
		s.accessError(w, r, err)
		return
	}
	if v == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	httpx.WriteJSON(w, code, v)
}

type relationshipBody struct {
	ProfessionalID string     `json:"professional_id"`
	PatientID      string     `json:"patient_id"`
	Kind           string     `json:"kind"`
	Start          *time.Time `json:"start,omitempty"`
	End            *time.Time `json:"end,omitempty"`
}

func (s *Server) postRelationship(w http.ResponseWriter, r *http.Request, c caller) {
	var b relationshipBody
	if !httpx.DecodeJSON(w, r, &b) {
		return
	}
	rel := access.Relationship{ProfessionalID: b.ProfessionalID, PatientID: b.PatientID, Kind: b.Kind, End: b.End}
	if b.Start != nil {
		rel.Start = *b.Start
	}
	out, err := s.d.Access.RecordRelationship(r.Context(), c.Subject, rel)
	s.reply(w, r, http.StatusCreated, out, err)
}

func (s *Server) endRelationship(w http.ResponseWriter, r *http.Request, c caller) {
	if !validID(w, r, "id") {
		return
	}
	s.reply(w, r, 0, nil, s.d.Access.EndRelationship(r.Context(), c.Subject, r.PathValue("id"), time.Time{}))
}

func (s *Server) listRelationships(w http.ResponseWriter, r *http.Request, c caller) {
	if !validID(w, r, "id") {
		return
	}
	out, err := s.d.Access.Relationships(r.Context(), c.Subject, r.PathValue("id"))
	s.reply(w, r, http.StatusOK, out, err)
}

func (s *Server) listTeams(w http.ResponseWriter, r *http.Request, c caller) {
	out, err := s.d.Access.Teams(r.Context(), c.Subject)
	s.reply(w, r, http.StatusOK, out, err)
}

func (s *Server) postTeam(w http.ResponseWriter, r *http.Request, c caller) {
	var b struct {
		Name string `json:"name"`
	}
	if !httpx.DecodeJSON(w, r, &b) {
		return
	}
	out, err := s.d.Access.CreateTeam(r.Context(), c.Subject, b.Name)
	s.reply(w, r, http.StatusCreated, out, err)
}

func (s *Server) teamMember(on bool) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		if !validID(w, r, "id", "account") {
			return
		}
		s.reply(w, r, 0, nil, s.d.Access.SetTeamMember(r.Context(), c.Subject, r.PathValue("id"), r.PathValue("account"), on))
	}
}

func (s *Server) teamPatient(on bool) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		if !validID(w, r, "id", "patient") {
			return
		}
		s.reply(w, r, 0, nil, s.d.Access.SetTeamPatient(r.Context(), c.Subject, r.PathValue("id"), r.PathValue("patient"), on))
	}
}

func (s *Server) postDelegation(w http.ResponseWriter, r *http.Request, c caller) {
	var b struct {
		To        string    `json:"to"`
		PatientID string    `json:"patient_id"`
		Reason    string    `json:"reason"`
		Until     time.Time `json:"until"`
	}
	if !httpx.DecodeJSON(w, r, &b) {
		return
	}
	out, err := s.d.Access.Delegate(r.Context(), c.Subject, b.To, b.PatientID, b.Reason, b.Until)
	s.reply(w, r, http.StatusCreated, out, err)
}

// listDelegations lists the tenant's delegations (a professional: their
// own, given or received), of one patient with ?patient=.
func (s *Server) listDelegations(w http.ResponseWriter, r *http.Request, c caller) {
	pid := r.URL.Query().Get("patient")
	if pid != "" && !fhir.ValidID(pid) {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", "invalid patient")
		return
	}
	out, err := s.d.Access.Delegations(r.Context(), c.Subject, pid)
	s.reply(w, r, http.StatusOK, out, err)
}

func (s *Server) revokeDelegation(w http.ResponseWriter, r *http.Request, c caller) {
	if !validID(w, r, "id") {
		return
	}
	s.reply(w, r, 0, nil, s.d.Access.RevokeDelegation(r.Context(), c.Subject, r.PathValue("id")))
}

func (s *Server) postRepresentation(w http.ResponseWriter, r *http.Request, c caller) {
	var b struct {
		RepresentativeID string     `json:"representative_id"`
		PatientID        string     `json:"patient_id"`
		Kind             string     `json:"kind"`
		Categories       []string   `json:"categories,omitempty"`
		Start            *time.Time `json:"start,omitempty"`
		End              *time.Time `json:"end,omitempty"`
		PatientBirthDate string     `json:"patient_birth_date,omitempty"`
	}
	if !httpx.DecodeJSON(w, r, &b) {
		return
	}
	rep := access.Representation{RepresentativeID: b.RepresentativeID, PatientID: b.PatientID, Kind: b.Kind, Categories: b.Categories,
		End: b.End, PatientBirthDate: b.PatientBirthDate}
	if b.Start != nil {
		rep.Start = *b.Start
	}
	out, err := s.d.Access.AddRepresentation(r.Context(), c.Subject, rep)
	s.reply(w, r, http.StatusCreated, out, err)
}

func (s *Server) listRepresentations(w http.ResponseWriter, r *http.Request, c caller) {
	out, err := s.d.Access.Representations(r.Context(), c.Subject)
	s.reply(w, r, http.StatusOK, out, err)
}

func (s *Server) revokeRepresentation(w http.ResponseWriter, r *http.Request, c caller) {
	if !validID(w, r, "id") {
		return
	}
	s.reply(w, r, 0, nil, s.d.Access.RevokeRepresentation(r.Context(), c.Subject, r.PathValue("id")))
}

// actFor makes the session act on behalf of a represented patient (AZ-4),
// or for the person themself again with an empty patient_id. Every later
// access states both the person and the patient in the log.
func (s *Server) actFor(w http.ResponseWriter, r *http.Request, c caller) {
	var b struct {
		PatientID string `json:"patient_id"`
	}
	if !httpx.DecodeJSON(w, r, &b) {
		return
	}
	if b.PatientID != "" && !fhir.ValidID(b.PatientID) {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", "invalid patient_id")
		return
	}
	err := s.d.Authn.ActFor(r.Context(), c.Token, b.PatientID, s.d.Access.MayRepresent)
	switch {
	case errors.Is(err, authn.ErrNotPermitted):
		httpx.Problem(w, r, http.StatusForbidden, "Forbidden", "no current representation of this patient")
	case err != nil:
		s.accessError(w, r, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) postEmergency(w http.ResponseWriter, r *http.Request, c caller) {
	var b struct {
		PatientID string `json:"patient_id"`
		Reason    string `json:"reason"`
	}
	if !httpx.DecodeJSON(w, r, &b) {
		return
	}
	out, err := s.d.Access.DeclareEmergency(r.Context(), c.Subject, b.PatientID, b.Reason)
	s.reply(w, r, http.StatusCreated, out, err)
}

func (s *Server) listEmergencies(w http.ResponseWriter, r *http.Request, c caller) {
	out, err := s.d.Access.EmergencyReviews(r.Context(), c.Subject, r.URL.Query().Get("pending") != "false")
	s.reply(w, r, http.StatusOK, out, err)
}

type decisionBody struct {
	Approve   bool   `json:"approve"`
	Justified bool   `json:"justified"`
	Note      string `json:"note"`
}

func (s *Server) reviewEmergency(w http.ResponseWriter, r *http.Request, c caller) {
	var b decisionBody
	if !validID(w, r, "id") || !httpx.DecodeJSON(w, r, &b) {
		return
	}
	out, err := s.d.Access.ReviewEmergency(r.Context(), c.Subject, r.PathValue("id"), b.Justified, b.Note)
	s.reply(w, r, http.StatusOK, out, err)
}

func (s *Server) listSecurityEvents(w http.ResponseWriter, r *http.Request, c caller) {
	since := s.d.Clock.Now().Add(-30 * 24 * time.Hour)
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", "since must be an RFC 3339 time")
			return
		}
		since = t
	}
	out, err := s.d.Access.SecurityEvents(r.Context(), c.Subject, since)
	s.reply(w, r, http.StatusOK, out, err)
}

func (s *Server) postOperatorRequest(w http.ResponseWriter, r *http.Request, c caller) {
	var b struct {
		TenantID        string   `json:"tenant_id"`
		PatientIDs      []string `json:"patient_ids"`
		Categories      []string `json:"categories"`
		Reason          string   `json:"reason"`
		DurationMinutes int64    `json:"duration_minutes"`
	}
	if !httpx.DecodeJSON(w, r, &b) {
		return
	}
	if b.DurationMinutes <= 0 || b.DurationMinutes > 24*60 {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", "duration_minutes must be 1..1440")
		return
	}
	out, err := s.d.Access.RequestOperatorAccess(r.Context(), c.Subject, access.OperatorRequest{TenantID: b.TenantID, PatientIDs: b.PatientIDs,
		Categories: b.Categories, Reason: b.Reason, Duration: time.Duration(b.DurationMinutes) * time.Minute})
	s.reply(w, r, http.StatusCreated, out, err)
}

func (s *Server) operatorReport(w http.ResponseWriter, r *http.Request, c caller) {
	out, err := s.d.Access.OperatorReport(r.Context(), c.Subject)
	s.reply(w, r, http.StatusOK, out, err)
}

func (s *Server) decideOperatorRequest(w http.ResponseWriter, r *http.Request, c caller) {
	var b decisionBody
	if !validID(w, r, "id") || !httpx.DecodeJSON(w, r, &b) {
		return
	}
	out, err := s.d.Access.DecideOperatorRequest(r.Context(), c.Subject, r.PathValue("id"), b.Approve, b.Note)
	s.reply(w, r, http.StatusOK, out, err)
}

func (s *Server) rightsOverview(w http.ResponseWriter, r *http.Request, c caller) {
	rights, pending, err := s.d.Access.RightsOverview(r.Context(), c.Subject)
	s.reply(w, r, http.StatusOK, map[string]any{"rights": rights, "pending": pending}, err)
}

func (s *Server) postRightRequest(w http.ResponseWriter, r *http.Request, c caller) {
	var b struct {
		AccountID  string     `json:"account_id"`
		Role       string     `json:"role"`
		ValidUntil *time.Time `json:"valid_until,omitempty"`
		Reason     string     `json:"reason"`
	}
	if !httpx.DecodeJSON(w, r, &b) {
		return
	}
	out, err := s.d.Access.RequestRight(r.Context(), c.Subject, access.RightRequest{AccountID: b.AccountID, Role: access.Role(b.Role),
		ValidUntil: b.ValidUntil, Reason: b.Reason})
	s.reply(w, r, http.StatusCreated, out, err)
}

func (s *Server) decideRight(w http.ResponseWriter, r *http.Request, c caller) {
	var b decisionBody
	if !validID(w, r, "id") || !httpx.DecodeJSON(w, r, &b) {
		return
	}
	out, err := s.d.Access.DecideRight(r.Context(), c.Subject, r.PathValue("id"), b.Approve, b.Note)
	s.reply(w, r, http.StatusOK, out, err)
}

func (s *Server) revokeRight(w http.ResponseWriter, r *http.Request, c caller) {
	if !validID(w, r, "id") {
		return
	}
	s.reply(w, r, 0, nil, s.d.Access.RevokeRight(r.Context(), c.Subject, r.PathValue("id")))
}

func (s *Server) listRoles(w http.ResponseWriter, r *http.Request, c caller) {
	out, err := s.d.Access.RoleDefs(r.Context(), c.Subject)
	s.reply(w, r, http.StatusOK, out, err)
}

func (s *Server) proposeRole(w http.ResponseWriter, r *http.Request, c caller) {
	var b access.RoleDef
	if !httpx.DecodeJSON(w, r, &b) {
		return
	}
	out, err := s.d.Access.ProposeRole(r.Context(), c.Subject, access.RoleDef{Name: b.Name, Base: b.Base, Actions: b.Actions, Categories: b.Categories})
	s.reply(w, r, http.StatusCreated, out, err)
}

func (s *Server) decideRole(w http.ResponseWriter, r *http.Request, c caller) {
	var b decisionBody
	if !validID(w, r, "id") || !httpx.DecodeJSON(w, r, &b) {
		return
	}
	out, err := s.d.Access.DecideRole(r.Context(), c.Subject, r.PathValue("id"), b.Approve, b.Note)
	s.reply(w, r, http.StatusOK, out, err)
}
