// Package oauth is the authorisation server for persons' apps (MedMij's
// DVA role, EX-1): registered clients, authorization requests (pushed or
// not), the person's consent, codes, access and refresh tokens, and the
// look-up of an access token for the FHIR resource server (EX-2).
//
// It promises:
//   - every code, token and request reference has 256 bits from the
//     injected randomness (crypto/rand in production), is stored only as
//     its SHA-256 hash, and that hash is its table's primary key, so the
//     database refuses a second one;
//   - PKCE with S256 on every code (never plain), exact redirect URIs, a
//     code valid for 60 s and usable once: its second use revokes every
//     token issued from it;
//   - access tokens live 15 minutes; refresh tokens rotate on every use and
//     live as long as the consent; a refresh token used again revokes its
//     whole family, except the immediately previous one within 30 s
//     (concurrent refreshes), and the reuse is raised as a security event
//     and shown to the person;
//   - a withdrawn consent stops every token at once: each look-up joins
//     the consent;
//   - every step (authorize, consent, token, refresh, revoke) is a chain-log
//     event (LOG-6), and giving or withdrawing consent is an access-log
//     consent event as well (LOG-8).
//
// The HTTP endpoints are internal/oauthapi's; the consent page is
// internal/web's.
package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

const (
	// CodeTTL is how long a code is valid (MedMij: at most a minute).
	CodeTTL = 60 * time.Second
	// AccessTTL is the life of an access token.
	AccessTTL = 15 * time.Minute
	// PushedTTL is the life of a pushed request's request_uri (RFC 9126).
	PushedTTL = 90 * time.Second
	// PendingTTL is how long a person has to log on and decide.
	PendingTTL = 10 * time.Minute
	// RefreshGrace is how long after a rotation the previous refresh token
	// still works once more (two refreshes of one app crossing).
	RefreshGrace = 30 * time.Second
	// MaxConsentDays bounds a client's consent period.
	MaxConsentDays = 365
)

// Config is what the service needs.
type Config struct {
	DB     *store.DB
	Clock  clock.Clock
	Rand   io.Reader    // crypto/rand.Reader in production
	Audit  *audit.Log   // the chain log and the consent events
	Alerts *alert.Queue // a refresh token's reuse; nil: logged only
	// Issuer is the authorisation server's identifier, its public base URL
	// (https://host); the FHIR base apps must name as aud is Issuer+"/fhir".
	Issuer string
	// Changes is the four-eyes service (GOV-1) a registration and a change
	// of the public-client policy wait in; nil: one of its own on DB.
	Changes *change.Service
}

// Service is the authorisation server's state and rules.
type Service struct {
	db     *store.DB
	clock  clock.Clock
	rand   io.Reader
	log    *audit.Log
	alerts *alert.Queue
	issuer string
	// changes holds the registrations and policy changes until a second
	// admin approves them.
	changes *change.Service
}

// New returns the service.
func New(c Config) *Service {
	if c.Changes == nil {
		c.Changes = change.New(change.Config{DB: c.DB, Audit: c.Audit, Clock: c.Clock, Rand: c.Rand})
	}
	s := &Service{db: c.DB, clock: c.Clock, rand: c.Rand, log: c.Audit, alerts: c.Alerts, issuer: c.Issuer, changes: c.Changes}
	s.registerChanges()
	return s
}

// Issuer is the server's identifier (RFC 8414, RFC 9207 iss).
func (s *Service) Issuer() string { return s.issuer }

// Audience is the FHIR base an app must name as aud (SMART App Launch).
func (s *Service) Audience() string { return s.issuer + "/fhir" }

// Error is an OAuth error with its RFC code (RFC 6749 5.2, RFC 7009,
// RFC 9126, RFC 9449), the description an app developer reads, and the
// HTTP status of a direct answer.
type Error struct {
	Code        string
	Description string
	Status      int
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func fail(code, format string, args ...any) *Error {
	st := http.StatusBadRequest
	if code == "invalid_client" || code == "invalid_token" {
		st = http.StatusUnauthorized
	}
	return &Error{Code: code, Description: fmt.Sprintf(format, args...), Status: st}
}

// secret returns a new random value with its prefix (which names what it
// is, so a leaked one is recognisable) and its hash.
func (s *Service) secret(prefix string) (string, []byte, error) {
	var b [32]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", nil, fmt.Errorf("oauth: randomness: %w", err)
	}
	v := prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return v, hash(v), nil
}

func hash(v string) []byte {
	h := sha256.Sum256([]byte(v))
	return h[:]
}

// newID returns a random id with prefix for rows that are not secrets.
func (s *Service) newID(prefix string) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("oauth: randomness: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// chain appends a chain-log event of one exchange step (LOG-6). The trace
// id and source address come from the request's audit.Source.
func (s *Service) chain(ctx context.Context, q store.Querier, step string, ev audit.Event) error {
	ev.Action, ev.Kind = audit.ActionExchange, audit.KindChain
	if ev.Outcome == "" {
		ev.Outcome = audit.OutcomeSuccess
	}
	ev.Query = step
	ev.PrincipalKind = "app"
	var err error
	if q != nil {
		_, err = s.log.AppendIn(ctx, q, ev)
	} else {
		_, err = s.log.Append(ctx, ev)
	}
	if err != nil {
		return fmt.Errorf("chain log %s: %w", step, err)
	}
	return nil
}

// LogCall appends the chain-log event of one FHIR call by an app (LOG-6,
// EX-2): the app, the person and record, the method, path and status; the
// trace id is the request's (MedMij-Request-ID when the app sent one), and
// the app's X-Correlation-ID, when it sent one, is kept beside the path.
func (s *Service) LogCall(ctx context.Context, a Access, method, path, correlation string, status int) error {
	ev := audit.Event{TenantID: a.TenantID, UserID: a.AccountID, Role: "person", PatientID: a.PatientID, SourceApp: a.ClientID,
		Scopes: a.Scopes, Assurance: a.Assurance.String(), Resources: []string{method + " " + path}}
	if correlation != "" {
		ev.Resources = append(ev.Resources, "X-Correlation-ID "+correlation)
	}
	if a.OnBehalf {
		ev.OnBehalfOf = a.PatientID
	}
	if status >= 400 {
		ev.Outcome, ev.Reason = audit.OutcomeFailed, fmt.Sprintf("HTTP %d", status)
		if status == http.StatusForbidden || status == http.StatusUnauthorized {
			ev.Outcome = audit.OutcomeDenied
		}
	}
	return s.chain(ctx, nil, "fhir", ev)
}
