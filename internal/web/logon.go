package web

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/password"
)

func (s *server) logonRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /logon", s.logonForm)
	mux.HandleFunc("POST /logon", s.logonBegin)
	mux.HandleFunc("GET /logon/factor", s.factorForm)
	mux.HandleFunc("POST /logon/factor", s.factorComplete)
	mux.HandleFunc("POST /logon/send", s.factorSend)
	mux.HandleFunc("GET /role", s.authed(s.roleForm))
	mux.HandleFunc("POST /role", s.authed(s.roleChoose))
	mux.HandleFunc("GET /password", s.authed(s.passwordForm))
	mux.HandleFunc("POST /password", s.authed(s.passwordChange))
	mux.HandleFunc("POST /logoff", s.logoff)
	mux.HandleFunc("GET /logoff", s.logoff) // the idle script's way out; logging off is harmless to force
	mux.HandleFunc("GET /keepalive", s.authed(func(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
		w.WriteHeader(http.StatusNoContent)
	}))
}

// logonForm shows the warning and nothing about the system (AUTH-4).
func (s *server) logonForm(w http.ResponseWriter, r *http.Request) {
	v := view{Title: "logon.title"}
	q := r.URL.Query()
	switch {
	case q.Has("failed"):
		v.Error = "logon.failed"
	case q.Has("expired"):
		v.Error = "logon.expired"
	case q.Has("idle"):
		v.Message = "logon.idle"
	case q.Has("off"):
		v.Message = "logon.loggedoff"
	}
	s.render(w, r, http.StatusOK, "logon", v)
}

func (s *server) logonBegin(w http.ResponseWriter, r *http.Request) {
	user, pw := r.PostFormValue("username"), r.PostFormValue("password")
	if len(user) > 256 || len(pw) > 1024 {
		http.Redirect(w, r, "/logon?failed=1", http.StatusSeeOther)
		return
	}
	attempt, err := s.d.Authn.Begin(r.Context(), user, pw, audit.SourceFrom(r.Context()).Addr)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	setCookie(w, cookieAttempt, attempt, 600)
	http.Redirect(w, r, "/logon/factor", http.StatusSeeOther)
}

type factorData struct {
	Factors  []string
	WebAuthn bool
	Sent     string
}

// factorKinds is the choice after the first step: the same for everyone,
// so it says nothing about the account (AUTH-4).
func (s *server) factorKinds() []string {
	var out []string
	for _, f := range s.d.Authn.FactorKinds() {
		if f != authn.FactorWebAuthn {
			out = append(out, f)
		}
	}
	return out
}

func (s *server) factorForm(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieAttempt); err != nil || c.Value == "" {
		http.Redirect(w, r, "/logon", http.StatusSeeOther)
		return
	}
	d := factorData{Factors: s.factorKinds(), WebAuthn: slices.Contains(s.d.Authn.FactorKinds(), authn.FactorWebAuthn)}
	if ch := r.URL.Query().Get("sent"); ch == authn.FactorSMS || ch == authn.FactorEmail {
		d.Sent = ch
	}
	v := view{Title: "factor.title", Data: d}
	if d.Sent != "" {
		v.Message = "factor.sent"
	}
	s.render(w, r, http.StatusOK, "factor", v)
}

func (s *server) factorSend(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(cookieAttempt)
	if err != nil {
		http.Redirect(w, r, "/logon", http.StatusSeeOther)
		return
	}
	ch := r.PostFormValue("channel")
	if ch != authn.FactorSMS && ch != authn.FactorEmail {
		http.Redirect(w, r, "/logon/factor", http.StatusSeeOther)
		return
	}
	if err := s.d.Authn.SendLogonCode(r.Context(), c.Value, ch); err != nil {
		s.failed(w, r, err)
		return
	}
	http.Redirect(w, r, "/logon/factor?sent="+ch, http.StatusSeeOther)
}

