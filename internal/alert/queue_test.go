package alert

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// memSink keeps the alerts it was sent.
type memSink struct {
	mu  sync.Mutex
	got []Event
}

func (m *memSink) Alert(_ context.Context, e Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, e)
}

// REQ: LOG-9
// One queue, read per tenant: an event is listed for its own tenant only
// (the operators' queue is tenant ""), newest first, from a time on and up
// to a limit; an event raised in a transaction that rolls back is not kept.
// Each raised event is also sent out, naming its queue row, without the
// typed detail.
func TestQueueRaiseAndList(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := clock.NewFake(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
		sink := &memSink{}
		q := NewQueue(db, c, rand.Reader, sink)
		t0 := c.Now()

		var em Entry
		if err := db.Tx(ctx, func(tx *store.Tx) error {
			var err error
			em, err = q.Raise(ctx, tx, Entry{TenantID: "tA", Kind: "emergency-access", AccountID: "doc", SubjectID: "p1", Ref: "em-1",
				Detail: "bewusteloos binnengebracht"})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Minute)
		attack, err := q.Raise(ctx, db, Entry{TenantID: "tA", Kind: "account-attack", AccountID: "acc", Source: "198.51.100.7", Detail: "10 failed log-ons"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := q.Raise(ctx, db, Entry{TenantID: "tB", Kind: "right-requested", AccountID: "adm"}); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Raise(ctx, db, Entry{Kind: "source-attack", Source: "203.0.113.9"}); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		if err := db.Tx(ctx, func(tx *store.Tx) error {
			if _, err := q.Raise(ctx, tx, Entry{TenantID: "tA", Kind: "rolled-back", AccountID: "x"}); err != nil {
				return err
			}
			return boom
		}); !errors.Is(err, boom) {
			t.Fatal(err)
		}

		got, err := q.List(ctx, "tA", t0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != attack.ID || got[1].ID != em.ID {
			t.Fatalf("tenant A's queue, newest first: %+v", got)
		}
		if e := got[1]; e.TenantID != "tA" || e.Kind != "emergency-access" || e.AccountID != "doc" || e.SubjectID != "p1" || e.Ref != "em-1" ||
			e.Detail != "bewusteloos binnengebracht" || !e.Time.Equal(t0) {
			t.Errorf("stored emergency %+v", e)
		}
		if e := got[0]; e.Source != "198.51.100.7" || e.Detail != "10 failed log-ons" || !e.Time.Equal(t0.Add(time.Minute)) {
			t.Errorf("stored attack %+v", e)
		}
		if got, _ := q.List(ctx, "tA", t0.Add(time.Second), 0); len(got) != 1 || got[0].ID != attack.ID {
			t.Errorf("since: %+v", got)
		}
		if got, _ := q.List(ctx, "tA", t0, 1); len(got) != 1 || got[0].ID != attack.ID {
			t.Errorf("limit 1: %+v", got)
		}
		if got, _ := q.List(ctx, "tB", t0, 0); len(got) != 1 || got[0].Kind != "right-requested" {
			t.Errorf("tenant B's queue: %+v", got)
		}
		if got, _ := q.List(ctx, "", t0, 0); len(got) != 1 || got[0].Kind != "source-attack" {
			t.Errorf("operators' queue: %+v", got)
		}
		if got, _ := q.List(ctx, "tC", t0, 0); got == nil || len(got) != 0 {
			t.Errorf("an empty queue is an empty list: %#v", got)
		}

		sink.mu.Lock()
		defer sink.mu.Unlock()
		if len(sink.got) != 5 { // the rolled-back one was sent too: a notification errs on the safe side
			t.Fatalf("alerts %+v", sink.got)
		}
		a := sink.got[0]
		if a.Ref != em.ID || a.TenantID != "tA" || a.Kind != "emergency-access" || a.AccountID != "doc" || a.Subject != "p1" ||
			a.Detail != "" || !a.Time.Equal(t0) {
			t.Errorf("alert of the emergency %+v: it must name the queue row and carry no detail", a)
		}
		if a := sink.got[1]; a.Source != "198.51.100.7" || a.Detail != "" || a.Ref != attack.ID {
			t.Errorf("alert of the attack %+v", a)
		}
	})
}

// REQ: LOG-9
// Migration 00600 moves the rows of access's and authn's former queues into
// the one queue: access's events keep their tenant, authn's get their
// account's tenant (the operators' queue for an unknown name or an account
// without a tenant), the typed user name moves into the detail, and the old
// tables go. Down puts the rows back where they were.
func TestMigrationMergesOldQueues(t *testing.T) {
	for _, engine := range []struct {
		name    string
		url     func(t *testing.T) string
		dialect goose.Dialect
	}{
		{"sqlite", func(t *testing.T) string { return t.TempDir() + "/zk.db" }, goose.DialectSQLite3},
		{"postgres", func(t *testing.T) string { return storetest.PostgresURL(t) }, goose.DialectPostgres},
	} {
		t.Run(engine.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, engine.url(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			p, err := goose.NewProvider(engine.dialect, db.SQL(), os.DirFS("../store/migrations"), goose.WithDisableGlobalRegistry(true))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.UpTo(ctx, 599); err != nil {
				t.Fatal(err)
			}
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := db.ExecContext(ctx, q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			exec(`INSERT INTO tenants (id, name, created_at) VALUES ('tA', 'Praktijk A', 1), ('tB', 'Ziekenhuis B', 1)`)
			exec(`INSERT INTO accounts (id, tenant_id, kind, username, display_name, created_at) VALUES
				('accA', 'tA', 'professional', 'j.smit', 'J. Smit', 1), ('op', NULL, 'operator', 'op.one', 'Op', 1)`)
			exec(`INSERT INTO access_security_events (id, tenant_id, kind, account_id, subject_id, ref, detail, created_at)
				VALUES ('se-em', 'tA', 'emergency-access', 'doc', 'p1', 'em-1', 'until later: collapsed', 100)`)
			exec(`INSERT INTO auth_security_events (id, kind, account_id, username, source, detail, created_at) VALUES
				('a1', 'account-attack', 'accA', 'j.smit', '198.51.100.7', '10 failed log-ons', 200),
				('a2', 'source-attack', NULL, 'nobody', '203.0.113.9', '50 failed log-ons', 300),
				('a3', 'privilege-mix', 'op', 'op.one', '::1', 'mixed roles', 400)`)
			if _, err := p.UpTo(ctx, 600); err != nil { // this migration alone: later ones stay above it
				t.Fatal(err)
			}

			q := NewQueue(db, clock.NewFake(time.Unix(0, 0)), rand.Reader, nil)
			list := func(tenant string) []Entry {
				t.Helper()
				got, err := q.List(ctx, tenant, time.Time{}, 0)
				if err != nil {
					t.Fatal(err)
				}
				return got
			}
			a := list("tA")
			want := []Entry{
				{ID: "a1", TenantID: "tA", Kind: "account-attack", AccountID: "accA", Source: "198.51.100.7", Detail: "10 failed log-ons (user name j.smit)", Time: clock.FromMicros(200)},
				{ID: "se-em", TenantID: "tA", Kind: "emergency-access", AccountID: "doc", SubjectID: "p1", Ref: "em-1", Detail: "until later: collapsed", Time: clock.FromMicros(100)},
			}
			if !slices.Equal(a, want) {
				t.Errorf("tenant A's queue after the migration:\n got %+v\nwant %+v", a, want)
			}
			ops := list("")
			want = []Entry{
				{ID: "a3", Kind: "privilege-mix", AccountID: "op", Source: "::1", Detail: "mixed roles (user name op.one)", Time: clock.FromMicros(400)},
				{ID: "a2", Kind: "source-attack", Source: "203.0.113.9", Detail: "50 failed log-ons (user name nobody)", Time: clock.FromMicros(300)},
			}
			if !slices.Equal(ops, want) {
				t.Errorf("operators' queue after the migration:\n got %+v\nwant %+v", ops, want)
			}
			if b := list("tB"); len(b) != 0 {
				t.Errorf("tenant B's queue: %+v", b)
			}
			for _, old := range []string{"access_security_events", "auth_security_events"} {
				if _, err := db.ExecContext(ctx, `SELECT COUNT(*) FROM `+old); err == nil {
					t.Errorf("%s still exists", old)
				}
			}

			if _, err := p.Down(ctx); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM access_security_events WHERE id = 'se-em' AND tenant_id = 'tA'`).Scan(&n); err != nil || n != 1 {
				t.Errorf("down: access's event %d %v", n, err)
			}
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_security_events WHERE account_id IS NULL AND id = 'a2'`).Scan(&n); err != nil || n != 1 {
				t.Errorf("down: authn's events %d %v", n, err)
			}
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_security_events`).Scan(&n); err != nil || n != 3 {
				t.Errorf("down: authn's events %d %v", n, err)
			}
		})
	}
}
