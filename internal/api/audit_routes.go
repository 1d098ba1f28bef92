package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
)

// auditRoutes are the log inspection endpoints (LOG-5) for the security
// officer, who reviews the logs (the role table gives application admins no
// log access), and the person's own view of the log of their record as
// FHIR (LOG-4). Every query and export of the log is itself logged, before
// any line is released.
func (s *Server) auditRoutes(mux *http.ServeMux) {
	officer := []access.Role{access.RoleSecurityOfficer}
	mux.HandleFunc("GET /api/v1/audit", s.as(officer, s.auditSearch))
	mux.HandleFunc("GET /api/v1/audit/export", s.as(officer, s.auditExport))
	mux.HandleFunc("GET /fhir/AuditEvent", s.fhirType(s.fhirAuditEvents))
}

const (
	auditPageDefault = 100
	// maxAuditExport bounds one export; a larger selection is exported in
	// several parts by following the next link.
	maxAuditExport = 10000
)

// auditActions are the actions the query accepts.
var auditActions = []audit.Action{audit.ActionRead, audit.ActionSearch, audit.ActionCreate, audit.ActionUpdate,
	audit.ActionDelete, audit.ActionExport, audit.ActionPrint, audit.ActionAssignID, audit.ActionEmergency,
	audit.ActionLogRead, audit.ActionConsent, audit.ActionCollect, audit.ActionShare, audit.ActionLogon, audit.ActionExchange}

// auditQuery reads the common parameters of search and export: patient,
// user, from, to, action, emergency, limit and after. from and to are a
// date (a whole day in Dutch time, to inclusive) or an RFC 3339 time (to
// exclusive). It returns the search, the canonical query (for the log line
// and the links) and an error message naming the bad parameter.
func auditQuery(q url.Values, tenant string, extra []string, defLimit, maxLimit int) (audit.Search, url.Values, string) {
	allowed := append([]string{"patient", "user", "from", "to", "action", "emergency", "limit", "after"}, extra...)
	for k, v := range q {
		if !slices.Contains(allowed, k) {
			return audit.Search{}, nil, "parameter " + strconv.Quote(k) + " is not supported"
		}
		if len(v) > 1 {
			return audit.Search{}, nil, "parameter " + strconv.Quote(k) + " may appear once"
		}
	}
	canon := url.Values{}
	s := audit.Search{TenantID: tenant, Limit: defLimit}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"patient", &s.PatientID}, {"user", &s.UserID}} {
		if v := q.Get(p.name); v != "" {
			if !fhirIDRE.MatchString(v) {
				return audit.Search{}, nil, "invalid " + p.name
			}
			*p.dst = v
			canon.Set(p.name, v)
		}
	}
	if v := q.Get("from"); v != "" {
		t, err := parseAuditTime(v, false)
		if err != nil {
			return audit.Search{}, nil, "from must be a date (YYYY-MM-DD) or an RFC 3339 time"
		}
		s.From = t
		canon.Set("from", v)
	}
	if v := q.Get("to"); v != "" {
		t, err := parseAuditTime(v, true)
		if err != nil {
			return audit.Search{}, nil, "to must be a date (YYYY-MM-DD) or an RFC 3339 time"
		}
		s.To = t
		canon.Set("to", v)
	}
	if !s.From.IsZero() && !s.To.IsZero() && !s.From.Before(s.To) {
		return audit.Search{}, nil, "from must be before to"
	}
	if v := q.Get("action"); v != "" {
		if !slices.Contains(auditActions, audit.Action(v)) {
			return audit.Search{}, nil, "unknown action"
		}
		s.Action = audit.Action(v)
		canon.Set("action", v)
	}
	if v := q.Get("emergency"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil || (v != "true" && v != "false") {
			return audit.Search{}, nil, "emergency must be true or false"
		}
		s.Emergency = &b
		canon.Set("emergency", v)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return audit.Search{}, nil, fmt.Sprintf("limit must be 1..%d", maxLimit)
		}
		s.Limit = n
		canon.Set("limit", v)
	}
	if v := q.Get("after"); v != "" {
		c, err := audit.ParseCursor(v)
		if err != nil {
			return audit.Search{}, nil, "after must be a cursor from a next link"
		}
		s.After = c
		canon.Set("after", v)
	}
	return s, canon, ""
}

