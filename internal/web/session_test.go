package web

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

// A page whose session's roles cannot be read fails like any other lookup
// (503), instead of rendering as if the account held no role.
// REQ: AZ-2
func TestSessionRolesErrorFailsThePage(t *testing.T) {
	var fail atomic.Bool
	e := newPageEnvAuthn(t, func(s *authn.Settings) {
		s.RoleCurrent = func(ctx context.Context, accountID string, role access.Role) (bool, error) {
			if fail.Load() {
				return false, errors.New("rules unavailable")
			}
			return true, nil
		}
	})
	ten := e.tenant("Praktijk")
	u := e.login(ten, identity.KindPerson, access.RolePerson)
	if code, _ := e.page(u, "/me", nil, false); code != http.StatusOK {
		t.Fatalf("/me: %d, want 200", code)
	}
	fail.Store(true)
	if code, _ := e.page(u, "/me", nil, false); code != http.StatusServiceUnavailable {
		t.Fatalf("/me with the roles unreadable: %d, want 503", code)
	}
}
