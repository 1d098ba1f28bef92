package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// OperatorRequest is the operator procedure (AZ-6): a platform operator asks
// for access to named patients of one tenant, for named categories and a
// duration; a security officer of that tenant approves or rejects. Access
// runs from approval for the duration.
type OperatorRequest struct {
	ID           string        `json:"id"`
	TenantID     string        `json:"tenant_id"`
	OperatorID   string        `json:"operator_id"`
	PatientIDs   []string      `json:"patient_ids"`
	Categories   []string      `json:"categories"`
	Reason       string        `json:"reason"`
	Duration     time.Duration `json:"-"`
	DurationMin  int64         `json:"duration_minutes"`
	RequestedAt  time.Time     `json:"requested_at"`
	Status       string        `json:"status"` // pending, approved, rejected
	DecidedBy    string        `json:"decided_by,omitempty"`
	DecidedAt    *time.Time    `json:"decided_at,omitempty"`
	DecisionNote string        `json:"decision_note,omitempty"`
	Start        *time.Time    `json:"start,omitempty"`
	End          *time.Time    `json:"end,omitempty"`
	Uses         int           `json:"uses"` // accesses logged under it (report)
}

// RequestOperatorAccess files an operator's request. It names no more than
// 100 patients; whether they exist is checked by the approving officer, so
// the operator learns nothing about the tenant's patients from it.
func (d *Decider) RequestOperatorAccess(ctx context.Context, actor Subject, r OperatorRequest) (OperatorRequest, error) {
	if err := actorIs(actor, RoleOperator); err != nil {
		return OperatorRequest{}, fmt.Errorf("operator request: %w", err)
	}
	if err := checkText(append([]string{r.TenantID, r.Reason}, append(r.PatientIDs, r.Categories...)...)...); err != nil {
		return OperatorRequest{}, err
	}
	r.Reason = strings.TrimSpace(r.Reason)
	switch {
	case r.TenantID == "":
		return OperatorRequest{}, invalid("operator request: tenant is required")
	case len(r.PatientIDs) == 0 || len(r.PatientIDs) > 100:
		return OperatorRequest{}, invalid("operator request: name 1 to 100 patients")
	case len(r.Categories) == 0:
		return OperatorRequest{}, invalid("operator request: name the data categories")
	case len(r.Reason) < MinEmergencyReason || len(r.Reason) > 1000:
		return OperatorRequest{}, invalid("operator request: a reason of %d to 1000 characters is required", MinEmergencyReason)
	case r.Duration <= 0 || r.Duration > d.maxOperatorFor:
		return OperatorRequest{}, invalid("operator request: duration must be positive and at most %s", d.maxOperatorFor)
	}
	for _, c := range r.Categories {
		if !knownCategory(c) {
			return OperatorRequest{}, invalid("operator request: unknown category %q", c)
		}
	}
	var one int
	err := d.db.QueryRowContext(ctx, `SELECT 1 FROM tenants WHERE id = $1`, r.TenantID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return OperatorRequest{}, fmt.Errorf("tenant %s: %w", r.TenantID, ErrNotFound)
	}
	if err != nil {
		return OperatorRequest{}, fmt.Errorf("operator request: %w", err)
	}
	id, err := d.newID("op-")
	if err != nil {
		return OperatorRequest{}, err
	}
	now := d.clock.Now()
	r.ID, r.OperatorID, r.RequestedAt, r.Status, r.DurationMin = id, actor.AccountID(), now, "pending", int64(r.Duration/time.Minute)
	err = d.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO access_operator_requests (id, tenant_id, operator_id, categories, reason, duration_us, requested_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, r.TenantID, actor.AccountID(), strings.Join(r.Categories, " "), r.Reason,
			r.Duration.Microseconds(), clock.Micros(now)); err != nil {
			return fmt.Errorf("operator request: %w", err)
		}
		seen := map[string]bool{}
		for _, p := range r.PatientIDs {
			if p == "" || len(p) > 64 || seen[p] {
				return invalid("operator request: patient ids must be distinct and non-empty")
			}
			seen[p] = true
			if _, err := tx.ExecContext(ctx, `INSERT INTO access_operator_patients (request_id, patient_id) VALUES ($1, $2)`, id, p); err != nil {
				return fmt.Errorf("operator request: %w", err)
			}
		}
		return d.securityEvent(ctx, tx, SecurityEvent{TenantID: r.TenantID, Kind: "operator-access-requested", AccountID: actor.AccountID(),
			Ref: id, Detail: fmt.Sprintf("%d patient(s), categories %s, %s: %s", len(r.PatientIDs), strings.Join(r.Categories, ","), r.Duration, r.Reason)})
	})
	if err != nil {
		return OperatorRequest{}, err
	}
	return r, nil
}

