package governance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// AdminRoles are the roles every use of which the admin-log review covers
// (LOG-7, MedMij A.12.4.3): the organisation's application admins and
// security officers, and the platform's operators acting on its data.
var AdminRoles = []access.Role{access.RoleAppAdmin, access.RoleSecurityOfficer, access.RoleOperator}

// MaxAdminLogLines bounds one month's report; a month with more admin
// events than this is refused rather than reviewed in part.
const MaxAdminLogLines = 20000

// ErrOwnAction: a reviewer marks a line of their own admin actions.
var ErrOwnAction = errors.New("governance: a reviewer never reviews their own admin actions")

// Findings a reviewer marks a line with.
var findings = map[string]bool{"ok": true, "unjustified": true, "unnecessary": true, "question": true}

// AdminLogReport is a month's review of the admin and operator log.
type AdminLogReport struct {
	ID           string         `json:"id"`
	TenantID     string         `json:"tenant_id"`
	Period       string         `json:"period"`
	OpenedBy     string         `json:"opened_by"`
	Opened       time.Time      `json:"opened_at"`
	Finding      string         `json:"finding,omitempty"`
	FollowUp     string         `json:"follow_up,omitempty"`
	ClosedBy     string         `json:"closed_by,omitempty"`
	Closed       *time.Time     `json:"closed_at,omitempty"`
	EvidenceHash string         `json:"evidence_sha256,omitempty"`
	Lines        []AdminLogLine `json:"lines"`
}

// AdminLogLine is one use of admin or operator rights, as logged.
type AdminLogLine struct {
	N          int        `json:"line"`
	EventID    string     `json:"event_id"`
	At         time.Time  `json:"at"`
	ActorID    string     `json:"actor_id"`
	ActorName  string     `json:"actor_name"`
	Role       string     `json:"role"`
	Action     string     `json:"action"`
	Outcome    string     `json:"outcome"`
	What       string     `json:"what"`
	Finding    string     `json:"finding,omitempty"` // ok, unjustified, unnecessary, question
	FollowUp   string     `json:"follow_up,omitempty"`
	ReviewedBy string     `json:"reviewed_by,omitempty"`
	Reviewed   *time.Time `json:"reviewed_at,omitempty"`
}

