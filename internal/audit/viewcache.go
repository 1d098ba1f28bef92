package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/zorgkluis/zorgkluis/internal/store"
)

// The view cache keeps, per patient, the person's view merged from the
// events already sequenced into the tenant's tree, and the tree's size it
// was merged up to. The log is append-only and the tree's order is fixed, so
// the next request for the same view merges only the leaves added since
// and the events waiting for the sequencer it has not merged yet, instead
// of the patient's whole log: the view costs what is new, not what is old.
// An event merged while it waited is remembered by id, and skipped when it
// turns up among the new leaves.
//
// Events only ever go away through retention's purge (DELETE FROM
// audit_events), which a deletes-only store.Watch sees on every replica;
// a purge retires every cached view. As with every watch, a replica whose
// sync stalls, or a process that never syncs, caches nothing.

// maxCachedViews bounds the cache; a full cache starts again empty.
const maxCachedViews = 1000

// maxViewStep is the most new leaves of the tenant a cached view is brought
// up to date through; further behind, the view is merged anew.
const maxViewStep = 10000

// ViewSyncInterval is how often serve calls SyncViews.
const ViewSyncInterval = store.WatchSyncInterval

type viewKey struct {
	tenant, patient string
	names           bool
	loc             string
}

type viewEntry struct {
	gen  uint64          // the watch's generation when the merge began
	upto int64           // the tree's size the merge covers: leaves 0..upto-1
	pend map[string]bool // and these events, merged while they awaited the sequencer
	m    *viewMerger     // not changed after it is cached; clone to add to it
}

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
// when the cache cannot answer (not fresh, or a patient whose log is longer
// than MaxViewEvents: the uncached path bounds and truncates that).
func (l *Log) cachedView(ctx context.Context, q Search, o ViewOptions) (lines []PatientLine, ok bool, err error) {
	gen, fresh := l.views.w.Current(l.clock.Now())
	if !fresh {
		return nil, false, nil
	}
	key := viewKey{tenant: q.TenantID, patient: q.PatientID, names: o.ShowNames}
	if o.Location != nil {
		key.loc = o.Location.String()
	}
	// One snapshot: an event is either in the tree (below size) or waiting
	// in audit_pending, never both and never neither.
	snap, err := l.db.Snapshot(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("read the patient's log: %w", err)
	}
	defer snap.Close()
	var size int64
	if err := snap.Stmt(`SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_leaves WHERE tenant_id = $1`).QueryRowContext(ctx, q.TenantID).Scan(&size); err != nil {
		return nil, false, fmt.Errorf("read the patient's log: %w", err)
	}
	// A purge seen after gen was read but before the snapshot began must
	// not let an older merge be reused with it.
	if now, _ := l.views.w.Current(l.clock.Now()); now != gen {
		return nil, false, nil
	}
	l.views.mu.Lock()
	e, have := l.views.entries[key]
	l.views.mu.Unlock()
	var m *viewMerger
	pend := map[string]bool{}
	if have && e.gen == gen && e.upto <= size && size-e.upto <= maxViewStep {
		m, pend = e.m.clone(), maps.Clone(e.pend)
		l.views.steps.Add(1)
		// The new leaves' event ids, then those of the patient's events among
		// them by id: a join let PostgreSQL's generic plan read the
		// patient's whole log instead.
		rows, err := snap.Stmt(`SELECT event_id FROM audit_leaves WHERE tenant_id = $1 AND idx >= $2 AND idx < $3`).
			QueryContext(ctx, q.TenantID, e.upto, size)
		ids, err := scanIDs(rows, err, func(id string) bool {
			if pend[id] {
				delete(pend, id) // merged while it waited
				return false
			}
			return true
		})
		if err != nil {
			return nil, false, err
		}
		if err := mergeIDs(ctx, snap, q, ids, m); err != nil {
			return nil, false, err
		}
	} else {
		m = newViewMerger(o)
		rows, err := snap.Stmt(`SELECT e.id, e.body FROM audit_events e
			WHERE e.tenant_id = $1 AND e.patient_id = $2 AND e.kind = $3
			  AND NOT EXISTS (SELECT 1 FROM audit_pending pe WHERE pe.tenant_id = e.tenant_id AND pe.event_id = e.id)
			LIMIT `+fmt.Sprint(MaxViewEvents+1)).QueryContext(ctx, q.TenantID, q.PatientID, string(KindAccess))
		n, err := mergeRows(rows, err, m, MaxViewEvents+1)
		if err != nil {
			return nil, false, err
		}
		if n > MaxViewEvents {
			return nil, false, nil
		}
	}
	// The patient's events waiting for the sequencer, from the queue's own
	// rows, which name their patient; most were merged by an earlier
	// request, and only the new ones' bodies are read. (Looking up every
	// waiting event of the tenant, or the patient's newest events, cost
	// more than the rest of the view: each page read after a commit goes
	// through the WAL.)
	rows, err := snap.Stmt(`SELECT event_id FROM audit_pending WHERE tenant_id = $1 AND patient_id = $2`).
		QueryContext(ctx, q.TenantID, q.PatientID)
	unmerged, err := scanIDs(rows, err, func(id string) bool { return !pend[id] })
	if err != nil {
		return nil, false, err
	}
	if err := mergeIDs(ctx, snap, q, unmerged, m); err != nil {
		return nil, false, err
	}
	for _, id := range unmerged {
		pend[id] = true
	}
	if m.n > MaxViewEvents {
		// As long as the uncached path: that one shows the newest
		// MaxViewEvents and says the view is truncated, whichever
		// replica answers.
		l.views.mu.Lock()
		delete(l.views.entries, key)
		l.views.mu.Unlock()
		return nil, false, nil
	}
	l.views.mu.Lock()
	if len(l.views.entries) >= maxCachedViews {
		clear(l.views.entries)
	}
	l.views.entries[key] = viewEntry{gen: gen, upto: size, pend: pend, m: m}
	l.views.mu.Unlock()
	return m.result(), true, nil
}

