package authn

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
)

// Step-up: a session proves a second factor again before it may add or
// remove a factor or recovery codes, so a stolen session token alone cannot
// plant a credential that outlives it (AUTH-2). The log-on is the first
// proof; a proof counts for StepUpMaxAge.

// ErrStepUpRequired means the session's last proof of a second factor is
// older than StepUpMaxAge.
var ErrStepUpRequired = errors.New("step-up required: prove a second factor again")

// ErrStepUpFailed is the one answer to a wrong, replayed or throttled
// step-up, whatever was wrong (AUTH-4).
var ErrStepUpFailed = errors.New("step-up failed")

// RequireStepUp answers ErrStepUpRequired unless the session proved a
// second factor within StepUpMaxAge.
func (s *Service) RequireStepUp(sess Session) error {
	if sess.SecondFactorAt.IsZero() || s.clock.Now().Sub(sess.SecondFactorAt) > s.settings.StepUpMaxAge {
		return ErrStepUpRequired
	}
	return nil
}

// StepUpMaxAge is how long a proof of a second factor counts.
func (s *Service) StepUpMaxAge() time.Duration { return s.settings.StepUpMaxAge }

// StepUpFactors are the kinds a step-up accepts: the strong ones and
// recovery codes. SMS and e-mail codes are not among them: a taken-over
// phone number or mailbox must not be enough to change the factors.
func (s *Service) StepUpFactors() []string {
	kinds := []string{FactorTOTP, FactorRecovery}
	if s.wa != nil {
		kinds = append(kinds, FactorWebAuthn)
	}
	return kinds
}

func stepUpRef(sess Session) string { return "stepup:" + sess.AccountID + ":" + sess.ID }

// StepUp checks a second factor for the session of token and, when it is
// right, records the proof on the session. The attempt is counted like a
// log-on (a wrong code is a failure of the user name, AUTH-4), and logged.
// factor is FactorTOTP, FactorRecovery or FactorWebAuthn (the key's
// assertion, after BeginWebAuthnStepUp, as code).
func (s *Service) StepUp(ctx context.Context, token, factor, code, source string) (Session, error) {
	sess, err := s.Authenticate(ctx, token)
	if err != nil {
		return Session{}, err
	}
	acc, err := s.ids.Account(ctx, sess.AccountID)
	if err != nil {
		return Session{}, fmt.Errorf("step-up: %w", err)
	}
	now := s.clock.Now()
	g, err := s.check(ctx, acc.Username, source, now)
	if err != nil {
		return Session{}, err
	}
	ev := event{accountID: acc.ID, tenantID: acc.TenantID, username: acc.Username, source: source, factor: factor}
	if g.blocked {
		ev.outcome, ev.reason = "blocked", "step-up: "+g.reason // logged, not counted
		if err := s.recordEvent(ctx, ev); err != nil {
			return Session{}, fmt.Errorf("step-up: %w", err)
		}
		return Session{}, ErrStepUpFailed
	}
	ok := false
	if len(code) <= webauthnMaxResponse {
		switch factor {
		case FactorTOTP, FactorRecovery:
			ok, err = s.verifySecond(ctx, acc.ID, factor, code, "", now)
		case FactorWebAuthn:
			ok, err = s.verifySecond(ctx, acc.ID, factor, code, stepUpRef(sess), now)
		}
	}
	if err != nil {
		return Session{}, fmt.Errorf("step-up: %w", err)
	}
	if !ok {
		ev.outcome, ev.reason = "failure", "step-up"
		if err := s.recordEvent(ctx, ev); err != nil {
			return Session{}, fmt.Errorf("step-up: %w", err)
		}
		if err := s.alertOnBurst(ctx, ev, g); err != nil {
			return Session{}, fmt.Errorf("step-up: %w", err)
		}
		return Session{}, ErrStepUpFailed
	}
	res, err := s.changeSessions(ctx, `UPDATE sessions SET second_factor_at = $1 WHERE id_hash = $2 AND revoked_at IS NULL`,
		clock.Micros(now), hashToken(token))
	if err != nil {
		return Session{}, fmt.Errorf("step-up: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return Session{}, ErrNoSession
	}
	ev.outcome = "step-up"
	if err := s.recordEvent(ctx, ev); err != nil {
		return Session{}, fmt.Errorf("step-up: %w", err)
	}
	sess.SecondFactorAt = now
	return sess, nil
}

// BeginWebAuthnStepUp returns the PublicKeyCredentialRequestOptions as JSON
// for a step-up of the session with a security key; the challenge is bound
// to this session.
func (s *Service) BeginWebAuthnStepUp(ctx context.Context, sess Session) ([]byte, error) {
	if s.wa == nil {
		return nil, ErrWebAuthnOff
	}
	ch, err := s.challenge()
	if err != nil {
		return nil, err
	}
	assertion, sd, err := s.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationPreferred), webauthn.WithChallenge(ch))
	if err != nil {
		return nil, fmt.Errorf("webauthn step-up: %w", err)
	}
	if err := s.storeCeremony(ctx, "logon", stepUpRef(sess), sess.AccountID, sd, s.clock.Now().Add(webauthnCeremonyTTL)); err != nil {
		return nil, err
	}
	out, err := json.Marshal(assertion)
	if err != nil {
		return nil, fmt.Errorf("webauthn step-up: %w", err)
	}
	return out, nil
}

