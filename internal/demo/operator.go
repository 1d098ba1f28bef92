package demo

import (
	"context"
	"fmt"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/password"
)

// demoOperator is the demo's platform operator: an account of no tenant,
// which sees health data only under an operator request that the tenant's
// security officer approved (AZ-6).
const demoOperator = "platform.dekker"

// seedOperator makes the platform operator's account. Invitations belong to
// a tenant and an operator belongs to none, so the account is made as an
// activation makes one, step by step: pending, a password through the
// policy, an authenticator app confirmed with its code, then active with
// the operator role.
func seedOperator(ctx context.Context, d Deps) (User, error) {
	acc, err := d.IDs.CreateAccount(ctx, identity.Account{Kind: identity.KindOperator, Username: demoOperator, DisplayName: "J. Dekker (platformbeheer)",
		Email: demoOperator + "@example.invalid", RegistrationMethod: 3, VerifiedBy: "demo set-up", Pending: true})
	if err != nil {
		return User{}, fmt.Errorf("demo: operator: %w", err)
	}
	pw, err := password.Generate(d.Rand)
	if err != nil {
		return User{}, fmt.Errorf("demo: %w", err)
	}
	if err := d.Authn.SetFirstPassword(ctx, acc.ID, pw); err != nil {
		return User{}, fmt.Errorf("demo: operator: %w", err)
	}
	uri, secret, err := d.Authn.EnrollTOTP(ctx, acc.ID, acc.Username)
	if err != nil {
		return User{}, fmt.Errorf("demo: operator: %w", err)
	}
	if err := confirmPreviousStep(d.Clock, secret, func(code string) (bool, error) { return d.Authn.ConfirmTOTP(ctx, acc.ID, code) }); err != nil {
		return User{}, fmt.Errorf("demo: operator's authenticator app not confirmed: %w", err)
	}
	if err := d.IDs.GrantRole(ctx, acc.ID, string(access.RoleOperator), "demo set-up"); err != nil {
		return User{}, fmt.Errorf("demo: operator: %w", err)
	}
	if err := d.IDs.Activate(ctx, acc.ID); err != nil {
		return User{}, fmt.Errorf("demo: operator: %w", err)
	}
	return User{Username: demoOperator, Password: pw, TOTPSecret: secret, TOTPURI: uri, AccountID: acc.ID, Role: string(access.RoleOperator),
		Description: "platform operator: requests access for named patients, which the security officer approves (AZ-6)"}, nil
}
