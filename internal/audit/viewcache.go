package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math"
	"sync"
	"sync/atomic"

	"github.com/zorgkluis/zorgkluis/internal/store"
)

// The view cache keeps, per patient, the person's view merged up to a
// mark, and the next request for the same view merges only what came
// after it instead of the patient's whole log: the view costs what is new,
// not what is old. On SQLite the mark is the event table's largest rowid
// (one writer: later commits only add larger ones). On PostgreSQL, where
// transactions commit out of the order of their ids, it is the size of the
// tenant's tree, whose order is fixed, plus the events merged while they
// waited for the sequencer, remembered by id and skipped when they turn up
// among the new leaves.
//
// Events only ever go away through retention's purge (DELETE FROM
// audit_events), which a deletes-only store.Watch sees on every replica;
// a purge retires every cached view. As with every watch, a replica whose
// sync stalls, or a process that never syncs, caches nothing.

// maxCachedViews bounds the cache; a full cache starts again empty.
const maxCachedViews = 1000

// maxViewStep is the most new leaves of the tenant (SQLite: new events of
// the database) a cached view is brought up to date through; further
// behind, the view is merged anew.
const maxViewStep = 10000

// ViewSyncInterval is how often serve calls SyncViews.
const ViewSyncInterval = store.WatchSyncInterval

type viewKey struct {
	tenant, patient string
	names           bool
	loc             string
}

// viewEntry is a cached merge and the watch's generation when it began.
type viewEntry struct {
	gen uint64
	viewMerge
}

// viewMerge is a view merged up to a mark.
type viewMerge struct {
	upto int64           // SQLite: the largest rowid merged; PostgreSQL: the tree's size merged (leaves 0..upto-1)
	pend map[string]bool // PostgreSQL: and these events, merged while they awaited the sequencer
	m    *viewMerger     // not changed after it is cached; clone to add to it
	// A log longer than MaxViewEvents: the view holds the events from
	// floor on (the oldest merged) and says it is truncated.
	floor     viewFloor
	truncated bool
	horizon   int64 // PostgreSQL: the snapshot's Horizon when the merge began
}

// viewFloor is an event's place in the log's order, (time, id).
type viewFloor struct {
	micros int64
	id     string
}

// after reports whether the event (micros, id) comes before f: f is after it.
func (f viewFloor) after(micros int64, id string) bool {
	return micros < f.micros || (micros == f.micros && id < f.id)
}

// noFloor comes before every event.
var noFloor = viewFloor{micros: math.MinInt64}

type viewCache struct {
	w       *store.Watch
	mu      sync.Mutex
	entries map[viewKey]viewEntry
	steps   atomic.Int64 // views brought up to date from a cached one (tests, figures)
}

func newViewCache(db *store.DB) *viewCache {
	return &viewCache{w: db.WatchDeletes("audit-purges", "audit_events"), entries: map[viewKey]viewEntry{}}
}

// SyncViews reads the version of the purges; one on another replica
// retires this replica's cached views. serve runs it every
// ViewSyncInterval; without it the cache never answers.
func (l *Log) SyncViews(ctx context.Context) error {
	return l.views.w.Sync(ctx, l.clock.Now())
}

// cacheable reports whether q is the person's whole view (no narrowing
// filters), the one the cache holds.
func (q Search) cacheable() bool {
	return q.TenantID != "" && q.PatientID != "" && q.Kind == KindAccess && q.UserID == "" && q.Action == "" &&
		q.Outcome == "" && q.From.IsZero() && q.To.IsZero() && q.Emergency == nil && len(q.Roles) == 0
}

