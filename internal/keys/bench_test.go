package keys

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// Seal of a 2 KiB resource with the patient key cached.
func BenchmarkSeal2KiB(b *testing.B) {
	ctx := b.Context()
	k := testKeyring(b, testMaster(b, 1), newMemStore(), nil)
	pt := make([]byte, 2048)
	rand.Read(pt)
	aad := recordAAD("t1", "p1", "obs-1", 1)
	if _, err := k.Seal(ctx, "t1", "p1", pt, aad); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Seal(ctx, "t1", "p1", pt, aad); err != nil {
			b.Fatal(err)
		}
	}
}

// Open of a 2 KiB resource with the patient key cached.
func BenchmarkOpen2KiB(b *testing.B) {
	ctx := b.Context()
	k := testKeyring(b, testMaster(b, 1), newMemStore(), nil)
	pt := make([]byte, 2048)
	rand.Read(pt)
	aad := recordAAD("t1", "p1", "obs-1", 1)
	ct, err := k.Seal(ctx, "t1", "p1", pt, aad)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Open(ctx, "t1", "p1", ct, aad); err != nil {
			b.Fatal(err)
		}
	}
}

// Parallel Open of a 2 KiB resource, many patients, keys cached: the
// cache's lock under contention.
func BenchmarkOpen2KiBParallel(b *testing.B) {
	ctx := b.Context()
	k := testKeyring(b, testMaster(b, 1), newMemStore(), nil)
	pt := make([]byte, 2048)
	const patients = 64
	cts := make([][]byte, patients)
	for i := range cts {
		var err error
		cts[i], err = k.Seal(ctx, "t1", fmt.Sprint(i), pt, testAD())
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(pt)))
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := k.Open(ctx, "t1", fmt.Sprint(i%patients), cts[i%patients], testAD()); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// First Seal for a new patient: generate, wrap and store a patient key
// (tenant key cached after the first patient).
func BenchmarkFirstSealNewPatient(b *testing.B) {
	stores := []struct {
		name string
		new  func(b *testing.B) Store
	}{
		{"memory", func(*testing.B) Store { return newMemStore() }},
		{"sqlite", func(b *testing.B) Store { return NewSQLStore(storetest.SQLite(b)) }},
		{"postgres", func(b *testing.B) Store { return NewSQLStore(storetest.Postgres(b)) }},
	}
	for _, s := range stores {
		b.Run(s.name, func(b *testing.B) {
			ctx := b.Context()
			k := testKeyring(b, testMaster(b, 1), s.new(b), nil)
			pt := make([]byte, 2048)
			i := 0
			for b.Loop() {
				if _, err := k.Seal(ctx, "t1", fmt.Sprint("p", i), pt, testAD()); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// Open after a cache miss: read and unwrap the patient key from the store.
func BenchmarkOpenUncachedSQLite(b *testing.B) {
	ctx := b.Context()
	s := NewSQLStore(storetest.SQLite(b))
	k := testKeyring(b, testMaster(b, 1), s, nil)
	ct, err := k.Seal(ctx, "t1", "p1", make([]byte, 2048), testAD())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		fresh := testKeyring(b, testMaster(b, 1), s, nil)
		if _, err := fresh.Open(ctx, "t1", "p1", ct, testAD()); err != nil {
			b.Fatal(err)
		}
	}
}
