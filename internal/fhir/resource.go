package fhir

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/zorgkluis/zorgkluis/internal/nlid"
)

// Resource is what the server reads of a submitted resource. Raw keeps the
// resource exactly as submitted, including elements and extensions this
// package does not interpret.
type Resource struct {
	Type string // resourceType, e.g. "Observation"
	ID   string // id; empty when the client did not give one (create)
	Meta Meta

	// Patient is the id of the patient the resource belongs to: its own id
	// for a Patient, the id in subject/patient/beneficiary ("Patient/{id}")
	// for clinical resources, empty for Practitioner, PractitionerRole and
	// Organization, and empty when the reference names no Patient id (for
	// instance a reference by identifier only).
	Patient string

	Codes       []Coding     // the codings of the element searched by "code"
	Category    []Coding     // the codings of the element searched by "category"
	Date        *DateRange   // the value searched by "date"; nil when absent
	Identifiers []Identifier // the top-level identifier element

	// Patient resources only.
	Names     []HumanName
	Gender    string
	BirthDate string // FHIR date, possibly partial (YYYY or YYYY-MM)
	BSN       string // the value of the first identifier with system nlid.SystemBSN

	Raw json.RawMessage // the resource as submitted (a copy of Parse's input)
}

// Meta is what the server reads of Resource.meta.
type Meta struct {
	VersionID   string
	LastUpdated time.Time // zero when absent
	Profile     []string
	Security    []Coding // security labels, e.g. v3-ActCode PSY; see Categories
	Tag         []Coding
}

// Coding is a FHIR Coding reduced to what search and access decisions use.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// Identifier is a FHIR Identifier reduced to system and value.
type Identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value,omitempty"`
}

// HumanName is a FHIR HumanName without period.
type HumanName struct {
	Use    string   `json:"use,omitempty"`
	Text   string   `json:"text,omitempty"`
	Family string   `json:"family,omitempty"`
	Given  []string `json:"given,omitempty"`
	Prefix []string `json:"prefix,omitempty"`
	Suffix []string `json:"suffix,omitempty"`
}

// systemAllergyCategory is the code system of AllergyIntolerance.category,
// which R4 types as code rather than CodeableConcept.
const systemAllergyCategory = "http://hl7.org/fhir/allergy-intolerance-category"

// Parse checks body as a FHIR R4 JSON resource of a supported type and
// returns what the server needs of it. A resource the server must reject
// yields a *ValidationError naming each offending element; Parse never
// returns another error type. The caller limits the body size.
//
// Parse rejects: invalid UTF-8 or JSON; nesting deeper than 64; anything but
// an object; a missing or unsupported resourceType; duplicate properties in
// any object it inspects; for the elements it knows (see spec.go), wrong
// JSON types, null, empty strings, arrays and objects, invalid ids, codes
// outside their required value set, invalid date/dateTime/instant/time
// values, malformed references, references to anything but a Patient where
// the patient is named, identifiers with a Dutch system (BSN, URA, AGB, BIG,
// UZI) whose value has the wrong format, periods ending before they start,
// and missing required elements.
func Parse(body []byte) (*Resource, error) {
	if !utf8.Valid(body) {
		return nil, invalid(CodeStructure, "", "the body is not valid UTF-8")
	}
	if maxDepth(body, maxNesting) > maxNesting {
		return nil, invalid(CodeStructure, "", "the JSON is nested deeper than "+strconv.Itoa(maxNesting)+" levels")
	}
	if !json.Valid(body) {
		diag := "the body is not valid JSON"
		var syn *json.SyntaxError
		if err := json.Unmarshal(body, new(json.RawMessage)); errors.As(err, &syn) {
			diag += " (at byte offset " + strconv.FormatInt(syn.Offset, 10) + ")"
		}
		return nil, invalid(CodeStructure, "", diag)
	}
	ms, ok := members(body)
	if !ok {
		return nil, invalid(CodeStructure, "", "a resource must be a JSON object, not "+jsonType(trimSpace(body)))
	}
	rawType := get(ms, "resourceType")
	if rawType == nil {
		return nil, invalid(CodeRequired, "resourceType", "missing resourceType")
	}
	rt, ok := decodeString(rawType)
	if !ok {
		return nil, invalid(CodeStructure, "resourceType", "resourceType must be a JSON string, not "+jsonType(rawType))
	}
	spec := specs[rt]
	if spec == nil {
		diag := "resource type is not supported"
		if q := quoteIfName(rt); q != "" {
			diag = "resource type " + q + " is not supported"
		}
		return nil, invalid(CodeNotSupported, "resourceType", diag)
	}
	var v validator
	v.resource(rt, spec, ms)
	if len(v.issues) > 0 {
		return nil, &ValidationError{Issues: v.issues}
	}
	res := &Resource{Type: rt, Raw: append(json.RawMessage(nil), body...)}
	res.extract(spec, ms)
	return res, nil
}

