package web

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/nlid"
	"github.com/zorgkluis/zorgkluis/internal/record"
)

// section is one part of a record as the pages show it: the resource types
// it holds and the general data category access decides on (AZ-9).
type section struct {
	Key      string
	Types    []string
	Category string
}

var sections = []section{
	{"personal", []string{"Patient"}, fhir.CategoryDemographics},
	{"measurements", []string{"Observation"}, fhir.CategoryClinical},
	{"problems", []string{"Condition"}, fhir.CategoryClinical},
	{"allergies", []string{"AllergyIntolerance"}, fhir.CategoryClinical},
	{"medication", []string{"MedicationStatement", "MedicationRequest", "MedicationDispense"}, fhir.CategoryMedication},
	{"immunisation", []string{"Immunization"}, fhir.CategoryClinical},
	{"procedures", []string{"Procedure"}, fhir.CategoryClinical},
	{"encounters", []string{"Encounter"}, fhir.CategoryClinical},
}

func sectionByKey(k string) section {
	for _, s := range sections {
		if s.Key == k {
			return s
		}
	}
	return sections[0]
}

// recordView is one section of one patient's record, as decided and logged.
type recordView struct {
	PatientID string
	Sections  []string
	Current   string
	Personal  *personal
	Rows      []row
	Basis     string
	Emergency bool
	BaseURL   string // "/me/record" or "/patients/{id}"
	Banner    *banner
}

// banner is the patient banner on every page that shows one patient's data,
// so that two records open in two tabs cannot be taken for each other. It is
// read under its own decision (demographics) and logged like any read.
type banner struct {
	Hidden    bool // the role may not see demographics: no name to show
	Name      string
	Initials  string
	BirthDate string // dd-mm-jjjj
	HasAge    bool   // the birth date is a whole date
	Years     int    // age; Months instead under two years
	Months    int
	Infant    bool
	Gender    string // FHIR code, translated by the template
	BSNTail   string // the last 3 digits
	BSN       string // in full only when asked for ("toon BSN")
	Basis     string
	// EmergencyLeft is the time left of emergency access; zero when the
	// end is not known to this browser (see emergencyEnd).
	EmergencyLeft time.Duration
	EmergencyMax  time.Duration // the longest emergency access
	// Representation is the kind of representation when a person acts
	// for someone else (AZ-4).
	Representation string
	RevealURL      string // where "toon BSN" posts
	Section        string
}

// newBanner builds the banner from the patient resource as read.
func newBanner(p personal, now time.Time, reveal bool) *banner {
	b := &banner{Name: p.Name, Initials: initials(p.Name), BirthDate: displayDate(p.BirthDate), Gender: p.Gender}
	if p.Gender == "" {
		b.Gender = "unknown"
	}
	if birth, err := time.ParseInLocation(time.DateOnly, p.BirthDate, clock.Amsterdam()); err == nil {
		months := monthsBetween(birth, now.In(clock.Amsterdam()))
		b.HasAge, b.Years, b.Months, b.Infant = true, months/12, months, months < 24
	}
	if n := len(p.BSN); n > 3 {
		b.BSNTail = p.BSN[n-3:]
		if reveal {
			b.BSN = p.BSN
		}
	}
	return b
}

// monthsBetween counts the whole months from birth to now.
func monthsBetween(birth, now time.Time) int {
	m := (now.Year()-birth.Year())*12 + int(now.Month()) - int(birth.Month())
	if now.Day() < birth.Day() {
		m--
	}
	return max(m, 0)
}

// initials are what the page title may carry of a patient: the first
// letter of each part of the name ("Sanne de Vries" is "S.d.V."), never
// the whole name and never the BSN.
func initials(name string) string {
	var b strings.Builder
	for _, part := range strings.Fields(name) {
		r, _ := utf8.DecodeRuneInString(part)
		if unicode.IsLetter(r) {
			b.WriteRune(r)
			b.WriteByte('.')
		}
	}
	return b.String()
}

type personal struct {
	Name, BirthDate, Gender, BSN string
}

type row struct {
	Date, What, Value, Status, Type string
	// Verification is a condition's or allergy's verification status,
	// a code like Status; both are translated by the template.
	Verification string
	// Number and Unit are a quantity's value as recorded ("68.4", shown
	// with the page's decimal mark) and its unit as people write it.
	Number, Unit string
	sortKey      string // the FHIR date as recorded, which sorts in time order
}

