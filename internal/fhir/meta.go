package fhir

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The tag FHIR asks a server to put on a resource it returns incomplete
// (_elements, _summary), so that it is not mistaken for the whole resource
// and written back.
const (
	systemObservationValue = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
	codeSubsetted          = "SUBSETTED"
)

var errNotResource = errors.New("fhir: not a JSON object with a resourceType")

// resourceMembers splits stored resource JSON into its members.
func resourceMembers(raw []byte) ([]member, error) {
	if !json.Valid(raw) {
		return nil, errNotResource
	}
	ms, ok := members(raw)
	if !ok || get(ms, "resourceType") == nil {
		return nil, errNotResource
	}
	return ms, nil
}

// WithMeta returns raw with id, meta.versionId and meta.lastUpdated set to
// the given values (lastUpdated in UTC, RFC 3339 with as many fraction
// digits as it has), as the server does on every create and update. Every
// other element, and every other part of meta, stays as it was, in its
// order; the output is compact JSON with resourceType, id and meta first, so
// the same input always gives the same bytes. Values keep their bytes
// except insignificant whitespace.
func WithMeta(raw []byte, id, versionID string, lastUpdated time.Time) ([]byte, error) {
	if !ValidID(id) {
		return nil, errors.New("fhir: WithMeta: id is not a valid FHIR id")
	}
	if !ValidID(versionID) {
		return nil, errors.New("fhir: WithMeta: versionId is not a valid FHIR id")
	}
	ms, err := resourceMembers(raw)
	if err != nil {
		return nil, fmt.Errorf("fhir: WithMeta: %w", err)
	}
	var metaMembers []member
	if old := get(ms, "meta"); old != nil {
		if metaMembers, _ = members(old); metaMembers == nil {
			return nil, errors.New("fhir: WithMeta: meta is not a JSON object")
		}
	}
	lu := appendString(nil, lastUpdated.UTC().Format(time.RFC3339Nano))
	newMeta := []member{
		{key: "versionId", value: appendString(nil, versionID)},
		{key: "lastUpdated", value: lu},
	}
	for _, m := range metaMembers {
		if m.key != "versionId" && m.key != "lastUpdated" {
			newMeta = append(newMeta, m)
		}
	}
	metaJSON, err := appendObject(nil, newMeta)
	if err != nil {
		return nil, fmt.Errorf("fhir: WithMeta: %w", err)
	}
	out := []member{
		{key: "resourceType", value: get(ms, "resourceType")},
		{key: "id", value: appendString(nil, id)},
		{key: "meta", value: metaJSON},
	}
	for _, m := range ms {
		switch m.key {
		case "resourceType", "id", "meta":
		default:
			out = append(out, m)
		}
	}
	b, err := appendObject(make([]byte, 0, len(raw)+64), out)
	if err != nil {
		return nil, fmt.Errorf("fhir: WithMeta: %w", err)
	}
	return b, nil
}

// Elements returns raw reduced to the elements named (the _elements search
// parameter), plus resourceType, id, meta, implicitRules and
// modifierExtension, which FHIR says must not be left out. A name may carry
// the resource type ("Patient.name"); a choice name ("effective") selects
// every type of it (effectiveDateTime, ...); a primitive's extension
// ("_birthDate") goes with it. The result carries the SUBSETTED tag.
//
// Simplification: other modifier elements (status, for one) are kept only
// when asked for.
func Elements(raw []byte, names []string) ([]byte, error) {
	ms, err := resourceMembers(raw)
	if err != nil {
		return nil, fmt.Errorf("fhir: Elements: %w", err)
	}
	rt, _ := decodeString(get(ms, "resourceType"))
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[strings.TrimPrefix(strings.TrimSpace(n), rt+".")] = true
	}
	return subset(ms, rt, want)
}

// summaryElements are the elements Summary keeps.
var summaryElements = map[string]bool{
	"identifier": true, "active": true, "status": true, "intent": true, "code": true,
	"category": true, "subject": true, "patient": true, "beneficiary": true,
	"name": true, "birthDate": true, "gender": true, "effective": true,
	"clinicalStatus": true, "verificationStatus": true,
}

