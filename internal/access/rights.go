package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// RightRequest asks for a role for an account (AZ-7). One person requests,
// another approves, and neither is the account that receives it. Privileged
// roles (application admin, security officer) are granted only for a
// limited time (AZ-8).
type RightRequest struct {
	ID          string     `json:"id"`
	TenantID    string     `json:"tenant_id"`
	AccountID   string     `json:"account_id"`
	Role        Role       `json:"role"`
	Privileged  bool       `json:"privileged"`
	ValidUntil  *time.Time `json:"valid_until,omitempty"`
	Reason      string     `json:"reason"`
	RequestedBy string     `json:"requested_by"`
	RequestedAt time.Time  `json:"requested_at"`
	Status      string     `json:"status"` // pending, approved, rejected, revoked
	DecidedBy   string     `json:"decided_by,omitempty"`
	DecidedAt   *time.Time `json:"decided_at,omitempty"`
	Note        string     `json:"note,omitempty"`
	RevokedBy   string     `json:"revoked_by,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

// accountKindFor is the account kind a role may be given to: privileged
// rights live on separate admin accounts (AUTH-8).
func accountKindFor(def RoleDef) string {
	switch {
	case def.Privileged:
		return identity.KindAdmin
	case def.Base == RolePerson:
		return identity.KindPerson
	default:
		return identity.KindProfessional
	}
}

// RequestRight files a request to give an account a role of the tenant.
func (d *Decider) RequestRight(ctx context.Context, actor Subject, r RightRequest) (RightRequest, error) {
	if err := actorIs(actor, RoleAppAdmin); err != nil {
		return RightRequest{}, fmt.Errorf("request right: %w", err)
	}
	if err := checkText(r.AccountID, string(r.Role), r.Reason); err != nil {
		return RightRequest{}, err
	}
	now := d.clock.Now()
	r.Reason = strings.TrimSpace(r.Reason)
	if r.Reason == "" || len(r.Reason) > 1000 {
		return RightRequest{}, invalid("request right: a reason of 1 to 1000 characters is required")
	}
	if r.Role == RoleOperator {
		return RightRequest{}, invalid("request right: operators are platform staff, not granted by a tenant")
	}
	if r.AccountID == actor.AccountID() {
		return RightRequest{}, fmt.Errorf("nobody requests rights for themself: %w", ErrForbidden)
	}
	def, err := d.roleExists(ctx, d.db, actor.TenantID(), r.Role)
	if errors.Is(err, ErrNotFound) {
		return RightRequest{}, invalid("request right: no role %q in this organisation", r.Role)
	}
	if err != nil {
		return RightRequest{}, err
	}
	kind, err := accountInTenant(ctx, d.db, r.AccountID, actor.TenantID())
	if err != nil {
		return RightRequest{}, err
	}
	if want := accountKindFor(def); kind != want {
		return RightRequest{}, invalid("request right: role %s belongs on a %s account, not a %s account", r.Role, want, kind)
	}
	r.Privileged = def.Privileged
	if r.Privileged && (r.ValidUntil == nil || !r.ValidUntil.After(now) || r.ValidUntil.Sub(now) > d.maxPrivilegeFor) {
		return RightRequest{}, invalid("request right: a privileged right needs an end within %s", d.maxPrivilegeFor)
	}
	if r.ValidUntil != nil && !r.ValidUntil.After(now) {
		return RightRequest{}, invalid("request right: valid_until must be in the future")
	}
	r.TenantID, r.RequestedBy, r.Status = actor.TenantID(), actor.AccountID(), "pending"
	summary := fmt.Sprintf("role %s for account %s", r.Role, r.AccountID)
	if r.ValidUntil != nil {
		summary += " until " + r.ValidUntil.UTC().Format(time.RFC3339)
	}
	err = d.db.Tx(ctx, func(tx *store.Tx) error {
		// The right request's id is its change request's (GOV-1); the
		// account receiving the right is not its approver (AZ-7).
		req, err := d.changes.Propose(ctx, tx, ChangeActor(actor), change.Proposal{Kind: ChangeRight, Summary: summary,
			Payload: r, SubjectID: r.AccountID})
		if err != nil {
			return fmt.Errorf("request right: %w", changeErr(err))
		}
		r.ID, r.RequestedAt = req.ID, req.ProposedAt
		if _, err := tx.ExecContext(ctx, `INSERT INTO access_right_requests (id, tenant_id, account_id, role, privileged, valid_until, reason, requested_by, requested_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, r.ID, r.TenantID, r.AccountID, string(r.Role), r.Privileged, micros(r.ValidUntil),
			r.Reason, r.RequestedBy, clock.Micros(r.RequestedAt)); err != nil {
			return fmt.Errorf("request right: %w", err)
		}
		return d.securityEvent(ctx, tx, SecurityEvent{TenantID: r.TenantID, Kind: "right-requested", AccountID: actor.AccountID(),
			SubjectID: r.AccountID, Ref: r.ID, Detail: "role " + string(r.Role)})
	})
	if err != nil {
		return RightRequest{}, err
	}
	return r, nil
}

