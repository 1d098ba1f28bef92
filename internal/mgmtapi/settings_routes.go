package mgmtapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
)

// settingsRoutes are the organisation's log-on settings: whether SMS and
// e-mail codes may be used (the weak-factor switch, AUTH-2) and password
// expiry. A change is a four-eyes change request (GOV-1), decided by
// another application admin at /api/v1/changes.
func (s *Server) settingsRoutes(mux *http.ServeMux) {
	adminOrOfficer := []access.Role{access.RoleAppAdmin, access.RoleSecurityOfficer}
	mux.HandleFunc("GET /api/v1/logon-settings", s.as(adminOrOfficer, s.logonSettings))
	mux.HandleFunc("PUT /api/v1/logon-settings", s.as([]access.Role{access.RoleAppAdmin}, s.proposeLogonSettings))
}

type logonSettingsBody struct {
	WeakFactors        *bool `json:"weak_factors"`
	PasswordMaxAgeDays int   `json:"password_max_age_days"` // 0: no expiry
}

func (s *Server) logonSettings(w http.ResponseWriter, r *http.Request, c caller) {
	t, err := s.d.Authn.TenantSettings(r.Context(), c.Subject.TenantID())
	if err != nil {
		s.unavailable(w, r, "logon settings", err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"weak_factors": t.WeakFactors, "password_max_age_days": int(t.PasswordMaxAge / (24 * time.Hour))})
}

func (s *Server) proposeLogonSettings(w http.ResponseWriter, r *http.Request, c caller) {
	var b logonSettingsBody
	if !httpx.DecodeJSON(w, r, &b) {
		return
	}
	if b.WeakFactors == nil || b.PasswordMaxAgeDays < 0 || b.PasswordMaxAgeDays > 730 {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", "weak_factors (true or false) is required; password_max_age_days is 0 (off) or 30 to 730")
		return
	}
	req, err := s.d.Authn.ProposeTenantSettings(r.Context(), access.ChangeActor(c.Subject),
		authn.TenantAuthSettings{WeakFactors: *b.WeakFactors, PasswordMaxAge: time.Duration(b.PasswordMaxAgeDays) * 24 * time.Hour})
	switch {
	case errors.Is(err, authn.ErrNoSender), errors.Is(err, authn.ErrSettingsInvalid):
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", err.Error())
		return
	case err != nil:
		s.unavailable(w, r, "propose logon settings", err)
		return
	}
	// Accepted, not applied: another admin approves the change (GOV-1).
	httpx.WriteJSON(w, http.StatusAccepted, map[string]any{"change_request": req.ID, "summary": req.Summary})
}
