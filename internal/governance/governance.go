// Package governance is the evidence an auditor asks for, kept inside the
// system that holds the data: the incident register with its 48-hour
// reporting clock (GOV-4, LOG-9) and the monthly access-rights review
// (GOV-2), whose reviewers are never the reviewed, whose revocations take
// effect at once and whose closed campaign is kept with its hash in the
// access log.
package governance

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
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
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Config is what the service needs.
type Config struct {
	DB     *store.DB
	Clock  clock.Clock
	Rand   io.Reader
	Audit  *audit.Log
	Alerts *alert.Queue
	Access *access.Decider    // revocations of a review
	IDs    *identity.Registry // roles granted without an approval
}

// Service keeps the registers.
type Service struct{ c Config }

// New returns the service.
func New(c Config) *Service {
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return &Service{c: c}
}

// Errors callers tell apart.
var (
	ErrForbidden = errors.New("governance: not allowed for this role")
	ErrNotFound  = errors.New("governance: not found")
	// ErrOwnLine: a reviewer decides on their own rights.
	ErrOwnLine = errors.New("governance: a reviewer never reviews their own rights")
)

// InvalidError names a field that cannot be accepted.
type InvalidError struct{ Field, Reason string }

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

// officerOrAdmin checks the actor is a security officer or an application
// admin of a tenant, logged on at the level changes of the rules need.
func officerOrAdmin(s access.Subject) error {
	r := s.Role()
	if (r != access.RoleSecurityOfficer && r != access.RoleAppAdmin) || s.TenantID() == "" || s.Assurance() < access.HealthDataLevel {
		return ErrForbidden
	}
	return nil
}

func officer(s access.Subject) error {
	if s.Role() != access.RoleSecurityOfficer || s.TenantID() == "" || s.Assurance() < access.HealthDataLevel {
		return ErrForbidden
	}
	return nil
}

var idEnc = base32.StdEncoding.WithPadding(base32.NoPadding)

func (s *Service) newID(prefix string) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.c.Rand, b[:]); err != nil {
		return "", fmt.Errorf("governance: randomness: %w", err)
	}
	return prefix + strings.ToLower(idEnc.EncodeToString(b[:])), nil
}

func text(field, v string, max int, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return &InvalidError{Field: field, Reason: "required"}
	}
	if utf8.RuneCountInString(v) > max || !utf8.ValidString(v) {
		return &InvalidError{Field: field, Reason: fmt.Sprintf("at most %d characters", max)}
	}
	return nil
}

// event is the access-log line of a governance step by actor.
func event(actor access.Subject, resource, what string) audit.Event {
	return audit.Event{Action: audit.ActionUpdate, Outcome: audit.OutcomeSuccess, TenantID: actor.TenantID(), Organisation: actor.Organisation(),
		UserID: actor.AccountID(), UserName: actor.Name(), Role: string(actor.Role()), Assurance: actor.Assurance().String(),
		Resources: []string{resource}, Query: what}
}

func (s *Service) log(ctx context.Context, q store.Querier, ev audit.Event) (audit.Event, error) {
	evs, err := s.c.Audit.AppendIn(ctx, q, ev)
	if err != nil {
		return audit.Event{}, fmt.Errorf("log %s: %w", ev.Query, err)
	}
	return evs[0], nil
}

// keepEvidence closes a register's row (table is gov_reviews or
// gov_adminlog_reports, never input): the closed report kept as JSON with
// its SHA-256, which the closing event names, and that event's id kept so
// the compliance report can give its inclusion proof (GOV-3). A row closed
// meanwhile is refused with already.
func (s *Service) keepEvidence(ctx context.Context, actor access.Subject, table, id, resource, what string, now time.Time, report any, already error) error {
	body, err := json.Marshal(report)
	if err != nil {
		return fmt.Errorf("close %s: %w", resource, err)
	}
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:])
	return s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		ev, err := s.log(ctx, tx, event(actor, resource, fmt.Sprintf("%s, evidence sha256 %s", what, h)))
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE `+table+` SET closed_by = $1, closed_at = $2, evidence = $3, evidence_hash = $4, close_event = $5
			WHERE id = $6 AND closed_at IS NULL`, actor.AccountID(), clock.Micros(now), string(body), h, ev.ID, id)
		if err != nil {
			return fmt.Errorf("close %s: %w", resource, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return already
		}
		return nil
	})
}
