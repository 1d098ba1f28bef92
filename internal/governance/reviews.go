package governance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

const (
	// UnusedAfter flags a right its holder has not used for this long.
	UnusedAfter = 60 * 24 * time.Hour
	// ReviewEvery is how often a tenant's rights are reviewed: a month, and
	// a campaign closed longer ago than this is overdue.
	ReviewEvery = 31 * 24 * time.Hour
)

// Review is a monthly access-rights review campaign (GOV-2).
type Review struct {
	ID           string     `json:"id"`
	TenantID     string     `json:"tenant_id"`
	Period       string     `json:"period"`
	OpenedBy     string     `json:"opened_by"`
	Opened       time.Time  `json:"opened_at"`
	ClosedBy     string     `json:"closed_by,omitempty"`
	Closed       *time.Time `json:"closed_at,omitempty"`
	EvidenceHash string     `json:"evidence_sha256,omitempty"`
	Lines        []Line     `json:"lines"`
}

// Line is one right of one account in a campaign.
type Line struct {
	N             int        `json:"line"`
	AccountID     string     `json:"account_id"`
	AccountName   string     `json:"account_name"`
	Role          string     `json:"role"`
	RequestID     string     `json:"request_id,omitempty"`
	Privileged    bool       `json:"privileged"`
	Relationships int64      `json:"care_relationships"`
	LastUse       *time.Time `json:"last_use,omitempty"`
	Unused        bool       `json:"unused_60_days"`
	Decision      string     `json:"decision,omitempty"` // keep, revoke
	DecidedBy     string     `json:"decided_by,omitempty"`
	Decided       *time.Time `json:"decided_at,omitempty"`
	Note          string     `json:"note,omitempty"`
}

var periodRE = regexp.MustCompile(`^20[0-9]{2}-(0[1-9]|1[0-2])$`)

