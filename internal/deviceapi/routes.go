package deviceapi

import (
	"net/http"
	"slices"

	"github.com/zorgkluis/zorgkluis/internal/devices"
	"github.com/zorgkluis/zorgkluis/internal/httpx"
)

func (s *Server) pair(w http.ResponseWriter, r *http.Request) {
	var req devices.PairRequest
	if !decode(w, r, &req) {
		return
	}
	p, err := s.d.Devices.Pair(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, p)
}

func (s *Server) challenge(w http.ResponseWriter, r *http.Request) {
	var req struct {
		DeviceID string `json:"device_id"`
	}
	if !decode(w, r, &req) {
		return
	}
	c, err := s.d.Devices.Challenge(r.Context(), req.DeviceID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, c)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	var req devices.AuthRequest
	if !decode(w, r, &req) {
		return
	}
	t, err := s.d.Devices.Authenticate(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, t)
}

func (s *Server) wipeAck(w http.ResponseWriter, r *http.Request) {
	var req devices.WipeAck
	if !decode(w, r, &req) {
		return
	}
	if err := s.d.Devices.AcknowledgeWipe(r.Context(), req); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// newPairing makes a pairing code for the caller's own session; the body
// is empty or {}.
func (s *Server) newPairing(w http.ResponseWriter, r *http.Request, c httpx.Caller) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	p, err := s.d.Devices.NewPairing(r.Context(), c.Subject, s.d.BaseURL)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusCreated, p)
}

func (s *Server) mine(w http.ResponseWriter, r *http.Request, c httpx.Caller) {
	ds, err := s.d.Devices.Mine(r.Context(), c.Subject)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"devices": ds})
}

func (s *Server) ofAccount(w http.ResponseWriter, r *http.Request, c httpx.Caller) {
	ds, err := s.d.Devices.OfAccount(r.Context(), c.Subject, r.PathValue("account"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"devices": ds})
}

// unlink serves both the user's path and the admin's; the service decides
// who may (the device's user, or an admin of its organisation). On the
// admin's path the device must be the named account's.
func (s *Server) unlink(w http.ResponseWriter, r *http.Request, c httpx.Caller) {
	if acc := r.PathValue("account"); acc != "" {
		ds, err := s.d.Devices.OfAccount(r.Context(), c.Subject, acc)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !slices.ContainsFunc(ds, func(d devices.Device) bool { return d.ID == r.PathValue("id") }) {
			s.fail(w, r, devices.ErrNotFound)
			return
		}
	}
	if err := s.d.Devices.Unlink(r.Context(), c.Subject, r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
