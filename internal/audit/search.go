package audit

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
)

// searchIDRE is what a patient or user id in a search may look like (the
// FHIR id form): bounded, so nothing else reaches a query or a log line.
var searchIDRE = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// ValidSearchID reports whether s may be used as a patient or user id in a
// Search.
func ValidSearchID(s string) bool { return searchIDRE.MatchString(s) }

// MaxPage is the largest page one query returns; larger sets are read page
// by page (Read with a larger Limit, or the next part after Next).
const MaxPage = 1000

// Search selects events for Read: log inspection (LOG-5) and the
// patient's view (LOG-4). Empty fields match everything; the tenant always
// applies.
type Search struct {
	TenantID  string
	PatientID string
	UserID    string
	Action    Action
	Kind      Kind
	Outcome   Outcome   // "" is any outcome
	From, To  time.Time // From inclusive, To exclusive; zero is unbounded
	Emergency *bool
	// Roles selects events by the role the user acted in (any of them):
	// the admin-log review (LOG-7) reads the admins' and operators' events
	// without releasing everyone's.
	Roles []string
	// Oldest orders the events oldest first (exports); the default is
	// newest first (inspection pages).
	Oldest bool
	After  Cursor // continue after this event, in the chosen order
	Until  Cursor // stop at this event (inclusive), in the chosen order
	Limit  int    // a page: 1..MaxPage, 0 means MaxPage; in Read: the most events released
}

// Cursor marks an event's place in the (time, id) order of the log; it is
// what paging continues from. Its String form is opaque to clients.
type Cursor struct {
	Time time.Time
	ID   string
}

// IsZero reports whether c marks no event.
func (c Cursor) IsZero() bool { return c.ID == "" }

// String is the cursor as a URL-safe token.
func (c Cursor) String() string {
	if c.IsZero() {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(clock.Micros(c.Time), 10) + "." + c.ID))
}

var eventIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// ErrBadCursor is returned by ParseCursor for a token it did not make.
var ErrBadCursor = errors.New("invalid paging cursor")

// ParseCursor reads a token made by Cursor.String.
func ParseCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) > 64 {
		return Cursor{}, ErrBadCursor
	}
	us, id, ok := strings.Cut(string(b), ".")
	if !ok || !eventIDRE.MatchString(id) {
		return Cursor{}, ErrBadCursor
	}
	n, err := strconv.ParseInt(us, 10, 64)
	if err != nil || n < 0 {
		return Cursor{}, ErrBadCursor
	}
	return Cursor{Time: clock.FromMicros(n), ID: id}, nil
}

// CursorOf returns the place of e in the log order.
func CursorOf(e Event) Cursor { return Cursor{Time: e.Time, ID: e.ID} }

// where builds the WHERE clause of q (without paging bounds) and its
// arguments, numbered from $1.
func (q Search) where() (string, []any) {
	var b strings.Builder
	args := []any{q.TenantID}
	b.WriteString("tenant_id = $1")
	add := func(cond string, v any) {
		args = append(args, v)
		fmt.Fprintf(&b, " AND "+cond, len(args))
	}
	if q.PatientID != "" {
		add("patient_id = $%d", q.PatientID)
	}
	if q.UserID != "" {
		add("user_id = $%d", q.UserID)
	}
	if q.Action != "" {
		add("action = $%d", string(q.Action))
	}
	if q.Kind != "" {
		add("kind = $%d", string(q.Kind))
	}
	if q.Outcome != "" {
		add("outcome = $%d", string(q.Outcome))
	}
	if !q.From.IsZero() {
		add("time >= $%d", clock.Micros(q.From))
	}
	if !q.To.IsZero() {
		add("time < $%d", clock.Micros(q.To))
	}
	if q.Emergency != nil {
		add("emergency = $%d", *q.Emergency)
	}
	if len(q.Roles) > 0 {
		// The role is no column: it is matched in the canonical body, where
		// it appears exactly as "role":"<role>" (a quote inside a string
		// value is escaped, so no other field can imitate it).
		b.WriteString(" AND (")
		for i, r := range q.Roles {
			if i > 0 {
				b.WriteString(" OR ")
			}
			args = append(args, `%"role":"`+r+`"%`)
			fmt.Fprintf(&b, "body LIKE $%d", len(args))
		}
		b.WriteString(")")
	}
	return b.String(), args
}

