package httpx

import (
	"errors"
	"net/http"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/devices"
	"github.com/zorgkluis/zorgkluis/internal/principal"
)

// device authenticates a paired device's token (AUTH-7) and serves the
// request as the device acting for its user. An unlinked device is
// answered with the wipe instruction (410, docs/devices.md) instead of the
// protocol's error, so the app learns to wipe whatever it called.
func (s *Sessions) device(w http.ResponseWriter, r *http.Request, tok string, h SessionHandler, fail Fail) {
	ctx := r.Context()
	a, err := s.Devices.Lookup(ctx, tok)
	var we *devices.WipeError
	var de *devices.Error
	switch {
	case errors.As(err, &we):
		WriteJSON(w, http.StatusGone, we.Wipe)
		return
	case errors.As(err, &de):
		w.Header().Set("WWW-Authenticate", `Bearer realm="zorgkluis", error="invalid_token"`)
		fail(w, r, http.StatusUnauthorized, de.Title, de.Detail)
		return
	case err != nil:
		s.Log.ErrorContext(ctx, "device token lookup", "err", err, "request_id", RequestID(ctx))
		fail(w, r, http.StatusServiceUnavailable, "Unavailable", "the service is temporarily unavailable")
		return
	}
	subj, err := principal.FromDevice(ctx, s.IDs, a)
	if err != nil {
		s.Log.ErrorContext(ctx, "device subject", "err", err, "request_id", RequestID(ctx))
		fail(w, r, http.StatusServiceUnavailable, "Unavailable", "the service is temporarily unavailable")
		return
	}
	src := audit.SourceFrom(ctx)
	src.Device, src.SessionID = a.DeviceID, a.TokenRef
	h(w, r.WithContext(audit.WithSource(ctx, src)), Caller{Subject: subj})
}
