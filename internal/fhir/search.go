package fhir

import (
	"slices"
	"strings"
)

// SearchParam describes one search parameter a resource type supports, in
// the terms of CapabilityStatement.rest.resource.searchParam.
type SearchParam struct {
	Name          string // e.g. "date"
	Type          string // FHIR search parameter type: "date" or "token"
	Documentation string // the elements searched
}

// ResourceTypes returns the supported resource types (the Basisgegevensset
// Zorg types this server stores), sorted.
func ResourceTypes() []string {
	out := make([]string, 0, len(specs))
	for name := range specs {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Supported reports whether resourceType is one of ResourceTypes.
func Supported(resourceType string) bool { return specs[resourceType] != nil }

// SearchParams returns the search parameters of resourceType, or nil when
// the type is not supported. Every type supports _lastUpdated (meta.lastUpdated,
// which the server sets); "code", "category" and "date" exist where the type
// has the element:
//
//	code      token  Observation, Condition, AllergyIntolerance, Procedure: code;
//	                 MedicationStatement, MedicationRequest: medicationCodeableConcept
//	category  token  the category element of Observation, Condition,
//	                 AllergyIntolerance, MedicationStatement, MedicationRequest,
//	                 Procedure, Flag, Consent, DocumentReference
//	date      date   see Resource.Date and the documentation of each type
//
// "date" is one parameter over the type's natural date (Observation's
// effective[x], Condition's onset or recordedDate, MedicationRequest's
// authoredOn, ...), simpler than R4's per-type names (onset-date, authoredon).
func SearchParams(resourceType string) []SearchParam {
	spec := specs[resourceType]
	if spec == nil {
		return nil
	}
	out := []SearchParam{{Name: "_lastUpdated", Type: "date", Documentation: resourceType + ".meta.lastUpdated"}}
	if spec.code != "" {
		out = append(out, SearchParam{Name: "code", Type: "token", Documentation: resourceType + "." + spec.code})
	}
	if spec.category != "" {
		out = append(out, SearchParam{Name: "category", Type: "token", Documentation: resourceType + "." + spec.category})
	}
	if len(spec.dates) > 0 {
		out = append(out, SearchParam{Name: "date", Type: "date", Documentation: spec.dateDoc})
	}
	return out
}

// MatchToken reports whether one of codings matches a token search value:
// "code" (any system), "system|code", "|code" (no system) or "system|" (any
// code in the system), as FHIR R4 token search defines.
func MatchToken(codings []Coding, token string) bool {
	system, code, hasBar := strings.Cut(token, "|")
	if !hasBar {
		system, code = "", system
	}
	for _, c := range codings {
		switch {
		case !hasBar:
			if c.Code == code {
				return true
			}
		case code == "":
			if c.System == system {
				return true
			}
		default:
			if c.System == system && c.Code == code {
				return true
			}
		}
	}
	return false
}
