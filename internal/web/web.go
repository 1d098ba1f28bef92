// Package web owns the server-rendered pages: the log-on pages, the person's
// portal, the professional's workspace and the admin and security consoles,
// in Dutch by default and in English on request.
//
// It promises:
//   - every piece of health data on a page comes from record under a Grant
//     from access.Decide, so it is decided and durably logged before the page
//     is written (the one rule); reading the access log is logged too;
//   - no health data in URLs or page titles: patients appear in URLs only by
//     their opaque random id, searches by BSN are POSTed, a page of one
//     patient's data carries only the patient's initials in its title;
//   - pages work without JavaScript (except WebAuthn) and under the server's
//     CSP (script-src 'self'; style-src 'self'): no inline script or style;
//   - every state-changing request is a POST carrying a CSRF token
//     (double-submit cookie, checked in constant time, plus an Origin check);
//   - the session lives in a Secure, HttpOnly, SameSite=Strict cookie holding
//     the authn session token; authn enforces the idle timeout and lifetime,
//     and a small script warns before the idle timeout and then logs off.
package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/compliance"
	"github.com/zorgkluis/zorgkluis/internal/devices"
	"github.com/zorgkluis/zorgkluis/internal/governance"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/oauth"
	"github.com/zorgkluis/zorgkluis/internal/onboard"
	"github.com/zorgkluis/zorgkluis/internal/pki"
	"github.com/zorgkluis/zorgkluis/internal/principal"
	"github.com/zorgkluis/zorgkluis/internal/record"
	"github.com/zorgkluis/zorgkluis/internal/sso"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Indexer computes blind indexes of identifiers (keys.Keyring is one); the
// professional's "find by BSN" needs it.
type Indexer interface {
	BlindIndex(ctx context.Context, tenantID, kind, value string) ([]byte, error)
}

// Deps are the services the pages call.
type Deps struct {
	IDs     *identity.Registry
	Authn   *authn.Service
	Access  *access.Decider
	Records *record.Store
	Audit   *audit.Log
	Index   Indexer // nil: no BSN search
	Clock   clock.Clock
	Log     *slog.Logger
	// BaseURL is the server's public URL (names the server in exports).
	BaseURL string
	// IdleTimeout is authn's idle timeout; the page script warns before it.
	IdleTimeout time.Duration
	// Onboard activates invited accounts (the /activate page); nil: no page.
	Onboard *onboard.Service
	// CA is the organisations' CA (the admin's /admin/systems page); nil: no page.
	CA *pki.CA
	// Backups is the backup schedule's record (the officer's /security/backups
	// page, DP-5's evidence); nil: no page.
	Backups BackupHistory
	// Governance keeps the access reviews (the admins' and officer's
	// /governance/reviews pages); nil: no pages.
	Governance *governance.Service
	// Compliance is the controls register and the compliance report (the
	// admins' and officer's /governance/controls pages); nil: no pages.
	Compliance *compliance.Service
	// SSO is single sign-on through the tenants' identity providers (the
	// log-on page's links and the callback); nil: none.
	SSO *sso.Service
	// Apps is the authorisation server for persons' apps (the consent page
	// and "Mijn apps"); nil: no pages.
	Apps *oauth.Service
	// Devices are the paired mobile devices ("Mijn apparaten" and the
	// admin's devices per account); nil: no pages.
	Devices *devices.Service
	// Rand is the source of CSRF tokens (crypto/rand when nil).
	Rand interface{ Read([]byte) (int, error) }
}

const (
	cookieSession = "__Host-zk-session"
	cookieAttempt = "__Host-zk-attempt"
	cookieCSRF    = "__Host-zk-csrf"
	cookieNotice  = "__Host-zk-notice"
	cookieLang    = "zk-lang"
	maxForm       = 64 << 10
)

type server struct {
	d     Deps
	pages map[string]*template.Template
}

