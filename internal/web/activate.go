package web

import (
	"errors"
	"html/template"
	"net/http"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/onboard"
	"github.com/zorgkluis/zorgkluis/internal/password"
)

// The activation page (ID-6): the invitee types the code (or follows the
// link holding it) and the secret from the second channel, chooses a
// password, scans the authenticator app's QR code and confirms it with its
// first code. No session exists yet; the pages are no-store like all.
func (s *server) activateRoutes(mux *http.ServeMux) {
	if s.d.Onboard == nil {
		return
	}
	mux.HandleFunc("GET /activate", s.activateForm)
	mux.HandleFunc("POST /activate", s.activateStart)
	mux.HandleFunc("POST /activate/complete", s.activateComplete)
}

type activateData struct {
	Step         string // start, totp, done
	Code, Secret string
	QR           template.URL
	Key          string
	Username     string
}

func (s *server) activateForm(w http.ResponseWriter, r *http.Request) {
	code := r.URL.Query().Get("code")
	if len(code) > 128 {
		code = ""
	}
	s.render(w, r, http.StatusOK, "activate", view{Title: "activate.title", Data: activateData{Step: "start", Code: code}})
}

// activateFailed shows the form again with the one message for the error.
func (s *server) activateFailed(w http.ResponseWriter, r *http.Request, d activateData, err error) {
	v := view{Title: "activate.title", Data: d}
	var pv password.Violations
	code := http.StatusBadRequest
	switch {
	case errors.Is(err, onboard.ErrInvalidCode):
		v.Error = "activate.invalid"
	case errors.Is(err, onboard.ErrTOTP):
		v.Error = "activate.totp"
	case errors.Is(err, onboard.ErrThrottled):
		code, v.Error = http.StatusTooManyRequests, "activate.throttled"
	case errors.Is(err, onboard.ErrRepresentation):
		v.Error = "activate.representation"
	case errors.As(err, &pv):
		code, v.Error = http.StatusUnprocessableEntity, "password.weak"
	default:
		s.failed(w, r, err)
		return
	}
	s.render(w, r, code, "activate", v)
}

func (s *server) activateStart(w http.ResponseWriter, r *http.Request) {
	code, secret := r.PostFormValue("code"), r.PostFormValue("secret")
	pw, repeat := r.PostFormValue("password"), r.PostFormValue("repeat")
	d := activateData{Step: "start", Code: code}
	if len(code) > 128 || len(secret) > 128 || len(pw) > 1024 {
		s.activateFailed(w, r, activateData{Step: "start"}, onboard.ErrInvalidCode)
		return
	}
	if pw != repeat {
		s.render(w, r, http.StatusBadRequest, "activate", view{Title: "activate.title", Error: "password.mismatch", Data: d})
		return
	}
	enr, err := s.d.Onboard.StartActivation(r.Context(), code, secret, pw, audit.SourceFrom(r.Context()).Addr)
	if err != nil {
		s.activateFailed(w, r, d, err)
		return
	}
	qr, err := qrDataURI(enr.URI)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "activate", view{Title: "activate.title",
		Data: activateData{Step: "totp", Code: code, Secret: secret, QR: qr, Key: enr.Secret, Username: enr.Username}})
}

func (s *server) activateComplete(w http.ResponseWriter, r *http.Request) {
	code, secret, totp := r.PostFormValue("code"), r.PostFormValue("secret"), r.PostFormValue("totp")
	if len(code) > 128 || len(secret) > 128 || len(totp) > 16 {
		s.activateFailed(w, r, activateData{Step: "start"}, onboard.ErrInvalidCode)
		return
	}
	acc, err := s.d.Onboard.CompleteActivation(r.Context(), code, secret, totp, audit.SourceFrom(r.Context()).Addr)
	if errors.Is(err, onboard.ErrTOTP) {
		// The app is enrolled; only its code was wrong: ask again.
		s.activateFailed(w, r, activateData{Step: "totp", Code: code, Secret: secret}, err)
		return
	}
	if err != nil {
		s.activateFailed(w, r, activateData{Step: "start", Code: code}, err)
		return
	}
	s.render(w, r, http.StatusOK, "activate", view{Title: "activate.title", Message: "activate.done", Data: activateData{Step: "done", Username: acc.Username}})
}