const rightCols = `id, tenant_id, account_id, role, privileged, valid_until, reason, requested_by, requested_at, status,
	COALESCE(decided_by, ''), decided_at, note, COALESCE(revoked_by, ''), revoked_at`

func scanRight(row interface{ Scan(...any) error }) (RightRequest, error) {
	var r RightRequest
	var until, decided, revoked sql.NullInt64
	var requested int64
	if err := row.Scan(&r.ID, &r.TenantID, &r.AccountID, &r.Role, &r.Privileged, &until, &r.Reason, &r.RequestedBy, &requested, &r.Status,
		&r.DecidedBy, &decided, &r.Note, &r.RevokedBy, &revoked); err != nil {
		return RightRequest{}, err
	}
	r.ValidUntil, r.RequestedAt, r.DecidedAt, r.RevokedAt = fromMicros(until), clock.FromMicros(requested), fromMicros(decided), fromMicros(revoked)
	return r, nil
}

// DecideRight approves or rejects a pending right request through its
// change request (GOV-1). The approver is a security officer or
// application admin of the tenant who is neither the requester nor the
// account receiving the right. An approved role is written in the
// approval's transaction, with the approver as granter.
func (d *Decider) DecideRight(ctx context.Context, actor Subject, id string, approve bool, note string) (RightRequest, error) {
	if err := actorIs(actor, RoleSecurityOfficer, RoleAppAdmin); err != nil {
		return RightRequest{}, fmt.Errorf("decide right: %w", err)
	}
	if err := checkText(id, note); err != nil {
		return RightRequest{}, err
	}
	if _, err := d.changes.DecideKind(ctx, ChangeActor(actor), ChangeRight, id, approve, note); err != nil {
		return RightRequest{}, fmt.Errorf("decide right: %w", changeErr(err))
	}
	r, err := scanRight(d.db.QueryRowContext(ctx, `SELECT `+rightCols+` FROM access_right_requests WHERE id = $1 AND tenant_id = $2`, id, actor.TenantID()))
	if err != nil {
		return RightRequest{}, fmt.Errorf("decide right: %w", err)
	}
	return r, nil
}

// closeRight records the end of a right's change request on its row and
// returns the account and role: approved (the caller grants the role),
// rejected, expired or failed. An approval needs the row still pending and
// a privileged right's end still ahead.
func (d *Decider) closeRight(ctx context.Context, tx *store.Tx, r change.Request, status string) (string, string, error) {
	var account, role string
	var until sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT account_id, role, valid_until FROM access_right_requests WHERE id = $1 AND tenant_id = $2 AND status = 'pending'`,
		r.ID, r.TenantID).Scan(&account, &role, &until)
	if errors.Is(err, sql.ErrNoRows) {
		if status != "approved" {
			return "", "", nil
		}
		return "", "", fmt.Errorf("right request %s is no longer pending: %w", r.ID, change.ErrInapplicable)
	}
	if err != nil {
		return "", "", fmt.Errorf("right request %s: %w", r.ID, err)
	}
	if status == "approved" && until.Valid && !clock.FromMicros(until.Int64).After(*r.DecidedAt) {
		return "", "", fmt.Errorf("right request %s: its end has passed: %w", r.ID, change.ErrInapplicable)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE access_right_requests SET status = $1, decided_by = $2, decided_at = $3, note = $4 WHERE id = $5 AND status = 'pending'`,
		status, r.DecidedBy, clock.Micros(*r.DecidedAt), r.Note, r.ID); err != nil {
		return "", "", fmt.Errorf("right request %s: %w", r.ID, err)
	}
	err = d.securityEvent(ctx, tx, SecurityEvent{TenantID: r.TenantID, Kind: "right-" + status, AccountID: orSystem(r.DecidedBy),
		SubjectID: account, Ref: r.ID, Detail: "role " + role})
	return account, role, err
}

