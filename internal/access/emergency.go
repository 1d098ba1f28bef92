package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Emergency is a declared emergency access (break-the-glass, AZ-5) and its
// review by the security officer.
type Emergency struct {
	ID             string     `json:"id"`
	TenantID       string     `json:"tenant_id"`
	ProfessionalID string     `json:"professional_id"`
	PatientID      string     `json:"patient_id"`
	Reason         string     `json:"reason"`
	Start          time.Time  `json:"start"`
	End            time.Time  `json:"end"`
	Review         string     `json:"review"` // pending, justified, unjustified
	ReviewedBy     string     `json:"reviewed_by,omitempty"`
	ReviewedAt     *time.Time `json:"reviewed_at,omitempty"`
	ReviewNote     string     `json:"review_note,omitempty"`
}

// MinEmergencyReason is the shortest reason accepted: a real sentence, not
// "x".
const MinEmergencyReason = 10

// ActionEmergency is the access-log action of declaring an emergency.
const ActionEmergency audit.Action = "emergency-access"

// DeclareEmergency gives a professional access to one patient for the
// emergency duration (default 4 h). The reason is mandatory. The
// declaration is written to the access log (marked emergency, with the
// reason) and as a security event for the security officer, in the same
// transaction as the emergency itself; every access under it is marked
// emergency too (Grant.Event).
func (d *Decider) DeclareEmergency(ctx context.Context, actor Subject, patientID, reason string) (Emergency, error) {
	// Professionals, and tenant roles that work by the professional's rules.
	perm, ok, err := d.permission(ctx, actor)
	if err != nil {
		return Emergency{}, fmt.Errorf("declare emergency: %w", err)
	}
	if !ok || perm.base != RoleProfessional {
		return Emergency{}, fmt.Errorf("declare emergency: role %s may not: %w", actor.Role(), ErrForbidden)
	}
	if err := actorIs(actor, actor.Role()); err != nil {
		return Emergency{}, fmt.Errorf("declare emergency: %w", err)
	}
	if err := checkText(patientID, reason); err != nil {
		return Emergency{}, err
	}
	reason = strings.TrimSpace(reason)
	if len(reason) < MinEmergencyReason || len(reason) > 1000 {
		return Emergency{}, invalid("declare emergency: a reason of %d to 1000 characters is required", MinEmergencyReason)
	}
	if err := patientInTenant(ctx, d.db, patientID, actor.TenantID()); err != nil {
		return Emergency{}, err
	}
	id, err := d.newID("em-")
	if err != nil {
		return Emergency{}, err
	}
	now := d.clock.Now()
	e := Emergency{ID: id, TenantID: actor.TenantID(), ProfessionalID: actor.AccountID(), PatientID: patientID, Reason: reason,
		Start: now, End: now.Add(d.emergencyFor), Review: "pending"}
	err = d.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO access_emergencies (id, tenant_id, professional_id, patient_id, reason, start_at, end_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, e.TenantID, e.ProfessionalID, patientID, reason, clock.Micros(e.Start), clock.Micros(e.End)); err != nil {
			return fmt.Errorf("declare emergency: %w", err)
		}
		ev := subjectEvent(actor, patientID, ActionEmergency, audit.OutcomeSuccess, string(BasisEmergency)+":"+id)
		ev.Emergency, ev.EmergencyReason, ev.Purpose = true, reason, "ETREAT"
		if _, err := d.log.AppendIn(ctx, tx, ev); err != nil {
			return err
		}
		return d.securityEvent(ctx, tx, SecurityEvent{TenantID: e.TenantID, Kind: "emergency-access", AccountID: actor.AccountID(),
			SubjectID: patientID, Ref: id, Detail: fmt.Sprintf("until %s: %s", e.End.Format(time.RFC3339), reason)})
	})
	if err != nil {
		return Emergency{}, err
	}
	return e, nil
}

const emergencyCols = `id, tenant_id, professional_id, patient_id, reason, start_at, end_at, review, COALESCE(reviewed_by, ''), reviewed_at, review_note`

func scanEmergency(row interface{ Scan(...any) error }) (Emergency, error) {
	var e Emergency
	var start, end int64
	var reviewed sql.NullInt64
	if err := row.Scan(&e.ID, &e.TenantID, &e.ProfessionalID, &e.PatientID, &e.Reason, &start, &end, &e.Review, &e.ReviewedBy, &reviewed, &e.ReviewNote); err != nil {
		return Emergency{}, err
	}
	e.Start, e.End, e.ReviewedAt = clock.FromMicros(start), clock.FromMicros(end), fromMicros(reviewed)
	return e, nil
}

