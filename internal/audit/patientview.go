package audit

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
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

// PatientView turns events of one patient into the lines a person sees:
// only access-log events, similar events of one local day merged, names
// hidden unless o.ShowNames. Lines come newest first. Internal details
// (addresses, sessions, queries, the ids of rules and employees) are left
// out.
func PatientView(events []Event, o ViewOptions) []PatientLine {
	m := newViewMerger(o)
	for _, e := range events {
		body, err := e.Canonical()
		if err == nil {
			err = m.add(body)
		}
		if err != nil {
			continue // an event that cannot be encoded has no line (Append refuses it)
		}
	}
	return m.result()
}

// viewMerger merges event bodies into the person's lines. It reads only
// the members the view shows, straight from the stored JSON, and builds
// strings only for a new line: decoding each whole event was most of the
// person's page's cost.
//
// The events may come in any order (a cached view takes the newer ones
// after the older): a line keeps its newest event by (time, id), the order
// the log is read in, and result sorts the lines and their data by it, so
// the outcome is the same however the events arrived.
//
// Two events of one day are "similar" when they have the same person in
// the same role of the same organisation doing the same action on the same
// basis with the same outcome, emergency status, representation and app.
// The user id is part of that even when names are hidden, so a merged line
// never stands for two employees.
type viewMerger struct {
	o     ViewOptions
	loc   *time.Location
	lines []PatientLine       // Resources are filled in by result
	index map[string]int      // line key -> line
	res   []map[string]viewAt // per line, the resources it lists and their newest access
	n     int                 // events merged
	key   []byte              // scratch for the line key
	f     viewFields
	day   struct { // the last local day computed, for the next event of it
		start, end time.Time
		name       string
	}
}

// viewAt places a resource's newest access: the event's time and id, and
// the resource's position in that event's list.
type viewAt struct {
	t   time.Time
	id  string
	pos int
}

// newer reports whether the event (t, id) comes after (u, uid) in the
// log's order.
func newer(t time.Time, id string, u time.Time, uid string) bool {
	return t.After(u) || (t.Equal(u) && id > uid)
}

func newViewMerger(o ViewOptions) *viewMerger {
	loc := o.Location
	if loc == nil {
		loc = time.UTC
	}
	return &viewMerger{o: o, loc: loc, index: map[string]int{}}
}

// clone returns a copy that can take more events without changing m.
func (m *viewMerger) clone() *viewMerger {
	c := &viewMerger{o: m.o, loc: m.loc, n: m.n, day: m.day}
	c.lines = slices.Clone(m.lines)
	c.index = maps.Clone(m.index)
	c.res = make([]map[string]viewAt, len(m.res))
	for i, r := range m.res {
		c.res[i] = maps.Clone(r)
	}
	return c
}

// result returns the lines, newest first, each with its data in the order
// of their newest access.
func (m *viewMerger) result() []PatientLine {
	out := slices.Clone(m.lines)
	for i := range out {
		refs := make([]string, 0, len(m.res[i]))
		for r := range m.res[i] {
			refs = append(refs, r)
		}
		at := m.res[i]
		slices.SortFunc(refs, func(a, b string) int {
			x, y := at[a], at[b]
			switch {
			case newer(x.t, x.id, y.t, y.id):
				return -1
			case newer(y.t, y.id, x.t, x.id):
				return 1
			}
			return cmp.Compare(x.pos, y.pos)
		})
		out[i].Resources = refs
		if len(refs) == 0 {
			out[i].Resources = nil
		}
	}
	slices.SortStableFunc(out, func(a, b PatientLine) int {
		switch {
		case newer(a.Last, a.ID, b.Last, b.ID):
			return -1
		case newer(b.Last, b.ID, a.Last, a.ID):
			return 1
		}
		return 0
	})
	return out
}

// viewFields are the raw JSON values of the members the view reads.
type viewFields struct {
	id, time, action, outcome, tenant, org, user, userName, role, basis, emergency, reason, onBehalfOf, principalKind, sourceApp, resources []byte
}

func (f *viewFields) slot(key []byte) *[]byte {
	switch string(key) {
	case "id":
		return &f.id
	case "time":
		return &f.time
	case "action":
		return &f.action
	case "outcome":
		return &f.outcome
	case "tenantId":
		return &f.tenant
	case "organisation":
		return &f.org
	case "userId":
		return &f.user
	case "userName":
		return &f.userName
	case "role":
		return &f.role
	case "basis":
		return &f.basis
	case "emergency":
		return &f.emergency
	case "emergencyReason":
		return &f.reason
	case "onBehalfOf":
		return &f.onBehalfOf
	case "principalKind":
		return &f.principalKind
	case "sourceApp":
		return &f.sourceApp
	case "resources":
		return &f.resources
	}
	return nil
}

