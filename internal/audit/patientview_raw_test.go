package audit

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// referenceView is the person's view computed from decoded events, the way
// it was before the view read the stored JSON directly: the oracle for it.
func referenceView(events []Event, o ViewOptions) []PatientLine {
	type lineKey struct {
		day, tenant, org, user, role, basis, reason, onBehalfOf, app string
		action                                                       Action
		outcome                                                      Outcome
		emergency                                                    bool
	}
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

// The view read from the stored JSON is line for line the view of the
// decoded events: over the DST change, with escaped and non-ASCII text,
// apps, representatives, emergencies, technical events and repeats.
// REQ: LOG-4
func TestPatientViewMatchesDecodedEvents(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(s ...string) string { return s[r.IntN(len(s))] }
	at := time.Date(2026, 3, 30, 12, 0, 0, 0, time.UTC) // after the change to summer time on 29 March
	var evs []Event
	for i := range 2000 {
		at = at.Add(-time.Duration(r.IntN(40)) * time.Minute) // newest first; equal times too
		e := Event{ID: fmt.Sprintf("%032x", 5000-i), Time: at.Add(time.Duration(r.IntN(1000)) * time.Microsecond),
			Action:   Action(pick(string(ActionRead), string(ActionRead), string(ActionSearch), string(ActionUpdate), string(ActionLogRead), string(ActionLogon))),
			Outcome:  Outcome(pick(string(OutcomeSuccess), string(OutcomeSuccess), "failure")),
			TenantID: pick("t-1", "t-2"), Organisation: pick("Praktijk \"De Linde\"", "Ziekenhuis Zuid-Oost", "Apotheek é\u2028"),
			UserID: pick("u1", "u2", "u3"), UserName: pick("Dr. Jansen", "M. \\ Bakker", "Zoë"), Role: pick("huisarts", "apotheker", ""),
			Basis: pick("care-relationship:r1", "care-relationship:r2", "consent:c1", "emergency:e1", ""), PatientID: "p-1"}
		e.Emergency = e.Basis == "emergency:e1"
		if e.Emergency {
			e.EmergencyReason = pick("bewusteloos", "")
		}
		if r.IntN(5) == 0 {
			e.OnBehalfOf = "p-1"
		}
		if r.IntN(4) == 0 {
			e.PrincipalKind, e.SourceApp = "app", pick("app-a", "app-b")
		} else {
			e.SourceApp = "zorgkluis"
		}
		for range r.IntN(4) {
			e.Resources = append(e.Resources, pick("Observation/o-1", "Observation/o-2", "Patient/p-1", "Condition/c-\"x\""))
		}
		evs = append(evs, e)
	}
	// In the log's order, newest first by (time, id), as the oracle needs.
	slices.SortFunc(evs, func(a, b Event) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	shuffled := slices.Clone(evs)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, o := range []ViewOptions{{Location: ams}, {Location: ams, ShowNames: true}, {}} {
		got, want := PatientView(evs, o), referenceView(evs, o)
		// The merger takes events in any order (a cached view adds the
		// newer after the older): the same lines.
		if any := PatientView(shuffled, o); !reflect.DeepEqual(any, got) {
			t.Fatalf("the view of the events in another order differs")
		}
		if len(got) != len(want) || len(got) < 50 {
			t.Fatalf("%d lines; want %d (and more than 50)", len(got), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("line %d:\n got %+v\nwant %+v", i, got[i], want[i])
			}
		}
	}
}
