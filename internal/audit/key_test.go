package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// The checkpoint key lives in a file of its own (never the database),
// created with mode 0600 on first start and refused when its mode is looser.
// REQ: LOG-2
func TestSigningKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys", "audit.key")
	s1, vkey1, err := LoadOrCreateSigner(path, "zorgkluis.example/audit")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if !strings.HasPrefix(vkey1, "zorgkluis.example/audit+") {
		t.Fatalf("verifier key %q does not name the key", vkey1)
	}
	// A second start loads the same key, whatever name it is given.
	s2, vkey2, err := LoadOrCreateSigner(path, "other")
	if err != nil || vkey2 != vkey1 || s2.KeyHash() != s1.KeyHash() || s2.Name() != s1.Name() {
		t.Fatalf("reload = %q, %v; want the same key %q", vkey2, err, vkey1)
	}
	// The exported verifier key checks what the signer signs.
	v, err := note.NewVerifier(vkey1)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: "hello\n"}, s1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Fatalf("verifier key does not check the signer's note: %v", err)
	}
	// Nothing secret in the verifier key.
	raw, _ := os.ReadFile(path)
	if strings.Contains(vkey1, strings.SplitN(strings.TrimSpace(string(raw)), "+", 5)[4]) {
		t.Fatal("verifier key contains the private key")
	}

	for _, mode := range []os.FileMode{0o640, 0o604, 0o666} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadOrCreateSigner(path, "x")
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: err = %v; want a refusal that says chmod 600", mode, err)
		}
		if err != nil && strings.Contains(err.Error(), "PRIVATE") {
			t.Errorf("error leaks the key: %v", err)
		}
	}
}

func TestSigningKeyFileRejectsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.key")
	if err := os.WriteFile(path, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateSigner(path, "x"); err == nil {
		t.Fatal("garbage key file accepted")
	}
}
