package keys

import (
	"bytes"
	"crypto/cipher"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"testing"
)

type vectorFile struct {
	Data []struct {
		Name, Key, Nonce, AAD, Plaintext, Ciphertext string
		KeyID                                        string `json:"key_id"`
	}
	Invalid []struct {
		Name, Key, AAD, Ciphertext string
	}
	AAD []struct {
		Parts   []string
		Encoded string
	}
	Fingerprints []struct{ Label, Key, ID string }
	KEKWrap      struct {
		Tenant, Nonce, KEK, Wrapped string
		MasterKey                   string `json:"master_key"`
		Version                     int
	} `json:"kek_wrap"`
	DEKWrap struct {
		KEK, Tenant, Patient, Nonce, DEK, Wrapped string
		KEKVersion                                int `json:"kek_version"`
	} `json:"dek_wrap"`
	BlindIndex []struct{ Key, Kind, Value, Index string } `json:"blind_index"`
}

func loadVectors(t *testing.T) vectorFile {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Data) == 0 || len(v.Invalid) == 0 || len(v.AAD) == 0 || len(v.BlindIndex) == 0 {
		t.Fatal("testdata/vectors.json is missing vectors")
	}
	return v
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustAEAD(t testing.TB, key []byte) cipher.AEAD {
	t.Helper()
	a, err := newAEAD(key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// The vectors come from an independent implementation (testdata/vectors.py);
// sealing them must give the same bytes and opening them the same plaintext.
// REQ: DP-1
func TestVectorsData(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.Data {
		t.Run(tc.Name, func(t *testing.T) {
			key := unhex(t, tc.Key)
			var id keyID
			copy(id[:], unhex(t, tc.KeyID))
			if got := dekID(key); got != id {
				t.Fatalf("dekID = %x, want %x", got, id)
			}
			a := mustAEAD(t, key)
			got := sealV1(a, id, unhex(t, tc.Nonce), unhex(t, tc.Plaintext), unhex(t, tc.AAD))
			if want := unhex(t, tc.Ciphertext); !bytes.Equal(got, want) {
				t.Fatalf("seal:\n got %x\nwant %x", got, want)
			}
			pt, err := openV1(a, got, unhex(t, tc.AAD))
			if err != nil || !bytes.Equal(pt, unhex(t, tc.Plaintext)) {
				t.Fatalf("open = %x, %v", pt, err)
			}
		})
	}
}

// REQ: DP-1
func TestVectorsInvalid(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.Invalid {
		t.Run(tc.Name, func(t *testing.T) {
			a := mustAEAD(t, unhex(t, tc.Key))
			pt, err := openV1(a, unhex(t, tc.Ciphertext), unhex(t, tc.AAD))
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("open = %x, %v; want ErrDecrypt", pt, err)
			}
		})
	}
}

// REQ: DP-1
func TestVectorsKeyHierarchy(t *testing.T) {
	v := loadVectors(t)
	for _, f := range v.Fingerprints {
		if got := fingerprint(f.Label, unhex(t, f.Key)); hex.EncodeToString(got[:]) != f.ID {
			t.Errorf("fingerprint(%q) = %x, want %s", f.Label, got, f.ID)
		}
	}
	for _, a := range v.AAD {
		if got := hex.EncodeToString(lengthPrefixed(a.Parts...)); got != a.Encoded {
			t.Errorf("AAD(%q) = %s, want %s", a.Parts, got, a.Encoded)
		}
	}

	kw := v.KEKWrap
	m, err := newLocalMaster("test", bytes.NewReader(unhex(t, kw.Nonce)), unhex(t, kw.MasterKey))
	if err != nil {
		t.Fatal(err)
	}
	// The vector is format 1: seal it that way, and open it as any tenant
	// key is opened now.
	master := unhex(t, kw.MasterKey)
	wrapped := sealV1(mustAEAD(t, master), masterID(master), unhex(t, kw.Nonce), unhex(t, kw.KEK),
		lengthPrefixed(labelTenantKEKv1, kw.Tenant, strconv.Itoa(kw.Version)))
	if want := unhex(t, kw.Wrapped); !bytes.Equal(wrapped, want) {
		t.Fatalf("tenant key wrap:\n got %x\nwant %x", wrapped, want)
	}
	if raw, err := m.Unwrap(t.Context(), wrapped, tenantKeyAD(kw.Tenant, kw.Version)); err != nil || !bytes.Equal(raw, unhex(t, kw.KEK)) {
		t.Fatalf("tenant key unwrap = %x, %v", raw, err)
	}
	if _, err := m.Unwrap(t.Context(), wrapped, tenantKeyAD(kw.Tenant, kw.Version+1)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("unwrap as another version: %v, want ErrDecrypt", err)
	}

	dw := v.DEKWrap
	got := sealV1(mustAEAD(t, unhex(t, dw.KEK)), versionID(dw.KEKVersion), unhex(t, dw.Nonce), unhex(t, dw.DEK),
		lengthPrefixed(labelPatientDEKv1, dw.Tenant, dw.Patient))
	if want := unhex(t, dw.Wrapped); !bytes.Equal(got, want) {
		t.Fatalf("patient key wrap:\n got %x\nwant %x", got, want)
	}
	if raw, err := openWith(mustAEAD(t, unhex(t, dw.KEK)), got, patientKeyAD(dw.Tenant, dw.Patient)); err != nil || !bytes.Equal(raw, unhex(t, dw.DEK)) {
		t.Fatalf("patient key unwrap = %x, %v", raw, err)
	}

	for _, b := range v.BlindIndex {
		if got := blindIndex(unhex(t, b.Key), b.Kind, b.Value); hex.EncodeToString(got) != b.Index {
			t.Errorf("blind index %s/%s = %x, want %s", b.Kind, b.Value, got, b.Index)
		}
	}
}

func TestAADIsUnambiguous(t *testing.T) {
	cases := [][2][]string{
		{{"ab", "c"}, {"a", "bc"}},
		{{"a", ""}, {"a"}},
		{{""}, {}},
		{{"t1", "p1"}, {"t1p1"}},
	}
	for _, c := range cases {
		if bytes.Equal(lengthPrefixed(c[0]...), lengthPrefixed(c[1]...)) {
			t.Errorf("lengthPrefixed(%q) == lengthPrefixed(%q)", c[0], c[1])
		}
	}
}

// sealV1 seals as format 1 did: the caller's associated data as raw bytes
// after the header. Nothing seals format 1 any more; the tests make old
// values with it.
func sealV1(aead cipher.AEAD, id keyID, nonce, plaintext, legacy []byte) []byte {
	out := make([]byte, headerSize+nonceSize, Overhead+len(plaintext))
	out[0] = formatV1
	copy(out[1:headerSize], id[:])
	copy(out[headerSize:], nonce)
	return aead.Seal(out, nonce, plaintext, append(out[:headerSize:headerSize], legacy...))
}

// openV1 opens ct with raw associated data after its header, as format 1
// was opened.
func openV1(aead cipher.AEAD, ct, legacy []byte) ([]byte, error) {
	if len(ct) < headerSize {
		return openAdditional(aead, ct, nil)
	}
	return openAdditional(aead, ct, append(ct[:headerSize:headerSize], legacy...))
}
