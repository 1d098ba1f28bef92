package authn

import (
	"context"
	"errors"
	"fmt"

	"github.com/zorgkluis/zorgkluis/internal/clock"
)

// Factors of an upstream log-on (single sign-on through the organisation's
// own identity provider, AUTH-3). FactorSSO is the upstream log-on as a
// first factor (the provider checked at least a knowledge factor);
// FactorUpstreamMFA is its proof of a second factor of another category,
// counted only when the provider is approved to be trusted for it.
const (
	FactorSSO         = "sso"
	FactorUpstreamMFA = "upstream-mfa"
)

// External is an account's log-on at an approved upstream identity
// provider, as internal/sso checked it.
type External struct {
	AccountID string
	Provider  string // the provider's issuer, for the log
	Source    string // the client's address
}

// ErrNoAccount: the upstream identity is linked to an account that cannot
// log on (deactivated, pending).
var ErrNoAccount = errors.New("authn: the linked account cannot log on")

// BeginExternal is the first step after an upstream log-on that did not
// prove two factors (or whose provider is not trusted for them): an
// attempt that Complete finishes with a local second factor, as after a
// password, bound to it in the same way (AUTH-1).
func (s *Service) BeginExternal(ctx context.Context, e External) (string, error) {
	acc, err := s.ids.Account(ctx, e.AccountID)
	if err != nil || !acc.Active {
		return "", ErrNoAccount
	}
	now := s.clock.Now()
	tok, h, err := s.token()
	if err != nil {
		return "", err
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO login_attempts (id_hash, account_id, first_ok, source, created_at, expires_at, username, first_factor)
		VALUES ($1, $2, TRUE, $3, $4, $5, $6, $7)`, h, acc.ID, e.Source, clock.Micros(now), clock.Micros(now.Add(s.settings.AttemptTTL)),
		acc.Username, FactorSSO); err != nil {
		return "", fmt.Errorf("log-on: store attempt: %w", err)
	}
	ev := event{accountID: acc.ID, tenantID: acc.TenantID, username: acc.Username, source: e.Source, factor: FactorSSO, outcome: "first-factor",
		reason: "upstream " + e.Provider}
	if err := s.recordEvent(ctx, ev); err != nil {
		return "", fmt.Errorf("log-on: %w", err)
	}
	return tok, nil
}

// CompleteExternal makes a session for an upstream log-on that proved two
// factors of different categories at a provider approved to be trusted
// for them: no local second factor is asked.
func (s *Service) CompleteExternal(ctx context.Context, e External) (string, Session, error) {
	acc, err := s.ids.Account(ctx, e.AccountID)
	if err != nil || !acc.Active {
		return "", Session{}, ErrNoAccount
	}
	ev := event{accountID: acc.ID, tenantID: acc.TenantID, username: acc.Username, source: e.Source, factor: FactorUpstreamMFA}
	prev, failed, err := s.lastLogon(ctx, acc.ID, acc.Username)
	if err != nil {
		return "", Session{}, err
	}
	tok, sess, err := s.createSession(ctx, acc.ID, []string{FactorSSO, FactorUpstreamMFA}, e.Source)
	if errors.Is(err, errPrivilegeMix) {
		ev.outcome, ev.reason = "failure", "privilege-mix"
		if err := s.recordEvent(ctx, ev); err != nil {
			return "", Session{}, fmt.Errorf("log-on: %w", err)
		}
		return "", Session{}, ErrLogonFailed
	}
	if err != nil {
		return "", Session{}, err
	}
	ev.outcome, ev.assurance, ev.reason = "success", sess.Assurance, "upstream "+e.Provider
	if err := s.recordEvent(ctx, ev); err != nil {
		if rerr := s.Logout(ctx, tok); rerr != nil {
			return "", Session{}, fmt.Errorf("log-on: %w (and revoking the session: %v)", err, rerr)
		}
		return "", Session{}, fmt.Errorf("log-on: %w", err)
	}
	sess.PreviousLogon, sess.FailedSince = prev, failed
	return tok, sess, nil
}
