package web

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

// The platform operator's own page (AZ-6): a request for access to named
// patients of one organisation, for named data categories, a reason and a
// duration, and the state of their requests with the time left. The
// organisation's security officer decides on /security/operator-requests;
// the operator reads no health data here, only their requests.

// operatorDurations are the durations the form offers, within access's
// maximum (8 hours by default; a longer one is refused there).
var operatorDurations = []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour}

type operatorOwnLine struct {
	access.OperatorRequest
	TenantName string
	Left       time.Duration // time left of an approved request now running
	Ended      bool          // approved, and its time is up
}

// operatorForm is what the operator typed, shown again after a refusal.
type operatorForm struct {
	Tenant, Patients, Reason string
	Categories               []string
	Minutes                  int
}

// choice is one option of a form's list: its value, whether it is chosen,
// and for a duration the span to say in words.
type choice struct {
	Value   string
	Checked bool
	Span    time.Duration
}

type operatorOwnData struct {
	Tenants    []identity.Tenant
	Categories []choice
	Durations  []choice
	Requests   []operatorOwnLine
	Form       operatorForm
	Problem    string
}

func (s *server) operatorOwnRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /operator", s.authed(s.role(s.operatorOwn, access.RoleOperator)))
	mux.HandleFunc("POST /operator/requests", s.authed(s.role(s.operatorFile, access.RoleOperator)))
}

func (s *server) operatorOwn(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.renderOperatorOwn(w, r, c, http.StatusOK, "", operatorForm{Minutes: 60}, "")
}

func (s *server) renderOperatorOwn(w http.ResponseWriter, r *http.Request, c *sessionCtx, status int, message string, form operatorForm, problem string) {
	tenants, err := s.d.IDs.Tenants(r.Context())
	if err != nil {
		s.failed(w, r, err)
		return
	}
	reqs, err := s.d.Access.OperatorReport(r.Context(), c.subject)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	names := map[string]string{}
	for _, t := range tenants {
		names[t.ID] = t.Name
	}
	now := s.d.Clock.Now()
	d := &operatorOwnData{Tenants: tenants, Form: form, Problem: problem}
	for _, cat := range append(fhir.AllCategories(), access.CategoryAll) {
		d.Categories = append(d.Categories, choice{Value: cat, Checked: slices.Contains(form.Categories, cat)})
	}
	for _, du := range operatorDurations {
		m := int(du / time.Minute)
		d.Durations = append(d.Durations, choice{Value: strconv.Itoa(m), Checked: m == form.Minutes, Span: du})
	}
	for _, q := range reqs {
		l := operatorOwnLine{OperatorRequest: q, TenantName: names[q.TenantID]}
		if q.Status == "approved" && q.End != nil {
			if left := q.End.Sub(now); left > 0 {
				l.Left = left
			} else {
				l.Ended = true
			}
		}
		d.Requests = append(d.Requests, l)
	}
	v := s.page(w, r, c, "op.title", d)
	v.Message = message
	s.render(w, r, status, "operator_own", v)
}

// operatorFile files the request; access checks every field and raises the
// security event the officer's queue shows.
func (s *server) operatorFile(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "err.input")
		return
	}
	form := operatorForm{Tenant: r.PostFormValue("tenant"), Patients: strings.TrimSpace(r.PostFormValue("patients")),
		Reason: strings.TrimSpace(r.PostFormValue("reason")), Categories: r.PostForm["category"]}
	form.Minutes, _ = strconv.Atoi(r.PostFormValue("minutes"))
	if !slices.Contains(operatorDurations, time.Duration(form.Minutes)*time.Minute) {
		s.renderOperatorOwn(w, r, c, http.StatusBadRequest, "", form, msg(s.lang(w, r), "op.err.duration"))
		return
	}
	// Patient ids one per line, or separated by spaces or commas.
	patients := strings.FieldsFunc(form.Patients, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	_, err := s.d.Access.RequestOperatorAccess(r.Context(), c.subject, access.OperatorRequest{TenantID: form.Tenant, PatientIDs: patients,
		Categories: form.Categories, Reason: form.Reason, Duration: time.Duration(form.Minutes) * time.Minute})
	if err != nil {
		s.manageError(w, r, err, func(m string) { s.renderOperatorOwn(w, r, c, http.StatusBadRequest, "", form, m) })
		return
	}
	s.renderOperatorOwn(w, r, c, http.StatusOK, "op.filed", operatorForm{Minutes: 60}, "")
}
