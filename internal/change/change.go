// Package change is the one four-eyes mechanism (GOV-1) for every
// security-relevant setting: a change is proposed by one admin, takes effect
// only after a different admin of the same organisation approves it, and a
// request nobody decides expires. Every step is an access-log event.
//
// The packages that own a setting register a Handler for their kind of
// change (dependency inversion: they import change, change imports none of
// them). Approval runs the owner's Apply in the transaction that marks the
// request approved and logs it, so a change is applied, recorded and
// logged together or not at all; the owner keeps writing its own tables.
// Who may act at all (role, assurance, a role still current) is the
// caller's check, access's as for every management action; change checks
// who may decide which request.
package change

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Status of a request.
type Status string

const (
	Pending  Status = "pending"
	Approved Status = "approved" // and applied
	Rejected Status = "rejected"
	Expired  Status = "expired"
	Failed   Status = "failed" // approved, but the owner could no longer apply it
)

// DefaultExpiry is how long a request waits for its decision.
const DefaultExpiry = 7 * 24 * time.Hour

// MaxPayload bounds a request's payload.
const MaxPayload = 64 << 10

// maxSummary bounds a request's summary, in characters.
const maxSummary = 500

// Errors callers tell apart.
var (
	ErrNotFound = errors.New("change: no such change request")
	// ErrSelf: the proposer, or the account the change concerns, tries to
	// approve or reject it (four eyes).
	ErrSelf      = errors.New("change: four eyes: a change is decided by another admin than the one who proposed it or the one it concerns")
	ErrForbidden = errors.New("change: this role does not decide this kind of change")
	ErrDecided   = errors.New("change: the request is no longer pending")
	ErrExpired   = errors.New("change: the request expired without a decision; propose it again")
	ErrInvalid   = errors.New("change: invalid request")
	// ErrInapplicable is what an owner's Apply wraps when the change can no
	// longer be made (the setting moved on since it was proposed): the
	// request is then marked failed, with the reason, instead of staying
	// pending.
	ErrInapplicable = errors.New("change: can no longer be applied")
)

// Actor is who proposes or decides, as the caller has checked it: the
// session's account, role and organisation. TenantID is "" for platform
// staff (operators).
type Actor struct {
	TenantID     string
	AccountID    string
	Name         string
	Role         string
	Organisation string
	Assurance    string
}

// Request is one change request.
type Request struct {
	ID         string          `json:"id"`
	TenantID   string          `json:"tenant_id"`
	Kind       string          `json:"kind"`
	Summary    string          `json:"summary"`
	Payload    json.RawMessage `json:"payload"`
	SubjectID  string          `json:"subject_id,omitempty"`
	ProposedBy string          `json:"proposed_by"`
	ProposedAt time.Time       `json:"proposed_at"`
	ExpiresAt  time.Time       `json:"expires_at"`
	Status     Status          `json:"status"`
	DecidedBy  string          `json:"decided_by,omitempty"`
	DecidedAt  *time.Time      `json:"decided_at,omitempty"`
	Note       string          `json:"note,omitempty"`
}

// Handler is an owner's part of a kind of change.
type Handler struct {
	// Approvers are the roles (session role names) that may decide it.
	Approvers []string
	// Apply makes the change in tx, the transaction that marks the request
	// approved (r carries the decider, time and note already); an error rolls everything back (wrap ErrInapplicable to have
	// the request marked failed).
	Apply func(ctx context.Context, tx *store.Tx, r Request, approver Actor) error
	// Prepare, when set instead of Apply, does the owner's work that must
	// not hold the write transaction (making and sealing a key) before it
	// opens, for a decision that would be allowed; the function it returns
	// applies the change in the approval's transaction.
	Prepare func(ctx context.Context, r Request, approver Actor) (func(ctx context.Context, tx *store.Tx) error, error)
	// Closed, when set, tells the owner in tx that the request ended
	// without effect (r.Status is rejected, expired or failed).
	Closed func(ctx context.Context, tx *store.Tx, r Request) error
	// Platform: staff without an organisation (Actor.TenantID "", the
	// operators at the server) may propose and decide this kind for any
	// organisation, as the CA's commands do.
	Platform bool
}

