// Package httpx is the glue the protocol packages (fhirapi, mgmtapi and
// the ones to come) share: the request id, JSON and RFC 9457 problem
// answers, and the session guard that turns a bearer token into the
// caller's access subject through the principal seam. It mounts nothing:
// internal/router does.
package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

type requestIDKey struct{}

// WithRequestID puts the request's id in ctx (the router does, for every
// request).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID is the id the router gave the request, quoted in error answers
// and log lines.
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey{}).(string)
	return s
}

// WriteJSON answers v as JSON.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Problem writes an RFC 9457 problem document.
func Problem(w http.ResponseWriter, r *http.Request, code int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type":     "about:blank",
		"title":    title,
		"status":   code,
		"detail":   detail,
		"instance": RequestID(r.Context()),
	})
}

// DecodeJSON reads a JSON body into v; the body is already size-limited
// (server.LimitBody). It answers the client itself and returns false on any
// problem.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if IsMaxBytes(err) {
			Problem(w, r, http.StatusRequestEntityTooLarge, "Request body too large", "the body exceeds the size limit")
			return false
		}
		Problem(w, r, http.StatusBadRequest, "Invalid JSON", "the body must be a JSON object with the documented fields")
		return false
	}
	return true
}

// IsMaxBytes reports whether err is the body-size limit's.
func IsMaxBytes(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
