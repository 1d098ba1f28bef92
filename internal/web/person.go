package web

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"image/png"
	"net/http"
	"slices"
	"strings"

	"github.com/pquerna/otp"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

// purposePatient is the purpose of use of a person's own requests
// (v3-ActReason PATRQT: patient requested).
const purposePatient = "PATRQT"

func (s *server) personRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /me", s.authed(s.person(s.meHome)))
	mux.HandleFunc("GET /me/record", s.authed(s.person(s.meRecord)))
	mux.HandleFunc("POST /me/record/bsn", s.authed(s.person(s.meRecordBSN)))
	mux.HandleFunc("POST /me/actfor", s.authed(s.person(s.meActFor)))
	mux.HandleFunc("POST /me/export", s.authed(s.person(s.meExport)))
	mux.HandleFunc("GET /me/log", s.authed(s.person(s.meLog)))
	// Factor management is for every account, whatever its role.
	mux.HandleFunc("GET /me/factors", s.authed(s.factors))
	mux.HandleFunc("POST /me/factors/totp", s.authed(s.steppedUp(s.factorAddTOTP)))
	mux.HandleFunc("POST /me/factors/totp/remove", s.authed(s.steppedUp(s.factorRemoveTOTP)))
	// A factor's name is no security change: renaming needs no step-up.
	mux.HandleFunc("POST /me/factors/totp/rename", s.authed(s.factorRename(authn.FactorTOTP)))
	mux.HandleFunc("POST /me/factors/webauthn/rename", s.authed(s.factorRename(authn.FactorWebAuthn)))
	mux.HandleFunc("POST /me/factors/recovery", s.authed(s.steppedUp(s.factorRecovery)))
	mux.HandleFunc("POST /me/logoutall", s.authed(s.logoutAll))
}

// person limits a page to sessions in the person role.
func (s *server) person(h sessionHandler) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
		if c.sess.Role != access.RolePerson {
			s.errorPage(w, r, http.StatusForbidden, "err.forbidden")
			return
		}
		h(w, r, c)
	}
}

// ownPatient is the record the person looks at now: the represented
// patient when the session acts for one, else their own.
func (s *server) ownPatient(r *http.Request, c *sessionCtx) (string, error) {
	if c.sess.OnBehalfOf != "" {
		return c.sess.OnBehalfOf, nil
	}
	ps, err := s.d.IDs.PersonPatients(r.Context(), c.sess.AccountID)
	if err != nil || len(ps) == 0 {
		return "", err
	}
	return ps[0], nil
}

type meData struct {
	Represented []access.Representation
	Acting      string
	HasRecord   bool
	Record      recordView
}

func (s *server) meHome(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.meSection(w, r, c, sectionByKey("personal"), false)
}

func (s *server) meRecord(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.meSection(w, r, c, sectionByKey(r.URL.Query().Get("section")), false)
}

// meRecordBSN is the banner's "toon BSN" for a representative.
func (s *server) meRecordBSN(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.meSection(w, r, c, sectionByKey(r.PostFormValue("section")), true)
}

// meSection shows one section of the record the person looks at. Acting
// for someone else, the page carries the patient banner: whose record it
// is and by which representation (AZ-4).
func (s *server) meSection(w http.ResponseWriter, r *http.Request, c *sessionCtx, sec section, reveal bool) {
	reps, err := s.d.Access.Representations(r.Context(), c.subject)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	d := meData{Acting: c.sess.OnBehalfOf}
	for _, rp := range reps {
		if rp.RevokedAt == nil && rp.RepresentativeID == c.sess.AccountID {
			d.Represented = append(d.Represented, rp)
		}
	}
	pid, err := s.ownPatient(r, c)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	v := s.page(w, r, c, "me.title", &d)
	if pid != "" {
		d.HasRecord = true
		acting := c.sess.OnBehalfOf != ""
		d.Record, err = s.readSection(r.Context(), c.subject, pid, sec, purposePatient, readOptions{banner: acting, revealBSN: acting && reveal})
		d.Record.BaseURL = "/me/record"
		if access.IsDenied(err) {
			v.Error = "err.forbidden"
			d.HasRecord = false
		} else if err != nil {
			s.failed(w, r, err)
			return
		}
		if b := d.Record.Banner; b != nil {
			b.RevealURL, b.Section = "/me/record/bsn", d.Record.Current
			for _, rp := range d.Represented {
				if rp.PatientID == pid {
					b.Representation = rp.Kind
				}
			}
			v.Initials = b.Initials
		}
	}
	s.render(w, r, http.StatusOK, "me", v)
}

