package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// ErrNoSigner means the Log has no checkpoint signing key (WithSigner).
var ErrNoSigner = errors.New("audit: no checkpoint signing key configured")

// sequenceBatch bounds one sequencing transaction, so that appends (which
// share SQLite's single writer) wait at most one batch.
const sequenceBatch = 20000

// lockClass is the first key of the PostgreSQL advisory locks that make one
// sequencer at a time per tenant ("zkAU").
const lockClass int32 = 0x7a6b4155

// DefaultSequenceInterval is how often RunSequencer sequences: well inside
// the promise that an event is in a signed checkpoint within a second.
const DefaultSequenceInterval = 500 * time.Millisecond

// Sequence moves every pending event into its tenant's tree, stores the new
// tree hashes and a signed checkpoint per tenant that changed, and returns
// how many events it sequenced. Several processes may call it at once: on
// PostgreSQL a per-tenant advisory lock lets one of them sequence a tenant
// while the others skip it; on SQLite writes are serialised anyway.
func (l *Log) Sequence(ctx context.Context) (int, error) {
	if l.signer == nil {
		return 0, ErrNoSigner
	}
	tenants, err := l.pendingTenants(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, t := range tenants {
		for {
			n, err := l.sequenceTenant(ctx, t)
			total += n
			if err != nil {
				return total, err
			}
			if n < sequenceBatch {
				break
			}
		}
	}
	return total, nil
}

func (l *Log) pendingTenants(ctx context.Context) ([]string, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT DISTINCT tenant_id FROM audit_pending`)
	if err != nil {
		return nil, fmt.Errorf("pending audit events: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("pending audit events: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

type pendingEvent struct {
	id   string
	hash tlog.Hash
}

func (l *Log) sequenceTenant(ctx context.Context, tenant string) (int, error) {
	l.seqMu.Lock()
	defer l.seqMu.Unlock()
	n := 0
	var next *frontier
	err := l.db.Tx(ctx, func(tx *store.Tx) error {
		n, next = 0, nil
		got, err := tx.TryLock(ctx, lockClass, tenant)
		if err != nil {
			return fmt.Errorf("sequencer lock: %w", err)
		}
		if !got {
			return nil // another process is sequencing this tenant
		}
		size, root, err := treeHead(ctx, tx, tenant)
		if err != nil {
			return err
		}
		pending, err := readPending(ctx, tx, tenant)
		if err != nil || len(pending) == 0 {
			return err
		}
		// The frontier kept from this process's last batch holds while
		// the newest checkpoint is still the one that batch wrote; after
		// another sequencer (a replica that held the lock meanwhile), a
		// restore or a failed batch it is read again.
		f := l.frontiers[tenant]
		if f == nil || f.size != size || f.root != root {
			if f, err = loadFrontier(ctx, tx, tenant, size, root); err != nil {
				return err
			}
		}
		hs := f.hashStore(ctx, tx, tenant)
		for i, p := range pending {
			if err := hs.appendLeaf(size+int64(i), p.hash); err != nil {
				return err
			}
		}
		newSize := size + int64(len(pending))
		newRoot, err := tlog.TreeHash(newSize, hs)
		if err != nil {
			return fmt.Errorf("tree hash: %w", err)
		}
		if err := hs.flush(); err != nil {
			return err
		}
		if err := insertLeaves(ctx, tx, tenant, size, pending); err != nil {
			return err
		}
		if err := l.storeCheckpoint(ctx, tx, tenant, newSize, newRoot); err != nil {
			return err
		}
		n, next = len(pending), advance(hs, newSize, newRoot)
		return nil
	})
	if err != nil {
		delete(l.frontiers, tenant)
		return 0, fmt.Errorf("sequence audit events of tenant %q: %w", tenant, err)
	}
	if next != nil {
		l.frontiers[tenant] = next
	}
	return n, nil
}

// treeHead is the size and root of the tenant's newest checkpoint (0 and
// the zero hash for a tree without one). The sequencer writes leaves and
// checkpoint together, so the size is also the number of leaves.
func treeHead(ctx context.Context, q store.Querier, tenant string) (int64, tlog.Hash, error) {
	var size int64
	var root []byte
	err := q.QueryRowContext(ctx, `SELECT size, root FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY size DESC LIMIT 1`, tenant).Scan(&size, &root)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, tlog.Hash{}, nil
	}
	if err != nil {
		return 0, tlog.Hash{}, fmt.Errorf("tree size: %w", err)
	}
	if len(root) != tlog.HashSize {
		return 0, tlog.Hash{}, fmt.Errorf("tree of tenant %q: checkpoint root of %d bytes", tenant, len(root))
	}
	return size, tlog.Hash(root), nil
}

// readPending returns the oldest pending events of a tenant in a stable
// order (by id, which starts with the time), at most sequenceBatch.
func readPending(ctx context.Context, q store.Querier, tenant string) ([]pendingEvent, error) {
	rows, err := q.QueryContext(ctx, `SELECT event_id, hash FROM audit_pending WHERE tenant_id = $1 ORDER BY event_id LIMIT $2`, tenant, sequenceBatch)
	if err != nil {
		return nil, fmt.Errorf("read pending events: %w", err)
	}
	defer rows.Close()
	var out []pendingEvent
	var unhashed []int
	for rows.Next() {
		var p pendingEvent
		var h []byte
		if err := rows.Scan(&p.id, &h); err != nil {
			return nil, fmt.Errorf("read pending events: %w", err)
		}
		switch len(h) {
		case 0:
			unhashed = append(unhashed, len(out))
		case tlog.HashSize:
			p.hash = tlog.Hash(h)
		default:
			return nil, fmt.Errorf("pending event %s: hash of %d bytes", p.id, len(h))
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read pending events: %w", err)
	}
	rows.Close()
	// Events stored before the tree existed were queued without a hash.
	for _, i := range unhashed {
		var body string
		if err := q.QueryRowContext(ctx, `SELECT body FROM audit_events WHERE id = $1`, out[i].id).Scan(&body); err != nil {
			return nil, fmt.Errorf("pending event %s: %w", out[i].id, err)
		}
		out[i].hash = tlog.RecordHash([]byte(body))
	}
	return out, nil
}

// insertLeaves gives pending events positions first, first+1, ... and takes
// them off the queue.
func insertLeaves(ctx context.Context, q store.Querier, tenant string, first int64, pending []pendingEvent) error {
	const chunk = 500 // 1,500 parameters
	for start := 0; start < len(pending); start += chunk {
		part := pending[start:min(start+chunk, len(pending))]
		args := make([]any, 0, 3*len(part))
		for i, p := range part {
			args = append(args, tenant, first+int64(start+i), p.id)
		}
		if _, err := insertChunkRows(ctx, q, len(part), chunk, store.BulkInsert(q)+` audit_leaves (tenant_id, idx, event_id) VALUES `+store.Values(q, len(part), 3), args...); err != nil {
			return fmt.Errorf("insert leaves: %w", err)
		}
	}
	// One statement takes the whole batch off the queue: each queued row in
	// the batch's id range probes the leaf index. (A statement per chunk
	// with an IN list was answered by PostgreSQL with a scan of the queue.)
	if _, err := q.ExecContext(ctx, `DELETE FROM audit_pending WHERE tenant_id = $1 AND event_id >= $2 AND event_id <= $3 AND EXISTS
		(SELECT 1 FROM audit_leaves l WHERE l.event_id = audit_pending.event_id AND l.tenant_id = $1 AND l.idx >= $4)`,
		tenant, pending[0].id, pending[len(pending)-1].id, first); err != nil {
		return fmt.Errorf("dequeue events: %w", err)
	}
	return nil
}

// storeCheckpoint signs and stores a checkpoint, and thins the tenant's
// older ones to the first of each day, so the table grows by at most one
// row per tenant per day.
func (l *Log) storeCheckpoint(ctx context.Context, q store.Querier, tenant string, size int64, root tlog.Hash) error {
	now := l.clock.Now().UTC()
	c := Checkpoint{Origin: Origin(l.signer.Name(), tenant), Size: size, Root: root, Time: now}
	msg, err := note.Sign(&note.Note{Text: c.Text()}, l.signer)
	if err != nil {
		return fmt.Errorf("sign checkpoint: %w", err)
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO audit_checkpoints (tenant_id, size, root, time, note) VALUES ($1, $2, $3, $4, $5)`,
		tenant, size, root[:], clock.Micros(now), string(msg)); err != nil {
		return fmt.Errorf("store checkpoint: %w", err)
	}
	day := clock.Micros(now.Truncate(24 * time.Hour))
	if _, err := q.ExecContext(ctx, `DELETE FROM audit_checkpoints WHERE tenant_id = $1 AND time >= $2 AND size < $3
		AND size > (SELECT MIN(c.size) FROM audit_checkpoints c WHERE c.tenant_id = $1 AND c.time >= $2)`,
		tenant, day, size); err != nil {
		return fmt.Errorf("thin checkpoints: %w", err)
	}
	return nil
}

