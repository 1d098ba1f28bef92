package governance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

const (
	// ReportDeadline is the time from discovery within which an incident is
	// reported (MedMij A.16.1.3, GOV-4).
	ReportDeadline = 48 * time.Hour
	// WarnBefore is how long before the deadline an unreported incident
	// raises an alert.
	WarnBefore = 12 * time.Hour
)

// Incident is a row of the incident register.
type Incident struct {
	ID          string     `json:"id"`
	TenantID    string     `json:"tenant_id"`
	Title       string     `json:"title"`
	Description string     `json:"description,omitempty"`
	SourceEvent string     `json:"source_event,omitempty"`
	Discovered  time.Time  `json:"discovered_at"`
	Deadline    time.Time  `json:"deadline_at"`
	Status      string     `json:"status"` // open, reported, closed
	Reported    *time.Time `json:"reported_at,omitempty"`
	ReportedTo  string     `json:"reported_to,omitempty"`
	Closed      *time.Time `json:"closed_at,omitempty"`
	CreatedBy   string     `json:"created_by"`
	Notes       []Note     `json:"notes"`
	// Overdue: not reported and the deadline has passed.
	Overdue bool `json:"overdue"`
}

// Note is a step of an incident's follow-up, with its evidence.
type Note struct {
	At       time.Time `json:"at"`
	By       string    `json:"by"`
	Text     string    `json:"text"`
	Evidence string    `json:"evidence,omitempty"`
}

// NewIncident is what an officer registers.
type NewIncident struct {
	Title       string
	Description string
	// SourceEvent is the security event it comes from (its id); its time is
	// the discovery when Discovered is zero.
	SourceEvent string
	Discovered  time.Time
}

