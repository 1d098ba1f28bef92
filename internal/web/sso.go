package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/sso"
)

// Single sign-on through the organisation's own identity provider
// (AUTH-3): the log-on page links to each active provider; the callback
// makes the session when the provider proved two factors and is trusted
// for them, or hands over to the local second factor otherwise. An upstream
// identity not linked yet is linked by the next local log-on.

const (
	// cookieSSO binds a log-on in flight to this browser. It is SameSite
	// Lax: the provider sends the browser back with a cross-site top-level
	// navigation, with which Strict cookies are not sent.
	cookieSSO = "__Host-zk-sso"
	// cookieLink holds a pending link until the local log-on completes it.
	cookieLink = "__Host-zk-link"
)

func (s *server) ssoRoutes(mux *http.ServeMux) {
	if s.d.SSO == nil {
		return
	}
	mux.HandleFunc("GET /logon/sso/{id}", s.ssoStart)
	mux.HandleFunc("GET /logon/sso/callback", s.ssoCallback)
}

func (s *server) ssoCallbackURL() string { return s.d.BaseURL + "/logon/sso/callback" }

func (s *server) ssoStart(w http.ResponseWriter, r *http.Request) {
	u, state, err := s.d.SSO.Start(r.Context(), r.PathValue("id"), s.ssoCallbackURL())
	if errors.Is(err, sso.ErrNotFound) {
		s.errorPage(w, r, http.StatusNotFound, "err.notfound")
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieSSO, Value: state, Path: "/", MaxAge: 600, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, u, http.StatusSeeOther)
}

func (s *server) ssoCallback(w http.ResponseWriter, r *http.Request) {
	var kept string
	if c, err := r.Cookie(cookieSSO); err == nil {
		kept = c.Value
	}
	http.SetCookie(w, &http.Cookie{Name: cookieSSO, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	q := r.URL.Query()
	source := audit.SourceFrom(r.Context()).Addr
	if q.Get("error") != "" {
		s.sameSite(w, r, "/logon?sso=refused")
		return
	}
	res, err := s.d.SSO.Finish(r.Context(), kept, q.Get("state"), q.Get("code"), s.ssoCallbackURL(), source)
	var re *sso.RefusedError
	if errors.As(err, &re) {
		s.d.Log.WarnContext(r.Context(), "sso log-on refused", "reason", re.Reason, "provider", res.Provider.ID)
		s.sameSite(w, r, "/logon?sso=refused")
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	if res.AccountID == "" {
		setCookie(w, cookieLink, res.Pending, 600)
		s.sameSite(w, r, "/logon?sso=link")
		return
	}
	ext := authn.External{AccountID: res.AccountID, Provider: res.Provider.Issuer, Source: source}
	if res.TwoFactors {
		tok, sess, err := s.d.Authn.CompleteExternal(r.Context(), ext)
		if errors.Is(err, authn.ErrNoAccount) || errors.Is(err, authn.ErrLogonFailed) {
			s.sameSite(w, r, "/logon?failed=1")
			return
		}
		if err != nil {
			s.failed(w, r, err)
			return
		}
		setCookie(w, cookieSession, tok, 0)
		s.setNotice(w, sess)
		s.sameSite(w, r, "/")
		return
	}
	attempt, err := s.d.Authn.BeginExternal(r.Context(), ext)
	if errors.Is(err, authn.ErrNoAccount) {
		s.sameSite(w, r, "/logon?failed=1")
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	setCookie(w, cookieAttempt, attempt, 600)
	s.sameSite(w, r, "/logon/factor")
}

// sameSite sends the browser on with a page of this site rather than a
// redirect: the provider's redirect made this a cross-site navigation, and
// a browser does not send the SameSite=Strict session cookie anywhere in
// such a chain; the page's own navigation is same-site.
func (s *server) sameSite(w http.ResponseWriter, r *http.Request, to string) {
	if !strings.HasPrefix(to, "/") || strings.HasPrefix(to, "//") {
		to = "/"
	}
	s.render(w, r, http.StatusOK, "continue", view{Title: "sso.continue", Data: to})
}

// linkAfterLogon completes a pending upstream link with the account that
// has just logged on locally.
func (s *server) linkAfterLogon(w http.ResponseWriter, r *http.Request, sess authn.Session) {
	c, err := r.Cookie(cookieLink)
	if err != nil || s.d.SSO == nil {
		return
	}
	clearCookie(w, cookieLink)
	if err := s.d.SSO.CompleteLink(r.Context(), c.Value, sess.AccountID); err != nil {
		s.d.Log.WarnContext(r.Context(), "sso link after log-on", "err", err)
	}
}
