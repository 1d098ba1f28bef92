package httpx

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/devices"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/oauth"
	"github.com/zorgkluis/zorgkluis/internal/principal"
)

// Caller is the authenticated session with the subject access decides on.
type Caller struct {
	Session authn.Session
	Subject access.Subject
	Token   string
}

// SessionHandler is a handler that needs a caller.
type SessionHandler func(w http.ResponseWriter, r *http.Request, c Caller)

// Fail answers a request the guard refuses, in the protocol's own error
// format (an OperationOutcome on /fhir, a problem document elsewhere).
type Fail func(w http.ResponseWriter, r *http.Request, code int, title, detail string)

// Sessions guards handlers with a bearer-token session, or, when Apps is
// set, an app's OAuth access token (EX-2), or, when Devices is set, a
// paired device's token (AUTH-7).
type Sessions struct {
	Authn *authn.Service
	IDs   *identity.Registry
	Log   *slog.Logger
	Apps  *oauth.Service // nil: no app tokens here (the management API)
	// Devices takes paired devices' zkd_ tokens; nil: none here (the
	// management API: a device does not manage devices or accounts).
	Devices *devices.Service
}

// Bearer returns the token of an "Authorization: Bearer" (or, for an app's
// sender-constrained token, "DPoP") header. API and FHIR clients
// authenticate with it; cookies belong to the web pages, which carry their
// own CSRF protection.
func Bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	if len(h) > 5 && strings.EqualFold(h[:5], "dpop ") {
		return strings.TrimSpace(h[5:])
	}
	return ""
}

// Require authenticates the request and builds the access subject; fail
// answers when there is no valid session.
func (s *Sessions) Require(h SessionHandler, fail Fail) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := Bearer(r)
		if s.Apps != nil && strings.HasPrefix(tok, "zka_") {
			s.app(w, r, tok, h, fail)
			return
		}
		if s.Devices != nil && strings.HasPrefix(tok, devices.TokenPrefix) {
			s.device(w, r, tok, h, fail)
			return
		}
		sess, err := s.Authn.Authenticate(r.Context(), tok)
		if err != nil {
			if !errors.Is(err, authn.ErrNoSession) {
				s.Log.ErrorContext(r.Context(), "authenticate", "err", err, "request_id", RequestID(r.Context()))
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="zorgkluis"`)
			fail(w, r, http.StatusUnauthorized, "Not logged on", "no valid session (expired, idle too long or logged off)")
			return
		}
		if sess.MustChangePassword && !mayWithOldPassword(r.URL.Path) {
			Problem(w, r, http.StatusForbidden, "Password change required", "change your password first (POST /api/v1/password)")
			return
		}
		subj, err := principal.FromSession(r.Context(), s.IDs, sess)
		if err != nil {
			s.Log.ErrorContext(r.Context(), "session subject", "err", err, "request_id", RequestID(r.Context()))
			fail(w, r, http.StatusServiceUnavailable, "Unavailable", "the service is temporarily unavailable")
			return
		}
		src := audit.SourceFrom(r.Context())
		src.SessionID = sess.ID
		ctx := audit.WithSource(r.Context(), src)
		h(w, r.WithContext(ctx), Caller{Session: sess, Subject: subj, Token: tok})
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
