package fhir

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/zorgkluis/zorgkluis/internal/nlid"
)

const (
	// maxNesting is the deepest nesting of JSON objects and arrays Parse
	// accepts; real resources stay far below it, and a bound keeps hostile
	// input from costing stack or time.
	maxNesting = 64
	// maxIssues bounds the issues one validation reports, so that a
	// pathological resource cannot produce a huge OperationOutcome.
	maxIssues = 50
)

var (
	typeNameRE = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)
	uuidRE     = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	oidRE      = regexp.MustCompile(`^[0-2](\.(0|[1-9][0-9]*))+$`)
)

// validator collects the issues found in one resource. Diagnostics name
// elements but never repeat submitted values: those may be personal data and
// OperationOutcomes end up in logs.
type validator struct {
	issues []Issue
}

func (v *validator) add(code, expression, diagnostics string) {
	if len(v.issues) >= maxIssues {
		return
	}
	iss := Issue{Severity: SeverityError, Code: code, Diagnostics: diagnostics}
	if expression != "" {
		iss.Expression = []string{expression}
	}
	v.issues = append(v.issues, iss)
}

// resource checks the members of a resource of a supported type; path is
// the expression of the resource itself ("Observation", or
// "Bundle.contained[0]" style for contained resources).
func (v *validator) resource(path string, spec *typeSpec, ms []member) {
	v.duplicates(path, ms)
	for i := range spec.elements {
		v.element(path, ms, &spec.elements[i])
	}
}

// object checks that raw is a non-empty object with the given elements and
// returns its members (nil when it is not an object).
func (v *validator) object(path string, raw []byte, elems []element) []member {
	ms, ok := members(raw)
	if !ok {
		v.add(CodeStructure, path, path+" must be a JSON object, not "+jsonType(raw))
		return nil
	}
	if len(ms) == 0 {
		// Go on, so that missing required elements are named too.
		v.add(CodeStructure, path, path+" must not be an empty object")
	}
	v.duplicates(path, ms)
	for i := range elems {
		v.element(path, ms, &elems[i])
	}
	return ms
}

// duplicates reports members that occur more than once in one object; JSON
// parsers disagree on which one wins, so FHIR forbids them.
func (v *validator) duplicates(path string, ms []member) {
	report := func(key string) {
		expr, name := path, "a property"
		if q := quoteIfName(key); q != "" {
			expr, name = path+"."+key, "property "+q
		}
		v.add(CodeStructure, expr, path+" has "+name+" more than once")
	}
	if len(ms) <= 16 {
		for i := 1; i < len(ms); i++ {
			for j := range i {
				if ms[i].key == ms[j].key {
					report(ms[i].key)
					break
				}
			}
		}
		return
	}
	seen := make(map[string]bool, len(ms))
	for _, m := range ms {
		if seen[m.key] {
			report(m.key)
		}
		seen[m.key] = true
	}
}

// element checks one element (or choice element) among the members of its
// parent object at path.
func (v *validator) element(path string, ms []member, e *element) {
	if e.choices != nil {
		found := 0
		for _, c := range e.choices {
			raw := get(ms, e.name+c.suffix)
			if raw == nil {
				continue
			}
			p := path + "." + e.name + c.suffix
			if found++; found > 1 {
				v.add(CodeStructure, p, "only one type of "+path+"."+e.name+"[x] may be given")
			}
			v.value(p, &element{name: e.name + c.suffix, kind: c.kind}, raw)
		}
		if found == 0 && e.min1 {
			v.add(CodeRequired, path+"."+e.name+"[x]", "missing required element "+path+"."+e.name+"[x]")
		}
		return
	}
	raw := get(ms, e.name)
	if raw == nil {
		// A required primitive may be present as an extension only (for
		// instance a data-absent-reason), which FHIR JSON writes as "_name".
		if e.min1 && !(e.kind.primitive() && has(ms, "_"+e.name)) {
			v.add(CodeRequired, path+"."+e.name, "missing required element "+path+"."+e.name)
		}
		return
	}
	v.value(path+"."+e.name, e, raw)
}

