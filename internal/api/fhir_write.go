package api

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/record"
)

// readResource reads and validates the request body as a resource of the
// URL's type. It answers the client itself (400, 413, 415) on failure.
func readResource(w http.ResponseWriter, r *http.Request, typ string) (*fhir.Resource, bool) {
	if !isJSONBody(r) {
		outcome(w, r, http.StatusUnsupportedMediaType, fhir.CodeNotSupported, "send the resource as application/fhir+json")
		return nil, false
	}
	body, err := io.ReadAll(r.Body)
	if isMaxBytes(err) {
		outcome(w, r, http.StatusRequestEntityTooLarge, fhir.CodeTooCostly, "the resource exceeds the size limit")
		return nil, false
	}
	if err != nil {
		outcome(w, r, http.StatusBadRequest, fhir.CodeStructure, "the body could not be read")
		return nil, false
	}
	res, err := fhir.Parse(body)
	if !validationFailed(w, r, http.StatusBadRequest, err) {
		return nil, false
	}
	if res.Type != typ {
		outcome(w, r, http.StatusBadRequest, fhir.CodeInvalid, "resourceType "+strconv.Quote(res.Type)+" does not match the URL ("+typ+")", "resourceType")
		return nil, false
	}
	return res, true
}

// validationFailed answers a *fhir.ValidationError with its OperationOutcome
// and reports whether err was nil.
func validationFailed(w http.ResponseWriter, r *http.Request, code int, err error) bool {
	if err == nil {
		return true
	}
	var ve *fhir.ValidationError
	if errors.As(err, &ve) {
		writeOutcome(w, code, ve.Outcome())
		return false
	}
	outcome(w, r, code, fhir.CodeInvalid, "the resource is not valid")
	return false
}

// fhirCreate is POST /fhir/{type}. The server assigns the id. A Patient is
// a registration (DecideRegistration; the BSN is kept only as a blind
// index, and a second patient with the same BSN is a 409). Any other
// resource joins the record of the patient its subject/patient/beneficiary
// names, under a create grant for its access categories.
func (s *Server) fhirCreate(w http.ResponseWriter, r *http.Request, c caller) {
	typ := r.PathValue("type")
	if !onlyParams(w, r, r.URL.Query()) {
		return
	}
	res, ok := readResource(w, r, typ)
	if !ok {
		return
	}
	if typ == "Patient" {
		s.registerPatient(w, r, c, res)
		return
	}
	if !validationFailed(w, r, http.StatusUnprocessableEntity, fhir.CheckPatientMatch(res, res.Patient)) {
		return
	}
	cats := fhir.Categories(res)
	g, ok := s.decideFHIR(w, r, c, access.Request{PatientID: res.Patient, Action: access.Create, Categories: cats})
	if !ok {
		return
	}
	id, err := s.d.IDs.NewID("r-")
	if err != nil {
		s.failed(w, r, err)
		return
	}
	stored, err := s.d.Records.Insert(r.Context(), g, record.Resource{Type: typ, ID: id, PatientID: res.Patient, Categories: cats, Body: res.Raw})
	if err != nil {
		s.recordFailed(w, r, typ+"/"+id, err)
		return
	}
	s.writeResource(w, r, http.StatusCreated, stored, nil)
}

