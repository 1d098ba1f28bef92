package mgmtapi

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
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
)

// auditRoutes are the log inspection endpoints (LOG-5) for the security
// officer, who reviews the logs (the role table gives application admins no
// log access), and the person's own view of the log of their record as
// FHIR (LOG-4). Every query and export of the log is itself logged, before
// any line is released.
func (s *Server) auditRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/audit", s.logReader(s.auditSearch))
	mux.HandleFunc("GET /api/v1/audit/export", s.logReader(s.auditExport))
}

// logReader lets only a subject that DecideLogRead allows to inspect the
// tenant's log reach h: a security officer whose role is current. A refusal
// is logged there, like every refused reading of the log (LOG-1, LOG-5);
// the handler decides again when it opens the reading.
func (s *Server) logReader(h sessionHandler) http.HandlerFunc {
	return s.withSession(func(w http.ResponseWriter, r *http.Request, c caller) {
		_, err := s.d.Access.DecideLogRead(r.Context(), c.Subject, access.LogScope{})
		if access.IsDenied(err) {
			httpx.Problem(w, r, http.StatusForbidden, "Forbidden", "only a security officer inspects the access log")
			return
		}
		if err != nil {
			s.auditFailed(w, r, err)
			return
		}
		h(w, r, c)
	})
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
			if !fhir.ValidID(v) {
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
		d, err := time.ParseInLocation("2006-01-02", v, clock.Amsterdam())
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

// readLog decides that the caller may inspect the tenant's log and opens
// the selection; the reading is logged (NEN 7513: access to the log itself
// is logged) before any line is released (LOG-3). It answers a failure
// itself and then returns nil.
func (s *Server) readLog(w http.ResponseWriter, r *http.Request, c caller, sq audit.Search, canon url.Values) *audit.Reading {
	p, err := s.d.Access.DecideLogRead(r.Context(), c.Subject, access.LogScope{})
	if access.IsDenied(err) {
		httpx.Problem(w, r, http.StatusForbidden, "Forbidden", "only a security officer inspects the access log")
		return nil
	}
	if err != nil {
		s.auditFailed(w, r, err)
		return nil
	}
	rd, err := s.d.Audit.Read(r.Context(), p, sq, r.URL.Path+"?"+canon.Encode())
	if err != nil {
		s.auditFailed(w, r, err)
		return nil
	}
	return rd
}

// auditFailed answers a failure of the log as a problem: nothing is
// released when the log cannot record the inspection.
func (s *Server) auditFailed(w http.ResponseWriter, r *http.Request, err error) {
	s.d.Log.ErrorContext(r.Context(), "audit query failed", "err", err, "request_id", httpx.RequestID(r.Context()))
	if errors.Is(err, audit.ErrUnavailable) {
		httpx.Problem(w, r, http.StatusServiceUnavailable, "Log unavailable", "the access log cannot record this inspection, so nothing is shown; try again later")
		return
	}
	httpx.Problem(w, r, http.StatusServiceUnavailable, "Unavailable", "the service is temporarily unavailable")
}

type auditPage struct {
	Events []audit.Event `json:"events"`
	Count  int           `json:"count"`
	Next   string        `json:"next,omitempty"`
}

// auditSearch is GET /api/v1/audit: one page of matching events, newest
// first, with a next link while more match.
func (s *Server) auditSearch(w http.ResponseWriter, r *http.Request, c caller) {
	sq, canon, bad := auditQuery(r.URL.Query(), c.Subject.TenantID(), nil, auditPageDefault, audit.MaxPage)
	if bad != "" {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", bad)
		return
	}
	rd := s.readLog(w, r, c, sq, canon)
	if rd == nil {
		return
	}
	evs := []audit.Event{}
	if _, err := rd.Each(r.Context(), func(e audit.Event) error { evs = append(evs, e); return nil }); err != nil {
		s.auditFailed(w, r, err)
		return
	}
	page := auditPage{Events: evs, Count: len(evs)}
	if next := rd.Next(); !next.IsZero() {
		page.Next = s.auditLink(r.URL.Path, canon, next)
	}
	httpx.WriteJSON(w, http.StatusOK, page)
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
	sq, canon, bad := auditQuery(r.URL.Query(), c.Subject.TenantID(), []string{"format"}, maxAuditExport, maxAuditExport)
	if bad != "" {
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", bad)
		return
	}
	format := r.URL.Query().Get("format")
	switch format {
	case "":
		format = "fhir"
	case "fhir", "ndjson":
	default:
		httpx.Problem(w, r, http.StatusBadRequest, "Invalid request", "format must be fhir or ndjson")
		return
	}
	canon.Set("format", format)
	sq.Oldest = true
	// Read fixes the end of this part before streaming, so the next link is
	// known up front and events appended meanwhile fall into the next part.
	rd := s.readLog(w, r, c, sq, canon)
	if rd == nil {
		return
	}
	next := ""
	if until := rd.Next(); !until.IsZero() {
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
		w.Header().Set("Content-Type", fhir.MediaType)
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
	n, err := rd.Each(r.Context(), writeOne)
	if err != nil {
		// The status is sent: a Bundle is left unterminated, so it does not
		// parse, and NDJSON ends with an OperationOutcome line; either way
		// the export is visibly incomplete.
		s.d.Log.ErrorContext(r.Context(), "audit export aborted", "err", err, "written", n, "request_id", httpx.RequestID(r.Context()))
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
