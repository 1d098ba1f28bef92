// Package compliance is the controls register and the compliance report
// (GOV-3): every control row of the norms the product is built on (the
// MedMij normenkader, NEN 7510-2 chapter 9, NEN 7512 Tabel 7; embedded in
// controls.json) per tenant, with what the organisation says about it
// (applicability, audit method, responsible officer, notes, evidence
// documents sealed with the tenant's key, the due date of a periodic
// control and its reminder), and a report that gives each row its live
// status from the running system. Every technical evidence item carries
// the inclusion proof of the log events it rests on, so an auditor checks
// it offline with the log's public key (audit.CheckProof,
// docs/audit-proofs.md).
//
// The access reviews, the admin-log review and the incident register are
// governance's; this package reads their outcome through governance.
package compliance

import (
	"crypto/rand"
	"crypto/x509"
	_ "embed"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/governance"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Control is one control row of a norm, as embedded.
type Control struct {
	ID        string `json:"id"`        // framework/ref, e.g. medmij/A.12.3.1
	Framework string `json:"framework"` // MedMij normenkader, NEN 7510-2:2017, NEN 7512 Tabel 7
	Ref       string `json:"ref"`
	Title     string `json:"title"` // Dutch, as in the norm
	Text      string `json:"text"`
	// Period of a periodic control: monthly, half-yearly, yearly; "" none.
	Period string `json:"period,omitempty"`
	// Evidence names the technical evidence the running system gives for
	// it (see Kinds).
	Evidence []string `json:"evidence"`
}

//go:embed controls.json
var controlsJSON []byte

// Controls returns the control rows, in the norms' order.
func Controls() []Control {
	var cs []Control
	if err := json.Unmarshal(controlsJSON, &cs); err != nil {
		panic("compliance: controls.json: " + err.Error()) // embedded and tested: cannot happen at run time
	}
	return cs
}

// periods are the intervals of the periodic controls.
var periods = map[string]time.Duration{
	"monthly":     31 * 24 * time.Hour,
	"half-yearly": 183 * 24 * time.Hour,
	"yearly":      365 * 24 * time.Hour,
}

// RemindBefore is how long before a periodic control is due its reminder
// is raised.
const RemindBefore = 14 * 24 * time.Hour

// Config is what the service needs.
type Config struct {
	DB     *store.DB
	Clock  clock.Clock
	Rand   io.Reader
	Audit  *audit.Log
	Keys   *keys.Keyring
	Gov    *governance.Service
	Alerts *alert.Queue
	// VerifierKey is the access log's public key, printed in the report so
	// that its proofs can be checked.
	VerifierKey string
	// ServerCert is the HTTPS certificate in force (nil: unknown); its
	// expiry is evidence too.
	ServerCert *x509.Certificate
}

// Service keeps the register and makes the report.
type Service struct {
	c        Config
	controls []Control
	byID     map[string]Control
}

// New returns the service.
func New(c Config) *Service {
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	s := &Service{c: c, controls: Controls(), byID: map[string]Control{}}
	for _, ctl := range s.controls {
		s.byID[ctl.ID] = ctl
	}
	return s
}

// Errors callers tell apart.
var (
	ErrForbidden = errors.New("compliance: not allowed for this role")
	ErrNotFound  = errors.New("compliance: not found")
)

// InvalidError names a field that cannot be accepted.
type InvalidError struct{ Field, Reason string }

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

// officerOrAdmin: the register is kept by the tenant's security officer and
// application admins, logged on at the level changes of the rules need.
func officerOrAdmin(s access.Subject) error {
	r := s.Role()
	if (r != access.RoleSecurityOfficer && r != access.RoleAppAdmin) || s.TenantID() == "" || s.Assurance() < access.HealthDataLevel {
		return ErrForbidden
	}
	return nil
}

var idEnc = base32.StdEncoding.WithPadding(base32.NoPadding)

func (s *Service) newID(prefix string) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.c.Rand, b[:]); err != nil {
		return "", fmt.Errorf("compliance: randomness: %w", err)
	}
	return prefix + strings.ToLower(idEnc.EncodeToString(b[:])), nil
}

func text(field, v string, max int) error {
	if utf8.RuneCountInString(v) > max || !utf8.ValidString(v) {
		return &InvalidError{Field: field, Reason: fmt.Sprintf("at most %d characters", max)}
	}
	return nil
}

// event is the access-log line of a register step by actor.
func event(actor access.Subject, resource, what string) audit.Event {
	return audit.Event{Action: audit.ActionUpdate, Outcome: audit.OutcomeSuccess, TenantID: actor.TenantID(), Organisation: actor.Organisation(),
		UserID: actor.AccountID(), UserName: actor.Name(), Role: string(actor.Role()), Assurance: actor.Assurance().String(),
		Resources: []string{resource}, Query: what}
}
