package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	_ "time/tzdata" // the Dutch day boundaries on every host
)

func viewEvent(id string, at time.Time, user string, a Action, refs ...string) Event {
	return Event{ID: id, Time: at, Action: a, Outcome: OutcomeSuccess, TenantID: "t-1", Organisation: "Praktijk A",
		UserID: user, UserName: "Dr. " + user, Role: "professional", Basis: "care-relationship:rel-" + user, PatientID: "p-1", Resources: refs}
}

// The person's view merges similar events of one local day, keeps apart
// other days, other employees, other actions and emergency use, hides the
// employee's name and internal ids unless names are asked for, and leaves
// out technical events.
// REQ: LOG-4
func TestPatientView(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err) // time/tzdata is embedded in this test binary
	}
	day := time.Date(2026, 6, 10, 8, 0, 0, 0, time.UTC) // 10:00 in Amsterdam
	evs := []Event{                                     // newest first, as Search returns them
		viewEvent("e7", day.Add(23*time.Hour), "jansen", ActionRead, "Observation/o-3"), // 11 June 09:00 local: another day
		viewEvent("e6", day.Add(5*time.Hour), "jansen", ActionRead, "Observation/o-2", "Patient/p-1"),
		viewEvent("e5", day.Add(4*time.Hour), "jansen", ActionUpdate, "Observation/o-1"),
		viewEvent("e4", day.Add(3*time.Hour), "bakker", ActionRead, "Observation/o-1"),
		viewEvent("e3", day.Add(2*time.Hour), "jansen", ActionRead, "Observation/o-1"),
		viewEvent("e2", day.Add(time.Hour), "jansen", ActionRead, "Observation/o-1"),
		{ID: "e1", Time: day, Action: ActionLogon, Outcome: OutcomeSuccess, TenantID: "t-1", UserID: "jansen", PatientID: "p-1"},
		func() Event {
			e := viewEvent("e0", day.Add(-time.Minute), "jansen", ActionRead, "Observation/o-1")
			e.Emergency, e.EmergencyReason, e.Basis = true, "collapsed", "emergency:em-1"
			return e
		}(),
	}
	lines := PatientView(evs, ViewOptions{Location: ams})
	if len(lines) != 5 {
		t.Fatalf("want 5 lines (other day, merged reads, update, other employee, emergency), got %d: %+v", len(lines), lines)
	}
	merged := lines[1]
	if merged.Count != 3 || merged.ID != "e6" || !merged.First.Equal(day.Add(time.Hour)) || !merged.Last.Equal(day.Add(5*time.Hour)) ||
		merged.Day != "2026-06-10" || merged.Action != ActionRead {
		t.Fatalf("merged line: %+v", merged)
	}
	if got := merged.DataSummary(); got != "Observation ×2, Patient" {
		t.Fatalf("data: %q", got)
	}
	for _, l := range lines {
		if l.UserName != "" {
			t.Fatalf("name shown by default: %+v", l)
		}
		if l.Basis == "" || l.Basis != BasisKind(l.Basis) {
			t.Fatalf("basis must be the rule without its id: %q", l.Basis)
		}
		if l.Organisation != "Praktijk A" || l.Role != "professional" {
			t.Fatalf("organisation/role missing: %+v", l)
		}
	}
	if lines[0].Day != "2026-06-11" || lines[2].Action != ActionUpdate || lines[3].Count != 1 {
		t.Fatalf("separate lines: %+v", lines)
	}
	em := lines[4]
	if !em.Emergency || em.EmergencyReason != "collapsed" || em.Basis != "emergency" {
		t.Fatalf("emergency line: %+v", em)
	}
	named := PatientView(evs, ViewOptions{Location: ams, ShowNames: true})
	if named[3].UserName != "Dr. bakker" {
		t.Fatalf("names on request: %+v", named[3])
	}

	// The FHIR form of a line: the period, the count, no employee identity
	// unless shown, no profile claimed.
	b, err := json.Marshal(merged.AuditEvent("p-1", "https://zk.test"))
	if err != nil {
		t.Fatal(err)
	}
	var ae map[string]any
	if err := json.Unmarshal(b, &ae); err != nil {
		t.Fatal(err)
	}
	period, _ := ae["period"].(map[string]any)
	if period["start"] != "2026-06-10T09:00:00Z" || period["end"] != "2026-06-10T13:00:00Z" || ae["meta"] != nil {
		t.Fatalf("period/meta: %s", b)
	}
	count := -1
	for _, x := range ae["extension"].([]any) {
		if m := x.(map[string]any); m["url"] == ExtMerged {
			count = int(m["valueInteger"].(float64))
		}
	}
	if count != 3 {
		t.Fatalf("merged count: %s", b)
	}
	for _, secret := range []string{"jansen", "rel-"} {
		if strings.Contains(string(b), secret) {
			t.Fatalf("%q leaks into the patient's AuditEvent: %s", secret, b)
		}
	}
}
