package router

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// The access log's address (audit.Source) comes from X-Forwarded-For or
// Forwarded only when the connection's peer is a trusted proxy; anyone
// else's headers are ignored.
//
// REQ: LOG-1
func TestTrustedProxies(t *testing.T) {
	_, lb, _ := net.ParseCIDR("10.0.0.0/8")
	_, lb6, _ := net.ParseCIDR("fd00::/8")
	rt := &root{d: Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), TrustedProxies: []*net.IPNet{lb, lb6}}}
	rt.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "r"}, []string{"route", "code"})
	rt.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "l"}, []string{"route"})
	var got string
	h := rt.requestContext(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = audit.SourceFrom(r.Context()).Addr }))
	cases := []struct {
		name, peer string
		hdr        map[string]string
		want       string
	}{
		{"no proxy, header ignored", "198.51.100.7:4000", map[string]string{"X-Forwarded-For": "203.0.113.9"}, "198.51.100.7"},
		{"no proxy, Forwarded ignored", "198.51.100.7:4000", map[string]string{"Forwarded": "for=203.0.113.9"}, "198.51.100.7"},
		{"trusted proxy, X-Forwarded-For", "10.1.2.3:4000", map[string]string{"X-Forwarded-For": "203.0.113.9"}, "203.0.113.9"},
		{"trusted chain: nearest untrusted hop", "10.1.2.3:4000", map[string]string{"X-Forwarded-For": "6.6.6.6, 203.0.113.9, 10.9.9.9"}, "203.0.113.9"},
		{"trusted proxy, Forwarded with port", "10.1.2.3:4000", map[string]string{"Forwarded": `for="203.0.113.9:5555";proto=https`}, "203.0.113.9"},
		{"trusted proxy, Forwarded IPv6", "[fd00::1]:4000", map[string]string{"Forwarded": `for="[2001:db8::7]:4711"`}, "2001:db8::7"},
		{"trusted proxy, no header", "10.1.2.3:4000", nil, "10.1.2.3"},
		{"trusted proxy, garbage header", "10.1.2.3:4000", map[string]string{"X-Forwarded-For": "not-an-ip"}, "10.1.2.3"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/x", nil)
		r.RemoteAddr = c.peer
		for k, v := range c.hdr {
			r.Header.Set(k, v)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if got != c.want {
			t.Errorf("%s: address %q, want %q", c.name, got, c.want)
		}
	}
	// Without trusted proxies nobody's header counts, a loopback peer's neither.
	rt.d.TrustedProxies = nil
	r := httptest.NewRequest("GET", "/x", nil)
	r.RemoteAddr, r.Header["X-Forwarded-For"] = "127.0.0.1:1", []string{"203.0.113.9"}
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got != "127.0.0.1" {
		t.Errorf("without trusted proxies: %q", got)
	}
}

// REQ: DP-6
// A failing readiness check (the clock watch's) makes /readyz 503 and
// names itself; once it passes again, readiness recovers.
func TestReadinessChecks(t *testing.T) {
	var off error = errors.New("clock 2s off NTP time (bound ±500ms)")
	rt := &root{d: Deps{DB: storetest.SQLite(t), Ready: []ReadyCheck{{Name: "clock", Check: func(context.Context) error { return off }}}}}
	get := func() (int, string) {
		w := httptest.NewRecorder()
		rt.readyz(w, httptest.NewRequest("GET", "/readyz", nil))
		return w.Code, w.Body.String()
	}
	if code, body := get(); code != 503 || !strings.Contains(body, "2s off") {
		t.Fatalf("clock off: %d %s", code, body)
	}
	off = nil
	if code, body := get(); code != 200 || !strings.Contains(body, `"clock":"ok"`) {
		t.Fatalf("clock back: %d %s", code, body)
	}
}