// displayDate shows a FHIR date or dateTime the Dutch way: a moment in
// Amsterdam time, a date (or year-month, year) as recorded.
func displayDate(d string) string {
	if t, err := time.Parse(time.RFC3339, d); err == nil {
		return t.In(clock.Amsterdam()).Format(layoutDay + " " + layoutTime)
	}
	if t, err := time.Parse(time.DateOnly, d); err == nil {
		return t.Format(layoutDay)
	}
	if t, err := time.Parse("2006-01", d); err == nil {
		return t.Format("01-2006")
	}
	return d
}

// readOptions say what a record page shows besides the section.
type readOptions struct {
	banner    bool // the patient banner
	revealBSN bool // the banner's BSN in full ("toon BSN")
}

// readSection decides on the section for the subject and reads it through
// record, which logs every read durably before returning data. A denial is
// returned as is (access.IsDenied). With opt.banner the patient banner is
// read too, under a demographics decision of its own taken after the
// section's, so that a subject without any basis is refused once.
func (s *server) readSection(ctx context.Context, subj access.Subject, patientID string, sec section, purpose string, opt readOptions) (recordView, error) {
	v := recordView{PatientID: patientID, Current: sec.Key}
	for _, x := range sections {
		v.Sections = append(v.Sections, x.Key)
	}
	if sec.Key == "personal" {
		g, err := s.d.Access.Decide(ctx, subj, access.Request{PatientID: patientID, Action: access.Read, Categories: []string{sec.Category}, Purpose: purpose})
		if err != nil {
			return v, err
		}
		v.Basis, v.Emergency = string(g.Basis()), g.Emergency()
		res, err := s.d.Records.Read(ctx, g, "Patient", patientID)
		if err != nil {
			return v, fmt.Errorf("read patient: %w", err)
		}
		p := parsePatient(res.Body)
		v.Personal = &p
		if opt.banner {
			v.Banner = newBanner(p, s.d.Clock.Now(), opt.revealBSN)
			v.Banner.Basis = v.Basis
		}
		return v, nil
	}
	g, err := s.d.Access.Decide(ctx, subj, access.Request{PatientID: patientID, Action: access.Search, Categories: []string{sec.Category}, Purpose: purpose})
	if err != nil {
		return v, err
	}
	v.Basis, v.Emergency = string(g.Basis()), g.Emergency()
	if opt.banner {
		if v.Banner, err = s.readBanner(ctx, subj, patientID, purpose, opt.revealBSN); err != nil {
			return v, err
		}
		v.Banner.Basis = v.Basis
	}
	for _, typ := range sec.Types {
		if !fhir.Supported(typ) {
			continue
		}
		page, err := s.d.Records.Search(ctx, g, record.SearchParams{Type: typ, Count: 500, Query: "section=" + sec.Key})
		if err != nil {
			return v, fmt.Errorf("search %s: %w", typ, err)
		}
		for _, r := range page.Resources {
			v.Rows = append(v.Rows, summarise(r))
		}
	}
	sort.SliceStable(v.Rows, func(i, j int) bool { return v.Rows[i].sortKey > v.Rows[j].sortKey })
	return v, nil
}

// readBanner reads the patient resource for the banner. A role that may
// not see demographics gets a banner that says so instead of a refusal:
// the section it may see is still shown.
func (s *server) readBanner(ctx context.Context, subj access.Subject, patientID, purpose string, reveal bool) (*banner, error) {
	g, err := s.d.Access.Decide(ctx, subj, access.Request{PatientID: patientID, Action: access.Read, Categories: []string{fhir.CategoryDemographics}, Purpose: purpose})
	if access.IsDenied(err) {
		return &banner{Hidden: true}, nil
	}
	if err != nil {
		return nil, err
	}
	res, err := s.d.Records.Read(ctx, g, "Patient", patientID)
	if err != nil {
		return nil, fmt.Errorf("read patient: %w", err)
	}
	return newBanner(parsePatient(res.Body), s.d.Clock.Now(), reveal), nil
}

// patientName reads only the name of a patient, under its own decision and
// log line, for lists.
func (s *server) patientName(ctx context.Context, subj access.Subject, patientID, purpose string) (string, error) {
	g, err := s.d.Access.Decide(ctx, subj, access.Request{PatientID: patientID, Action: access.Read, Categories: []string{fhir.CategoryDemographics}, Purpose: purpose})
	if err != nil {
		return "", err
	}
	res, err := s.d.Records.Read(ctx, g, "Patient", patientID)
	if err != nil {
		return "", err
	}
	p := parsePatient(res.Body)
	return p.Name + " (" + displayDate(p.BirthDate) + ")", nil
}