// RevokeRight withdraws an approved right now. A security officer or an
// application admin of the tenant may revoke; the role no longer counts as
// current (RoleCurrent) from that moment.
func (d *Decider) RevokeRight(ctx context.Context, actor Subject, id string) error {
	if err := actorIs(actor, RoleSecurityOfficer, RoleAppAdmin); err != nil {
		return fmt.Errorf("revoke right: %w", err)
	}
	if err := checkText(id); err != nil {
		return err
	}
	return d.db.Tx(ctx, func(tx *store.Tx) error {
		var account, role string
		err := tx.QueryRowContext(ctx, `SELECT account_id, role FROM access_right_requests WHERE id = $1 AND tenant_id = $2 AND status = 'approved'`,
			id, actor.TenantID()).Scan(&account, &role)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("approved right %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("revoke right: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE access_right_requests SET status = 'revoked', revoked_by = $1, revoked_at = $2 WHERE id = $3`,
			actor.AccountID(), clock.Micros(d.clock.Now()), id); err != nil {
			return fmt.Errorf("revoke right: %w", err)
		}
		return d.securityEvent(ctx, tx, SecurityEvent{TenantID: actor.TenantID(), Kind: "right-revoked", AccountID: actor.AccountID(),
			SubjectID: account, Ref: id, Detail: "role " + role})
	})
}

// RoleCurrent reports whether the account holds role now. A role that went
// through the approval flow counts while its newest approval is neither
// revoked nor past its end; a role written without one (installation
// set-up) counts while the account holds it.
func (d *Decider) RoleCurrent(ctx context.Context, accountID string, role Role) (bool, error) {
	var status string
	var until sql.NullInt64
	err := d.db.QueryRowContext(ctx, `SELECT status, valid_until FROM access_right_requests
		WHERE account_id = $1 AND role = $2 AND status IN ('approved', 'revoked') ORDER BY decided_at DESC LIMIT 1`,
		accountID, string(role)).Scan(&status, &until)
	if err == nil {
		return status == "approved" && (!until.Valid || clock.FromMicros(until.Int64).After(d.clock.Now())), nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("role current: %w", err)
	}
	var one int
	err = d.db.QueryRowContext(ctx, `SELECT 1 FROM account_roles WHERE account_id = $1 AND role = $2`, accountID, string(role)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("role current: %w", err)
	}
	return true, nil
}

// CheckActor is the role check every management endpoint makes: the
// session acts in one of roles, with assurance Hoog, and the role is still
// current (not revoked, not past the end of a privileged right).
func (d *Decider) CheckActor(ctx context.Context, actor Subject, roles ...Role) error {
	if err := actorIs(actor, roles...); err != nil {
		return err
	}
	ok, err := d.RoleCurrent(ctx, actor.AccountID(), actor.Role())
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("role %s is no longer current for this account: %w", actor.Role(), ErrForbidden)
	}
	return nil
}

// Right is one line of the rights overview: a role an account holds, with
// who granted it when, and for approved rights who requested and approved
// it and until when.
type Right struct {
	AccountID   string     `json:"account_id"`
	Username    string     `json:"username"`
	DisplayName string     `json:"display_name"`
	Kind        string     `json:"kind"`
	Role        Role       `json:"role"`
	GrantedBy   string     `json:"granted_by"`
	GrantedAt   time.Time  `json:"granted_at"`
	RequestID   string     `json:"request_id,omitempty"`
	RequestedBy string     `json:"requested_by,omitempty"`
	ApprovedBy  string     `json:"approved_by,omitempty"`
	ApprovedAt  *time.Time `json:"approved_at,omitempty"`
	ValidUntil  *time.Time `json:"valid_until,omitempty"`
	State       string     `json:"state"` // current, expired, revoked
}

// RightsOverview lists every right of every account of the tenant (AZ-7),
// and the pending requests.
func (d *Decider) RightsOverview(ctx context.Context, actor Subject) ([]Right, []RightRequest, error) {
	if err := actorIs(actor, RoleSecurityOfficer, RoleAppAdmin); err != nil {
		return nil, nil, fmt.Errorf("rights overview: %w", err)
	}
	latest := map[string]RightRequest{}
	pending := []RightRequest{}
	rows, err := d.db.QueryContext(ctx, `SELECT `+rightCols+` FROM access_right_requests WHERE tenant_id = $1 ORDER BY requested_at`, actor.TenantID())
	if err != nil {
		return nil, nil, fmt.Errorf("rights overview: %w", err)
	}
	for rows.Next() {
		r, err := scanRight(rows)
		if err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("rights overview: %w", err)
		}
		switch r.Status {
		case "pending":
			pending = append(pending, r)
		case "approved", "revoked":
			k := r.AccountID + "\x00" + string(r.Role)
			if prev, ok := latest[k]; !ok || prev.DecidedAt.Before(*r.DecidedAt) {
				latest[k] = r
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("rights overview: %w", err)
	}
	rows, err = d.db.QueryContext(ctx, `SELECT a.id, a.username, a.display_name, a.kind, ar.role, ar.granted_by, ar.granted_at
		FROM account_roles ar JOIN accounts a ON a.id = ar.account_id WHERE a.tenant_id = $1 ORDER BY a.username, ar.role`, actor.TenantID())
	if err != nil {
		return nil, nil, fmt.Errorf("rights overview: %w", err)
	}
	defer rows.Close()
	now := d.clock.Now()
	out := []Right{}
	for rows.Next() {
		var r Right
		var at int64
		if err := rows.Scan(&r.AccountID, &r.Username, &r.DisplayName, &r.Kind, &r.Role, &r.GrantedBy, &at); err != nil {
			return nil, nil, fmt.Errorf("rights overview: %w", err)
		}
		r.GrantedAt, r.State = clock.FromMicros(at), "current"
		if q, ok := latest[r.AccountID+"\x00"+string(r.Role)]; ok {
			r.RequestID, r.RequestedBy, r.ApprovedBy, r.ApprovedAt, r.ValidUntil = q.ID, q.RequestedBy, q.DecidedBy, q.DecidedAt, q.ValidUntil
			switch {
			case q.Status == "revoked":
				r.State = "revoked"
			case q.ValidUntil != nil && !q.ValidUntil.After(now):
				r.State = "expired"
			}
		}
		out = append(out, r)
	}
	return out, pending, rows.Err()
}
