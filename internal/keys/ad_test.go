package keys

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"
)

type adVector struct {
	Name, Key, Nonce, Purpose, AD, Additional, Plaintext, Ciphertext string
	KeyID                                                            string `json:"key_id"`
	Fields                                                           []string
}

type adVectorFile struct {
	Sealed  []adVector
	Legacy  []adVector
	Invalid []adVector
}

func loadADVectors(t *testing.T) adVectorFile {
	t.Helper()
	b, err := os.ReadFile("testdata/ad-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v adVectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Sealed) < 4 || len(v.Legacy) != len(v.Sealed) || len(v.Invalid) == 0 {
		t.Fatal("testdata/ad-vectors.json is missing vectors")
	}
	return v
}

// adFor builds a vector's AD through the constructor of its purpose.
func adFor(t *testing.T, purpose string, f []string) AD {
	t.Helper()
	switch purpose {
	case labelResource:
		v, err := strconv.ParseInt(f[4], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return ResourceAD(f[0], f[1], f[2], f[3], v)
	case labelTOTPSecret:
		return TOTPSecretAD(f[0])
	case labelTenantKey:
		v, err := strconv.Atoi(f[1])
		if err != nil {
			t.Fatal(err)
		}
		return tenantKeyAD(f[0], v)
	case labelPatientKey:
		return patientKeyAD(f[0], f[1])
	}
	t.Fatalf("vector of unknown purpose %q", purpose)
	return AD{}
}

// Format 2 as an independent implementation (testdata/vectors.py) computes
// it: the AD encoding, the complete GCM additional data and the ciphertext
// of every purpose.
// REQ: DP-1
func TestADVectors(t *testing.T) {
	for _, tc := range loadADVectors(t).Sealed {
		t.Run(tc.Name, func(t *testing.T) {
			ad := adFor(t, tc.Purpose, tc.Fields)
			enc, err := ad.MarshalBinary()
			if err != nil || hex.EncodeToString(enc) != tc.AD {
				t.Fatalf("MarshalBinary = %x, %v\nwant %s", enc, err, tc.AD)
			}
			var id keyID
			copy(id[:], unhex(t, tc.KeyID))
			header := append([]byte{formatV2}, id[:]...)
			if add, ok := ad.additional(header); !ok || hex.EncodeToString(add) != tc.Additional {
				t.Fatalf("additional data = %x\nwant %s", add, tc.Additional)
			}
			a := mustAEAD(t, unhex(t, tc.Key))
			got := sealWith(a, id, unhex(t, tc.Nonce), unhex(t, tc.Plaintext), ad)
			if want := unhex(t, tc.Ciphertext); !bytes.Equal(got, want) {
				t.Fatalf("seal:\n got %x\nwant %x", got, want)
			}
			if pt, err := openWith(a, got, ad); err != nil || !bytes.Equal(pt, unhex(t, tc.Plaintext)) {
				t.Fatalf("open = %x, %v", pt, err)
			}
			if tc.Purpose == labelTOTPSecret || tc.Purpose == labelTenantKey {
				// Sealed under a master key: Wrap gives the same bytes.
				m, err := newLocalMaster("test", bytes.NewReader(unhex(t, tc.Nonce)), unhex(t, tc.Key))
				if err != nil {
					t.Fatal(err)
				}
				w, err := m.Wrap(t.Context(), unhex(t, tc.Plaintext), ad)
				if err != nil || !bytes.Equal(w, got) {
					t.Fatalf("Wrap = %x, %v\nwant %x", w, err, got)
				}
			}
		})
	}
}

// Values sealed before format 2 (format 1, each purpose with its own
// associated-data layout) still open with the AD of their purpose.
// REQ: DP-1
func TestADLegacyVectorsOpen(t *testing.T) {
	for _, tc := range loadADVectors(t).Legacy {
		t.Run(tc.Name, func(t *testing.T) {
			ad := adFor(t, tc.Purpose, tc.Fields)
			ct := unhex(t, tc.Ciphertext)
			if ct[0] != formatV1 {
				t.Fatalf("legacy vector has format %d", ct[0])
			}
			if add, ok := ad.additional(ct[:headerSize]); !ok || hex.EncodeToString(add) != tc.Additional {
				t.Fatalf("format 1 additional data = %x\nwant %s", add, tc.Additional)
			}
			if pt, err := openWith(mustAEAD(t, unhex(t, tc.Key)), ct, ad); err != nil || !bytes.Equal(pt, unhex(t, tc.Plaintext)) {
				t.Fatalf("open = %x, %v", pt, err)
			}
		})
	}
}

// REQ: DP-1
func TestADInvalidVectors(t *testing.T) {
	for _, tc := range loadADVectors(t).Invalid {
		t.Run(tc.Name, func(t *testing.T) {
			ad := adFor(t, tc.Purpose, tc.Fields)
			if pt, err := openWith(mustAEAD(t, unhex(t, tc.Key)), unhex(t, tc.Ciphertext), ad); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("open = %x, %v; want ErrDecrypt", pt, err)
			}
		})
	}
}

