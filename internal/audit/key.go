package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// LoadOrCreateSigner loads the checkpoint signing key from path, creating a
// new Ed25519 key named name there (mode 0600) when the file does not exist.
// It refuses a key file that group or others may read. The key never goes
// into the database: a database thief can then not forge checkpoints.
//
// It returns the signer and the verifier key (note format
// "<name>+<hash>+<base64 key>"), which is public: give it to auditors so
// they can check checkpoints and proofs offline. An existing key keeps the
// name it was created with.
func LoadOrCreateSigner(path, name string) (note.Signer, string, error) {
	skey, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		skey, err = createKeyFile(path, name)
	}
	if err != nil {
		return nil, "", err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("checkpoint key %s: %w", path, err)
	}
	vkey, err := verifierKey(skey)
	if err != nil {
		return nil, "", fmt.Errorf("checkpoint key %s: %w", path, err)
	}
	return signer, vkey, nil
}

func readKeyFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("checkpoint key %s has mode %04o; it must be readable by its owner only (chmod 600 %s)", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("checkpoint key: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// createKeyFile writes a new key next to path and links it into place, so a
// concurrent starter either sees no file or a complete one, and two starters
// never overwrite each other's key.
func createKeyFile(path, name string) (string, error) {
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", fmt.Errorf("generate checkpoint key %q: %w", name, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("checkpoint key directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".audit-key-*")
	if err != nil {
		return "", fmt.Errorf("create checkpoint key: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err == nil {
		_, err = f.WriteString(skey + "\n")
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("write checkpoint key: %w", err)
		}
	} else {
		f.Close()
		return "", fmt.Errorf("create checkpoint key: %w", err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKeyFile(path) // another process won the race
		}
		return "", fmt.Errorf("install checkpoint key: %w", err)
	}
	return skey, nil
}

// verifierKey derives the public verifier key from a note signer key
// ("PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>").
func verifierKey(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("malformed signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", errors.New("signer key is not an Ed25519 key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}

// ErrNoKey means there is no checkpoint signing key file yet; the server
// creates it on its first start.
var ErrNoKey = errors.New("no checkpoint signing key yet")

// LoadVerifierKey returns the public verifier key of the signing key file at
// path, without creating a key when there is none (ErrNoKey).
func LoadVerifierKey(path string) (string, error) {
	skey, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: %s does not exist", ErrNoKey, path)
	}
	if err != nil {
		return "", err
	}
	vkey, err := verifierKey(skey)
	if err != nil {
		return "", fmt.Errorf("checkpoint key %s: %w", path, err)
	}
	return vkey, nil
}