// add merges one stored event body.
func (m *viewMerger) add(body []byte) error {
	f := &m.f
	*f = viewFields{}
	if err := scanMembers(body, func(k []byte) *[]byte { return f.slot(k) }); err != nil {
		return err
	}
	action, ok := jsonString(f.action)
	if !ok {
		return errBadJSON
	}
	switch KindOf(Action(action)) {
	case KindAccess:
	default:
		return nil
	}
	ts, ok := jsonString(f.time)
	if !ok {
		return errBadJSON
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return fmt.Errorf("event time: %w", err)
	}
	rawID, ok := jsonString(f.id)
	if !ok {
		return errBadJSON
	}
	if t.Before(m.day.start) || !t.Before(m.day.end) {
		lt := t.In(m.loc)
		y, mo, d := lt.Date()
		m.day.start = time.Date(y, mo, d, 0, 0, 0, 0, m.loc)
		m.day.end = m.day.start.AddDate(0, 0, 1)
		m.day.name = lt.Format("2006-01-02")
	}
	app := []byte(nil)
	if pk, _ := jsonString(f.principalKind); string(pk) == "app" {
		app = f.sourceApp
	}
	basis, ok := jsonString(f.basis)
	if !ok {
		return errBadJSON
	}
	basisKind, _, _ := bytes.Cut(basis, []byte(":"))
	emergency := string(f.emergency) == "true"
	// The key joins raw JSON values, which hold no NUL byte.
	k := append(m.key[:0], m.day.name...)
	for _, v := range [][]byte{f.tenant, f.org, f.user, f.role, basisKind, f.reason, f.onBehalfOf, app, f.action, f.outcome, f.emergency} {
		k = append(k, 0)
		k = append(k, v...)
	}
	m.key = k
	id := string(rawID)
	i, ok := m.index[string(k)]
	if !ok {
		l, err := m.newLine(f, t, id, string(basisKind), emergency, app != nil)
		if err != nil {
			return err
		}
		i = len(m.lines)
		m.index[string(k)] = i
		m.lines = append(m.lines, l)
		m.res = append(m.res, map[string]viewAt{})
	}
	m.n++
	l := &m.lines[i]
	l.Count++
	if t.Before(l.First) {
		l.First = t
	}
	if newer(t, id, l.Last, l.ID) {
		l.Last, l.ID = t, id
		if m.o.ShowNames {
			s, _ := jsonString(f.userName)
			l.UserName = string(s)
		}
	}
	if f.resources == nil || string(f.resources) == "null" {
		return nil
	}
	pos := 0
	return eachString(f.resources, func(ref []byte) {
		at, seen := m.res[i][string(ref)]
		if !seen || newer(t, id, at.t, at.id) {
			m.res[i][string(ref)] = viewAt{t: t, id: id, pos: pos}
		}
		pos++
	})
}

// newLine starts a line with the event in f, its first.
func (m *viewMerger) newLine(f *viewFields, t time.Time, id, basisKind string, emergency, isApp bool) (PatientLine, error) {
	str := func(raw []byte) string {
		s, ok := jsonString(raw)
		if !ok {
			return ""
		}
		return string(s)
	}
	l := PatientLine{ID: id, First: t, Last: t, Day: m.day.name, Organisation: str(f.org), Role: str(f.role),
		Action: Action(str(f.action)), Basis: basisKind, Emergency: emergency, EmergencyReason: str(f.reason),
		Outcome: Outcome(str(f.outcome)), Represented: str(f.onBehalfOf) != ""}
	if isApp {
		l.App = str(f.sourceApp)
	}
	if m.o.ShowNames {
		l.UserName = str(f.userName)
	}
	return l, nil
}

// eachString calls fn with the text of every string in a raw JSON array.
func eachString(raw []byte, fn func([]byte)) error {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		return errBadJSON
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == ']' {
		return nil
	}
	for {
		if i >= len(raw) || raw[i] != '"' {
			return errBadJSON
		}
		end, err := skipString(raw, i)
		if err != nil {
			return err
		}
		s, ok := jsonString(raw[i:end])
		if !ok {
			return errBadJSON
		}
		fn(s)
		i = skipSpace(raw, end)
		if i >= len(raw) {
			return errBadJSON
		}
		switch raw[i] {
		case ',':
			i = skipSpace(raw, i+1)
		case ']':
			return nil
		default:
			return errBadJSON
		}
	}
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