// RunSequencer sequences every interval (DefaultSequenceInterval when 0)
// until ctx ends, then sequences once more so that a clean shutdown leaves
// every event in a signed checkpoint. Errors are logged and retried at the
// next tick; the final round's error is returned.
func (l *Log) RunSequencer(ctx context.Context, interval time.Duration) error {
	if l.signer == nil {
		return ErrNoSigner
	}
	if interval <= 0 {
		interval = DefaultSequenceInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_, err := l.Sequence(fctx)
			return err
		case <-t.C:
			if _, err := l.Sequence(ctx); err != nil && ctx.Err() == nil {
				l.logger.Error("audit sequencer", "err", err)
			}
		}
	}
}

// Lag is how long the oldest event that no signed checkpoint covers yet has
// waited, by the log's clock; zero when every event is covered. Export it as
// a metric and alarm when it exceeds a few seconds: the sequencer is then
// stopped or falling behind.
func (l *Log) Lag(ctx context.Context) (time.Duration, error) {
	var oldest sql.NullInt64
	if err := l.db.QueryRowContext(ctx, `SELECT MIN(time) FROM audit_pending`).Scan(&oldest); err != nil {
		return 0, fmt.Errorf("audit lag: %w", err)
	}
	if !oldest.Valid {
		return 0, nil
	}
	return max(l.clock.Now().Sub(clock.FromMicros(oldest.Int64)), 0), nil
}