// extract fills res from members that passed validation, so the decoding
// below cannot fail on types.
func (res *Resource) extract(spec *typeSpec, ms []member) {
	res.ID, _ = decodeString(get(ms, "id"))
	if raw := get(ms, "meta"); raw != nil {
		var m struct {
			VersionID   string   `json:"versionId"`
			LastUpdated string   `json:"lastUpdated"`
			Profile     []string `json:"profile"`
			Security    []Coding `json:"security"`
			Tag         []Coding `json:"tag"`
		}
		_ = json.Unmarshal(raw, &m)
		res.Meta = Meta{VersionID: m.VersionID, Profile: m.Profile, Security: m.Security, Tag: m.Tag}
		if r, err := ParseDateTime(m.LastUpdated); err == nil {
			res.Meta.LastUpdated = r.Start
		}
	}
	if raw := get(ms, "identifier"); raw != nil {
		_ = json.Unmarshal(raw, &res.Identifiers)
	}
	switch {
	case spec.name == "Patient":
		res.Patient = res.ID
		if raw := get(ms, "name"); raw != nil {
			_ = json.Unmarshal(raw, &res.Names)
		}
		res.Gender, _ = decodeString(get(ms, "gender"))
		res.BirthDate, _ = decodeString(get(ms, "birthDate"))
		for _, id := range res.Identifiers {
			if id.System == nlid.SystemBSN && id.Value != "" {
				res.BSN = id.Value
				break
			}
		}
	case spec.patient != "":
		var ref struct {
			Reference string `json:"reference"`
		}
		if raw := get(ms, spec.patient); raw != nil {
			_ = json.Unmarshal(raw, &ref)
			if _, id, _, ok := relativeReference(ref.Reference); ok {
				res.Patient = id
			}
		}
	}
	if spec.code != "" {
		res.Codes = codings(get(ms, spec.code), false)
	}
	if spec.category != "" {
		raw := get(ms, spec.category)
		switch e := spec.element(spec.category); {
		case raw == nil:
		case e.kind == kCode:
			var codes []string
			_ = json.Unmarshal(raw, &codes)
			for _, c := range codes {
				res.Category = append(res.Category, Coding{System: systemAllergyCategory, Code: c})
			}
		default:
			res.Category = codings(raw, e.many)
		}
	}
	for _, name := range spec.dates {
		if r := spec.dateOf(name, get(ms, name)); r != nil {
			res.Date = r
			break
		}
	}
}

// codings returns the codings (with a code) of a CodeableConcept or of a
// list of them.
func codings(raw []byte, many bool) []Coding {
	if raw == nil {
		return nil
	}
	type concept struct {
		Coding []Coding `json:"coding"`
	}
	var ccs []concept
	if many {
		_ = json.Unmarshal(raw, &ccs)
	} else {
		var cc concept
		_ = json.Unmarshal(raw, &cc)
		ccs = []concept{cc}
	}
	var out []Coding
	for _, cc := range ccs {
		for _, c := range cc.Coding {
			if c.Code != "" {
				out = append(out, c)
			}
		}
	}
	return out
}

// dateOf returns the range of a date-valued element, or nil.
func (s *typeSpec) dateOf(name string, raw []byte) *DateRange {
	if raw == nil {
		return nil
	}
	k := kObject
	if e := s.element(name); e != nil {
		k = e.kind
	} else if _, c, ok := s.choiceBase(name); ok {
		k = c.kind
	}
	switch k {
	case kDate, kDateTime, kInstant:
		str, _ := decodeString(raw)
		if r, err := ParseDateTime(str); err == nil {
			return &r
		}
	case kPeriod:
		ms, _ := members(raw)
		var r DateRange
		start, okS := decodeString(get(ms, "start"))
		end, okE := decodeString(get(ms, "end"))
		if !okS && !okE {
			return nil
		}
		if s, err := ParseDateTime(start); okS && err == nil {
			r.Start = s.Start
		}
		if e, err := ParseDateTime(end); okE && err == nil {
			r.End = e.End
		}
		return &r
	}
	return nil
}

// CheckPatientMatch rejects res when it does not belong to the patient
// patientID that the request (its URL or the stored record) names: a
// Patient with another id (one without an id passes: the server assigns it), a clinical resource whose subject, patient or
// beneficiary names another patient or none, and any resource type that is
// not part of a patient's record. The error is a *ValidationError.
func CheckPatientMatch(res *Resource, patientID string) error {
	if res == nil {
		return invalid(CodeInvalid, "", "no resource")
	}
	spec := specs[res.Type]
	switch {
	case spec == nil:
		return invalid(CodeNotSupported, "resourceType", "resource type is not supported")
	case spec.name == "Patient":
		if res.ID != "" && res.ID != patientID {
			return invalid(CodeInvalid, "Patient.id", "Patient.id is not the patient of the request")
		}
	case spec.patient == "":
		return invalid(CodeInvalid, spec.name, spec.name+" is not part of a patient's record")
	case res.Patient == "":
		p := spec.name + "." + spec.patient
		return invalid(CodeRequired, p, p+" must reference the patient of the request as Patient/{id}")
	case res.Patient != patientID:
		p := spec.name + "." + spec.patient
		return invalid(CodeInvalid, p, p+" refers to another patient than the request")
	}
	return nil
}
