package httpx

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/oauth"
	"github.com/zorgkluis/zorgkluis/internal/principal"
)

// traceRE is what a MedMij-Request-ID or X-Correlation-ID may hold to be
// carried into the log and echoed (a UUID, or a similar token).
var traceRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{8,64}$`)

// app authenticates an app's access token (with its DPoP proof when the
// token is bound) and serves the request as the app acting for the person.
// The trace id of the request's events is the app's MedMij-Request-ID when
// it sent one; both it and X-Correlation-ID are echoed. After the handler,
// the call is a chain-log event with its status (LOG-6).
func (s *Sessions) app(w http.ResponseWriter, r *http.Request, tok string, h SessionHandler, fail Fail) {
	ctx := r.Context()
	src := audit.SourceFrom(ctx)
	var correlation string
	for _, name := range []string{"MedMij-Request-ID", "X-Correlation-ID"} {
		if v := r.Header.Get(name); traceRE.MatchString(v) {
			w.Header().Set(name, v)
			if name == "MedMij-Request-ID" {
				src.TraceID = v
			} else {
				correlation = v
			}
		}
	}
	ctx = audit.WithSource(ctx, src)
	var proof *oauth.DPoPProof
	if p := r.Header.Get("DPoP"); p != "" {
		proof = &oauth.DPoPProof{Header: p, Method: r.Method, URL: s.Apps.Issuer() + r.URL.Path}
	}
	a, err := s.Apps.Lookup(ctx, tok, proof)
	var oe *oauth.Error
	if errors.As(err, &oe) {
		scheme := "Bearer"
		if proof != nil {
			scheme = "DPoP"
		}
		w.Header().Set("WWW-Authenticate", scheme+` realm="zorgkluis", error="invalid_token", error_description=`+strconv.Quote(oe.Description))
		fail(w, r, http.StatusUnauthorized, "Invalid token", oe.Description)
		return
	}
	if err != nil {
		s.Log.ErrorContext(ctx, "access token lookup", "err", err, "request_id", RequestID(ctx))
		fail(w, r, http.StatusServiceUnavailable, "Unavailable", "the service is temporarily unavailable")
		return
	}
	subj, err := principal.FromApp(ctx, s.IDs, a)
	if err != nil {
		s.Log.ErrorContext(ctx, "app subject", "err", err, "request_id", RequestID(ctx))
		fail(w, r, http.StatusServiceUnavailable, "Unavailable", "the service is temporarily unavailable")
		return
	}
	src.SessionID = a.ConsentID
	ctx = audit.WithSource(ctx, src)
	sw := &StatusWriter{ResponseWriter: w}
	h(sw, r.WithContext(ctx), Caller{Subject: subj})
	code := sw.Code
	if code == 0 {
		code = http.StatusOK
	}
	if err := s.Apps.LogCall(context.WithoutCancel(ctx), a, r.Method, r.URL.Path, correlation, code); err != nil {
		s.Log.ErrorContext(ctx, "chain log", "err", err, "request_id", RequestID(ctx))
	}
}

// StatusWriter remembers the status a handler answered with (for the
// request log, the metrics and an app call's chain-log event).
type StatusWriter struct {
	http.ResponseWriter
	Code int
}

func (w *StatusWriter) WriteHeader(code int) {
	if w.Code == 0 {
		w.Code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.Code == 0 {
		w.Code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
