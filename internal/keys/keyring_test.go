package keys

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
)

func testMaster(t testing.TB, seeds ...byte) Master {
	t.Helper()
	var vals []string
	for _, s := range seeds {
		vals = append(vals, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{s}, 32)))
	}
	m, err := MasterFromEnv(strings.Join(vals, ","))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testKeyring(t testing.TB, m Master, s Store, c clock.Clock) *Keyring {
	t.Helper()
	cfg := Config{Master: m, Store: s}
	if c != nil {
		cfg.Now = c.Now
	}
	k, err := NewKeyring(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func recordAAD(tenant, patient, id string, version int) AD {
	return ResourceAD(tenant, patient, "Observation", id, int64(version))
}

// testAD is the AD of values whose purpose a test does not care about.
func testAD() AD { return newAD("zorgkluis test") }

// REQ: DP-1
func TestSealOpenRoundtrip(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		k := testKeyring(t, testMaster(t, 1), s, nil)
		big := make([]byte, 64<<10)
		rand.Read(big)
		cases := []struct {
			name, tenant, patient string
			plaintext             []byte
		}{
			{"empty", "t1", "p1", nil},
			{"json", "t1", "p1", []byte(`{"resourceType":"Patient"}`)},
			{"64 KiB", "t1", "p2", big},
			{"other tenant, same patient id", "t2", "p1", []byte("x")},
		}
		for _, tc := range cases {
			aad := recordAAD(tc.tenant, tc.patient, tc.name, 1)
			ct, err := k.Seal(ctx, tc.tenant, tc.patient, tc.plaintext, aad)
			if err != nil {
				t.Fatalf("%s: seal: %v", tc.name, err)
			}
			if len(ct) != len(tc.plaintext)+Overhead {
				t.Fatalf("%s: %d bytes sealed, want %d", tc.name, len(ct), len(tc.plaintext)+Overhead)
			}
			if len(tc.plaintext) > 16 && bytes.Contains(ct, tc.plaintext[:16]) {
				t.Fatalf("%s: plaintext visible in ciphertext", tc.name)
			}
			// A fresh keyring has nothing cached: it reads the wrapped keys.
			for _, r := range []*Keyring{k, testKeyring(t, testMaster(t, 1), s, nil)} {
				pt, err := r.Open(ctx, tc.tenant, tc.patient, ct, aad)
				if err != nil || !bytes.Equal(pt, tc.plaintext) {
					t.Fatalf("%s: open = %d bytes, %v", tc.name, len(pt), err)
				}
			}
		}
		// Two seals of the same value differ (random nonce).
		a, _ := k.Seal(ctx, "t1", "p1", []byte("same"), testAD())
		b, _ := k.Seal(ctx, "t1", "p1", []byte("same"), testAD())
		if bytes.Equal(a, b) {
			t.Fatal("two seals are identical")
		}
		// Opening for a patient that never had a key.
		if _, err := k.Open(ctx, "t1", "nobody", a, testAD()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("open for unknown patient: %v", err)
		}
	})
}

// REQ: DP-1
func TestOpenRejects(t *testing.T) {
	ctx := t.Context()
	k := testKeyring(t, testMaster(t, 1), newMemStore(), nil)
	aad1 := recordAAD("t1", "p1", "obs-1", 1)
	ct1, err := k.Seal(ctx, "t1", "p1", []byte("record one"), aad1)
	if err != nil {
		t.Fatal(err)
	}
	aad2 := recordAAD("t1", "p1", "obs-2", 1)
	ct2, _ := k.Seal(ctx, "t1", "p1", []byte("record two"), aad2)
	ctP2, _ := k.Seal(ctx, "t1", "p2", []byte("other patient"), recordAAD("t1", "p2", "obs-1", 1))
	ctT2, _ := k.Seal(ctx, "t2", "p1", []byte("other tenant"), aad1)

	flip := func(i int) []byte {
		c := bytes.Clone(ct1)
		c[i] ^= 0x80
		return c
	}
	cases := []struct {
		name            string
		tenant, patient string
		ciphertext      []byte
		aadv            AD
	}{
		{"wrong aad: other version", "t1", "p1", ct1, recordAAD("t1", "p1", "obs-1", 2)},
		{"wrong aad: empty", "t1", "p1", ct1, AD{}},
		{"record swapped within patient", "t1", "p1", ct2, aad1},
		{"other patient's ciphertext", "t1", "p1", ctP2, aad1},
		{"other tenant's ciphertext", "t1", "p1", ctT2, aad1},
		{"opened as other patient", "t1", "p2", ct1, aad1},
		{"tampered version byte", "t1", "p1", flip(0), aad1},
		{"tampered key id", "t1", "p1", flip(3), aad1},
		{"tampered nonce", "t1", "p1", flip(headerSize + 2), aad1},
		{"tampered body", "t1", "p1", flip(headerSize + nonceSize), aad1},
		{"tampered tag", "t1", "p1", flip(len(ct1) - 1), aad1},
		{"truncated", "t1", "p1", ct1[:len(ct1)-1], aad1},
		{"too short", "t1", "p1", ct1[:Overhead-1], aad1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := k.Open(ctx, tc.tenant, tc.patient, tc.ciphertext, tc.aadv)
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("open = %q, %v; want ErrDecrypt", pt, err)
			}
		})
	}
	// Every tampered position fails, not just the ones above.
	for i := range ct1 {
		if _, err := k.Open(ctx, "t1", "p1", flip(i), aad1); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
}

