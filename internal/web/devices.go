package web

import (
	"errors"
	"html/template"
	"net/http"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/devices"
)

// Paired devices (AUTH-7): "Mijn apparaten" for every logged-on user (the
// list, a pairing code with its QR code, unlink) and the devices of the
// organisation's accounts for its application admin (unlink without the
// device). The device's own protocol is internal/deviceapi's.

func (s *server) deviceRoutes(mux *http.ServeMux) {
	if s.d.Devices == nil {
		return
	}
	mux.HandleFunc("GET /me/devices", s.authed(s.myDevices))
	mux.HandleFunc("POST /me/devices/pair", s.authed(s.pairDevice))
	mux.HandleFunc("POST /me/devices/unlink", s.authed(s.unlinkMyDevice))
	mux.HandleFunc("GET /admin/accounts/devices", s.authed(s.role(s.tenantDevices, access.RoleAppAdmin)))
	mux.HandleFunc("POST /admin/accounts/devices/unlink", s.authed(s.role(s.unlinkTenantDevice, access.RoleAppAdmin)))
}

type devicesData struct {
	Admin   bool // the admin's page: every account's devices
	Devices []devices.Device
	Pairing *devices.Pairing // a new code, shown once
	QR      template.URL     // its QR code
	Minutes int              // how long a code lasts
}

func (s *server) myDevices(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.renderMyDevices(w, r, c, http.StatusOK, nil, "")
}

func (s *server) renderMyDevices(w http.ResponseWriter, r *http.Request, c *sessionCtx, code int, p *devices.Pairing, message string) {
	ds, err := s.d.Devices.Mine(r.Context(), c.subject)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	d := &devicesData{Devices: ds, Pairing: p, Minutes: int(devices.PairingTTL / time.Minute)}
	if p != nil {
		// The TOTP enrolment's renderer; it encodes any URI.
		if d.QR, err = qrDataURI(p.URI); err != nil {
			s.failed(w, r, err)
			return
		}
	}
	v := s.page(w, r, c, "dev.title", d)
	v.Message = message
	s.render(w, r, code, "devices", v)
}

func (s *server) pairDevice(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	p, err := s.d.Devices.NewPairing(r.Context(), c.subject, s.d.BaseURL)
	if err != nil {
		s.deviceError(w, r, err)
		return
	}
	s.renderMyDevices(w, r, c, http.StatusOK, &p, "")
}

func (s *server) unlinkMyDevice(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if err := s.d.Devices.Unlink(r.Context(), c.subject, r.PostFormValue("device")); err != nil {
		s.deviceError(w, r, err)
		return
	}
	s.renderMyDevices(w, r, c, http.StatusOK, nil, "dev.unlinked")
}

func (s *server) tenantDevices(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	s.renderTenantDevices(w, r, c, "")
}

func (s *server) renderTenantDevices(w http.ResponseWriter, r *http.Request, c *sessionCtx, message string) {
	ds, err := s.d.Devices.OfTenant(r.Context(), c.subject)
	if err != nil {
		s.deviceError(w, r, err)
		return
	}
	v := s.page(w, r, c, "dev.admin.title", &devicesData{Admin: true, Devices: ds})
	v.Message = message
	s.render(w, r, http.StatusOK, "devices", v)
}

func (s *server) unlinkTenantDevice(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	if err := s.d.Devices.Unlink(r.Context(), c.subject, r.PostFormValue("device")); err != nil {
		s.deviceError(w, r, err)
		return
	}
	s.renderTenantDevices(w, r, c, "dev.unlinked")
}

// deviceError answers a refusal of the devices service with a page of its
// own; anything else fails without detail.
func (s *server) deviceError(w http.ResponseWriter, r *http.Request, err error) {
	var de *devices.Error
	switch {
	case errors.As(err, &de) && de.Status == http.StatusNotFound:
		s.errorPage(w, r, http.StatusNotFound, "err.notfound")
	case errors.As(err, &de), errors.Is(err, access.ErrForbidden):
		s.errorPage(w, r, http.StatusForbidden, "err.forbidden")
	default:
		s.failed(w, r, err)
	}
}
