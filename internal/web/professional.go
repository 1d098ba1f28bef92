package web

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/nlid"
)

// purposeTreatment is the purpose of use of care professionals' requests
// (v3-ActReason TREAT).
const purposeTreatment = "TREAT"

var patientIDRE = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

func (s *server) professionalRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /patients", s.authed(s.professional(s.patients)))
	mux.HandleFunc("POST /patients/find", s.authed(s.professional(s.findPatient)))
	mux.HandleFunc("GET /patients/{id}", s.authed(s.professional(s.patientRecord)))
	mux.HandleFunc("POST /patients/{id}/bsn", s.authed(s.professional(s.patientRecordBSN)))
	mux.HandleFunc("POST /patients/{id}/emergency", s.authed(s.professional(s.declareEmergency)))
}

// professional limits a page to professional-like sessions; access decides
// on every patient anyway.
func (s *server) professional(h sessionHandler) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
		if !c.user.MenuPro {
			s.errorPage(w, r, http.StatusForbidden, "err.forbidden")
			return
		}
		h(w, r, c)
	}
}

type patientItem struct {
	ID, Name, Kind string
}

type patientsData struct {
	Patients []patientItem
	CanFind  bool
	NotFound bool
}

func (s *server) patients(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.renderPatients(w, r, c, false)
}

func (s *server) renderPatients(w http.ResponseWriter, r *http.Request, c *sessionCtx, notFound bool) {
	d := patientsData{CanFind: s.d.Index != nil, NotFound: notFound}
	if s.d.Access != nil {
		links, err := s.d.Access.MyPatients(r.Context(), c.subject)
		if err != nil {
			s.failed(w, r, err)
			return
		}
		for _, l := range links {
			p := patientItem{ID: l.PatientID, Kind: l.Kind}
			name, err := s.patientName(r.Context(), c.subject, p.ID, purposeTreatment)
			if access.IsDenied(err) {
				continue // e.g. a role without demographics
			}
			if err != nil {
				s.failed(w, r, err)
				return
			}
			p.Name = name
			d.Patients = append(d.Patients, p)
		}
	}
	v := s.page(w, r, c, "pro.title", &d)
	if notFound {
		v.Error = "pro.find.none"
	}
	s.render(w, r, http.StatusOK, "patients", v)
}

// findPatient looks a patient up by BSN (POSTed, never in a URL) through
// its blind index. Whether a BSN is registered is itself personal data, so
// access decides before the answer says so: a subject allowed to read the
// patient is sent to the record, a professional who may break the glass
// gets the refusal with that offer (as the record page would show it), and
// everyone else gets the same "not found" as for a BSN nobody has. Every
// lookup is logged here, in the handler that answers it, not by the page a
// redirect leads to (LOG-1).
func (s *server) findPatient(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	bsn := strings.ReplaceAll(strings.TrimSpace(r.PostFormValue("bsn")), " ", "")
	if s.d.Index == nil || !nlid.ValidBSN(bsn) {
		s.renderPatients(w, r, c, true)
		return
	}
	idx, err := s.d.Index.BlindIndex(r.Context(), c.subject.TenantID(), "bsn", bsn)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	pid, err := s.d.IDs.PatientByBSNIndex(r.Context(), c.subject.TenantID(), idx)
	if errors.Is(err, identity.ErrNotFound) {
		pid = "" // decided (and logged) as a lookup that names no patient
	} else if err != nil {
		s.failed(w, r, err)
		return
	}
	g, err := s.d.Access.Decide(r.Context(), c.subject, access.Request{PatientID: pid, Action: access.Read,
		Categories: []string{fhir.CategoryDemographics}, Purpose: purposeTreatment})
	switch {
	case access.IsDenied(err) && pid != "" && c.sess.Role == access.RoleProfessional:
		s.refused(w, r, c, pid, false)
	case access.IsDenied(err):
		s.renderPatients(w, r, c, true)
	case err != nil:
		s.failed(w, r, err)
	default:
		ev := g.Event(audit.ActionSearch, audit.OutcomeSuccess)
		ev.Query = "find patient by BSN"
		if _, err := s.d.Audit.Append(r.Context(), ev); err != nil {
			s.failed(w, r, err)
			return
		}
		http.Redirect(w, r, "/patients/"+pid, http.StatusSeeOther)
	}
}

type proRecordData struct {
	Record  recordView
	Refused bool
	CanBTG  bool
	BadWhy  bool
}

// patientRecord shows one section of a patient's record under the patient
// banner, or the refusal (with the way to emergency access) when access
// denies it.
func (s *server) patientRecord(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.showPatientRecord(w, r, c, r.URL.Query().Get("section"), false)
}