func TestIDsRequired(t *testing.T) {
	ctx := t.Context()
	k := testKeyring(t, testMaster(t, 1), newMemStore(), nil)
	for _, ids := range [][2]string{{"", "p"}, {"t", ""}, {"", ""}} {
		if _, err := k.Seal(ctx, ids[0], ids[1], nil, testAD()); err == nil {
			t.Errorf("Seal(%q, %q) accepted", ids[0], ids[1])
		}
		if err := k.Shred(ctx, ids[0], ids[1]); err == nil {
			t.Errorf("Shred(%q, %q) accepted", ids[0], ids[1])
		}
	}
	if _, err := k.BlindIndex(ctx, "", "bsn", "1"); err == nil {
		t.Error("BlindIndex without tenant accepted")
	}
	if _, err := NewKeyring(Config{Store: newMemStore()}); err == nil {
		t.Error("keyring without master accepted")
	}
}

type sealed struct {
	tenant, patient string
	aad             AD
	ct, pt          []byte
}

func sealSome(t *testing.T, k *Keyring, tenants []string, patients int) []sealed {
	t.Helper()
	var out []sealed
	for _, tn := range tenants {
		for i := range patients {
			p := fmt.Sprintf("p%03d", i)
			pt := []byte("data of " + tn + "/" + p)
			aad := recordAAD(tn, p, "obs", 1)
			ct, err := k.Seal(t.Context(), tn, p, pt, aad)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, sealed{tn, p, aad, ct, pt})
		}
	}
	return out
}

func openAll(t *testing.T, k *Keyring, all []sealed) {
	t.Helper()
	for _, s := range all {
		pt, err := k.Open(t.Context(), s.tenant, s.patient, s.ct, s.aad)
		if err != nil || !bytes.Equal(pt, s.pt) {
			t.Fatalf("open %s/%s = %q, %v", s.tenant, s.patient, pt, err)
		}
	}
}

// Rotating the master re-wraps tenant keys only; afterwards the old master
// key can be dropped and everything still opens.
// REQ: DP-1
func TestRotateMaster(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		oldOnly := testMaster(t, 1)
		k1 := testKeyring(t, oldOnly, s, nil)
		data := sealSome(t, k1, []string{"t1", "t2", "t3"}, 3)
		idx, _ := k1.BlindIndex(ctx, "t1", "bsn", "999990019")

		newOnly := testMaster(t, 2)
		if _, err := testKeyring(t, newOnly, s, nil).Open(ctx, "t1", "p000", data[0].ct, data[0].aad); err == nil {
			t.Fatal("a master without the old key opened data before rotation")
		}

		// Serving continues during rotation: a keyring holding both keys
		// reads old wraps before, and new wraps after.
		both := testMaster(t, 2, 1)
		k2 := testKeyring(t, both, s, nil)
		openAll(t, k2, data)
		n, err := k2.RotateMaster(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Fatalf("re-wrapped %d tenant keys, want 3", n)
		}
		if left, _ := s.TenantKEKsNotUnder(ctx, newOnly.ID(), 10); len(left) != 0 {
			t.Fatalf("tenant keys still under another master: %+v", left)
		}
		if n, err := k2.RotateMaster(ctx); n != 0 || err != nil {
			t.Fatalf("second rotation = %d, %v", n, err)
		}
		// k1 still has the keys cached and keeps serving.
		openAll(t, k1, data)

		// Drop the old master key.
		k3 := testKeyring(t, newOnly, s, nil)
		openAll(t, k3, data)
		if got, _ := k3.BlindIndex(ctx, "t1", "bsn", "999990019"); !bytes.Equal(got, idx) {
			t.Fatal("blind index changed by master rotation")
		}
		more := sealSome(t, k3, []string{"t1", "t4"}, 1)
		openAll(t, testKeyring(t, newOnly, s, nil), more)
	})
}

