package access

import (
	"context"
	"errors"
	"fmt"

	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// The kinds of four-eyes change (GOV-1) access owns.
const (
	ChangeRole  = "access.role"  // a tenant-defined role or a new version of one (AZ-9)
	ChangeRight = "access.right" // a role for an account (AZ-7, AZ-8)
)

// ChangeActor is the four-eyes actor of a subject (its account, role and
// organisation) for change: the subject's role check is the caller's.
func ChangeActor(s Subject) change.Actor {
	return change.Actor{TenantID: s.TenantID(), AccountID: s.AccountID(), Name: s.Name(), Role: string(s.Role()),
		Organisation: s.Organisation(), Assurance: s.Assurance().String()}
}

// changeErr maps change's errors onto access's, which the protocols answer
// (403, 404, 409, 400), keeping change's message.
func changeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, change.ErrSelf), errors.Is(err, change.ErrForbidden):
		return fmt.Errorf("%w: %w", err, ErrForbidden)
	case errors.Is(err, change.ErrNotFound):
		return fmt.Errorf("%w: %w", err, ErrNotFound)
	case errors.Is(err, change.ErrDecided), errors.Is(err, change.ErrExpired), errors.Is(err, change.ErrInapplicable):
		return fmt.Errorf("%w: %w", err, ErrConflict)
	case errors.Is(err, change.ErrInvalid):
		return fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	return err
}

// changeDeciders are the roles that see and decide change requests: a
// tenant's application admins and security officers, and operators for
// the platform's own (a kind's handler narrows this further).
var changeDeciders = []Role{RoleAppAdmin, RoleSecurityOfficer, RoleOperator}

// ChangeRequests lists the actor's organisation's pending change requests
// and the most recent decided ones (GOV-1).
func (d *Decider) ChangeRequests(ctx context.Context, actor Subject) (pending, recent []change.Request, err error) {
	if err := d.CheckActor(ctx, actor, changeDeciders...); err != nil {
		return nil, nil, fmt.Errorf("change requests: %w", err)
	}
	return d.changes.List(ctx, actor.TenantID(), 100)
}

// ChangeRequest returns one change request of the actor's organisation.
func (d *Decider) ChangeRequest(ctx context.Context, actor Subject, id string) (change.Request, error) {
	if err := d.CheckActor(ctx, actor, changeDeciders...); err != nil {
		return change.Request{}, fmt.Errorf("change request: %w", err)
	}
	r, err := d.changes.Get(ctx, actor.TenantID(), id)
	return r, changeErr(err)
}

// MayDecideChange reports whether actor may decide r (not its proposer,
// not the account it concerns, a role that decides its kind).
func (d *Decider) MayDecideChange(actor Subject, r change.Request) bool {
	return d.changes.MayDecide(r, ChangeActor(actor))
}

// DecideChange approves or rejects a change request of any kind: the
// owner's change is applied in the approval's transaction. The proposer and
// the account the change concerns never decide it (GOV-1, AZ-7).
func (d *Decider) DecideChange(ctx context.Context, actor Subject, id string, approve bool, note string) (change.Request, error) {
	if err := d.CheckActor(ctx, actor, changeDeciders...); err != nil {
		return change.Request{}, fmt.Errorf("decide change: %w", err)
	}
	r, err := d.changes.Decide(ctx, ChangeActor(actor), id, approve, note)
	return r, changeErr(err)
}

// registerChanges gives change access's handlers: approving a role
// definition puts that version in force; approving a right writes the
// role grant with the approver as granter. The owner's pending row carries
// the change request's id.
func (d *Decider) registerChanges() {
	deciders := []string{string(RoleAppAdmin), string(RoleSecurityOfficer)}
	d.changes.Register(ChangeRole, change.Handler{
		Approvers: deciders,
		Apply: func(ctx context.Context, tx *store.Tx, r change.Request, by change.Actor) error {
			return d.closeRoleDef(ctx, tx, r, "approved")
		},
		Closed: func(ctx context.Context, tx *store.Tx, r change.Request) error {
			return d.closeRoleDef(ctx, tx, r, string(r.Status))
		},
	})
	d.changes.Register(ChangeRight, change.Handler{
		Approvers: deciders,
		Apply: func(ctx context.Context, tx *store.Tx, r change.Request, by change.Actor) error {
			account, role, err := d.closeRight(ctx, tx, r, "approved")
			if err != nil {
				return err
			}
			return d.roles.In(tx).GrantRole(ctx, account, role, by.AccountID)
		},
		Closed: func(ctx context.Context, tx *store.Tx, r change.Request) error {
			_, _, err := d.closeRight(ctx, tx, r, string(r.Status))
			return err
		},
	})
}
