package audit

import (
	"strconv"
	"strings"
	"time"
)

// PatientLine is one line of a person's view of the access log of their
// record (LOG-4, NEN 7513 ch. 9): when, which organisation, in which role,
// which action on which data, on which basis, and whether emergency access
// was used. Similar events of one day are merged into one line; the
// employee's own name is there only when the person asked for names.
type PatientLine struct {
	ID              string    // id of the newest event of the line
	First, Last     time.Time // oldest and newest event of the line
	Day             string    // the local day, YYYY-MM-DD
	Organisation    string
	Role            string
	UserName        string // empty unless names are shown
	Action          Action
	Basis           string // the rule, without its internal id
	Emergency       bool
	EmergencyReason string
	Outcome         Outcome
	Represented     bool     // a representative acted on the patient's behalf
	App             string   // the app (OAuth client id) that acted for the person; empty otherwise
	Resources       []string // distinct data touched, in order of first access
	Count           int      // events merged into this line
}

// DataCount is a kind of data a line touched and how many distinct items.
type DataCount struct {
	Type string
	N    int
}

// Data counts the distinct items per resource type, in order of first
// appearance.
func (l PatientLine) Data() []DataCount {
	var out []DataCount
	idx := map[string]int{}
	for _, ref := range l.Resources {
		typ, _, _ := strings.Cut(ref, "/")
		i, ok := idx[typ]
		if !ok {
			i = len(out)
			idx[typ] = i
			out = append(out, DataCount{Type: typ})
		}
		out[i].N++
	}
	return out
}

// DataSummary names the kinds of data, not their ids: "Observation ×3,
// Patient".
func (l PatientLine) DataSummary() string {
	var b strings.Builder
	for i, d := range l.Data() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(d.Type)
		if d.N > 1 {
			b.WriteString(" ×" + strconv.Itoa(d.N))
		}
	}
	return b.String()
}

// ViewOptions control PatientView.
type ViewOptions struct {
	// ShowNames shows the employees' names; NEN 7513 ch. 9 hides them
	// unless there is a reason, so the default is hidden.
	ShowNames bool
	// Location sets the day boundaries for merging; nil is UTC.
	Location *time.Location
}

// lineKey is what makes two events of one day "similar": the same person in
// the same role of the same organisation doing the same action on the same
// basis with the same outcome and emergency status. The user id is part of
// the key even when names are hidden, so a merged line never stands for
// two employees.
type lineKey struct {
	day, tenant, org, user, role, basis, reason, onBehalfOf, app string
	action                                                       Action
	outcome                                                      Outcome
	emergency                                                    bool
}

// PatientView turns events of one patient, newest first (as Search returns
// them), into the lines a person sees: only access-log events, similar
// events of one local day merged, names hidden unless o.ShowNames. Lines
// come newest first. Internal details (addresses, sessions, queries, the
// ids of rules and employees) are left out.
func PatientView(events []Event, o ViewOptions) []PatientLine {
	loc := o.Location
	if loc == nil {
		loc = time.UTC
	}
	var lines []PatientLine
	index := map[lineKey]int{}
	seen := map[int]map[string]bool{}
	for _, e := range events {
		if KindOf(e.Action) != KindAccess {
			continue
		}
		t := e.Time.In(loc)
		app := ""
		if e.PrincipalKind == "app" {
			app = e.SourceApp
		}
		k := lineKey{app: app, day: t.Format("2006-01-02"), tenant: e.TenantID, org: e.Organisation, user: e.UserID, role: e.Role,
			basis: BasisKind(e.Basis), reason: e.EmergencyReason, onBehalfOf: e.OnBehalfOf,
			action: e.Action, outcome: e.Outcome, emergency: e.Emergency}
		i, ok := index[k]
		if !ok {
			i = len(lines)
			index[k] = i
			seen[i] = map[string]bool{}
			l := PatientLine{ID: e.ID, First: e.Time, Last: e.Time, Day: k.day, Organisation: e.Organisation, Role: e.Role,
				Action: e.Action, Basis: k.basis, Emergency: e.Emergency, EmergencyReason: e.EmergencyReason,
				Outcome: e.Outcome, Represented: e.OnBehalfOf != "", App: app}
			if o.ShowNames {
				l.UserName = e.UserName
			}
			lines = append(lines, l)
		}
		l := &lines[i]
		l.Count++
		if e.Time.Before(l.First) {
			l.First = e.Time
		}
		if e.Time.After(l.Last) {
			l.Last, l.ID = e.Time, e.ID
		}
		for _, ref := range e.Resources {
			if !seen[i][ref] {
				seen[i][ref] = true
				l.Resources = append(l.Resources, ref)
			}
		}
	}
	return lines
}

// AuditEvent is the line as a FHIR AuditEvent for the person's API
// (GET /fhir/AuditEvent?patient=...): the BALP mapping of the line's
// newest event, stripped of what the view hides, with the period the line
// covers and the number of merged events (extension ExtMerged).
func (l PatientLine) AuditEvent(patientID, server string) AuditEvent {
	e := Event{ID: l.ID, Time: l.Last, Action: l.Action, Outcome: l.Outcome, Organisation: l.Organisation,
		UserName: l.UserName, Role: l.Role, Basis: l.Basis, Emergency: l.Emergency, EmergencyReason: l.EmergencyReason,
		PatientID: patientID, Resources: l.Resources}
	if l.Represented {
		e.OnBehalfOf = patientID
	}
	if l.Emergency {
		e.Purpose = "ETREAT"
	}
	ae := ToAuditEvent(e, server)
	ae.Period = &Period{Start: l.First.UTC().Format(time.RFC3339Nano), End: l.Last.UTC().Format(time.RFC3339Nano)}
	n := l.Count
	ae.Extension = append(ae.Extension, Extension{URL: ExtMerged, ValueInteger: &n})
	// A merged line is not one BALP event; claim no profile.
	ae.Meta = nil
	return ae
}
