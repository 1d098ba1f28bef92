package fhirapi

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
	"github.com/zorgkluis/zorgkluis/internal/record"
)

// fhirRoutes serves FHIR R4 JSON for the resource types of a patient's
// record (the BgZ types of internal/fhir except the directory types
// Practitioner, PractitionerRole and Organization, which belong to no
// patient and so cannot pass access.Decide). What works is exactly what
// /fhir/metadata states.
func (s *Server) fhirRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /fhir/metadata", s.fhirMetadata)
	mux.HandleFunc("GET /fhir/AuditEvent", s.fhirType(s.fhirAuditEvents))
	mux.HandleFunc("GET /fhir/{type}", s.fhirType(s.fhirSearch))
	mux.HandleFunc("POST /fhir/Bundle", s.withSession(s.fhirDocument))
	mux.HandleFunc("POST /fhir/{type}", s.fhirType(s.fhirCreate))
	mux.HandleFunc("GET /fhir/{type}/{id}", s.fhirType(s.fhirRead))
	mux.HandleFunc("PUT /fhir/{type}/{id}", s.fhirType(s.fhirUpdate))
	mux.HandleFunc("DELETE /fhir/{type}/{id}", s.fhirType(s.fhirDelete))
	mux.HandleFunc("GET /fhir/{type}/{id}/_history", s.fhirType(s.fhirHistory))
	mux.HandleFunc("GET /fhir/{type}/{id}/_history/{vid}", s.fhirType(s.fhirVRead))
	mux.HandleFunc("GET /fhir/Patient/{id}/$everything", s.fhirType(s.fhirEverything))
	mux.HandleFunc("/fhir/", s.fhirNotSupported)
}

// recordType reports whether typ is a resource type kept in a patient's
// record, which is what this server stores.
func recordType(typ string) bool {
	if !fhir.Supported(typ) {
		return false
	}
	return fhir.Categories(&fhir.Resource{Type: typ})[0] != fhir.CategoryDirectory
}

// recordTypes lists recordType's types, sorted.
func recordTypes() []string {
	var out []string
	for _, t := range fhir.ResourceTypes() {
		if recordType(t) {
			out = append(out, t)
		}
	}
	return out
}

// fhirType checks the resource type and the wanted format before the
// session, so that an unsupported request is answered the same to anyone.
func (s *Server) fhirType(h sessionHandler) http.HandlerFunc {
	withSession := s.withSession(appScope(h))
	return func(w http.ResponseWriter, r *http.Request) {
		if typ := r.PathValue("type"); typ != "" && !recordType(typ) {
			s.fhirNotSupported(w, r)
			return
		}
		if f := r.URL.Query().Get("_format"); f != "" && f != "json" && f != "application/json" && f != "application/fhir+json" {
			outcome(w, r, http.StatusNotAcceptable, fhir.CodeNotSupported, "only JSON is served (_format json or application/fhir+json)")
			return
		}
		if a := r.Header.Get("Accept"); a != "" && !strings.Contains(a, "json") && !strings.Contains(a, "*/*") {
			outcome(w, r, http.StatusNotAcceptable, fhir.CodeNotSupported, "only application/fhir+json is served")
			return
		}
		withSession(w, r)
	}
}

// appScope refuses an app's request that its token's SMART scopes do not
// cover, before anything is looked up: apps read (a resource, its versions
// and history, or with patient/*.rs the whole record) and search (EX-2);
// access.Decide narrows the data categories to the scopes as well.
func appScope(h sessionHandler) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		if c.Subject.Kind() != access.KindApp {
			h(w, r, c)
			return
		}
		typ, perm := r.PathValue("type"), byte('r')
		switch {
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			perm = 0
		case strings.HasSuffix(r.URL.Path, "/$everything"):
			typ = "*"
		case r.PathValue("id") == "":
			perm = 's'
		}
		if perm == 0 || typ == "AuditEvent" || !fhir.ScopesAllow(c.Subject.Scopes(), typ, perm) {
			outcome(w, r, http.StatusForbidden, fhir.CodeForbidden, "the access token's scopes do not cover this request")
			return
		}
		h(w, r, c)
	}
}