// bound adds "(time, id) beyond c" to a clause: strictly after c in the
// order when after is true, at or before c otherwise.
func bound(cond string, args []any, c Cursor, oldest, after bool) (string, []any) {
	t, id := len(args)+1, len(args)+2
	args = append(args, clock.Micros(c.Time), c.ID)
	op := "<"
	if oldest == after {
		op = ">"
	}
	if after {
		return cond + fmt.Sprintf(" AND (time %s $%d OR (time = $%d AND id %s $%d))", op, t, t, op, id), args
	}
	return cond + fmt.Sprintf(" AND (time %s $%d OR (time = $%d AND id %s= $%d))", op, t, t, op, id), args
}

func (q Search) sql(columns string, limit, offset int) (string, []any) {
	cond, args := q.where()
	if !q.After.IsZero() {
		cond, args = bound(cond, args, q.After, q.Oldest, true)
	}
	if !q.Until.IsZero() {
		cond, args = bound(cond, args, q.Until, q.Oldest, false)
	}
	order := "time DESC, id DESC"
	if q.Oldest {
		order = "time, id"
	}
	s := "SELECT " + columns + " FROM audit_events WHERE " + cond + " ORDER BY " + order + " LIMIT " + strconv.Itoa(limit)
	if offset > 0 {
		s += " OFFSET " + strconv.Itoa(offset)
	}
	return s, args
}

func (q Search) limit() int {
	if q.Limit <= 0 || q.Limit > MaxPage {
		return MaxPage
	}
	return q.Limit
}

// search returns one page of matching events and the cursor of the next
// page, which is zero when there is none.
func (l *Log) search(ctx context.Context, q Search) ([]Event, Cursor, error) {
	n := q.limit()
	s, args := q.sql("body", n+1, 0)
	rows, err := l.db.QueryContext(ctx, s, args...)
	if err != nil {
		return nil, Cursor{}, fmt.Errorf("search audit events: %w", err)
	}
	defer rows.Close()
	out := make([]Event, 0, min(n, 100))
	more := false
	for rows.Next() {
		if len(out) == n {
			more = true
			break
		}
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, Cursor{}, fmt.Errorf("scan audit event: %w", err)
		}
		e, err := decode(body)
		if err != nil {
			return nil, Cursor{}, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, Cursor{}, fmt.Errorf("search audit events: %w", err)
	}
	var next Cursor
	if more {
		next = CursorOf(out[len(out)-1])
	}
	return out, next, nil
}

// boundary returns the cursor of the n-th matching event (n ≥ 1) and
// whether more events follow it; an export of at most n events bounds
// itself with Until = that cursor, and offers the cursor as its next page.
// When fewer than n events match, the cursor is zero.
func (l *Log) boundary(ctx context.Context, q Search, n int) (Cursor, bool, error) {
	if n < 1 {
		return Cursor{}, false, fmt.Errorf("audit boundary: n = %d", n)
	}
	s, args := q.sql("time, id", 2, n-1)
	rows, err := l.db.QueryContext(ctx, s, args...)
	if err != nil {
		return Cursor{}, false, fmt.Errorf("audit boundary: %w", err)
	}
	defer rows.Close()
	var cs []Cursor
	for rows.Next() {
		var us int64
		var id string
		if err := rows.Scan(&us, &id); err != nil {
			return Cursor{}, false, fmt.Errorf("audit boundary: %w", err)
		}
		cs = append(cs, Cursor{Time: clock.FromMicros(us), ID: id})
	}
	if err := rows.Err(); err != nil {
		return Cursor{}, false, fmt.Errorf("audit boundary: %w", err)
	}
	if len(cs) < 2 {
		return Cursor{}, false, nil
	}
	return cs[0], true, nil
}

// each calls fn for every matching event, in pages, up to max events (max
// ≤ 0: no limit beyond q's bounds). It stops at the first error of fn.
// Pages are separate queries, so a long export holds no transaction open.
func (l *Log) each(ctx context.Context, q Search, max int, fn func(Event) error) (int, error) {
	n := 0
	for {
		if max > 0 {
			q.Limit = min(MaxPage, max-n)
		} else {
			q.Limit = MaxPage
		}
		evs, next, err := l.search(ctx, q)
		if err != nil {
			return n, err
		}
		for _, e := range evs {
			if err := fn(e); err != nil {
				return n, err
			}
			n++
		}
		if next.IsZero() || (max > 0 && n >= max) {
			return n, nil
		}
		q.After = next
	}
}
