package web

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/pki"
)

// The organisation's third-party systems and their certificates (DP-3,
// ID-3): the page beside the admin API's /api/v1/pki, through the same
// pki calls, which log every change in the tenant's tamper-evident log.

func (s *server) systemRoutes(mux *http.ServeMux) {
	if s.d.CA == nil {
		return
	}
	h := func(f sessionHandler) http.HandlerFunc {
		return s.authed(s.role(s.pkiAssured(f), access.RoleAppAdmin, access.RoleSecurityOfficer))
	}
	mux.HandleFunc("GET /admin/systems", h(s.systems))
	mux.HandleFunc("POST /admin/systems", h(s.systemChange))
}

// pkiAssured asks for the assurance every change of the rules needs, as
// the API does.
func (s *server) pkiAssured(h sessionHandler) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
		if c.subject.Assurance() < access.HealthDataLevel {
			s.renderSystems(w, r, c, http.StatusForbidden, "", msg(s.lang(w, r), "pki.err.assurance"), nil)
			return
		}
		h(w, r, c)
	}
}

type systemsData struct {
	Systems  []systemView
	Requests []pki.Request
	Issued   *pki.Certificate // shown once, to copy to the system
	Problem  string
	Self     string // the admin's account id: their own requests are not theirs to approve
	Tenant   string
}

type systemView struct {
	pki.System
	Responsible string
	Certs       []certView
}

type certView struct {
	pki.Certificate
	Current  bool
	Expiring bool // current and within pki.ExpiryWarning of its end
}

func (s *server) systems(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.renderSystems(w, r, c, http.StatusOK, "", "", nil)
}

func (s *server) renderSystems(w http.ResponseWriter, r *http.Request, c *sessionCtx, status int, message, problem string, issued *pki.Certificate) {
	ctx, tenant := r.Context(), c.subject.TenantID()
	d := &systemsData{Problem: problem, Issued: issued, Self: c.subject.AccountID(), Tenant: tenant}
	if c.subject.Assurance() >= access.HealthDataLevel {
		syss, err := s.d.CA.Systems(ctx, tenant)
		if err != nil {
			s.failed(w, r, err)
			return
		}
		certs, err := s.d.CA.Certificates(ctx, tenant)
		if err != nil {
			s.failed(w, r, err)
			return
		}
		if d.Requests, err = s.d.CA.Requests(ctx, tenant); err != nil {
			s.failed(w, r, err)
			return
		}
		now := s.d.Clock.Now()
		for _, sys := range syss {
			v := systemView{System: sys, Responsible: sys.ResponsibleID}
			if a, err := s.d.IDs.Account(ctx, sys.ResponsibleID); err == nil {
				v.Responsible = a.DisplayName + " (" + a.Username + ")"
			}
			for _, cert := range certs {
				if cert.SystemID != sys.ID {
					continue
				}
				cur := cert.RevokedAt == nil && now.Before(cert.NotAfter) && !now.Before(cert.NotBefore)
				v.Certs = append(v.Certs, certView{Certificate: cert, Current: cur, Expiring: cur && cert.NotAfter.Sub(now) <= pki.ExpiryWarning})
			}
			d.Systems = append(d.Systems, v)
		}
	}
	v := s.page(w, r, c, "pki.title", d)
	v.Message = message
	s.render(w, r, status, "systems", v)
}