// outcome writes a FHIR R4 OperationOutcome with one issue.
func outcome(w http.ResponseWriter, r *http.Request, code int, issueCode, diagnostics string, expression ...string) {
	sev := fhir.SeverityError
	if code >= 500 {
		sev = fhir.SeverityFatal
	}
	writeOutcome(w, code, fhir.Outcome(sev, issueCode, diagnostics+" (request "+httpx.RequestID(r.Context())+")", expression...))
}

func writeOutcome(w http.ResponseWriter, code int, oo *fhir.OperationOutcome) {
	w.Header().Set("Content-Type", fhir.MediaType)
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(oo)
}

// purposeOf is the purpose of use of a request (v3-ActReason): care for
// professionals, the patient's own request for persons.
func purposeOf(c caller) string {
	if c.Subject.Role() == access.RolePerson {
		return "PATRQT"
	}
	return "TREAT"
}

// decideFHIR asks access for a grant and answers the client itself on a
// denial or failure. Unknown patients, other tenants' patients and patients
// without a relationship all get the same answer, so ids cannot be probed.
func (s *Server) decideFHIR(w http.ResponseWriter, r *http.Request, c caller, req access.Request) (access.Grant, bool) {
	if req.Purpose == "" {
		req.Purpose = purposeOf(c)
	}
	g, err := s.d.Access.Decide(r.Context(), c.Subject, req)
	if access.IsDenied(err) {
		outcome(w, r, http.StatusForbidden, fhir.CodeForbidden, "access denied; the attempt has been logged")
		return access.Grant{}, false
	}
	if err != nil {
		s.failed(w, r, err)
		return access.Grant{}, false
	}
	return g, true
}

// failed answers an internal failure. A failure to log means no data leaves
// (LOG-3): the client gets 503, never the data.
func (s *Server) failed(w http.ResponseWriter, r *http.Request, err error) {
	s.d.Log.ErrorContext(r.Context(), "fhir request failed", "err", err, "request_id", httpx.RequestID(r.Context()))
	if errors.Is(err, audit.ErrUnavailable) {
		outcome(w, r, http.StatusServiceUnavailable, "transient", "the access log is unavailable, so no data can be released; try again later")
		return
	}
	outcome(w, r, http.StatusServiceUnavailable, "transient", "the service is temporarily unavailable")
}

// recordFailed answers an error of the record store.
func (s *Server) recordFailed(w http.ResponseWriter, r *http.Request, ref string, err error) {
	switch {
	case errors.Is(err, record.ErrNotFound):
		outcome(w, r, http.StatusNotFound, fhir.CodeNotFound, ref+" is not known")
	case errors.Is(err, record.ErrDeleted):
		outcome(w, r, http.StatusGone, fhir.CodeDeleted, ref+" was deleted")
	case errors.Is(err, record.ErrErased):
		outcome(w, r, http.StatusGone, fhir.CodeDeleted, "the patient's data was erased (crypto-shredded) and can never be read again")
	case errors.Is(err, record.ErrIntegrity):
		s.d.Log.ErrorContext(r.Context(), "stored resource failed its integrity check", "err", err, "request_id", httpx.RequestID(r.Context()))
		outcome(w, r, http.StatusInternalServerError, fhir.CodeException, "the stored data failed its integrity check; this has been reported")
	case errors.Is(err, record.ErrConflict):
		outcome(w, r, http.StatusConflict, fhir.CodeConflict, ref+" was changed concurrently; read it again and retry")
	default:
		s.failed(w, r, err)
	}
}

func etag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

