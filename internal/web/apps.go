package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/oauth"
)

// The person's side of the authorisation server (EX-1, AZ-4, LOG-8): the
// consent page an app's authorization request lands on, and "Mijn apps",
// the overview of consents with withdrawal.

// cookieNext holds the consent page to return to after the log-on; an
// app's request arrives as a cross-site navigation, which the SameSite
// session cookie is not sent with, so the person logs on first.
const cookieNext = "__Host-zk-next"

const consentPrefix = "/apps/consent?request="

func (s *server) appRoutes(mux *http.ServeMux) {
	if s.d.Apps == nil {
		return
	}
	mux.HandleFunc("GET /apps/consent", s.consentEntry)
	mux.HandleFunc("POST /apps/consent", s.authed(s.person(s.consentDecide)))
	mux.HandleFunc("GET /me/apps", s.authed(s.person(s.myApps)))
	mux.HandleFunc("POST /me/apps/withdraw", s.authed(s.person(s.withdrawApp)))
}

// consentEntry remembers where to come back to, then shows the consent
// page to a logged-on person (or sends the browser to the log-on).
func (s *server) consentEntry(w http.ResponseWriter, r *http.Request) {
	ref := r.URL.Query().Get("request")
	if !strings.HasPrefix(ref, "zkq_") || len(ref) > 100 {
		s.errorPage(w, r, http.StatusBadRequest, "apps.err.request")
		return
	}
	setCookie(w, cookieNext, consentPrefix+ref, int(oauth.PendingTTL/time.Second))
	s.authed(s.person(s.consentForm))(w, r)
}

// nextAfterLogon returns the consent page a log-on was started for, once,
// or "/" when there is none.
func nextAfterLogon(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(cookieNext)
	if err != nil {
		return "/"
	}
	clearCookie(w, cookieNext)
	if ref, ok := strings.CutPrefix(c.Value, consentPrefix); ok && strings.HasPrefix(ref, "zkq_") && !strings.ContainsAny(ref, "/?&#") {
		return c.Value
	}
	return "/"
}

type consentChoice struct {
	PatientID string
	Kind      string // "" for the person's own record, else the representation's kind
	Start     time.Time
}

type consentData struct {
	Request    string
	App        string
	Org        string
	Categories []string
	Until      time.Time
	Days       int
	Choices    []consentChoice
}

// choices are the records the person may let an app read: their own and
// those they represent now (AZ-4).
func (s *server) choices(r *http.Request, c *sessionCtx) ([]consentChoice, error) {
	var out []consentChoice
	ps, err := s.d.IDs.PersonPatients(r.Context(), c.sess.AccountID)
	if err != nil {
		return nil, err
	}
	if len(ps) > 0 {
		out = append(out, consentChoice{PatientID: ps[0]})
	}
	reps, err := s.d.Access.Representations(r.Context(), c.subject)
	if err != nil {
		return nil, err
	}
	now := s.d.Clock.Now()
	for _, rp := range reps {
		if rp.RevokedAt == nil && rp.RepresentativeID == c.sess.AccountID && !rp.Start.After(now) && (rp.End == nil || rp.End.After(now)) {
			out = append(out, consentChoice{PatientID: rp.PatientID, Kind: rp.Kind, Start: rp.Start})
		}
	}
	return out, nil
}

func (s *server) consentForm(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	clearCookie(w, cookieNext)
	ref := r.URL.Query().Get("request")
	p, err := s.d.Apps.Pending(r.Context(), ref)
	if errors.Is(err, oauth.ErrNotFound) {
		s.errorPage(w, r, http.StatusBadRequest, "apps.err.request")
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	if c.sess.Assurance < access.HealthDataLevel {
		s.errorPage(w, r, http.StatusForbidden, "apps.err.assurance")
		return
	}
	ch, err := s.choices(r, c)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	d := consentData{Request: ref, App: p.Client.Name, Org: c.subject.Organisation(), Categories: p.Categories, Days: p.Days,
		Until: s.d.Clock.Now().Add(time.Duration(p.Days) * 24 * time.Hour), Choices: ch}
	s.render(w, r, http.StatusOK, "apps_consent", s.page(w, r, c, "apps.consent.title", d))
}

func (s *server) consentDecide(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	ref, patient := r.PostFormValue("request"), r.PostFormValue("patient")
	agree := r.PostFormValue("decision") == "agree"
	if c.sess.Assurance < access.HealthDataLevel {
		s.errorPage(w, r, http.StatusForbidden, "apps.err.assurance")
		return
	}
	ch, err := s.choices(r, c)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	var pick *consentChoice
	for i := range ch {
		if ch[i].PatientID == patient {
			pick = &ch[i]
		}
	}
	if pick == nil && agree {
		s.errorPage(w, r, http.StatusBadRequest, "apps.err.patient")
		return
	}
	if pick == nil && len(ch) > 0 {
		pick = &ch[0] // a refusal needs no choice
	}
	if pick == nil {
		s.errorPage(w, r, http.StatusForbidden, "apps.err.norecord")
		return
	}
	loc, err := s.d.Apps.Decide(r.Context(), ref, oauth.Person{AccountID: c.sess.AccountID, Name: c.subject.Name(), TenantID: c.subject.TenantID(),
		Organisation: c.subject.Organisation(), PatientID: pick.PatientID, OnBehalf: pick.Kind != "", Assurance: c.sess.Assurance}, agree)
	if errors.Is(err, oauth.ErrNotFound) {
		s.errorPage(w, r, http.StatusBadRequest, "apps.err.request")
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	http.Redirect(w, r, loc, http.StatusSeeOther)
}

type appsData struct {
	Consents []oauth.Consent
	Now      time.Time
}

func (s *server) myApps(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	cs, err := s.d.Apps.Consents(r.Context(), c.sess.AccountID)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	v := s.page(w, r, c, "apps.title", appsData{Consents: cs, Now: s.d.Clock.Now()})
	if r.URL.Query().Has("withdrawn") {
		v.Message = "apps.withdrawn"
	}
	s.render(w, r, http.StatusOK, "apps", v)
}

func (s *server) withdrawApp(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	err := s.d.Apps.Withdraw(r.Context(), oauth.Person{AccountID: c.sess.AccountID, Name: c.subject.Name(), TenantID: c.subject.TenantID(),
		Organisation: c.subject.Organisation(), Assurance: c.sess.Assurance}, r.PostFormValue("consent"))
	if errors.Is(err, oauth.ErrNotFound) {
		s.errorPage(w, r, http.StatusNotFound, "err.notfound")
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	http.Redirect(w, r, "/me/apps?withdrawn=1", http.StatusSeeOther)
}
