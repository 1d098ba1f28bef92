package audit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// ErrUnavailable wraps every failure to make an event durable. Callers must
// treat it as "release nothing" (LOG-3).
var ErrUnavailable = errors.New("audit log unavailable")

// Log is the access log of one installation: all tenants' trees in one
// database.
type Log struct {
	db     *store.DB
	clock  clock.Clock
	rand   io.Reader
	signer note.Signer
	logger *slog.Logger

	startWriter sync.Once
	writer      *committer // group commit for Append, started on first use
	closeOnce   sync.Once
	closed      chan struct{}

	seqMu     sync.Mutex           // one sequencing batch of this Log at a time
	frontiers map[string]*frontier // per tenant, the tree's right edge after this Log's last batch; under seqMu

	views *viewCache // the persons' views of their logs (viewcache.go)
}

// Option configures a Log.
type Option func(*Log)

// WithSigner sets the key that signs checkpoints; Sequence needs it.
func WithSigner(s note.Signer) Option { return func(l *Log) { l.signer = s } }

// WithLogger sets where the sequencer reports trouble; default slog.Default.
func WithLogger(lg *slog.Logger) Option { return func(l *Log) { l.logger = lg } }

// New returns a Log on db.
func New(db *store.DB, c clock.Clock, r io.Reader, opts ...Option) *Log {
	if r == nil {
		r = rand.Reader
	}
	l := &Log{db: db, clock: c, rand: r, logger: slog.Default(), closed: make(chan struct{}), frontiers: map[string]*frontier{},
		views: newViewCache(db)}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Append stores events durably and returns them with id and time filled in.
// The source in ctx is added to events that do not name one. Either all
// events are stored or none is.
//
// Concurrent Appends are committed together (group commit): Append returns
// when the transaction holding its events has committed. When ctx ends
// first, Append returns ErrUnavailable although the events may still be
// stored; the caller must then release nothing.
func (l *Log) Append(ctx context.Context, events ...Event) ([]Event, error) {
	rows, err := l.prepare(ctx, events)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return events, nil
	}
	select {
	case <-l.closed:
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, errClosed)
	default:
	}
	l.startWriter.Do(func() { l.writer = newCommitter(l.db) })
	if err := l.writer.commit(ctx, rows); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return events, nil
}

// AppendIn stores events inside the caller's transaction, so an event and
// the change it records commit together or not at all. The caller's commit
// is what makes them durable.
func (l *Log) AppendIn(ctx context.Context, q store.Querier, events ...Event) ([]Event, error) {
	rows, err := l.prepare(ctx, events)
	if err != nil {
		return nil, err
	}
	// The usual AppendIn is one event, one prepared shape on either engine.
	if err := insertRows(ctx, q, rows, true); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return events, nil
}

// row is an event ready to store: its canonical body and leaf hash.
type row struct {
	ev   *Event
	body []byte
	hash tlog.Hash
}

// prepare fills in id, time, kind and source of events (in place) and
// encodes them. The hashing happens here, in the caller's goroutine, so
// that concurrent appenders spread it over the cores.
func (l *Log) prepare(ctx context.Context, events []Event) ([]row, error) {
	now := l.clock.Now()
	src := SourceFrom(ctx)
	rows := make([]row, len(events))
	for i := range events {
		e := &events[i]
		if e.Time.IsZero() {
			e.Time = now
		}
		e.Time = e.Time.UTC().Truncate(time.Microsecond)
		if e.ID == "" {
			id, err := newID(e.Time, l.rand)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
			}
			e.ID = id
		}
		if e.Kind == "" {
			e.Kind = KindOf(e.Action)
		}
		fillSource(e, src)
		body, err := e.Canonical()
		if err != nil {
			return nil, fmt.Errorf("%w: encode event: %v", ErrUnavailable, err)
		}
		rows[i] = row{ev: e, body: body, hash: tlog.RecordHash(body)}
	}
	return rows, nil
}

func fillSource(e *Event, s Source) {
	if e.SourceAddr == "" {
		e.SourceAddr = s.Addr
	}
	if e.SourceApp == "" {
		e.SourceApp = s.App
	}
	if e.Device == "" {
		e.Device = s.Device
	}
	if e.TraceID == "" {
		e.TraceID = s.TraceID
	}
	if e.SessionID == "" {
		e.SessionID = s.SessionID
	}
}

// insertChunk rows at most go into one INSERT statement: enough to amortise
// the statement, few enough that the SQLite driver's per-parameter lookup
// (which grows with the parameter count) stays cheap.
const insertChunk = 32