func (s *Server) registerPatient(w http.ResponseWriter, r *http.Request, c caller, res *fhir.Resource) {
	ctx := r.Context()
	tenant := c.subject.TenantID()
	var idx []byte
	if res.BSN != "" && tenant != "" {
		var err error
		if idx, err = s.d.Records.BSNIndex(ctx, tenant, res.BSN); err != nil {
			s.failed(w, r, err)
			return
		}
		// Checked before the decision so that a duplicate is answered
		// without a registration grant; the unique index decides races.
		if _, err := s.d.IDs.PatientByBSNIndex(ctx, tenant, idx); err == nil {
			outcome(w, r, http.StatusConflict, fhir.CodeConflict, "a patient with this BSN is already registered in this organisation", "Patient.identifier")
			return
		} else if !errors.Is(err, identity.ErrNotFound) {
			s.failed(w, r, err)
			return
		}
	}
	id, err := s.d.IDs.NewID("p-")
	if err != nil {
		s.failed(w, r, err)
		return
	}
	g, err := s.d.Access.DecideRegistration(ctx, c.subject, id)
	if access.IsDenied(err) {
		outcome(w, r, http.StatusForbidden, fhir.CodeForbidden, "access denied; the attempt has been logged")
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	stored, err := s.d.Records.RegisterPatient(ctx, g, s.d.IDs, idx, res.Raw)
	if errors.Is(err, identity.ErrExists) {
		outcome(w, r, http.StatusConflict, fhir.CodeConflict, "a patient with this BSN is already registered in this organisation", "Patient.identifier")
		return
	}
	if err != nil {
		s.recordFailed(w, r, "Patient/"+id, err)
		return
	}
	s.writeResource(w, r, http.StatusCreated, stored, nil)
}

// ifMatch returns the version of an If-Match header (W/"3" or "3"), 0 when
// there is none.
func ifMatch(h string) (int64, bool) {
	if h == "" {
		return 0, true
	}
	h = strings.TrimPrefix(strings.TrimSpace(h), "W/")
	v, err := strconv.ParseInt(strings.Trim(h, `"`), 10, 64)
	return v, err == nil && v > 0
}

var errBSNChange = errors.New("the BSN of a registered patient cannot be changed")

// fhirUpdate is PUT /fhir/{type}/{id}: a new version of an existing
// resource. The version the client based its change on comes from If-Match
// (a mismatch is 412) or else meta.versionId (a mismatch is 409); without
// either the update applies to the current version.
func (s *Server) fhirUpdate(w http.ResponseWriter, r *http.Request, c caller) {
	typ, id, ok := pathRef(w, r)
	if !ok || !onlyParams(w, r, r.URL.Query()) {
		return
	}
	expect, ok := ifMatch(r.Header.Get("If-Match"))
	if !ok {
		outcome(w, r, http.StatusBadRequest, fhir.CodeValue, `If-Match must be a version ETag such as W/"1"`)
		return
	}
	res, ok := readResource(w, r, typ)
	if !ok {
		return
	}
	if res.ID != id {
		outcome(w, r, http.StatusBadRequest, fhir.CodeInvalid, typ+".id must be present and equal the id in the URL", typ+".id")
		return
	}
	fromMeta := false
	if expect == 0 && res.Meta.VersionID != "" {
		v, err := strconv.ParseInt(res.Meta.VersionID, 10, 64)
		if err != nil || v < 1 {
			outcome(w, r, http.StatusConflict, fhir.CodeConflict, "meta.versionId is not a version of this resource", typ+".meta.versionId")
			return
		}
		expect, fromMeta = v, true
	}
	pid, ok := s.patientOf(w, r, c, typ, id)
	if !ok {
		return
	}
	if !validationFailed(w, r, http.StatusUnprocessableEntity, fhir.CheckPatientMatch(res, pid)) {
		return
	}
	cats := fhir.Categories(res)
	g, ok := s.decideFHIR(w, r, c, access.Request{PatientID: pid, Action: access.Update, Categories: cats})
	if !ok {
		return
	}
	var guard func(record.Resource) error
	if typ == "Patient" {
		guard = func(prev record.Resource) error {
			old, err := fhir.Parse(prev.Body)
			if err != nil || old.BSN != res.BSN {
				return errBSNChange
			}
			return nil
		}
	}
	stored, err := s.d.Records.Update(r.Context(), g, record.Resource{Type: typ, ID: id, PatientID: pid, Categories: cats, Body: res.Raw}, expect, guard)
	switch {
	case errors.Is(err, errBSNChange):
		outcome(w, r, http.StatusUnprocessableEntity, "business-rule", errBSNChange.Error(), "Patient.identifier")
	case errors.Is(err, record.ErrConflict) && expect != 0 && !fromMeta:
		outcome(w, r, http.StatusPreconditionFailed, fhir.CodeConflict, "If-Match does not name the current version of "+typ+"/"+id)
	case errors.Is(err, record.ErrConflict) && fromMeta:
		outcome(w, r, http.StatusConflict, fhir.CodeConflict, "meta.versionId is not the current version of "+typ+"/"+id, typ+".meta.versionId")
	case err != nil:
		s.recordFailed(w, r, typ+"/"+id, err)
	default:
		s.writeResource(w, r, http.StatusOK, stored, nil)
	}
}

// fhirDelete is DELETE /fhir/{type}/{id}: a soft delete; history keeps
// the earlier versions. A Patient is not deleted this way: erasing a
// patient is crypto-shredding (zorgkluis keys shred).
func (s *Server) fhirDelete(w http.ResponseWriter, r *http.Request, c caller) {
	typ, id, ok := pathRef(w, r)
	if !ok || !onlyParams(w, r, r.URL.Query()) {
		return
	}
	if typ == "Patient" {
		w.Header().Set("Allow", "GET, PUT")
		outcome(w, r, http.StatusMethodNotAllowed, fhir.CodeNotSupported, "a Patient is not deleted through the API; erasure is crypto-shredding by an administrator")
		return
	}
	pid, ok := s.patientOf(w, r, c, typ, id)
	if !ok {
		return
	}
	g, ok := s.decideFHIR(w, r, c, access.Request{PatientID: pid, Action: access.Delete})
	if !ok {
		return
	}
	res, err := s.d.Records.Delete(r.Context(), g, typ, id)
	if err != nil {
		s.recordFailed(w, r, typ+"/"+id, err)
		return
	}
	w.Header().Set("ETag", etag(res.Version))
	w.WriteHeader(http.StatusNoContent)
}
