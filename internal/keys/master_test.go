package keys

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// REQ: DP-1
func TestMasterFileCreatedWithMode0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "master.key")
	m, err := LoadOrCreateMasterFile(path, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("mode %04o, want 0600", perm)
	}
	if len(m.ID()) != 16 {
		t.Fatalf("ID %q is not 16 hex characters", m.ID())
	}
	// The second start loads the same key.
	again, err := LoadOrCreateMasterFile(path, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID() != m.ID() {
		t.Fatalf("reloaded ID %s, want %s", again.ID(), m.ID())
	}
	w, err := m.Wrap(t.Context(), []byte("tenant key"), newAD("zorgkluis test", "aad"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := again.Unwrap(t.Context(), w, newAD("zorgkluis test", "aad")); err != nil || string(pt) != "tenant key" {
		t.Fatalf("unwrap after reload = %q, %v", pt, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the key file", len(entries))
	}
}

// REQ: DP-1
func TestMasterFileLooseModeRefused(t *testing.T) {
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660, 0o666, 0o700 | 0o070} {
		t.Run(mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "master.key")
			if _, err := LoadOrCreateMasterFile(path, rand.Reader); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateMasterFile(path, rand.Reader)
			if err == nil {
				t.Fatalf("mode %04o accepted", mode)
			}
			if !strings.Contains(err.Error(), "chmod 600 "+path) {
				t.Fatalf("error does not tell the operator what to do: %v", err)
			}
			if _, err := AddMasterKey(path, rand.Reader); err == nil {
				t.Fatal("AddMasterKey accepted a loose file")
			}
		})
	}
	// Owner-only modes stricter than 0600 are fine.
	path := filepath.Join(t.TempDir(), "master.key")
	if _, err := LoadOrCreateMasterFile(path, rand.Reader); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateMasterFile(path, rand.Reader); err != nil {
		t.Fatalf("mode 0400 refused: %v", err)
	}
}

// Two processes starting at once on an empty data directory end up with the
// same key.
func TestMasterFileConcurrentCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			m, err := LoadOrCreateMasterFile(path, rand.Reader)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = m.ID()
		})
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Fatalf("creators disagree: %q", ids)
		}
	}
}

// testdata/master-v1.keys is written by testdata/vectors.py: it pins the
// file format, and the current key is the one the kek_wrap vector uses.
// REQ: DP-1
func TestMasterFileFormatV1(t *testing.T) {
	b, err := os.ReadFile("testdata/master-v1.keys")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	v := loadVectors(t)
	m, err := LoadOrCreateMasterFile(path, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID() != v.Fingerprints[0].ID {
		t.Fatalf("current key %s, want %s", m.ID(), v.Fingerprints[0].ID)
	}
	kw := v.KEKWrap
	if raw, err := m.Unwrap(t.Context(), unhex(t, kw.Wrapped), tenantKeyAD(kw.Tenant, kw.Version)); err != nil || !bytes.Equal(raw, unhex(t, kw.KEK)) {
		t.Fatalf("unwrap vector = %x, %v", raw, err)
	}
	// The old key is held too.
	if _, ok := m.(*localMaster).keys[masterID(unhex(t, v.Fingerprints[1].Key))]; !ok {
		t.Fatal("old key not loaded")
	}
}

func TestMasterFileDamagedRefused(t *testing.T) {
	good, err := os.ReadFile("testdata/master-v1.keys")
	if err != nil {
		t.Fatal(err)
	}
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	id := masterID(bytes.Repeat([]byte{7}, 32))
	cases := map[string]string{
		"no header":          strings.Replace(string(good), "zorgkluis master keys v1\n", "", 1),
		"future version":     strings.Replace(string(good), "keys v1", "keys v2", 1),
		"no current key":     strings.Replace(string(good), "\ncurrent", "\nold    ", 1),
		"two current keys":   strings.Replace(string(good), "\nold    ", "\ncurrent", 1),
		"wrong fingerprint":  strings.Replace(string(good), "68382d4c9dd80005", "68382d4c9dd80006", 1),
		"short key":          "zorgkluis master keys v1\ncurrent 0000000000000000 AAAA\n",
		"unknown line kind":  "zorgkluis master keys v1\nnext " + hexID(id) + " " + key + "\ncurrent " + hexID(id) + " " + key + "\n",
		"duplicate key":      "zorgkluis master keys v1\ncurrent " + hexID(id) + " " + key + "\nold " + hexID(id) + " " + key + "\n",
		"missing key column": "zorgkluis master keys v1\ncurrent " + hexID(id) + "\n",
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "master.key")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateMasterFile(path, rand.Reader)
			if err == nil {
				t.Fatal("damaged file accepted")
			}
			if strings.Contains(err.Error(), key) {
				t.Fatalf("error repeats key material: %v", err)
			}
		})
	}
}

