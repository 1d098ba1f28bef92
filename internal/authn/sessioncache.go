package authn

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/store"
)

// The session cache keeps authenticated sessions in memory, so a request
// does not read its session, account and organisation from the database.
// It answers only yes: a token it does not hold, a session past its idle
// limit by its own record, or a cache that is not fresh goes to the
// database as before.
//
// Freshness: every change that can make a cached session wrong bumps the
// version row (authn_session_changes) in the change's own transaction and
// empties this replica's cache at once after it commits. Other replicas
// learn of it through SyncSessions, which serve runs every
// SessionSyncInterval: a new version empties their caches. The cache
// answers only while its last successful sync began less than
// sessionFresh ago, so a replica whose sync stalls (or that never syncs:
// tests, one-off commands) reads every session from the database, and a
// change holds everywhere within a second.
//
// A load that read the database before an invalidation must not put its
// (possibly stale) row back afterwards: each load notes the generation it
// started in, and the row is kept only if no invalidation happened since.

// SessionSyncInterval is how often serve calls SyncSessions.
const SessionSyncInterval = 250 * time.Millisecond

// sessionFresh is how long after a sync began the cache may answer; with
// syncs every SessionSyncInterval a change on another replica holds there
// within this bound (< 1 s).
const sessionFresh = 750 * time.Millisecond

// maxCachedSessions bounds the cache; a full cache starts again empty.
const maxCachedSessions = 50000

// touchEvery is how stale last_seen may get before a request writes it: an
// idle limit of minutes does not need a write per request.
const touchEvery = 5 * time.Second

type cachedSession struct {
	sess     Session
	lastSeen time.Time // as the database has it (after our own touches)
}

type sessionCache struct {
	mu      sync.Mutex
	gen     uint64 // bumped by every invalidation
	entries map[[32]byte]cachedSession

	syncMu  sync.Mutex // one sync at a time
	version int64      // the version row as last read
	synced  bool       // version was read at least once
	checked time.Time  // when the last successful sync began
}

func newSessionCache() *sessionCache {
	return &sessionCache{entries: map[[32]byte]cachedSession{}}
}

// get returns the cached session for h if the cache is fresh at now.
func (c *sessionCache) get(h [32]byte, now time.Time) (cachedSession, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.synced || now.Sub(c.checked) >= sessionFresh || now.Before(c.checked) {
		return cachedSession{}, false
	}
	e, ok := c.entries[h]
	return e, ok
}

// generation returns the generation a load starts in.
func (c *sessionCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put keeps e for h unless an invalidation happened since gen.
func (c *sessionCache) put(h [32]byte, e cachedSession, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.entries) >= maxCachedSessions {
		clear(c.entries)
	}
	c.entries[h] = e
}

// touched records a write of last_seen for h (only if the entry is still
// there: an invalidation in between wins).
func (c *sessionCache) touched(h [32]byte, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[h]; ok {
		e.lastSeen = at
		c.entries[h] = e
	}
}

// drop forgets one session (expired, idle by its record).
func (c *sessionCache) drop(h [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, h)
}

// invalidate empties the cache; loads in flight will not put their rows.
func (c *sessionCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}

// SyncSessions reads the sessions' version row and empties the cache when
// another replica (or this one) changed a session since the last read. serve
// runs it every SessionSyncInterval; without it the cache never answers.
func (s *Service) SyncSessions(ctx context.Context) error {
	c := s.cache
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	began := s.clock.Now()
	var v int64
	err := s.db.Stmt(`SELECT COALESCE(MAX(version), 0) FROM authn_session_changes`).QueryRowContext(ctx).Scan(&v)
	if err != nil {
		return fmt.Errorf("sync sessions: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.synced || v != c.version {
		c.gen++
		clear(c.entries)
	}
	c.version, c.synced, c.checked = v, true, began
	return nil
}

// bumpSessions adds one to the sessions' version in q's transaction.
func bumpSessions(ctx context.Context, q store.Querier) error {
	_, err := q.ExecContext(ctx, `INSERT INTO authn_session_changes (id, version) VALUES (1, 1)
		ON CONFLICT (id) DO UPDATE SET version = authn_session_changes.version + 1`)
	if err != nil {
		return fmt.Errorf("session version: %w", err)
	}
	return nil
}

// changeSessions runs a write of the sessions table together with the
// version bump, and empties this replica's cache once both committed.
func (s *Service) changeSessions(ctx context.Context, query string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		if res, err = tx.ExecContext(ctx, query, args...); err != nil {
			return err
		}
		return bumpSessions(ctx, tx)
	})
	// Also after a failed commit: whether or not it took, nothing cached
	// before it is trusted.
	s.cache.invalidate()
	return res, err
}