// Routes registers the pages and their static assets on mux, a mux of the
// pages' own that the router gives, and returns it behind the pages' guard.
func Routes(mux *http.ServeMux, d Deps) (http.Handler, error) {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.IdleTimeout <= 0 {
		d.IdleTimeout = 15 * time.Minute
	}
	s := &server{d: d, pages: map[string]*template.Template{}}
	if err := s.parse(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(http.FileServerFS(static))))
	s.logonRoutes(mux)
	s.activateRoutes(mux)
	s.personRoutes(mux)
	s.professionalRoutes(mux)
	s.adminRoutes(mux)
	s.systemRoutes(mux)
	s.appRoutes(mux)
	s.ssoRoutes(mux)
	s.reviewRoutes(mux)
	s.complianceRoutes(mux)
	s.changeRoutes(mux)
	s.deviceRoutes(mux)
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("/", s.notFound)
	return s.guard(mux), nil
}

// staticHandler lets the browser cache the embedded assets for a while;
// everything else is no-store.
func staticHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		h.ServeHTTP(w, r)
	})
}

// guard refuses cross-site POSTs before any handler runs: the CSRF token
// must match its cookie and the request must come from this origin.
func (s *server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			limit := int64(maxForm)
			if strings.HasPrefix(r.URL.Path, "/governance/controls/") && strings.HasSuffix(r.URL.Path, "/documents") {
				limit = compliance.MaxDocument + maxForm // an evidence document and its form's framing
			}
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			if !s.sameOrigin(r) || !s.csrfOK(r) {
				s.errorPage(w, r, http.StatusForbidden, "err.csrf")
				return
			}
		} else if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD, POST")
			s.errorPage(w, r, http.StatusMethodNotAllowed, "err.method")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin trusts the browser's Sec-Fetch-Site when it sends one; else an
// Origin, when present, must be this host. (With Referrer-Policy no-referrer
// browsers send "Origin: null" on same-origin form posts, so null alone
// proves nothing either way; the CSRF token still has to match.)
func (s *server) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func (s *server) csrfOK(r *http.Request) bool {
	c, err := r.Cookie(cookieCSRF)
	if err != nil || len(c.Value) < 20 {
		return false
	}
	form := r.PostFormValue("csrf")
	return subtle.ConstantTimeCompare([]byte(form), []byte(c.Value)) == 1
}

