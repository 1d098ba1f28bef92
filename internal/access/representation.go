package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Kinds of representation (AZ-4).
const (
	RepresentParent     = "parent"               // parent of a minor; ends at the child's 16th birthday
	RepresentLegal      = "legal-representative" // curator, mentor, guardian
	RepresentAuthorised = "authorised"           // gemachtigde, named by the patient
)

// AdulthoodAge is the age at which a parent's representation of a child
// ends by default (WGBO: from 16 a patient decides alone).
const AdulthoodAge = 16

// Representation lets a person act for a patient, within a validity period
// and a scope of data categories.
type Representation struct {
	ID               string     `json:"id"`
	TenantID         string     `json:"tenant_id"`
	RepresentativeID string     `json:"representative_id"`
	PatientID        string     `json:"patient_id"`
	Kind             string     `json:"kind"`
	Categories       []string   `json:"categories"` // scope; ["*"] for everything a person may see
	Start            time.Time  `json:"start"`
	End              *time.Time `json:"end,omitempty"`
	// PatientBirthDate (YYYY-MM-DD) is required for a parent; the
	// representation then ends at the 16th birthday unless End is earlier.
	PatientBirthDate string     `json:"patient_birth_date,omitempty"`
	RecordedBy       string     `json:"recorded_by"`
	RevokedAt        *time.Time `json:"revoked_at,omitempty"`
}

// AddRepresentation records a representation, on behalf of an application
// admin of the tenant (who has checked the evidence: birth certificate,
// court order or signed authorisation).
func (d *Decider) AddRepresentation(ctx context.Context, actor Subject, r Representation) (Representation, error) {
	r, err := d.CheckRepresentation(ctx, actor, r)
	if err != nil {
		return Representation{}, err
	}
	return d.recordRepresentation(ctx, d.db, r)
}

// CheckRepresentation validates a representation an application admin
// decides on (kind, period, scope, the patient in the admin's tenant)
// without recording it. An invitation of a representative carries the
// checked representation; RecordRepresentationIn records it when the
// representative's account becomes active.
func (d *Decider) CheckRepresentation(ctx context.Context, actor Subject, r Representation) (Representation, error) {
	if err := actorIs(actor, RoleAppAdmin); err != nil {
		return Representation{}, fmt.Errorf("add representation: %w", err)
	}
	r.TenantID, r.RecordedBy = actor.TenantID(), actor.AccountID()
	return d.checkRepresentation(ctx, d.db, r)
}

func (d *Decider) checkRepresentation(ctx context.Context, q store.Querier, r Representation) (Representation, error) {
	if err := checkText(append([]string{r.RepresentativeID, r.PatientID, r.Kind, r.PatientBirthDate}, r.Categories...)...); err != nil {
		return Representation{}, err
	}
	if r.Start.IsZero() {
		r.Start = d.clock.Now()
	}
	switch r.Kind {
	case RepresentParent:
		birth, err := time.Parse(time.DateOnly, r.PatientBirthDate)
		if err != nil {
			return Representation{}, invalid("add representation: a parent's representation needs the patient's birth date (YYYY-MM-DD)")
		}
		adult := birth.AddDate(AdulthoodAge, 0, 0)
		if !adult.After(r.Start) {
			return Representation{}, invalid("add representation: the patient is %d or older; record a legal representative or authorised person instead", AdulthoodAge)
		}
		if r.End == nil || r.End.After(adult) {
			r.End = &adult
		}
	case RepresentLegal, RepresentAuthorised:
	default:
		return Representation{}, invalid("add representation: kind must be parent, legal-representative or authorised")
	}
	if r.End != nil && !r.End.After(r.Start) {
		return Representation{}, invalid("add representation: end must be after start")
	}
	if len(r.Categories) == 0 {
		r.Categories = []string{CategoryAll}
	}
	for _, c := range r.Categories {
		if !knownCategory(c) {
			return Representation{}, invalid("add representation: unknown category %q", c)
		}
	}
	if err := patientInTenant(ctx, q, r.PatientID, r.TenantID); err != nil {
		return Representation{}, err
	}
	return r, nil
}

// RecordRepresentationIn records, inside q (the activation's transaction),
// a representation an application admin checked and decided on when
// inviting the representative (r.RecordedBy, r.TenantID as
// CheckRepresentation set them). It is checked again: the representative
// must by now be an active person account of the tenant, which in the
// activation's transaction it has just become, so the account and its
// representation start together or not at all (AZ-4).
func (d *Decider) RecordRepresentationIn(ctx context.Context, q store.Querier, r Representation) (Representation, error) {
	if r.TenantID == "" || r.RecordedBy == "" {
		return Representation{}, invalid("add representation: no deciding admin")
	}
	r.Start = time.Time{} // from the activation on
	r, err := d.checkRepresentation(ctx, q, r)
	if err != nil {
		return Representation{}, err
	}
	return d.recordRepresentation(ctx, q, r)
}