// value checks the JSON value of an element, repeating or not.
func (v *validator) value(path string, e *element, raw []byte) {
	if !e.many {
		v.single(path, e, raw)
		return
	}
	its, ok := items(raw)
	if !ok {
		v.add(CodeStructure, path, path+" must be a JSON array, not "+jsonType(raw))
		return
	}
	if len(its) == 0 {
		v.add(CodeStructure, path, path+" must not be an empty array")
		return
	}
	for i, it := range its {
		// In a repeating primitive, null marks an entry whose value is
		// given only as an extension in the matching "_name" array.
		if e.kind.primitive() && string(it) == "null" {
			continue
		}
		v.single(path+"["+strconv.Itoa(i)+"]", e, it)
	}
}

// single checks one non-repeating value.
func (v *validator) single(path string, e *element, raw []byte) {
	if string(raw) == "null" {
		v.add(CodeStructure, path, path+" must not be null")
		return
	}
	switch e.kind {
	case kBool:
		if string(raw) != "true" && string(raw) != "false" {
			v.add(CodeStructure, path, path+" must be a JSON boolean, not "+jsonType(raw))
		}
	case kInteger:
		if jsonType(raw) != "number" {
			v.add(CodeStructure, path, path+" must be a JSON number, not "+jsonType(raw))
		} else if _, err := strconv.ParseInt(string(raw), 10, 32); err != nil {
			v.add(CodeValue, path, path+" must be a whole number within 32 bits")
		}
	case kString, kCode, kID, kDate, kDateTime, kInstant, kTime:
		s, ok := decodeString(raw)
		if !ok {
			v.add(CodeStructure, path, path+" must be a JSON string, not "+jsonType(raw))
			return
		}
		v.primitive(path, e, s)
	case kContained:
		v.contained(path, raw)
	case kBackbone:
		v.object(path, raw, e.sub)
	default:
		if ms := v.object(path, raw, elementsOf(e.kind)); ms != nil {
			v.invariants(path, e, ms)
		}
	}
}

// primitive checks the content of a string-valued primitive.
func (v *validator) primitive(path string, e *element, s string) {
	if strings.TrimSpace(s) == "" {
		v.add(CodeValue, path, path+" must not be empty or only whitespace")
		return
	}
	switch e.kind {
	case kCode:
		if !validCode(s) {
			v.add(CodeValue, path, path+" must be a code without leading, trailing or repeated whitespace")
		} else if e.codes != nil && !contains(e.codes, s) {
			v.add(CodeCodeInvalid, path, path+" must be one of: "+strings.Join(e.codes, ", "))
		}
	case kID:
		if !ValidID(s) {
			v.add(CodeValue, path, path+" must be a FHIR id: 1 to 64 of A-Z, a-z, 0-9, '-' and '.'")
		}
	case kDate:
		if !validDate(s) {
			v.add(CodeValue, path, path+" must be a FHIR date: YYYY, YYYY-MM or YYYY-MM-DD, and exist in the calendar")
		}
	case kDateTime:
		if !validDateTime(s) {
			v.add(CodeValue, path, path+" must be a FHIR dateTime: YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with a time zone, and exist in the calendar")
		}
	case kInstant:
		if !validInstant(s) {
			v.add(CodeValue, path, path+" must be a FHIR instant: YYYY-MM-DDThh:mm:ss with a time zone, and exist in the calendar")
		}
	case kTime:
		if !timeRE.MatchString(s) {
			v.add(CodeValue, path, path+" must be a FHIR time: hh:mm:ss")
		}
	}
}

// invariants checks the rules of complex datatypes that span elements.
func (v *validator) invariants(path string, e *element, ms []member) {
	switch e.kind {
	case kIdentifier:
		system, _ := decodeString(get(ms, "system"))
		value, ok := decodeString(get(ms, "value"))
		if valid := nlid.Validator(system); ok && valid != nil && !valid(value) {
			v.add(CodeValue, path+".value", path+".value is not a valid "+identifierName(system))
		}
	case kReference:
		v.reference(path, e, ms)
	case kPeriod:
		start, okS := decodeString(get(ms, "start"))
		end, okE := decodeString(get(ms, "end"))
		if okS && okE {
			s, errS := ParseDateTime(start)
			en, errE := ParseDateTime(end)
			if errS == nil && errE == nil && !s.Start.Before(en.End) {
				v.add(CodeInvariant, path, path+".start must be before "+path+".end (per-1)")
			}
		}
	}
}