// writeResource answers with one resource version and its headers; subset
// applies _summary/_elements.
func (s *Server) writeResource(w http.ResponseWriter, r *http.Request, code int, res record.Resource, sub subsetter) {
	body := res.Body
	if sub != nil {
		b, err := sub(body)
		if err != nil {
			s.failed(w, r, err)
			return
		}
		body = b
	}
	w.Header().Set("Content-Type", fhir.MediaType)
	w.Header().Set("ETag", etag(res.Version))
	w.Header().Set("Last-Modified", res.LastUpdated.UTC().Format(http.TimeFormat))
	if code == http.StatusCreated || r.Method == http.MethodPut {
		w.Header().Set("Location", s.d.BaseURL+"/fhir/"+res.VersionRef())
	}
	if code != http.StatusOK && strings.Contains(r.Header.Get("Prefer"), "return=minimal") {
		w.WriteHeader(code)
		return
	}
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// subsetter reduces a resource for _summary or _elements; nil keeps it whole.
type subsetter func([]byte) ([]byte, error)

// parseSubset reads _summary and _elements. countOK allows _summary=count
// (searches). It answers the client itself when they are invalid.
func parseSubset(w http.ResponseWriter, r *http.Request, q url.Values, countOK bool) (sub subsetter, countOnly, ok bool) {
	sum, els := q.Get("_summary"), q.Get("_elements")
	if sum != "" && els != "" {
		outcome(w, r, http.StatusBadRequest, fhir.CodeInvalid, "use _summary or _elements, not both", "_summary")
		return nil, false, false
	}
	switch sum {
	case "", "false":
	case "true":
		sub = fhir.Summary
	case "count":
		if !countOK {
			outcome(w, r, http.StatusBadRequest, fhir.CodeNotSupported, "_summary=count applies to searches", "_summary")
			return nil, false, false
		}
		countOnly = true
	default:
		outcome(w, r, http.StatusBadRequest, fhir.CodeNotSupported, "_summary must be true, false or count", "_summary")
		return nil, false, false
	}
	if els != "" {
		names := strings.Split(els, ",")
		sub = func(b []byte) ([]byte, error) { return fhir.Elements(b, names) }
	}
	return sub, countOnly, true
}

// onlyParams refuses query parameters other than the given ones (and
// _format), so a client never gets an answer to a question it did not ask.
func onlyParams(w http.ResponseWriter, r *http.Request, q url.Values, allowed ...string) bool {
	for k := range q {
		if k == "_format" || contains(allowed, k) {
			continue
		}
		outcome(w, r, http.StatusBadRequest, fhir.CodeNotSupported, "parameter "+strconv.Quote(k)+" is not supported here; see /fhir/metadata", k)
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pathRef validates the type and id of the URL.
func pathRef(w http.ResponseWriter, r *http.Request) (typ, id string, ok bool) {
	typ, id = r.PathValue("type"), r.PathValue("id")
	if typ == "" {
		typ = "Patient" // /fhir/Patient/{id}/$everything
	}
	if !fhir.ValidID(id) {
		outcome(w, r, http.StatusBadRequest, fhir.CodeValue, "invalid resource id", typ+".id")
		return "", "", false
	}
	return typ, id, true
}

// patientOf returns the patient whose record holds typ/id: the id itself
// for a Patient (an unknown one is then denied by access, like one without
// a relationship), else the stored resource's patient, so access can
// decide. A resource unknown in the caller's organisation is answered 404.
func (s *Server) patientOf(w http.ResponseWriter, r *http.Request, c caller, typ, id string) (string, bool) {
	if typ == "Patient" {
		return id, true
	}
	pid, err := s.d.Records.ResourcePatient(r.Context(), c.Subject.TenantID(), typ, id)
	if err != nil {
		s.recordFailed(w, r, typ+"/"+id, err)
		return "", false
	}
	return pid, true
}

func (s *Server) fhirRead(w http.ResponseWriter, r *http.Request, c caller) {
	typ, id, ok := pathRef(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	if !onlyParams(w, r, q, "_summary", "_elements") {
		return
	}
	sub, _, ok := parseSubset(w, r, q, false)
	if !ok {
		return
	}
	pid, ok := s.patientOf(w, r, c, typ, id)
	if !ok {
		return
	}
	g, ok := s.decideFHIR(w, r, c, access.Request{PatientID: pid, Action: access.Read})
	if !ok {
		return
	}
	res, err := s.d.Records.Read(r.Context(), g, typ, id)
	if err != nil {
		s.recordFailed(w, r, typ+"/"+id, err)
		return
	}
	s.writeResource(w, r, http.StatusOK, res, sub)
}

func (s *Server) fhirVRead(w http.ResponseWriter, r *http.Request, c caller) {
	typ, id, ok := pathRef(w, r)
	if !ok {
		return
	}
	v, err := strconv.ParseInt(r.PathValue("vid"), 10, 64)
	if err != nil || v < 1 {
		outcome(w, r, http.StatusBadRequest, fhir.CodeValue, "invalid version id", "meta.versionId")
		return
	}
	q := r.URL.Query()
	if !onlyParams(w, r, q, "_summary", "_elements") {
		return
	}
	sub, _, ok := parseSubset(w, r, q, false)
	if !ok {
		return
	}
	pid, ok := s.patientOf(w, r, c, typ, id)
	if !ok {
		return
	}
	g, ok := s.decideFHIR(w, r, c, access.Request{PatientID: pid, Action: access.Read})
	if !ok {
		return
	}
	res, err := s.d.Records.VRead(r.Context(), g, typ, id, v)
	if err != nil {
		s.recordFailed(w, r, typ+"/"+id, err) // as for an unknown id: a hidden category must not show (AZ-9)
		return
	}
	s.writeResource(w, r, http.StatusOK, res, sub)
}

func (s *Server) fhirHistory(w http.ResponseWriter, r *http.Request, c caller) {
	typ, id, ok := pathRef(w, r)
	if !ok {
		return
	}
	if !onlyParams(w, r, r.URL.Query()) {
		return
	}
	pid, ok := s.patientOf(w, r, c, typ, id)
	if !ok {
		return
	}
	g, ok := s.decideFHIR(w, r, c, access.Request{PatientID: pid, Action: access.Read})
	if !ok {
		return
	}
	versions, err := s.d.Records.History(r.Context(), g, typ, id)
	if err != nil {
		s.recordFailed(w, r, typ+"/"+id, err)
		return
	}
	b := fhir.NewHistory(len(versions), fhir.Link{Relation: "self", URL: s.d.BaseURL + r.URL.RequestURI()})
	for _, v := range versions {
		method := http.MethodPut
		switch {
		case v.Deleted:
			method = http.MethodDelete
		case v.Version == 1:
			method = http.MethodPost
		}
		b.AddVersion(fhir.Version{FullURL: s.d.BaseURL + "/fhir/" + v.Ref(), Type: v.Type, ID: v.ID,
			VersionID: strconv.FormatInt(v.Version, 10), Method: method, LastModified: v.LastUpdated, Resource: v.Body})
	}
	writeBundle(w, b)
}

func writeBundle(w http.ResponseWriter, b *fhir.Bundle) {
	w.Header().Set("Content-Type", fhir.MediaType)
	w.WriteHeader(http.StatusOK)
	_ = b.WriteJSON(w) // the status is out: a failed write is the client's broken connection
}

func (s *Server) fhirNotSupported(w http.ResponseWriter, r *http.Request) {
	outcome(w, r, http.StatusNotFound, fhir.CodeNotSupported, "this interaction is not supported; see /fhir/metadata")
}

// isJSONBody reports whether the request says its body is FHIR JSON.
func isJSONBody(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && (mt == "application/fhir+json" || mt == "application/json" || mt == "application/json+fhir")
}

func writeJSONBody(w http.ResponseWriter, v any) {
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}