// cachedView returns the lines of q's view through the cache; ok is false
// when the cache cannot answer (not fresh). A log longer than
// MaxViewEvents is cached too, and answered truncated: at least its newest
// MaxViewEvents events and every event since the oldest of those (see
// viewStepRows).
func (l *Log) cachedView(ctx context.Context, q Search, o ViewOptions) (lines []PatientLine, truncated, ok bool, err error) {
	gen, fresh := l.views.w.Current(l.clock.Now())
	if !fresh {
		return nil, false, false, nil
	}
	key := viewKey{tenant: q.TenantID, patient: q.PatientID, names: o.ShowNames}
	if o.Location != nil {
		key.loc = o.Location.String()
	}
	snap, err := l.db.Snapshot(ctx)
	if err != nil {
		return nil, false, false, fmt.Errorf("read the patient's log: %w", err)
	}
	defer snap.Close()
	step := l.viewStepTree
	if l.db.Dialect() == store.SQLite {
		step = l.viewStepRows
	}
	l.views.mu.Lock()
	e, have := l.views.entries[key]
	l.views.mu.Unlock()
	var prev *viewMerge // a merge of this generation to bring up to date
	if have && e.gen == gen {
		prev = &e.viewMerge
	}
	st, ok, err := step(ctx, snap, q, o, prev)
	// A purge seen after gen was read but before the snapshot began must
	// not let an older merge be answered or cached with it.
	if now, _ := l.views.w.Current(l.clock.Now()); err != nil || !ok || now != gen {
		l.views.mu.Lock()
		delete(l.views.entries, key)
		l.views.mu.Unlock()
		return nil, false, false, err
	}
	l.views.mu.Lock()
	if len(l.views.entries) >= maxCachedViews {
		clear(l.views.entries)
	}
	l.views.entries[key] = viewEntry{gen: gen, viewMerge: st}
	l.views.mu.Unlock()
	return st.m.result(), st.truncated, true, nil
}

// viewStepRows brings the view up to date on SQLite, by the event table's
// rowids. SQLite has one writer and gives a new row the largest rowid so
// far plus one, so the rows committed after a snapshot all have larger
// rowids than any it saw, unless the row with the largest one was deleted
// since: only a purge deletes events, and a purge retires every cached
// view. So a cached view merged up to rowid upto needs only the patient's
// events above it, sequenced or not, found in one range scan: no look-up
// of the waiting events, no walk of the new leaves.
//
// Both step functions bring e (a merge of the current generation, or nil)
// up to date in snap, or merge anew; false means the view is merged
// without the cache.
func (l *Log) viewStepRows(ctx context.Context, snap *store.Snapshot, q Search, o ViewOptions, e *viewMerge) (viewMerge, bool, error) {
	var last int64
	if err := snap.Stmt(`SELECT COALESCE(MAX(rowid), 0) FROM audit_events`).QueryRowContext(ctx).Scan(&last); err != nil {
		return viewMerge{}, false, fmt.Errorf("read the patient's log: %w", err)
	}
	if e != nil && e.upto <= last && last-e.upto <= maxViewStep {
		m := e.m.clone()
		l.views.steps.Add(1)
		// NOT INDEXED: the rowid range, never the patient's index, whatever
		// the planner's statistics say. A truncated view takes only events
		// from its floor on (a restore may add older ones).
		rows, err := snap.Stmt(`SELECT id, time, body FROM audit_events NOT INDEXED
			WHERE rowid > $1 AND rowid <= $2 AND tenant_id = $3 AND patient_id = $4 AND kind = $5
			  AND (time > $6 OR (time = $6 AND id >= $7))`).
			QueryContext(ctx, e.upto, last, q.TenantID, q.PatientID, string(KindAccess), e.floor.micros, e.floor.id)
		if _, err := mergeRows(rows, err, m, -1, nil); err != nil {
			return viewMerge{}, false, err
		}
		if m.n <= 2*MaxViewEvents {
			return viewMerge{upto: last, m: m, floor: e.floor, truncated: e.truncated}, true, nil
		}
		// Grown to twice the bound: merged anew below, from the newest
		// MaxViewEvents.
	}
	m := newViewMerger(o)
	// Newest first, as the uncached path reads them. A log longer than
	// MaxViewEvents is merged from its newest MaxViewEvents and cached as
	// truncated: later requests add what comes after, so it shows at
	// least the newest MaxViewEvents and every event since the oldest it
	// shows, until it holds twice the bound and is merged anew. +rowid:
	// the patient's index, not a scan of the rowids up to last.
	rows, err := snap.Stmt(`SELECT id, time, body FROM audit_events
		WHERE tenant_id = $1 AND patient_id = $2 AND kind = $3 AND +rowid <= $4
		ORDER BY time DESC, id DESC LIMIT `+fmt.Sprint(MaxViewEvents+1)).QueryContext(ctx, q.TenantID, q.PatientID, string(KindAccess), last)
	floor := noFloor
	more, err := mergeRows(rows, err, m, MaxViewEvents, &floor)
	if err != nil {
		return viewMerge{}, false, err
	}
	if !more {
		floor = noFloor
	}
	return viewMerge{upto: last, m: m, floor: floor, truncated: more}, true, nil
}

