package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/compliance"
	"github.com/zorgkluis/zorgkluis/internal/governance"
)

// The compliance report and the controls register (GOV-3), and the
// monthly admin-log review (LOG-7), for the application admins and the
// security officer.

func (s *server) complianceRoutes(mux *http.ServeMux) {
	if s.d.Compliance != nil {
		mux.HandleFunc("GET /governance/controls", s.authed(s.controlsPage))
		mux.HandleFunc("GET /governance/controls/{fw}/{ref}", s.authed(s.controlPage))
		mux.HandleFunc("POST /governance/controls/{fw}/{ref}", s.authed(s.controlUpdate))
		mux.HandleFunc("POST /governance/controls/{fw}/{ref}/documents", s.authed(s.controlUpload))
		mux.HandleFunc("GET /governance/documents/{id}", s.authed(s.controlDocument))
	}
	if s.d.Governance != nil {
		mux.HandleFunc("GET /governance/admin-log", s.authed(s.adminLogList))
		mux.HandleFunc("POST /governance/admin-log", s.authed(s.adminLogOpen))
		mux.HandleFunc("GET /governance/admin-log/{id}", s.authed(s.adminLogPage))
		mux.HandleFunc("POST /governance/admin-log/{id}/lines", s.authed(s.adminLogMarkLine))
		mux.HandleFunc("POST /governance/admin-log/{id}/mark", s.authed(s.adminLogMark))
		mux.HandleFunc("POST /governance/admin-log/{id}/close", s.authed(s.adminLogClose))
	}
}

func (s *server) complianceFailed(w http.ResponseWriter, r *http.Request, err error) {
	var bad *compliance.InvalidError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &bad):
		s.errorPage(w, r, http.StatusBadRequest, "ctl.err.invalid")
	case errors.Is(err, compliance.ErrTooLarge), errors.As(err, &tooBig):
		s.errorPage(w, r, http.StatusRequestEntityTooLarge, "ctl.err.toolarge")
	case errors.Is(err, compliance.ErrContentType):
		s.errorPage(w, r, http.StatusUnsupportedMediaType, "ctl.err.type")
	case errors.Is(err, compliance.ErrForbidden):
		s.errorPage(w, r, http.StatusForbidden, "err.forbidden")
	case errors.Is(err, compliance.ErrNotFound):
		s.errorPage(w, r, http.StatusNotFound, "err.notfound")
	default:
		s.failed(w, r, err)
	}
}

func (s *server) controlsPage(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if !s.reviewer(w, r, c) {
		return
	}
	rep, err := s.d.Compliance.ReportFor(r.Context(), c.subject)
	if err != nil {
		s.complianceFailed(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "controls", s.page(w, r, c, "ctl.title", rep))
}

type controlData struct {
	Row  compliance.Row
	Path string // /governance/controls/<id>
}

func (s *server) controlPage(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if !s.reviewer(w, r, c) {
		return
	}
	id := r.PathValue("fw") + "/" + r.PathValue("ref")
	rep, err := s.d.Compliance.ReportFor(r.Context(), c.subject)
	if err != nil {
		s.complianceFailed(w, r, err)
		return
	}
	for _, row := range rep.Controls {
		if row.ID == id {
			v := s.page(w, r, c, "ctl.control", controlData{Row: row, Path: "/governance/controls/" + id})
			if r.URL.Query().Has("saved") {
				v.Message = "ctl.saved"
			}
			s.render(w, r, http.StatusOK, "control", v)
			return
		}
	}
	s.errorPage(w, r, http.StatusNotFound, "err.notfound")
}

func (s *server) controlUpdate(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if !s.reviewer(w, r, c) {
		return
	}
	id := r.PathValue("fw") + "/" + r.PathValue("ref")
	applicable := r.PostFormValue("applicable") == "yes"
	u := compliance.Update{Applicable: &applicable}
	for _, f := range []struct {
		name string
		to   **string
	}{{"justification", &u.Justification}, {"audit_method", &u.AuditMethod}, {"responsible", &u.Responsible}, {"notes", &u.Notes}} {
		v := r.PostFormValue(f.name)
		*f.to = &v
	}
	if d := strings.TrimSpace(r.PostFormValue("done")); d != "" {
		t, err := time.ParseInLocation(time.DateOnly, d, clock.Amsterdam())
		if err != nil {
			s.errorPage(w, r, http.StatusBadRequest, "ctl.err.invalid")
			return
		}
		u.Done = &t
	}
	if _, err := s.d.Compliance.UpdateEntry(r.Context(), c.subject, id, u); err != nil {
		s.complianceFailed(w, r, err)
		return
	}
	http.Redirect(w, r, "/governance/controls/"+id+"?saved=1", http.StatusSeeOther)
}

func (s *server) controlUpload(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if !s.reviewer(w, r, c) {
		return
	}
	id := r.PathValue("fw") + "/" + r.PathValue("ref")
	f, h, err := r.FormFile("document")
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.complianceFailed(w, r, err)
			return
		}
		s.errorPage(w, r, http.StatusBadRequest, "ctl.err.invalid")
		return
	}
	defer f.Close()
	if _, err := s.d.Compliance.Attach(r.Context(), c.subject, id, h.Filename, f); err != nil {
		s.complianceFailed(w, r, err)
		return
	}
	http.Redirect(w, r, "/governance/controls/"+id+"?saved=1", http.StatusSeeOther)
}