// factorChange is an added or removed factor or a new set of recovery
// codes, for the account holder's notice and the log.
type factorChange struct {
	outcome string // factor-enrolled, factor-removed
	factor  string // FactorTOTP, FactorRecovery, FactorWebAuthn
	ref     string // the factor's name (quoted) or what changed; never an id or a secret
	nl, en  string // what happened, for the notice
	source  string // the client's address; empty: the request's, from ctx
}

// factorChanged tells the account holder about a change of their factors
// (by e-mail, else SMS, to their latest verified address; without one or
// without a Sender nothing is sent and the log says so) and logs it as a
// log-on event (auth_events and the audit log). A failed log write is
// returned: the change must not go unlogged (LOG-3). A failed notice is
// logged but does not undo the change.
func (s *Service) factorChanged(ctx context.Context, accountID string, c factorChange) error {
	acc, err := s.ids.Account(ctx, accountID)
	if err != nil {
		return fmt.Errorf("factor change: %w", err)
	}
	notice, err := s.noticeFactorChange(ctx, accountID, c)
	if err != nil {
		return err
	}
	reason := c.ref
	if reason != "" {
		reason += "; "
	}
	if c.source == "" {
		c.source = audit.SourceFrom(ctx).Addr
	}
	ev := event{accountID: acc.ID, tenantID: acc.TenantID, username: acc.Username, source: c.source,
		factor: c.factor, outcome: c.outcome, reason: reason + notice}
	return s.recordEvent(ctx, ev)
}

// noticeFactorChange sends the notice and says what became of it, for the log.
func (s *Service) noticeFactorChange(ctx context.Context, accountID string, c factorChange) (string, error) {
	if !s.canSend(FactorEmail) && !s.canSend(FactorSMS) {
		return "no notice: no sender configured", nil
	}
	var channel, addr string
	for _, ch := range []string{FactorEmail, FactorSMS} {
		if !s.canSend(ch) {
			continue
		}
		err := s.db.QueryRowContext(ctx, `SELECT address FROM contact_factors WHERE account_id = $1 AND channel = $2 AND verified_at IS NOT NULL AND revoked_at IS NULL
			ORDER BY verified_at DESC LIMIT 1`, accountID, ch).Scan(&addr)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("factor change notice: %w", err)
		}
		channel = ch
		break
	}
	if channel == "" {
		return "no notice: no verified address", nil
	}
	body := "Op uw zorgkluis-account is zojuist " + c.nl + ". Was u dit niet? Meld u aan, verwijder wat u niet kent en neem contact op met uw zorgaanbieder. / " +
		"On your zorgkluis account, " + c.en + " just now. If this was not you, log on, remove what you do not recognise and contact your care provider."
	if err := s.settings.Sender.Send(ctx, Message{Channel: channel, To: addr, Subject: "zorgkluis: aanmeldmiddelen gewijzigd / log-on methods changed", Body: body}); err != nil {
		// The sender's error may name the address; the log gets the channel only.
		return "notice by " + channel + " failed", nil
	}
	return "notice sent by " + channel, nil
}