// parseAuditTime reads a date (Dutch local day) or an RFC 3339 time. A date
// as upper bound means the end of that day.
func parseAuditTime(v string, upper bool) (time.Time, error) {
	if len(v) == len("2006-01-02") {
		d, err := time.ParseInLocation("2006-01-02", v, amsterdam)
		if err != nil {
			return time.Time{}, err
		}
		if upper {
			d = d.AddDate(0, 0, 1)
		}
		return d.UTC(), nil
	}
	return time.Parse(time.RFC3339Nano, v)
}

// logAuditRead records that the caller searched or exported the log (NEN
// 7513: access to the log itself is logged). It must succeed before any
// line is released (LOG-3).
func (s *Server) logAuditRead(r *http.Request, c caller, sq audit.Search, canon url.Values) error {
	ev := audit.Event{Action: audit.ActionLogRead, Outcome: audit.OutcomeSuccess,
		TenantID: c.subject.TenantID(), Organisation: c.subject.Organisation(), UserID: c.subject.AccountID(), UserName: c.subject.Name(),
		Role: string(c.subject.Role()), Assurance: c.subject.Assurance().String(), OnBehalfOf: c.subject.OnBehalfOf(),
		PatientID: sq.PatientID, Purpose: "HOPERAT", Query: r.URL.Path + "?" + canon.Encode()}
	_, err := s.d.Audit.Append(r.Context(), ev)
	return err
}

// auditFailed answers a failure of the log as a problem: nothing is
// released when the log cannot record the inspection.
func (s *Server) auditFailed(w http.ResponseWriter, r *http.Request, err error) {
	s.d.Log.ErrorContext(r.Context(), "audit query failed", "err", err, "request_id", requestID(r.Context()))
	if errors.Is(err, audit.ErrUnavailable) {
		problem(w, r, http.StatusServiceUnavailable, "Log unavailable", "the access log cannot record this inspection, so nothing is shown; try again later")
		return
	}
	problem(w, r, http.StatusServiceUnavailable, "Unavailable", "the service is temporarily unavailable")
}

type auditPage struct {
	Events []audit.Event `json:"events"`
	Count  int           `json:"count"`
	Next   string        `json:"next,omitempty"`
}