// OpenReview starts the campaign of period (YYYY-MM; "" the current month
// in UTC): a line per current right of every account of the tenant, with
// its privileged approval, the account's care relationships and the last
// session in that role, flagged when unused for 60 days.
func (s *Service) OpenReview(ctx context.Context, actor access.Subject, period string) (Review, error) {
	if err := officerOrAdmin(actor); err != nil {
		return Review{}, err
	}
	now := s.c.Clock.Now()
	if period == "" {
		period = now.UTC().Format("2006-01")
	}
	if !periodRE.MatchString(period) {
		return Review{}, &InvalidError{Field: "period", Reason: "a month as YYYY-MM"}
	}
	rights, _, err := s.c.Access.RightsOverview(ctx, actor)
	if err != nil {
		return Review{}, fmt.Errorf("open review: %w", err)
	}
	privileged, err := s.privileged(ctx, actor.TenantID())
	if err != nil {
		return Review{}, err
	}
	id, err := s.newID("rev-")
	if err != nil {
		return Review{}, err
	}
	err = s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO gov_reviews (id, tenant_id, period, opened_by, opened_at) VALUES ($1, $2, $3, $4, $5)`,
			id, actor.TenantID(), period, actor.AccountID(), clock.Micros(now))
		if store.IsUniqueViolation(err) {
			return &InvalidError{Field: "period", Reason: "a campaign for " + period + " exists already"}
		}
		if err != nil {
			return fmt.Errorf("open review: %w", err)
		}
		n := 0
		for _, r := range rights {
			if r.State != "current" {
				continue
			}
			var rels int64
			var last sql.NullInt64
			if err := tx.QueryRowContext(ctx, `SELECT
				(SELECT COUNT(*) FROM care_relationships WHERE professional_id = $1 AND tenant_id = $3 AND (end_at IS NULL OR end_at > $4)),
				(SELECT MAX(last_seen) FROM sessions WHERE account_id = $1 AND role = $2)`, r.AccountID, string(r.Role), actor.TenantID(), clock.Micros(now)).
				Scan(&rels, &last); err != nil {
				return fmt.Errorf("open review: %w", err)
			}
			unused := !last.Valid || now.Sub(clock.FromMicros(last.Int64)) > UnusedAfter
			n++
			name := r.DisplayName
			if name == "" {
				name = r.Username
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO gov_review_lines (review_id, line, account_id, account_name, role, request_id, privileged,
				relationships, last_use, unused) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, id, n, r.AccountID, name, string(r.Role), r.RequestID,
				privileged[r.RequestID], rels, last, unused); err != nil {
				return fmt.Errorf("open review: %w", err)
			}
		}
		_, err = s.log(ctx, tx, event(actor, "AccessReview/"+id, fmt.Sprintf("access review %s opened: %d rights", period, n)))
		return err
	})
	if err != nil {
		return Review{}, err
	}
	return s.Review(ctx, actor, id)
}

// privileged marks the approvals of the tenant that granted a privileged
// right (AZ-8).
func (s *Service) privileged(ctx context.Context, tenant string) (map[string]bool, error) {
	rows, err := s.c.DB.QueryContext(ctx, `SELECT id FROM access_right_requests WHERE tenant_id = $1 AND privileged = TRUE`, tenant)
	if err != nil {
		return nil, fmt.Errorf("privileged rights: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("privileged rights: %w", err)
		}
		out[id] = true
	}
	return out, rows.Err()
}

// DecideLine keeps or revokes one right of a campaign. The reviewer is never
// the account reviewed; a revocation takes effect at once (the approval is
// revoked, or a role given without one removed), before the decision is
// recorded.
func (s *Service) DecideLine(ctx context.Context, actor access.Subject, reviewID string, line int, decision, note string) error {
	if err := officerOrAdmin(actor); err != nil {
		return err
	}
	if decision != "keep" && decision != "revoke" {
		return &InvalidError{Field: "decision", Reason: "keep or revoke"}
	}
	if err := text("note", note, 1000, false); err != nil {
		return err
	}
	var account, role, requestID, decided string
	var closed sql.NullInt64
	err := s.c.DB.QueryRowContext(ctx, `SELECT l.account_id, l.role, l.request_id, l.decision, r.closed_at FROM gov_review_lines l
		JOIN gov_reviews r ON r.id = l.review_id WHERE l.review_id = $1 AND l.line = $2 AND r.tenant_id = $3`, reviewID, line, actor.TenantID()).
		Scan(&account, &role, &requestID, &decided, &closed)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("decide review line: %w", err)
	}
	switch {
	case account == actor.AccountID():
		return ErrOwnLine
	case closed.Valid:
		return &InvalidError{Field: "review", Reason: "the campaign is closed"}
	case decided == "revoke":
		return &InvalidError{Field: "decision", Reason: "the right was revoked already"}
	}
	if decision == "revoke" {
		if requestID != "" {
			if err := s.c.Access.RevokeRight(ctx, actor, requestID); err != nil && !errors.Is(err, access.ErrNotFound) {
				return fmt.Errorf("apply revocation: %w", err)
			}
		}
		// The role itself goes too: a right revoked through its approval no
		// longer counts, and one given without an approval has only this.
		if err := s.c.IDs.RevokeRole(ctx, account, role); err != nil && requestID == "" {
			return fmt.Errorf("apply revocation: %w", err)
		}
	}
	return s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE gov_review_lines SET decision = $1, decided_by = $2, decided_at = $3, note = $4 WHERE review_id = $5 AND line = $6`,
			decision, actor.AccountID(), clock.Micros(s.c.Clock.Now()), note, reviewID, line); err != nil {
			return fmt.Errorf("decide review line: %w", err)
		}
		ev := event(actor, "AccessReview/"+reviewID, fmt.Sprintf("access review line %d: %s %s of %s", line, decision, role, account))
		if decision == "revoke" && s.c.Alerts != nil {
			if _, err := s.c.Alerts.Raise(ctx, tx, alert.Entry{TenantID: actor.TenantID(), Kind: "review-revoked", AccountID: actor.AccountID(),
				SubjectID: account, Ref: reviewID, Detail: "role " + role + " revoked in the access review"}); err != nil {
				return err
			}
		}
		_, err := s.log(ctx, tx, ev)
		return err
	})
}

