package mgmtapi

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
	"github.com/zorgkluis/zorgkluis/internal/pki"
)

// pkiRoutes are the tenant's CA (DP-3): its application admins register
// systems, have their CSRs signed, renew and revoke certificates; a second
// admin or the security officer approves the tenant's intermediate and
// policy changes (GOV-1). Anyone may fetch a tenant's CRL and the chain.
func (s *Server) pkiRoutes(mux *http.ServeMux) {
	if s.d.CA == nil {
		return
	}
	mux.HandleFunc("GET /api/v1/pki/requests", s.withSession(s.pkiAdmin(s.pkiRequests)))
	mux.HandleFunc("POST /api/v1/pki/requests", s.withSession(s.pkiAdmin(s.pkiPropose)))
	mux.HandleFunc("POST /api/v1/pki/requests/{id}/approve", s.withSession(s.pkiAdmin(s.pkiDecide(true))))
	mux.HandleFunc("POST /api/v1/pki/requests/{id}/reject", s.withSession(s.pkiAdmin(s.pkiDecide(false))))
	mux.HandleFunc("GET /api/v1/pki/systems", s.withSession(s.pkiAdmin(s.pkiSystems)))
	mux.HandleFunc("POST /api/v1/pki/systems", s.withSession(s.pkiAdmin(s.pkiRegister)))
	mux.HandleFunc("POST /api/v1/pki/systems/{id}/deactivate", s.withSession(s.pkiAdmin(s.pkiDeactivate)))
	mux.HandleFunc("POST /api/v1/pki/systems/{id}/certificates", s.withSession(s.pkiAdmin(s.pkiIssue)))
	mux.HandleFunc("GET /api/v1/pki/certificates", s.withSession(s.pkiAdmin(s.pkiCertificates)))
	mux.HandleFunc("POST /api/v1/pki/certificates/{serial}/revoke", s.withSession(s.pkiAdmin(s.pkiRevoke)))
	mux.HandleFunc("GET /api/v1/pki/tenants/{tenant}/crl", s.pkiCRL)
	mux.HandleFunc("GET /api/v1/pki/tenants/{tenant}/chain", s.pkiChain)
}

// pkiAdmin lets the tenant's application admins and security officers in,
// at the assurance every change of the rules needs.
func (s *Server) pkiAdmin(h sessionHandler) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		role := c.Subject.Role()
		if (role != access.RoleAppAdmin && role != access.RoleSecurityOfficer) || c.Subject.TenantID() == "" {
			httpx.Problem(w, r, http.StatusForbidden, "Forbidden", "only the organisation's application admins and security officers manage its systems")
			return
		}
		if c.Subject.Assurance() < access.HealthDataLevel {
			httpx.Problem(w, r, http.StatusForbidden, "Forbidden", "log on with a second factor first")
			return
		}
		h(w, r, c)
	}
}

func (s *Server) pkiError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, pki.ErrInvalid):
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", err.Error())
	case errors.Is(err, pki.ErrNotFound):
		httpx.Problem(w, r, http.StatusNotFound, "Not found", err.Error())
	case errors.Is(err, pki.ErrForbidden):
		httpx.Problem(w, r, http.StatusForbidden, "Forbidden", err.Error())
	case errors.Is(err, pki.ErrConflict):
		httpx.Problem(w, r, http.StatusConflict, "Conflict", err.Error())
	default:
		s.unavailable(w, r, "pki", err)
	}
}

func (s *Server) pkiRequests(w http.ResponseWriter, r *http.Request, c caller) {
	rs, err := s.d.CA.Requests(r.Context(), c.Subject.TenantID())
	if err != nil {
		s.pkiError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"requests": rs})
}