// EmergencyReviews is the security officer's review queue: the tenant's
// emergency accesses, the unreviewed ones only when pending is true, oldest
// first.
func (d *Decider) EmergencyReviews(ctx context.Context, actor Subject, pending bool) ([]Emergency, error) {
	if err := actorIs(actor, RoleSecurityOfficer); err != nil {
		return nil, fmt.Errorf("emergency reviews: %w", err)
	}
	q := `SELECT ` + emergencyCols + ` FROM access_emergencies WHERE tenant_id = $1`
	if pending {
		q += ` AND review = 'pending'`
	}
	rows, err := d.db.QueryContext(ctx, q+` ORDER BY start_at`, actor.TenantID())
	if err != nil {
		return nil, fmt.Errorf("emergency reviews: %w", err)
	}
	defer rows.Close()
	out := []Emergency{}
	for rows.Next() {
		e, err := scanEmergency(rows)
		if err != nil {
			return nil, fmt.Errorf("emergency reviews: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// ReviewEmergency records the security officer's judgement of one emergency
// access, with a mandatory note. An emergency is reviewed once; the officer
// may not review their own.
func (d *Decider) ReviewEmergency(ctx context.Context, actor Subject, id string, justified bool, note string) (Emergency, error) {
	if err := actorIs(actor, RoleSecurityOfficer); err != nil {
		return Emergency{}, fmt.Errorf("review emergency: %w", err)
	}
	if err := checkText(id, note); err != nil {
		return Emergency{}, err
	}
	note = strings.TrimSpace(note)
	if note == "" || len(note) > 2000 {
		return Emergency{}, invalid("review emergency: a note of 1 to 2000 characters is required")
	}
	var out Emergency
	err := d.db.Tx(ctx, func(tx *store.Tx) error {
		e, err := scanEmergency(tx.QueryRowContext(ctx, `SELECT `+emergencyCols+` FROM access_emergencies WHERE id = $1 AND tenant_id = $2`, id, actor.TenantID()))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("emergency %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("review emergency: %w", err)
		}
		if e.Review != "pending" {
			return fmt.Errorf("emergency %s is already reviewed: %w", id, ErrConflict)
		}
		if e.ProfessionalID == actor.AccountID() {
			return fmt.Errorf("nobody reviews their own emergency access: %w", ErrForbidden)
		}
		verdict := "unjustified"
		if justified {
			verdict = "justified"
		}
		now := d.clock.Now()
		if _, err := tx.ExecContext(ctx, `UPDATE access_emergencies SET review = $1, reviewed_by = $2, reviewed_at = $3, review_note = $4
			WHERE id = $5 AND review = 'pending'`, verdict, actor.AccountID(), clock.Micros(now), note, id); err != nil {
			return fmt.Errorf("review emergency: %w", err)
		}
		e.Review, e.ReviewedBy, e.ReviewedAt, e.ReviewNote = verdict, actor.AccountID(), &now, note
		out = e
		return d.securityEvent(ctx, tx, SecurityEvent{TenantID: actor.TenantID(), Kind: "emergency-reviewed-" + verdict, AccountID: actor.AccountID(),
			SubjectID: e.PatientID, Ref: id, Detail: note})
	})
	return out, err
}

// SecurityEvent is a notice for the security officer (LOG-9): emergency
// access, privilege changes, operator requests and decisions. It is an
// entry of alert's queue, the one queue every package raises security
// events through.
type SecurityEvent = alert.Entry

// securityEvent raises e in q, the caller's transaction where it has one.
func (d *Decider) securityEvent(ctx context.Context, q store.Querier, e SecurityEvent) error {
	_, err := d.queue.Raise(ctx, q, e)
	return err
}

// SecurityEvents lists the tenant's security events since a time, newest
// first, for its security officer: the check is here, the queue (with the
// log-on attacks authn raises) is alert's. The API and the officer's page
// both read it through this.
func (d *Decider) SecurityEvents(ctx context.Context, actor Subject, since time.Time) ([]SecurityEvent, error) {
	if err := actorIs(actor, RoleSecurityOfficer); err != nil {
		return nil, fmt.Errorf("security events: %w", err)
	}
	return d.queue.List(ctx, actor.TenantID(), since, alert.MaxList)
}
