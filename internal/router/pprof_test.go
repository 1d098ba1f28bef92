package router_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zorgkluis/zorgkluis/internal/router"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

// Go's profiler is served only on the metrics listener and only when asked
// for (--pprof); the public port never serves it.
func TestProfilerOnlyOnTheMetricsListener(t *testing.T) {
	get := func(c *http.Client, url string) (int, string) {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	public := serve(t, testkit.New(t, storetest.SQLite(t)))
	if code, body := get(public.Client(), public.URL+"/debug/pprof/"); code != http.StatusNotFound || strings.Contains(body, "goroutine") {
		t.Fatalf("the public port serves the profiler: %d %s", code, body)
	}
	reg := prometheus.NewRegistry()
	plain := httptest.NewServer(router.Metrics(reg))
	t.Cleanup(plain.Close)
	if _, body := get(plain.Client(), plain.URL+"/debug/pprof/"); strings.Contains(body, "goroutine") {
		t.Fatalf("the metrics listener serves the profiler without --pprof: %s", body)
	}
	prof := httptest.NewServer(router.MetricsWithProfiler(reg))
	t.Cleanup(prof.Close)
	if code, body := get(prof.Client(), prof.URL+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("--pprof: %d %s", code, body)
	}
	if code, _ := get(prof.Client(), prof.URL+"/metrics"); code != http.StatusOK {
		t.Fatalf("metrics beside the profiler: %d", code)
	}
}
