package mgmtapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/onboard"
	"github.com/zorgkluis/zorgkluis/internal/password"
)

// onboardRoutes: the operator's tenants and first administrators, the
// application admin's staff invitations, and the activation of an invited
// account (no session: the code and the second-channel secret are the
// credential, ID-6).
func (s *Server) onboardRoutes(mux *http.ServeMux) {
	if s.d.Onboard == nil {
		return
	}
	op := []access.Role{access.RoleOperator}
	mux.HandleFunc("GET /api/v1/tenants", s.as(op, s.listTenants))
	mux.HandleFunc("POST /api/v1/tenants", s.as(op, s.createTenant))
	mux.HandleFunc("POST /api/v1/tenants/{tenant}/deactivate", s.as(op, s.deactivateTenant))
	mux.HandleFunc("POST /api/v1/tenants/{tenant}/admins", s.as(op, s.inviteAdmin))
	mux.HandleFunc("POST /api/v1/accounts", s.as([]access.Role{access.RoleAppAdmin}, s.inviteStaff))
	mux.HandleFunc("POST /api/v1/patients/{patient}/invitations", s.as([]access.Role{access.RoleProfessional}, s.invitePerson))
	mux.HandleFunc("POST /api/v1/representatives", s.as([]access.Role{access.RoleAppAdmin}, s.inviteRepresentative))
	mux.HandleFunc("POST /api/v1/activation", s.activationStart)
	mux.HandleFunc("POST /api/v1/activation/complete", s.activationComplete)
}

// actorEvent is the audit template of the session's subject.
func actorEvent(r *http.Request, c caller) audit.Event {
	src := audit.SourceFrom(r.Context())
	return audit.Event{TenantID: c.Subject.TenantID(), UserID: c.Subject.AccountID(), UserName: c.Subject.Name(), Role: string(c.Subject.Role()),
		Assurance: c.Subject.Assurance().String(), SourceAddr: src.Addr, SourceApp: src.App, Device: src.Device, TraceID: src.TraceID, SessionID: src.SessionID}
}

// onboardError answers an error of onboard as a problem; the activation
// code's answer is the same whatever was wrong with it.
func (s *Server) onboardError(w http.ResponseWriter, r *http.Request, err error) {
	var ie *onboard.InputError
	var pv password.Violations
	switch {
	case errors.As(err, &ie):
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid input", ie.Error())
	case errors.Is(err, onboard.ErrDuplicate):
		httpx.Problem(w, r, http.StatusConflict, "Conflict", err.Error())
	case errors.Is(err, onboard.ErrInvalidCode), errors.Is(err, onboard.ErrTOTP), errors.Is(err, onboard.ErrRepresentation):
		httpx.Problem(w, r, http.StatusBadRequest, "Activation refused", err.Error())
	case errors.Is(err, onboard.ErrThrottled):
		w.Header().Set("Retry-After", "900")
		httpx.Problem(w, r, http.StatusTooManyRequests, "Too many attempts", err.Error())
	case errors.As(err, &pv):
		httpx.Problem(w, r, http.StatusUnprocessableEntity, "Password not accepted", pv.Error())
	default:
		s.d.Log.ErrorContext(r.Context(), "onboarding failed", "err", err, "request_id", httpx.RequestID(r.Context()))
		httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "the service is temporarily unavailable")
	}
}

type tenantJSON struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	URA    string `json:"ura"`
	AGB    string `json:"agb,omitempty"`
	Active bool   `json:"active"`
}

