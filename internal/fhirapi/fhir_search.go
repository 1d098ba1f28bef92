package fhirapi

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/docsign"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/nlid"
	"github.com/zorgkluis/zorgkluis/internal/record"
)

const defaultCount = 100

// dateTest is one date search value: a prefix and the range of the value.
type dateTest struct {
	prefix string
	value  fhir.DateRange
}

// parseDateTests reads the values of a date parameter: repeated parameters
// must all match (AND), comma-separated values in one parameter any (OR).
func parseDateTests(vals []string) ([][]dateTest, bool) {
	var and [][]dateTest
	for _, v := range vals {
		var or []dateTest
		for _, one := range strings.Split(v, ",") {
			p := "eq"
			if len(one) > 2 && one[0] >= 'a' && one[0] <= 'z' {
				p, one = one[:2], one[2:]
			}
			switch p {
			case "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb":
			default:
				return nil, false
			}
			r, err := fhir.ParseDateTime(one)
			if err != nil {
				return nil, false
			}
			or = append(or, dateTest{p, r})
		}
		and = append(and, or)
	}
	return and, true
}

// startBefore and endAfter compare a range bound with t, where a zero
// start means unbounded below and a zero end unbounded above.
func startBefore(start, t time.Time) bool { return start.IsZero() || start.Before(t) }
func endAfter(end, t time.Time) bool      { return end.IsZero() || end.After(t) }

// matches applies FHIR R4 date-search prefixes to the resource range rr,
// comparing ranges as R4 describes (eq: contained in the value's range;
// gt/lt: extends beyond it; ge/le: reaches it; sa/eb: wholly after/before).
func (d dateTest) matches(rr fhir.DateRange) bool {
	p := d.value
	eq := !rr.Start.IsZero() && !rr.End.IsZero() && !rr.Start.Before(p.Start) && !rr.End.After(p.End)
	switch d.prefix {
	case "eq":
		return eq
	case "ne":
		return !eq
	case "gt":
		return endAfter(rr.End, p.End)
	case "lt":
		return startBefore(rr.Start, p.Start)
	case "ge":
		return endAfter(rr.End, p.Start)
	case "le":
		return startBefore(rr.Start, p.End)
	case "sa":
		return !rr.Start.IsZero() && !rr.Start.Before(p.End)
	case "eb":
		return !rr.End.IsZero() && !rr.End.After(p.Start)
	}
	return false
}

