package access

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// REQ: AZ-3
// MyPatients names only the actor's own current relationships in the
// actor's tenant: an ended one, a colleague's and another tenant's stay out.
func TestMyPatients(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		gp := f.account(f.tenantA, RoleProfessional)
		colleague := f.account(f.tenantA, RoleProfessional)
		mine, ended, theirs := f.patient(f.tenantA), f.patient(f.tenantA), f.patient(f.tenantA)
		ago := t0.Add(-time.Hour)
		f.rawRelationship(f.tenantA, gp.AccountID(), mine, ago, nil)
		f.rawRelationship(f.tenantA, gp.AccountID(), ended, ago.Add(-time.Hour), &ago)
		f.rawRelationship(f.tenantA, colleague.AccountID(), theirs, ago, nil)
		got, err := f.d.MyPatients(f.ctx, gp)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].PatientID != mine {
			t.Fatalf("MyPatients = %+v, want only %s", got, mine)
		}
		// The same account id claimed in another tenant finds nothing.
		other := gp
		other.tenantID = f.tenantB
		if got, err := f.d.MyPatients(f.ctx, other); err != nil || len(got) != 0 {
			t.Fatalf("other tenant: %+v, %v", got, err)
		}
		low := gp
		low.assurance = Midden
		if _, err := f.d.MyPatients(f.ctx, low); !errors.Is(err, ErrForbidden) {
			t.Fatalf("assurance midden: %v, want ErrForbidden", err)
		}
	})
}

// A relationship prepared for another package's transaction is written only
// when that transaction applies it, and is checked before.
func TestRelationshipWrite(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		gp := f.account(f.tenantA, RoleProfessional)
		p := f.patient(f.tenantA)
		if _, err := f.d.RelationshipWrite(Relationship{TenantID: f.tenantA, PatientID: p}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("incomplete relationship: %v, want ErrInvalid", err)
		}
		w, err := f.d.RelationshipWrite(Relationship{TenantID: f.tenantA, ProfessionalID: gp.AccountID(), PatientID: p,
			Kind: "gp", Start: t0.Add(-time.Minute), RecordedBy: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := f.d.MyPatients(f.ctx, gp); len(got) != 0 {
			t.Fatalf("written before Apply: %+v", got)
		}
		rollback := errors.New("roll back")
		if err := db.Tx(f.ctx, func(tx *store.Tx) error {
			if err := w.Apply(context.Background(), tx); err != nil {
				return err
			}
			return rollback
		}); !errors.Is(err, rollback) {
			t.Fatal(err)
		}
		if got, _ := f.d.MyPatients(f.ctx, gp); len(got) != 0 {
			t.Fatalf("kept after rollback: %+v", got)
		}
		if err := w.Apply(f.ctx, db); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.d.MyPatients(f.ctx, gp); len(got) != 1 || got[0].PatientID != p || got[0].Kind != "gp" {
			t.Fatalf("after Apply: %+v", got)
		}
		if err := (TxWrite{}).Apply(f.ctx, db); err == nil {
			t.Fatal("the zero TxWrite applied")
		}
	})
}