func (s *Server) pkiPropose(w http.ResponseWriter, r *http.Request, c caller) {
	var in struct {
		Kind   string      `json:"kind"`
		Policy *pki.Policy `json:"policy"`
	}
	if !httpx.DecodeJSON(w, r, &in) {
		return
	}
	var req pki.Request
	var err error
	switch {
	case in.Kind == "intermediate":
		req, err = s.d.CA.ProposeIntermediate(r.Context(), actorEvent(r, c), c.Subject.TenantID())
	case in.Kind == "policy" && in.Policy != nil:
		req, err = s.d.CA.ProposePolicy(r.Context(), actorEvent(r, c), c.Subject.TenantID(), *in.Policy)
	default:
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", `kind must be "intermediate", or "policy" with a policy`)
		return
	}
	if err != nil {
		s.pkiError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, req)
}

func (s *Server) pkiDecide(approve bool) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		f := s.d.CA.Reject
		if approve {
			f = s.d.CA.Approve
		}
		req, err := f(r.Context(), actorEvent(r, c), r.PathValue("id"))
		if err != nil {
			s.pkiError(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, req)
	}
}

func (s *Server) pkiSystems(w http.ResponseWriter, r *http.Request, c caller) {
	ss, err := s.d.CA.Systems(r.Context(), c.Subject.TenantID())
	if err != nil {
		s.pkiError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"systems": ss})
}

// KnownCategory is a data category a system may be given: fhir's, or all.
func KnownCategory(c string) bool {
	return c == access.CategoryAll || slices.Contains(fhir.AllCategories(), c)
}

func (s *Server) pkiRegister(w http.ResponseWriter, r *http.Request, c caller) {
	var in pki.System
	if !httpx.DecodeJSON(w, r, &in) {
		return
	}
	in.TenantID = c.Subject.TenantID()
	sys, err := s.d.CA.RegisterSystem(r.Context(), actorEvent(r, c), in, KnownCategory)
	if err != nil {
		s.pkiError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, sys)
}

func (s *Server) pkiDeactivate(w http.ResponseWriter, r *http.Request, c caller) {
	n, err := s.d.CA.DeactivateSystem(r.Context(), actorEvent(r, c), c.Subject.TenantID(), r.PathValue("id"))
	if err != nil {
		s.pkiError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"deactivated": r.PathValue("id"), "certificates_revoked": n})
}

func (s *Server) pkiIssue(w http.ResponseWriter, r *http.Request, c caller) {
	var in struct {
		CSR     string `json:"csr"`
		Days    int    `json:"days"`
		Purpose string `json:"purpose"`
	}
	if !httpx.DecodeJSON(w, r, &in) {
		return
	}
	if in.Days < 0 {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", "days must be positive")
		return
	}
	cert, err := s.d.CA.Issue(r.Context(), actorEvent(r, c), c.Subject.TenantID(), r.PathValue("id"), in.Purpose, []byte(in.CSR),
		time.Duration(in.Days)*24*time.Hour)
	if err != nil {
		s.pkiError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, cert)
}

func (s *Server) pkiCertificates(w http.ResponseWriter, r *http.Request, c caller) {
	cs, err := s.d.CA.Certificates(r.Context(), c.Subject.TenantID())
	if err != nil {
		s.pkiError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"certificates": cs})
}

func (s *Server) pkiRevoke(w http.ResponseWriter, r *http.Request, c caller) {
	var in struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 && !httpx.DecodeJSON(w, r, &in) {
		return
	}
	if err := s.d.CA.Revoke(r.Context(), actorEvent(r, c), c.Subject.TenantID(), r.PathValue("serial"), in.Reason); err != nil {
		s.pkiError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"revoked": r.PathValue("serial")})
}

// pkiCRL serves the tenant CA's CRL (DER, next update within 7 days) for
// systems that check ours.
func (s *Server) pkiCRL(w http.ResponseWriter, r *http.Request) {
	der, err := s.d.CA.CRL(r.Context(), r.PathValue("tenant"))
	if err != nil {
		s.pkiError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Write(der)
}

func (s *Server) pkiChain(w http.ResponseWriter, r *http.Request) {
	chain, err := s.d.CA.Chain(r.Context(), r.PathValue("tenant"))
	if err != nil {
		s.pkiError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	for _, c := range chain {
		w.Write(pki.PEM(c.Raw))
	}
}
