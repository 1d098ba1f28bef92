package mgmtapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/governance"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
)

// governanceRoutes are the registers an auditor asks for: the monthly
// access-rights review (GOV-2) and the incident register (GOV-4).
func (s *Server) governanceRoutes(mux *http.ServeMux) {
	if s.d.Governance == nil {
		return
	}
	mux.HandleFunc("GET /api/v1/reviews", s.as(governors, s.reviews))
	mux.HandleFunc("POST /api/v1/reviews", s.as(governors, s.openReview))
	mux.HandleFunc("GET /api/v1/reviews/{id}", s.as(governors, s.review))
	mux.HandleFunc("POST /api/v1/reviews/{id}/lines/{line}", s.as(governors, s.decideLine))
	mux.HandleFunc("POST /api/v1/reviews/{id}/close", s.as(governors, s.closeReview))
	mux.HandleFunc("GET /api/v1/reviews/{id}/evidence", s.as(governors, s.reviewEvidence))
	mux.HandleFunc("GET /api/v1/incidents", s.as(governors, s.incidents))
	mux.HandleFunc("POST /api/v1/incidents", s.as(governors, s.openIncident))
	mux.HandleFunc("GET /api/v1/incidents/{id}", s.as(governors, s.incident))
	mux.HandleFunc("POST /api/v1/incidents/{id}", s.as(governors, s.updateIncident))
	mux.HandleFunc("GET /api/v1/admin-log-reviews", s.as(governors, s.adminLogs))
	mux.HandleFunc("POST /api/v1/admin-log-reviews", s.as(governors, s.openAdminLog))
	mux.HandleFunc("GET /api/v1/admin-log-reviews/{id}", s.as(governors, s.adminLog))
	mux.HandleFunc("POST /api/v1/admin-log-reviews/{id}", s.as(governors, s.markAdminLog))
	mux.HandleFunc("POST /api/v1/admin-log-reviews/{id}/lines/{line}", s.as(governors, s.markAdminLogLine))
	mux.HandleFunc("POST /api/v1/admin-log-reviews/{id}/close", s.as(governors, s.closeAdminLog))
	mux.HandleFunc("GET /api/v1/admin-log-reviews/{id}/evidence", s.as(governors, s.adminLogEvidence))
}

// governors are the roles the registers are for; s.as checks that the
// account still holds the session's role (a right revoked in a review
// stops these routes at once, as the pages' requireRole does).
var governors = []access.Role{access.RoleAppAdmin, access.RoleSecurityOfficer}

func (s *Server) govError(w http.ResponseWriter, r *http.Request, err error) {
	var bad *governance.InvalidError
	switch {
	case errors.As(err, &bad):
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", err.Error())
	case errors.Is(err, governance.ErrForbidden):
		httpx.Problem(w, r, http.StatusForbidden, "Forbidden", "the organisation's security officer and application admins keep these registers, logged on with a second factor")
	case errors.Is(err, governance.ErrOwnLine):
		httpx.Problem(w, r, http.StatusForbidden, "Four eyes", "another reviewer decides on your own rights")
	case errors.Is(err, governance.ErrOwnAction):
		httpx.Problem(w, r, http.StatusForbidden, "Four eyes", "another reviewer marks your own admin actions")
	case errors.Is(err, access.ErrForbidden), access.IsDenied(err):
		httpx.Problem(w, r, http.StatusForbidden, "Forbidden", "only the security officer reads the organisation's log for the admin-log review")
	case errors.Is(err, governance.ErrNotFound):
		httpx.Problem(w, r, http.StatusNotFound, "Not found", "no such review, line or incident in this organisation")
	default:
		s.unavailable(w, r, "governance", err)
	}
}

func (s *Server) reviews(w http.ResponseWriter, r *http.Request, c caller) {
	rs, err := s.d.Governance.Reviews(r.Context(), c.Subject)
	if err != nil {
		s.govError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"reviews": rs})
}

func (s *Server) openReview(w http.ResponseWriter, r *http.Request, c caller) {
	var in struct {
		Period string `json:"period"`
	}
	if !httpx.DecodeJSON(w, r, &in) {
		return
	}
	rv, err := s.d.Governance.OpenReview(r.Context(), c.Subject, in.Period)
	if err != nil {
		s.govError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, rv)
}

func (s *Server) review(w http.ResponseWriter, r *http.Request, c caller) {
	rv, err := s.d.Governance.Review(r.Context(), c.Subject, r.PathValue("id"))
	if err != nil {
		s.govError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, rv)
}

