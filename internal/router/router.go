// Package router is the root of the HTTP surface. It mounts the protocol
// packages side by side — fhirapi at /fhir, mgmtapi at /api/v1, oauthapi at
// /oauth and the metadata paths, deviceapi at /api/v1/devices, the pages of web at every other path —
// beside the health endpoints, and wraps them all in the same request
// context, security headers and body limit. A new protocol (devices, say)
// is one more line in routes. Metrics get a handler of their own for a
// separate listener.
package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/compliance"
	"github.com/zorgkluis/zorgkluis/internal/deviceapi"
	"github.com/zorgkluis/zorgkluis/internal/devices"
	"github.com/zorgkluis/zorgkluis/internal/fhirapi"
	"github.com/zorgkluis/zorgkluis/internal/governance"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/mgmtapi"
	"github.com/zorgkluis/zorgkluis/internal/oauth"
	"github.com/zorgkluis/zorgkluis/internal/oauthapi"
	"github.com/zorgkluis/zorgkluis/internal/onboard"
	"github.com/zorgkluis/zorgkluis/internal/pki"
	"github.com/zorgkluis/zorgkluis/internal/record"
	"github.com/zorgkluis/zorgkluis/internal/server"
	"github.com/zorgkluis/zorgkluis/internal/sso"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/web"
)

// Deps are the services behind the HTTP surface.
type Deps struct {
	DB      *store.DB // readiness only
	IDs     *identity.Registry
	Authn   *authn.Service
	Access  *access.Decider
	Records *record.Store
	Audit   *audit.Log
	Index   web.Indexer // blind indexes for the pages' find-by-BSN; nil: no search
	Clock   clock.Clock
	Log     *slog.Logger
	Metrics prometheus.Registerer
	Version string
	BaseURL string            // e.g. https://localhost:8443
	Onboard *onboard.Service  // tenants, invitations and activation; nil: not mounted
	CA      *pki.CA           // systems, certificates and the API listener; nil: not mounted
	Backups web.BackupHistory // the backup schedule's runs (the officer's page); nil: not mounted
	OAuth   *oauth.Service    // the authorisation server for persons' apps; nil: not mounted
	SSO     *sso.Service      // single sign-on through the tenants' identity providers; nil: not mounted
	// Governance is the access reviews and the incident register; nil: not mounted.
	Governance *governance.Service
	// Compliance is the controls register and the compliance report; nil: not mounted.
	Compliance *compliance.Service
	Devices    *devices.Service // paired mobile devices (AUTH-7); nil: not mounted

	// TrustedProxies are the load balancers whose forwarding headers name
	// the client for the access log; none: the connection's peer is.
	TrustedProxies []*net.IPNet
	// Ready are readiness checks beside the database's (the clock watch).
	Ready []ReadyCheck

	IdleTimeout  time.Duration // shown by the pages' idle warning
	MaxBodyBytes int64         // every request body; 0: 1 MiB
}

type root struct {
	d        Deps
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New returns the public handler; its metrics are registered on d.Metrics.
func New(d Deps) (http.Handler, error) {
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = 1 << 20
	}
	rt := &root{
		d: d,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zorgkluis_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "zorgkluis_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
	}
	if d.Metrics != nil {
		for _, c := range []prometheus.Collector{rt.requests, rt.latency} {
			if err := d.Metrics.Register(c); err != nil {
				return nil, err
			}
		}
	}
	mux := http.NewServeMux()
	if err := rt.routes(mux); err != nil {
		return nil, err
	}
	return server.SecurityHeaders(server.LimitBodyBy(bodyLimit(d.MaxBodyBytes), rt.requestContext(mux))), nil
}

// uploadLimit is the body limit of the routes that take an evidence
// document (compliance.MaxDocument, with room for a form's framing).
const uploadLimit = compliance.MaxDocument + 64<<10

// bodyLimit is n for every request but the uploads of evidence documents.
func bodyLimit(n int64) func(*http.Request) int64 {
	return func(r *http.Request) int64 {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/documents") &&
			(strings.HasPrefix(r.URL.Path, "/api/v1/controls/") || strings.HasPrefix(r.URL.Path, "/governance/controls/")) {
			return max(n, uploadLimit)
		}
		return n
	}
}

// NewAPI returns the handler of the API listener (--api-addr), where
// third-party systems authenticate with a client certificate of their
// organisation's CA (DP-3): the same FHIR API as on the public listener,
// behind the certificate guard instead of bearer sessions, with the same
// request context, headers and body limit. Its metrics are not
// registered (the public handler's are).
func NewAPI(d Deps) (http.Handler, error) {
	if d.CA == nil {
		return nil, errors.New("router: the API listener needs the CA")
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = 1 << 20
	}
	d.Metrics = nil
	rt := &root{d: d,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zorgkluis_api_requests_total"}, []string{"route", "code"}),
		latency:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "zorgkluis_api_request_duration_seconds"}, []string{"route"}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	fhirapi.New(fhirapi.Deps{Sessions: &httpx.Systems{CA: d.CA, Log: d.Log}, IDs: d.IDs, Access: d.Access, Records: d.Records, Audit: d.Audit,
		Clock: d.Clock, Log: d.Log, Version: d.Version, BaseURL: d.BaseURL, CA: d.CA}).Mount(mux)
	return server.SecurityHeaders(server.LimitBody(d.MaxBodyBytes, rt.requestContext(mux))), nil
}