// auditSearch is GET /api/v1/audit: one page of matching events, newest
// first, with a next link while more match.
func (s *Server) auditSearch(w http.ResponseWriter, r *http.Request, c caller) {
	sq, canon, bad := auditQuery(r.URL.Query(), c.subject.TenantID(), nil, auditPageDefault, audit.MaxPage)
	if bad != "" {
		problem(w, r, http.StatusBadRequest, "Invalid request", bad)
		return
	}
	if err := s.logAuditRead(r, c, sq, canon); err != nil {
		s.auditFailed(w, r, err)
		return
	}
	evs, next, err := s.d.Audit.Search(r.Context(), sq)
	if err != nil {
		s.auditFailed(w, r, err)
		return
	}
	page := auditPage{Events: evs, Count: len(evs)}
	if page.Events == nil {
		page.Events = []audit.Event{}
	}
	if !next.IsZero() {
		page.Next = s.auditLink(r.URL.Path, canon, next)
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) auditLink(path string, canon url.Values, after audit.Cursor) string {
	v := url.Values{}
	for k, vs := range canon {
		v[k] = vs
	}
	v.Set("after", after.String())
	return s.d.BaseURL + path + "?" + v.Encode()
}

// auditExport is GET /api/v1/audit/export: the matching events, oldest
// first, as a FHIR Bundle (collection) of AuditEvents with IHE BALP codes
// or as NDJSON (one AuditEvent per line), for inspection with an exchange
// partner (LOG-5). It streams at most limit (≤ 10,000) events; when more
// match, the Link header (and, in the Bundle, link "next") continues.
func (s *Server) auditExport(w http.ResponseWriter, r *http.Request, c caller) {
	sq, canon, bad := auditQuery(r.URL.Query(), c.subject.TenantID(), []string{"format"}, maxAuditExport, maxAuditExport)
	if bad != "" {
		problem(w, r, http.StatusBadRequest, "Invalid request", bad)
		return
	}
	format := r.URL.Query().Get("format")
	switch format {
	case "":
		format = "fhir"
	case "fhir", "ndjson":
	default:
		problem(w, r, http.StatusBadRequest, "Invalid request", "format must be fhir or ndjson")
		return
	}
	canon.Set("format", format)
	sq.Oldest = true
	max := sq.Limit
	if err := s.logAuditRead(r, c, sq, canon); err != nil {
		s.auditFailed(w, r, err)
		return
	}
	// Fix the end of this part before streaming, so the next link is known
	// up front and events appended meanwhile fall into the next part.
	until, more, err := s.d.Audit.Boundary(r.Context(), sq, max)
	if err != nil {
		s.auditFailed(w, r, err)
		return
	}
	next := ""
	if more {
		sq.Until = until
		next = s.auditLink(r.URL.Path, canon, until)
		w.Header().Set("Link", "<"+next+`>; rel="next"`)
	}
	stamp := s.d.Clock.Now().UTC()
	name := "zorgkluis-log-" + stamp.Format("20060102-150405")
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	server := s.d.BaseURL
	var writeOne func(audit.Event) error
	if format == "ndjson" {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.ndjson"`)
		w.WriteHeader(http.StatusOK)
		writeOne = func(e audit.Event) error { return enc.Encode(audit.ToAuditEvent(e, server)) } // Encode ends each with \n
	} else {
		w.Header().Set("Content-Type", fhirJSON)
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.json"`)
		w.WriteHeader(http.StatusOK)
		links := []map[string]string{{"relation": "self", "url": s.d.BaseURL + r.URL.Path + "?" + canon.Encode()}}
		if next != "" {
			links = append(links, map[string]string{"relation": "next", "url": next})
		}
		lb, _ := json.Marshal(links)
		fmt.Fprintf(bw, `{"resourceType":"Bundle","type":"collection","timestamp":%q,"link":%s,"entry":[`, stamp.Format(time.RFC3339), lb)
		first := true
		writeOne = func(e audit.Event) error {
			if !first {
				bw.WriteByte(',')
			}
			first = false
			return enc.Encode(map[string]any{"fullUrl": audit.EventURN(e.ID), "resource": audit.ToAuditEvent(e, server)})
		}
	}
	n, err := s.d.Audit.Each(r.Context(), sq, max, writeOne)
	if err != nil {
		// The status is sent: a Bundle is left unterminated, so it does not
		// parse, and NDJSON ends with an OperationOutcome line; either way
		// the export is visibly incomplete.
		s.d.Log.ErrorContext(r.Context(), "audit export aborted", "err", err, "written", n, "request_id", requestID(r.Context()))
		if format == "ndjson" {
			_ = enc.Encode(fhir.Outcome(fhir.SeverityFatal, "incomplete", "the export stopped early after "+strconv.Itoa(n)+" events; retry"))
		}
		_ = bw.Flush()
		return
	}
	if format != "ndjson" {
		bw.WriteString("]}\n")
	}
	_ = bw.Flush()
}

// amsterdam is the time zone of Dutch dates in queries; loaded once and
// never changed.
var amsterdam = func() *time.Location {
	if l, err := time.LoadLocation("Europe/Amsterdam"); err == nil {
		return l
	}
	return time.UTC
}()
