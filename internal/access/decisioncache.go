package access

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/store"
)

// The decision cache keeps what the care rule query found for a
// professional and a patient, so a session that reads a record's resources
// one after another asks the database once. It answers only yes, and only
// for the two bases with no instant of their own to watch for beyond the
// relationship's end: a care relationship and a team. A denial, a
// delegation, an emergency, a person's or an operator's decision is always
// evaluated anew (and a denial is logged as before).
//
// Freshness is the store's: every table the care rule reads is watched
// (store.Watch), so any write to one of them, by any package, process or
// replica, retires every entry (on this replica once the write is seen, on
// the others within a second; AZ-1). An entry also ends at the instant its
// decision would change by itself: the relationship's end, the end of an
// approved right of the role (AZ-7), and at most maxDecisionAge after it
// was made.

// decisionTables are the tables careQuery reads.
var decisionTables = []string{
	"patients", "care_relationships", "access_team_members", "access_team_patients", "access_teams",
	"access_delegations", "access_emergencies", "access_right_requests", "account_roles", "accounts",
}

// maxDecisionAge bounds an entry's life even when nothing it depends on
// changes.
const maxDecisionAge = time.Minute

// maxCachedDecisions bounds the cache; a full cache starts again empty.
const maxCachedDecisions = 100000

// DecisionSyncInterval is how often serve calls SyncDecisions.
const DecisionSyncInterval = store.WatchSyncInterval

type careKey struct {
	patient, account, tenant string
	role                     Role
}

type careEntry struct {
	gen    uint64    // the watch's generation when the load began
	until  time.Time // the entry is not used at or after this instant
	tenant string    // the patient's tenant
	rule   string    // "r <id>" or "t <id>", as careQuery names the rule
}

type decisionCache struct {
	w       *store.Watch
	mu      sync.Mutex
	entries map[careKey]careEntry
	hits    atomic.Int64 // decisions answered from the cache (tests, figures)
}

func newDecisionCache(db *store.DB) *decisionCache {
	return &decisionCache{w: db.Watch("access-decisions", decisionTables...), entries: map[careKey]careEntry{}}
}

// get returns the entry for k if the cache may answer at now.
func (c *decisionCache) get(k careKey, now time.Time) (careEntry, bool) {
	gen, ok := c.w.Current(now)
	if !ok {
		return careEntry{}, false
	}
	c.mu.Lock()
	e, ok := c.entries[k]
	c.mu.Unlock()
	if !ok || e.gen != gen || !now.Before(e.until) {
		return careEntry{}, false
	}
	c.hits.Add(1)
	return e, true
}

// put keeps e for k; e.gen is the generation read before the load, so an
// entry loaded across a write is never used.
func (c *decisionCache) put(k careKey, e careEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCachedDecisions {
		clear(c.entries)
	}
	c.entries[k] = e
}

// SyncDecisions reads the version of the tables the decisions depend on; a
// change on another replica retires this replica's cached decisions. serve
// runs it every DecisionSyncInterval; without it the cache never answers.
func (d *Decider) SyncDecisions(ctx context.Context) error {
	return d.cache.w.Sync(ctx, d.clock.Now())
}