// CloseReview closes a campaign whose every line is decided: its evidence
// (the campaign as JSON) is kept with its SHA-256, which the closing log
// event names, so the signed log proves what was decided.
func (s *Service) CloseReview(ctx context.Context, actor access.Subject, reviewID string) (Review, error) {
	if err := officerOrAdmin(actor); err != nil {
		return Review{}, err
	}
	r, err := s.Review(ctx, actor, reviewID)
	if err != nil {
		return Review{}, err
	}
	if r.Closed != nil {
		return Review{}, &InvalidError{Field: "review", Reason: "the campaign is closed already"}
	}
	for _, l := range r.Lines {
		if l.Decision == "" {
			return Review{}, &InvalidError{Field: "lines", Reason: fmt.Sprintf("line %d (%s, %s) is not decided yet", l.N, l.AccountName, l.Role)}
		}
	}
	now := s.c.Clock.Now()
	r.ClosedBy, r.Closed = actor.AccountID(), &now
	if err := s.keepEvidence(ctx, actor, "gov_reviews", reviewID, "AccessReview/"+reviewID,
		fmt.Sprintf("access review %s closed: %d lines", r.Period, len(r.Lines)), now, r,
		&InvalidError{Field: "review", Reason: "the campaign is closed already"}); err != nil {
		return Review{}, err
	}
	return s.Review(ctx, actor, reviewID)
}

// Evidence returns a closed campaign's kept evidence, byte for byte as
// hashed.
func (s *Service) Evidence(ctx context.Context, actor access.Subject, reviewID string) ([]byte, string, error) {
	if err := officerOrAdmin(actor); err != nil {
		return nil, "", err
	}
	var body, h string
	err := s.c.DB.QueryRowContext(ctx, `SELECT evidence, evidence_hash FROM gov_reviews WHERE id = $1 AND tenant_id = $2 AND closed_at IS NOT NULL`,
		reviewID, actor.TenantID()).Scan(&body, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", ErrNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("review evidence: %w", err)
	}
	return []byte(body), h, nil
}

// Review returns a campaign with its lines.
func (s *Service) Review(ctx context.Context, actor access.Subject, id string) (Review, error) {
	if err := officerOrAdmin(actor); err != nil {
		return Review{}, err
	}
	var r Review
	var opened int64
	var closed sql.NullInt64
	err := s.c.DB.QueryRowContext(ctx, `SELECT id, tenant_id, period, opened_by, opened_at, closed_by, closed_at, evidence_hash FROM gov_reviews
		WHERE id = $1 AND tenant_id = $2`, id, actor.TenantID()).Scan(&r.ID, &r.TenantID, &r.Period, &r.OpenedBy, &opened, &r.ClosedBy, &closed, &r.EvidenceHash)
	if errors.Is(err, sql.ErrNoRows) {
		return Review{}, ErrNotFound
	}
	if err != nil {
		return Review{}, fmt.Errorf("read review: %w", err)
	}
	r.Opened = clock.FromMicros(opened)
	if closed.Valid {
		t := clock.FromMicros(closed.Int64)
		r.Closed = &t
	}
	rows, err := s.c.DB.QueryContext(ctx, `SELECT line, account_id, account_name, role, request_id, privileged, relationships, last_use, unused,
		decision, decided_by, decided_at, note FROM gov_review_lines WHERE review_id = $1 ORDER BY line`, id)
	if err != nil {
		return Review{}, fmt.Errorf("read review: %w", err)
	}
	defer rows.Close()
	r.Lines = []Line{}
	for rows.Next() {
		var l Line
		var last, decided sql.NullInt64
		if err := rows.Scan(&l.N, &l.AccountID, &l.AccountName, &l.Role, &l.RequestID, &l.Privileged, &l.Relationships, &last, &l.Unused,
			&l.Decision, &l.DecidedBy, &decided, &l.Note); err != nil {
			return Review{}, fmt.Errorf("read review: %w", err)
		}
		if last.Valid {
			t := clock.FromMicros(last.Int64)
			l.LastUse = &t
		}
		if decided.Valid {
			t := clock.FromMicros(decided.Int64)
			l.Decided = &t
		}
		r.Lines = append(r.Lines, l)
	}
	return r, rows.Err()
}