// routes is the table of contents of the HTTP surface: each protocol
// package registers its own paths.
func (rt *root) routes(mux *http.ServeMux) error {
	d := rt.d
	sessions := &httpx.Sessions{Authn: d.Authn, IDs: d.IDs, Log: d.Log}
	// /fhir also takes apps' access tokens (EX-2); the management API does not.
	fhirSessions := &httpx.Sessions{Authn: d.Authn, IDs: d.IDs, Log: d.Log, Apps: d.OAuth, Devices: d.Devices}
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", rt.readyz)
	if d.OAuth != nil {
		oauthapi.New(oauthapi.Deps{OAuth: d.OAuth, Log: d.Log}).Mount(mux)
	}
	if d.Devices != nil {
		deviceapi.New(deviceapi.Deps{Devices: d.Devices, Sessions: sessions, Log: d.Log, BaseURL: d.BaseURL}).Mount(mux)
	}
	fhirapi.New(fhirapi.Deps{Sessions: fhirSessions, IDs: d.IDs, Access: d.Access, Records: d.Records, Audit: d.Audit,
		Clock: d.Clock, Log: d.Log, Version: d.Version, BaseURL: d.BaseURL, CA: d.CA}).Mount(mux)
	mgmtapi.New(mgmtapi.Deps{Sessions: sessions, IDs: d.IDs, Authn: d.Authn, Access: d.Access, Audit: d.Audit,
		Clock: d.Clock, Log: d.Log, BaseURL: d.BaseURL, Onboard: d.Onboard, CA: d.CA, OAuth: d.OAuth, SSO: d.SSO, Governance: d.Governance, Compliance: d.Compliance}).Mount(mux)
	pages, err := web.Routes(http.NewServeMux(), web.Deps{BaseURL: d.BaseURL, IDs: d.IDs, Authn: d.Authn, Access: d.Access,
		Records: d.Records, Audit: d.Audit, Index: d.Index, Clock: d.Clock, Log: d.Log, IdleTimeout: d.IdleTimeout, Onboard: d.Onboard,
		Backups: d.Backups, CA: d.CA, Apps: d.OAuth, SSO: d.SSO, Governance: d.Governance, Compliance: d.Compliance, Devices: d.Devices})
	if err != nil {
		return err
	}
	mux.Handle("/", pages)
	return nil
}

// Metrics is the handler for the metrics listener.
func Metrics(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

// MetricsWithProfiler is Metrics with Go's profiler under /debug/pprof/
// (--pprof): on the private metrics listener only, never the public port,
// because a profile shows the server's memory and a CPU profile costs CPU.
func MetricsWithProfiler(g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", Metrics(g))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

// requestContext gives each request an id (X-Request-Id, echoed back), puts
// the audit source in the context, logs one line per request and turns a
// panic into a 500 problem without leaking details.
func (rt *root) requestContext(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rid := r.Header.Get("X-Request-Id")
		if !requestIDRE.MatchString(rid) {
			rid = newRequestID()
		}
		w.Header().Set("X-Request-Id", rid)
		host := clientAddr(r, rt.d.TrustedProxies)
		app := r.Header.Get("User-Agent")
		if len(app) > 200 {
			app = app[:200]
		}
		ctx := audit.WithSource(r.Context(), audit.Source{Addr: host, App: app, TraceID: rid})
		ctx = httpx.WithRequestID(ctx, rid)
		sw := &httpx.StatusWriter{ResponseWriter: w}
		// The mux records the matched pattern on the request it is given.
		r = r.WithContext(ctx)
		defer func() {
			if p := recover(); p != nil {
				rt.d.Log.ErrorContext(ctx, "panic", "request_id", rid, "panic", p, "stack", string(debug.Stack()))
				if sw.Code == 0 {
					httpx.Problem(sw, r, http.StatusInternalServerError, "Internal error", "the request failed; quote the request id "+rid)
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			code := sw.Code
			if code == 0 {
				code = http.StatusOK
			}
			rt.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
			rt.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
			// Paths may carry resource ids but never health data or secrets
			// (tokens travel in headers and bodies only).
			rt.d.Log.LogAttrs(ctx, slog.LevelInfo, "request",
				slog.String("request_id", rid), slog.String("method", r.Method), slog.String("route", route),
				slog.Int("status", code), slog.Duration("duration", time.Since(start)), slog.String("remote", host))
		}()
		next.ServeHTTP(sw, r)
	})
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func healthz(w http.ResponseWriter, r *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// ReadyCheck is one more condition of readiness, under its name.
type ReadyCheck struct {
	Name  string
	Check func(context.Context) error
}

// readyz fails while the database is unreachable or migrations are pending.
func (rt *root) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "migrations": "ok"}
	ok := true
	if err := rt.d.DB.Ping(ctx); err != nil {
		checks["database"], ok = "unreachable", false
	} else if cur, err := rt.d.DB.MigrationsCurrent(ctx); err != nil || !cur {
		checks["migrations"], ok = "pending", false
	}
	for _, c := range rt.d.Ready {
		if err := c.Check(ctx); err != nil {
			checks[c.Name], ok = err.Error(), false
		} else {
			checks[c.Name] = "ok"
		}
	}
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	httpx.WriteJSON(w, code, map[string]any{"ready": ok, "checks": checks})
}