func (d *Decider) recordRepresentation(ctx context.Context, q store.Querier, r Representation) (Representation, error) {
	kind, err := accountInTenant(ctx, q, r.RepresentativeID, r.TenantID)
	if err != nil {
		return Representation{}, err
	}
	if kind != identity.KindPerson {
		return Representation{}, invalid("add representation: %s is not a person account", r.RepresentativeID)
	}
	r.ID, err = d.newID("rp-")
	if err != nil {
		return Representation{}, err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO access_representations
		(id, tenant_id, representative_id, patient_id, kind, categories, start_at, end_at, recorded_by, recorded_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		r.ID, r.TenantID, r.RepresentativeID, r.PatientID, r.Kind, strings.Join(r.Categories, " "),
		clock.Micros(r.Start), micros(r.End), r.RecordedBy, clock.Micros(d.clock.Now()))
	if err != nil {
		return Representation{}, fmt.Errorf("add representation: %w", err)
	}
	return r, nil
}

// RevokeRepresentation ends a representation now.
func (d *Decider) RevokeRepresentation(ctx context.Context, actor Subject, id string) error {
	if err := actorIs(actor, RoleAppAdmin); err != nil {
		return fmt.Errorf("revoke representation: %w", err)
	}
	if err := checkText(id); err != nil {
		return err
	}
	res, err := d.db.ExecContext(ctx, `UPDATE access_representations SET revoked_by = $1, revoked_at = $2
		WHERE id = $3 AND tenant_id = $4 AND revoked_at IS NULL`, actor.AccountID(), clock.Micros(d.clock.Now()), id, actor.TenantID())
	if err != nil {
		return fmt.Errorf("revoke representation: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("representation %s: %w", id, ErrNotFound)
	}
	return nil
}

// MayRepresent reports whether the person account may act on behalf of
// patientID now: a current, unrevoked representation of the same tenant, or
// the patient record being the person's own. authn asks it before a session
// starts acting for someone (Session.OnBehalfOf); Decide checks again on
// every request, so a representation that ends mid-session stops working at
// once.
func (d *Decider) MayRepresent(ctx context.Context, accountID, patientID string) (bool, error) {
	if checkText(accountID, patientID) != nil {
		return false, nil
	}
	var one int
	err := d.db.QueryRowContext(ctx, `SELECT 1 FROM accounts a JOIN patients p ON p.tenant_id = a.tenant_id
		WHERE a.id = $1 AND p.id = $2 AND a.status = 'active' AND (
		  EXISTS (SELECT 1 FROM person_patients pp WHERE pp.account_id = a.id AND pp.patient_id = p.id)
		  OR EXISTS (SELECT 1 FROM access_representations r WHERE r.representative_id = a.id AND r.patient_id = p.id
		    AND r.tenant_id = p.tenant_id AND r.revoked_at IS NULL AND r.start_at <= $3 AND (r.end_at IS NULL OR r.end_at > $3)))`,
		accountID, patientID, clock.Micros(d.clock.Now())).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("may represent: %w", err)
	}
	return true, nil
}

// Representations lists representations of the tenant: all of them for an
// application admin or security officer, the person's own for a person.
func (d *Decider) Representations(ctx context.Context, actor Subject) ([]Representation, error) {
	if err := actorIs(actor, RoleAppAdmin, RoleSecurityOfficer, RolePerson); err != nil {
		return nil, fmt.Errorf("list representations: %w", err)
	}
	q := `SELECT id, tenant_id, representative_id, patient_id, kind, categories, start_at, end_at, recorded_by, revoked_at
		FROM access_representations WHERE tenant_id = $1`
	args := []any{actor.TenantID()}
	if actor.Role() == RolePerson {
		q += ` AND representative_id = $2`
		args = append(args, actor.AccountID())
	}
	rows, err := d.db.QueryContext(ctx, q+` ORDER BY start_at`, args...)
	if err != nil {
		return nil, fmt.Errorf("list representations: %w", err)
	}
	defer rows.Close()
	out := []Representation{}
	for rows.Next() {
		var r Representation
		var cats string
		var start int64
		var end, revoked sql.NullInt64
		if err := rows.Scan(&r.ID, &r.TenantID, &r.RepresentativeID, &r.PatientID, &r.Kind, &cats, &start, &end, &r.RecordedBy, &revoked); err != nil {
			return nil, fmt.Errorf("list representations: %w", err)
		}
		r.Categories, r.Start, r.End, r.RevokedAt = strings.Fields(cats), clock.FromMicros(start), fromMicros(end), fromMicros(revoked)
		out = append(out, r)
	}
	return out, rows.Err()
}
