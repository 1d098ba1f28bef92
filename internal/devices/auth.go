package devices

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Challenge is what a device signs to get a token.
type Challenge struct {
	Challenge   string    `json:"challenge"`
	Expires     time.Time `json:"expires_at"`
	PINRequired bool      `json:"pin_required"`
}

var errLocked = refuse(http.StatusForbidden, "Device locked", "too many wrong PINs: the device is locked; unlink it in the portal and pair it again")

// Challenge gives a device a fresh challenge and says whether its PIN is
// due. An unlinked device (or one whose account was deactivated) gets a
// *WipeError instead.
func (s *Service) Challenge(ctx context.Context, deviceID string) (Challenge, error) {
	d, err := s.device(ctx, s.db, deviceID)
	if err != nil {
		return Challenge{}, err
	}
	if err := s.usable(ctx, d); err != nil {
		return Challenge{}, err
	}
	v, err := s.random(32)
	if err != nil {
		return Challenge{}, err
	}
	now := s.clock.Now()
	c := Challenge{Challenge: v, Expires: now.Add(ChallengeTTL), PINRequired: d.pinDue(now)}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO devices_challenges (hash, device_id, kind, created_at, expires_at) VALUES ($1, $2, 'auth', $3, $4)`,
		hash(v), d.id, clock.Micros(now), clock.Micros(c.Expires)); err != nil {
		return Challenge{}, fmt.Errorf("devices: store challenge: %w", err)
	}
	return c, nil
}

// usable returns nil for a device that may authenticate, the wipe
// instruction for a gone one and errLocked for a locked one.
func (s *Service) usable(ctx context.Context, d *row) error {
	if d.gone() != "" {
		return s.wipe(ctx, d)
	}
	if d.status == StatusLocked {
		return errLocked
	}
	return nil
}

// AuthRequest is a signed challenge, with the PIN when it was required.
type AuthRequest struct {
	DeviceID  string `json:"device_id"`
	Challenge string `json:"challenge"`
	Signature string `json:"signature"` // base64 of ECDSA P-256 SHA-256 (DER or r||s) over SignedMessage
	PIN       string `json:"pin,omitempty"`
}

// Token is a device token (Authorization: Bearer zkd_…).
type Token struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

// Authenticate checks a signed challenge, and the PIN when the device was
// idle for PINIdle, and issues a token. A wrong PIN counts; the
// MaxPINFailures-th locks the device.
func (s *Service) Authenticate(ctx context.Context, req AuthRequest) (Token, error) {
	d, err := s.device(ctx, s.db, req.DeviceID)
	if err != nil {
		return Token{}, err
	}
	if err := s.usable(ctx, d); err != nil {
		return Token{}, err
	}
	now := s.clock.Now()
	if len(req.Challenge) > 100 {
		return Token{}, errChallenge
	}
	res, err := s.db.ExecContext(ctx, `UPDATE devices_challenges SET used_at = $3 WHERE hash = $1 AND device_id = $2 AND kind = 'auth'
		AND used_at IS NULL AND expires_at > $3`, hash(req.Challenge), d.id, clock.Micros(now))
	if err != nil {
		return Token{}, fmt.Errorf("devices: spend challenge: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return Token{}, s.refused(ctx, d, "authenticate", "unknown, expired or used challenge", errChallenge)
	}
	if !verify(d.publicKey, SignedMessage(true, d.id, req.Challenge), req.Signature) {
		return Token{}, s.refused(ctx, d, "authenticate", "the signature does not verify with the device's key", errSignature)
	}
	pinDue := d.pinDue(now)
	if pinDue {
		if req.PIN == "" {
			return Token{}, errPINRequired
		}
		ok, _, err := s.hasher.Verify(ctx, d.pinHash, req.PIN)
		if err != nil {
			return Token{}, fmt.Errorf("devices: verify PIN: %w", err)
		}
		if !ok {
			return Token{}, s.wrongPIN(ctx, d)
		}
	}
	tok, err := s.random(32)
	if err != nil {
		return Token{}, err
	}
	tok = TokenPrefix + tok
	step := "authenticate signature"
	if pinDue {
		step = "authenticate signature+pin"
	}
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		// The status condition keeps a device unlinked or locked meanwhile
		// from getting a token.
		q := `UPDATE devices SET last_active_at = $2 WHERE id = $1 AND status = 'active'`
		if pinDue {
			q = `UPDATE devices SET last_active_at = $2, pin_failures = 0 WHERE id = $1 AND status = 'active'`
		}
		res, err := tx.ExecContext(ctx, q, d.id, clock.Micros(now))
		if err != nil {
			return fmt.Errorf("devices: note activity: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errChallenge
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO devices_tokens (hash, device_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)`,
			hash(tok), d.id, clock.Micros(now), clock.Micros(now.Add(TokenTTL))); err != nil {
			return fmt.Errorf("devices: store token: %w", err)
		}
		return s.append(ctx, tx, d.event(step, audit.OutcomeSuccess, ""))
	})
	if err != nil {
		return Token{}, err
	}
	return Token{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(TokenTTL / time.Second)}, nil
}

