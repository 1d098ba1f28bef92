package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/zorgkluis/zorgkluis/internal/identity"
)

// accountID finds an account of the admin's own organisation by user name.
// A name of another organisation is answered like a name that does not
// exist, so the pages reveal neither other tenants' users nor their ids.
func (s *server) accountID(r *http.Request, c *sessionCtx, username string) (string, error) {
	username = strings.TrimSpace(username)
	a, err := s.d.IDs.AccountByUsername(r.Context(), username)
	if err == nil && (a.TenantID == "" || a.TenantID != c.subject.TenantID()) {
		err = identity.ErrNotFound
	}
	if errors.Is(err, identity.ErrNotFound) {
		return "", fmt.Errorf("no account %q in this organisation: %w", username, identity.ErrNotFound)
	}
	if err != nil {
		return "", err
	}
	return a.ID, nil
}
