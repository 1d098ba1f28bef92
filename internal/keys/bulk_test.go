package keys

import (
	"bytes"
	"errors"
	"testing"
)

// REQ: DP-1 — keys created in bulk for new patients are stored wrapped, seal
// and open like keys created on first use (also through a keyring with an
// empty cache), and a patient who has a key already is refused: on the SQL
// store no key of the batch is created then.
func TestCreatePatientKeys(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		k := testKeyring(t, testMaster(t, 1), s, nil)
		ids := []string{"p1", "p2", "p3"}
		if err := k.CreatePatientKeys(ctx, "t1", ids); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			d, err := s.PatientDEK(ctx, "t1", id)
			if err != nil || len(d.Wrapped) == 0 {
				t.Fatalf("%s: stored key %+v, %v", id, d, err)
			}
		}
		ct, err := k.Seal(ctx, "t1", "p2", []byte("bloeddruk"), recordAAD("t1", "p2", "o1", 1))
		if err != nil {
			t.Fatal(err)
		}
		fresh := testKeyring(t, testMaster(t, 1), s, nil) // reads the stored key, nothing cached
		pt, err := fresh.Open(ctx, "t1", "p2", ct, recordAAD("t1", "p2", "o1", 1))
		if err != nil || !bytes.Equal(pt, []byte("bloeddruk")) {
			t.Fatalf("open with a fresh keyring = %q, %v", pt, err)
		}
		if _, err := fresh.Open(ctx, "t1", "p1", ct, recordAAD("t1", "p2", "o1", 1)); err == nil {
			t.Fatal("another patient's bulk-created key opened the ciphertext")
		}

		err = k.CreatePatientKeys(ctx, "t1", []string{"p4", "p2", "p5"})
		if !errors.Is(err, ErrExists) {
			t.Fatalf("bulk creation over an existing key: %v, want ErrExists", err)
		}
		if _, sql := s.(*SQLStore); sql {
			if _, err := s.PatientDEK(ctx, "t1", "p4"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("p4 after a refused batch: %v, want no key (all or nothing)", err)
			}
		}
		// The existing key is untouched.
		if pt, err := fresh.Open(ctx, "t1", "p2", ct, recordAAD("t1", "p2", "o1", 1)); err != nil || string(pt) != "bloeddruk" {
			t.Fatalf("p2 after a refused batch: %q, %v", pt, err)
		}
		if err := k.Shred(ctx, "t1", "p3"); err != nil {
			t.Fatal(err)
		}
		if err := k.CreatePatientKeys(ctx, "t1", []string{"p3"}); err == nil {
			t.Fatal("a shredded patient got a new key")
		}
		if err := k.CreatePatientKeys(ctx, "", []string{"p9"}); err == nil {
			t.Fatal("key created without a tenant")
		}
	})
}
