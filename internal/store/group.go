package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Group commit of write transactions. SQLite has one writer and a commit
// is an fsync, so concurrent small write transactions (a resource and its
// audit event each) queue behind each other's commits, and the cores wait.
// GroupTx hands fn to one writer goroutine per DB, which runs everything
// waiting in one transaction, each fn in a savepoint of its own, and commits
// once: every fn is still all or nothing, one fn's error undoes only its own
// savepoint, and every caller returns only after the shared commit (or with
// its failure). On PostgreSQL, where writers run side by side and the
// server already groups the flushes of concurrent commits, GroupTx is Tx.

const (
	maxGroup     = 32          // transactions per shared commit
	groupTimeout = time.Minute // one shared transaction, from its begin to its commit
)

var errGroupClosed = errors.New("store: database closed")

type groupReq struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx *Tx) error
	done chan error // buffered: the writer never blocks on it
}

type grouper struct {
	mu    sync.RWMutex // held shared while enqueuing, exclusively to start and stop
	queue chan *groupReq
	quit  chan struct{}
	ended chan struct{}
	stop  bool
}

// GroupTx runs fn in a transaction, shared on SQLite with the other
// GroupTx calls waiting at the same time (see above). fn gets a context
// with ctx's values but not its cancellation: once its turn has come, fn
// runs to the end, and GroupTx waits for the commit even when ctx ends
// meanwhile, so that what it returns is what happened. fn must not take
// transaction locks (Tx.Lock), which would hold for the whole group.
func (db *DB) GroupTx(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) error {
	if db.writeMu == nil {
		return db.Tx(ctx, func(tx *Tx) error { return fn(ctx, tx) })
	}
	g := &db.group
	g.start(db)
	r := &groupReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	g.mu.RLock()
	if g.stop {
		g.mu.RUnlock()
		return errGroupClosed
	}
	select {
	case g.queue <- r:
	case <-ctx.Done():
		g.mu.RUnlock()
		return ctx.Err()
	}
	g.mu.RUnlock()
	return <-r.done
}

// start starts the writer on first use (never after close).
func (g *grouper) start(db *DB) {
	g.mu.RLock()
	running := g.queue != nil || g.stop
	g.mu.RUnlock()
	if running {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.queue != nil || g.stop {
		return
	}
	g.queue, g.quit, g.ended = make(chan *groupReq, 1024), make(chan struct{}), make(chan struct{})
	go g.loop(db)
}

// close stops the writer after what is queued; later GroupTx calls fail.
func (g *grouper) close() {
	g.mu.Lock()
	started := g.queue != nil
	already := g.stop
	g.stop = true
	g.mu.Unlock()
	if started && !already {
		close(g.quit)
		<-g.ended
	}
}

func (g *grouper) loop(db *DB) {
	defer close(g.ended)
	for {
		select {
		case r := <-g.queue:
			g.run(db, r)
		case <-g.quit:
			for {
				select {
				case r := <-g.queue:
					g.run(db, r)
				default:
					return
				}
			}
		}
	}
}

// run commits first and whatever else is waiting, up to maxGroup.
func (g *grouper) run(db *DB, first *groupReq) {
	reqs := []*groupReq{first}
collect:
	for len(reqs) < maxGroup {
		select {
		case r := <-g.queue:
			reqs = append(reqs, r)
		default:
			break collect
		}
	}
	live := reqs[:0]
	for _, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			r.done <- err // gave up before its turn: nothing of it ran
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	errs, err := commitGroup(db, live)
	if err != nil && len(live) > 1 {
		// The shared transaction failed (its commit, or a savepoint
		// statement): nothing of it is stored, so each runs again alone.
		for _, r := range live {
			errs, _ := commitGroup(db, []*groupReq{r})
			r.done <- errs[0]
		}
		return
	}
	for i, r := range live {
		if err != nil {
			r.done <- err
		} else {
			r.done <- errs[i]
		}
	}
}

// commitGroup runs reqs in one transaction, each in a savepoint when there
// are several, and returns each one's error and the transaction's.
func commitGroup(db *DB, reqs []*groupReq) ([]error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	errs := make([]error, len(reqs))
	err := db.Tx(ctx, func(tx *Tx) error {
		if len(reqs) == 1 {
			return call(ctx, reqs[0], tx)
		}
		for i, r := range reqs {
			if _, err := tx.tx.ExecContext(ctx, `SAVEPOINT zk_group`); err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
			if errs[i] = call(ctx, r, tx); errs[i] != nil {
				if _, err := tx.tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT zk_group`); err != nil {
					return fmt.Errorf("roll back to savepoint: %w", err)
				}
			}
			if _, err := tx.tx.ExecContext(ctx, `RELEASE SAVEPOINT zk_group`); err != nil {
				return fmt.Errorf("release savepoint: %w", err)
			}
		}
		return nil
	})
	if len(reqs) == 1 && err != nil {
		return []error{err}, nil // fn's own error, or its commit's: either way it is that caller's
	}
	return errs, err
}

// call runs r's fn in tx; a panic in it is r's error, not the end of the
// writer (and of every other caller's transaction with it).
func call(ctx context.Context, r *groupReq, tx *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: group transaction panicked: %v", p)
		}
	}()
	return r.fn(detach(ctx, r.ctx), tx)
}

// detach returns a context with the values of caller (the audit source,
// say) and the deadline and cancellation of the group's transaction.
func detach(group, caller context.Context) context.Context {
	return detached{Context: group, values: caller}
}

type detached struct {
	context.Context // the group's: Deadline, Done, Err
	values          context.Context
}

func (d detached) Value(key any) any { return d.values.Value(key) }
