package change

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// fixture is a service with one kind, "test.setting", whose Apply writes
// the payload's value into a map (the owner's table in miniature, kept in
// the test) unless the test makes it fail.
type fixture struct {
	ctx     context.Context
	clk     *clock.Fake
	log     *audit.Log
	s       *Service
	applied map[string]string
	closed  map[string]Status
	fail    error
}

type setting struct {
	Name, Value string
}

var (
	ann   = Actor{TenantID: "t1", AccountID: "acc-ann", Name: "Ann", Role: "application-admin", Organisation: "Praktijk", Assurance: "hoog"}
	bob   = Actor{TenantID: "t1", AccountID: "acc-bob", Name: "Bob", Role: "application-admin", Organisation: "Praktijk", Assurance: "hoog"}
	carl  = Actor{TenantID: "t1", AccountID: "acc-carl", Name: "Carl", Role: "security-officer", Organisation: "Praktijk", Assurance: "hoog"}
	other = Actor{TenantID: "t2", AccountID: "acc-eve", Name: "Eve", Role: "application-admin", Organisation: "Elders", Assurance: "hoog"}
)

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	f := &fixture{ctx: context.Background(), clk: clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)),
		applied: map[string]string{}, closed: map[string]Status{}}
	f.log = audit.New(db, f.clk, rand.Reader)
	t.Cleanup(func() { f.log.Close() })
	f.s = New(Config{DB: db, Audit: f.log, Clock: f.clk})
	f.s.Register("test.setting", Handler{
		Approvers: []string{"application-admin"},
		Apply: func(ctx context.Context, tx *store.Tx, r Request, by Actor) error {
			if f.fail != nil {
				return f.fail
			}
			var p setting
			if err := json.Unmarshal(r.Payload, &p); err != nil {
				return err
			}
			f.applied[p.Name] = p.Value + " by " + by.AccountID
			return nil
		},
		Closed: func(ctx context.Context, tx *store.Tx, r Request) error {
			f.closed[r.ID] = r.Status
			return nil
		},
	})
	return f
}