func (s *server) factorComplete(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(cookieAttempt)
	if err != nil {
		http.Redirect(w, r, "/logon", http.StatusSeeOther)
		return
	}
	clearCookie(w, cookieAttempt) // the attempt is consumed whatever the outcome
	factor, code := r.PostFormValue("factor"), strings.TrimSpace(r.PostFormValue("code"))
	if !slices.Contains(s.factorKinds(), factor) || len(code) > 64 {
		http.Redirect(w, r, "/logon?failed=1", http.StatusSeeOther)
		return
	}
	tok, sess, err := s.d.Authn.Complete(r.Context(), c.Value, factor, code, audit.SourceFrom(r.Context()).Addr)
	if errors.Is(err, authn.ErrLogonFailed) {
		http.Redirect(w, r, "/logon?failed=1", http.StatusSeeOther)
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	s.startSession(w, r, tok, sess)
}

// startSession sets the session cookie and the one-time notice of the
// previous log-on and the failures since (AUTH-4).
func (s *server) startSession(w http.ResponseWriter, r *http.Request, tok string, sess authn.Session) {
	setCookie(w, cookieSession, tok, 0)
	var prev int64
	if !sess.PreviousLogon.IsZero() {
		prev = clock.Micros(sess.PreviousLogon)
	}
	setCookie(w, cookieNotice, strconv.FormatInt(prev, 10)+"."+strconv.Itoa(sess.FailedSince), 300)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *server) logoff(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieSession); err == nil && c.Value != "" {
		if err := s.d.Authn.Logout(r.Context(), c.Value); err != nil && !errors.Is(err, authn.ErrNoSession) {
			s.d.Log.WarnContext(r.Context(), "web: log-off", "err", err)
		}
	}
	clearCookie(w, cookieSession)
	clearCookie(w, cookieAttempt)
	if r.Method == http.MethodGet && r.URL.Query().Has("idle") {
		http.Redirect(w, r, "/logon?idle=1", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/logon?off=1", http.StatusSeeOther)
}

func (s *server) roleForm(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	roles, err := s.d.IDs.Roles(r.Context(), c.sess.AccountID)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "role", s.page(w, r, c, "role.title", map[string]any{"Roles": roles, "Current": string(c.sess.Role)}))
}

func (s *server) roleChoose(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	tok, _, err := s.d.Authn.ChooseRole(r.Context(), c.token, r.PostFormValue("role"))
	if errors.Is(err, authn.ErrNotPermitted) {
		s.errorPage(w, r, http.StatusForbidden, "err.forbidden")
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	setCookie(w, cookieSession, tok, 0) // a role switch gets a new token
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *server) passwordForm(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.render(w, r, http.StatusOK, "password", s.page(w, r, c, "password.title", nil))
}

func (s *server) passwordChange(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	v := s.page(w, r, c, "password.title", nil)
	cur, next, again := r.PostFormValue("current"), r.PostFormValue("new"), r.PostFormValue("repeat")
	if next != again {
		v.Error = "password.mismatch"
		s.render(w, r, http.StatusBadRequest, "password", v)
		return
	}
	err := s.d.Authn.ChangePassword(r.Context(), c.sess.AccountID, cur, next)
	switch {
	case err == nil:
		v.Message = "password.saved"
		// The session stays limited until the next log-on with the new password.
		if c.sess.MustChangePassword {
			_ = s.d.Authn.Logout(r.Context(), c.token)
			clearCookie(w, cookieSession)
			http.Redirect(w, r, "/logon?off=1", http.StatusSeeOther)
			return
		}
		s.render(w, r, http.StatusOK, "password", v)
	case errors.Is(err, authn.ErrLogonFailed):
		v.Error = "password.wrong"
		s.render(w, r, http.StatusBadRequest, "password", v)
	case errors.Is(err, authn.ErrPasswordReused) || isViolation(err):
		v.Error = "password.weak"
		s.render(w, r, http.StatusBadRequest, "password", v)
	default:
		s.failed(w, r, err)
	}
}

// isViolation reports a password the policy refused: the user's to fix.
func isViolation(err error) bool {
	var v password.Violations
	return errors.As(err, &v)
}

// roleLabel is used by tests and templates through the message table.
func roleLabel(lang string, r access.Role) string { return msg(lang, "role."+string(r)) }
