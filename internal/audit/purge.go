package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

const (
	// MinAccessRetention is the shortest time the access log (health-data
	// actions) is kept: 5 years (LOG-6), counted as 1827 days so that any
	// five calendar years, with two leap days, fit in it.
	MinAccessRetention = 1827 * 24 * time.Hour
	// DefaultTechnicalRetention is how long log-on and other technical
	// events are kept unless configured otherwise (LOG-6).
	DefaultTechnicalRetention = 365 * 24 * time.Hour
	// MinChainRetention and MaxChainRetention bound the MedMij chain log:
	// at least 24 and at most 36 months (LOG-6), counted as 731 and 1095
	// days so that any 24 calendar months fit in the first and the second
	// stays within 36.
	MinChainRetention = 731 * 24 * time.Hour
	MaxChainRetention = 1095 * 24 * time.Hour
	// DefaultPurgeBatch bounds one purge transaction, so that appends
	// (which share SQLite's single writer) wait at most one batch.
	DefaultPurgeBatch = 1000
)

// PurgeOptions control how Purge runs.
type PurgeOptions struct {
	DryRun   bool              // change nothing; count what would be purged
	Progress func(PurgeResult) // when not nil, called after each batch with the running result
	Batch    int               // events per transaction; DefaultPurgeBatch when 0
}

// RetentionPolicy says how long each log kind is kept. After the chain
// log's retention only counts remain (audit_chain_counts: per month, step,
// app and outcome, without trace or session ids).
type RetentionPolicy struct {
	Access    time.Duration // at least MinAccessRetention
	Technical time.Duration // at least MinTechnicalRetention
	Chain     time.Duration // MinChainRetention to MaxChainRetention
}

// DefaultRetention is the shortest retention LOG-6 allows for the access
// and chain logs and the default for the technical log.
func DefaultRetention() RetentionPolicy {
	return RetentionPolicy{Access: MinAccessRetention, Technical: DefaultTechnicalRetention, Chain: MinChainRetention}
}

// Validate refuses a policy shorter than the law or the verifier allows.
func (p RetentionPolicy) Validate() error {
	if p.Access < MinAccessRetention {
		return fmt.Errorf("retention: access log %v is shorter than the 5 years NEN 7513 and MedMij require (%v)", p.Access, MinAccessRetention)
	}
	if p.Technical < MinTechnicalRetention {
		return fmt.Errorf("retention: technical log %v is shorter than the minimum %v", p.Technical, MinTechnicalRetention)
	}
	if p.Chain < MinChainRetention || p.Chain > MaxChainRetention {
		return fmt.Errorf("retention: chain log %v is outside the 24 to 36 months MedMij asks (%v to %v)", p.Chain, MinChainRetention, MaxChainRetention)
	}
	return nil
}

// PurgeResult counts what Purge did (or, in a dry run, would do).
type PurgeResult struct {
	Access    int64 `json:"access"`    // access-log events purged
	Technical int64 `json:"technical"` // technical events purged
	Chain     int64 `json:"chain"`     // chain-log events purged (their counts kept)
	Held      int64 `json:"held"`      // expired events kept because a legal hold covers them
	Skipped   int64 `json:"skipped"`   // expired by their columns but not by their body (tampered; run audit verify)
	DryRun    bool  `json:"dryRun"`
}

// Purged is the number of events purged.
func (r PurgeResult) Purged() int64 { return r.Access + r.Technical + r.Chain }

// Purge removes the events whose retention has ended by now (LOG-6): it
// marks their leaves purged and deletes their rows, one transaction per
// batch. Leaf hashes, tree hashes and checkpoints stay, so Verify still
// recomputes every root and the proofs of the remaining events still
// check. Only sequenced events are purged, and only when a checkpoint
// older than the retention cut-off already covered them (which is what
// Verify demands of a purged position); unsequenced events are never
// purged, and neither are events under a legal hold that has not ended.
// With o.DryRun nothing changes and the result counts what would go.
//
// On PostgreSQL the application role may not delete events (see
// docs/audit-proofs.md); run Purge as the database owner.
func (l *Log) Purge(ctx context.Context, now time.Time, p RetentionPolicy, o PurgeOptions) (PurgeResult, error) {
	res := PurgeResult{DryRun: o.DryRun}
	if err := p.Validate(); err != nil {
		return res, err
	}
	if o.Batch <= 0 {
		o.Batch = DefaultPurgeBatch
	}
	tenants, err := checkpointTenants(ctx, l.db)
	if err != nil {
		return res, err
	}
	for _, kind := range []struct {
		kind Kind
		keep time.Duration
		n    *int64
	}{{KindTechnical, p.Technical, &res.Technical}, {KindChain, p.Chain, &res.Chain}, {KindAccess, p.Access, &res.Access}} {
		cutoff := now.Add(-kind.keep)
		for _, t := range tenants {
			c := purgeCursor{}
			for {
				n, more, err := l.purgeBatch(ctx, t, kind.kind, cutoff, now, o, &c, &res)
				*kind.n += n
				if err != nil {
					return res, fmt.Errorf("purge %s events of tenant %q: %w", kind.kind, t, err)
				}
				if o.Progress != nil && (n > 0 || !more) {
					o.Progress(res)
				}
				if !more {
					break
				}
			}
		}
	}
	return res, nil
}

