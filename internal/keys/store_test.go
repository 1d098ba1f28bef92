package keys

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// eachStore runs fn against the in-memory store and the SQL store on
// SQLite and on PostgreSQL.
func eachStore(t *testing.T, fn func(t *testing.T, s Store)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) { fn(t, newMemStore()) })
	t.Run("sqlite", func(t *testing.T) { fn(t, NewSQLStore(storetest.SQLite(t))) })
	t.Run("postgres", func(t *testing.T) { fn(t, NewSQLStore(storetest.Postgres(t))) })
}

// The Store contract that the keyring relies on, for every implementation.
// REQ: DP-1
func TestStoreContract(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		t0 := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
		t1 := t0.Add(time.Hour)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		wantErr := func(err, want error) {
			t.Helper()
			if !errors.Is(err, want) {
				t.Fatalf("err = %v, want %v", err, want)
			}
		}

		if ks, err := s.TenantKEKs(ctx, "t1"); err != nil || len(ks) != 0 {
			t.Fatalf("new tenant: %v, %v", ks, err)
		}
		must(s.PutTenantKEK(ctx, TenantKEK{TenantID: "t1", Version: 1, MasterID: "m1", Wrapped: []byte{1, 0, 1}, Created: t0}))
		wantErr(s.PutTenantKEK(ctx, TenantKEK{TenantID: "t1", Version: 1, MasterID: "m1", Wrapped: []byte{9}, Created: t0}), ErrExists)
		must(s.PutTenantKEK(ctx, TenantKEK{TenantID: "t2", Version: 1, MasterID: "m2", Wrapped: []byte{2}, Created: t0}))

		// A patient key needs an existing KEK version and is inserted once.
		wantErr(s.PutPatientDEK(ctx, PatientDEK{TenantID: "t1", PatientID: "p1", KEKVersion: 7, Wrapped: []byte{3}, Created: t0}), ErrNotFound)
		wantErr(s.PutPatientDEK(ctx, PatientDEK{TenantID: "t3", PatientID: "p1", KEKVersion: 1, Wrapped: []byte{3}, Created: t0}), ErrNotFound)
		must(s.PutPatientDEK(ctx, PatientDEK{TenantID: "t1", PatientID: "p1", KEKVersion: 1, Wrapped: []byte{3, 0}, Created: t0}))
		must(s.PutPatientDEK(ctx, PatientDEK{TenantID: "t1", PatientID: "p2", KEKVersion: 1, Wrapped: []byte{4}, Created: t0}))
		must(s.PutPatientDEK(ctx, PatientDEK{TenantID: "t1", PatientID: "", KEKVersion: 1, Wrapped: []byte{5}, Created: t0}))
		wantErr(s.PutPatientDEK(ctx, PatientDEK{TenantID: "t1", PatientID: "p1", KEKVersion: 1, Wrapped: []byte{9}, Created: t0}), ErrExists)
		d, err := s.PatientDEK(ctx, "t1", "p1")
		must(err)
		if d.KEKVersion != 1 || !bytes.Equal(d.Wrapped, []byte{3, 0}) || !d.Created.Equal(t0) || d.TenantID != "t1" || d.PatientID != "p1" {
			t.Fatalf("PatientDEK = %+v", d)
		}
		_, err = s.PatientDEK(ctx, "t2", "p1")
		wantErr(err, ErrNotFound)

		// A new version retires the old one; the newest and referenced
		// versions cannot be deleted.
		wantErr(s.DeleteTenantKEK(ctx, "t1", 1), ErrInUse)
		must(s.PutTenantKEK(ctx, TenantKEK{TenantID: "t1", Version: 2, MasterID: "m1", Wrapped: []byte{6}, Created: t1}))
		ks, err := s.TenantKEKs(ctx, "t1")
		must(err)
		if len(ks) != 2 || ks[0].Version != 1 || ks[1].Version != 2 || !ks[0].Retired.Equal(t1) || !ks[1].Retired.IsZero() ||
			!bytes.Equal(ks[0].Wrapped, []byte{1, 0, 1}) || ks[0].MasterID != "m1" || !ks[0].Created.Equal(t0) || ks[0].TenantID != "t1" {
			t.Fatalf("TenantKEKs = %+v", ks)
		}
		wantErr(s.DeleteTenantKEK(ctx, "t1", 1), ErrInUse)
		wantErr(s.DeleteTenantKEK(ctx, "t1", 2), ErrInUse)
		wantErr(s.DeleteTenantKEK(ctx, "t1", 5), ErrNotFound)

		below, err := s.PatientDEKsBelow(ctx, "t1", 2, 2)
		must(err)
		if len(below) != 2 || below[0].PatientID != "" || below[1].PatientID != "p1" {
			t.Fatalf("PatientDEKsBelow limit 2 = %+v", below)
		}
		// Re-wrap is compare-and-swap on the old version.
		wantErr(s.RewrapPatientDEK(ctx, 2, PatientDEK{TenantID: "t1", PatientID: "p1", KEKVersion: 2, Wrapped: []byte{7}}), ErrNotFound)
		wantErr(s.RewrapPatientDEK(ctx, 1, PatientDEK{TenantID: "t1", PatientID: "p1", KEKVersion: 9, Wrapped: []byte{7}}), ErrNotFound)
		for _, p := range []string{"", "p1"} {
			must(s.RewrapPatientDEK(ctx, 1, PatientDEK{TenantID: "t1", PatientID: p, KEKVersion: 2, Wrapped: []byte{7}}))
		}
		if d, _ := s.PatientDEK(ctx, "t1", "p1"); d.KEKVersion != 2 || !bytes.Equal(d.Wrapped, []byte{7}) {
			t.Fatalf("after re-wrap: %+v", d)
		}

		// Shredding leaves a tombstone without key material that frees the KEK.
		wantErr(s.DeleteTenantKEK(ctx, "t1", 1), ErrInUse) // p2 still on 1
		must(s.ShredPatientDEK(ctx, "t1", "p2", t1))
		must(s.ShredPatientDEK(ctx, "t1", "p2", t1.Add(time.Hour)))
		_, err = s.PatientDEK(ctx, "t1", "p2")
		wantErr(err, ErrShredded)
		wantErr(s.PutPatientDEK(ctx, PatientDEK{TenantID: "t1", PatientID: "p2", KEKVersion: 2, Wrapped: []byte{8}, Created: t1}), ErrExists)
		wantErr(s.RewrapPatientDEK(ctx, 1, PatientDEK{TenantID: "t1", PatientID: "p2", KEKVersion: 2, Wrapped: []byte{8}}), ErrNotFound)
		if below, err := s.PatientDEKsBelow(ctx, "t1", 3, 10); err != nil || len(below) != 2 {
			t.Fatalf("PatientDEKsBelow lists shredded keys: %+v, %v", below, err)
		}
		must(s.DeleteTenantKEK(ctx, "t1", 1))
		wantErr(s.DeleteTenantKEK(ctx, "t1", 1), ErrNotFound)
		wantErr(s.PutPatientDEK(ctx, PatientDEK{TenantID: "t1", PatientID: "p9", KEKVersion: 1, Wrapped: []byte{8}, Created: t1}), ErrNotFound)
		// A patient without a key can be shredded too, and then never gets one.
		must(s.ShredPatientDEK(ctx, "t1", "p3", t1))
		wantErr(s.PutPatientDEK(ctx, PatientDEK{TenantID: "t1", PatientID: "p3", KEKVersion: 2, Wrapped: []byte{8}, Created: t1}), ErrExists)

		// Master re-wrap is compare-and-swap on the old master id.
		not, err := s.TenantKEKsNotUnder(ctx, "m1", 10)
		must(err)
		if len(not) != 1 || not[0].TenantID != "t2" || not[0].MasterID != "m2" {
			t.Fatalf("TenantKEKsNotUnder(m1) = %+v", not)
		}
		wantErr(s.RewrapTenantKEK(ctx, "m1", TenantKEK{TenantID: "t2", Version: 1, MasterID: "m1", Wrapped: []byte{9}}), ErrNotFound)
		must(s.RewrapTenantKEK(ctx, "m2", TenantKEK{TenantID: "t2", Version: 1, MasterID: "m1", Wrapped: []byte{9}}))
		if not, _ := s.TenantKEKsNotUnder(ctx, "m1", 10); len(not) != 0 {
			t.Fatalf("after re-wrap: %+v", not)
		}
		if ks, _ := s.TenantKEKs(ctx, "t2"); len(ks) != 1 || !bytes.Equal(ks[0].Wrapped, []byte{9}) {
			t.Fatalf("re-wrapped KEK = %+v", ks)
		}
	})
}