func hexID(id keyID) string { return hex.EncodeToString(id[:]) }

// AddMasterKey makes a new current key and keeps the old one for
// unwrapping; RemoveMasterKey drops the old one but never the current one.
// REQ: DP-1
func TestMasterFileAddAndRemove(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "master.key")
	m1, err := LoadOrCreateMasterFile(path, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	w1, err := m1.Wrap(ctx, []byte("k1"), testAD())
	if err != nil {
		t.Fatal(err)
	}
	newID, err := AddMasterKey(path, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := LoadOrCreateMasterFile(path, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if m2.ID() != newID || newID == m1.ID() {
		t.Fatalf("after AddMasterKey current is %s, AddMasterKey said %s, old was %s", m2.ID(), newID, m1.ID())
	}
	if pt, err := m2.Unwrap(ctx, w1, testAD()); err != nil || string(pt) != "k1" {
		t.Fatalf("old wrap after adding a key = %q, %v", pt, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("rewritten file has mode %04o", fi.Mode().Perm())
	}
	if err := RemoveMasterKey(path, newID); err == nil {
		t.Fatal("removed the current key")
	}
	if err := RemoveMasterKey(path, "0000000000000000"); err == nil {
		t.Fatal("removed an absent key")
	}
	if err := RemoveMasterKey(path, m1.ID()); err != nil {
		t.Fatal(err)
	}
	m3, err := LoadOrCreateMasterFile(path, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if m3.ID() != newID {
		t.Fatalf("current after removal %s, want %s", m3.ID(), newID)
	}
	_, err = m3.Unwrap(ctx, w1, testAD())
	if !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), m1.ID()) {
		t.Fatalf("unwrap under removed key: %v; want ErrDecrypt naming %s", err, m1.ID())
	}
}

// REQ: DP-1
func TestMasterFromEnv(t *testing.T) {
	k1 := bytes.Repeat([]byte{1}, 32)
	k2 := bytes.Repeat([]byte{2}, 32)
	b64 := base64.StdEncoding.EncodeToString
	m, err := MasterFromEnv(b64(k1))
	if err != nil {
		t.Fatal(err)
	}
	if id := masterID(k1); m.ID() != hexID(id) {
		t.Fatalf("ID %s, want %s", m.ID(), hexID(id))
	}
	w, err := m.Wrap(t.Context(), []byte("x"), newAD("zorgkluis test", "a"))
	if err != nil {
		t.Fatal(err)
	}
	// Rotation: new key first, old one after it.
	both, err := MasterFromEnv(" " + b64(k2) + " , " + b64(k1) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if both.ID() != hexID(masterID(k2)) {
		t.Fatal("the first key is not current")
	}
	if pt, err := both.Unwrap(t.Context(), w, newAD("zorgkluis test", "a")); err != nil || string(pt) != "x" {
		t.Fatalf("unwrap with the old key = %q, %v", pt, err)
	}

	for name, v := range map[string]string{
		"empty":     "",
		"not b64":   "not base64!",
		"16 bytes":  b64(k1[:16]),
		"33 bytes":  b64(append(k1, 0)),
		"duplicate": b64(k1) + "," + b64(k1),
		"empty 2nd": b64(k1) + ",",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := MasterFromEnv(v)
			if err == nil {
				t.Fatal("accepted")
			}
			if v != "" && strings.Contains(err.Error(), strings.TrimSuffix(v, ",")) {
				t.Fatalf("error repeats the value: %v", err)
			}
		})
	}
}

// Chain moves between master sources: wraps with the new one, unwraps with
// either.
func TestChain(t *testing.T) {
	ctx := t.Context()
	old, err := MasterFromEnv(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	cur, err := LoadOrCreateMasterFile(filepath.Join(t.TempDir(), "m"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := Chain(cur, old)
	if c.ID() != cur.ID() {
		t.Fatal("chain ID is not the current source's")
	}
	wOld, _ := old.Wrap(ctx, []byte("old"), testAD())
	wNew, err := c.Wrap(ctx, []byte("new"), testAD())
	if err != nil {
		t.Fatal(err)
	}
	for w, want := range map[string]string{string(wOld): "old", string(wNew): "new"} {
		if pt, err := c.Unwrap(ctx, []byte(w), testAD()); err != nil || string(pt) != want {
			t.Fatalf("chain unwrap = %q, %v; want %q", pt, err, want)
		}
	}
	if _, err := old.Unwrap(ctx, wNew, testAD()); err == nil {
		t.Fatal("chain wrapped with the old source")
	}
	if _, err := c.Unwrap(ctx, wNew, newAD("zorgkluis test", "other")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong aad through chain: %v", err)
	}
}