// checkpointTenants lists the tenants that have a tree; events of others
// are unsequenced and never purged.
func checkpointTenants(ctx context.Context, db *store.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT DISTINCT tenant_id FROM audit_checkpoints ORDER BY tenant_id`)
	if err != nil {
		return nil, fmt.Errorf("list audit trees: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("list audit trees: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// purgeCursor is the (time, id) of the last event a batch looked at, so
// that kept events (held, skipped, or all of them in a dry run) are not
// read again.
type purgeCursor struct {
	time    int64
	id      string
	started bool
}

// purgeBatch purges up to o.Batch expired events of one tenant and kind,
// in one transaction, and reports whether more may follow.
func (l *Log) purgeBatch(ctx context.Context, tenant string, kind Kind, cutoff, now time.Time, o PurgeOptions, c *purgeCursor, res *PurgeResult) (int64, bool, error) {
	var purged int64
	more := false
	err := l.db.Tx(ctx, func(tx *store.Tx) error {
		purged, more = 0, false
		if err := lockHolds(ctx, tx); err != nil {
			return err
		}
		after := `TRUE`
		args := []any{tenant, string(kind), clock.Micros(cutoff), clock.Micros(now), o.Batch}
		if c.started {
			args = append(args, c.time, c.id)
			// The plain lower bound lets the (tenant_id, time) index start
			// at the cursor instead of walking past the rows that earlier
			// batches deleted (dead index entries until vacuum).
			after = `e.time >= $6 AND (e.time > $6 OR e.id > $7)`
		}
		// The leaf join keeps unsequenced events out; the checkpoint test
		// keeps out events no checkpoint older than the cut-off covers.
		rows, err := tx.QueryContext(ctx, `SELECT e.id, e.time, e.body,
			EXISTS (SELECT 1 FROM audit_hold_events he JOIN audit_holds h ON h.id = he.hold_id
				WHERE he.event_id = e.id AND h.until_time > $4) AS held
			FROM audit_events e JOIN audit_leaves l ON l.event_id = e.id AND l.tenant_id = e.tenant_id
			WHERE e.tenant_id = $1 AND e.time < $3 AND e.kind = $2 AND `+after+`
			AND EXISTS (SELECT 1 FROM audit_checkpoints cp WHERE cp.tenant_id = e.tenant_id AND cp.size > l.idx AND cp.time < $3)
			ORDER BY e.time, e.id LIMIT $5`, args...)
		if err != nil {
			return fmt.Errorf("find expired events: %w", err)
		}
		var ids []string
		var chain []Event // purged chain-log events, to count
		read := 0
		for rows.Next() {
			var id, body string
			var t int64
			var held bool
			if err := rows.Scan(&id, &t, &body, &held); err != nil {
				rows.Close()
				return fmt.Errorf("find expired events: %w", err)
			}
			read++
			c.time, c.id, c.started = t, id, true
			switch {
			case !expiredBody(body, kind, cutoff):
				res.Skipped++
			case held:
				res.Held++
			default:
				ids = append(ids, id)
				if kind == KindChain {
					if e, err := decode(body); err == nil {
						chain = append(chain, e)
					}
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("find expired events: %w", err)
		}
		more = read == o.Batch
		if o.DryRun || len(ids) == 0 {
			purged = int64(len(ids))
			return nil
		}
		in, inArgs := store.InList(tx, ids, 2)
		if _, err := tx.ExecContext(ctx, `UPDATE audit_leaves SET purged = TRUE WHERE tenant_id = $1 AND event_id IN (`+in+`)`,
			append([]any{tenant}, inArgs...)...); err != nil {
			return fmt.Errorf("mark leaves purged: %w", err)
		}
		r, err := tx.ExecContext(ctx, `DELETE FROM audit_events WHERE tenant_id = $1 AND id IN (`+in+`)`, append([]any{tenant}, inArgs...)...)
		if err != nil {
			return fmt.Errorf("delete expired events: %w", err)
		}
		n, err := r.RowsAffected()
		if err != nil {
			return fmt.Errorf("delete expired events: %w", err)
		}
		if n != int64(len(ids)) {
			return fmt.Errorf("deleted %d events, expected %d (changed meanwhile); nothing purged", n, len(ids))
		}
		purged = n
		return countChain(ctx, tx, tenant, chain)
	})
	if err != nil {
		return 0, false, err
	}
	return purged, more, nil
}

// expiredBody checks an expired-looking row against its body, which is what
// the tree covers: a row whose kind or time column was edited to make it
// look expired is not purged.
func expiredBody(body string, kind Kind, cutoff time.Time) bool {
	e, err := decode(body)
	if err != nil {
		return false
	}
	k := e.Kind
	if k == "" {
		k = KindOf(e.Action)
	}
	return k == kind && e.Time.Before(cutoff)
}

// holdLockClass is the first key of the PostgreSQL advisory lock that
// serialises purge batches with the placing of holds ("zkAH").
const holdLockClass int32 = 0x7a6b4148

// lockHolds makes a purge batch and the placing of a hold exclude each
// other on PostgreSQL, so that a purge never deletes a line a hold placed
// meanwhile claims, and a hold never claims a line a purge deleted
// meanwhile: under READ COMMITTED each then sees the other's commit. On
// SQLite write transactions are serialised already.
func lockHolds(ctx context.Context, tx *store.Tx) error {
	if err := tx.Lock(ctx, holdLockClass); err != nil {
		return fmt.Errorf("purge and hold lock: %w", err)
	}
	return nil
}

// countChain adds purged chain-log events to the counts that outlive them
// (LOG-6): per month, step, app and outcome; no trace or session id.
func countChain(ctx context.Context, tx *store.Tx, tenant string, events []Event) error {
	type key struct{ month, step, client, outcome string }
	n := map[key]int64{}
	for _, e := range events {
		n[key{e.Time.UTC().Format("2006-01"), e.Query, e.SourceApp, string(e.Outcome)}]++
	}
	for k, c := range n {
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_chain_counts (tenant_id, month, step, client, outcome, n) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (tenant_id, month, step, client, outcome) DO UPDATE SET n = audit_chain_counts.n + $6`,
			tenant, k.month, k.step, k.client, k.outcome, c); err != nil {
			return fmt.Errorf("keep chain-log counts: %w", err)
		}
	}
	return nil
}