func (s *Server) decideLine(w http.ResponseWriter, r *http.Request, c caller) {
	line, err := strconv.Atoi(r.PathValue("line"))
	if err != nil || line < 1 {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", "line: a line number")
		return
	}
	var in struct {
		Decision string `json:"decision"`
		Note     string `json:"note"`
	}
	if !httpx.DecodeJSON(w, r, &in) {
		return
	}
	if err := s.d.Governance.DecideLine(r.Context(), c.Subject, r.PathValue("id"), line, in.Decision, in.Note); err != nil {
		s.govError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) closeReview(w http.ResponseWriter, r *http.Request, c caller) {
	rv, err := s.d.Governance.CloseReview(r.Context(), c.Subject, r.PathValue("id"))
	if err != nil {
		s.govError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, rv)
}

// reviewEvidence returns the closed campaign's evidence byte for byte, with
// its SHA-256 in a header, for the auditor's file.
func (s *Server) reviewEvidence(w http.ResponseWriter, r *http.Request, c caller) {
	body, h, err := s.d.Governance.Evidence(r.Context(), c.Subject, r.PathValue("id"))
	if err != nil {
		s.govError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Digest", "sha-256="+h)
	w.Header().Set("Content-Disposition", `attachment; filename="access-review-`+r.PathValue("id")+`.json"`)
	_, _ = w.Write(body)
}

func (s *Server) incidents(w http.ResponseWriter, r *http.Request, c caller) {
	list, err := s.d.Governance.Incidents(r.Context(), c.Subject)
	if err != nil {
		s.govError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"incidents": list})
}

func (s *Server) openIncident(w http.ResponseWriter, r *http.Request, c caller) {
	var in struct {
		Title       string     `json:"title"`
		Description string     `json:"description"`
		SourceEvent string     `json:"source_event"`
		Discovered  *time.Time `json:"discovered_at"`
	}
	if !httpx.DecodeJSON(w, r, &in) {
		return
	}
	ni := governance.NewIncident{Title: in.Title, Description: in.Description, SourceEvent: in.SourceEvent}
	if in.Discovered != nil {
		ni.Discovered = *in.Discovered
	}
	inc, err := s.d.Governance.OpenIncident(r.Context(), c.Subject, ni)
	if err != nil {
		s.govError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, inc)
}

func (s *Server) incident(w http.ResponseWriter, r *http.Request, c caller) {
	inc, err := s.d.Governance.Incident(r.Context(), c.Subject, r.PathValue("id"))
	if err != nil {
		s.govError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, inc)
}

func (s *Server) updateIncident(w http.ResponseWriter, r *http.Request, c caller) {
	var in struct {
		Note       string `json:"note"`
		Evidence   string `json:"evidence"`
		ReportedTo string `json:"reported_to"`
		Close      bool   `json:"close"`
	}
	if !httpx.DecodeJSON(w, r, &in) {
		return
	}
	inc, err := s.d.Governance.UpdateIncident(r.Context(), c.Subject, r.PathValue("id"), governance.Update{Note: in.Note, Evidence: in.Evidence,
		ReportedTo: in.ReportedTo, Close: in.Close})
	if err != nil {
		s.govError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, inc)
}

func (s *Server) adminLogs(w http.ResponseWriter, r *http.Request, c caller) {
	rs, err := s.d.Governance.AdminLogs(r.Context(), c.Subject)
	if err != nil {
		s.govError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"admin_log_reviews": rs})
}

// openAdminLog makes a month's admin-log review (LOG-7); the officer's.
func (s *Server) openAdminLog(w http.ResponseWriter, r *http.Request, c caller) {
	var in struct {
		Period string `json:"period"`
	}
	if !httpx.DecodeJSON(w, r, &in) {
		return
	}
	rep, err := s.d.Governance.OpenAdminLog(r.Context(), c.Subject, in.Period)
	if err != nil {
		s.govError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, rep)
}

func (s *Server) adminLog(w http.ResponseWriter, r *http.Request, c caller) {
	rep, err := s.d.Governance.AdminLog(r.Context(), c.Subject, r.PathValue("id"))
	if err != nil {
		s.govError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, rep)
}

func (s *Server) markAdminLogLine(w http.ResponseWriter, r *http.Request, c caller) {
	line, err := strconv.Atoi(r.PathValue("line"))
	if err != nil || line < 1 {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", "line: a line number")
		return
	}
	var in struct {
		Finding  string `json:"finding"`
		FollowUp string `json:"follow_up"`
	}
	if !httpx.DecodeJSON(w, r, &in) {
		return
	}
	if err := s.d.Governance.MarkAdminLogLine(r.Context(), c.Subject, r.PathValue("id"), line, in.Finding, in.FollowUp); err != nil {
		s.govError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// markAdminLog records the report's finding; rest_ok marks every other
// unreviewed line ok, never the reviewer's own.
func (s *Server) markAdminLog(w http.ResponseWriter, r *http.Request, c caller) {
	var in struct {
		Finding  string `json:"finding"`
		FollowUp string `json:"follow_up"`
		RestOK   bool   `json:"rest_ok"`
	}
	if !httpx.DecodeJSON(w, r, &in) {
		return
	}
	n, err := s.d.Governance.MarkAdminLog(r.Context(), c.Subject, r.PathValue("id"), governance.ReportMark{Finding: in.Finding, FollowUp: in.FollowUp, RestOK: in.RestOK})
	if err != nil {
		s.govError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]int{"lines_marked": n})
}

func (s *Server) closeAdminLog(w http.ResponseWriter, r *http.Request, c caller) {
	rep, err := s.d.Governance.CloseAdminLog(r.Context(), c.Subject, r.PathValue("id"))
	if err != nil {
		s.govError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, rep)
}

func (s *Server) adminLogEvidence(w http.ResponseWriter, r *http.Request, c caller) {
	body, h, err := s.d.Governance.AdminLogEvidence(r.Context(), c.Subject, r.PathValue("id"))
	if err != nil {
		s.govError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Digest", "sha-256="+h)
	w.Header().Set("Content-Disposition", `attachment; filename="admin-log-review-`+r.PathValue("id")+`.json"`)
	_, _ = w.Write(body)
}
