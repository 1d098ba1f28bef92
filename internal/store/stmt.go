package store

import (
	"context"
	"database/sql"
	"sync"
)

// maxStmts bounds the statement cache. Only constant query texts belong in
// it, so the set is small; beyond the bound a query simply runs unprepared.
const maxStmts = 256

// Stmt is a query run as a prepared statement: prepared once per DB, on
// first use, and kept until the DB closes. Use it for the constant queries
// that run on every request (a session, account or key lookup, an access
// decision, a record read); a query built with a varying number of
// parameters (InList, Values) does not belong here. Where the driver keeps
// prepared statements itself (pgx on PostgreSQL) and whenever preparing
// fails or the cache is full, Stmt runs the query as DB, Tx and Snapshot
// do, so errors surface exactly as they would there.
type Stmt struct {
	db    *DB
	tx    *sql.Tx // nil outside a transaction
	t     *Tx     // the transaction tx belongs to, when it is a write transaction
	query string  // as written, with $N placeholders
}

// Stmt returns query as a prepared statement on db.
func (db *DB) Stmt(query string) Stmt { return Stmt{db: db, query: query} }

// Stmt returns query as a prepared statement in the transaction.
func (t *Tx) Stmt(query string) Stmt { return Stmt{db: t.db, tx: t.tx, t: t, query: query} }

// Stmt returns query as a prepared statement in the snapshot.
func (s *Snapshot) Stmt(query string) Stmt { return Stmt{db: s.db, tx: s.tx, query: query} }

func (s Stmt) ExecContext(ctx context.Context, args ...any) (sql.Result, error) {
	if ws := s.db.watches.of(s.query); ws != nil {
		if s.t == nil && s.tx == nil {
			// As DB.ExecContext: the write and its version bump in one
			// transaction.
			var res sql.Result
			err := s.db.Tx(ctx, func(tx *Tx) error {
				var err error
				res, err = tx.Stmt(s.query).ExecContext(ctx, args...)
				return err
			})
			return res, err
		}
		if s.t != nil {
			s.t.touch(ws)
		}
	}
	if s.tx == nil && s.db.writeMu != nil && isWrite(s.query) {
		s.db.writeMu.Lock()
		defer s.db.writeMu.Unlock()
	}
	if st := s.prepared(ctx); st != nil {
		return st.ExecContext(ctx, args...)
	}
	if s.tx != nil {
		return s.tx.ExecContext(ctx, s.db.d.rebind(s.query), args...)
	}
	return s.db.sql.ExecContext(ctx, s.db.d.rebind(s.query), args...)
}

func (s Stmt) QueryContext(ctx context.Context, args ...any) (*sql.Rows, error) {
	if st := s.prepared(ctx); st != nil {
		return st.QueryContext(ctx, args...)
	}
	if s.tx != nil {
		return s.tx.QueryContext(ctx, s.db.d.rebind(s.query), args...)
	}
	return s.db.sql.QueryContext(ctx, s.db.d.rebind(s.query), args...)
}

func (s Stmt) QueryRowContext(ctx context.Context, args ...any) *sql.Row {
	if st := s.prepared(ctx); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	if s.tx != nil {
		return s.tx.QueryRowContext(ctx, s.db.d.rebind(s.query), args...)
	}
	return s.db.sql.QueryRowContext(ctx, s.db.d.rebind(s.query), args...)
}

// prepared returns the cached statement, bound to the transaction if there
// is one, or nil to run the query unprepared.
func (s Stmt) prepared(ctx context.Context) *sql.Stmt {
	c := s.db.stmts
	if c == nil {
		return nil
	}
	st, prepare := c.lookup(s.query)
	if st != nil {
		if s.tx != nil {
			// Prepared on the transaction's connection once, then reused;
			// the handle returned ends with the transaction.
			return s.tx.StmtContext(ctx, st)
		}
		return st
	}
	if !prepare {
		return nil
	}
	if s.tx != nil {
		// Preparing on the DB takes a second connection while the
		// transaction holds one; waiting for it could deadlock a full
		// pool. Prepare beside it instead and run this one unprepared.
		go c.prepare(context.Background(), s.db, s.query)
		return nil
	}
	return c.prepare(ctx, s.db, s.query)
}

// stmtCache maps query text to its statement, prepared lazily.
type stmtCache struct {
	mu        sync.Mutex
	stmts     map[string]*sql.Stmt
	preparing map[string]bool // being prepared now: others run unprepared meanwhile
	closed    bool
}

func newStmtCache() *stmtCache {
	return &stmtCache{stmts: map[string]*sql.Stmt{}, preparing: map[string]bool{}}
}

// lookup returns query's statement, or whether the caller should prepare
// it: the cache is open, has room and nobody else is preparing it.
func (c *stmtCache) lookup(query string) (*sql.Stmt, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.stmts[query]; st != nil {
		return st, false
	}
	if c.closed || c.preparing[query] || len(c.stmts)+len(c.preparing) >= maxStmts {
		return nil, false
	}
	c.preparing[query] = true
	return nil, true
}

// prepare prepares query on db and keeps it. A failure is not kept: the
// query then runs unprepared and reports its own error, and the next use
// tries again.
func (c *stmtCache) prepare(ctx context.Context, db *DB, query string) *sql.Stmt {
	st, err := db.sql.PrepareContext(ctx, db.d.rebind(query))
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.preparing, query)
	if err != nil {
		return nil
	}
	if c.closed {
		st.Close()
		return nil
	}
	c.stmts[query] = st
	return st
}

// close closes every statement; later ones are not kept.
func (c *stmtCache) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for q, st := range c.stmts {
		st.Close()
		delete(c.stmts, q)
	}
}

// cached reports how many statements the cache holds (tests).
func (c *stmtCache) cached() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.stmts)
}
