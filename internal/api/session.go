package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/principal"
)

// caller is the authenticated session with the subject access decides on.
type caller struct {
	session authn.Session
	subject access.Subject
	token   string
}

type sessionHandler func(w http.ResponseWriter, r *http.Request, c caller)

// bearer returns the token of an "Authorization: Bearer" header. API and
// FHIR clients authenticate with it; cookies belong to the web pages, which
// carry their own CSRF protection.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// withSession authenticates the request and obtains its access subject
// from the principal seam.
func (s *Server) withSession(h sessionHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fhirPath := strings.HasPrefix(r.URL.Path, "/fhir/")
		tok := bearer(r)
		sess, err := s.d.Authn.Authenticate(r.Context(), tok)
		if err != nil {
			if !errors.Is(err, authn.ErrNoSession) {
				s.d.Log.ErrorContext(r.Context(), "authenticate", "err", err, "request_id", requestID(r.Context()))
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="zorgkluis"`)
			if fhirPath {
				outcome(w, r, http.StatusUnauthorized, "login", "log on first: no valid session (expired, idle too long or logged off)")
			} else {
				problem(w, r, http.StatusUnauthorized, "Not logged on", "no valid session (expired, idle too long or logged off)")
			}
			return
		}
		if sess.MustChangePassword && !mayWithOldPassword(r.URL.Path) {
			problem(w, r, http.StatusForbidden, "Password change required", "change your password first (POST /api/v1/password)")
			return
		}
		subj, err := principal.FromSession(r.Context(), s.d.IDs, sess)
		if err != nil {
			s.d.Log.ErrorContext(r.Context(), "session subject", "err", err, "request_id", requestID(r.Context()))
			if fhirPath {
				outcome(w, r, http.StatusServiceUnavailable, "transient", "the service is temporarily unavailable")
			} else {
				problem(w, r, http.StatusServiceUnavailable, "Unavailable", "the service is temporarily unavailable")
			}
			return
		}
		src := audit.SourceFrom(r.Context())
		src.SessionID = sess.ID
		ctx := audit.WithSource(r.Context(), src)
		h(w, r.WithContext(ctx), caller{session: sess, subject: subj, token: tok})
	}
}

// mayWithOldPassword lists what a session with a temporary or expired
// password may do: change it, see itself, log off (ID-6).
func mayWithOldPassword(path string) bool {
	switch path {
	case "/api/v1/password", "/api/v1/session", "/api/v1/logoff", "/api/v1/logoff/all":
		return true
	}
	return false
}
