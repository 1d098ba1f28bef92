package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Group commit: Append hands its events to one writer goroutine, which
// stores everything that is waiting in one transaction, so one fsync makes a
// whole batch of concurrent appends durable (LOG-3 at little cost).
const (
	queueSize      = 4096        // requests waiting for the writer; appenders block beyond it
	maxBatchEvents = 4096        // events per transaction
	commitTimeout  = time.Minute // one batch's transaction
)

var errClosed = errors.New("audit log closed")

type request struct {
	ctx  context.Context
	rows []row
	done chan error // buffered: the writer never blocks on it
}

type committer struct {
	db     *store.DB
	queue  chan *request
	mu     sync.RWMutex // held shared while enqueuing, exclusively by close
	closed bool
	stop   chan struct{}
	exited chan struct{}
}

func newCommitter(db *store.DB) *committer {
	c := &committer{db: db, queue: make(chan *request, queueSize), stop: make(chan struct{}), exited: make(chan struct{})}
	go c.loop()
	return c
}

// commit queues rows and waits until they are durable, or ctx ends. When
// ctx ends first the rows may still be stored; the caller must act as if
// they were not (release nothing).
func (c *committer) commit(ctx context.Context, rows []row) error {
	r := &request{ctx: ctx, rows: rows, done: make(chan error, 1)}
	if err := c.enqueue(ctx, r); err != nil {
		return err
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *committer) enqueue(ctx context.Context, r *request) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return errClosed
	}
	select {
	case c.queue <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops new appends, stores every queued one and stops the writer.
func (c *committer) close() {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if !already {
		close(c.stop)
	}
	<-c.exited
}

func (c *committer) loop() {
	defer close(c.exited)
	for {
		select {
		case r := <-c.queue:
			c.batch(r)
		case <-c.stop:
			for {
				select {
				case r := <-c.queue:
					c.batch(r)
				default:
					return
				}
			}
		}
	}
}

// batch commits first and whatever else is waiting, up to maxBatchEvents.
func (c *committer) batch(first *request) {
	reqs := []*request{first}
	n := len(first.rows)
collect:
	for n < maxBatchEvents {
		select {
		case r := <-c.queue:
			reqs = append(reqs, r)
			n += len(r.rows)
		default:
			break collect
		}
	}
	live := reqs[:0]
	for _, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			r.done <- err // gave up waiting; store nothing for it
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	err := c.store(live)
	if err != nil && len(live) > 1 {
		// One bad request must not fail the others: retry each alone.
		for _, r := range live {
			r.done <- c.store([]*request{r})
		}
		return
	}
	for _, r := range live {
		r.done <- err
	}
}

func (c *committer) store(reqs []*request) error {
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	var rows []row
	if len(reqs) == 1 {
		rows = reqs[0].rows
	} else {
		for _, r := range reqs {
			rows = append(rows, r.rows...)
		}
	}
	pow2 := c.db.Dialect() != store.Postgres
	var err error
	if !pow2 && len(rows) <= insertChunk {
		// One statement, atomic and durable by itself (synchronous_commit
		// on): no BEGIN and COMMIT round trips.
		err = insertRows(ctx, c.db, rows, pow2)
	} else {
		err = c.db.Tx(ctx, func(tx *store.Tx) error { return insertRows(ctx, tx, rows, pow2) })
	}
	if err != nil {
		return fmt.Errorf("store %d audit events: %w", len(rows), err)
	}
	return nil
}
