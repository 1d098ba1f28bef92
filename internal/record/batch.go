package record

import (
	"context"
	"errors"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// A Batch collects new resources, each checked against its grant and sealed
// with its patient's key as it is added, and writes them with their audit
// events in one transaction on Commit: all or nothing. Single writes use a
// batch of one; bulk loads (synthetic data) use larger ones, because a
// commit per resource, not the work per resource, is what limits them.
type Batch struct {
	s   *Store
	ops []func(ctx context.Context, tx *store.Tx) error
}

// NewBatch starts an empty batch.
func (s *Store) NewBatch() *Batch { return &Batch{s: s} }

// Insert adds version 1 of a new resource (its id chosen by the caller)
// and its create event. The server sets id, versionId and lastUpdated in
// the body; the stamped resource is returned.
func (b *Batch) Insert(ctx context.Context, g access.Grant, r Resource) (Resource, error) {
	if err := check(g, access.Create); err != nil {
		return Resource{}, err
	}
	if r.PatientID != g.PatientID() {
		return Resource{}, ErrWrongGrant
	}
	if err := b.s.stamp(&r, 1); err != nil {
		return Resource{}, err
	}
	// Seal now, outside the transaction: a first seal may create the
	// patient's data key, a write of its own that must not wait on it.
	sealed, err := b.s.sealBody(ctx, g.TenantID(), r)
	if err != nil {
		return Resource{}, err
	}
	name, named, err := b.s.sealName(ctx, g.TenantID(), r)
	if err != nil {
		return Resource{}, err
	}
	b.ops = append(b.ops, func(ctx context.Context, tx *store.Tx) error {
		if err := b.s.insertLogged(ctx, tx, g, audit.ActionCreate, r, sealed); err != nil || !named {
			return err
		}
		return b.s.putName(ctx, tx, g.TenantID(), r.PatientID, name)
	})
	return r, nil
}

// RegisterPatient adds a new patient: the identifier row (through reg), the
// Patient resource, and the assign-identifier and create events, under a
// registration grant. The body gets the grant's patient id as its id.
// bsnIndex is the BSN's blind index, nil when the patient has no BSN; a
// second patient with the same BSN in the tenant fails the commit with the
// registrar's error (identity.ErrExists).
func (b *Batch) RegisterPatient(ctx context.Context, g access.Grant, reg PatientRegistrar, bsnIndex, body []byte) (Resource, error) {
	if err := check(g, access.Create); err != nil || g.Basis() != access.BasisRegistration {
		return Resource{}, ErrWrongGrant
	}
	r := Resource{Type: "Patient", ID: g.PatientID(), PatientID: g.PatientID(), Categories: []string{fhir.CategoryDemographics}, Body: body}
	if err := b.s.stamp(&r, 1); err != nil {
		return Resource{}, err
	}
	sealed, err := b.s.sealBody(ctx, g.TenantID(), r)
	if err != nil {
		return Resource{}, err
	}
	name, named, err := b.s.sealName(ctx, g.TenantID(), r)
	if err != nil {
		return Resource{}, err
	}
	b.ops = append(b.ops, func(ctx context.Context, tx *store.Tx) error {
		if _, err := reg.CreatePatient(ctx, tx, g.PatientID(), g.TenantID(), bsnIndex); err != nil {
			return err
		}
		ev := g.Event(audit.ActionAssignID, audit.OutcomeSuccess)
		ev.Resources = []string{r.Ref()}
		if _, err := b.s.log.AppendIn(ctx, tx, ev); err != nil {
			return err
		}
		if err := b.s.insertLogged(ctx, tx, g, audit.ActionCreate, r, sealed); err != nil || !named {
			return err
		}
		return b.s.putName(ctx, tx, g.TenantID(), r.PatientID, name)
	})
	return r, nil
}

// With adds a write that access prepared (a care relationship, say) to the
// transaction, after the resources added so far. Only access can make one,
// so record never hands its transaction to other code.
func (b *Batch) With(w access.TxWrite) {
	b.ops = append(b.ops, func(ctx context.Context, tx *store.Tx) error { return w.Apply(ctx, tx) })
}

// Commit writes everything added in one transaction. A batch is used once.
// Concurrent batches share commits (store.GroupTx), each still all or
// nothing: on SQLite a commit per create was what kept the cores waiting.
func (b *Batch) Commit(ctx context.Context) error {
	if b.ops == nil {
		return errors.New("record: batch is empty or committed")
	}
	ops := b.ops
	b.ops = nil
	return b.s.db.GroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		for _, op := range ops {
			if err := op(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	})
}
