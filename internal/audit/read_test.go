package audit

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// REQ: LOG-3, LOG-4, LOG-1 — Read appends the log-read event of its permit
// durably before it releases the first event; when that append fails it
// returns the error and no events; a query outside the permit (another
// tenant, another patient, other than access events for a patient) is
// refused before anything is logged or read; parts of at most Limit events
// continue after Next without losing or repeating one.
func TestRead(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := newTestLog(t, db)
		start := l.clock.Now()
		for i := range 25 {
			e := event("t-1", fmt.Sprintf("p-%d", i%3), "u-1")
			e.Time = start.Add(time.Duration(i) * time.Minute)
			mustAppend(t, l, e)
		}
		mustAppend(t, l, event("t-2", "p-0", "u-2"))
		l.clock.Advance(time.Hour)
		reader := Event{UserID: "officer", Role: "security-officer"}
		tenant := NewPermit(reader, "t-1", "")

		// The reading is in the log before the first event reaches fn.
		rd, err := l.Read(ctx, tenant, Search{Limit: 10, Oldest: true}, "/audit?limit=10")
		if err != nil {
			t.Fatal(err)
		}
		checked := false
		n, err := rd.Each(ctx, func(Event) error {
			if !checked {
				reads, err := l.Query(ctx, Filter{TenantID: "t-1", UserID: "officer", Action: ActionLogRead})
				if err != nil || len(reads) != 1 || reads[0].Query != "/audit?limit=10" || reads[0].Outcome != OutcomeSuccess {
					t.Fatalf("log-read event before the first row: %+v %v", reads, err)
				}
				checked = true
			}
			return nil
		})
		if err != nil || n != 10 || !checked || rd.Next().IsZero() {
			t.Fatalf("first part: %d events, next %v, %v", n, rd.Next(), err)
		}
		if _, err := rd.Each(ctx, func(Event) error { return nil }); err == nil {
			t.Fatal("a reading released twice")
		}
		// The next parts continue where the first ended (the readings
		// themselves come after the 25 events, oldest first).
		seen := 10
		for next := rd.Next(); !next.IsZero(); {
			rd, err := l.Read(ctx, tenant, Search{Limit: 10, Oldest: true, After: next, UserID: "u-1"}, "next")
			if err != nil {
				t.Fatal(err)
			}
			n, err := rd.Each(ctx, func(e Event) error {
				if e.TenantID != "t-1" {
					t.Fatalf("event of another tenant: %+v", e)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			seen, next = seen+n, rd.Next()
		}
		if seen != 25 {
			t.Fatalf("parts hold %d of 25 events", seen)
		}

		// Outside the permit: refused, nothing logged.
		patient := NewPermit(Event{UserID: "person"}, "t-1", "p-1")
		for name, c := range map[string]struct {
			p Permit
			q Search
		}{
			"another tenant":     {tenant, Search{TenantID: "t-2"}},
			"another patient":    {patient, Search{PatientID: "p-2"}},
			"patient, technical": {patient, Search{Kind: KindTechnical}},
			"patient's tenant":   {patient, Search{TenantID: "t-2", PatientID: "p-1"}},
			"no permit":          {Permit{}, Search{TenantID: "t-1"}},
		} {
			if _, err := l.Read(ctx, c.p, c.q, name); !errors.Is(err, ErrScope) {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if reads, err := l.Query(ctx, Filter{TenantID: "t-1", UserID: "person"}); err != nil || len(reads) != 0 {
			t.Fatalf("refused readings logged or read: %+v %v", reads, err)
		}
		// A patient's permit reads that patient's access events only.
		rd, err = l.Read(ctx, patient, Search{}, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rd.Each(ctx, func(e Event) error {
			if e.PatientID != "p-1" || e.TenantID != "t-1" || e.Kind != KindAccess {
				t.Fatalf("patient's permit released %+v", e)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}

		// When the log cannot record the reading, nothing is released.
		l.Close()
		rd, err = l.Read(ctx, tenant, Search{}, "after close")
		if !errors.Is(err, ErrUnavailable) || rd != nil {
			t.Fatalf("read without a durable log-read event: %v %v", rd, err)
		}
	})
}

// REQ: LOG-4
// The person's view reads through a permit, logs the reading first, keeps
// to the permit's patient and merges that patient's access events.
func TestReadPatientView(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := newTestLog(t, db)
		start := l.clock.Now()
		for i := range 6 {
			e := event("t-1", fmt.Sprintf("p-%d", i%2), "u-1")
			e.Time = start.Add(time.Duration(i) * time.Minute)
			mustAppend(t, l, e)
		}
		l.clock.Advance(time.Hour)
		person := Event{UserID: "person", Role: "person", PatientID: "p-0"}
		lines, truncated, err := l.ReadPatientView(ctx, NewPermit(person, "t-1", "p-0"), Search{PatientID: "p-0"}, "me/log", ViewOptions{})
		if err != nil || truncated {
			t.Fatalf("view: %v, truncated %v", err, truncated)
		}
		// The three reads of p-0 merge into one line; the person's own
		// reading, logged first, is the newest line of their view.
		if len(lines) != 2 || lines[0].Action != ActionLogRead || lines[1].Action != ActionRead || lines[1].Count != 3 {
			t.Fatalf("view of p-0: %+v", lines)
		}
		reads, err := l.Query(ctx, Filter{TenantID: "t-1", UserID: "person", Action: ActionLogRead})
		if err != nil || len(reads) != 1 || reads[0].Query != "me/log" {
			t.Fatalf("the reading is logged once: %+v %v", reads, err)
		}
		if _, _, err := l.ReadPatientView(ctx, NewPermit(person, "t-1", "p-0"), Search{PatientID: "p-1"}, "", ViewOptions{}); err == nil {
			t.Fatal("a permit for p-0 read the view of p-1")
		}

		// More events than one view merges: the newest MaxViewEvents, and
		// truncated says that there are more.
		fillPatient(t, l, db, "p-0", MaxViewEvents+5, start)
		lines, truncated, err = l.ReadPatientView(ctx, NewPermit(person, "t-1", "p-0"), Search{PatientID: "p-0"}, "", ViewOptions{})
		n := 0
		for _, ln := range lines {
			n += ln.Count
		}
		if err != nil || !truncated || n != MaxViewEvents {
			t.Fatalf("view of %d events: %d merged, truncated %v, %v; want %d and truncated", MaxViewEvents+9, n, truncated, err, MaxViewEvents)
		}

		// REQ: LOG-3
		// When the log cannot record the reading, no line is released.
		l.Close()
		lines, _, err = l.ReadPatientView(ctx, NewPermit(person, "t-1", "p-0"), Search{PatientID: "p-0"}, "", ViewOptions{})
		if !errors.Is(err, ErrUnavailable) || lines != nil {
			t.Fatalf("view without a durable log-read event: %d lines, %v", len(lines), err)
		}
	})
}