func (f *fixture) propose(t *testing.T, db *store.DB, by Actor, subject, name, value string) Request {
	t.Helper()
	var r Request
	err := db.Tx(f.ctx, func(tx *store.Tx) error {
		var err error
		r, err = f.s.Propose(f.ctx, tx, by, Proposal{Kind: "test.setting", Summary: name + " = " + value, Payload: setting{name, value}, SubjectID: subject})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// steps returns the change steps logged for request id, oldest first.
func (f *fixture) steps(t *testing.T, tenant, id string) []string {
	t.Helper()
	evs, err := f.log.Query(f.ctx, audit.Filter{TenantID: tenant})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		if len(e.Resources) == 1 && e.Resources[0] == "ChangeRequest/"+id {
			step, _, _ := strings.Cut(strings.TrimPrefix(e.Query, "change "), ":")
			out = append(out, fmt.Sprintf("%s %s %s", e.UserID, step, e.Outcome))
		}
	}
	return out
}

// REQ: GOV-1 — an admin cannot approve (or reject) their own change; the
// refused attempt is logged, nothing is applied, and another admin's
// approval applies it in the same step. Every step is an access-log event.
func TestSelfApprovalRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		r := f.propose(t, db, ann, "", "weak-factor", "off")
		if r.Status != Pending || !r.ExpiresAt.Equal(r.ProposedAt.Add(DefaultExpiry)) {
			t.Fatalf("proposed: %+v", r)
		}
		for _, approve := range []bool{true, false} {
			f.clk.Advance(time.Second) // the log lists events by time
			if _, err := f.s.Decide(f.ctx, ann, r.ID, approve, "mine"); !errors.Is(err, ErrSelf) {
				t.Fatalf("own decision (approve %v): %v, want ErrSelf", approve, err)
			}
		}
		if len(f.applied) != 0 {
			t.Fatalf("applied by the proposer: %v", f.applied)
		}
		// A security officer is no approver of this kind; another tenant's
		// admin does not even see the request.
		f.clk.Advance(time.Second)
		if _, err := f.s.Decide(f.ctx, carl, r.ID, true, ""); !errors.Is(err, ErrForbidden) {
			t.Fatalf("officer: %v, want ErrForbidden", err)
		}
		if _, err := f.s.Decide(f.ctx, other, r.ID, true, ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("other tenant: %v, want ErrNotFound", err)
		}
		f.clk.Advance(time.Second)
		got, err := f.s.Decide(f.ctx, bob, r.ID, true, "checked")
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != Approved || got.DecidedBy != bob.AccountID || f.applied["weak-factor"] != "off by acc-bob" {
			t.Fatalf("approved: %+v, applied %v", got, f.applied)
		}
		if _, err := f.s.Decide(f.ctx, bob, r.ID, true, ""); !errors.Is(err, ErrDecided) {
			t.Fatalf("second decision: %v, want ErrDecided", err)
		}
		want := []string{"acc-ann proposed success", "acc-ann decision refused denied", "acc-ann decision refused denied",
			"acc-carl decision refused denied", "acc-bob approved and applied success"}
		if got := f.steps(t, "t1", r.ID); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("logged steps:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// REQ: GOV-1, AZ-7 — the account a change gives rights to is not its
// approver either.
func TestSubjectCannotApprove(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		r := f.propose(t, db, ann, bob.AccountID, "right", "admin for bob")
		if _, err := f.s.Decide(f.ctx, bob, r.ID, true, ""); !errors.Is(err, ErrSelf) {
			t.Fatalf("receiver approving: %v, want ErrSelf", err)
		}
		rej, err := f.s.Decide(f.ctx, Actor{TenantID: "t1", AccountID: "acc-dora", Role: "application-admin"}, r.ID, false, "not now")
		if err != nil || rej.Status != Rejected || rej.Note != "not now" || f.closed[r.ID] != Rejected || len(f.applied) != 0 {
			t.Fatalf("rejected: %+v %v, closed %v applied %v", rej, err, f.closed, f.applied)
		}
	})
}

// REQ: GOV-1 — stale requests expire: past the expiry a decision is refused
// and the request is marked expired (logged, the owner told); the sweep
// expires the others; the list shows them expired even before the sweep.
func TestStaleRequestsExpire(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		a := f.propose(t, db, ann, "", "retention", "6y")
		b := f.propose(t, db, ann, "", "sso", "trust idp")
		f.clk.Advance(DefaultExpiry - time.Second)
		if pending, _, err := f.s.List(f.ctx, "t1", 10); err != nil || len(pending) != 2 {
			t.Fatalf("before expiry: %d pending, %v", len(pending), err)
		}
		f.clk.Advance(time.Second)
		pending, recent, err := f.s.List(f.ctx, "t1", 10)
		if err != nil || len(pending) != 0 || len(recent) != 2 || recent[0].Status != Expired {
			t.Fatalf("at expiry: pending %v recent %v, %v", pending, recent, err)
		}
		if _, err := f.s.Decide(f.ctx, bob, a.ID, true, ""); !errors.Is(err, ErrExpired) {
			t.Fatalf("deciding a stale request: %v, want ErrExpired", err)
		}
		if len(f.applied) != 0 || f.closed[a.ID] != Expired {
			t.Fatalf("stale request applied %v / closed %v", f.applied, f.closed)
		}
		if err := f.s.Expire(f.ctx); err != nil {
			t.Fatal(err)
		}
		got, err := f.s.Get(f.ctx, "t1", b.ID)
		if err != nil || got.Status != Expired || f.closed[b.ID] != Expired {
			t.Fatalf("swept: %+v %v", got, err)
		}
		if _, err := f.s.Decide(f.ctx, bob, b.ID, true, ""); !errors.Is(err, ErrDecided) {
			t.Fatalf("deciding a swept request: %v", err)
		}
		for _, id := range []string{a.ID, b.ID} {
			steps := f.steps(t, "t1", id)
			if len(steps) != 2 || steps[1] != "system expired success" {
				t.Fatalf("steps of %s: %v", id, steps)
			}
		}
	})
}

// REQ: GOV-1 — an approval the owner can no longer apply is marked failed
// and logged as such; an apply that errors otherwise leaves the request
// pending and nothing written.
func TestApplyFailure(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		r := f.propose(t, db, ann, "", "ca", "issue")
		f.fail = errors.New("disk on fire")
		if _, err := f.s.Decide(f.ctx, bob, r.ID, true, ""); err == nil || errors.Is(err, ErrInapplicable) {
			t.Fatalf("transient failure: %v", err)
		}
		if got, _ := f.s.Get(f.ctx, "t1", r.ID); got.Status != Pending {
			t.Fatalf("after a transient failure: %s", got.Status)
		}
		f.fail = fmt.Errorf("the policy changed since: %w", ErrInapplicable)
		f.clk.Advance(time.Second)
		if _, err := f.s.Decide(f.ctx, bob, r.ID, true, ""); !errors.Is(err, ErrInapplicable) {
			t.Fatalf("inapplicable: %v", err)
		}
		got, _ := f.s.Get(f.ctx, "t1", r.ID)
		if got.Status != Failed || !strings.Contains(got.Note, "policy changed") || f.closed[r.ID] != Failed {
			t.Fatalf("failed request: %+v", got)
		}
		if steps := f.steps(t, "t1", r.ID); len(steps) != 2 || steps[1] != "acc-bob failed failed" {
			t.Fatalf("steps: %v", steps)
		}
	})
}

