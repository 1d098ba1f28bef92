package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/password"
)

func (s *server) logonRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /logon", s.logonForm)
	mux.HandleFunc("POST /logon", s.logonBegin)
	mux.HandleFunc("GET /logon/factor", s.factorForm)
	mux.HandleFunc("POST /logon/factor", s.factorComplete)
	mux.HandleFunc("POST /logon/send", s.factorSend)
	mux.HandleFunc("POST /logon/webauthn/begin", s.webauthnLogonBegin)
	mux.HandleFunc("POST /logon/webauthn", s.webauthnLogonFinish)
	mux.HandleFunc("POST /me/factors/webauthn/begin", s.authed(s.webauthnAddBegin))
	mux.HandleFunc("POST /me/factors/webauthn", s.authed(s.steppedUp(s.webauthnAddFinish)))
	mux.HandleFunc("POST /me/factors/webauthn/remove", s.authed(s.steppedUp(s.webauthnRemove)))
	mux.HandleFunc("POST /me/stepup", s.authed(s.stepUp))
	mux.HandleFunc("POST /me/stepup/webauthn/begin", s.authed(s.stepUpWebAuthnBegin))
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
	if s.d.SSO != nil {
		ps, err := s.d.SSO.Providers(r.Context(), "")
		if err != nil {
			s.failed(w, r, err)
			return
		}
		v.Data = ps
	}
	switch {
	case q.Get("sso") == "refused":
		v.Error = "sso.refused"
	case q.Get("sso") == "link":
		v.Message = "sso.link"
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
	s.setNotice(w, sess)
	s.linkAfterLogon(w, r, sess)
	if sess.Role == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther) // the role first; the consent page is still remembered
		return
	}
	http.Redirect(w, r, nextAfterLogon(w, r), http.StatusSeeOther)
}

// setNotice sets the one-time notice of the previous log-on and the
// failures since (AUTH-4).
func (s *server) setNotice(w http.ResponseWriter, sess authn.Session) {
	var prev int64
	if !sess.PreviousLogon.IsZero() {
		prev = clock.Micros(sess.PreviousLogon)
	}
	setCookie(w, cookieNotice, strconv.FormatInt(prev, 10)+"."+strconv.Itoa(sess.FailedSince), 300)
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
	roles, err := s.d.Authn.CurrentRoles(r.Context(), c.sess.AccountID)
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
	http.Redirect(w, r, nextAfterLogon(w, r), http.StatusSeeOther)
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

// WebAuthn (AUTH-2). The page script (static/webauthn.js) fetches the
// ceremony options with the CSRF token, lets the browser talk to the key,
// and posts the answer in an ordinary form, so the outcome is a normal page
// like every other log-on step.

// maxKeyAnswer bounds the PublicKeyCredential JSON a form may carry.
const maxKeyAnswer = 32 << 10

// writeJSON answers a script; ceremony options hold a fresh challenge.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	writeRawJSON(w, code, b)
}

