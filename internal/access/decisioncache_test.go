package access

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// syncing runs d.SyncDecisions every DecisionSyncInterval until the test
// ends, as serve does; the first sync has run when it returns.
func syncing(t *testing.T, d *Decider) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	if err := d.SyncDecisions(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(DecisionSyncInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_ = d.SyncDecisions(ctx) // a failed sync only lets the cache go stale: it then stops answering
			}
		}
	}()
}

// Two replicas on one database cache the care rule's allows. Every kind of
// change that ends one (the relationship ended, a team membership removed,
// the role taken away, the account deactivated, the right revoked) made on
// one replica denies there at once and on the other within a second.
// REQ: AZ-1
func TestCachedDecisionEndsOnEveryReplica(t *testing.T) {
	storetest.EachPair(t, func(t *testing.T, a, b *store.DB) {
		f := newFixture(t, a)
		other := NewDecider(b, audit.New(b, f.clock, rand.Reader), f.clock)
		syncing(t, f.d)
		syncing(t, other)
		admin := f.account(f.tenantA, RoleAppAdmin)
		f.clock.Advance(time.Minute)

		changes := []struct {
			name   string
			basis  func(prof Subject, patient string) // sets up the allow
			change func(prof Subject, patient string) // ends it
		}{
			{"relationship ended", func(prof Subject, p string) {
				f.rawRelationship(f.tenantA, prof.AccountID(), p, t0, nil)
			}, func(prof Subject, p string) {
				var id string
				if err := a.QueryRowContext(f.ctx, `SELECT id FROM care_relationships WHERE professional_id = $1`, prof.AccountID()).Scan(&id); err != nil {
					t.Fatal(err)
				}
				if err := f.d.EndRelationship(f.ctx, admin, id, time.Time{}); err != nil {
					t.Fatal(err)
				}
			}},
			{"team membership removed", func(prof Subject, p string) {
				f.rawTeam(f.tenantA, prof.AccountID(), p)
			}, func(prof Subject, p string) {
				f.exec(`UPDATE access_team_members SET removed_at = $1 WHERE account_id = $2`, us(f.clock.Now()), prof.AccountID())
			}},
			{"role taken away", func(prof Subject, p string) {
				f.rawRelationship(f.tenantA, prof.AccountID(), p, t0, nil)
			}, func(prof Subject, p string) {
				if err := f.ids.RevokeRole(f.ctx, prof.AccountID(), string(prof.Role())); err != nil {
					t.Fatal(err)
				}
			}},
			{"account deactivated", func(prof Subject, p string) {
				f.rawRelationship(f.tenantA, prof.AccountID(), p, t0, nil)
			}, func(prof Subject, p string) {
				if err := f.ids.Deactivate(f.ctx, prof.AccountID()); err != nil {
					t.Fatal(err)
				}
			}},
			{"right revoked", func(prof Subject, p string) {
				f.rawRelationship(f.tenantA, prof.AccountID(), p, t0, nil)
				f.exec(`INSERT INTO access_right_requests (id, tenant_id, account_id, role, privileged, reason, requested_by, requested_at, status, decided_by, decided_at)
					VALUES ($1, $2, $3, $4, FALSE, 'test', 'test', $5, 'approved', 'test', $5)`, f.id("rr-"), f.tenantA, prof.AccountID(), string(prof.Role()), us(t0))
			}, func(prof Subject, p string) {
				f.exec(`INSERT INTO access_right_requests (id, tenant_id, account_id, role, privileged, reason, requested_by, requested_at, status, decided_by, decided_at)
					VALUES ($1, $2, $3, $4, FALSE, 'test', 'test', $5, 'revoked', 'test', $5)`, f.id("rr-"), f.tenantA, prof.AccountID(), string(prof.Role()), us(f.clock.Now()))
			}},
		}
		for _, c := range changes {
			prof := f.account(f.tenantA, RoleProfessional)
			p := f.patient(f.tenantA)
			c.basis(prof, p)
			req := Request{PatientID: p, Action: Read}
			// Warm both caches, then prove the next decision is a hit.
			for _, d := range []*Decider{f.d, other} {
				deadline := time.Now().Add(3 * time.Second)
				for {
					if _, err := d.Decide(f.ctx, prof, req); err != nil {
						t.Fatalf("%s: before the change: %v", c.name, err)
					}
					before := d.cache.hits.Load()
					if _, err := d.Decide(f.ctx, prof, req); err != nil {
						t.Fatalf("%s: before the change: %v", c.name, err)
					}
					if d.cache.hits.Load() > before {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: the decision is never answered from the cache", c.name)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			c.change(prof, p)
			changed := time.Now()
			if _, err := f.d.Decide(f.ctx, prof, req); !IsDenied(err) {
				t.Fatalf("%s: this replica still allows right after the change: %v", c.name, err)
			}
			for {
				_, err := other.Decide(f.ctx, prof, req)
				if IsDenied(err) {
					break
				}
				if err != nil {
					t.Fatalf("%s: other replica: %v", c.name, err)
				}
				if time.Since(changed) > time.Second {
					t.Fatalf("%s: the other replica still allows %v after the change", c.name, time.Since(changed))
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("%s: denied on the other replica after %v", c.name, time.Since(changed).Round(time.Millisecond))
		}
	})
}

// A cached allow ends by itself at the relationship's end and at the end of
// the role's approved right, however fresh the cache is.
// REQ: AZ-1
func TestCachedDecisionEndsOnTime(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		syncing(t, f.d)
		prof := f.account(f.tenantA, RoleProfessional)
		p := f.patient(f.tenantA)
		end := t0.Add(2 * time.Minute)
		f.rawRelationship(f.tenantA, prof.AccountID(), p, t0, &end)
		f.clock.Set(end.Add(-time.Second))
		if err := f.d.SyncDecisions(f.ctx); err != nil {
			t.Fatal(err)
		}
		req := Request{PatientID: p, Action: Read}
		if _, err := f.d.Decide(f.ctx, prof, req); err != nil {
			t.Fatal(err)
		}
		k := careKey{patient: p, account: prof.AccountID(), tenant: f.tenantA, role: prof.Role()}
		e, ok := f.d.cache.get(k, f.clock.Now())
		if !ok || !e.until.Equal(end) {
			t.Fatalf("cached %v until %v; want an entry until the relationship's end %v", ok, e.until, end)
		}
		// Past the end, with the cache freshly synced: denied.
		f.clock.Set(end)
		if err := f.d.SyncDecisions(f.ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.Decide(f.ctx, prof, req); !IsDenied(err) {
			t.Fatalf("allowed at the relationship's end: %v", err)
		}

		// An approved right that ends bounds the entry the same way.
		prof2 := f.account(f.tenantA, RoleProfessional)
		rightEnd := end.Add(30 * time.Second)
		f.rawRelationship(f.tenantA, prof2.AccountID(), p, t0, nil)
		f.exec(`INSERT INTO access_right_requests (id, tenant_id, account_id, role, privileged, reason, requested_by, requested_at, status, decided_by, decided_at, valid_until)
			VALUES ($1, $2, $3, $4, FALSE, 'test', 'test', $5, 'approved', 'test', $5, $6)`, f.id("rr-"), f.tenantA, prof2.AccountID(), string(prof2.Role()), us(t0), us(rightEnd))
		if err := f.d.SyncDecisions(f.ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.Decide(f.ctx, prof2, req); err != nil {
			t.Fatal(err)
		}
		k2 := careKey{patient: p, account: prof2.AccountID(), tenant: f.tenantA, role: prof2.Role()}
		if e, ok := f.d.cache.get(k2, f.clock.Now()); !ok || !e.until.Equal(rightEnd) {
			t.Fatalf("cached %v until %v; want an entry until the right's end %v", ok, e.until, rightEnd)
		}
		f.clock.Set(rightEnd)
		if err := f.d.SyncDecisions(f.ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.d.Decide(f.ctx, prof2, req); !IsDenied(err) {
			t.Fatalf("allowed at the right's end: %v", err)
		}
	})
}

// Without syncs (one-off commands, a stalled replica) nothing is cached.
func TestDecisionCacheNeedsSync(t *testing.T) {
	db := storetest.SQLite(t)
	f := newFixture(t, db)
	prof := f.account(f.tenantA, RoleProfessional)
	p := f.patient(f.tenantA)
	f.rawRelationship(f.tenantA, prof.AccountID(), p, t0, nil)
	for range 3 {
		if _, err := f.d.Decide(f.ctx, prof, Request{PatientID: p, Action: Read}); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.d.cache.hits.Load(); n != 0 {
		t.Fatalf("%d decisions answered from a cache that never synced", n)
	}
	if err := f.d.SyncDecisions(f.ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := f.d.Decide(f.ctx, prof, Request{PatientID: p, Action: Read}); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.d.cache.hits.Load(); n != 1 {
		t.Fatalf("%d hits after a sync and two decisions; want 1", n)
	}
	f.clock.Advance(time.Second) // the last sync is now too old
	if _, err := f.d.Decide(f.ctx, prof, Request{PatientID: p, Action: Read}); err != nil {
		t.Fatal(err)
	}
	if n := f.d.cache.hits.Load(); n != 1 {
		t.Fatalf("a decision answered from a cache last synced a second ago")
	}
}