// chunkSize is how many of n rows the next INSERT takes. With pow2, the
// largest power of two up to insertChunk: a group commit's size varies with
// the load, and on SQLite an INSERT of each size would either be parsed anew
// every time (a third of a batch's CPU, since the store prepares only what
// it is asked to) or fill the statement cache; in powers of two there are
// six shapes per table, each prepared once, and a batch of n rows takes at
// most log2(n)+1 statements. Without pow2 (PostgreSQL, whose driver
// prepares and keeps every text it sees, so each of the 32 sizes is
// prepared once per connection), as many as fit: every statement is a
// round trip there.
func chunkSize(n int, pow2 bool) int {
	if !pow2 {
		return min(n, insertChunk)
	}
	c := insertChunk
	for c > n {
		c /= 2
	}
	return c
}

// insertRows stores events and queues them for the sequencer, in q's
// transaction, in INSERTs of chunkSize(pow2) rows. On PostgreSQL each
// chunk is one statement (the queue's INSERT in a WITH of the events'),
// so that a group commit of one chunk needs no transaction of its own:
// one round trip instead of four (see committer.store).
func insertRows(ctx context.Context, q store.Querier, rows []row, pow2 bool) error {
	pg := store.DialectOf(q) == store.Postgres
	args := make([]any, 0, 15*min(len(rows), insertChunk))
	for start := 0; start < len(rows); {
		n := chunkSize(len(rows)-start, pow2)
		chunk := rows[start : start+n]
		start += n
		args = args[:0]
		for _, r := range chunk {
			e := r.ev
			args = append(args, e.ID, e.TenantID, clock.Micros(e.Time), string(e.Action), string(e.Outcome),
				e.UserID, e.PatientID, e.Emergency, string(e.Kind), string(r.body))
		}
		events := ` audit_events (id, tenant_id, time, action, outcome, user_id, patient_id, emergency, kind, body) VALUES ` + store.Values(q, n, 10)
		if !pg {
			if _, err := q.Stmt(store.BulkInsert(q)+events).ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("insert audit events: %w", err)
			}
			args = args[:0]
		}
		for _, r := range chunk {
			args = append(args, r.ev.TenantID, r.ev.ID, clock.Micros(r.ev.Time), r.hash[:], r.ev.PatientID)
		}
		first := 1
		if pg {
			first = 10*n + 1
		}
		queue := ` audit_pending (tenant_id, event_id, time, hash, patient_id, writer_txn) VALUES ` +
			store.ValuesFrom(q, first, n, 5, store.WriterID(q))
		query := store.BulkInsert(q) + queue
		if pg {
			query = `WITH e AS (INSERT INTO` + events + `) INSERT INTO` + queue
		}
		if _, err := q.Stmt(query).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("queue audit events: %w", err)
		}
	}
	return nil
}

// insertChunkRows runs an insert of n rows, as a prepared statement for the
// two sizes that recur (one row, the usual append, and a full chunk of
// full rows); other sizes would only crowd the statement cache.
func insertChunkRows(ctx context.Context, q store.Querier, n, full int, query string, args ...any) (sql.Result, error) {
	if n == 1 || n == full {
		return q.Stmt(query).ExecContext(ctx, args...)
	}
	return q.ExecContext(ctx, query, args...)
}

// Filter selects events for Query. Empty fields match everything.
type Filter struct {
	TenantID  string
	PatientID string
	UserID    string
	Action    Action
	Limit     int
}

// Query returns matching events, newest first: at most Limit (default
// 1000). It reads without a Permit and logs nothing, so it is not for
// request handlers (they read through Read): it serves the access
// package's own counts of its operator requests and other packages' tests.
func (l *Log) Query(ctx context.Context, f Filter) ([]Event, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	var out []Event
	_, err := l.each(ctx, Search{TenantID: f.TenantID, PatientID: f.PatientID, UserID: f.UserID, Action: f.Action}, limit,
		func(e Event) error { out = append(out, e); return nil })
	if err != nil {
		return nil, fmt.Errorf("query audit events: %w", err)
	}
	return out, nil
}

// Close stores every Append in progress, then stops the group-commit
// writer. Appends after Close fail with ErrUnavailable. It does not close
// the database; call it before closing that, and sequence once more after it
// (RunSequencer does) so that the last events get a checkpoint.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		l.startWriter.Do(func() {}) // no writer may start after this
		if l.writer != nil {
			l.writer.close()
		}
	})
	return nil
}
