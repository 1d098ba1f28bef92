package authn

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/password"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// BenchmarkLogonPasswordTOTP measures complete log-ons (password with the
// production argon2id parameters, then TOTP) on SQLite. With -cpu 1 the
// ns/op gives log-ons per second per core:
//
//	go test -run '^$' -bench LogonPasswordTOTP -cpu 1 ./internal/authn/
func BenchmarkLogonPasswordTOTP(b *testing.B) {
	db := storetest.SQLite(b)
	f := newFixture(b, db, password.DefaultParams())
	u := f.addUser(b, "bench.user", identity.KindProfessional, 3, true, string(access.RoleProfessional))
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		f.clock.Advance(30 * time.Second) // a fresh TOTP step each time
		att, err := f.svc.Begin(ctx, u.name, u.pw, "127.0.0.1")
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := f.svc.Complete(ctx, att, FactorTOTP, f.code(b, u.secret), "127.0.0.1"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/float64(runtime.GOMAXPROCS(0)), "logons/s/core")
}

// BenchmarkLogonParallel runs complete log-ons (password, production
// parameters, then TOTP) from GOMAXPROCS goroutines, each with its own
// account, so the figure uses every core:
//
//	go test -run '^$' -bench LogonParallel ./internal/authn/
func BenchmarkLogonParallel(b *testing.B) {
	db := storetest.SQLite(b)
	f := newFixture(b, db, password.DefaultParams())
	procs := runtime.GOMAXPROCS(0)
	users := make(chan user, procs*4)
	for i := range cap(users) {
		users <- f.addUser(b, fmt.Sprintf("par%d", i), identity.KindProfessional, 3, true, string(access.RoleProfessional))
	}
	ctx := context.Background()
	var mu sync.Mutex
	var n int
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		u := <-users
		for pb.Next() {
			att, err := f.svc.Begin(ctx, u.name, u.pw, "127.0.0.1")
			if err != nil {
				b.Error(err)
				return
			}
			// The fake clock is shared: the step, the code and its check
			// happen under one lock (cheap next to the hash, which runs in
			// parallel in Begin), and only successes are counted.
			mu.Lock()
			f.clock.Advance(30 * time.Second)
			_, _, err = f.svc.Complete(ctx, att, FactorTOTP, f.code(b, u.secret), "127.0.0.1")
			if err == nil {
				n++
			}
			mu.Unlock()
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(n)/b.Elapsed().Seconds()/float64(procs), "logons/s/core")
}

// vmHWM is the process's peak resident memory in KiB (Linux).
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			n, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkConcurrentLogonMemory starts 1,000 first steps at once with the
// production parameters (64 MiB each) and reports the peak heap in use and
// the process's peak resident memory. The hasher's semaphore (GOMAXPROCS
// hashes at once) bounds it; unbounded it would be 1,000 × 64 MiB.
//
//	go test -run '^$' -bench ConcurrentLogonMemory -benchtime 1x ./internal/authn/
func BenchmarkConcurrentLogonMemory(b *testing.B) {
	db := storetest.SQLite(b)
	f := newFixture(b, db, password.DefaultParams())
	f.svc.settings.SourceLockAfter = 1 << 30
	u := f.addUser(b, "mem.user", identity.KindProfessional, 3, true, string(access.RoleProfessional))
	ctx := context.Background()
	for b.Loop() {
		runtime.GC()
		var peak uint64
		done := make(chan struct{})
		go func() {
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			var ms runtime.MemStats
			for {
				select {
				case <-done:
					return
				case <-t.C:
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapInuse)
				}
			}
		}()
		var wg sync.WaitGroup
		for i := range 1000 {
			wg.Go(func() {
				name := u.name
				if i%2 == 1 {
					name = fmt.Sprintf("unknown%d", i)
				}
				if _, err := f.svc.Begin(ctx, name, "some wrong password", fmt.Sprintf("10.0.%d.%d", i/250, i%250)); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		close(done)
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(vmHWM())/1024, "VmHWM-MiB")
	}
}