// viewStepTree brings the view up to date on PostgreSQL, whose
// transactions commit in another order than they take ids, so no column of
// the events tells what a snapshot could not yet see: the view covers the
// tenant's tree up to a size, whose order is fixed, and the events waiting
// for the sequencer, by id (the queue's writer_txn tells which of those a
// snapshot may have missed). One snapshot: an event is either in the tree (below
// size) or waiting in audit_pending, never both and never neither. A log
// longer than MaxViewEvents is kept as on SQLite (see viewStepRows): from
// the newest MaxViewEvents sequenced events on, plus the waiting ones from
// the oldest of those on.
func (l *Log) viewStepTree(ctx context.Context, snap *store.Snapshot, q Search, o ViewOptions, e *viewMerge) (viewMerge, bool, error) {
	var size int64
	if err := snap.Stmt(`SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_leaves WHERE tenant_id = $1`).QueryRowContext(ctx, q.TenantID).Scan(&size); err != nil {
		return viewMerge{}, false, fmt.Errorf("read the patient's log: %w", err)
	}
	horizon, err := snap.Horizon(ctx)
	if err != nil {
		return viewMerge{}, false, fmt.Errorf("read the patient's log: %w", err)
	}
	// The patient's events waiting for the sequencer, from the queue's own
	// rows, which name their patient: those queued by a transaction the
	// last merge's snapshot may not have seen (at or above its horizon;
	// all of them for a merge anew), joined to their bodies, and those of
	// no known writer (0: queued before migration 00350, or by a replica
	// not yet upgraded). Most of the rest were merged by an earlier
	// request.
	mergePending := func(st viewMerge, since int64) (viewMerge, error) {
		rows, err := snap.Stmt(`SELECT p.event_id, e.time, e.body FROM audit_pending p JOIN audit_events e ON e.id = p.event_id
			WHERE p.tenant_id = $1 AND p.patient_id = $2 AND (p.writer_txn >= $3 OR p.writer_txn = 0)`).
			QueryContext(ctx, q.TenantID, q.PatientID, since)
		if err != nil {
			return viewMerge{}, fmt.Errorf("read the patient's log: %w", err)
		}
		defer rows.Close()
		var id string
		var micros int64
		var body sql.RawBytes
		for rows.Next() {
			if err := rows.Scan(&id, &micros, &body); err != nil {
				return viewMerge{}, fmt.Errorf("read the patient's log: %w", err)
			}
			if st.pend[id] {
				continue
			}
			st.pend[id] = true // merged, or before the floor: never merged
			if st.floor.after(micros, id) {
				continue
			}
			if err := st.m.add(body); err != nil {
				return viewMerge{}, fmt.Errorf("read the patient's log: %w", err)
			}
		}
		if err := rows.Err(); err != nil {
			return viewMerge{}, fmt.Errorf("read the patient's log: %w", err)
		}
		return st, nil
	}
	if e != nil && e.upto <= size && size-e.upto <= maxViewStep {
		st := viewMerge{upto: size, pend: maps.Clone(e.pend), m: e.m.clone(), floor: e.floor, truncated: e.truncated, horizon: horizon}
		l.views.steps.Add(1)
		// The new leaves' event ids, then those of the patient's events among
		// them by id: a join let PostgreSQL's generic plan read the
		// patient's whole log instead.
		rows, err := snap.Stmt(`SELECT event_id FROM audit_leaves WHERE tenant_id = $1 AND idx >= $2 AND idx < $3`).
			QueryContext(ctx, q.TenantID, e.upto, size)
		ids, err := scanIDs(rows, err, func(id string) bool {
			if st.pend[id] {
				delete(st.pend, id) // merged (or passed over) while it waited
				return false
			}
			return true
		})
		if err != nil {
			return viewMerge{}, false, err
		}
		if err := mergeIDs(ctx, snap, q, ids, st.m, st.floor); err != nil {
			return viewMerge{}, false, err
		}
		if st, err = mergePending(st, e.horizon); err != nil || st.m.n <= 2*MaxViewEvents {
			return st, err == nil, err
		}
		// Grown to twice the bound: merged anew.
	}
	st := viewMerge{upto: size, pend: map[string]bool{}, m: newViewMerger(o), floor: noFloor, horizon: horizon}
	// Newest first, as the uncached path reads them.
	rows, err := snap.Stmt(`SELECT e.id, e.time, e.body FROM audit_events e
		WHERE e.tenant_id = $1 AND e.patient_id = $2 AND e.kind = $3
		  AND NOT EXISTS (SELECT 1 FROM audit_pending pe WHERE pe.tenant_id = e.tenant_id AND pe.event_id = e.id)
		ORDER BY e.time DESC, e.id DESC LIMIT `+fmt.Sprint(MaxViewEvents+1)).QueryContext(ctx, q.TenantID, q.PatientID, string(KindAccess))
	floor := noFloor
	more, err := mergeRows(rows, err, st.m, MaxViewEvents, &floor)
	if err != nil {
		return viewMerge{}, false, err
	}
	if more {
		st.floor, st.truncated = floor, true
	}
	if st, err = mergePending(st, math.MinInt64); err != nil || st.m.n > 2*MaxViewEvents {
		// A sequencer far behind: the waiting events alone are more than
		// the cache holds; merged without it (the newest MaxViewEvents).
		return viewMerge{}, false, err
	}
	return st, true, nil
}