// A master key missing from the source stops rotation with an error that
// names it, instead of skipping tenants.
func TestRotateMasterNeedsOldKey(t *testing.T) {
	ctx := t.Context()
	s := newMemStore()
	sealSome(t, testKeyring(t, testMaster(t, 1), s, nil), []string{"t1"}, 1)
	_, err := testKeyring(t, testMaster(t, 2), s, nil).RotateMaster(ctx)
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("rotation without the old key: %v", err)
	}
}

// Tenant rotation re-wraps patient keys under a new KEK version, keeps
// everything readable, deletes unreferenced old versions and leaves other
// tenants alone.
// REQ: DP-1
func TestRotateTenant(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		m := testMaster(t, 1)
		k1 := testKeyring(t, m, s, nil)
		// More patients than one rotation batch.
		data := sealSome(t, k1, []string{"t1"}, batch+20)
		other := sealSome(t, k1, []string{"t2"}, 2)
		idx, _ := k1.BlindIndex(ctx, "t1", "bsn", "999990019")
		if err := k1.Shred(ctx, "t1", "p001"); err != nil {
			t.Fatal(err)
		}

		k2 := testKeyring(t, m, s, nil)
		n, err := k2.RotateTenant(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		if want := batch + 20 - 1 + 1; n != want { // minus the shredded, plus the index key
			t.Fatalf("re-wrapped %d keys, want %d", n, want)
		}
		ks, _ := s.TenantKEKs(ctx, "t1")
		if len(ks) != 1 || ks[0].Version != 2 {
			t.Fatalf("t1 KEKs after rotation: %+v", ks)
		}
		if ks, _ := s.TenantKEKs(ctx, "t2"); len(ks) != 1 || ks[0].Version != 1 {
			t.Fatalf("t2 KEKs touched: %+v", ks)
		}
		live := append([]sealed{}, data[:1]...)
		live = append(live, data[2:]...)
		// Readable by the keyring that cached the old KEK, the rotating one
		// and a fresh one.
		for _, k := range []*Keyring{k1, k2, testKeyring(t, m, s, nil)} {
			openAll(t, k, live)
			openAll(t, k, other)
		}
		if _, err := testKeyring(t, m, s, nil).Open(ctx, "t1", "p001", data[1].ct, data[1].aad); !errors.Is(err, ErrShredded) {
			t.Fatalf("shredded patient after rotation: %v", err)
		}
		if got, _ := testKeyring(t, m, s, nil).BlindIndex(ctx, "t1", "bsn", "999990019"); !bytes.Equal(got, idx) {
			t.Fatal("blind index changed by tenant rotation")
		}
		// New patients get keys under the new version, and rotating again works.
		newer := sealSome(t, k1, []string{"t1-new"}, 1)
		for i := range newer {
			newer[i].tenant = "t1"
			newer[i].patient = "new"
			newer[i].ct, err = k1.Seal(ctx, "t1", "new", newer[i].pt, newer[i].aad)
			if err != nil {
				t.Fatal(err)
			}
		}
		if d, _ := s.PatientDEK(ctx, "t1", newer[0].patient); d.KEKVersion != 2 {
			t.Fatalf("new patient key under version %d, want 2", d.KEKVersion)
		}
		if _, err := k1.RotateTenant(ctx, "t1"); err != nil {
			t.Fatal(err)
		}
		openAll(t, testKeyring(t, m, s, nil), append(live, newer...))
		if n, err := k1.RotateTenant(ctx, "unknown"); n != 0 || err != nil {
			t.Fatalf("rotating a tenant without keys = %d, %v", n, err)
		}
	})
}