func (s *Server) listTenants(w http.ResponseWriter, r *http.Request, c caller) {
	ts, err := s.d.Onboard.Tenants(r.Context())
	if err != nil {
		s.onboardError(w, r, err)
		return
	}
	out := make([]tenantJSON, 0, len(ts))
	for _, t := range ts {
		out = append(out, tenantJSON{t.ID, t.Name, t.URA, t.AGB, t.Active})
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) createTenant(w http.ResponseWriter, r *http.Request, c caller) {
	var req struct {
		Name string `json:"name"`
		URA  string `json:"ura"`
		AGB  string `json:"agb"`
	}
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	t, err := s.d.Onboard.CreateTenant(r.Context(), actorEvent(r, c), req.Name, req.URA, req.AGB)
	if err != nil {
		s.onboardError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, tenantJSON{t.ID, t.Name, t.URA, t.AGB, true})
}

func (s *Server) deactivateTenant(w http.ResponseWriter, r *http.Request, c caller) {
	if err := s.d.Onboard.DeactivateTenant(r.Context(), actorEvent(r, c), r.PathValue("tenant")); err != nil {
		s.onboardError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type inviteRequest struct {
	Kind               string `json:"kind,omitempty"` // accounts: professional (default) or admin
	Role               string `json:"role,omitempty"` // tenants' admins: application-admin (default) or security-officer
	Name               string `json:"name"`
	Email              string `json:"email"`
	Phone              string `json:"phone,omitempty"`
	RegistrationMethod int    `json:"registration_method"`
	VerifiedBy         string `json:"verified_by"`
	Deliver            string `json:"deliver"`
	BIG                string `json:"big,omitempty"`
	UZI                string `json:"uzi,omitempty"`
	AGB                string `json:"agb,omitempty"`
	Function           string `json:"function,omitempty"`
}

type invitationJSON struct {
	AccountID string    `json:"account_id"`
	Username  string    `json:"username"`
	Code      string    `json:"code"`
	Link      string    `json:"link"`
	Expires   time.Time `json:"expires_at"`
	Letter    string    `json:"letter,omitempty"` // the sealed letter's file on the server
}

func (s *Server) invite(w http.ResponseWriter, r *http.Request, c caller, in onboard.Invite) {
	inv, err := s.d.Onboard.CreateInvitation(r.Context(), actorEvent(r, c), in)
	if err != nil {
		s.onboardError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, invitationJSON{inv.AccountID, inv.Username, inv.Code, inv.Link, inv.Expires, inv.Letter})
}

// inviteAdmin: the operator invites a tenant's first administrator (or
// its security officer), who gets that role with the invitation (AUTH-8).
func (s *Server) inviteAdmin(w http.ResponseWriter, r *http.Request, c caller) {
	var req inviteRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	role := req.Role
	if role == "" {
		role = string(access.RoleAppAdmin)
	}
	s.invite(w, r, c, onboard.Invite{TenantID: r.PathValue("tenant"), Kind: identity.KindAdmin, Name: req.Name, Email: req.Email, Phone: req.Phone,
		RegistrationMethod: req.RegistrationMethod, VerifiedBy: req.VerifiedBy, Deliver: req.Deliver, Role: role})
}

// inviteStaff: an application admin invites a professional or staff
// account of their own tenant with its verified professional data (ID-2).
// It holds no role: the first role is a right request approved by a
// second person (AZ-7).
func (s *Server) inviteStaff(w http.ResponseWriter, r *http.Request, c caller) {
	var req inviteRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	kind := req.Kind
	if kind == "" {
		kind = identity.KindProfessional
	}
	if kind != identity.KindProfessional && kind != identity.KindAdmin {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid input", "kind: professional or admin")
		return
	}
	in := onboard.Invite{TenantID: c.Subject.TenantID(), Kind: kind, Name: req.Name, Email: req.Email, Phone: req.Phone,
		RegistrationMethod: req.RegistrationMethod, VerifiedBy: req.VerifiedBy, Deliver: req.Deliver}
	if kind == identity.KindProfessional {
		in.Professional = &identity.Professional{BIG: req.BIG, UZI: req.UZI, AGB: req.AGB, FunctionTitle: req.Function}
	}
	s.invite(w, r, c, in)
}

type personInviteRequest struct {
	Name               string `json:"name"`
	Email              string `json:"email"`
	Phone              string `json:"phone,omitempty"`
	BirthDate          string `json:"birth_date,omitempty"`
	RegistrationMethod int    `json:"registration_method"`
	VerifiedBy         string `json:"verified_by"`
	Deliver            string `json:"deliver"`
}

// invitePerson: a professional of the patient's care, who has verified the
// person's identity at the desk (or sends a letter), hands over an
// activation code that links the new account to this record (AUTH-6:
// the registration method sets the account's assurance level). The
// professional must be allowed to update the patient's details; an
// emergency grant does not count.
func (s *Server) invitePerson(w http.ResponseWriter, r *http.Request, c caller) {
	var req personInviteRequest
	if !validID(w, r, "patient") || !httpx.DecodeJSON(w, r, &req) {
		return
	}
	g, err := s.d.Access.Decide(r.Context(), c.Subject, access.Request{PatientID: r.PathValue("patient"), Action: access.Update,
		Categories: []string{fhir.CategoryDemographics}, Purpose: "TREAT"})
	if err == nil && g.Emergency() {
		err = &access.Denied{Reason: "an activation code is not handed over under emergency access"}
	}
	var denied *access.Denied
	if errors.As(err, &denied) {
		httpx.Problem(w, r, http.StatusForbidden, "Forbidden", "access denied; the attempt has been logged")
		return
	}
	if err != nil {
		s.onboardError(w, r, err)
		return
	}
	s.invite(w, r, c, onboard.Invite{TenantID: c.Subject.TenantID(), Kind: identity.KindPerson, Name: req.Name, Email: req.Email, Phone: req.Phone,
		BirthDate: req.BirthDate, RegistrationMethod: req.RegistrationMethod, VerifiedBy: req.VerifiedBy, Deliver: req.Deliver, PatientID: g.PatientID()})
}

type representativeInviteRequest struct {
	personInviteRequest
	PatientID        string `json:"patient_id"`                   // the represented patient
	Representation   string `json:"representation"`               // parent, legal-representative or authorised
	PatientBirthDate string `json:"patient_birth_date,omitempty"` // for a parent: the child's
}

// inviteRepresentative: an application admin, who checked the evidence of
// the representation (birth certificate, court order, signed
// authorisation; AZ-4), invites the representative's person account (no
// record of their own). The invitation carries the representation, checked
// now by access as POST /api/v1/representations would; it is recorded in
// the activation's transaction, once the account is active, and covers
// every category a person may see (a narrower one is recorded with
// POST /api/v1/representations).
func (s *Server) inviteRepresentative(w http.ResponseWriter, r *http.Request, c caller) {
	var req representativeInviteRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return
	}
	rep, err := s.d.Access.CheckRepresentation(r.Context(), c.Subject, access.Representation{PatientID: req.PatientID,
		Kind: req.Representation, PatientBirthDate: req.PatientBirthDate})
	if err != nil {
		s.accessError(w, r, err)
		return
	}
	s.invite(w, r, c, onboard.Invite{TenantID: c.Subject.TenantID(), Kind: identity.KindPerson, Name: req.Name, Email: req.Email, Phone: req.Phone,
		BirthDate: req.BirthDate, RegistrationMethod: req.RegistrationMethod, VerifiedBy: req.VerifiedBy, Deliver: req.Deliver, Represents: &rep})
}

type activationRequest struct {
	Code     string `json:"code"`
	Secret   string `json:"secret"`
	Password string `json:"password,omitempty"`
	TOTP     string `json:"totp,omitempty"`
}

func (s *Server) decodeActivation(w http.ResponseWriter, r *http.Request) (activationRequest, bool) {
	var req activationRequest
	if !httpx.DecodeJSON(w, r, &req) {
		return req, false
	}
	if len(req.Code) > 128 || len(req.Secret) > 128 || len(req.Password) > 1024 || len(req.TOTP) > 16 {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid input", "a field is too long")
		return req, false
	}
	return req, true
}

// activationStart: code, secret and the chosen password; the answer is the
// authenticator app to enrol (the secret is shown once, no-store).
func (s *Server) activationStart(w http.ResponseWriter, r *http.Request) {
	req, ok := s.decodeActivation(w, r)
	if !ok {
		return
	}
	enr, err := s.d.Onboard.StartActivation(r.Context(), req.Code, req.Secret, req.Password, audit.SourceFrom(r.Context()).Addr)
	if err != nil {
		s.onboardError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"account_id": enr.AccountID, "username": enr.Username,
		"totp_uri": enr.URI, "totp_secret": enr.Secret, "next": "POST /api/v1/activation/complete with the app's code"})
}

// activationComplete: the first code of the app; then the account is active.
func (s *Server) activationComplete(w http.ResponseWriter, r *http.Request) {
	req, ok := s.decodeActivation(w, r)
	if !ok {
		return
	}
	acc, err := s.d.Onboard.CompleteActivation(r.Context(), req.Code, req.Secret, req.TOTP, audit.SourceFrom(r.Context()).Addr)
	if err != nil {
		s.onboardError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"account_id": acc.ID, "username": acc.Username, "active": acc.Active})
}
