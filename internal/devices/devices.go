// Package devices owns the paired mobile devices (AUTH-7): the one-time
// pairing codes a logged-on user makes, the devices with their P-256 public
// keys and PIN verifiers, the challenges they sign, their short-lived
// tokens, the unlink and the wipe that follows it.
//
// It promises:
//   - pairing codes, challenges and tokens carry at least 160 random bits
//     from the injected randomness, are stored only as SHA-256 hashes (the
//     primary key, so the database refuses a second one), and work once
//     (codes within PairingTTL, challenges within ChallengeTTL);
//   - the PIN is never stored: only an argon2id verifier made by
//     internal/password, checked on the server when the device was idle for
//     PINIdle; MaxPINFailures wrong PINs in a row lock the device, revoke
//     its tokens and raise a security event (LOG-9);
//   - a device acts as the account that paired it, in that session's role
//     and at its assurance (principal.FromDevice), and access.Decide decides
//     each request as for that account: it reaches only what its user may;
//   - every look-up joins the account, so a deactivated account's devices
//     stop at once (ID-5) and are told to wipe like unlinked ones;
//   - an unlinked device's tokens are revoked in the unlink's transaction;
//     its next contact is answered with a wipe instruction, and its signed
//     acknowledgement is logged and deletes every row of the device;
//   - every step is an access-log event (audit.ActionDevice).
//
// The protocol is described in docs/devices.md; its HTTP surface is
// internal/deviceapi's, the token guard on /fhir internal/httpx's.
package devices

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/password"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

const (
	// PairingTTL is how long a pairing code can be redeemed.
	PairingTTL = 5 * time.Minute
	// ChallengeTTL is how long a challenge can be signed and sent back.
	ChallengeTTL = time.Minute
	// WipeTTL is how long a wipe instruction's nonce can be acknowledged;
	// every contact of an unlinked device gets a fresh one.
	WipeTTL = 10 * time.Minute
	// TokenTTL is the life of a device token; shorter than PINIdle, so an
	// idle device must come back with a signed challenge (and its PIN).
	TokenTTL = 5 * time.Minute
	// PINIdle is the inactivity after which the PIN is asked again.
	PINIdle = 15 * time.Minute
	// MaxPINFailures wrong PINs in a row lock the device.
	MaxPINFailures = 5
	// TokenPrefix starts every device token, so a guard can tell it apart.
	TokenPrefix = "zkd_"
)

// Status of a device.
const (
	StatusActive   = "active"
	StatusLocked   = "locked"
	StatusUnlinked = "unlinked"
)

// Config is what the service needs.
type Config struct {
	DB     *store.DB
	Clock  clock.Clock
	Rand   io.Reader // crypto/rand.Reader in production
	Hasher *password.Hasher
	Audit  *audit.Log
	Alerts *alert.Queue    // a device locked by wrong PINs; nil: logged only
	Access *access.Decider // an admin's unlink is checked against the admin's current role
}

// Service is the devices' state and rules.
type Service struct {
	db     *store.DB
	clock  clock.Clock
	rand   io.Reader
	hasher *password.Hasher
	log    *audit.Log
	alerts *alert.Queue
	access *access.Decider
}

// New returns the service.
func New(c Config) *Service {
	return &Service{db: c.DB, clock: c.Clock, rand: c.Rand, hasher: c.Hasher, log: c.Audit, alerts: c.Alerts, access: c.Access}
}

// Error is a refusal with what the device or user is told: the HTTP status
// of a direct answer, a title and a detail.
type Error struct {
	Status int
	Title  string
	Detail string
	// AttemptsLeft is, after a wrong PIN, how many remain before the lock.
	AttemptsLeft int
}

func (e *Error) Error() string { return e.Title + ": " + e.Detail }

func refuse(status int, title, format string, args ...any) *Error {
	return &Error{Status: status, Title: title, Detail: fmt.Sprintf(format, args...)}
}

// ErrNotFound is a device that does not exist or is not the caller's to see.
var ErrNotFound = refuse(http.StatusNotFound, "Not found", "no such device")

// Wipe is the instruction an unlinked device gets at its next contact
// (docs/devices.md): wipe the local data, then acknowledge by signing
// the nonce.
type Wipe struct {
	Instruction string    `json:"instruction"` // always "wipe"
	DeviceID    string    `json:"device_id"`
	Nonce       string    `json:"nonce"`
	Reason      string    `json:"reason"` // unlinked or account-deactivated
	Expires     time.Time `json:"expires_at"`
}

// WipeError is the answer to any contact of an unlinked device.
type WipeError struct{ Wipe Wipe }

func (e *WipeError) Error() string { return "device " + e.Wipe.DeviceID + " is unlinked: wipe" }

// random returns n random bytes, base64url.
func (s *Service) random(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", fmt.Errorf("devices: randomness: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hash(v string) []byte {
	h := sha256.Sum256([]byte(v))
	return h[:]
}

// ref is a short, non-secret reference to a token for the log's session id.
func ref(token string) string {
	return base64.RawURLEncoding.EncodeToString(hash(token)[:9])
}

// event is the access-log line of a device step: the device acting as its
// account, the step in Query.
func (d *row) event(step string, outcome audit.Outcome, reason string) audit.Event {
	ev := audit.Event{Action: audit.ActionDevice, Outcome: outcome, TenantID: d.tenantID, UserID: d.accountID, UserName: d.accountName,
		Role: string(d.role), Assurance: d.assurance.String(), OnBehalfOf: d.onBehalfOf, PrincipalKind: string(access.KindDevice),
		Device: d.id, Query: step, Reason: reason}
	if d.id != "" {
		ev.Resources = []string{"Device/" + d.id}
	}
	return ev
}

// actorEvent is the access-log line of a step a person takes on a device
// (its pairing code, an unlink).
func actorEvent(actor access.Subject, deviceID, step string) audit.Event {
	ev := audit.Event{Action: audit.ActionDevice, Outcome: audit.OutcomeSuccess, TenantID: actor.TenantID(), Organisation: actor.Organisation(),
		UserID: actor.AccountID(), UserName: actor.Name(), Role: string(actor.Role()), Assurance: actor.Assurance().String(),
		OnBehalfOf: actor.OnBehalfOf(), PrincipalKind: string(actor.Kind()), Query: step}
	if deviceID != "" {
		ev.Resources = []string{"Device/" + deviceID}
	}
	return ev
}

func (s *Service) append(ctx context.Context, q store.Querier, evs ...audit.Event) error {
	if _, err := s.log.AppendIn(ctx, q, evs...); err != nil {
		return fmt.Errorf("devices: log: %w", err)
	}
	return nil
}