func allMatch(tests [][]dateTest, rr fhir.DateRange) bool {
	for _, or := range tests {
		ok := false
		for _, t := range or {
			if t.matches(rr) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func tokensMatch(tests [][]string, codings []fhir.Coding) bool {
	for _, or := range tests {
		ok := false
		for _, t := range or {
			if fhir.MatchToken(codings, t) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func splitTokens(vals []string) [][]string {
	var out [][]string
	for _, v := range vals {
		out = append(out, strings.Split(v, ","))
	}
	return out
}

// searchFilter is the parsed search of one type.
type searchFilter struct {
	lastUpdated, date [][]dateTest
	code, category    [][]string
}

func (f searchFilter) needsContent() bool {
	return len(f.date) > 0 || len(f.code) > 0 || len(f.category) > 0
}

// match decides on an opened resource. Content filters parse the body; the
// values never leave memory (see record.Search).
func (f searchFilter) match(r record.Resource) bool {
	if !allMatch(f.lastUpdated, fhir.DateRange{Start: r.LastUpdated, End: r.LastUpdated.Add(time.Microsecond)}) {
		return false
	}
	if !f.needsContent() {
		return true
	}
	res, err := fhir.Parse(r.Body)
	if err != nil {
		return false
	}
	if len(f.date) > 0 && (res.Date == nil || !allMatch(f.date, *res.Date)) {
		return false
	}
	return tokensMatch(f.code, res.Codes) && tokensMatch(f.category, res.Category)
}

// fhirSearch is GET /fhir/{type}: a search within one patient's record.
// Other types need patient (or subject); Patient needs _id or a BSN
// identifier, which is looked up by its blind index (ID-4).
func (s *Server) fhirSearch(w http.ResponseWriter, r *http.Request, c caller) {
	typ := r.PathValue("type")
	q := r.URL.Query()
	allowed := []string{"_count", "_offset", "_summary", "_elements", "_lastUpdated"}
	for _, p := range fhir.SearchParams(typ) {
		allowed = append(allowed, p.Name)
	}
	if typ == "Patient" {
		allowed = append(allowed, "_id", "identifier")
	} else {
		allowed = append(allowed, "patient", "subject")
	}
	if !onlyParams(w, r, q, allowed...) {
		return
	}
	sub, countOnly, ok := parseSubset(w, r, q, true)
	if !ok {
		return
	}
	count, offset := defaultCount, 0
	if v := q.Get("_count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1000 {
			outcome(w, r, http.StatusBadRequest, fhir.CodeValue, "_count must be 0..1000", "_count")
			return
		}
		count = n
	}
	if v := q.Get("_offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			outcome(w, r, http.StatusBadRequest, fhir.CodeValue, "_offset must be a number ≥ 0", "_offset")
			return
		}
		offset = n
	}
	if countOnly {
		count = 0
	}
	var f searchFilter
	for name, dst := range map[string]*[][]dateTest{"_lastUpdated": &f.lastUpdated, "date": &f.date} {
		if vals := q[name]; len(vals) > 0 {
			tests, ok := parseDateTests(vals)
			if !ok {
				outcome(w, r, http.StatusBadRequest, fhir.CodeValue, name+" must be a FHIR date with an optional prefix eq, ne, gt, lt, ge, le, sa or eb", name)
				return
			}
			*dst = tests
		}
	}
	f.code, f.category = splitTokens(q["code"]), splitTokens(q["category"])

	pid, found, ok := s.searchPatient(w, r, c, typ, q)
	if !ok {
		return
	}
	self, _ := url.Parse(s.d.BaseURL + r.URL.RequestURI())
	if !found {
		// A BSN nobody has is decided (and logged, LOG-1) like one that is
		// registered: a lookup that names no patient, refused. Else the log
		// would show only the probes that hit.
		_, err := s.d.Access.Decide(r.Context(), c.Subject, access.Request{Action: access.Search, Purpose: purposeOf(c)})
		if err != nil && !access.IsDenied(err) {
			s.failed(w, r, err)
			return
		}
		writeBundle(w, fhir.NewSearchset(0, fhir.PageLinks(self, offset, count, 0)...))
		return
	}
	g, err := s.d.Access.Decide(r.Context(), c.Subject, access.Request{PatientID: pid, Action: access.Search, Purpose: purposeOf(c)})
	if access.IsDenied(err) {
		if typ == "Patient" && q.Get("identifier") != "" {
			// A BSN lookup must not tell whether the BSN is registered.
			writeBundle(w, fhir.NewSearchset(0, fhir.PageLinks(self, offset, count, 0)...))
			return
		}
		outcome(w, r, http.StatusForbidden, fhir.CodeForbidden, "access denied; the attempt has been logged")
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	page, err := s.d.Records.Search(r.Context(), g, record.SearchParams{Type: typ, Offset: offset, Count: count, Query: loggedQuery(q), Match: f.match})
	if err != nil {
		s.recordFailed(w, r, typ, err)
		return
	}
	b := fhir.NewSearchset(page.Total, fhir.PageLinks(self, offset, count, page.Total)...)
	for _, x := range page.Resources {
		body := x.Body
		if sub != nil {
			if body, err = sub(body); err != nil {
				s.failed(w, r, err)
				return
			}
		}
		b.AddMatch(s.d.BaseURL+"/fhir/"+x.Ref(), body)
	}
	writeBundle(w, b)
}

// searchPatient finds the one patient a search is about. found is false
// when a BSN is not registered (an empty result, not an error).
func (s *Server) searchPatient(w http.ResponseWriter, r *http.Request, c caller, typ string, q url.Values) (pid string, found, ok bool) {
	if typ == "Patient" {
		id, ident := q.Get("_id"), q.Get("identifier")
		switch {
		case id != "" && ident == "":
			if !fhir.ValidID(id) {
				outcome(w, r, http.StatusBadRequest, fhir.CodeValue, "invalid _id", "_id")
				return "", false, false
			}
			return id, true, true
		case ident != "" && id == "":
			system, value, _ := strings.Cut(ident, "|")
			if system != nlid.SystemBSN || !nlid.ValidBSN(value) {
				outcome(w, r, http.StatusBadRequest, fhir.CodeValue, "identifier must be "+nlid.SystemBSN+"|<a valid BSN>", "identifier")
				return "", false, false
			}
			if c.Subject.TenantID() == "" {
				return "", false, true
			}
			idx, err := s.d.Records.BSNIndex(r.Context(), c.Subject.TenantID(), value)
			if err != nil {
				s.failed(w, r, err)
				return "", false, false
			}
			pid, err := s.d.IDs.PatientByBSNIndex(r.Context(), c.Subject.TenantID(), idx)
			if errorsIsNotFound(err) {
				return "", false, true
			}
			if err != nil {
				s.failed(w, r, err)
				return "", false, false
			}
			return pid, true, true
		}
		outcome(w, r, http.StatusBadRequest, fhir.CodeRequired, "a Patient search needs exactly one of _id or identifier (BSN)", "_id")
		return "", false, false
	}
	pv := q.Get("patient")
	if pv == "" {
		pv = q.Get("subject")
	}
	if pv == "" || (q.Has("patient") && q.Has("subject")) || len(q["patient"]) > 1 || len(q["subject"]) > 1 {
		outcome(w, r, http.StatusBadRequest, fhir.CodeRequired, "exactly one patient (or subject) parameter is required: every search is within one patient's record", "patient")
		return "", false, false
	}
	pid = strings.TrimPrefix(pv, "Patient/")
	if !fhir.ValidID(pid) {
		outcome(w, r, http.StatusBadRequest, fhir.CodeValue, "invalid patient reference", "patient")
		return "", false, false
	}
	return pid, true, true
}

// fhirEverything is GET /fhir/Patient/{id}/$everything: the patient's whole
// record as far as the grant's categories reach (DP-7), for professionals
// and for the person themself, logged as an export.
func (s *Server) fhirEverything(w http.ResponseWriter, r *http.Request, c caller) {
	_, id, ok := pathRef(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	if !onlyParams(w, r, q, "_summary", "_elements", "_signed") {
		return
	}
	sub, _, ok := parseSubset(w, r, q, false)
	if !ok {
		return
	}
	signed := q.Get("_signed") == "true"
	if signed && s.d.CA == nil {
		outcome(w, r, http.StatusBadRequest, fhir.CodeNotSupported, "signed documents are not enabled on this server", "_signed")
		return
	}
	g, ok := s.decideFHIR(w, r, c, access.Request{PatientID: id, Action: access.Export})
	if !ok {
		return
	}
	all, err := s.d.Records.Everything(r.Context(), g)
	if err != nil {
		s.recordFailed(w, r, "Patient/"+id, err)
		return
	}
	b := fhir.NewSearchset(len(all), fhir.Link{Relation: "self", URL: s.d.BaseURL + r.URL.RequestURI()})
	for _, x := range all {
		body := x.Body
		if sub != nil {
			if body, err = sub(body); err != nil {
				s.failed(w, r, err)
				return
			}
		}
		b.AddMatch(s.d.BaseURL+"/fhir/"+x.Ref(), body)
	}
	if signed {
		s.writeSigned(w, r, g.TenantID(), c.Subject.Organisation(), b)
		return
	}
	writeBundle(w, b)
}

// writeSigned answers b signed by the tenant's document signer (DP-4).
func (s *Server) writeSigned(w http.ResponseWriter, r *http.Request, tenantID, who string, b *fhir.Bundle) {
	raw, err := json.Marshal(b)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	key, chain, err := s.d.CA.DocumentSigner(r.Context(), tenantID)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	out, err := docsign.Sign(raw, key, chain, who, s.d.Clock.Now())
	if err != nil {
		s.failed(w, r, err)
		return
	}
	w.Header().Set("Content-Type", fhir.MediaType)
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

func errorsIsNotFound(err error) bool { return errors.Is(err, identity.ErrNotFound) }

// loggedQuery is the search as the access log keeps it: the parameters,
// with a BSN replaced by a mark, since the log must not hold a BSN in the
// clear (DP-1); the patient it found is in the event anyway.
func loggedQuery(q url.Values) string {
	if q.Has("identifier") {
		q = maps.Clone(q)
		q.Set("identifier", nlid.SystemBSN+"|(BSN)")
	}
	return q.Encode()
}