// patientRecordBSN is the banner's "toon BSN": the same page with the BSN
// in full. It is a POST, so that no link prefetch or history entry shows
// it again; the read it rests on is decided and logged like every other.
func (s *server) patientRecordBSN(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.showPatientRecord(w, r, c, r.PostFormValue("section"), true)
}

func (s *server) showPatientRecord(w http.ResponseWriter, r *http.Request, c *sessionCtx, sectionKey string, reveal bool) {
	pid := r.PathValue("id")
	if !patientIDRE.MatchString(pid) {
		s.notFound(w, r)
		return
	}
	rv, err := s.readSection(r.Context(), c.subject, pid, sectionByKey(sectionKey), purposeTreatment, readOptions{banner: true, revealBSN: reveal})
	rv.BaseURL = "/patients/" + pid
	if access.IsDenied(err) {
		s.refused(w, r, c, pid, false)
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	rv.Banner.RevealURL, rv.Banner.Section = rv.BaseURL+"/bsn", rv.Current
	if rv.Emergency {
		rv.Banner.EmergencyMax = s.d.Access.EmergencyDuration()
		if end, ok := s.emergencyEnd(r, c, pid); ok {
			rv.Banner.EmergencyLeft = end.Sub(s.d.Clock.Now())
		}
	}
	v := s.page(w, r, c, "pro.record", &proRecordData{Record: rv})
	v.Emergency = rv.Emergency
	v.Initials = rv.Banner.Initials
	s.render(w, r, http.StatusOK, "record", v)
}

// The end of an emergency access is known when it is declared; access
// offers no way to look it up again per request, so the declaring browser
// keeps it in a cookie that expires with the emergency. It only feeds the
// banner's "time left": access itself enforces the end. A browser without
// it shows the emergency without the time left.
const cookieEmergency = "__Host-zk-em-"

func (s *server) setEmergencyEnd(w http.ResponseWriter, c *sessionCtx, pid string, end time.Time) {
	left := int(end.Sub(s.d.Clock.Now()) / time.Second)
	if left <= 0 {
		return
	}
	setCookie(w, cookieEmergency+pid, c.sess.AccountID+"."+strconv.FormatInt(end.Unix(), 10), left)
}

// emergencyEnd reads the cookie setEmergencyEnd wrote, for this account and
// patient, if its end lies within the longest emergency access.
func (s *server) emergencyEnd(r *http.Request, c *sessionCtx, pid string) (time.Time, bool) {
	ck, err := r.Cookie(cookieEmergency + pid)
	if err != nil {
		return time.Time{}, false
	}
	acc, unix, ok := strings.Cut(ck.Value, ".")
	sec, err := strconv.ParseInt(unix, 10, 64)
	if !ok || err != nil || acc != c.sess.AccountID {
		return time.Time{}, false
	}
	end, now := time.Unix(sec, 0), s.d.Clock.Now()
	if !end.After(now) || end.Sub(now) > s.d.Access.EmergencyDuration() {
		return time.Time{}, false
	}
	return end, true
}

func (s *server) refused(w http.ResponseWriter, r *http.Request, c *sessionCtx, pid string, badReason bool) {
	d := &proRecordData{Record: recordView{PatientID: pid}, Refused: true, CanBTG: c.sess.Role == access.RoleProfessional, BadWhy: badReason}
	v := s.page(w, r, c, "pro.refused.title", d)
	if badReason {
		v.Error = "pro.emergency.bad"
	}
	code := http.StatusForbidden
	if badReason {
		code = http.StatusBadRequest
	}
	s.render(w, r, code, "refused", v)
}

// declareEmergency starts break-the-glass access with the mandatory reason
// (AZ-5); access logs it and notifies the security officer.
func (s *server) declareEmergency(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	pid := r.PathValue("id")
	if !patientIDRE.MatchString(pid) {
		s.notFound(w, r)
		return
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if len([]rune(reason)) < access.MinEmergencyReason || len(reason) > 1000 {
		s.refused(w, r, c, pid, true)
		return
	}
	em, err := s.d.Access.DeclareEmergency(r.Context(), c.subject, pid, reason)
	if errors.Is(err, access.ErrInvalid) {
		s.refused(w, r, c, pid, true)
		return
	}
	if errors.Is(err, access.ErrForbidden) || errors.Is(err, access.ErrNotFound) || access.IsDenied(err) {
		s.errorPage(w, r, http.StatusForbidden, "err.forbidden")
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	s.setEmergencyEnd(w, c, pid, em.End)
	http.Redirect(w, r, "/patients/"+pid, http.StatusSeeOther)
}