func (s *server) controlDocument(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if !s.reviewer(w, r, c) {
		return
	}
	d, body, err := s.d.Compliance.Document(r.Context(), c.subject, r.PathValue("id"))
	if err != nil {
		s.complianceFailed(w, r, err)
		return
	}
	w.Header().Set("Content-Type", d.ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Content-Disposition", `attachment; filename="`+d.ID+`"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(body)
}

// adminLogFailed answers an admin-log review error.
func (s *server) adminLogFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, governance.ErrOwnAction):
		s.errorPage(w, r, http.StatusForbidden, "alr.err.own")
	case access.IsDenied(err):
		s.errorPage(w, r, http.StatusForbidden, "err.forbidden")
	default:
		s.reviewFailed(w, r, err)
	}
}

func (s *server) adminLogList(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if !s.reviewer(w, r, c) {
		return
	}
	rs, err := s.d.Governance.AdminLogs(r.Context(), c.subject)
	if err != nil {
		s.adminLogFailed(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "adminlogs", s.page(w, r, c, "alr.title", struct {
		Reports []governance.AdminLogReport
		Officer bool
	}{rs, c.sess.Role == access.RoleSecurityOfficer}))
}

func (s *server) adminLogOpen(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if !s.requireRole(w, r, c, access.RoleSecurityOfficer) {
		return
	}
	rep, err := s.d.Governance.OpenAdminLog(r.Context(), c.subject, r.PostFormValue("period"))
	if err != nil {
		s.adminLogFailed(w, r, err)
		return
	}
	http.Redirect(w, r, "/governance/admin-log/"+rep.ID, http.StatusSeeOther)
}

type adminLogData struct {
	Report governance.AdminLogReport
	Me     string
	Open   int
}

func (s *server) adminLogPage(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if !s.reviewer(w, r, c) {
		return
	}
	rep, err := s.d.Governance.AdminLog(r.Context(), c.subject, r.PathValue("id"))
	if err != nil {
		s.adminLogFailed(w, r, err)
		return
	}
	d := adminLogData{Report: rep, Me: c.sess.AccountID}
	for _, l := range rep.Lines {
		if l.Finding == "" {
			d.Open++
		}
	}
	v := s.page(w, r, c, "alr.report", d)
	if r.URL.Query().Has("closed") {
		v.Message = "alr.closed.msg"
	}
	s.render(w, r, http.StatusOK, "adminlog", v)
}

func (s *server) adminLogMarkLine(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if !s.reviewer(w, r, c) {
		return
	}
	line, err := strconv.Atoi(r.PostFormValue("line"))
	if err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "rev.err.invalid")
		return
	}
	id := r.PathValue("id")
	if err := s.d.Governance.MarkAdminLogLine(r.Context(), c.subject, id, line, r.PostFormValue("finding"), r.PostFormValue("follow_up")); err != nil {
		s.adminLogFailed(w, r, err)
		return
	}
	http.Redirect(w, r, "/governance/admin-log/"+id+"#line-"+strconv.Itoa(line), http.StatusSeeOther)
}

func (s *server) adminLogMark(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if !s.reviewer(w, r, c) {
		return
	}
	id := r.PathValue("id")
	m := governance.ReportMark{Finding: r.PostFormValue("finding"), FollowUp: r.PostFormValue("follow_up"), RestOK: r.PostFormValue("rest_ok") == "yes"}
	if _, err := s.d.Governance.MarkAdminLog(r.Context(), c.subject, id, m); err != nil {
		s.adminLogFailed(w, r, err)
		return
	}
	http.Redirect(w, r, "/governance/admin-log/"+id, http.StatusSeeOther)
}

func (s *server) adminLogClose(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if !s.reviewer(w, r, c) {
		return
	}
	id := r.PathValue("id")
	if _, err := s.d.Governance.CloseAdminLog(r.Context(), c.subject, id); err != nil {
		s.adminLogFailed(w, r, err)
		return
	}
	http.Redirect(w, r, "/governance/admin-log/"+id+"?closed=1", http.StatusSeeOther)
}