// OpenIncident registers an incident; the 48-hour clock runs from its
// discovery (the security event's time, or the time given, or now).
func (s *Service) OpenIncident(ctx context.Context, actor access.Subject, in NewIncident) (Incident, error) {
	if err := officer(actor); err != nil {
		return Incident{}, err
	}
	if err := text("title", in.Title, 200, true); err != nil {
		return Incident{}, err
	}
	if err := text("description", in.Description, 4000, false); err != nil {
		return Incident{}, err
	}
	now := s.c.Clock.Now()
	discovered := in.Discovered
	if in.SourceEvent != "" {
		var at int64
		err := s.c.DB.QueryRowContext(ctx, `SELECT created_at FROM alert_security_events WHERE id = $1 AND tenant_id = $2`, in.SourceEvent, actor.TenantID()).Scan(&at)
		if errors.Is(err, sql.ErrNoRows) {
			return Incident{}, &InvalidError{Field: "source_event", Reason: "no such security event of this organisation"}
		}
		if err != nil {
			return Incident{}, fmt.Errorf("open incident: %w", err)
		}
		if discovered.IsZero() {
			discovered = clock.FromMicros(at)
		}
	}
	if discovered.IsZero() {
		discovered = now
	}
	if discovered.After(now.Add(time.Minute)) {
		return Incident{}, &InvalidError{Field: "discovered_at", Reason: "lies in the future"}
	}
	id, err := s.newID("inc-")
	if err != nil {
		return Incident{}, err
	}
	err = s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO gov_incidents (id, tenant_id, title, description, source_event, discovered_at, deadline_at, status,
			created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9)`, id, actor.TenantID(), in.Title, in.Description, in.SourceEvent,
			clock.Micros(discovered), clock.Micros(discovered.Add(ReportDeadline)), actor.AccountID(), clock.Micros(now)); err != nil {
			return fmt.Errorf("open incident: %w", err)
		}
		_, err := s.log(ctx, tx, event(actor, "Incident/"+id, "incident opened: "+in.Title))
		return err
	})
	if err != nil {
		return Incident{}, err
	}
	return s.Incident(ctx, actor, id)
}

// Update is a step on an incident: a note with evidence, the report to the
// authority (Dutch DPA, the MedMij foundation) or the closing.
type Update struct {
	Note       string
	Evidence   string
	ReportedTo string // set: the incident is reported now
	Close      bool
}

// UpdateIncident records a step of the follow-up.
func (s *Service) UpdateIncident(ctx context.Context, actor access.Subject, id string, u Update) (Incident, error) {
	if err := officer(actor); err != nil {
		return Incident{}, err
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"note", u.Note, 4000}, {"evidence", u.Evidence, 500}, {"reported_to", u.ReportedTo, 200}} {
		if err := text(f.name, f.v, f.max, false); err != nil {
			return Incident{}, err
		}
	}
	if u.Note == "" && u.ReportedTo == "" && !u.Close {
		return Incident{}, &InvalidError{Field: "note", Reason: "say what happened: a note, the report, or the closing"}
	}
	now := clock.Micros(s.c.Clock.Now())
	err := s.c.DB.Tx(ctx, func(tx *store.Tx) error {
		var status string
		err := tx.QueryRowContext(ctx, `SELECT status FROM gov_incidents WHERE id = $1 AND tenant_id = $2`, id, actor.TenantID()).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("update incident: %w", err)
		}
		if status == "closed" {
			return &InvalidError{Field: "status", Reason: "the incident is closed"}
		}
		what := "incident note"
		if u.ReportedTo != "" {
			if status != "open" {
				return &InvalidError{Field: "reported_to", Reason: "the incident was reported already"}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE gov_incidents SET status = 'reported', reported_at = $1, reported_to = $2 WHERE id = $3`,
				now, u.ReportedTo, id); err != nil {
				return fmt.Errorf("update incident: %w", err)
			}
			what = "incident reported to " + u.ReportedTo
		}
		if u.Close {
			if _, err := tx.ExecContext(ctx, `UPDATE gov_incidents SET status = 'closed', closed_at = $1 WHERE id = $2`, now, id); err != nil {
				return fmt.Errorf("update incident: %w", err)
			}
			what = "incident closed"
		}
		if u.Note != "" || u.Evidence != "" {
			nid, err := s.newID("note-")
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO gov_incident_notes (id, incident_id, at, by_account, text, evidence) VALUES ($1, $2, $3, $4, $5, $6)`,
				nid, id, now, actor.AccountID(), u.Note, u.Evidence); err != nil {
				return fmt.Errorf("update incident: %w", err)
			}
		}
		_, err = s.log(ctx, tx, event(actor, "Incident/"+id, what))
		return err
	})
	if err != nil {
		return Incident{}, err
	}
	return s.Incident(ctx, actor, id)
}

const incidentColumns = `id, tenant_id, title, description, source_event, discovered_at, deadline_at, status, reported_at, reported_to, closed_at, created_by`

func (s *Service) scanIncident(row interface{ Scan(...any) error }) (Incident, error) {
	var in Incident
	var disc, dead int64
	var rep, closed sql.NullInt64
	if err := row.Scan(&in.ID, &in.TenantID, &in.Title, &in.Description, &in.SourceEvent, &disc, &dead, &in.Status, &rep, &in.ReportedTo, &closed,
		&in.CreatedBy); err != nil {
		return Incident{}, err
	}
	in.Discovered, in.Deadline = clock.FromMicros(disc), clock.FromMicros(dead)
	if rep.Valid {
		t := clock.FromMicros(rep.Int64)
		in.Reported = &t
	}
	if closed.Valid {
		t := clock.FromMicros(closed.Int64)
		in.Closed = &t
	}
	in.Overdue = in.Reported == nil && !s.c.Clock.Now().Before(in.Deadline)
	in.Notes = []Note{}
	return in, nil
}

// Incident returns one incident with its follow-up.
func (s *Service) Incident(ctx context.Context, actor access.Subject, id string) (Incident, error) {
	if err := officerOrAdmin(actor); err != nil {
		return Incident{}, err
	}
	in, err := s.scanIncident(s.c.DB.QueryRowContext(ctx, `SELECT `+incidentColumns+` FROM gov_incidents WHERE id = $1 AND tenant_id = $2`, id, actor.TenantID()))
	if errors.Is(err, sql.ErrNoRows) {
		return Incident{}, ErrNotFound
	}
	if err != nil {
		return Incident{}, fmt.Errorf("read incident: %w", err)
	}
	rows, err := s.c.DB.QueryContext(ctx, `SELECT at, by_account, text, evidence FROM gov_incident_notes WHERE incident_id = $1 ORDER BY at, id`, id)
	if err != nil {
		return Incident{}, fmt.Errorf("read incident: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n Note
		var at int64
		if err := rows.Scan(&at, &n.By, &n.Text, &n.Evidence); err != nil {
			return Incident{}, fmt.Errorf("read incident: %w", err)
		}
		n.At = clock.FromMicros(at)
		in.Notes = append(in.Notes, n)
	}
	return in, rows.Err()
}

// Incidents lists the tenant's register, newest first.
func (s *Service) Incidents(ctx context.Context, actor access.Subject) ([]Incident, error) {
	if err := officerOrAdmin(actor); err != nil {
		return nil, err
	}
	return s.incidents(ctx, actor.TenantID())
}

func (s *Service) incidents(ctx context.Context, tenant string) ([]Incident, error) {
	rows, err := s.c.DB.QueryContext(ctx, `SELECT `+incidentColumns+` FROM gov_incidents WHERE tenant_id = $1 ORDER BY discovered_at DESC, id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	defer rows.Close()
	out := []Incident{}
	for rows.Next() {
		in, err := s.scanIncident(rows)
		if err != nil {
			return nil, fmt.Errorf("list incidents: %w", err)
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// WarnDeadlines raises a security event, once, for every open incident of
// any tenant whose deadline is less than WarnBefore away or past (LOG-9).
// serve runs it every few minutes; it returns how many it raised.
func (s *Service) WarnDeadlines(ctx context.Context) (int, error) {
	now := s.c.Clock.Now()
	rows, err := s.c.DB.QueryContext(ctx, `SELECT id, tenant_id, title, deadline_at FROM gov_incidents
		WHERE status = 'open' AND warned_at IS NULL AND deadline_at <= $1`, clock.Micros(now.Add(WarnBefore)))
	if err != nil {
		return 0, fmt.Errorf("incident deadlines: %w", err)
	}
	type due struct {
		id, tenant, title string
		deadline          int64
	}
	var list []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.id, &d.tenant, &d.title, &d.deadline); err != nil {
			rows.Close()
			return 0, fmt.Errorf("incident deadlines: %w", err)
		}
		list = append(list, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("incident deadlines: %w", err)
	}
	n := 0
	for _, d := range list {
		err := s.c.DB.Tx(ctx, func(tx *store.Tx) error {
			r, err := tx.ExecContext(ctx, `UPDATE gov_incidents SET warned_at = $1 WHERE id = $2 AND warned_at IS NULL`, clock.Micros(now), d.id)
			if err != nil {
				return err
			}
			if k, _ := r.RowsAffected(); k != 1 {
				return nil // another replica warned
			}
			left := clock.FromMicros(d.deadline).Sub(now).Round(time.Minute)
			detail := fmt.Sprintf("incident %q must be reported within %v", d.title, left)
			if left <= 0 {
				detail = fmt.Sprintf("incident %q is past its 48-hour reporting deadline", d.title)
			}
			if s.c.Alerts != nil {
				if _, err := s.c.Alerts.Raise(ctx, tx, alert.Entry{TenantID: d.tenant, Kind: "incident-deadline", AccountID: "system:governance", Ref: d.id, Detail: detail}); err != nil {
					return err
				}
			}
			n++
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("incident deadlines: %w", err)
		}
	}
	return n, nil
}

// IncidentCounts returns how many of the tenant's incidents are not closed
// and how many of those are past their reporting deadline unreported. It
// checks no actor: it serves the compliance report (GOV-3).
func (s *Service) IncidentCounts(ctx context.Context, tenantID string) (open, overdue int, err error) {
	err = s.c.DB.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM gov_incidents WHERE tenant_id = $1 AND status <> 'closed'),
		(SELECT COUNT(*) FROM gov_incidents WHERE tenant_id = $1 AND status = 'open' AND deadline_at < $2)`,
		tenantID, clock.Micros(s.c.Clock.Now())).Scan(&open, &overdue)
	if err != nil {
		return 0, 0, fmt.Errorf("incident counts: %w", err)
	}
	return open, overdue, nil
}