// OpenAdminLog makes the report of period (YYYY-MM; "" the previous month
// in UTC, the one a monthly review looks back on): every event of the
// tenant's log in that month by an account acting in one of AdminRoles.
// Only the security officer opens it, since it reads the tenant's log (and
// that reading is itself logged, LOG-5).
func (s *Service) OpenAdminLog(ctx context.Context, actor access.Subject, period string) (AdminLogReport, error) {
	if err := officer(actor); err != nil {
		return AdminLogReport{}, err
	}
	now := s.c.Clock.Now().UTC()
	if period == "" {
		period = time.Date(now.Year(), now.Month()-1, 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
	}
	if !periodRE.MatchString(period) {
		return AdminLogReport{}, &InvalidError{Field: "period", Reason: "a month as YYYY-MM"}
	}
	from, _ := time.Parse("2006-01", period)
	if from.After(now) {
		return AdminLogReport{}, &InvalidError{Field: "period", Reason: "a month that has begun"}
	}
	to := from.AddDate(0, 1, 0)
	roles := make([]string, len(AdminRoles))
	for i, r := range AdminRoles {
		roles[i] = string(r)
	}
	permit, err := s.c.Access.DecideLogRead(ctx, actor, access.LogScope{})
	if err != nil {
		return AdminLogReport{}, fmt.Errorf("open admin-log review: %w", err)
	}
	reading, err := s.c.Audit.Read(ctx, permit, audit.Search{From: from, To: to, Roles: roles, Oldest: true, Limit: MaxAdminLogLines},
		"admin-log review "+period)
	if err != nil {
		return AdminLogReport{}, fmt.Errorf("open admin-log review: %w", err)
	}
	if !reading.Next().IsZero() {
		return AdminLogReport{}, &InvalidError{Field: "period", Reason: fmt.Sprintf("more than %d admin events in %s; review it with the log search", MaxAdminLogLines, period)}
	}
	var lines []AdminLogLine
	if _, err := reading.Each(ctx, func(e audit.Event) error {
		if !isAdminRole(e.Role) {
			return nil // the body match is a pre-filter; the decoded role decides
		}
		name := e.UserName
		if name == "" {
			name = e.UserID
		}
		lines = append(lines, AdminLogLine{N: len(lines) + 1, EventID: e.ID, At: e.Time, ActorID: e.UserID, ActorName: name, Role: e.Role,
			Action: string(e.Action), Outcome: string(e.Outcome), What: summary(e)})
		return nil
	}); err != nil {
		return AdminLogReport{}, fmt.Errorf("open admin-log review: %w", err)
	}
	id, err := s.newID("alr-")
	if err != nil {
		return AdminLogReport{}, err
	}
	err = s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO gov_adminlog_reports (id, tenant_id, period, opened_by, opened_at) VALUES ($1, $2, $3, $4, $5)`,
			id, actor.TenantID(), period, actor.AccountID(), clock.Micros(now))
		if store.IsUniqueViolation(err) {
			return &InvalidError{Field: "period", Reason: "a report for " + period + " exists already"}
		}
		if err != nil {
			return fmt.Errorf("open admin-log review: %w", err)
		}
		for _, l := range lines {
			if _, err := tx.ExecContext(ctx, `INSERT INTO gov_adminlog_lines (report_id, line, event_id, at, actor_id, actor_name, role, action, outcome, what)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, id, l.N, l.EventID, clock.Micros(l.At), l.ActorID, l.ActorName, l.Role, l.Action, l.Outcome, l.What); err != nil {
				return fmt.Errorf("open admin-log review: %w", err)
			}
		}
		_, err = s.log(ctx, tx, event(actor, "AdminLogReview/"+id, fmt.Sprintf("admin-log review %s opened: %d events", period, len(lines))))
		return err
	})
	if err != nil {
		return AdminLogReport{}, err
	}
	return s.AdminLog(ctx, actor, id)
}

func isAdminRole(r string) bool {
	for _, a := range AdminRoles {
		if string(a) == r {
			return true
		}
	}
	return false
}

// summary is what an event touched, for the reviewer: its resources,
// patient and query, bounded.
func summary(e audit.Event) string {
	parts := append([]string{}, e.Resources...)
	if e.PatientID != "" {
		parts = append(parts, "patient "+e.PatientID)
	}
	if e.Query != "" {
		parts = append(parts, e.Query)
	}
	if e.Reason != "" {
		parts = append(parts, "reason: "+e.Reason)
	}
	s := strings.Join(parts, "; ")
	if r := []rune(s); len(r) > 500 {
		s = string(r[:500]) + "…"
	}
	return s
}

// MarkAdminLogLine records the reviewer's finding and follow-up on one
// line. The reviewer is never the line's actor (functiescheiding); a
// finding other than ok needs its follow-up.
func (s *Service) MarkAdminLogLine(ctx context.Context, actor access.Subject, reportID string, line int, finding, followUp string) error {
	if err := officerOrAdmin(actor); err != nil {
		return err
	}
	if err := checkFinding(finding, followUp); err != nil {
		return err
	}
	var actorID string
	var closed sql.NullInt64
	err := s.c.DB.QueryRowContext(ctx, `SELECT l.actor_id, r.closed_at FROM gov_adminlog_lines l JOIN gov_adminlog_reports r ON r.id = l.report_id
		WHERE l.report_id = $1 AND l.line = $2 AND r.tenant_id = $3`, reportID, line, actor.TenantID()).Scan(&actorID, &closed)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("mark admin-log line: %w", err)
	}
	switch {
	case actorID == actor.AccountID():
		return ErrOwnAction
	case closed.Valid:
		return &InvalidError{Field: "report", Reason: "the report is closed"}
	}
	return s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		// The checks again in the write: a report closed (or a line made the
		// reviewer's) since the read above is not marked.
		res, err := tx.ExecContext(ctx, `UPDATE gov_adminlog_lines SET finding = $1, follow_up = $2, reviewed_by = $3, reviewed_at = $4
			WHERE report_id = $5 AND line = $6 AND actor_id <> $3
			AND report_id IN (SELECT id FROM gov_adminlog_reports WHERE id = $5 AND closed_at IS NULL)`,
			finding, followUp, actor.AccountID(), clock.Micros(s.c.Clock.Now()), reportID, line)
		if err != nil {
			return fmt.Errorf("mark admin-log line: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return &InvalidError{Field: "report", Reason: "the report is closed"}
		}
		_, err = s.log(ctx, tx, event(actor, "AdminLogReview/"+reportID, fmt.Sprintf("admin-log review line %d: %s", line, finding)))
		return err
	})
}