// REQ: GOV-1 — a proposal is checked: a known kind, a summary, a bounded
// payload; the id and note of a decision are bounded text.
func TestProposalChecked(t *testing.T) {
	db := storetest.SQLite(t)
	f := newFixture(t, db)
	cases := []Proposal{
		{Kind: "no.such", Summary: "x", Payload: 1},
		{Kind: "test.setting", Summary: " ", Payload: 1},
		{Kind: "test.setting", Summary: "big", Payload: strings.Repeat("x", MaxPayload)},
	}
	for _, p := range cases {
		err := db.Tx(f.ctx, func(tx *store.Tx) error {
			_, err := f.s.Propose(f.ctx, tx, ann, p)
			return err
		})
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s %q: %v, want ErrInvalid", p.Kind, p.Summary, err)
		}
	}
	if _, err := f.s.Decide(f.ctx, bob, strings.Repeat("x", 101), true, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("long id: %v", err)
	}
	if pending, _, _ := f.s.List(f.ctx, "t1", 10); len(pending) != 0 {
		t.Errorf("a refused proposal was stored: %v", pending)
	}
	// A long summary (an app's redirect URIs) is shortened, not refused.
	long := f.propose(t, db, ann, "", "redirects", strings.Repeat("https://app.example/cb ", 50))
	if n := len([]rune(long.Summary)); n != 500 || !strings.HasSuffix(long.Summary, "…") {
		t.Errorf("long summary: %d characters", n)
	}
}

// REQ: GOV-1 — a kind that prepares its work before the transaction (a
// CA's key) prepares only for a decision that is allowed and applies in the
// approval's transaction; platform staff propose and decide such a kind for
// an organisation, a tenant's admin never for another organisation, and
// four eyes hold across them too.
func TestPreparedAndPlatformKinds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		prepared, applied := 0, 0
		f.s.Register("test.ca", Handler{
			Approvers: []string{"application-admin", "platform-admin"},
			Platform:  true,
			Prepare: func(ctx context.Context, r Request, by Actor) (func(context.Context, *store.Tx) error, error) {
				prepared++
				return func(ctx context.Context, tx *store.Tx) error { applied++; return nil }, nil
			},
		})
		op := Actor{AccountID: "os:root", Name: "root", Role: "platform-admin"}
		var r Request
		propose := func(by Actor, tenant string) error {
			return db.Tx(f.ctx, func(tx *store.Tx) error {
				var err error
				r, err = f.s.Propose(f.ctx, tx, by, Proposal{Kind: "test.ca", Summary: "intermediate", Payload: nil, TenantID: tenant})
				return err
			})
		}
		if err := propose(other, "t1"); !errors.Is(err, ErrInvalid) {
			t.Fatalf("a tenant's admin proposes for another: %v", err)
		}
		if err := propose(op, "t1"); err != nil || r.TenantID != "t1" {
			t.Fatalf("platform proposal: %+v %v", r, err)
		}
		if _, err := f.s.Decide(f.ctx, op, r.ID, true, ""); !errors.Is(err, ErrSelf) || prepared != 0 {
			t.Fatalf("the proposer at the platform: %v, prepared %d", err, prepared)
		}
		if _, err := f.s.Decide(f.ctx, other, r.ID, true, ""); !errors.Is(err, ErrNotFound) || prepared != 0 {
			t.Fatalf("another tenant: %v, prepared %d", err, prepared)
		}
		got, err := f.s.Decide(f.ctx, bob, r.ID, true, "")
		if err != nil || got.Status != Approved || prepared != 1 || applied != 1 {
			t.Fatalf("approval: %+v %v, prepared %d applied %d", got, err, prepared, applied)
		}
		// The platform decides a tenant's request of a platform kind.
		if err := propose(ann, ""); err != nil {
			t.Fatal(err)
		}
		if got, err := f.s.Decide(f.ctx, op, r.ID, true, ""); err != nil || got.DecidedBy != op.AccountID || applied != 2 {
			t.Fatalf("platform approval: %+v %v", got, err)
		}
		// A kind that is not a platform kind stays the organisation's own.
		plain := f.propose(t, db, ann, "", "x", "y")
		if _, err := f.s.Decide(f.ctx, op, plain.ID, true, ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the platform decides a tenant's own kind: %v", err)
		}
	})
}
