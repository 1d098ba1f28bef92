package authn

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/password"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// replica is a second Service on the same database, syncing as serve does.
func (f *fixture) replica(t *testing.T) *Service {
	t.Helper()
	b := New(f.db, f.ids, f.svc.hasher, f.svc.sealer, f.clock, rand.Reader, f.svc.settings)
	syncing(t, b)
	return b
}

// syncing runs svc's SyncSessions every SessionSyncInterval until the test ends.
func syncing(t *testing.T, b *Service) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(SessionSyncInterval)
		defer tick.Stop()
		for {
			_ = b.SyncSessions(ctx)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// cached reports whether svc's cache holds tok's session and would answer.
func cached(svc *Service, tok string) bool {
	_, ok := svc.cache.get(sha256.Sum256([]byte(tok)), svc.clock.Now())
	return ok
}

// refusedWithin asks svc for tok until it refuses, at most for bound.
func refusedWithin(t *testing.T, svc *Service, tok string, bound time.Duration) {
	t.Helper()
	start := time.Now()
	for i := 0; i < 1000; i++ {
		_, err := svc.Authenticate(context.Background(), tok)
		if errors.Is(err, ErrNoSession) {
			t.Logf("refused after %v", time.Since(start).Round(time.Millisecond))
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(start) > bound {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the other replica still accepts the session %v after the change", bound)
}

// Two replicas on one database keep sessions in memory. A log-off,
// "log off everywhere", a role switch and a deactivation on one replica
// hold there at once and on the other within a second, although the other
// answered the session from its cache just before.
// REQ: AUTH-4
// REQ: ID-5
// REQ: AZ-2
func TestSessionCacheAcrossReplicas(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		ctx := context.Background()
		a := f.svc
		syncing(t, a)
		b := f.replica(t)
		// ready: both replicas answer tok from their caches.
		ready := func(tok string) {
			t.Helper()
			for _, svc := range []*Service{a, b} {
				if err := svc.SyncSessions(ctx); err != nil { // fresh after the clock moved
					t.Fatal(err)
				}
				for i := 0; i < 2; i++ {
					s, err := svc.Authenticate(ctx, tok)
					if err != nil {
						t.Fatal(err)
					}
					if s.AccountName == "" || s.Organisation != "Praktijk" {
						t.Fatalf("session without the names for the log: %+v", s)
					}
				}
				if !cached(svc, tok) {
					t.Fatal("the session is not answered from the cache")
				}
			}
		}
		atOnce := func(tok string) {
			t.Helper()
			if _, err := a.Authenticate(ctx, tok); !errors.Is(err, ErrNoSession) {
				t.Fatalf("this replica still accepts the session: %v", err)
			}
		}

		u := f.addUser(t, "dr.cache", identity.KindProfessional, 3, true, string(access.RoleProfessional))
		tok, _, err := f.logon(t, u, u.pw, "::1")
		if err != nil {
			t.Fatal(err)
		}
		ready(tok)
		if err := a.Logout(ctx, tok); err != nil {
			t.Fatal(err)
		}
		atOnce(tok)
		refusedWithin(t, b, tok, time.Second)

		f.clock.Advance(31 * time.Second) // past the TOTP step used
		tok, _, err = f.logon(t, u, u.pw, "::1")
		if err != nil {
			t.Fatal(err)
		}
		ready(tok)
		if err := a.LogoutAll(ctx, u.id); err != nil {
			t.Fatal(err)
		}
		atOnce(tok)
		refusedWithin(t, b, tok, time.Second)

		two := f.addUser(t, "twee.cache", identity.KindProfessional, 3, true, string(access.RoleProfessional), string(access.RoleAssistant))
		tok, _, err = f.logon(t, two, two.pw, "::1")
		if err != nil {
			t.Fatal(err)
		}
		ready(tok)
		tok2, _, err := a.ChooseRole(ctx, tok, string(access.RoleAssistant))
		if err != nil {
			t.Fatal(err)
		}
		atOnce(tok)
		refusedWithin(t, b, tok, time.Second)
		ready(tok2)
		if err := a.Deactivate(ctx, two.id); err != nil {
			t.Fatal(err)
		}
		atOnce(tok2)
		refusedWithin(t, b, tok2, time.Second)
	})
}

// The idle limit holds with the cache: a session seen within the limit on
// any replica lives on (its touch reaches the database), one idle longer
// is refused, whatever a cache still holds.
// REQ: AUTH-4
func TestSessionCacheIdleLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		ctx := context.Background()
		a := f.svc
		b := New(f.db, f.ids, a.hasher, a.sealer, f.clock, rand.Reader, a.settings)
		sync := func() {
			t.Helper()
			for _, svc := range []*Service{a, b} {
				if err := svc.SyncSessions(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		u := f.addUser(t, "idle.cache", identity.KindPerson, 3, true, string(access.RolePerson))
		tok, _, err := f.logon(t, u, u.pw, "::1")
		if err != nil {
			t.Fatal(err)
		}
		sync()
		for _, svc := range []*Service{a, b} {
			if _, err := svc.Authenticate(ctx, tok); err != nil || !cached(svc, tok) {
				t.Fatalf("not cached: %v", err)
			}
		}
		idle := a.settings.IdleTimeout
		// Seen on b after 10 minutes, then 10 more: a's cached record is
		// 20 minutes old, but the database has b's touch.
		f.clock.Advance(idle * 2 / 3)
		sync()
		if _, err := b.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(idle * 2 / 3)
		sync()
		if _, err := a.Authenticate(ctx, tok); err != nil {
			t.Fatalf("seen on the other replica within the idle limit, refused here: %v", err)
		}
		// Idle longer than the limit everywhere: refused although both
		// caches were fresh a moment ago.
		f.clock.Advance(idle + time.Second)
		sync()
		for _, svc := range []*Service{a, b} {
			if _, err := svc.Authenticate(ctx, tok); !errors.Is(err, ErrNoSession) {
				t.Fatalf("idle session accepted: %v", err)
			}
		}
	})
}

// A cache whose last sync is older than sessionFresh, or that never
// synced, does not answer: the database does, so a change the cache was not
// told of holds once the cache is no longer fresh.
// REQ: AUTH-4
func TestSessionCacheAnswersOnlyWhenFresh(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		ctx := context.Background()
		u := f.addUser(t, "fresh.cache", identity.KindPerson, 3, true, string(access.RolePerson))
		tok, _, err := f.logon(t, u, u.pw, "::1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Authenticate(ctx, tok); err != nil || cached(f.svc, tok) {
			t.Fatalf("a cache that never synced answers: %v", err)
		}
		if err := f.svc.SyncSessions(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Authenticate(ctx, tok); err != nil || !cached(f.svc, tok) {
			t.Fatalf("not cached after a sync: %v", err)
		}
		// A revocation the cache is not told of (no version bump).
		if _, err := db.ExecContext(ctx, `UPDATE sessions SET revoked_at = $1 WHERE account_id = $2`, int64(1), u.id); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(sessionFresh)
		if _, err := f.svc.Authenticate(ctx, tok); !errors.Is(err, ErrNoSession) {
			t.Fatalf("a stale cache answered: %v", err)
		}
	})
}

// A load that read the database before an invalidation does not put its
// row back after it.
func TestSessionCacheLoadBeforeInvalidation(t *testing.T) {
	c := newSessionCache()
	c.synced, c.checked = true, time.Unix(100, 0)
	h := sha256.Sum256([]byte("tok"))
	gen := c.generation()
	c.invalidate()
	c.put(h, cachedSession{sess: Session{AccountID: "a"}}, gen)
	if _, ok := c.get(h, c.checked); ok {
		t.Fatal("a row read before the invalidation was kept")
	}
	c.put(h, cachedSession{sess: Session{AccountID: "a"}}, c.generation())
	if _, ok := c.get(h, c.checked); !ok {
		t.Fatal("a row read after the invalidation was not kept")
	}
}

// A session logged off while requests authenticate concurrently from the
// cache: none that began after the log-off returned is accepted.
// REQ: AUTH-4
func TestSessionCacheLogoffUnderLoad(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		ctx := context.Background()
		syncing(t, f.svc)
		u := f.addUser(t, "load.cache", identity.KindPerson, 3, true, string(access.RolePerson))
		tok, _, err := f.logon(t, u, u.pw, "::1")
		if err != nil {
			t.Fatal(err)
		}
		var loggedOff atomic.Bool
		var before, after, acceptedAfter, errs atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 100000; i++ {
					select {
					case <-stop:
						return
					default:
					}
					late := loggedOff.Load()
					_, err := f.svc.Authenticate(ctx, tok)
					switch {
					case err != nil && !errors.Is(err, ErrNoSession):
						errs.Add(1)
					case late:
						after.Add(1)
						if err == nil {
							acceptedAfter.Add(1)
						}
					case err == nil:
						before.Add(1)
					}
				}
			}()
		}
		wait := func(what string, cond func() bool) {
			t.Helper()
			for i := 0; i < 3000 && !cond(); i++ {
				time.Sleep(5 * time.Millisecond)
			}
			if !cond() {
				close(stop)
				wg.Wait()
				t.Fatalf("timed out waiting for %s", what)
			}
		}
		wait("cached answers before the log-off", func() bool { return before.Load() >= 200 && cached(f.svc, tok) })
		if err := f.svc.Logout(ctx, tok); err != nil {
			t.Fatal(err)
		}
		loggedOff.Store(true)
		wait("requests after the log-off", func() bool { return after.Load() >= 200 })
		close(stop)
		wg.Wait()
		if errs.Load() != 0 {
			t.Fatalf("%d authentications failed", errs.Load())
		}
		if n := acceptedAfter.Load(); n != 0 {
			t.Fatalf("%d of %d requests begun after the log-off were accepted", n, after.Load())
		}
	})
}
