package authn

import (
	"context"
	"fmt"
)

// The activation of an invited account (ID-6) sets its first password and
// enrols its first strong factor while the account is still pending, so it
// cannot log on before both are done. internal/onboard drives it.

// CheckFirstPassword applies the password policy (AUTH-5) to the password
// an invited account chooses; it returns password.Violations for a weak one.
func (s *Service) CheckFirstPassword(ctx context.Context, accountID, pw string) error {
	acc, err := s.ids.Account(ctx, accountID)
	if err != nil {
		return fmt.Errorf("first password: %w", err)
	}
	return s.policy.Check(pw, userContext(acc))
}

// SetFirstPassword stores the password an invited account chose, after the
// policy (AUTH-5); no one else ever knew it, so it need not be changed.
func (s *Service) SetFirstPassword(ctx context.Context, accountID, pw string) error {
	if err := s.CheckFirstPassword(ctx, accountID, pw); err != nil {
		return err
	}
	return s.storePassword(ctx, accountID, pw, false, nil)
}

// ConfirmTOTP checks the first code of a pending account's authenticator
// app, proving the enrolment; the time step is used up as at log-on.
func (s *Service) ConfirmTOTP(ctx context.Context, accountID, code string) (bool, error) {
	return s.checkTOTPOf(ctx, accountID, "pending", code, s.clock.Now(), false)
}

// RevokeTOTP revokes every TOTP credential of an account (an enrolment that
// is started again replaces the unconfirmed one).
func (s *Service) RevokeTOTP(ctx context.Context, accountID string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE totp_credentials SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL`,
		s.clock.Now().UnixMicro(), accountID); err != nil {
		return fmt.Errorf("revoke totp: %w", err)
	}
	return nil
}
