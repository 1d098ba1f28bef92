package access

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// A care relationship ended while decisions run concurrently, with the
// decision cache answering as it does in serve: no decision that began
// after the end was committed allows the read.
// REQ: AZ-1
func TestNoReadAllowedAfterRevocationUnderLoad(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		admin := f.account(f.tenantA, RoleAppAdmin)
		prof := f.account(f.tenantA, RoleProfessional)
		p := f.patient(f.tenantA)
		rel := f.rawRelationship(f.tenantA, prof.AccountID(), p, t0, nil)
		f.clock.Advance(time.Minute)
		syncing(t, f.d)

		var committed atomic.Bool
		var before, after, allowedAfter, errs atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 20000; i++ {
					select {
					case <-stop:
						return
					default:
					}
					late := committed.Load() // read before the decision starts
					_, err := f.d.Decide(f.ctx, prof, Request{PatientID: p, Action: Read})
					switch {
					case err != nil && !IsDenied(err):
						errs.Add(1)
					case late:
						after.Add(1)
						if err == nil {
							allowedAfter.Add(1)
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
				time.Sleep(10 * time.Millisecond)
			}
			if !cond() {
				close(stop)
				wg.Wait()
				t.Fatalf("timed out waiting for %s", what)
			}
		}
		wait("reads allowed before the end", func() bool { return before.Load() >= 20 })
		if err := f.d.EndRelationship(f.ctx, admin, rel, time.Time{}); err != nil {
			t.Fatal(err)
		}
		committed.Store(true)
		wait("decisions after the end", func() bool { return after.Load() >= 40 })
		close(stop)
		wg.Wait()
		if errs.Load() != 0 {
			t.Fatalf("%d decisions failed", errs.Load())
		}
		if n := allowedAfter.Load(); n != 0 {
			t.Fatalf("%d of %d decisions begun after the relationship ended allowed the read", n, after.Load())
		}
		if f.d.cache.hits.Load() == 0 {
			t.Fatal("no decision was answered from the cache: the test did not test it")
		}
		t.Logf("%d allowed before the end (%d from the cache), %d denied after", before.Load(), f.d.cache.hits.Load(), after.Load())
	})
}