// mergeIDs merges the access events of q's patient among ids into m, those
// from floor on, one prepared look-up by id each. The patient is checked
// here, not in the statement, and there is no IN list: with either, a
// planner could read the patient's whole log through its index, or
// (SQLite, its statistics taken when the log was small) the whole table,
// instead of looking the ids up.
func mergeIDs(ctx context.Context, snap *store.Snapshot, q Search, ids []string, m *viewMerger, floor viewFloor) error {
	get := snap.Stmt(`SELECT tenant_id, patient_id, time, body FROM audit_events WHERE id = $1`)
	var tenant, patient string
	var micros int64
	var body []byte
	for _, id := range ids {
		err := get.QueryRowContext(ctx, id).Scan(&tenant, &patient, &micros, &body)
		if errors.Is(err, sql.ErrNoRows) {
			continue // not possible in one snapshot; nothing to merge either way
		}
		if err != nil {
			return fmt.Errorf("read the patient's log: %w", err)
		}
		if tenant != q.TenantID || patient != q.PatientID || floor.after(micros, id) {
			continue
		}
		if err := m.add(body); err != nil {
			return fmt.Errorf("read the patient's log: %w", err)
		}
	}
	return nil
}

// scanIDs returns the ids rows yields that keep says yes to.
func scanIDs(rows *sql.Rows, err error, keep func(id string) bool) ([]string, error) {
	if err != nil {
		return nil, fmt.Errorf("read the patient's log: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read the patient's log: %w", err)
		}
		if keep(id) {
			ids = append(ids, id)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the patient's log: %w", err)
	}
	return ids, nil
}

// mergeRows merges the bodies of the (id, time, body) rows yields into m,
// at most max of them (-1: all), and reports whether there were more; last,
// if not nil, is set to the place of the last row merged.
func mergeRows(rows *sql.Rows, err error, m *viewMerger, max int, last *viewFloor) (bool, error) {
	if err != nil {
		return false, fmt.Errorf("read the patient's log: %w", err)
	}
	defer rows.Close()
	n := 0
	var id string
	var micros int64
	var body sql.RawBytes
	for rows.Next() {
		if n == max {
			return true, nil
		}
		n++
		if err := rows.Scan(&id, &micros, &body); err != nil {
			return false, fmt.Errorf("read the patient's log: %w", err)
		}
		if err := m.add(body); err != nil {
			return false, fmt.Errorf("read the patient's log: %w", err)
		}
		if last != nil {
			*last = viewFloor{micros: micros, id: id}
		}
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("read the patient's log: %w", err)
	}
	return false, nil
}