// DecideOperatorRequest approves or rejects a pending operator request. The
// approver is a security officer of the request's tenant and not the
// requester. On approval every named patient must belong to the tenant;
// access starts now and ends after the requested duration.
func (d *Decider) DecideOperatorRequest(ctx context.Context, actor Subject, id string, approve bool, note string) (OperatorRequest, error) {
	if err := actorIs(actor, RoleSecurityOfficer); err != nil {
		return OperatorRequest{}, fmt.Errorf("decide operator request: %w", err)
	}
	if err := checkText(id, note); err != nil {
		return OperatorRequest{}, err
	}
	note = strings.TrimSpace(note)
	if note == "" || len(note) > 2000 {
		return OperatorRequest{}, invalid("decide operator request: a note of 1 to 2000 characters is required")
	}
	var out OperatorRequest
	err := d.db.Tx(ctx, func(tx *store.Tx) error {
		r, err := d.operatorRequest(ctx, tx, id, actor.TenantID())
		if err != nil {
			return err
		}
		if r.Status != "pending" {
			return fmt.Errorf("operator request %s is %s: %w", id, r.Status, ErrConflict)
		}
		if r.OperatorID == actor.AccountID() {
			return fmt.Errorf("the requester may not approve their own request: %w", ErrForbidden)
		}
		now := d.clock.Now()
		status := "rejected"
		var start, end any
		if approve {
			for _, p := range r.PatientIDs {
				if err := patientInTenant(ctx, tx, p, actor.TenantID()); err != nil {
					return invalid("decide operator request: patient %s is not a patient of this organisation", p)
				}
			}
			status = "approved"
			s, e := now, now.Add(r.Duration)
			r.Start, r.End, start, end = &s, &e, clock.Micros(s), clock.Micros(e)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE access_operator_requests SET status = $1, decided_by = $2, decided_at = $3, decision_note = $4,
			start_at = $5, end_at = $6 WHERE id = $7 AND status = 'pending'`, status, actor.AccountID(), clock.Micros(now), note, start, end, id); err != nil {
			return fmt.Errorf("decide operator request: %w", err)
		}
		r.Status, r.DecidedBy, r.DecidedAt, r.DecisionNote = status, actor.AccountID(), &now, note
		out = r
		return d.securityEvent(ctx, tx, SecurityEvent{TenantID: actor.TenantID(), Kind: "operator-access-" + status, AccountID: actor.AccountID(),
			SubjectID: r.OperatorID, Ref: id, Detail: note})
	})
	return out, err
}

const operatorCols = `id, tenant_id, operator_id, categories, reason, duration_us, requested_at, status, COALESCE(decided_by, ''), decided_at, decision_note, start_at, end_at`

func scanOperator(row interface{ Scan(...any) error }) (OperatorRequest, error) {
	var r OperatorRequest
	var cats string
	var dur, requested int64
	var decided, start, end sql.NullInt64
	if err := row.Scan(&r.ID, &r.TenantID, &r.OperatorID, &cats, &r.Reason, &dur, &requested, &r.Status, &r.DecidedBy, &decided, &r.DecisionNote, &start, &end); err != nil {
		return OperatorRequest{}, err
	}
	r.Categories, r.Duration, r.RequestedAt = strings.Fields(cats), time.Duration(dur)*time.Microsecond, clock.FromMicros(requested)
	r.DurationMin = int64(r.Duration / time.Minute)
	r.DecidedAt, r.Start, r.End = fromMicros(decided), fromMicros(start), fromMicros(end)
	return r, nil
}

func (d *Decider) operatorRequest(ctx context.Context, q store.Querier, id, tenantID string) (OperatorRequest, error) {
	r, err := scanOperator(q.QueryRowContext(ctx, `SELECT `+operatorCols+` FROM access_operator_requests WHERE id = $1 AND tenant_id = $2`, id, tenantID))
	if errors.Is(err, sql.ErrNoRows) {
		return OperatorRequest{}, fmt.Errorf("operator request %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return OperatorRequest{}, fmt.Errorf("operator request: %w", err)
	}
	if err := d.operatorPatients(ctx, q, &r); err != nil {
		return OperatorRequest{}, err
	}
	return r, nil
}

func (d *Decider) operatorPatients(ctx context.Context, q store.Querier, r *OperatorRequest) error {
	rows, err := q.QueryContext(ctx, `SELECT patient_id FROM access_operator_patients WHERE request_id = $1 ORDER BY patient_id`, r.ID)
	if err != nil {
		return fmt.Errorf("operator request patients: %w", err)
	}
	defer rows.Close()
	r.PatientIDs = []string{}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return fmt.Errorf("operator request patients: %w", err)
		}
		r.PatientIDs = append(r.PatientIDs, p)
	}
	return rows.Err()
}

// OperatorReport lists operator requests with their decisions and the number
// of accesses logged under each: for a security officer those of their
// tenant, for an operator their own.
func (d *Decider) OperatorReport(ctx context.Context, actor Subject) ([]OperatorRequest, error) {
	if err := actorIs(actor, RoleSecurityOfficer, RoleOperator); err != nil {
		return nil, fmt.Errorf("operator report: %w", err)
	}
	q := `SELECT ` + operatorCols + ` FROM access_operator_requests WHERE tenant_id = $1`
	arg := actor.TenantID()
	if actor.Role() == RoleOperator {
		q = `SELECT ` + operatorCols + ` FROM access_operator_requests WHERE operator_id = $1`
		arg = actor.AccountID()
	}
	rows, err := d.db.QueryContext(ctx, q+` ORDER BY requested_at DESC LIMIT 1000`, arg)
	if err != nil {
		return nil, fmt.Errorf("operator report: %w", err)
	}
	out := []OperatorRequest{}
	for rows.Next() {
		r, err := scanOperator(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("operator report: %w", err)
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("operator report: %w", err)
	}
	for i := range out {
		if err := d.operatorPatients(ctx, d.db, &out[i]); err != nil {
			return nil, err
		}
		// Uses are counted from the access log itself, where every access
		// under the request names it in its basis.
		evs, err := d.log.Query(ctx, audit.Filter{TenantID: out[i].TenantID, UserID: out[i].OperatorID, Limit: 10000})
		if err != nil {
			return nil, fmt.Errorf("operator report: %w", err)
		}
		for _, e := range evs {
			if e.Basis == string(BasisOperator)+":"+out[i].ID {
				out[i].Uses++
			}
		}
	}
	return out, nil
}
