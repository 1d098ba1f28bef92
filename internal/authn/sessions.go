package authn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// ErrNotPermitted means the session may not take the asked role or
// representation.
var ErrNotPermitted = errors.New("not permitted")

// CurrentRoles lists the roles the account holds now: those it was given,
// less privileged rights that have ended or were revoked.
func (s *Service) CurrentRoles(ctx context.Context, accountID string) ([]string, error) {
	roles, err := s.ids.Roles(ctx, accountID)
	if err != nil {
		return nil, err
	}
	return s.currentOf(ctx, accountID, roles)
}

// currentOf keeps the roles of held that are current (all of them without
// a RoleCurrent setting).
func (s *Service) currentOf(ctx context.Context, accountID string, held []string) ([]string, error) {
	if s.settings.RoleCurrent == nil {
		return held, nil
	}
	out := make([]string, 0, len(held))
	for _, r := range held {
		ok, err := s.settings.RoleCurrent(ctx, accountID, access.Role(r))
		if err != nil {
			return nil, fmt.Errorf("current roles: %w", err)
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// ChooseRole sets the one role the session acts in (AZ-2). The role must be
// one the account holds; the switch is logged and the session gets a new
// token (the old one stops working), so a token seen before the switch
// cannot act in the new role.
func (s *Service) ChooseRole(ctx context.Context, token, role string) (string, Session, error) {
	sess, err := s.Authenticate(ctx, token)
	if err != nil {
		return "", Session{}, err
	}
	roles, err := s.CurrentRoles(ctx, sess.AccountID)
	if err != nil {
		return "", Session{}, fmt.Errorf("choose role: %w", err)
	}
	if !slices.Contains(roles, role) {
		return "", Session{}, ErrNotPermitted
	}
	newTok, h, err := s.token()
	if err != nil {
		return "", Session{}, err
	}
	res, err := s.changeSessions(ctx, `UPDATE sessions SET id_hash = $1, role = $2, on_behalf_of = '' WHERE id_hash = $3 AND revoked_at IS NULL`,
		h, role, hashToken(token))
	if err != nil {
		return "", Session{}, fmt.Errorf("choose role: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return "", Session{}, ErrNoSession
	}
	if err := s.recordEvent(ctx, event{accountID: sess.AccountID, outcome: "role-switch", reason: string(sess.Role) + " -> " + role}); err != nil {
		return "", Session{}, fmt.Errorf("choose role: %w", err)
	}
	sess.ID, sess.Role, sess.OnBehalfOf = fmt.Sprintf("%x", h[:8]), access.Role(role), ""
	return newTok, sess, nil
}

// ActFor makes the session act on behalf of patientID (AZ-4) when allowed
// says the account may represent that patient; the change is logged. An
// empty patientID returns to acting for oneself.
func (s *Service) ActFor(ctx context.Context, token, patientID string, allowed func(ctx context.Context, accountID, patientID string) (bool, error)) error {
	sess, err := s.Authenticate(ctx, token)
	if err != nil {
		return err
	}
	if patientID != "" {
		ok, err := allowed(ctx, sess.AccountID, patientID)
		if err != nil {
			return fmt.Errorf("act for: %w", err)
		}
		if !ok {
			if err := s.recordEvent(ctx, event{accountID: sess.AccountID, outcome: "act-for-denied", reason: patientID}); err != nil {
				return fmt.Errorf("act for: %w", err)
			}
			return ErrNotPermitted
		}
	}
	if _, err := s.changeSessions(ctx, `UPDATE sessions SET on_behalf_of = $1 WHERE id_hash = $2 AND revoked_at IS NULL`, patientID, hashToken(token)); err != nil {
		return fmt.Errorf("act for: %w", err)
	}
	return s.recordEvent(ctx, event{accountID: sess.AccountID, outcome: "act-for", reason: patientID})
}

// Deactivate ends a leaver's access at once (ID-5): the account is marked
// inactive, and its sessions, pending log-on attempts, codes, recovery codes,
// TOTP credentials, verified contacts and role grants are revoked.
// Sessions and credentials also stop working through the account status,
// so there is no window between the two steps.
func (s *Service) Deactivate(ctx context.Context, accountID string) error {
	// The account's status is identity's and commits on its own, so every
	// replica is told before it too: should the bump after it fail, no
	// other replica keeps answering from a cache filled before (a reload
	// in between reads the account's status with the session).
	if err := s.db.Tx(ctx, func(tx *store.Tx) error { return bumpSessions(ctx, tx) }); err != nil {
		return fmt.Errorf("deactivate: %w", err)
	}
	if err := s.ids.Deactivate(ctx, accountID); err != nil {
		return fmt.Errorf("deactivate: %w", err)
	}
	s.cache.invalidate() // the account is inactive: no cached session of it answers here
	now := clock.Micros(s.clock.Now())
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		for _, q := range []string{
			`UPDATE sessions SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL`,
			`UPDATE login_attempts SET used_at = $1 WHERE account_id = $2 AND used_at IS NULL`,
			`UPDATE auth_codes SET used_at = $1 WHERE account_id = $2 AND used_at IS NULL`,
			`UPDATE recovery_codes SET used_at = $1 WHERE account_id = $2 AND used_at IS NULL`,
			`UPDATE totp_credentials SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL`,
			`UPDATE contact_factors SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL`,
		} {
			if _, err := tx.ExecContext(ctx, q, now, accountID); err != nil {
				return fmt.Errorf("deactivate: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM password_credentials WHERE account_id = $1`, accountID); err != nil {
			return fmt.Errorf("deactivate: %w", err)
		}
		return bumpSessions(ctx, tx)
	})
	s.cache.invalidate()
	if err != nil {
		return err
	}
	held, err := s.ids.RevokeRoles(ctx, accountID)
	if err != nil {
		return fmt.Errorf("deactivate: %w", err)
	}
	return s.recordEvent(ctx, event{accountID: accountID, outcome: "deactivated", reason: "roles revoked: " + strings.Join(held, " ")})
}