// An old KEK version stays while a patient key still references it, e.g.
// one created by another replica during the rotation.
// REQ: DP-1
func TestRotateTenantKeepsReferencedVersion(t *testing.T) {
	ctx := t.Context()
	s := newMemStore()
	m := testMaster(t, 1)
	k := testKeyring(t, m, s, nil)
	data := sealSome(t, k, []string{"t1"}, 1)
	// A store that, like a slow replica, adds a patient key under version 1
	// after the rotation has re-wrapped all keys it could find.
	late := &lateInsertStore{memStore: s, k: k}
	k2 := testKeyring(t, m, late, nil)
	if _, err := k2.RotateTenant(ctx, "t1"); err != nil || late.err != nil {
		t.Fatal(err, late.err)
	}
	ks, _ := s.TenantKEKs(ctx, "t1")
	if len(ks) != 2 || len(late.sealed) != 1 {
		t.Fatalf("KEK versions after rotation with a late key: %+v", ks)
	}
	openAll(t, testKeyring(t, m, s, nil), append(data, late.sealed...))
	// The next rotation moves it and deletes both old versions.
	if _, err := testKeyring(t, m, s, nil).RotateTenant(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if ks, _ := s.TenantKEKs(ctx, "t1"); len(ks) != 1 || ks[0].Version != 3 {
		t.Fatalf("KEK versions after second rotation: %+v", ks)
	}
	openAll(t, testKeyring(t, m, s, nil), append(data, late.sealed...))
}

type lateInsertStore struct {
	*memStore
	k      *Keyring
	once   sync.Once
	sealed []sealed
	err    error
}

func (l *lateInsertStore) DeleteTenantKEK(ctx context.Context, tenantID string, v int) error {
	l.once.Do(func() {
		// Wrap a new patient key under version 1 directly, as a replica
		// that read the KEK list before the rotation would.
		kk, err := l.k.kekVersion(ctx, tenantID, 1)
		if err != nil {
			l.err = err
			return
		}
		raw := bytes.Repeat([]byte{9}, 32)
		w, _ := l.k.wrapDEK(kk, tenantID, "late", raw)
		if l.err = l.memStore.PutPatientDEK(ctx, PatientDEK{TenantID: tenantID, PatientID: "late", KEKVersion: 1, Wrapped: w}); l.err != nil {
			return
		}
		e, _ := newDEKEntry(cacheKey{tenant: tenantID, patient: "late"}, raw)
		aad := recordAAD(tenantID, "late", "obs", 1)
		l.sealed = append(l.sealed, sealed{tenantID, "late", aad, sealWith(e.aead, e.id, make([]byte, nonceSize), []byte("late"), aad), []byte("late")})
	})
	return l.memStore.DeleteTenantKEK(ctx, tenantID, v)
}

// Shredding one patient makes their data unreadable for good and leaves
// other patients readable; the patient can get no new key.
// REQ: DP-1
func TestShred(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		m := testMaster(t, 1)
		k := testKeyring(t, m, s, nil)
		data := sealSome(t, k, []string{"t1", "t2"}, 3)
		if err := k.Shred(ctx, "t1", "p001"); err != nil {
			t.Fatal(err)
		}
		if err := k.Shred(ctx, "t1", "p001"); err != nil {
			t.Fatalf("second shred: %v", err)
		}
		for _, r := range []*Keyring{k, testKeyring(t, m, s, nil)} {
			for _, d := range data {
				pt, err := r.Open(ctx, d.tenant, d.patient, d.ct, d.aad)
				if d.tenant == "t1" && d.patient == "p001" {
					if !errors.Is(err, ErrShredded) {
						t.Fatalf("open shredded = %q, %v", pt, err)
					}
					continue
				}
				if err != nil || !bytes.Equal(pt, d.pt) {
					t.Fatalf("open %s/%s after shredding another = %q, %v", d.tenant, d.patient, pt, err)
				}
			}
			if _, err := r.Seal(ctx, "t1", "p001", []byte("new"), testAD()); !errors.Is(err, ErrShredded) {
				t.Fatalf("seal for shredded patient: %v", err)
			}
		}
		// Same patient id at another tenant is a different person.
		if _, err := k.Seal(ctx, "t2", "p001", []byte("x"), testAD()); err != nil {
			t.Fatal(err)
		}
		// Shredding a patient who never had data also blocks new keys.
		if err := k.Shred(ctx, "t1", "never"); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Seal(ctx, "t1", "never", []byte("x"), testAD()); !errors.Is(err, ErrShredded) {
			t.Fatalf("seal after shredding a patient without key: %v", err)
		}
	})
}

// Another replica may use a cached key after a shred for at most the cache
// TTL; after that it gets ErrShredded too.
// REQ: DP-1
func TestShredOtherReplicaWithinTTL(t *testing.T) {
	ctx := t.Context()
	s := newMemStore()
	m := testMaster(t, 1)
	c := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	a := testKeyring(t, m, s, c)
	b := testKeyring(t, m, s, c)
	d := sealSome(t, a, []string{"t1"}, 1)[0]
	if _, err := b.Open(ctx, d.tenant, d.patient, d.ct, d.aad); err != nil {
		t.Fatal(err)
	}
	if err := a.Shred(ctx, d.tenant, d.patient); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Open(ctx, d.tenant, d.patient, d.ct, d.aad); !errors.Is(err, ErrShredded) {
		t.Fatalf("shredding replica: %v", err)
	}
	c.Advance(29 * time.Second)
	if _, err := b.Open(ctx, d.tenant, d.patient, d.ct, d.aad); err != nil {
		t.Fatalf("other replica within TTL: %v (the documented bound is the TTL, not sooner)", err)
	}
	c.Advance(time.Second)
	if _, err := b.Open(ctx, d.tenant, d.patient, d.ct, d.aad); !errors.Is(err, ErrShredded) {
		t.Fatalf("other replica after TTL: %v", err)
	}
}

