package fhirapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
)

// fhirAuditEvents is GET /fhir/AuditEvent?patient=...: the person's view of
// the access log of their own record, or of the record of the patient they
// represent in this session (LOG-4). It is the same view as the portal
// page (audit.PatientView, NEN 7513 ch. 9): employees' names hidden unless
// employee-names=true, similar lines of one day merged. Anyone else's
// record is refused like any other denied access, and the refusal is
// logged; reading the log is logged before any line is released.
func (s *Server) fhirAuditEvents(w http.ResponseWriter, r *http.Request, c caller) {
	if c.Subject.Role() != access.RolePerson {
		// Refused, and logged like any refused reading of a patient's log
		// (DecideLogRead denies every role but a person's and logs it). For
		// staff, reading a log is healthcare operations, not treatment.
		if pid := strings.TrimPrefix(r.URL.Query().Get("patient"), "Patient/"); pid != "" {
			if _, err := s.d.Access.DecideLogRead(r.Context(), c.Subject, access.LogScope{PatientID: pid, Purpose: "HOPERAT"}); !access.IsDenied(err) {
				if err == nil {
					err = errors.New("log read of a patient allowed for a role other than person")
				}
				s.failed(w, r, err)
				return
			}
		}
		outcome(w, r, http.StatusForbidden, fhir.CodeForbidden,
			"this is the person's view of their own log; log inspection is GET /api/v1/audit for the security officer")
		return
	}
	q := r.URL.Query()
	if !onlyParams(w, r, q, "patient", "date", "employee-names") {
		return
	}
	pid := strings.TrimPrefix(q.Get("patient"), "Patient/")
	if len(q["patient"]) != 1 || !fhir.ValidID(pid) {
		outcome(w, r, http.StatusBadRequest, fhir.CodeRequired, "patient is required, once: Patient/<id> or <id>", "patient")
		return
	}
	showNames := false
	switch q.Get("employee-names") {
	case "", "false":
	case "true":
		showNames = true
	default:
		outcome(w, r, http.StatusBadRequest, fhir.CodeValue, "employee-names must be true or false", "employee-names")
		return
	}
	from, to, ok := auditDateRange(q["date"])
	if !ok {
		outcome(w, r, http.StatusBadRequest, fhir.CodeValue, "date must be a FHIR date or dateTime with prefix ge, gt, le, lt or eq (or none)", "date")
		return
	}
	p, err := s.d.Access.DecideLogRead(r.Context(), c.Subject, access.LogScope{PatientID: pid, Purpose: purposeOf(c)})
	if access.IsDenied(err) {
		outcome(w, r, http.StatusForbidden, fhir.CodeForbidden, "access denied; the attempt has been logged")
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	lines, truncated, err := s.d.Audit.ReadPatientView(r.Context(), p, audit.Search{PatientID: pid, From: from, To: to}, r.URL.RawQuery,
		audit.ViewOptions{ShowNames: showNames, Location: clock.Amsterdam()})
	if err != nil {
		s.failed(w, r, err)
		return
	}
	self, _ := url.Parse(s.d.BaseURL + r.URL.RequestURI())
	b := fhir.NewSearchset(len(lines), fhir.Link{Relation: "self", URL: self.String()})
	b.Timestamp = s.d.Clock.Now().UTC().Format(time.RFC3339)
	for _, l := range lines {
		raw, err := json.Marshal(l.AuditEvent(pid, s.d.BaseURL))
		if err != nil {
			s.failed(w, r, err)
			return
		}
		b.AddMatch(audit.EventURN(l.ID), raw)
	}
	if truncated {
		// The oldest day shown may be shown in part: le, not lt, so that
		// the next request leaves nothing out.
		first := lines[0].First
		for _, l := range lines {
			if l.First.Before(first) {
				first = l.First
			}
		}
		oldest := first.In(clock.Amsterdam()).Format("2006-01-02")
		if err := b.AddOutcome(fhir.Outcome(fhir.SeverityWarning, fhir.CodeInformational,
			"only the newest events are shown (at least "+strconv.Itoa(audit.MaxViewEvents)+", and every one since the oldest shown); ask for older ones with date=le"+oldest)); err != nil {
			s.failed(w, r, err)
			return
		}
	}
	writeBundle(w, b)
}

// auditDateRange turns date parameters (each with an optional prefix ge,
// gt, le, lt or eq) into a time range; repeated parameters narrow it. A
// date is a day in Amsterdam, as the view shows its times.
func auditDateRange(vals []string) (from, to time.Time, ok bool) {
	for _, v := range vals {
		p := "eq"
		if len(v) > 2 && v[0] >= 'a' && v[0] <= 'z' {
			p, v = v[:2], v[2:]
		}
		dr, err := fhir.ParseDateTimeIn(v, clock.Amsterdam())
		if err != nil || dr.Start.IsZero() || dr.End.IsZero() {
			return time.Time{}, time.Time{}, false
		}
		lo, hi := time.Time{}, time.Time{}
		switch p {
		case "eq":
			lo, hi = dr.Start, dr.End
		case "ge":
			lo = dr.Start
		case "gt":
			lo = dr.End
		case "le":
			hi = dr.End
		case "lt":
			hi = dr.Start
		default:
			return time.Time{}, time.Time{}, false
		}
		if !lo.IsZero() && (from.IsZero() || lo.After(from)) {
			from = lo
		}
		if !hi.IsZero() && (to.IsZero() || hi.Before(to)) {
			to = hi
		}
	}
	return from, to, true
}

// auditEventCapability is the CapabilityStatement entry of the person's
// AuditEvent search.
func auditEventCapability() map[string]any {
	type param struct {
		Name          string `json:"name"`
		Type          string `json:"type"`
		Documentation string `json:"documentation,omitempty"`
	}
	return map[string]any{
		"type":        "AuditEvent",
		"profile":     "http://hl7.org/fhir/StructureDefinition/AuditEvent",
		"interaction": []map[string]string{{"code": "search-type"}},
		"documentation": "A person's view of the access log of their own record (or of the patient they represent in this session), " +
			"as NEN 7513 ch. 9 describes it: one AuditEvent per line, similar events of one day merged (period and the merged-event-count extension), " +
			"employees' names hidden unless employee-names=true. Other patients' logs are refused. Log inspection by the security officer is /api/v1/audit.",
		"searchParam": []param{
			{"patient", "reference", "required: the person's own patient id"},
			{"date", "date", "period of the events; prefixes ge, gt, le, lt, eq"},
			{"employee-names", "token", "true to show employees' names (default false)"},
		},
	}
}