// systemChange is every form of the page; op names the change.
func (s *server) systemChange(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	ctx, tenant := r.Context(), c.subject.TenantID()
	src := audit.SourceFrom(ctx)
	actor := audit.Event{TenantID: tenant, UserID: c.subject.AccountID(), UserName: c.subject.Name(), Role: string(c.subject.Role()),
		Assurance: c.subject.Assurance().String(), SourceAddr: src.Addr, SourceApp: src.App, Device: src.Device, TraceID: src.TraceID, SessionID: src.SessionID}
	var issued *pki.Certificate
	var err error
	switch r.PostFormValue("op") {
	case "register":
		var resp string
		if resp, err = s.accountID(r, c, r.PostFormValue("responsible")); err == nil {
			_, err = s.d.CA.RegisterSystem(ctx, actor, pki.System{TenantID: tenant, Name: strings.TrimSpace(r.PostFormValue("name")), ResponsibleID: resp,
				Scopes: r.PostForm["scope"], Categories: fields(r.PostFormValue("categories"))}, knownCategory)
		}
	case "issue":
		days, perr := strconv.Atoi(strings.TrimSpace(r.PostFormValue("days")))
		if perr != nil || days <= 0 {
			err = fmt.Errorf("the validity in days must be a whole number of 1 or more: %w", pki.ErrInvalid)
			break
		}
		var cert pki.Certificate
		cert, err = s.d.CA.Issue(ctx, actor, tenant, r.PostFormValue("system"), r.PostFormValue("purpose"), []byte(r.PostFormValue("csr")), time.Duration(days)*24*time.Hour)
		issued = &cert
	case "revoke":
		err = s.d.CA.Revoke(ctx, actor, tenant, r.PostFormValue("serial"), strings.TrimSpace(r.PostFormValue("reason")))
	case "deactivate":
		_, err = s.d.CA.DeactivateSystem(ctx, actor, tenant, r.PostFormValue("system"))
	case "propose-intermediate":
		_, err = s.d.CA.ProposeIntermediate(ctx, actor, tenant)
	case "approve", "reject":
		f := s.d.CA.Reject
		if r.PostFormValue("op") == "approve" {
			f = s.d.CA.Approve
		}
		var req pki.Request
		if req, err = s.requestOf(r, tenant); err == nil {
			_, err = f(ctx, actor, req.ID)
		}
	default:
		err = fmt.Errorf("unknown change: %w", pki.ErrInvalid)
	}
	if err != nil {
		if status, ok := pkiStatus(err); ok {
			problem, known := pkiMessage(s.lang(w, r), err)
			if !known {
				problem = msg(s.lang(w, r), "err.input")
			}
			s.renderSystems(w, r, c, status, "", problem, nil)
			return
		}
		s.failed(w, r, err)
		return
	}
	if issued == nil {
		s.renderSystems(w, r, c, http.StatusOK, "admin.done", "", nil)
		return
	}
	s.renderSystems(w, r, c, http.StatusOK, "admin.done", "", issued)
}

// requestOf is the tenant's own four-eyes request named by the form: a
// request of another tenant is "not found" here, whatever pki would say.
func (s *server) requestOf(r *http.Request, tenant string) (pki.Request, error) {
	rs, err := s.d.CA.Requests(r.Context(), tenant)
	if err != nil {
		return pki.Request{}, err
	}
	i := slices.IndexFunc(rs, func(q pki.Request) bool { return q.ID == r.PostFormValue("request") })
	if i < 0 {
		return pki.Request{}, fmt.Errorf("no such request in this organisation: %w", pki.ErrNotFound)
	}
	return rs[i], nil
}

// pkiStatus is the page's status for a refusal of pki's; false: not one.
func pkiStatus(err error) (int, bool) {
	for _, e := range []struct {
		err    error
		status int
	}{{pki.ErrInvalid, http.StatusBadRequest}, {pki.ErrNotFound, http.StatusNotFound}, {pki.ErrForbidden, http.StatusForbidden},
		{pki.ErrConflict, http.StatusConflict}, {access.ErrNotFound, http.StatusNotFound}, {identity.ErrNotFound, http.StatusNotFound}} {
		if errors.Is(err, e.err) {
			return e.status, true
		}
	}
	return 0, false
}

func knownCategory(c string) bool {
	return c == access.CategoryAll || slices.Contains(fhir.AllCategories(), c)
}

// fields splits a comma- or space-separated list.
func fields(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
}