func (s *server) meActFor(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	err := s.d.Authn.ActFor(r.Context(), c.token, r.PostFormValue("patient"), s.d.Access.MayRepresent)
	if errors.Is(err, authn.ErrNotPermitted) {
		s.errorPage(w, r, http.StatusForbidden, "err.forbidden")
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	http.Redirect(w, r, "/me", http.StatusSeeOther)
}

// meExport downloads the person's data as a FHIR collection Bundle (DP-7),
// under an export decision; record logs the export before returning data.
func (s *server) meExport(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	pid, err := s.ownPatient(r, c)
	if err != nil || pid == "" {
		s.errorPage(w, r, http.StatusNotFound, "me.norecord")
		return
	}
	g, err := s.d.Access.Decide(r.Context(), c.subject, access.Request{PatientID: pid, Action: access.Export, Purpose: purposePatient})
	if access.IsDenied(err) {
		s.errorPage(w, r, http.StatusForbidden, "err.forbidden")
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	res, err := s.d.Records.Everything(r.Context(), g)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	b := fhir.NewCollection(s.random(16), s.d.Clock.Now())
	for _, x := range res {
		b.AddResource("urn:uuid:"+x.Type+"-"+x.ID, x.Body)
	}
	body, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		s.failed(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	// The file name carries no name or BSN, only the date.
	w.Header().Set("Content-Disposition", `attachment; filename="zorgkluis-export-`+s.d.Clock.Now().UTC().Format("2006-01-02")+`.json"`)
	_, _ = w.Write(body)
}

type logData struct {
	Lines     []audit.PatientLine // NEN 7513 ch. 9 lines, shared with GET /fhir/AuditEvent
	ShowNames bool
	From, To  string
	Truncated bool // more events than one page merges; narrow the period
	// Apps names the apps that acted for the person (EX-2), by client id.
	Apps map[string]string
}

// AnyEmergency reports whether a line used emergency access: the log shows
// its emergency column only then, a column of "nee" says nothing.
func (d *logData) AnyEmergency() bool {
	for _, l := range d.Lines {
		if l.Emergency {
			return true
		}
	}
	return false
}

// meLog shows the access log of the person's record (LOG-4): when, which
// organisation, role and basis, which action and data, emergency or not,
// similar lines of one day merged (audit.PatientView, the same view as GET
// /fhir/AuditEvent). Employees' names only on request. Reading the log is
// itself logged first.
func (s *server) meLog(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	pid, err := s.ownPatient(r, c)
	if err != nil || pid == "" {
		s.errorPage(w, r, http.StatusNotFound, "me.norecord")
		return
	}
	p, err := s.d.Access.DecideLogRead(r.Context(), c.subject, access.LogScope{PatientID: pid, Purpose: purposePatient})
	if access.IsDenied(err) {
		s.errorPage(w, r, http.StatusForbidden, "err.forbidden")
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	q := r.URL.Query()
	d := logData{ShowNames: q.Get("names") == "1", From: q.Get("from"), To: q.Get("to")}
	sq := audit.Search{PatientID: pid}
	if from, ok := parseDay(d.From); ok {
		sq.From, d.From = from, from.Format(layoutDay)
	} else {
		d.From = ""
	}
	if to, ok := parseDay(d.To); ok {
		sq.To, d.To = to.AddDate(0, 0, 1), to.Format(layoutDay)
	} else {
		d.To = ""
	}
	d.Lines, d.Truncated, err = s.d.Audit.ReadPatientView(r.Context(), p, sq, "", audit.ViewOptions{ShowNames: d.ShowNames, Location: clock.Amsterdam()})
	if err != nil {
		s.failed(w, r, err)
		return
	}
	d.Apps = map[string]string{}
	for _, l := range d.Lines {
		if l.App == "" || s.d.Apps == nil || d.Apps[l.App] != "" {
			continue
		}
		d.Apps[l.App] = l.App
		if cl, ok, err := s.d.Apps.Client(r.Context(), l.App); err == nil && ok {
			d.Apps[l.App] = cl.Name
		}
	}
	s.render(w, r, http.StatusOK, "melog", s.page(w, r, c, "log.title", &d))
}

type factorsData struct {
	TOTP     []authn.TOTPApp // the user's authenticator apps, by the names they gave
	NewQR    template.URL    // data: URI of the QR code PNG, shown once
	NewKey   string
	Recovery []string
	Refused  bool
	WebAuthn bool                       // security keys configured
	Keys     []authn.WebAuthnCredential // the user's keys
	KeyError string                     // message key of a failed key registration
	// LabelError is the message key of a refused name, for the factor
	// (LabelFor, its id) or the enrolment form ("totp") it was given in.
	LabelError, LabelFor string
	// StepUp is set when the session's proof of a second factor is too old
	// to change factors; the page then offers the step-up first (AUTH-2).
	StepUp        bool
	StepUpFactors []string // code factors the step-up form offers
	StepUpKey     bool     // a security key may step up
	status        int      // the page's status; 0 is 200
}

func (s *server) factors(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.renderFactors(w, r, c, &factorsData{}, "")
}

func (s *server) renderFactors(w http.ResponseWriter, r *http.Request, c *sessionCtx, d *factorsData, message string) {
	apps, err := s.d.Authn.TOTPApps(r.Context(), c.sess.AccountID)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	d.TOTP = apps
	if err := s.webauthnData(r, c, d); err != nil {
		s.failed(w, r, err)
		return
	}
	if s.d.Authn.RequireStepUp(c.sess) != nil {
		d.StepUp = true
		for _, f := range s.d.Authn.StepUpFactors() {
			if f == authn.FactorWebAuthn {
				d.StepUpKey = true
			} else {
				d.StepUpFactors = append(d.StepUpFactors, f)
			}
		}
	}
	v := s.page(w, r, c, "factors.title", d)
	v.Message = message
	if message == "" && r.Method == http.MethodGet && r.URL.Query().Has("stepped") && !d.StepUp {
		v.Message = "factors.stepup.done"
	}
	switch {
	case d.LabelError != "":
		v.Error = d.LabelError
		d.status = http.StatusBadRequest
	case d.Refused:
		v.Error = "factors.laststrong"
	case d.status == http.StatusForbidden:
		v.Error = "factors.stepup.needed"
	case d.status == http.StatusUnauthorized:
		v.Error = "factors.stepup.failed"
	}
	code := http.StatusOK
	if d.status != 0 {
		code = d.status
	}
	s.render(w, r, code, "factors", v)
}

// steppedUp lets h change factors only with a fresh second factor; else
// the factors page answers 403 and offers the step-up (AUTH-2).
func (s *server) steppedUp(h sessionHandler) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
		if s.d.Authn.RequireStepUp(c.sess) != nil {
			s.renderFactors(w, r, c, &factorsData{status: http.StatusForbidden}, "")
			return
		}
		h(w, r, c)
	}
}

// stepUp proves a second factor again: a code from the form, or a key's
// answer after stepUpWebAuthnBegin. A wrong one is counted like a failed
// log-on (AUTH-4).
func (s *server) stepUp(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	factor, code := r.PostFormValue("factor"), strings.TrimSpace(r.PostFormValue("code"))
	if factor == authn.FactorWebAuthn {
		code = r.PostFormValue("credential")
	}
	if !slices.Contains(s.d.Authn.StepUpFactors(), factor) || code == "" || len(code) > maxKeyAnswer || factor != authn.FactorWebAuthn && len(code) > 64 {
		s.renderFactors(w, r, c, &factorsData{status: http.StatusUnauthorized}, "")
		return
	}
	_, err := s.d.Authn.StepUp(r.Context(), c.token, factor, code, audit.SourceFrom(r.Context()).Addr)
	switch {
	case err == nil:
		http.Redirect(w, r, "/me/factors?stepped=1", http.StatusSeeOther)
	case errors.Is(err, authn.ErrStepUpFailed):
		s.renderFactors(w, r, c, &factorsData{status: http.StatusUnauthorized}, "")
	default:
		s.failed(w, r, err)
	}
}

// stepUpWebAuthnBegin gives the options for a step-up with a key.
func (s *server) stepUpWebAuthnBegin(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	lang := s.lang(w, r)
	if !s.d.Authn.WebAuthnEnabled() {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": msg(lang, "factors.webauthn.off")})
		return
	}
	opts, err := s.d.Authn.BeginWebAuthnStepUp(r.Context(), c.sess)
	s.answerOptions(w, r, lang, "step-up", opts, err)
}

// factorAddTOTP enrols a new authenticator app and shows its QR code and
// secret once; neither is kept by the page.
func (s *server) factorAddTOTP(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	acc, err := s.d.IDs.Account(r.Context(), c.sess.AccountID)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	uri, secret, err := s.d.Authn.EnrollNamedTOTP(r.Context(), acc.ID, acc.Username, r.PostFormValue("label"))
	if errors.Is(err, authn.ErrFactorLabel) {
		s.renderFactors(w, r, c, &factorsData{LabelError: "factors.label.bad", LabelFor: "totp"}, "")
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	qr, err := qrDataURI(uri)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	s.renderFactors(w, r, c, &factorsData{NewQR: qr, NewKey: secret}, "")
}

// qrDataURI renders the QR code as a data: URI, typed as a URL the
// template may put in src (html/template replaces an untyped data: URI by
// #ZgotmplZ); it is our own PNG, never user input.
func qrDataURI(uri string) (template.URL, error) {
	k, err := otp.NewKeyFromURL(uri)
	if err != nil {
		return "", err
	}
	img, err := k.Image(240, 240)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", err
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())), nil
}

func (s *server) factorRemoveTOTP(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	err := s.d.Authn.RemoveTOTP(r.Context(), c.sess.AccountID, r.PostFormValue("id"))
	if errors.Is(err, authn.ErrLastStrongFactor) {
		s.renderFactors(w, r, c, &factorsData{Refused: true}, "")
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	s.renderFactors(w, r, c, &factorsData{}, "admin.done")
}

// factorRename gives one of the user's own factors of kind a new name;
// another account's factor is not found.
func (s *server) factorRename(kind string) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
		id := r.PostFormValue("id")
		err := s.d.Authn.RenameFactor(r.Context(), c.sess.AccountID, kind, id, r.PostFormValue("label"), audit.SourceFrom(r.Context()).Addr)
		switch {
		case err == nil:
			s.renderFactors(w, r, c, &factorsData{}, "factors.renamed")
		case errors.Is(err, authn.ErrFactorLabel):
			s.renderFactors(w, r, c, &factorsData{LabelError: "factors.label.bad", LabelFor: id}, "")
		case errors.Is(err, identity.ErrNotFound):
			s.errorPage(w, r, http.StatusNotFound, "err.notfound")
		default:
			s.failed(w, r, err)
		}
	}
}

func (s *server) factorRecovery(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	codes, err := s.d.Authn.NewRecoveryCodes(r.Context(), c.sess.AccountID)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	s.renderFactors(w, r, c, &factorsData{Recovery: codes}, "")
}

func (s *server) logoutAll(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if err := s.d.Authn.LogoutAll(r.Context(), c.sess.AccountID); err != nil {
		s.failed(w, r, err)
		return
	}
	clearCookie(w, cookieSession)
	http.Redirect(w, r, "/logon?off=1", http.StatusSeeOther)
}
