// Package api holds the HTTP handlers: /fhir (FHIR R4 JSON), /api/v1
// (log-on and management, RFC 9457 problem JSON) and the health endpoints.
// Handlers stay short: they authenticate, ask access.Decide, and hand the
// Grant to record, which logs before it returns data.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/record"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Deps are what the handlers need.
type Deps struct {
	DB      *store.DB
	IDs     *identity.Registry
	Authn   *authn.Service
	Access  *access.Decider
	Records *record.Store
	Audit   *audit.Log
	Clock   clock.Clock
	Log     *slog.Logger
	Metrics prometheus.Registerer
	Version string
	BaseURL string       // e.g. https://localhost:8443
	Web     http.Handler // the pages (internal/web) for every other path; nil: a placeholder home page
}

// Server is the HTTP API.
type Server struct {
	d        Deps
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New returns the API server; its metrics are registered on d.Metrics.
func New(d Deps) (*Server, error) {
	s := &Server{
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
		for _, c := range []prometheus.Collector{s.requests, s.latency} {
			if err := d.Metrics.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// Handler returns the routed handler with request context, logging and
// panic recovery.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.routes(mux)
	return s.requestContext(mux)
}

// routes registers every endpoint. Each area keeps its routes in its own
// file (logon.go, fhir.go, ...), so the table of contents is this function.
func (s *Server) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	s.logonRoutes(mux)
	s.webauthnRoutes(mux)
	s.fhirRoutes(mux)
	s.accessRoutes(mux)
	s.auditRoutes(mux)
	mux.HandleFunc("/api/", s.apiNotFound)
	if s.d.Web != nil {
		mux.Handle("/", s.d.Web)
	} else {
		mux.HandleFunc("GET /{$}", s.home)
	}
}

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// requestContext gives each request an id (X-Request-Id, echoed back), puts
// the audit source in the context, logs one line per request and turns a
// panic into a 500 problem without leaking details.
func (s *Server) requestContext(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rid := r.Header.Get("X-Request-Id")
		if !requestIDRE.MatchString(rid) {
			rid = newRequestID()
		}
		w.Header().Set("X-Request-Id", rid)
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		app := r.Header.Get("User-Agent")
		if len(app) > 200 {
			app = app[:200]
		}
		ctx := audit.WithSource(r.Context(), audit.Source{Addr: host, App: app, TraceID: rid})
		ctx = context.WithValue(ctx, requestIDKey{}, rid)
		sw := &statusWriter{ResponseWriter: w}
		// The mux records the matched pattern on the request it is given.
		r = r.WithContext(ctx)
		defer func() {
			if p := recover(); p != nil {
				s.d.Log.ErrorContext(ctx, "panic", "request_id", rid, "panic", p, "stack", string(debug.Stack()))
				if sw.code == 0 {
					problem(sw, r, http.StatusInternalServerError, "Internal error", "the request failed; quote the request id "+rid)
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			s.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
			s.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
			// Paths may carry resource ids but never health data or secrets
			// (tokens travel in headers and bodies only).
			s.d.Log.LogAttrs(ctx, slog.LevelInfo, "request",
				slog.String("request_id", rid), slog.String("method", r.Method), slog.String("route", route),
				slog.Int("status", code), slog.Duration("duration", time.Since(start)), slog.String("remote", host))
		}()
		next.ServeHTTP(sw, r)
	})
}

type requestIDKey struct{}

func requestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey{}).(string)
	return s
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz fails while the database is unreachable or migrations are pending.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "migrations": "ok"}
	ok := true
	if err := s.d.DB.Ping(ctx); err != nil {
		checks["database"], ok = "unreachable", false
	} else if cur, err := s.d.DB.MigrationsCurrent(ctx); err != nil || !cur {
		checks["migrations"], ok = "pending", false
	}
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"ready": ok, "checks": checks})
}

func isMaxBytes(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