// Summary returns raw reduced for _summary=true: resourceType, id, meta,
// implicitRules, modifierExtension and identifier, active, status, intent,
// code, category, subject, patient, beneficiary, name, birthDate, gender,
// effective[x], clinicalStatus and verificationStatus, with the SUBSETTED
// tag.
//
// Simplification: R4 defines the summary per element of each type
// (isSummary); this fixed list covers the elements that identify a resource
// and its patient, and may keep or drop a little more than R4's list.
func Summary(raw []byte) ([]byte, error) {
	ms, err := resourceMembers(raw)
	if err != nil {
		return nil, fmt.Errorf("fhir: Summary: %w", err)
	}
	rt, _ := decodeString(get(ms, "resourceType"))
	return subset(ms, rt, summaryElements)
}

// subset writes the members of a resource that want selects, plus the ones
// that are always kept, and tags the result SUBSETTED.
func subset(ms []member, rt string, want map[string]bool) ([]byte, error) {
	spec := specs[rt]
	keep := func(key string) bool {
		key = strings.TrimPrefix(key, "_")
		switch key {
		case "resourceType", "id", "meta", "implicitRules", "modifierExtension":
			return true
		}
		if want[key] {
			return true
		}
		if spec != nil {
			if base, _, ok := spec.choiceBase(key); ok {
				return want[base]
			}
		}
		return false
	}
	var out []member
	hasMeta := false
	for _, m := range ms {
		if !keep(m.key) {
			continue
		}
		if m.key == "meta" {
			tagged, err := withSubsettedTag(m.value)
			if err != nil {
				return nil, err
			}
			m.value, hasMeta = tagged, true
		}
		out = append(out, m)
	}
	if !hasMeta {
		tagged, err := withSubsettedTag(nil)
		if err != nil {
			return nil, err
		}
		// Right after resourceType and id, where WithMeta puts it.
		at := 0
		for at < len(out) && (out[at].key == "resourceType" || out[at].key == "id") {
			at++
		}
		out = append(out[:at], append([]member{{key: "meta", value: tagged}}, out[at:]...)...)
	}
	return appendObject(nil, out)
}

// withSubsettedTag returns the meta object (nil: none) with the SUBSETTED
// tag added to meta.tag, unless it is there already.
func withSubsettedTag(meta []byte) ([]byte, error) {
	var ms []member
	if meta != nil {
		var ok bool
		if ms, ok = members(meta); !ok {
			return nil, errors.New("fhir: meta is not a JSON object")
		}
	}
	tag := appendObject2("system", systemObservationValue, "code", codeSubsetted)
	var tags [][]byte
	if old := get(ms, "tag"); old != nil {
		var ok bool
		if tags, ok = items(old); !ok {
			return nil, errors.New("fhir: meta.tag is not a JSON array")
		}
		for _, t := range tags {
			var c Coding
			if json.Unmarshal(t, &c) == nil && c.System == systemObservationValue && c.Code == codeSubsetted {
				return meta, nil
			}
		}
	}
	tags = append(tags, tag)
	arr := []byte{'['}
	for i, t := range tags {
		if i > 0 {
			arr = append(arr, ',')
		}
		arr = append(arr, t...)
	}
	arr = append(arr, ']')
	replaced := false
	for i := range ms {
		if ms[i].key == "tag" {
			ms[i].value, replaced = arr, true
		}
	}
	if !replaced {
		ms = append(ms, member{key: "tag", value: arr})
	}
	return appendObject(nil, ms)
}

// appendObject2 writes a JSON object of two string members.
func appendObject2(k1, v1, k2, v2 string) []byte {
	b := []byte{'{'}
	b = appendString(b, k1)
	b = append(b, ':')
	b = appendString(b, v1)
	b = append(b, ',')
	b = appendString(b, k2)
	b = append(b, ':')
	b = appendString(b, v2)
	return append(b, '}')
}