// A keyring over a store written before format 2 (tenant key, patient key
// and record body all format 1) opens the old body, while what it seals now
// is format 2.
// REQ: DP-1
func TestOldSealedValuesStillOpen(t *testing.T) {
	ctx := t.Context()
	masterKey := bytes.Repeat([]byte{7}, 32)
	m := testMaster(t, 7)
	kekRaw, dekRaw := bytes.Repeat([]byte{8}, 32), bytes.Repeat([]byte{9}, 32)
	nonce := make([]byte, nonceSize)
	s := newMemStore()
	now := time.Unix(1700000000, 0)
	if err := s.PutTenantKEK(ctx, TenantKEK{TenantID: "t1", Version: 1, MasterID: m.ID(), Created: now,
		Wrapped: sealV1(mustAEAD(t, masterKey), masterID(masterKey), nonce, kekRaw, lengthPrefixed(labelTenantKEKv1, "t1", "1"))}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPatientDEK(ctx, PatientDEK{TenantID: "t1", PatientID: "p1", KEKVersion: 1, Created: now,
		Wrapped: sealV1(mustAEAD(t, kekRaw), versionID(1), nonce, dekRaw, lengthPrefixed(labelPatientDEKv1, "t1", "p1"))}); err != nil {
		t.Fatal(err)
	}
	// What internal/record passed as associated data before format 2.
	oldBody := sealV1(mustAEAD(t, dekRaw), dekID(dekRaw), nonce, []byte(`{"resourceType":"Observation"}`),
		[]byte("zk-resource\x00t1\x00p1\x00Observation/obs-1\x003"))

	k := testKeyring(t, m, s, nil)
	pt, err := k.Open(ctx, "t1", "p1", oldBody, ResourceAD("t1", "p1", "Observation", "obs-1", 3))
	if err != nil || string(pt) != `{"resourceType":"Observation"}` {
		t.Fatalf("open old body = %q, %v", pt, err)
	}
	if _, err := k.Open(ctx, "t1", "p1", oldBody, ResourceAD("t1", "p1", "Observation", "obs-1", 4)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("old body as another version: %v, want ErrDecrypt", err)
	}
	ct, err := k.Seal(ctx, "t1", "p1", []byte("new"), ResourceAD("t1", "p1", "Observation", "obs-1", 4))
	if err != nil || ct[0] != formatV2 {
		t.Fatalf("new seal = %x, %v; want format 2", ct, err)
	}
	if pt, err := k.Open(ctx, "t1", "p1", ct, ResourceAD("t1", "p1", "Observation", "obs-1", 4)); err != nil || string(pt) != "new" {
		t.Fatalf("open new body = %q, %v", pt, err)
	}

	// A TOTP secret as internal/authn wrapped it before format 2.
	oldTOTP := sealV1(mustAEAD(t, masterKey), masterID(masterKey), nonce, []byte("JBSWY3DPEHPK3PXP"), []byte("totp:acc-1"))
	if pt, err := m.Unwrap(ctx, oldTOTP, TOTPSecretAD("acc-1")); err != nil || string(pt) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("unwrap old TOTP secret = %q, %v", pt, err)
	}
	if _, err := m.Unwrap(ctx, oldTOTP, TOTPSecretAD("acc-2")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("old TOTP secret of another account: %v, want ErrDecrypt", err)
	}
}

// Every purpose's AD differs from every other's, field boundaries count, and
// nothing is sealed without a purpose.
// REQ: DP-1
func TestADIsUnambiguous(t *testing.T) {
	ads := []AD{
		ResourceAD("t1", "p1", "Observation", "o1", 1),
		ResourceAD("t1", "p1", "Observation", "o1", 12),
		ResourceAD("t1", "p1", "Observation", "o11", 2),
		ResourceAD("t1p1", "", "Observation", "o1", 1),
		TOTPSecretAD("t1"),
		tenantKeyAD("t1", 1),
		patientKeyAD("t1", "1"),
	}
	seen := map[string]int{}
	for i, ad := range ads {
		b, err := ad.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if j, dup := seen[string(b)]; dup {
			t.Errorf("AD %d and %d encode the same: %x", j, i, b)
		}
		seen[string(b)] = i
	}
	if _, err := (AD{}).MarshalBinary(); err == nil {
		t.Error("the zero AD has an encoding")
	}
	k := testKeyring(t, testMaster(t, 1), newMemStore(), nil)
	if _, err := k.Seal(t.Context(), "t1", "p1", []byte("x"), AD{}); err == nil {
		t.Error("Seal without a purpose succeeded")
	}
	if _, err := testMaster(t, 1).Wrap(t.Context(), []byte("x"), AD{}); err == nil {
		t.Error("Wrap without a purpose succeeded")
	}
}
