package store

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A Watch tells a cache in memory whether the tables it was built from have
// changed, on this replica at once and on every replica within a second,
// without a statement per request. The store finds the writes itself: every
// statement run through DB, Tx or Stmt is matched against the watched
// tables, so no writer can forget to say that it changed something.
//
//   - A write to a watched table in a transaction adds one to the watch's
//     version row (store_watches) in that transaction, just before it
//     commits; a write outside a transaction is run in one for that.
//   - On this replica the watch's generation moves on when the write is
//     seen and again once its transaction has ended (committed or not): a
//     cache entry tagged with an older generation is never used again, and
//     a load that read the database before the commit cannot leave a stale
//     entry behind.
//   - Other replicas see the version row change through Sync, which serve
//     runs every WatchSyncInterval; a new version moves their generation
//     on. Current answers only while the last successful sync began less
//     than watchFresh ago, so a replica whose sync stalls, or a process
//     that never syncs (one-off commands, most tests), caches nothing.
type Watch struct {
	db   *DB
	name string

	gen atomic.Uint64

	syncMu sync.Mutex // one Sync at a time; never held by Current

	mu      sync.Mutex // guards the fields below, never across a query
	version int64      // the version row as last read
	synced  bool
	checked time.Time // when the last successful sync began
}

// WatchSyncInterval is how often serve calls Sync on each watch.
const WatchSyncInterval = 250 * time.Millisecond

// watchFresh is how long after a sync began a watch may answer; with syncs
// every WatchSyncInterval a change on another replica holds there within
// this bound (< 1 s).
const watchFresh = 750 * time.Millisecond

// syncTimeout bounds one Sync's query.
const syncTimeout = 5 * time.Second

// Watch returns a watch named name over tables. Register it before the
// writes it must see; the name keys its version row, so every replica must
// use the same name for the same tables.
func (db *DB) Watch(name string, tables ...string) *Watch {
	return db.watches.add(db, name, tables, false)
}

// WatchDeletes is Watch for a cache that only rows going away can make
// wrong (a merge of append-only rows, say): only DELETE and TRUNCATE of
// tables count.
func (db *DB) WatchDeletes(name string, tables ...string) *Watch {
	return db.watches.add(db, name, tables, true)
}

// Current returns the generation to tag a cache entry with (read it before
// the load the entry holds) and whether a cache may answer at now at all.
func (w *Watch) Current(now time.Time) (uint64, bool) {
	w.mu.Lock()
	fresh := w.synced && !now.Before(w.checked) && now.Sub(w.checked) < watchFresh
	w.mu.Unlock()
	return w.gen.Load(), fresh
}

// Sync reads the watch's version row; a version other than the last one
// read (a write on another replica, or on this one) moves the generation
// on. began is the clock's time when the call began.
func (w *Watch) Sync(ctx context.Context, began time.Time) error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	// A sync slower than the freshness bound is of no use; a stalled one
	// must not hold anything but the next sync.
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	var v int64
	err := w.db.Stmt(`SELECT COALESCE(MAX(version), 0) FROM store_watches WHERE name = $1`).QueryRowContext(ctx, w.name).Scan(&v)
	if err != nil {
		return fmt.Errorf("sync watch %s: %w", w.name, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.synced || v != w.version {
		w.gen.Add(1)
	}
	w.version, w.synced, w.checked = v, true, began
	return nil
}

// bump adds one to the watch's version row in q's transaction.
func (w *Watch) bump(ctx context.Context, q Querier) error {
	_, err := q.ExecContext(ctx, `INSERT INTO store_watches (name, version) VALUES ($1, 1)
		ON CONFLICT (name) DO UPDATE SET version = store_watches.version + 1`, w.name)
	if err != nil {
		return fmt.Errorf("watch %s: %w", w.name, err)
	}
	return nil
}

// writeTarget finds the tables a statement may write. It is a superset on
// purpose: any name after INSERT INTO, UPDATE, DELETE FROM, REPLACE INTO
// or TRUNCATE counts, wherever it stands (WITH clauses, several statements).
var writeTarget = regexp.MustCompile(`(?i)\b(INSERT\s+(?:OR\s+[a-z]+\s+)?INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+[a-z]+)?|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)\s+"?([a-z_][a-z0-9_]*)`)

// maxWatchMemo bounds the statements whose watches are remembered; queries
// built with a varying number of parameters would otherwise grow it.
const maxWatchMemo = 4096

// watchSet maps watched tables to their watches and remembers, per
// statement text, which watches it touches.
type watchSet struct {
	mu      sync.RWMutex
	byName  map[string]*Watch
	tables  map[string][]*Watch // any write counts
	deletes map[string][]*Watch // only DELETE and TRUNCATE count
	memo    map[string][]*Watch
}

// add registers a watch named name over tables, or returns the one this DB
// has under that name already (its tables stand): one per name, so that
// every Log or Decider made on a DB shares it and a write bumps its row
// once.
func (s *watchSet) add(db *DB, name string, tables []string, deletesOnly bool) *Watch {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.byName[name]; w != nil {
		return w
	}
	w := &Watch{db: db, name: name}
	if s.byName == nil {
		s.byName, s.tables, s.deletes = map[string]*Watch{}, map[string][]*Watch{}, map[string][]*Watch{}
	}
	s.byName[name] = w
	m := s.tables
	if deletesOnly {
		m = s.deletes
	}
	for _, t := range tables {
		m[strings.ToLower(t)] = append(m[strings.ToLower(t)], w)
	}
	s.memo = nil // statements seen before may touch the new watch
	return w
}

// of returns the watches a statement touches; nil for most.
func (s *watchSet) of(query string) []*Watch {
	s.mu.RLock()
	if len(s.tables) == 0 && len(s.deletes) == 0 {
		s.mu.RUnlock()
		return nil
	}
	ws, ok := s.memo[query]
	s.mu.RUnlock()
	if ok {
		return ws
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range writeTarget.FindAllStringSubmatch(query, -1) {
		table := strings.ToLower(m[2])
		found := s.tables[table]
		if verb := strings.ToUpper(m[1][:1]); verb == "D" || verb == "T" {
			found = append(slices.Clip(found), s.deletes[table]...)
		}
		for _, w := range found {
			if !containsWatch(ws, w) {
				ws = append(ws, w)
			}
		}
	}
	if s.memo == nil || len(s.memo) >= maxWatchMemo {
		s.memo = map[string][]*Watch{}
	}
	s.memo[query] = ws
	return ws
}

func containsWatch(ws []*Watch, w *Watch) bool {
	for _, x := range ws {
		if x == w {
			return true
		}
	}
	return false
}

// touch notes that the transaction writes the watches' tables: their
// generations move on now, and the version rows are bumped at commit.
func (t *Tx) touch(ws []*Watch) {
	for _, w := range ws {
		w.gen.Add(1)
		if !containsWatch(t.touched, w) {
			t.touched = append(t.touched, w)
		}
	}
}

// bumpTouched adds one to the version row of every watch the transaction
// touched; DB.Tx runs it just before the commit.
func (t *Tx) bumpTouched(ctx context.Context) error {
	// By name, so that two transactions touching the same watches lock
	// their rows in the same order (PostgreSQL).
	slices.SortFunc(t.touched, func(a, b *Watch) int { return strings.Compare(a.name, b.name) })
	for _, w := range t.touched {
		if err := w.bump(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// ended moves the touched watches' generations on once the transaction
// has ended, whether it committed or not.
func (t *Tx) ended() {
	for _, w := range t.touched {
		w.gen.Add(1)
	}
}
