package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
)

// Permit is the permission to read one part of the access log: one
// patient's access events (the person, or a representative, LOG-4) or all
// events of one tenant (its security officer, LOG-5). It carries the
// log-read event that Read appends before it releases anything. Its fields
// are unexported, so the only way to read events from outside this package
// is a Permit made by the access package's decision.
type Permit struct {
	event     Event  // the log-read event: who reads, on which basis
	tenantID  string // always set
	patientID string // set: only this patient's events; empty: the whole tenant
}

// NewPermit is for the access package only, which calls it after deciding
// that read may see the log of patientID in tenantID (patientID empty: the
// tenant's whole log). Nothing else may call it; an architecture test
// enforces that. read is the log-read event, with the reader filled in.
func NewPermit(read Event, tenantID, patientID string) Permit {
	read.Action, read.Outcome = ActionLogRead, OutcomeSuccess
	read.TenantID = tenantID
	if patientID != "" {
		read.PatientID = patientID
	}
	return Permit{event: read, tenantID: tenantID, patientID: patientID}
}

// Valid reports whether p was made by NewPermit (the zero Permit is not).
func (p Permit) Valid() bool { return p.tenantID != "" }

// TenantID is the tenant whose log p covers.
func (p Permit) TenantID() string { return p.tenantID }

// PatientID is the patient whose log p covers; empty for a tenant's log.
func (p Permit) PatientID() string { return p.patientID }

// ErrScope is returned by Read for a query outside its permit: another
// tenant, another patient, or (for a patient's permit) events other than
// accesses. Nothing is logged or released then.
var ErrScope = errors.New("audit read outside the permit")

// Reading is a selection of the log that Read has logged and bounded; Each
// releases its events. Like sql.Rows it is used once.
type Reading struct {
	log    *Log
	permit Permit
	q      Search
	max    int
	next   Cursor
	done   bool
	// released are the patients of the events Each passed on.
	released map[string]bool
}

// Read is the only way to read events from outside this package. It checks
// that q lies within p, appends p's log-read event durably (with what as the
// query it records) and only then returns the selection: nothing is released
// when the log cannot record its own reading (LOG-3). A query within a
// patient's permit is narrowed to that patient's access events; a tenant
// query to the permit's tenant.
//
// q.Limit is the most events the reading releases (0: MaxPage; more than
// MaxPage is read page by page). When more match, Next says where the next
// part starts; the part is fixed now, so events appended meanwhile fall into
// the next part.
func (l *Log) Read(ctx context.Context, p Permit, q Search, what string) (*Reading, error) {
	q, err := l.logReading(ctx, p, q, what)
	if err != nil {
		return nil, err
	}
	max := q.Limit
	if max <= 0 {
		max = MaxPage
	}
	r := &Reading{log: l, permit: p, q: q, max: max}
	until, more, err := l.boundary(ctx, q, max)
	if err != nil {
		return nil, err
	}
	if more {
		r.q.Until, r.next = until, until
	}
	return r, nil
}

// Next is the cursor where the part after this one starts (After = Next);
// zero when the reading holds every matching event.
func (r *Reading) Next() Cursor { return r.next }

// Each calls fn for every event of the reading, in the query's order, and
// returns how many it passed. It stops at the first error of fn. A second
// call is an error: one log-read event covers one release.
func (r *Reading) Each(ctx context.Context, fn func(Event) error) (int, error) {
	if r.done {
		return 0, errors.New("audit reading used twice")
	}
	r.done = true
	r.released = map[string]bool{}
	return r.log.each(ctx, r.q, r.max, func(e Event) error {
		if err := fn(e); err != nil {
			return err
		}
		if e.PatientID != "" {
			r.released[e.PatientID] = true
		}
		return nil
	})
}

// Released says which patients the lines of a tenant's reading (the
// security officer's, LOG-5) named, once Each has released them, and the
// one patient the search was for (whom its log-read event names, lines or
// not): the patients whose names those lines may be shown with
// (record.PatientNames), a showing the reading's own log-read event
// covers. ok is false before Each and for a patient's permit (a person's
// view of their own log), which names nobody else.
func (r *Reading) Released() (tenantID string, patients []string, ok bool) {
	if !r.done || !r.permit.Valid() || r.permit.patientID != "" {
		return "", nil, false
	}
	if r.q.PatientID != "" {
		r.released[r.q.PatientID] = true
	}
	for p := range r.released {
		patients = append(patients, p)
	}
	slices.Sort(patients)
	return r.permit.tenantID, patients, true
}

// MaxViewEvents bounds the events one request for the person's view merges.
const MaxViewEvents = 10000

// ReadPatientView reads the person's view of a patient's log under p (LOG-4):
// the access events q selects merged into lines by PatientView. When they
// leave older events out, truncated is true and the lines hold the newest
// n events for some n of at least MaxViewEvents. A view the cache followed
// while the log grew may hold up to twice MaxViewEvents whole, so two
// replicas may answer a long log with more or fewer of its older events
// (see cachedView).
// The reading is logged first, as Read does.
func (l *Log) ReadPatientView(ctx context.Context, p Permit, q Search, what string, o ViewOptions) (lines []PatientLine, truncated bool, err error) {
	q.Kind, q.Oldest, q.After, q.Until = KindAccess, false, Cursor{}, Cursor{}
	q, err = l.logReading(ctx, p, q, what)
	if err != nil {
		return nil, false, err
	}
	if q.cacheable() {
		lines, truncated, ok, err := l.cachedView(ctx, q, o)
		if err != nil || ok {
			return lines, truncated, err
		}
	}
	// One statement for the whole view: the newest MaxViewEvents events and
	// one more, which says that there are more.
	query, args := q.sql("body", MaxViewEvents+1, 0)
	rows, err := l.db.Stmt(query).QueryContext(ctx, args...)
	if err != nil {
		return nil, false, fmt.Errorf("read the patient's log: %w", err)
	}
	defer rows.Close()
	m := newViewMerger(o)
	n := 0
	var body sql.RawBytes
	for rows.Next() {
		if n == MaxViewEvents {
			truncated = true
			break
		}
		if err := rows.Scan(&body); err != nil {
			return nil, false, fmt.Errorf("read the patient's log: %w", err)
		}
		if err := m.add(body); err != nil {
			return nil, false, fmt.Errorf("read the patient's log: event %d: %w", n, err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("read the patient's log: %w", err)
	}
	return m.result(), truncated, nil
}

// logReading checks that q lies within p, narrows it to p and appends p's
// log-read event durably; only then may the caller release what q selects.
func (l *Log) logReading(ctx context.Context, p Permit, q Search, what string) (Search, error) {
	if !p.Valid() {
		return Search{}, fmt.Errorf("%w: no permit", ErrScope)
	}
	switch {
	case q.TenantID == "":
		q.TenantID = p.tenantID
	case q.TenantID != p.tenantID:
		return Search{}, fmt.Errorf("%w: another tenant", ErrScope)
	}
	if p.patientID != "" {
		switch {
		case q.PatientID == "":
			q.PatientID = p.patientID
		case q.PatientID != p.patientID:
			return Search{}, fmt.Errorf("%w: another patient", ErrScope)
		}
		switch q.Kind {
		case "":
			q.Kind = KindAccess
		case KindAccess:
		default:
			return Search{}, fmt.Errorf("%w: a patient's permit covers access events only", ErrScope)
		}
	}
	ev := p.event
	if ev.PatientID == "" {
		ev.PatientID = q.PatientID // an officer's search of one patient names them
	}
	ev.Query = what
	if _, err := l.Append(ctx, ev); err != nil {
		return Search{}, err
	}
	return q, nil
}
