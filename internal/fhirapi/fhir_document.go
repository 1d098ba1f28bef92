package fhirapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/docsign"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
	"github.com/zorgkluis/zorgkluis/internal/record"
)

// fhirDocument accepts a document or collection Bundle of one patient's
// resources (POST /fhir/Bundle), signed or, when the organisation does not
// require signatures, unsigned (DP-4). A signature must verify: the
// signer's chain to the organisation's CA, its revocation, and the JWS over
// the exact canonical bytes; any fault is a 400 OperationOutcome naming it,
// logged, and nothing is stored. The entries are decided one by one
// (create, with their categories) before any is written, then written in
// one transaction with their create events: all or nothing.
func (s *Server) fhirDocument(w http.ResponseWriter, r *http.Request, c caller) {
	if s.d.CA == nil {
		s.fhirNotSupported(w, r)
		return
	}
	if !onlyParams(w, r, r.URL.Query()) {
		return
	}
	if !isJSONBody(r) {
		outcome(w, r, http.StatusUnsupportedMediaType, fhir.CodeNotSupported, "send the Bundle as application/fhir+json")
		return
	}
	body, err := io.ReadAll(r.Body)
	if httpx.IsMaxBytes(err) {
		outcome(w, r, http.StatusRequestEntityTooLarge, fhir.CodeTooCostly, "the Bundle exceeds the size limit")
		return
	}
	if err != nil {
		outcome(w, r, http.StatusBadRequest, fhir.CodeStructure, "the body could not be read")
		return
	}
	var doc struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Entry        []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.ResourceType != "Bundle" {
		outcome(w, r, http.StatusBadRequest, fhir.CodeStructure, "the body is not a FHIR Bundle")
		return
	}
	if doc.Type != "document" && doc.Type != "collection" {
		outcome(w, r, http.StatusBadRequest, fhir.CodeNotSupported, "only document and collection Bundles are accepted here", "Bundle.type")
		return
	}
	pol, err := s.d.CA.PolicyOf(r.Context(), c.Subject.TenantID())
	if err != nil {
		s.failed(w, r, err)
		return
	}
	signer, err := docsign.Verify(r.Context(), s.d.CA, body)
	var fault *docsign.Fault
	switch {
	case errors.Is(err, docsign.ErrUnsigned) && !pol.RequireSigned:
		signer.SystemID = ""
	case errors.As(err, &fault):
		s.d.Log.WarnContext(r.Context(), "signed document refused", "reason", fault.Reason, "tenant", c.Subject.TenantID(),
			"subject", c.Subject.AccountID(), "request_id", httpx.RequestID(r.Context()))
		outcome(w, r, http.StatusBadRequest, fhir.CodeInvalid, fault.Error(), "Bundle.signature")
		return
	case err != nil:
		s.failed(w, r, err)
		return
	case signer.TenantID != c.Subject.TenantID():
		s.d.Log.WarnContext(r.Context(), "signed document refused", "reason", "signer of another organisation", "tenant", c.Subject.TenantID())
		outcome(w, r, http.StatusBadRequest, fhir.CodeInvalid, "signature: the signer is not of this organisation", "Bundle.signature")
		return
	}
	if len(doc.Entry) == 0 {
		outcome(w, r, http.StatusBadRequest, fhir.CodeRequired, "the Bundle has no entries", "Bundle.entry")
		return
	}
	batch := s.d.Records.NewBatch()
	var refs []string
	for i, e := range doc.Entry {
		res, err := fhir.Parse(e.Resource)
		if !validationFailed(w, r, http.StatusBadRequest, err) {
			return
		}
		if !recordType(res.Type) || res.Type == "Patient" || res.Patient == "" {
			outcome(w, r, http.StatusBadRequest, fhir.CodeNotSupported, "entry "+itoa(i)+": a "+res.Type+" is not a record resource of a patient", "Bundle.entry")
			return
		}
		if !validationFailed(w, r, http.StatusUnprocessableEntity, fhir.CheckPatientMatch(res, res.Patient)) {
			return
		}
		cats := fhir.Categories(res)
		g, ok := s.decideFHIR(w, r, c, access.Request{PatientID: res.Patient, Action: access.Create, Categories: cats, Purpose: purposeOf(c)})
		if !ok {
			return
		}
		id, err := s.d.IDs.NewID("r-")
		if err != nil {
			s.failed(w, r, err)
			return
		}
		stored, err := batch.Insert(r.Context(), g, record.Resource{Type: res.Type, ID: id, PatientID: res.Patient, Categories: cats, Body: res.Raw})
		if err != nil {
			s.recordFailed(w, r, res.Type+"/"+id, err)
			return
		}
		refs = append(refs, stored.Ref())
	}
	if err := batch.Commit(r.Context()); err != nil {
		s.recordFailed(w, r, "Bundle", err)
		return
	}
	if signer.Serial != "" {
		s.d.Log.InfoContext(r.Context(), "signed document stored", "signer", signer.Serial, "system", signer.SystemID, "resources", refs,
			"request_id", httpx.RequestID(r.Context()))
	}
	type entry struct {
		Response struct {
			Status   string `json:"status"`
			Location string `json:"location"`
		} `json:"response"`
	}
	out := struct {
		ResourceType string  `json:"resourceType"`
		Type         string  `json:"type"`
		Signer       string  `json:"-"`
		Entry        []entry `json:"entry"`
	}{ResourceType: "Bundle", Type: "batch-response"}
	for _, ref := range refs {
		var e entry
		e.Response.Status, e.Response.Location = "201 Created", ref+"/_history/1"
		out.Entry = append(out.Entry, e)
	}
	w.Header().Set("Content-Type", fhir.MediaType)
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(out)
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
