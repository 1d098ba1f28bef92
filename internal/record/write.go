package record

import (
	"context"
	"fmt"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Update writes a new version of an existing resource of the grant's
// patient, with its update event, in one transaction. expect, when not 0,
// is the version the client based its change on (If-Match): another
// current version gives ErrConflict, as does a concurrent writer. guard,
// when not nil, sees the current version first (opened, not returned to
// anyone) and may refuse the change, e.g. a change of a patient's BSN.
// A deleted resource can be brought back by an update; a resource that
// never existed gives ErrNotFound (no update-as-create).
func (s *Store) Update(ctx context.Context, g access.Grant, r Resource, expect int64, guard func(prev Resource) error) (Resource, error) {
	if err := check(g, access.Update); err != nil {
		return Resource{}, err
	}
	if r.PatientID != g.PatientID() {
		return Resource{}, ErrWrongGrant
	}
	prev, err := s.current(ctx, g, r.Type, r.ID)
	if err != nil {
		return Resource{}, err
	}
	if expect != 0 && prev.Version != expect {
		return Resource{}, fmt.Errorf("%s is at version %d, not %d: %w", r.Ref(), prev.Version, expect, ErrConflict)
	}
	if guard != nil && !prev.Deleted {
		if err := guard(prev); err != nil {
			return Resource{}, err
		}
	}
	return s.writeVersion(ctx, g, audit.ActionUpdate, r, prev.Version+1)
}

// Delete marks a resource deleted by writing a new, empty version (the
// older versions stay readable through history and vread), with its delete
// event. Deleting a deleted resource changes nothing.
func (s *Store) Delete(ctx context.Context, g access.Grant, typ, id string) (Resource, error) {
	if err := check(g, access.Delete); err != nil {
		return Resource{}, err
	}
	prev, err := s.current(ctx, g, typ, id)
	if err != nil {
		return Resource{}, err
	}
	if prev.Deleted {
		return prev, nil
	}
	r := Resource{Type: typ, ID: id, PatientID: prev.PatientID, Categories: prev.Categories, Deleted: true}
	return s.writeVersion(ctx, g, audit.ActionDelete, r, prev.Version+1)
}

func (s *Store) writeVersion(ctx context.Context, g access.Grant, action audit.Action, r Resource, version int64) (Resource, error) {
	if err := s.stamp(&r, version); err != nil {
		return Resource{}, err
	}
	sealed, err := s.sealBody(ctx, g.TenantID(), r)
	if err != nil {
		return Resource{}, err
	}
	name, named, err := s.sealName(ctx, g.TenantID(), r)
	if err != nil {
		return Resource{}, err
	}
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		if err := s.insertLogged(ctx, tx, g, action, r, sealed); err != nil || !named {
			return err
		}
		return s.putName(ctx, tx, g.TenantID(), r.PatientID, name)
	})
	if err != nil {
		return Resource{}, err
	}
	return r, nil
}
