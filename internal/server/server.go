package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Timeouts bound every phase of a request so slow clients cannot hold
// connections.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 120 * time.Second
	ShutdownTimeout   = 30 * time.Second
)

// New returns an http.Server for h with the timeouts above. tlsConf nil
// means plain HTTP (loopback development only; config enforces that).
func New(h http.Handler, tlsConf *tls.Config, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Run serves on ln until ctx is cancelled, then shuts down gracefully,
// letting in-flight requests finish (up to ShutdownTimeout).
func Run(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// Listen opens a TCP listener on addr (host:port; port 0 picks one).
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Endpoint is one listener and what it serves: the public TLS endpoint, the
// metrics endpoint, and (next) one that requires client certificates, each
// with its own TLS configuration.
type Endpoint struct {
	Name     string // in log lines
	Listener net.Listener
	Handler  http.Handler
	TLS      *tls.Config // nil: plain HTTP (loopback development, metrics)
}

// Serve serves every endpoint until ctx is cancelled, then shuts them all
// down gracefully. When one endpoint fails, the others are shut down too and
// its error is returned.
func Serve(ctx context.Context, log *slog.Logger, eps ...Endpoint) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(eps))
	for _, ep := range eps {
		go func() {
			err := Run(ctx, New(ep.Handler, ep.TLS, log), ep.Listener)
			if err != nil {
				err = fmt.Errorf("%s endpoint: %w", ep.Name, err)
				cancel()
			}
			errs <- err
		}()
	}
	var first error
	for range eps {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// SecurityHeaders sets HSTS (on TLS) and the NCSC web-application headers on
// every response.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// LimitBody caps every request body at n bytes; a larger body fails to read
// with *http.MaxBytesError, which handlers answer with 413.
func LimitBody(n int64, next http.Handler) http.Handler {
	return LimitBodyBy(func(*http.Request) int64 { return n }, next)
}

// LimitBodyBy is LimitBody with the limit chosen per request (a route that
// takes uploads allows more than the rest).
func LimitBodyBy(limit func(*http.Request) int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := limit(r)
		if r.ContentLength > n {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			fmt.Fprintf(w, `{"type":"about:blank","title":"Request body too large","status":413,"detail":"the limit is %d bytes"}`, n)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		next.ServeHTTP(w, r)
	})
}