// csrfToken returns the request's CSRF token, setting its cookie when the
// browser has none yet.
func (s *server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(cookieCSRF); err == nil && len(c.Value) >= 20 {
		return c.Value
	}
	tok := s.random(24)
	http.SetCookie(w, &http.Cookie{Name: cookieCSRF, Value: tok, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return tok
}

func (s *server) random(n int) string {
	b := make([]byte, n)
	if _, err := s.d.Rand.Read(b); err != nil {
		panic("web: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func clearCookie(w http.ResponseWriter, name string) { setCookie(w, name, "", -1) }

// view is what every page template gets.
type view struct {
	Lang  string
	Title string // message key; never health data
	// Initials are the patient's on a page of one patient's data, so that
	// tabs can be told apart; never the name or the BSN.
	Initials  string
	CSRF      string
	Path      string
	User      *viewUser
	IdleSecs  int
	Notice    *logonNotice
	Emergency bool
	Error     string // message key
	Message   string // message key
	Data      any
}

type viewUser struct {
	Name       string
	Role       string
	Org        string
	ActingFor  bool
	Roles      int
	MenuPerson bool
	MenuPro    bool
	MenuAdmin  bool
	MenuSec    bool
	// MenuBackups: the officer's backups page is mounted.
	MenuBackups bool
	// MenuSystems: the CA's systems page is mounted.
	MenuSystems bool
	// MenuApps: the authorisation server is on ("Mijn apps").
	MenuApps bool
	// MenuReviews: the access reviews are mounted (admins and officers).
	MenuReviews bool
	// MenuControls: the controls register and compliance report are mounted.
	MenuControls bool
	// MenuDevices: paired devices are on ("Mijn apparaten", every role).
	MenuDevices bool
	// MenuOperator: a platform operator's own requests (AZ-6).
	MenuOperator bool
}

type logonNotice struct {
	Previous time.Time
	Failed   int
}

// render writes page name with v. A template error is logged and answered
// with a generic error page; nothing partial is sent.
func (s *server) render(w http.ResponseWriter, r *http.Request, code int, name string, v view) {
	t, ok := s.pages[name]
	if !ok {
		s.d.Log.ErrorContext(r.Context(), "web: no such page", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if v.Lang == "" {
		v.Lang = s.lang(w, r)
	}
	if v.CSRF == "" {
		v.CSRF = s.csrfToken(w, r)
	}
	v.Path = r.URL.Path
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		s.d.Log.ErrorContext(r.Context(), "web: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(buf.String()))
}

func (s *server) errorPage(w http.ResponseWriter, r *http.Request, code int, key string) {
	s.render(w, r, code, "error", view{Title: "err.title", Error: key})
}

func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	s.errorPage(w, r, http.StatusNotFound, "err.notfound")
}

// failed answers an internal failure without detail; a failure to log means
// nothing was shown (LOG-3).
func (s *server) failed(w http.ResponseWriter, r *http.Request, err error) {
	s.d.Log.ErrorContext(r.Context(), "web: request failed", "err", err, "path", r.URL.Path)
	if errors.Is(err, audit.ErrUnavailable) {
		s.errorPage(w, r, http.StatusServiceUnavailable, "err.log")
		return
	}
	s.errorPage(w, r, http.StatusServiceUnavailable, "err.unavailable")
}

// lang picks the page language: ?lang= (remembered in a cookie), the
// cookie, then Accept-Language; Dutch by default.
func (s *server) lang(w http.ResponseWriter, r *http.Request) string {
	if l := r.URL.Query().Get("lang"); l == "nl" || l == "en" {
		http.SetCookie(w, &http.Cookie{Name: cookieLang, Value: l, Path: "/", MaxAge: 365 * 24 * 3600, Secure: true, SameSite: http.SameSiteStrictMode})
		return l
	}
	if c, err := r.Cookie(cookieLang); err == nil && (c.Value == "nl" || c.Value == "en") {
		return c.Value
	}
	return acceptLanguage(r.Header.Get("Accept-Language"))
}

// acceptLanguage returns "en" when English is preferred over Dutch.
func acceptLanguage(h string) string {
	best, bestQ := "nl", -1.0
	for _, part := range strings.Split(h, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if (base == "nl" || base == "en") && q > bestQ {
			best, bestQ = base, q
		}
	}
	return best
}

// sessionCtx is an authenticated page request.
type sessionCtx struct {
	sess    authn.Session
	subject access.Subject
	token   string
	user    *viewUser
}

type sessionHandler func(w http.ResponseWriter, r *http.Request, c *sessionCtx)

// authed authenticates the page request from the session cookie; without a
// valid session it sends the browser to the log-on page. A session limited
// to changing the password, or still without a role, goes there first.
func (s *server) authed(h sessionHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := s.session(w, r)
		if !ok {
			return
		}
		if c.sess.MustChangePassword && r.URL.Path != "/password" && r.URL.Path != "/logoff" {
			http.Redirect(w, r, "/password", http.StatusSeeOther)
			return
		}
		if c.sess.Role == "" && r.URL.Path != "/role" && r.URL.Path != "/logoff" && r.URL.Path != "/password" {
			http.Redirect(w, r, "/role", http.StatusSeeOther)
			return
		}
		h(w, r, c)
	}
}

func (s *server) session(w http.ResponseWriter, r *http.Request) (*sessionCtx, bool) {
	ck, err := r.Cookie(cookieSession)
	if err != nil || ck.Value == "" {
		http.Redirect(w, r, "/logon", http.StatusSeeOther)
		return nil, false
	}
	sess, err := s.d.Authn.Authenticate(r.Context(), ck.Value)
	if err != nil {
		if !errors.Is(err, authn.ErrNoSession) {
			s.failed(w, r, err)
			return nil, false
		}
		clearCookie(w, cookieSession)
		http.Redirect(w, r, "/logon?expired=1", http.StatusSeeOther)
		return nil, false
	}
	subj, err := principal.FromSession(r.Context(), s.d.IDs, sess)
	if err != nil {
		s.failed(w, r, err)
		return nil, false
	}
	roles, err := s.d.Authn.CurrentRoles(r.Context(), sess.AccountID)
	if err != nil {
		s.failed(w, r, err)
		return nil, false
	}
	u := &viewUser{Name: subj.Name(), Role: string(sess.Role), Org: subj.Organisation(), ActingFor: sess.OnBehalfOf != "", Roles: len(roles),
		MenuDevices: s.d.Devices != nil && sess.Role != ""}
	switch sess.Role {
	case access.RolePerson:
		u.MenuPerson, u.MenuApps = true, s.d.Apps != nil
	case access.RoleProfessional, access.RoleAssistant:
		u.MenuPro = true
	case access.RoleAppAdmin:
		u.MenuAdmin, u.MenuSystems, u.MenuReviews, u.MenuControls = true, s.d.CA != nil, s.d.Governance != nil, s.d.Compliance != nil
	case access.RoleSecurityOfficer:
		u.MenuSec, u.MenuBackups, u.MenuSystems, u.MenuReviews, u.MenuControls = true, s.d.Backups != nil, s.d.CA != nil, s.d.Governance != nil, s.d.Compliance != nil
	case access.RoleOperator:
		u.MenuOperator = true
	default:
		if sess.Role != "" && sess.Role != access.RoleOperator {
			u.MenuPro = true // tenant roles are based on professional-like roles
		}
	}
	src := audit.SourceFrom(r.Context())
	src.SessionID = sess.ID
	*r = *r.WithContext(audit.WithSource(r.Context(), src))
	return &sessionCtx{sess: sess, subject: subj, token: ck.Value, user: u}, true
}

// page fills the parts of a view every signed-in page has.
func (s *server) page(w http.ResponseWriter, r *http.Request, c *sessionCtx, title string, data any) view {
	v := view{Title: title, User: c.user, IdleSecs: int(s.d.IdleTimeout / time.Second), Data: data}
	if ck, err := r.Cookie(cookieNotice); err == nil {
		prev, failed, _ := strings.Cut(ck.Value, ".")
		us, err1 := strconv.ParseInt(prev, 10, 64)
		n, err2 := strconv.Atoi(failed)
		if err1 == nil && err2 == nil {
			v.Notice = &logonNotice{Failed: n}
			if us > 0 {
				v.Notice.Previous = clock.FromMicros(us)
			}
		}
		clearCookie(w, cookieNotice)
	}
	return v
}

// home sends a signed-in user to the start page of their role.
func (s *server) home(w http.ResponseWriter, r *http.Request) {
	s.authed(func(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
		dest := "/logon"
		switch {
		case c.user.MenuPerson:
			dest = "/me"
		case c.user.MenuPro:
			dest = "/patients"
		case c.user.MenuAdmin:
			dest = "/admin/rights"
		case c.user.MenuSec:
			dest = "/security/emergencies"
		case c.user.MenuOperator:
			dest = "/operator"
		default:
			s.render(w, r, http.StatusOK, "nohealth", s.page(w, r, c, "nav.home", nil))
			return
		}
		// Carry the one-time log-on notice to the start page.
		http.Redirect(w, r, dest, http.StatusSeeOther)
	})(w, r)
}

// requireRole answers 403 unless the session acts in one of roles with
// sufficient assurance and the role is current (access.CheckActor).
func (s *server) requireRole(w http.ResponseWriter, r *http.Request, c *sessionCtx, roles ...access.Role) bool {
	err := s.d.Access.CheckActor(r.Context(), c.subject, roles...)
	if err == nil {
		return true
	}
	if errors.Is(err, access.ErrForbidden) || access.IsDenied(err) {
		s.errorPage(w, r, http.StatusForbidden, "err.forbidden")
		return false
	}
	s.failed(w, r, err)
	return false
}

// userError turns a rule-management error into a message safe to show,
// in lang (refusal.go's ruleForms); ok is false for any other error.
func userError(lang string, err error) (string, bool) {
	if m, ok := changeMessage(lang, err); ok {
		return m, true
	}
	for _, e := range []struct {
		sentinel error
		general  string
	}{{access.ErrForbidden, "rule.forbidden"}, {access.ErrNotFound, "rule.notfound"}, {access.ErrInvalid, "rule.invalid"},
		{access.ErrConflict, "rule.decided"}, {identity.ErrNotFound, "rule.notfound"}, {identity.ErrExists, "rule.exists"}} {
		if errors.Is(err, e.sentinel) {
			return ruleMessage(lang, err, e.sentinel, e.general), true
		}
	}
	return "", false
}