var (
	errChallenge   = refuse(http.StatusUnauthorized, "Authentication failed", "the challenge is unknown, expired or used: ask a new one")
	errSignature   = refuse(http.StatusUnauthorized, "Authentication failed", "the signature does not verify with the device's key")
	errPINRequired = refuse(http.StatusUnauthorized, "PIN required", "the device was idle for 15 minutes: ask a new challenge and send it signed with the PIN")
)

// wrongPIN counts a wrong PIN; the last allowed one locks the device,
// revokes its tokens and raises a security event, in one transaction.
func (s *Service) wrongPIN(ctx context.Context, d *row) error {
	var failures int
	now := clock.Micros(s.clock.Now())
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		if err := tx.QueryRowContext(ctx, `UPDATE devices SET pin_failures = pin_failures + 1 WHERE id = $1 AND status = 'active' RETURNING pin_failures`,
			d.id).Scan(&failures); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return errLocked // locked or unlinked meanwhile
			}
			return fmt.Errorf("devices: count wrong PIN: %w", err)
		}
		evs := []audit.Event{d.event("pin-failed", audit.OutcomeFailed, fmt.Sprintf("wrong PIN, %d of %d", failures, MaxPINFailures))}
		if failures >= MaxPINFailures {
			for _, q := range []string{
				`UPDATE devices SET status = 'locked', locked_at = $2 WHERE id = $1`,
				`UPDATE devices_tokens SET revoked_at = $2 WHERE device_id = $1 AND revoked_at IS NULL`,
			} {
				if _, err := tx.ExecContext(ctx, q, d.id, now); err != nil {
					return fmt.Errorf("devices: lock: %w", err)
				}
			}
			evs = append(evs, d.event("locked", audit.OutcomeSuccess, fmt.Sprintf("%d wrong PINs in a row", failures)))
			if s.alerts != nil {
				if _, err := s.alerts.Raise(ctx, tx, alert.Entry{TenantID: d.tenantID, Kind: "device-locked", AccountID: d.accountID,
					SubjectID: d.accountID, Ref: d.id, Detail: fmt.Sprintf("device %q locked after %d wrong PINs", d.name, failures)}); err != nil {
					return err
				}
			}
		}
		return s.append(ctx, tx, evs...)
	})
	if err != nil {
		return err
	}
	if failures >= MaxPINFailures {
		return errLocked
	}
	return &Error{Status: http.StatusUnauthorized, Title: "Wrong PIN", AttemptsLeft: MaxPINFailures - failures,
		Detail: fmt.Sprintf("wrong PIN: %d attempts left before the device is locked", MaxPINFailures-failures)}
}

// Access is what a valid device token carries, for principal.FromDevice.
type Access struct {
	DeviceID   string
	TenantID   string
	AccountID  string
	Role       access.Role
	Assurance  access.Level
	OnBehalfOf string
	TokenRef   string // a short hash of the token for the log's session id, never the token
}

var errToken = refuse(http.StatusUnauthorized, "Invalid token", "the device token is unknown, expired or revoked: authenticate again")

// tokenQuery reads a token with its device and the device's account in one
// round trip, on every request with a device token.
const tokenQuery = `SELECT t.expires_at, t.revoked_at, ` + deviceColumns + ` JOIN devices_tokens t ON t.device_id = d.id WHERE t.hash = $1`

// Lookup returns what a device token grants. An unlinked device's token
// (or one of a deactivated account) is answered with a *WipeError; an
// idle device's with errPINRequired.
func (s *Service) Lookup(ctx context.Context, token string) (Access, error) {
	if !strings.HasPrefix(token, TokenPrefix) || len(token) > 100 {
		return Access{}, errToken
	}
	var expires int64
	var revoked sql.NullInt64
	d, err := scanRow(s.db.Stmt(tokenQuery).QueryRowContext(ctx, hash(token)), &expires, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return Access{}, errToken
	}
	if err != nil {
		return Access{}, fmt.Errorf("devices: look up token: %w", err)
	}
	if d.gone() != "" {
		return Access{}, s.wipe(ctx, d)
	}
	now := s.clock.Now()
	n := clock.Micros(now)
	switch {
	case d.status != StatusActive || revoked.Valid || expires <= n:
		return Access{}, errToken
	case d.pinDue(now):
		return Access{}, errPINRequired
	}
	if n-clock.Micros(d.lastActive) > time.Minute.Microseconds() {
		// A minute is precise enough for the idle rule (it errs towards
		// asking the PIN early) and spares a write per request.
		if _, err := s.db.ExecContext(ctx, `UPDATE devices SET last_active_at = $2 WHERE id = $1`, d.id, n); err != nil {
			return Access{}, fmt.Errorf("devices: note activity: %w", err)
		}
	}
	return Access{DeviceID: d.id, TenantID: d.tenantID, AccountID: d.accountID, Role: d.role, Assurance: d.assurance,
		OnBehalfOf: d.onBehalfOf, TokenRef: ref(token)}, nil
}