func writeRawJSON(w http.ResponseWriter, code int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// webauthnLogonBegin gives the options for the attempt in the cookie. They
// are the same kind for every attempt (AUTH-4).
func (s *server) webauthnLogonBegin(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(cookieAttempt)
	if err != nil || c.Value == "" || len(c.Value) > 128 || !s.d.Authn.WebAuthnEnabled() {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": msg(s.lang(w, r), "logon.failed")})
		return
	}
	opts, err := s.d.Authn.BeginWebAuthnLogon(r.Context(), c.Value)
	if errors.Is(err, authn.ErrLogonFailed) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": msg(s.lang(w, r), "logon.failed")})
		return
	}
	if err != nil {
		s.d.Log.ErrorContext(r.Context(), "web: webauthn log-on options", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": msg(s.lang(w, r), "err.unavailable")})
		return
	}
	writeRawJSON(w, http.StatusOK, opts)
}

// webauthnLogonFinish completes the attempt with the key's answer; like a
// code, the attempt is consumed whatever the outcome.
func (s *server) webauthnLogonFinish(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(cookieAttempt)
	if err != nil {
		http.Redirect(w, r, "/logon", http.StatusSeeOther)
		return
	}
	clearCookie(w, cookieAttempt)
	answer := r.PostFormValue("credential")
	if answer == "" || len(answer) > maxKeyAnswer || !s.d.Authn.WebAuthnEnabled() {
		http.Redirect(w, r, "/logon?failed=1", http.StatusSeeOther)
		return
	}
	tok, sess, err := s.d.Authn.Complete(r.Context(), c.Value, authn.FactorWebAuthn, answer, audit.SourceFrom(r.Context()).Addr)
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

// webauthnData fills the factors page's key list.
func (s *server) webauthnData(r *http.Request, c *sessionCtx, d *factorsData) error {
	d.WebAuthn = s.d.Authn.WebAuthnEnabled()
	if !d.WebAuthn {
		return nil
	}
	keys, err := s.d.Authn.WebAuthnCredentials(r.Context(), c.sess.AccountID)
	d.Keys = keys
	return err
}

func (s *server) webauthnAddBegin(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	lang := s.lang(w, r)
	if !s.d.Authn.WebAuthnEnabled() {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": msg(lang, "factors.webauthn.none")})
		return
	}
	if s.d.Authn.RequireStepUp(c.sess) != nil {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": msg(lang, "factors.stepup.needed")})
		return
	}
	opts, err := s.d.Authn.BeginWebAuthnRegistration(r.Context(), c.sess)
	s.answerOptions(w, r, lang, "registration", opts, err)
}

// answerOptions answers the options of a WebAuthn ceremony, or why there
// are none.
func (s *server) answerOptions(w http.ResponseWriter, r *http.Request, lang, ceremony string, opts []byte, err error) {
	switch {
	case errors.Is(err, authn.ErrWebAuthnTooMany):
		writeJSON(w, http.StatusConflict, map[string]string{"error": msg(lang, "factors.webauthn.toomany")})
	case err != nil:
		s.d.Log.ErrorContext(r.Context(), "web: webauthn "+ceremony+" options", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": msg(lang, "err.unavailable")})
	default:
		writeRawJSON(w, http.StatusOK, opts)
	}
}

func (s *server) webauthnAddFinish(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	answer := r.PostFormValue("credential")
	if answer == "" || len(answer) > maxKeyAnswer {
		s.renderFactors(w, r, c, &factorsData{KeyError: "factors.webauthn.failed"}, "")
		return
	}
	_, err := s.d.Authn.FinishWebAuthnRegistration(r.Context(), c.sess, r.PostFormValue("name"), []byte(answer), audit.SourceFrom(r.Context()).Addr)
	switch {
	case err == nil:
		s.renderFactors(w, r, c, &factorsData{}, "factors.webauthn.added")
	case errors.Is(err, authn.ErrFactorLabel):
		s.renderFactors(w, r, c, &factorsData{KeyError: "factors.label.bad", status: http.StatusBadRequest}, "")
	case errors.Is(err, authn.ErrWebAuthnCeremony), errors.Is(err, authn.ErrWebAuthnOff):
		s.renderFactors(w, r, c, &factorsData{KeyError: "factors.webauthn.failed"}, "")
	default:
		s.failed(w, r, err)
	}
}

func (s *server) webauthnRemove(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	err := s.d.Authn.RemoveWebAuthn(r.Context(), c.sess.AccountID, r.PostFormValue("id"), audit.SourceFrom(r.Context()).Addr)
	switch {
	case err == nil:
		s.renderFactors(w, r, c, &factorsData{}, "admin.done")
	case errors.Is(err, authn.ErrLastStrongFactor):
		s.renderFactors(w, r, c, &factorsData{Refused: true}, "")
	case errors.Is(err, identity.ErrNotFound):
		s.errorPage(w, r, http.StatusNotFound, "err.notfound")
	default:
		s.failed(w, r, err)
	}
}