// Config is what the service needs.
type Config struct {
	DB     *store.DB
	Audit  *audit.Log
	Clock  clock.Clock
	Rand   io.Reader     // default crypto/rand
	Expiry time.Duration // default DefaultExpiry
}

// Service keeps the change requests and the handlers of their kinds.
type Service struct {
	c        Config
	mu       sync.RWMutex
	handlers map[string]Handler
}

// New returns the service.
func New(c Config) *Service {
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Expiry <= 0 {
		c.Expiry = DefaultExpiry
	}
	return &Service{c: c, handlers: map[string]Handler{}}
}

// Expiry is how long a request waits for its decision.
func (s *Service) Expiry() time.Duration { return s.c.Expiry }

// Register sets the handler of kind, by its owner, when the owner is
// constructed; an owner built again (oauth's service for a new issuer)
// replaces its earlier handler.
func (s *Service) Register(kind string, h Handler) {
	if kind == "" || (h.Apply == nil) == (h.Prepare == nil) || len(h.Approvers) == 0 {
		panic("change: Register needs a kind, an Apply or a Prepare, and approvers")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[kind] = h
}

func (s *Service) handler(kind string) (Handler, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h, ok := s.handlers[kind]
	return h, ok
}

// Proposal is what an owner proposes.
type Proposal struct {
	Kind    string
	Summary string // for the people who decide; no secrets
	Payload any    // marshalled to JSON; no secrets in clear (seal them first)
	// SubjectID is the account the change gives rights to, if any: it may
	// not decide the request either (AZ-7).
	SubjectID string
	// TenantID is the organisation the change is for; "" is the
	// proposer's. Only platform staff propose for another, of a Platform
	// kind.
	TenantID string
}

var idEnc = base32.StdEncoding.WithPadding(base32.NoPadding)

// Propose records p as a pending request of by's organisation, in tx (the
// owner's transaction, so that its own pending row and the request commit
// together), and logs it there.
func (s *Service) Propose(ctx context.Context, tx *store.Tx, by Actor, p Proposal) (Request, error) {
	h, ok := s.handler(p.Kind)
	if !ok {
		return Request{}, fmt.Errorf("propose %s: unknown kind: %w", p.Kind, ErrInvalid)
	}
	tenant := by.TenantID
	if p.TenantID != "" && p.TenantID != by.TenantID {
		if by.TenantID != "" || !h.Platform {
			return Request{}, fmt.Errorf("propose %s: for another organisation: %w", p.Kind, ErrInvalid)
		}
		tenant = p.TenantID
	}
	if by.AccountID == "" {
		return Request{}, fmt.Errorf("propose %s: no proposer: %w", p.Kind, ErrInvalid)
	}
	if strings.TrimSpace(p.Summary) == "" || !utf8.ValidString(p.Summary) {
		return Request{}, fmt.Errorf("propose %s: a summary is required: %w", p.Kind, ErrInvalid)
	}
	// The summary is for people; the payload is what is applied. A long
	// one (an app's redirect URIs and scopes) is shortened, not refused.
	if r := []rune(p.Summary); len(r) > maxSummary {
		p.Summary = string(r[:maxSummary-1]) + "…"
	}
	payload, err := json.Marshal(p.Payload)
	if err != nil {
		return Request{}, fmt.Errorf("propose %s: payload: %w", p.Kind, err)
	}
	if len(payload) > MaxPayload {
		return Request{}, fmt.Errorf("propose %s: payload over %d bytes: %w", p.Kind, MaxPayload, ErrInvalid)
	}
	var b [16]byte
	if _, err := io.ReadFull(s.c.Rand, b[:]); err != nil {
		return Request{}, fmt.Errorf("propose %s: randomness: %w", p.Kind, err)
	}
	now := s.c.Clock.Now()
	r := Request{ID: "ch-" + strings.ToLower(idEnc.EncodeToString(b[:])), TenantID: tenant, Kind: p.Kind, Summary: p.Summary,
		Payload: payload, SubjectID: p.SubjectID, ProposedBy: by.AccountID, ProposedAt: now, ExpiresAt: now.Add(s.c.Expiry), Status: Pending}
	if _, err := tx.ExecContext(ctx, `INSERT INTO change_requests (id, tenant_id, kind, payload, summary, subject_id, proposed_by, proposed_at, expires_at, status)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending')`, r.ID, r.TenantID, r.Kind, string(payload), r.Summary, r.SubjectID,
		r.ProposedBy, clock.Micros(now), clock.Micros(r.ExpiresAt)); err != nil {
		return Request{}, fmt.Errorf("propose %s: %w", p.Kind, err)
	}
	if err := s.log(ctx, tx, by, r, "proposed", audit.OutcomeSuccess, ""); err != nil {
		return Request{}, err
	}
	return r, nil
}

// Decide approves or rejects request id of by's organisation. An approval
// runs the owner's Apply in the same transaction. The proposer and the
// account the change concerns cannot decide it (ErrSelf); a request past
// its expiry is marked expired (ErrExpired). A refused attempt is logged
// too.
func (s *Service) Decide(ctx context.Context, by Actor, id string, approve bool, note string) (Request, error) {
	return s.decide(ctx, by, id, "", approve, note)
}

// DecideKind is Decide for a request that must be of kind (an owner's own
// endpoint deciding its own requests): another kind is not found.
func (s *Service) DecideKind(ctx context.Context, by Actor, kind, id string, approve bool, note string) (Request, error) {
	return s.decide(ctx, by, id, kind, approve, note)
}

func (s *Service) decide(ctx context.Context, by Actor, id, kind string, approve bool, note string) (Request, error) {
	if err := text(id, 100, true); err != nil {
		return Request{}, fmt.Errorf("decide: id: %w", err)
	}
	if err := text(note, 1000, false); err != nil {
		return Request{}, fmt.Errorf("decide: note: %w", err)
	}
	// An owner's work that must not hold the write transaction (a CA's key
	// is made and sealed) is prepared first, for a decision that would be
	// allowed; the transaction checks everything again.
	var prepared func(context.Context, *store.Tx) error
	if approve {
		r, h, err := s.visible(ctx, s.c.DB, by, id, kind)
		if err != nil {
			return Request{}, err
		}
		now := s.c.Clock.Now()
		if h.Prepare != nil && r.Status == Pending && now.Before(r.ExpiresAt) && s.refusal(r, h, by) == nil {
			r.DecidedBy, r.DecidedAt, r.Note = by.AccountID, &now, note
			if prepared, err = h.Prepare(ctx, r, by); err != nil {
				if errors.Is(err, ErrInapplicable) {
					return s.markFailed(ctx, by, id, err)
				}
				return Request{}, fmt.Errorf("prepare change request %s: %w", id, err)
			}
		}
	}
	var out Request
	var refused, applyErr error
	err := s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		r, h, err := s.visible(ctx, tx, by, id, kind)
		if err != nil {
			return err
		}
		if r.Status != Pending {
			return fmt.Errorf("change request %s is %s: %w", id, r.Status, ErrDecided)
		}
		now := s.c.Clock.Now()
		if !now.Before(r.ExpiresAt) {
			refused = fmt.Errorf("change request %s: %w", id, ErrExpired)
			out, err = s.close(ctx, tx, h, r, Expired, Actor{}, "expired without a decision")
			return err
		}
		if refused = s.refusal(r, h, by); refused != nil {
			out = r
			return nil
		}
		if !approve {
			out, err = s.close(ctx, tx, h, r, Rejected, by, note)
			return err
		}
		// The owner sees who decides, when and why while it applies.
		r.DecidedBy, r.DecidedAt, r.Note = by.AccountID, &now, note
		switch {
		case prepared != nil:
			err = prepared(ctx, tx)
		case h.Apply != nil:
			err = h.Apply(ctx, tx, r, by)
		default:
			err = fmt.Errorf("kind %s was not prepared", r.Kind)
		}
		if err != nil {
			if errors.Is(err, ErrInapplicable) {
				applyErr = err
			}
			return fmt.Errorf("apply change request %s: %w", id, err)
		}
		r.Status = Approved
		if err := s.finish(ctx, tx, r); err != nil {
			return err
		}
		out = r
		return s.log(ctx, tx, by, r, "approved and applied", audit.OutcomeSuccess, note)
	})
	if applyErr != nil {
		return s.markFailed(ctx, by, id, applyErr)
	}
	if err != nil {
		return Request{}, err
	}
	if refused != nil {
		if errors.Is(refused, ErrExpired) {
			return out, refused
		}
		// The attempt itself is evidence: logged as a denied step.
		if err := s.log(ctx, nil, by, out, "decision refused", audit.OutcomeDenied, refused.Error()); err != nil {
			return Request{}, err
		}
		return Request{}, refused
	}
	return out, nil
}