// ChainCount is what remains of a month's chain-log events of one step,
// app and outcome after their retention.
type ChainCount struct {
	Month, Step, Client, Outcome string
	N                            int64
}

// ChainCounts returns a tenant's kept chain-log counts, oldest month first.
func (l *Log) ChainCounts(ctx context.Context, tenant string) ([]ChainCount, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT month, step, client, outcome, n FROM audit_chain_counts WHERE tenant_id = $1
		ORDER BY month, step, client, outcome`, tenant)
	if err != nil {
		return nil, fmt.Errorf("chain-log counts: %w", err)
	}
	defer rows.Close()
	var out []ChainCount
	for rows.Next() {
		var c ChainCount
		if err := rows.Scan(&c.Month, &c.Step, &c.Client, &c.Outcome, &c.N); err != nil {
			return nil, fmt.Errorf("chain-log counts: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Retention returns the retention in force: the installation's approved
// policy (SetRetentionIn), else DefaultRetention. The access log's is the
// law's and not stored.
func (l *Log) Retention(ctx context.Context) (RetentionPolicy, error) {
	p := DefaultRetention()
	var tech, chain int64
	err := l.db.QueryRowContext(ctx, `SELECT technical, chain FROM audit_retention_policy WHERE id = 'installation'`).Scan(&tech, &chain)
	if errors.Is(err, sql.ErrNoRows) {
		return p, nil
	}
	if err != nil {
		return RetentionPolicy{}, fmt.Errorf("retention in force: %w", err)
	}
	p.Technical, p.Chain = time.Duration(tech)*time.Second, time.Duration(chain)*time.Second
	return p, nil
}

// SetRetentionIn stores p as the retention in force, in q: the four-eyes
// approval's transaction (GOV-1), by names who proposed and approved it.
func SetRetentionIn(ctx context.Context, q store.Querier, p RetentionPolicy, by string, at time.Time) error {
	p.Access = MinAccessRetention
	if err := p.Validate(); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, `INSERT INTO audit_retention_policy (id, technical, chain, set_by, set_at) VALUES ('installation', $1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET technical = $1, chain = $2, set_by = $3, set_at = $4`,
		int64(p.Technical/time.Second), int64(p.Chain/time.Second), by, clock.Micros(at))
	if err != nil {
		return fmt.Errorf("set retention: %w", err)
	}
	return nil
}