type jsonObj = map[string]any

func parsePatient(body []byte) personal {
	var m jsonObj
	_ = json.Unmarshal(body, &m)
	p := personal{BirthDate: str(m["birthDate"]), Gender: str(m["gender"])}
	if names, ok := m["name"].([]any); ok && len(names) > 0 {
		n, _ := names[0].(jsonObj)
		if t := str(n["text"]); t != "" {
			p.Name = t
		} else {
			var parts []string
			if gv, ok := n["given"].([]any); ok {
				for _, x := range gv {
					parts = append(parts, str(x))
				}
			}
			parts = append(parts, str(n["family"]))
			p.Name = strings.TrimSpace(strings.Join(parts, " "))
		}
	}
	if ids, ok := m["identifier"].([]any); ok {
		for _, x := range ids {
			id, _ := x.(jsonObj)
			if str(id["system"]) == nlid.SystemBSN {
				p.BSN = str(id["value"])
			}
		}
	}
	return p
}

// summarise turns a FHIR resource into one table row: what, when, value and
// status, whatever the type.
func summarise(r record.Resource) row {
	var m jsonObj
	_ = json.Unmarshal(r.Body, &m)
	out := row{Type: r.Type}
	for _, k := range []string{"code", "vaccineCode", "medicationCodeableConcept", "type", "class"} {
		if t := concept(m[k]); t != "" {
			out.What = t
			break
		}
	}
	for _, k := range []string{"effectiveDateTime", "onsetDateTime", "occurrenceDateTime", "performedDateTime", "authoredOn", "recordedDate", "dateAsserted", "date"} {
		if d := str(m[k]); d != "" {
			out.Date = d
			break
		}
	}
	if out.Date == "" {
		for _, k := range []string{"effectivePeriod", "performedPeriod", "period"} {
			if p, ok := m[k].(jsonObj); ok {
				out.Date = str(p["start"])
				break
			}
		}
	}
	out.sortKey, out.Date = out.Date, displayDate(out.Date)
	switch {
	case m["valueQuantity"] != nil:
		q, _ := m["valueQuantity"].(jsonObj)
		unit := str(q["unit"])
		if unit == "" {
			unit = str(q["code"])
		}
		out.Number, out.Unit = num(q["value"]), unitDisplay(unit)
	case m["valueString"] != nil:
		out.Value = str(m["valueString"])
	case m["valueCodeableConcept"] != nil:
		out.Value = concept(m["valueCodeableConcept"])
	case m["dosage"] != nil:
		if ds, ok := m["dosage"].([]any); ok && len(ds) > 0 {
			d, _ := ds[0].(jsonObj)
			out.Value = str(d["text"])
		}
	case m["reaction"] != nil:
		if rs, ok := m["reaction"].([]any); ok && len(rs) > 0 {
			rr, _ := rs[0].(jsonObj)
			if ms, ok := rr["manifestation"].([]any); ok && len(ms) > 0 {
				out.Value = concept(ms[0])
			}
		}
	}
	out.Status = str(m["status"])
	if out.Status == "" {
		out.Status = code(m["clinicalStatus"])
	}
	out.Verification = code(m["verificationStatus"])
	return out
}

func concept(v any) string {
	switch c := v.(type) {
	case jsonObj:
		if t := str(c["text"]); t != "" {
			return t
		}
		if cs, ok := c["coding"].([]any); ok {
			for _, x := range cs {
				cd, _ := x.(jsonObj)
				if d := str(cd["display"]); d != "" {
					return d
				}
				if d := str(cd["code"]); d != "" {
					return d
				}
			}
		}
	case []any:
		if len(c) > 0 {
			return concept(c[0])
		}
	}
	return ""
}

// code is the first code of a CodeableConcept: a status the page
// translates, not a display text in whichever language the sender used.
func code(v any) string {
	c, _ := v.(jsonObj)
	cs, _ := c["coding"].([]any)
	for _, x := range cs {
		cd, _ := x.(jsonObj)
		if s := str(cd["code"]); s != "" {
			return s
		}
	}
	return ""
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any) string {
	switch n := v.(type) {
	case float64:
		return strconv.FormatFloat(n, 'f', -1, 64)
	case string:
		return n
	}
	return ""
}
