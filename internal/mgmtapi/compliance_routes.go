package mgmtapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/compliance"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
)

// complianceRoutes are the controls register and the compliance report
// (GOV-3). A control's id is "framework/ref", two path segments.
func (s *Server) complianceRoutes(mux *http.ServeMux) {
	if s.d.Compliance == nil {
		return
	}
	mux.HandleFunc("GET /api/v1/compliance/report", s.as(governors, s.complianceReport))
	mux.HandleFunc("GET /api/v1/controls", s.as(governors, s.controls))
	mux.HandleFunc("GET /api/v1/controls/{fw}/{ref}", s.as(governors, s.control))
	mux.HandleFunc("PATCH /api/v1/controls/{fw}/{ref}", s.as(governors, s.updateControl))
	mux.HandleFunc("POST /api/v1/controls/{fw}/{ref}/documents", s.as(governors, s.attachDocument))
	mux.HandleFunc("GET /api/v1/compliance/documents/{id}", s.as(governors, s.document))
}

func (s *Server) compError(w http.ResponseWriter, r *http.Request, err error) {
	var bad *compliance.InvalidError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &bad):
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", err.Error())
	case errors.Is(err, compliance.ErrForbidden):
		httpx.Problem(w, r, http.StatusForbidden, "Forbidden", "the organisation's security officer and application admins keep the controls register, logged on with a second factor")
	case errors.Is(err, compliance.ErrNotFound):
		httpx.Problem(w, r, http.StatusNotFound, "Not found", "no such control or document in this organisation")
	case errors.Is(err, compliance.ErrTooLarge), errors.As(err, &tooBig):
		httpx.Problem(w, r, http.StatusRequestEntityTooLarge, "Document too large", compliance.ErrTooLarge.Error())
	case errors.Is(err, compliance.ErrContentType):
		httpx.Problem(w, r, http.StatusUnsupportedMediaType, "Document refused", err.Error())
	default:
		s.unavailable(w, r, "compliance", err)
	}
}

func controlID(r *http.Request) string { return r.PathValue("fw") + "/" + r.PathValue("ref") }

func (s *Server) complianceReport(w http.ResponseWriter, r *http.Request, c caller) {
	rep, err := s.d.Compliance.ReportFor(r.Context(), c.Subject)
	if err != nil {
		s.compError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, rep)
}

func (s *Server) controls(w http.ResponseWriter, r *http.Request, c caller) {
	cs, es, err := s.d.Compliance.Register(r.Context(), c.Subject)
	if err != nil {
		s.compError(w, r, err)
		return
	}
	type row struct {
		compliance.Control
		Entry *compliance.Entry `json:"entry,omitempty"`
	}
	out := make([]row, 0, len(cs))
	for _, ctl := range cs {
		rw := row{Control: ctl}
		if e, ok := es[ctl.ID]; ok {
			rw.Entry = &e
		}
		out = append(out, rw)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"controls": out})
}

func (s *Server) control(w http.ResponseWriter, r *http.Request, c caller) {
	ctl, e, err := s.d.Compliance.Entry(r.Context(), c.Subject, controlID(r))
	if err != nil {
		s.compError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"control": ctl, "entry": e})
}

func (s *Server) updateControl(w http.ResponseWriter, r *http.Request, c caller) {
	var in struct {
		Applicable    *bool      `json:"applicable"`
		Justification *string    `json:"justification"`
		AuditMethod   *string    `json:"audit_method"`
		Responsible   *string    `json:"responsible"`
		Notes         *string    `json:"notes"`
		Done          *time.Time `json:"done_at"`
	}
	if !httpx.DecodeJSON(w, r, &in) {
		return
	}
	e, err := s.d.Compliance.UpdateEntry(r.Context(), c.Subject, controlID(r), compliance.Update{Applicable: in.Applicable, Justification: in.Justification,
		AuditMethod: in.AuditMethod, Responsible: in.Responsible, Notes: in.Notes, Done: in.Done})
	if err != nil {
		s.compError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, e)
}

// attachDocument takes the document as the raw body (any Content-Type: the
// type is sniffed), its file name in ?name=.
func (s *Server) attachDocument(w http.ResponseWriter, r *http.Request, c caller) {
	d, err := s.d.Compliance.Attach(r.Context(), c.Subject, controlID(r), r.URL.Query().Get("name"), r.Body)
	if err != nil {
		s.compError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, d)
}

func (s *Server) document(w http.ResponseWriter, r *http.Request, c caller) {
	d, body, err := s.d.Compliance.Document(r.Context(), c.Subject, r.PathValue("id"))
	if err != nil {
		s.compError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", d.ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Digest", "sha-256="+d.SHA256)
	w.Header().Set("Content-Disposition", `attachment; filename="`+d.ID+`"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(body)
}
