package alert

import (
	"context"
	"encoding/base32"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Entry is one security event in the queue (LOG-9): an attack on log-on, a
// cloned security key, emergency access, a privilege change, an operator
// request. Detail is free text and may describe a patient (an emergency
// reason) or name what someone typed (a user name); it stays in the queue
// and is never sent out.
type Entry struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"tenant_id"` // "": the operators' queue
	Kind      string    `json:"kind"`
	AccountID string    `json:"account_id"`           // who acted, or whose log-on was attacked
	SubjectID string    `json:"subject_id,omitempty"` // patient or account concerned
	Source    string    `json:"source,omitempty"`     // source address of a log-on attack
	Ref       string    `json:"ref,omitempty"`        // the emergency, request or right
	Detail    string    `json:"detail,omitempty"`
	Time      time.Time `json:"time"`
}

// MaxList is the most entries List returns at once.
const MaxList = 1000

// Queue is the one security-event queue: one table, read per tenant. An
// event belongs to the tenant it concerns (the patient's, the account's);
// one that concerns no tenant, such as a burst of log-ons for an unknown
// user name, belongs to the operators' queue, tenant "".
type Queue struct {
	db    *store.DB
	clock clock.Clock
	rand  io.Reader
	sink  Sink // nil: stored only
}

// NewQueue returns the queue in db. Raised events are also sent to sink (a
// log line, a webhook) when it is not nil; ids come from random.
func NewQueue(db *store.DB, c clock.Clock, random io.Reader, sink Sink) *Queue {
	return &Queue{db: db, clock: c, rand: random, sink: sink}
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Raise stores e through q (the caller's transaction, so that the event is
// kept exactly when what it reports is) and then sends it out. It fills in
// the id and the time and returns the stored entry.
func (s *Queue) Raise(ctx context.Context, q store.Querier, e Entry) (Entry, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return Entry{}, fmt.Errorf("security event: new id: %w", err)
	}
	e.ID = "se-" + strings.ToLower(idEncoding.EncodeToString(b[:]))
	e.Time = s.clock.Now()
	if _, err := q.ExecContext(ctx, `INSERT INTO alert_security_events (id, tenant_id, kind, account_id, subject_id, source, ref, detail, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, e.ID, e.TenantID, e.Kind, e.AccountID, e.SubjectID, e.Source, e.Ref, e.Detail, clock.Micros(e.Time)); err != nil {
		return Entry{}, fmt.Errorf("security event: %w", err)
	}
	// Sent when the row is written; should the surrounding transaction
	// still fail, the alert is for an event the queue does not keep (rare,
	// and on the safe side for a notification). Detail holds what people
	// typed (an emergency reason may describe the patient's condition), so
	// it stays in the queue; the alert names the queue row.
	if s.sink != nil {
		s.sink.Alert(ctx, Event{Time: e.Time, TenantID: e.TenantID, Kind: e.Kind, AccountID: e.AccountID,
			Subject: e.SubjectID, Source: e.Source, Ref: e.ID})
	}
	return e, nil
}

// List returns one tenant's queue ("" for the operators') since a time,
// newest first, at most limit entries (MaxList when limit is not in
// 1..MaxList). Whether the caller may read it is the caller's decision.
func (s *Queue) List(ctx context.Context, tenantID string, since time.Time, limit int) ([]Entry, error) {
	if limit <= 0 || limit > MaxList {
		limit = MaxList
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, tenant_id, kind, account_id, subject_id, source, ref, detail, created_at
		FROM alert_security_events WHERE tenant_id = $1 AND created_at >= $2 ORDER BY created_at DESC, id LIMIT $3`,
		tenantID, clock.Micros(since), limit)
	if err != nil {
		return nil, fmt.Errorf("security events: %w", err)
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var e Entry
		var at int64
		if err := rows.Scan(&e.ID, &e.TenantID, &e.Kind, &e.AccountID, &e.SubjectID, &e.Source, &e.Ref, &e.Detail, &at); err != nil {
			return nil, fmt.Errorf("security events: %w", err)
		}
		e.Time = clock.FromMicros(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("security events: %w", err)
	}
	return out, nil
}