// mergeIDs merges the access events of q's patient among ids into m, one
// prepared look-up by id each. The patient is checked here, not in the
// statement, and there is no IN list: with either, a planner could read the
// patient's whole log through its index, or (SQLite, its statistics taken
// when the log was small) the whole table, instead of looking the ids up.
func mergeIDs(ctx context.Context, snap *store.Snapshot, q Search, ids []string, m *viewMerger) error {
	get := snap.Stmt(`SELECT tenant_id, patient_id, body FROM audit_events WHERE id = $1`)
	var tenant, patient string
	var body []byte
	for _, id := range ids {
		err := get.QueryRowContext(ctx, id).Scan(&tenant, &patient, &body)
		if errors.Is(err, sql.ErrNoRows) {
			continue // not possible in one snapshot; nothing to merge either way
		}
		if err != nil {
			return fmt.Errorf("read the patient's log: %w", err)
		}
		if tenant != q.TenantID || patient != q.PatientID {
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

// mergeRows merges the bodies of the (id, body) rows yields into m, at
// most max of them (-1: all), and returns how many rows it read.
func mergeRows(rows *sql.Rows, err error, m *viewMerger, max int) (int, error) {
	if err != nil {
		return 0, fmt.Errorf("read the patient's log: %w", err)
	}
	defer rows.Close()
	n := 0
	var id string
	var body sql.RawBytes
	for rows.Next() {
		if n == max {
			break
		}
		n++
		if err := rows.Scan(&id, &body); err != nil {
			return n, fmt.Errorf("read the patient's log: %w", err)
		}
		if err := m.add(body); err != nil {
			return n, fmt.Errorf("read the patient's log: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("read the patient's log: %w", err)
	}
	return n, nil
}
