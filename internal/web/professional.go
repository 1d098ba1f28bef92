package web

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/clock"
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

// relatedPatients lists the patients the professional has a current care
// relationship with. It reads care_relationships (owned by access) because
// access offers only the per-patient list; it returns ids only, and every
// name shown is then read under its own decision and log line.
func (s *server) relatedPatients(ctx context.Context, subj access.Subject) ([]patientItem, error) {
	now := clock.Micros(s.d.Clock.Now())
	rows, err := s.d.DB.QueryContext(ctx, `SELECT DISTINCT patient_id, kind FROM care_relationships
		WHERE tenant_id = $1 AND professional_id = $2 AND start_at <= $3 AND (end_at IS NULL OR end_at > $3)
		ORDER BY patient_id`, subj.TenantID(), subj.AccountID(), now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []patientItem
	for rows.Next() {
		var p patientItem
		if err := rows.Scan(&p.ID, &p.Kind); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (s *server) patients(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.renderPatients(w, r, c, false)
}

func (s *server) renderPatients(w http.ResponseWriter, r *http.Request, c *sessionCtx, notFound bool) {
	d := patientsData{CanFind: s.d.Index != nil, NotFound: notFound}
	if s.d.DB != nil {
		ps, err := s.relatedPatients(r.Context(), c.subject)
		if err != nil {
			s.failed(w, r, err)
			return
		}
		for _, p := range ps {
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
// its blind index, then opens the record, where access decides.
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
		s.renderPatients(w, r, c, true)
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	http.Redirect(w, r, "/patients/"+pid, http.StatusSeeOther)
}

type proRecordData struct {
	Record  recordView
	Refused bool
	CanBTG  bool
	BadWhy  bool
}

// patientRecord shows one section of a patient's record, or the refusal
// (with the way to emergency access) when access denies it.
func (s *server) patientRecord(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	pid := r.PathValue("id")
	if !patientIDRE.MatchString(pid) {
		s.notFound(w, r)
		return
	}
	rv, err := s.readSection(r.Context(), c.subject, pid, sectionByKey(r.URL.Query().Get("section")), purposeTreatment)
	rv.BaseURL = "/patients/" + pid
	if access.IsDenied(err) {
		s.refused(w, r, c, pid, false)
		return
	}
	if err != nil {
		s.failed(w, r, err)
		return
	}
	v := s.page(w, r, c, "pro.record", &proRecordData{Record: rv})
	v.Emergency = rv.Emergency
	s.render(w, r, http.StatusOK, "record", v)
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
	_, err := s.d.Access.DeclareEmergency(r.Context(), c.subject, pid, reason)
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
	http.Redirect(w, r, "/patients/"+pid, http.StatusSeeOther)
}
