package fhirapi

import (
	"net/http"

	"github.com/zorgkluis/zorgkluis/internal/fhir"
)

// fhirMetadata is the CapabilityStatement. It is built from the same
// tables the handlers use (recordTypes, fhir.SearchParams), so it states
// exactly what works and nothing more.
func (s *Server) fhirMetadata(w http.ResponseWriter, r *http.Request) {
	type param struct {
		Name          string `json:"name"`
		Type          string `json:"type"`
		Documentation string `json:"documentation,omitempty"`
	}
	type code struct {
		Code string `json:"code"`
	}
	var resources []map[string]any
	for _, typ := range recordTypes() {
		ia := []code{{"read"}, {"vread"}, {"update"}, {"history-instance"}, {"create"}, {"search-type"}}
		params := []param{}
		if typ == "Patient" {
			params = append(params,
				param{"_id", "token", "the patient's id"},
				param{"identifier", "token", "BSN only: http://fhir.nl/fhir/NamingSystem/bsn|<BSN>, looked up by its blind index"})
		} else {
			ia = append(ia, code{"delete"})
			params = append(params,
				param{"patient", "reference", "required (or subject): every search is within one patient's record"},
				param{"subject", "reference", "same as patient"})
		}
		for _, p := range fhir.SearchParams(typ) {
			params = append(params, param{p.Name, p.Type, p.Documentation})
		}
		res := map[string]any{
			"type":              typ,
			"interaction":       ia,
			"versioning":        "versioned-update",
			"readHistory":       true,
			"updateCreate":      false,
			"conditionalCreate": false,
			"conditionalRead":   "not-supported",
			"conditionalUpdate": false,
			"conditionalDelete": "not-supported",
			"searchParam":       params,
		}
		if typ == "Patient" {
			res["operation"] = []map[string]string{{"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}}
		}
		resources = append(resources, res)
	}
	resources = append(resources, auditEventCapability())
	cs := map[string]any{
		"resourceType": "CapabilityStatement",
		"status":       "active",
		"date":         "2026-11-22",
		"kind":         "instance",
		"software":     map[string]string{"name": "zorgkluis", "version": s.d.Version},
		"implementation": map[string]string{
			"description": "zorgkluis health-record server", "url": s.d.BaseURL + "/fhir",
		},
		"fhirVersion": "4.0.1",
		"format":      []string{"application/fhir+json", "json"},
		"rest": []map[string]any{{
			"mode": "server",
			"documentation": "Every resource belongs to one patient's record; searches are per patient (patient/subject, or _id/identifier for Patient), " +
				"with _count (0..1000, default 100), _offset paging links, _summary (true, false, count) and _elements. " +
				"Date parameters take the prefixes eq, ne, gt, lt, ge, le, sa and eb; tokens system|code, |code, system| or code, comma for OR. " +
				"Unknown parameters are refused (400). Update needs the resource's id, accepts If-Match (412 on mismatch) or meta.versionId (409 on mismatch), and never creates. " +
				"Delete is soft and keeps history; a Patient is not deleted through the API. Creating a Patient registers it (duplicate BSN: 409). " +
				"Practitioner, PractitionerRole and Organization are not stored.",
			"security": map[string]any{
				"description": "Bearer session token from POST /api/v1/logon and /api/v1/logon/totp (two factors, assurance Hoog). Every access is decided per care relationship or own data, limited to the role's data categories, and logged (NEN 7513).",
			},
			"resource": resources,
		}},
	}
	w.Header().Set("Content-Type", fhir.MediaType)
	writeJSONBody(w, cs)
}