// REQ: DP-1
func TestBlindIndex(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		m := testMaster(t, 1)
		k := testKeyring(t, m, s, nil)
		get := func(k *Keyring, tenant, kind, value string) []byte {
			t.Helper()
			b, err := k.BlindIndex(ctx, tenant, kind, value)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != 32 {
				t.Fatalf("index is %d bytes", len(b))
			}
			return b
		}
		a := get(k, "t1", "bsn", "999990019")
		if !bytes.Equal(a, get(testKeyring(t, m, s, nil), "t1", "bsn", "999990019")) {
			t.Fatal("not deterministic across keyrings")
		}
		for name, other := range map[string][]byte{
			"other tenant": get(k, "t2", "bsn", "999990019"),
			"other value":  get(k, "t1", "bsn", "999990020"),
			"other kind":   get(k, "t1", "agb", "999990019"),
		} {
			if bytes.Equal(a, other) {
				t.Errorf("%s gives the same index", name)
			}
		}
		if bytes.Contains(a, []byte("999990019")) {
			t.Fatal("value visible in index")
		}
	})
}

// Many requests sealing for one new patient at once, through one keyring
// and through several (replicas), end with exactly one tenant key and one
// patient key, and everything they sealed opens.
// REQ: DP-1
func TestConcurrentFirstSeal(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		m := testMaster(t, 1)
		rings := []*Keyring{testKeyring(t, m, s, nil), testKeyring(t, m, s, nil), testKeyring(t, m, s, nil)}
		const n = 24
		cts := make([][]byte, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r := rings[i%len(rings)]
				aad := recordAAD("t1", "p1", fmt.Sprint(i), 1)
				ct, err := r.Seal(ctx, "t1", "p1", []byte(fmt.Sprint(i)), aad)
				if err != nil {
					t.Error(err)
					return
				}
				cts[i] = ct
				if pt, err := r.Open(ctx, "t1", "p1", ct, aad); err != nil || string(pt) != fmt.Sprint(i) {
					t.Errorf("open right after seal = %q, %v", pt, err)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		if ks, _ := s.TenantKEKs(ctx, "t1"); len(ks) != 1 {
			t.Fatalf("%d tenant keys", len(ks))
		}
		for i, ct := range cts {
			if !bytes.Equal(ct[1:headerSize], cts[0][1:headerSize]) {
				t.Fatalf("ciphertext %d sealed under another patient key", i)
			}
		}
		fresh := testKeyring(t, m, s, nil)
		for i, ct := range cts {
			if pt, err := fresh.Open(ctx, "t1", "p1", ct, recordAAD("t1", "p1", fmt.Sprint(i), 1)); err != nil || string(pt) != fmt.Sprint(i) {
				t.Fatalf("open %d = %q, %v", i, pt, err)
			}
		}
	})
}

// Concurrent sealing, opening, shredding and rotating never corrupt keys.
// REQ: DP-1
func TestConcurrentUseDuringRotation(t *testing.T) {
	ctx := t.Context()
	s := newMemStore()
	m := testMaster(t, 1)
	k := testKeyring(t, m, s, nil)
	data := sealSome(t, k, []string{"t1"}, 20)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			r := testKeyring(t, m, s, nil)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				d := data[(i+w)%len(data)]
				if pt, err := r.Open(ctx, d.tenant, d.patient, d.ct, d.aad); err != nil || !bytes.Equal(pt, d.pt) {
					t.Errorf("open during rotation = %q, %v", pt, err)
					return
				}
				p := fmt.Sprintf("w%d-%d", w, i%50)
				if _, err := r.Seal(ctx, "t1", p, []byte("x"), testAD()); err != nil {
					t.Errorf("seal during rotation: %v", err)
					return
				}
			}
		})
	}
	for range 5 {
		if _, err := k.RotateTenant(ctx, "t1"); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	openAll(t, testKeyring(t, m, s, nil), data)
}