// reference checks Reference.reference and, where the element allows only
// one resource type, that the reference is a relative one to that type.
func (v *validator) reference(path string, e *element, ms []member) {
	if e.target != "" {
		if t, ok := decodeString(get(ms, "type")); ok && t != e.target {
			v.add(CodeInvalid, path+".type", path+" must refer to a "+e.target)
		}
	}
	ref, ok := decodeString(get(ms, "reference"))
	if !ok {
		return
	}
	p := path + ".reference"
	if e.target == "" {
		if !validReference(ref) {
			v.add(CodeValue, p, p+" must be Type/id, an absolute URL ending in Type/id, #id, urn:uuid: or urn:oid:")
		}
		return
	}
	typ, _, hist, ok := relativeReference(ref)
	switch {
	case !ok || hist:
		v.add(CodeValue, p, p+" must be a relative reference "+e.target+"/{id}")
	case typ != e.target:
		v.add(CodeInvalid, p, p+" must refer to a "+e.target+", not another resource type")
	}
}

// contained checks a contained resource: an object with a resourceType;
// resources of supported types are checked like top-level ones. FHIR's
// dom-2 forbids contained resources from containing others.
func (v *validator) contained(path string, raw []byte) {
	ms, ok := members(raw)
	if !ok {
		v.add(CodeStructure, path, path+" must be a JSON object, not "+jsonType(raw))
		return
	}
	rt, ok := decodeString(get(ms, "resourceType"))
	if !ok {
		v.add(CodeRequired, path+".resourceType", path+" must have a resourceType string")
		return
	}
	if has(ms, "contained") {
		v.add(CodeInvariant, path+".contained", "a contained resource must not contain resources (dom-2)")
	}
	if spec := specs[rt]; spec != nil {
		v.resource(path, spec, ms)
	} else {
		v.duplicates(path, ms)
	}
}

// validCode reports whether s is a FHIR code: non-whitespace runs separated
// by single spaces or whitespace characters ([^\s]+(\s[^\s]+)*).
func validCode(s string) bool {
	space := true // at the start, as if after a space, so a leading one fails
	for i := range len(s) {
		if isCodeSpace(s[i]) {
			if space {
				return false
			}
			space = true
		} else {
			space = false
		}
	}
	return !space
}

func isCodeSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// validReference reports whether s is a reference this server accepts:
// relative (Type/id, optionally /_history/vid), absolute (an http(s) URL
// ending in such a relative reference), local to the container (#id, or #
// for the container itself), or a urn:uuid:/urn:oid: as used inside
// transaction bundles.
func validReference(s string) bool {
	switch {
	case strings.HasPrefix(s, "#"):
		return s == "#" || ValidID(s[1:])
	case strings.HasPrefix(s, "urn:uuid:"):
		return uuidRE.MatchString(s[len("urn:uuid:"):])
	case strings.HasPrefix(s, "urn:oid:"):
		return oidRE.MatchString(s[len("urn:oid:"):])
	case strings.HasPrefix(s, "http://"), strings.HasPrefix(s, "https://"):
		rest := s[strings.Index(s, "://")+3:]
		if strings.ContainsAny(rest, " \t\r\n") {
			return false
		}
		parts := strings.Split(rest, "/")
		// host, [path...], Type, id [, _history, vid]
		for _, n := range []int{4, 2} {
			if len(parts) > n && parts[0] != "" {
				if _, _, _, ok := relativeReference(strings.Join(parts[len(parts)-n:], "/")); ok {
					return true
				}
			}
		}
		return false
	}
	_, _, _, ok := relativeReference(s)
	return ok
}

// relativeReference splits Type/id or Type/id/_history/vid.
func relativeReference(s string) (typ, id string, history, ok bool) {
	parts := strings.Split(s, "/")
	switch {
	case len(parts) == 2:
	case len(parts) == 4 && parts[2] == "_history" && ValidID(parts[3]):
		history = true
	default:
		return "", "", false, false
	}
	if !typeNameRE.MatchString(parts[0]) || !ValidID(parts[1]) {
		return "", "", false, false
	}
	return parts[0], parts[1], history, true
}

// identifierName names an identifier system for diagnostics.
func identifierName(system string) string {
	switch system {
	case nlid.SystemBSN:
		return "BSN (9 digits passing the elfproef)"
	case nlid.SystemURA:
		return "URA number (8 digits)"
	case nlid.SystemAGB:
		return "AGB code (8 digits)"
	case nlid.SystemBIG:
		return "BIG number (11 digits)"
	case nlid.SystemUZIPers:
		return "UZI number (9 digits)"
	}
	return "identifier for its system"
}