// Reviews lists the tenant's campaigns, newest first (without lines).
func (s *Service) Reviews(ctx context.Context, actor access.Subject) ([]Review, error) {
	if err := officerOrAdmin(actor); err != nil {
		return nil, err
	}
	rows, err := s.c.DB.QueryContext(ctx, `SELECT id, tenant_id, period, opened_by, opened_at, closed_by, closed_at, evidence_hash FROM gov_reviews
		WHERE tenant_id = $1 ORDER BY period DESC`, actor.TenantID())
	if err != nil {
		return nil, fmt.Errorf("list reviews: %w", err)
	}
	defer rows.Close()
	out := []Review{}
	for rows.Next() {
		var r Review
		var opened int64
		var closed sql.NullInt64
		if err := rows.Scan(&r.ID, &r.TenantID, &r.Period, &r.OpenedBy, &opened, &r.ClosedBy, &closed, &r.EvidenceHash); err != nil {
			return nil, fmt.Errorf("list reviews: %w", err)
		}
		r.Opened = clock.FromMicros(opened)
		if closed.Valid {
			t := clock.FromMicros(closed.Int64)
			r.Closed = &t
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// WarnOverdueReviews raises a security event, once a month, for every
// active tenant older than a month whose newest closed campaign is older
// than ReviewEvery (or that has none). It returns how many it raised.
func (s *Service) WarnOverdueReviews(ctx context.Context) (int, error) {
	now := s.c.Clock.Now()
	month := now.UTC().Format("2006-01")
	rows, err := s.c.DB.QueryContext(ctx, `SELECT t.id, (SELECT MAX(r.closed_at) FROM gov_reviews r WHERE r.tenant_id = t.id) FROM tenants t
		WHERE t.created_at < $1 AND NOT EXISTS (SELECT 1 FROM onboard_tenants o WHERE o.tenant_id = t.id AND o.status = 'deactivated')`,
		clock.Micros(now.Add(-ReviewEvery)))
	if err != nil {
		return 0, fmt.Errorf("overdue reviews: %w", err)
	}
	var due []string
	for rows.Next() {
		var id string
		var last sql.NullInt64
		if err := rows.Scan(&id, &last); err != nil {
			rows.Close()
			return 0, fmt.Errorf("overdue reviews: %w", err)
		}
		if !last.Valid || now.Sub(clock.FromMicros(last.Int64)) > ReviewEvery {
			due = append(due, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("overdue reviews: %w", err)
	}
	n := 0
	for _, t := range due {
		err := s.c.DB.Tx(ctx, func(tx *store.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO gov_overdue (tenant_id, period, raised_at) VALUES ($1, $2, $3)`, t, month, clock.Micros(now))
			if store.IsUniqueViolation(err) {
				return nil
			}
			if err != nil {
				return err
			}
			n++
			if s.c.Alerts == nil {
				return nil
			}
			_, err = s.c.Alerts.Raise(ctx, tx, alert.Entry{TenantID: t, Kind: "access-review-overdue", AccountID: "system:governance",
				Detail: "no access-rights review was closed in the last month (GOV-2)"})
			return err
		})
		if err != nil {
			return n, fmt.Errorf("overdue reviews: %w", err)
		}
	}
	return n, nil
}