func checkFinding(finding, followUp string) error {
	if !findings[finding] {
		return &InvalidError{Field: "finding", Reason: "ok, unjustified, unnecessary or question"}
	}
	if err := text("follow_up", followUp, 2000, finding != "ok"); err != nil {
		return err
	}
	return nil
}

// ReportMark is a finding on the report as a whole; with RestOK every line
// not yet reviewed, and not the reviewer's own, is marked ok in the same
// step.
type ReportMark struct {
	Finding  string
	FollowUp string
	RestOK   bool
}

// MarkAdminLog records the report's own finding and follow-up. It returns
// how many lines RestOK marked; the reviewer's own lines are left for
// another reviewer.
func (s *Service) MarkAdminLog(ctx context.Context, actor access.Subject, reportID string, m ReportMark) (int, error) {
	if err := officerOrAdmin(actor); err != nil {
		return 0, err
	}
	if err := text("finding", m.Finding, 2000, true); err != nil {
		return 0, err
	}
	if err := text("follow_up", m.FollowUp, 2000, false); err != nil {
		return 0, err
	}
	n := 0
	err := s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE gov_adminlog_reports SET finding = $1, follow_up = $2 WHERE id = $3 AND tenant_id = $4 AND closed_at IS NULL`,
			m.Finding, m.FollowUp, reportID, actor.TenantID())
		if err != nil {
			return fmt.Errorf("mark admin-log review: %w", err)
		}
		if k, _ := res.RowsAffected(); k != 1 {
			return ErrNotFound // none, another tenant's, or closed
		}
		if m.RestOK {
			res, err := tx.ExecContext(ctx, `UPDATE gov_adminlog_lines SET finding = 'ok', reviewed_by = $1, reviewed_at = $2
				WHERE report_id = $3 AND finding = '' AND actor_id <> $1`, actor.AccountID(), clock.Micros(s.c.Clock.Now()), reportID)
			if err != nil {
				return fmt.Errorf("mark admin-log review: %w", err)
			}
			k, _ := res.RowsAffected()
			n = int(k)
		}
		_, err = s.log(ctx, tx, event(actor, "AdminLogReview/"+reportID, fmt.Sprintf("admin-log review finding recorded; %d lines marked ok", n)))
		return err
	})
	return n, err
}

// CloseAdminLog closes a report whose every line is reviewed: the report
// as JSON is kept with its SHA-256, which the closing log event names.
func (s *Service) CloseAdminLog(ctx context.Context, actor access.Subject, reportID string) (AdminLogReport, error) {
	if err := officerOrAdmin(actor); err != nil {
		return AdminLogReport{}, err
	}
	r, err := s.AdminLog(ctx, actor, reportID)
	if err != nil {
		return AdminLogReport{}, err
	}
	if r.Closed != nil {
		return AdminLogReport{}, &InvalidError{Field: "report", Reason: "the report is closed already"}
	}
	for _, l := range r.Lines {
		if l.Finding == "" {
			return AdminLogReport{}, &InvalidError{Field: "lines", Reason: fmt.Sprintf("line %d (%s, %s) is not reviewed yet", l.N, l.ActorName, l.Action)}
		}
	}
	now := s.c.Clock.Now()
	r.ClosedBy, r.Closed = actor.AccountID(), &now
	if err := s.keepEvidence(ctx, actor, "gov_adminlog_reports", reportID, "AdminLogReview/"+reportID,
		fmt.Sprintf("admin-log review %s closed: %d lines", r.Period, len(r.Lines)), now, r,
		&InvalidError{Field: "report", Reason: "the report is closed already"}); err != nil {
		return AdminLogReport{}, err
	}
	return s.AdminLog(ctx, actor, reportID)
}

// AdminLogEvidence returns a closed report's kept evidence, byte for byte
// as hashed.
func (s *Service) AdminLogEvidence(ctx context.Context, actor access.Subject, reportID string) ([]byte, string, error) {
	if err := officerOrAdmin(actor); err != nil {
		return nil, "", err
	}
	var body, h string
	err := s.c.DB.QueryRowContext(ctx, `SELECT evidence, evidence_hash FROM gov_adminlog_reports WHERE id = $1 AND tenant_id = $2 AND closed_at IS NOT NULL`,
		reportID, actor.TenantID()).Scan(&body, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", ErrNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("admin-log evidence: %w", err)
	}
	if err := s.logRead(ctx, actor, reportID, "admin-log review "+reportID+" evidence read"); err != nil {
		return nil, "", err
	}
	return []byte(body), h, nil
}

const adminLogCols = `id, tenant_id, period, opened_by, opened_at, finding, follow_up, closed_by, closed_at, evidence_hash`

func scanAdminLog(sc interface{ Scan(...any) error }) (AdminLogReport, error) {
	var r AdminLogReport
	var opened int64
	var closed sql.NullInt64
	if err := sc.Scan(&r.ID, &r.TenantID, &r.Period, &r.OpenedBy, &opened, &r.Finding, &r.FollowUp, &r.ClosedBy, &closed, &r.EvidenceHash); err != nil {
		return r, err
	}
	r.Opened = clock.FromMicros(opened)
	if closed.Valid {
		t := clock.FromMicros(closed.Int64)
		r.Closed = &t
	}
	return r, nil
}

// AdminLog returns a report with its lines.
func (s *Service) AdminLog(ctx context.Context, actor access.Subject, id string) (AdminLogReport, error) {
	if err := officerOrAdmin(actor); err != nil {
		return AdminLogReport{}, err
	}
	r, err := scanAdminLog(s.c.DB.QueryRowContext(ctx, `SELECT `+adminLogCols+` FROM gov_adminlog_reports WHERE id = $1 AND tenant_id = $2`, id, actor.TenantID()))
	if errors.Is(err, sql.ErrNoRows) {
		return AdminLogReport{}, ErrNotFound
	}
	if err != nil {
		return AdminLogReport{}, fmt.Errorf("read admin-log review: %w", err)
	}
	rows, err := s.c.DB.QueryContext(ctx, `SELECT line, event_id, at, actor_id, actor_name, role, action, outcome, what, finding, follow_up, reviewed_by, reviewed_at
		FROM gov_adminlog_lines WHERE report_id = $1 ORDER BY line`, id)
	if err != nil {
		return AdminLogReport{}, fmt.Errorf("read admin-log review: %w", err)
	}
	defer rows.Close()
	r.Lines = []AdminLogLine{}
	for rows.Next() {
		var l AdminLogLine
		var at int64
		var reviewed sql.NullInt64
		if err := rows.Scan(&l.N, &l.EventID, &at, &l.ActorID, &l.ActorName, &l.Role, &l.Action, &l.Outcome, &l.What, &l.Finding, &l.FollowUp,
			&l.ReviewedBy, &reviewed); err != nil {
			return AdminLogReport{}, fmt.Errorf("read admin-log review: %w", err)
		}
		l.At = clock.FromMicros(at)
		if reviewed.Valid {
			t := clock.FromMicros(reviewed.Int64)
			l.Reviewed = &t
		}
		r.Lines = append(r.Lines, l)
	}
	if err := rows.Err(); err != nil {
		return AdminLogReport{}, fmt.Errorf("read admin-log review: %w", err)
	}
	// The lines are the log's own (who did what, on whom): their reading is
	// logged durably before they are given, as any log reading is (LOG-3).
	if err := s.logRead(ctx, actor, id, fmt.Sprintf("admin-log review %s read: %d lines", id, len(r.Lines))); err != nil {
		return AdminLogReport{}, err
	}
	return r, nil
}

// logRead appends the reading of a report's lines or evidence.
func (s *Service) logRead(ctx context.Context, actor access.Subject, id, what string) error {
	ev := event(actor, "AdminLogReview/"+id, what)
	ev.Action = audit.ActionRead
	if _, err := s.c.Audit.Append(ctx, ev); err != nil {
		return fmt.Errorf("log %s: %w", what, err)
	}
	return nil
}

// AdminLogs lists the tenant's reports, newest first (without lines).
func (s *Service) AdminLogs(ctx context.Context, actor access.Subject) ([]AdminLogReport, error) {
	if err := officerOrAdmin(actor); err != nil {
		return nil, err
	}
	rows, err := s.c.DB.QueryContext(ctx, `SELECT `+adminLogCols+` FROM gov_adminlog_reports WHERE tenant_id = $1 ORDER BY period DESC`, actor.TenantID())
	if err != nil {
		return nil, fmt.Errorf("list admin-log reviews: %w", err)
	}
	defer rows.Close()
	out := []AdminLogReport{}
	for rows.Next() {
		r, err := scanAdminLog(rows)
		if err != nil {
			return nil, fmt.Errorf("list admin-log reviews: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Closed is the newest closed review of one kind, as the compliance
// report shows it: when, for which month, its outcome and the access-log
// event that closed it (whose inclusion proof is the evidence).
type Closed struct {
	ID, Period, Outcome, Hash, Event string
	At                               time.Time
}

// LastClosed returns the tenant's newest closed access review and admin-log
// review (ok false when none). It checks no actor: it serves the compliance
// report, which the officer's page and the operator's command decide on.
func (s *Service) LastClosed(ctx context.Context, tenantID string) (review, adminLog Closed, rok, aok bool, err error) {
	var at int64
	err = s.c.DB.QueryRowContext(ctx, `SELECT id, period, closed_at, evidence_hash, close_event FROM gov_reviews
		WHERE tenant_id = $1 AND closed_at IS NOT NULL ORDER BY closed_at DESC LIMIT 1`, tenantID).
		Scan(&review.ID, &review.Period, &at, &review.Hash, &review.Event)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return review, adminLog, false, false, fmt.Errorf("last access review: %w", err)
	default:
		rok, review.At = true, clock.FromMicros(at)
	}
	if rok {
		var n, revoked int64
		if err := s.c.DB.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM gov_review_lines WHERE review_id = $1),
			(SELECT COUNT(*) FROM gov_review_lines WHERE review_id = $1 AND decision = 'revoke')`, review.ID).Scan(&n, &revoked); err != nil {
			return review, adminLog, false, false, fmt.Errorf("last access review: %w", err)
		}
		review.Outcome = fmt.Sprintf("%d rights reviewed, %d revoked", n, revoked)
	}
	var finding string
	err = s.c.DB.QueryRowContext(ctx, `SELECT r.id, r.period, r.closed_at, r.evidence_hash, r.close_event, r.finding FROM gov_adminlog_reports r
		WHERE r.tenant_id = $1 AND r.closed_at IS NOT NULL ORDER BY r.closed_at DESC LIMIT 1`, tenantID).
		Scan(&adminLog.ID, &adminLog.Period, &at, &adminLog.Hash, &adminLog.Event, &finding)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return review, adminLog, rok, false, fmt.Errorf("last admin-log review: %w", err)
	default:
		aok, adminLog.At = true, clock.FromMicros(at)
		var n, flagged int64
		if err := s.c.DB.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM gov_adminlog_lines WHERE report_id = $1),
			(SELECT COUNT(*) FROM gov_adminlog_lines WHERE report_id = $1 AND finding <> 'ok')`, adminLog.ID).Scan(&n, &flagged); err != nil {
			return review, adminLog, rok, false, fmt.Errorf("last admin-log review: %w", err)
		}
		adminLog.Outcome = fmt.Sprintf("%d admin events reviewed, %d with a finding; %s", n, flagged, finding)
	}
	return review, adminLog, rok, aok, nil
}