// visible returns request id with its handler when by may see it: a
// request of by's own organisation, or of any organisation for platform
// staff when the kind allows that (Handler.Platform); another is not found.
func (s *Service) visible(ctx context.Context, q store.Querier, by Actor, id, kind string) (Request, Handler, error) {
	r, err := scan(q.QueryRowContext(ctx, `SELECT `+cols+` FROM change_requests WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Request{}, Handler{}, fmt.Errorf("change request %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Request{}, Handler{}, fmt.Errorf("change request %s: %w", id, err)
	}
	h, ok := s.handler(r.Kind)
	if (kind != "" && r.Kind != kind) || (r.TenantID != by.TenantID && !(by.TenantID == "" && ok && h.Platform)) {
		return Request{}, Handler{}, fmt.Errorf("change request %s: %w", id, ErrNotFound)
	}
	if !ok {
		return Request{}, Handler{}, fmt.Errorf("change request %s: kind %s is not served here: %w", id, r.Kind, ErrInvalid)
	}
	return r, h, nil
}

// refusal says why by may not decide r, or nil: four eyes (never the
// proposer, never the account the change concerns) and the kind's roles.
func (s *Service) refusal(r Request, h Handler, by Actor) error {
	switch {
	case r.ProposedBy == by.AccountID:
		return fmt.Errorf("change request %s was proposed by this account: %w", r.ID, ErrSelf)
	case r.SubjectID != "" && r.SubjectID == by.AccountID:
		return fmt.Errorf("change request %s concerns this account: %w", r.ID, ErrSelf)
	case !slices.Contains(h.Approvers, by.Role):
		return fmt.Errorf("change request %s (%s) is decided by %s: %w", r.ID, r.Kind, strings.Join(h.Approvers, " or "), ErrForbidden)
	}
	return nil
}

// Lookup returns request id as by may see it (its organisation's, or for
// platform staff one of a Platform kind of any organisation).
func (s *Service) Lookup(ctx context.Context, by Actor, id string) (Request, error) {
	if err := text(id, 100, true); err != nil {
		return Request{}, fmt.Errorf("change request: id: %w", err)
	}
	r, _, err := s.visible(ctx, s.c.DB, by, id, "")
	return r, err
}

// MayDecide reports whether by may decide r (four eyes and the kind's
// roles), for a page that offers the decision only to those who may.
func (s *Service) MayDecide(r Request, by Actor) bool {
	h, ok := s.handler(r.Kind)
	return ok && (r.TenantID == by.TenantID || (by.TenantID == "" && h.Platform)) && s.refusal(r, h, by) == nil
}

// markFailed records that an approved request could no longer be applied.
func (s *Service) markFailed(ctx context.Context, by Actor, id string, cause error) (Request, error) {
	var out Request
	err := s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		r, h, err := s.visible(ctx, tx, by, id, "")
		if err != nil {
			return err
		}
		if r.Status != Pending {
			return fmt.Errorf("change request %s is %s: %w", id, r.Status, ErrDecided)
		}
		out, err = s.close(ctx, tx, h, r, Failed, by, cause.Error())
		return err
	})
	if err != nil {
		return Request{}, err
	}
	return out, fmt.Errorf("change request %s: %w", id, cause)
}

// close ends r without effect (rejected, expired, failed), tells the owner
// and logs the step. An expiry has no decider (by is zero).
func (s *Service) close(ctx context.Context, tx *store.Tx, h Handler, r Request, status Status, by Actor, note string) (Request, error) {
	now := s.c.Clock.Now()
	r.Status, r.DecidedBy, r.DecidedAt, r.Note = status, by.AccountID, &now, note
	if err := s.finish(ctx, tx, r); err != nil {
		return Request{}, err
	}
	if h.Closed != nil {
		if err := h.Closed(ctx, tx, r); err != nil {
			return Request{}, fmt.Errorf("close change request %s: %w", r.ID, err)
		}
	}
	outcome := audit.OutcomeSuccess
	if status == Failed {
		outcome = audit.OutcomeFailed
	}
	if by.AccountID == "" {
		by = Actor{TenantID: r.TenantID, AccountID: "system", Name: "zorgkluis"}
	}
	return r, s.log(ctx, tx, by, r, string(status), outcome, note)
}

func (s *Service) finish(ctx context.Context, tx *store.Tx, r Request) error {
	res, err := tx.ExecContext(ctx, `UPDATE change_requests SET status = $1, decided_by = $2, decided_at = $3, note = $4 WHERE id = $5 AND status = 'pending'`,
		string(r.Status), r.DecidedBy, clock.Micros(*r.DecidedAt), r.Note, r.ID)
	if err != nil {
		return fmt.Errorf("change request %s: %w", r.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("change request %s was decided meanwhile: %w", r.ID, ErrDecided)
	}
	return nil
}

// Expire marks every pending request past its expiry as expired, tells
// the owners and logs each; serve runs it periodically.
func (s *Service) Expire(ctx context.Context) error {
	now := clock.Micros(s.c.Clock.Now())
	rows, err := s.c.DB.QueryContext(ctx, `SELECT id, tenant_id FROM change_requests WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT 500`, now)
	if err != nil {
		return fmt.Errorf("expire change requests: %w", err)
	}
	type key struct{ id, tenant string }
	var due []key
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.id, &k.tenant); err != nil {
			rows.Close()
			return fmt.Errorf("expire change requests: %w", err)
		}
		due = append(due, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("expire change requests: %w", err)
	}
	for _, k := range due {
		err := s.c.DB.Tx(ctx, func(tx *store.Tx) error {
			r, err := s.get(ctx, tx, k.tenant, k.id)
			if err != nil {
				return err
			}
			if r.Status != Pending {
				return nil
			}
			h, _ := s.handler(r.Kind)
			_, err = s.close(ctx, tx, h, r, Expired, Actor{}, "expired without a decision")
			return err
		})
		if err != nil {
			return fmt.Errorf("expire change requests: %w", err)
		}
	}
	return nil
}

const cols = `id, tenant_id, kind, payload, summary, subject_id, proposed_by, proposed_at, expires_at, status, decided_by, decided_at, note`

func scan(row interface{ Scan(...any) error }) (Request, error) {
	var r Request
	var payload string
	var proposed, expires int64
	var decided sql.NullInt64
	if err := row.Scan(&r.ID, &r.TenantID, &r.Kind, &payload, &r.Summary, &r.SubjectID, &r.ProposedBy, &proposed, &expires,
		&r.Status, &r.DecidedBy, &decided, &r.Note); err != nil {
		return Request{}, err
	}
	r.Payload = json.RawMessage(payload)
	r.ProposedAt, r.ExpiresAt = clock.FromMicros(proposed), clock.FromMicros(expires)
	if decided.Valid {
		t := clock.FromMicros(decided.Int64)
		r.DecidedAt = &t
	}
	return r, nil
}

func (s *Service) get(ctx context.Context, q store.Querier, tenantID, id string) (Request, error) {
	r, err := scan(q.QueryRowContext(ctx, `SELECT `+cols+` FROM change_requests WHERE id = $1 AND tenant_id = $2`, id, tenantID))
	if errors.Is(err, sql.ErrNoRows) {
		return Request{}, fmt.Errorf("change request %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Request{}, fmt.Errorf("change request %s: %w", id, err)
	}
	return r, nil
}

// Get returns request id of tenantID's organisation ("" for the platform).
func (s *Service) Get(ctx context.Context, tenantID, id string) (Request, error) {
	if err := text(id, 100, true); err != nil {
		return Request{}, fmt.Errorf("change request: id: %w", err)
	}
	return s.get(ctx, s.c.DB, tenantID, id)
}

// List returns the organisation's pending requests, oldest first, and its
// most recent decided ones (at most limit), newest first. A pending request
// past its expiry is listed as expired even before the sweep has run.
func (s *Service) List(ctx context.Context, tenantID string, limit int) (pending, recent []Request, err error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	now := s.c.Clock.Now()
	rows, err := s.c.DB.QueryContext(ctx, `SELECT `+cols+` FROM change_requests WHERE tenant_id = $1 AND status = 'pending' ORDER BY proposed_at LIMIT 500`, tenantID)
	if err != nil {
		return nil, nil, fmt.Errorf("list change requests: %w", err)
	}
	pending, recent = []Request{}, []Request{}
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("list change requests: %w", err)
		}
		if now.Before(r.ExpiresAt) {
			pending = append(pending, r)
		} else {
			r.Status = Expired
			recent = append(recent, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("list change requests: %w", err)
	}
	rows, err = s.c.DB.QueryContext(ctx, `SELECT `+cols+` FROM change_requests WHERE tenant_id = $1 AND status <> 'pending' ORDER BY decided_at DESC, id LIMIT $2`, tenantID, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("list change requests: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, nil, fmt.Errorf("list change requests: %w", err)
		}
		recent = append(recent, r)
	}
	return pending, recent, rows.Err()
}

// log appends the access-log event of a step: in q, the step's
// transaction, or on its own when q is nil.
func (s *Service) log(ctx context.Context, q store.Querier, by Actor, r Request, step string, outcome audit.Outcome, reason string) error {
	ev := audit.Event{Action: audit.ActionUpdate, Outcome: outcome, TenantID: r.TenantID, Organisation: by.Organisation,
		UserID: by.AccountID, UserName: by.Name, Role: by.Role, Assurance: by.Assurance, PrincipalKind: "staff",
		Basis: "four-eyes", Resources: []string{"ChangeRequest/" + r.ID}, Query: "change " + step + ": " + r.Kind + ": " + r.Summary,
		Reason: reason}
	if by.AccountID == "system" {
		ev.PrincipalKind = ""
	}
	var err error
	if q == nil {
		_, err = s.c.Audit.Append(ctx, ev)
	} else {
		_, err = s.c.Audit.AppendIn(ctx, q, ev)
	}
	if err != nil {
		return fmt.Errorf("log change %s: %w", step, err)
	}
	return nil
}

func text(v string, max int, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return fmt.Errorf("required: %w", ErrInvalid)
	}
	if !utf8.ValidString(v) || utf8.RuneCountInString(v) > max || strings.ContainsRune(v, 0) {
		return fmt.Errorf("at most %d characters of text: %w", max, ErrInvalid)
	}
	return nil
}
