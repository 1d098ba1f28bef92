package keys

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Master key file, version 1: text, one key a line, the current key first.
//
//	# comment lines and blank lines are ignored
//	zorgkluis master keys v1
//	current <fingerprint> <base64 of 32 bytes>
//	old     <fingerprint> <base64 of 32 bytes>
//
// The fingerprint is Master.ID of that key; it is checked on load, so a
// damaged line is refused instead of silently wrapping under a wrong key.
// Exactly one line is "current"; "old" keys are kept only to unwrap tenant
// keys that RotateMaster has not re-wrapped yet.
//
// Rotation with several replicas: AddMasterKey on one machine, copy the file
// to every replica and restart them, run `zorgkluis keys rotate` (which calls
// Keyring.RotateMaster), then RemoveMasterKey the old key and copy the file
// again. Until every replica has the new file, a replica still on the old
// file cannot unwrap tenant keys created by an updated one, so roll the
// file out promptly.
const masterFileHeader = "zorgkluis master keys v1"

// LoadOrCreateMasterFile loads the master keys from path, creating the file
// with one new key from rnd (mode 0600) when it does not exist. It refuses a
// file that its group or others may read or write. rnd also supplies the
// nonces for wrapping and must be safe for concurrent use (crypto/rand.Reader).
func LoadOrCreateMasterFile(path string, rnd io.Reader) (Master, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	m, err := loadMasterFile(path, rnd)
	if !errors.Is(err, fs.ErrNotExist) {
		return m, err
	}
	key := make([]byte, keySize)
	if _, err := io.ReadFull(rnd, key); err != nil {
		return nil, fmt.Errorf("keys: generate master key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("keys: create directory for master key file: %w", err)
	}
	// Write a temporary file and link it into place: a process starting at
	// the same moment sees either no file or a whole one, and exactly one
	// creator wins.
	tmp, err := writeTemp(path, formatMasterFile([][]byte{key}))
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("keys: create master key file %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return loadMasterFile(path, rnd)
}

// AddMasterKey generates a new master key from rnd, makes it current in the
// file at path and keeps the previous keys as old ones. It returns the new
// key's fingerprint. The file is replaced atomically.
func AddMasterKey(path string, rnd io.Reader) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	keys, err := readMasterFile(path)
	if err != nil {
		return "", err
	}
	key := make([]byte, keySize)
	if _, err := io.ReadFull(rnd, key); err != nil {
		return "", fmt.Errorf("keys: generate master key: %w", err)
	}
	if err := replaceMasterFile(path, append([][]byte{key}, keys...)); err != nil {
		return "", err
	}
	id := masterID(key)
	return hex.EncodeToString(id[:]), nil
}

// RemoveMasterKey deletes the old key with fingerprint id from the file at
// path. Only do this after Keyring.RotateMaster has succeeded with the
// current key: tenant keys still wrapped by the removed key become
// unreadable. The current key cannot be removed.
func RemoveMasterKey(path, id string) error {
	keys, err := readMasterFile(path)
	if err != nil {
		return err
	}
	for i, k := range keys {
		kid := masterID(k)
		if hex.EncodeToString(kid[:]) != id {
			continue
		}
		if i == 0 {
			return fmt.Errorf("keys: master key %s is the current key in %s; add a new key first (AddMasterKey)", id, path)
		}
		return replaceMasterFile(path, append(keys[:i:i], keys[i+1:]...))
	}
	return fmt.Errorf("keys: no master key %s in %s", id, path)
}

func loadMasterFile(path string, rnd io.Reader) (Master, error) {
	keys, err := readMasterFile(path)
	if err != nil {
		return nil, err
	}
	return newLocalMaster(path, rnd, keys...)
}

// readMasterFile checks the file's mode and returns its keys, current first.
func readMasterFile(path string) ([][]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("keys: master key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keys: master key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("keys: master key file %s has mode %04o, so others than its owner may read it; "+
			"run `chmod 600 %s` and check who has seen it (if anyone may have, rotate the master key)", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: read master key file: %w", err)
	}
	keys, err := parseMasterFile(b)
	if err != nil {
		return nil, fmt.Errorf("keys: master key file %s: %w", path, err)
	}
	return keys, nil
}

// parseMasterFile returns the keys, current first. Errors name lines, never
// their contents.
func parseMasterFile(b []byte) ([][]byte, error) {
	var current []byte
	var old [][]byte
	seenHeader := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !seenHeader {
			if line != masterFileHeader {
				return nil, fmt.Errorf("line %d: want %q first", n, masterFileHeader)
			}
			seenHeader = true
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 || (f[0] != "current" && f[0] != "old") {
			return nil, fmt.Errorf("line %d: want `current|old <fingerprint> <base64 key>`", n)
		}
		key, err := base64.StdEncoding.DecodeString(f[2])
		if err != nil || len(key) != keySize {
			return nil, fmt.Errorf("line %d: key is not base64 of 32 bytes", n)
		}
		id := masterID(key)
		if f[1] != hex.EncodeToString(id[:]) {
			return nil, fmt.Errorf("line %d: fingerprint does not match the key; the file is damaged, restore it from a backup", n)
		}
		if f[0] == "old" {
			old = append(old, key)
			continue
		}
		if current != nil {
			return nil, fmt.Errorf("line %d: a second current key", n)
		}
		current = key
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if current == nil {
		return nil, errors.New("no current key")
	}
	return append([][]byte{current}, old...), nil
}

func formatMasterFile(keys [][]byte) []byte {
	var b bytes.Buffer
	b.WriteString("# zorgkluis master keys: secret. Mode 0600; back up apart from the database.\n")
	b.WriteString("# The current key wraps new tenant keys; old keys only unwrap until `zorgkluis keys rotate` has run.\n")
	b.WriteString(masterFileHeader + "\n")
	for i, k := range keys {
		kind := "old"
		if i == 0 {
			kind = "current"
		}
		id := masterID(k)
		fmt.Fprintf(&b, "%-7s %s %s\n", kind, hex.EncodeToString(id[:]), base64.StdEncoding.EncodeToString(k))
	}
	return b.Bytes()
}

func replaceMasterFile(path string, keys [][]byte) error {
	tmp, err := writeTemp(path, formatMasterFile(keys))
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("keys: replace master key file: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes b to a new mode-0600 file beside path and syncs it.
func writeTemp(path string, b []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("keys: write master key file: %w", err)
	}
	name := f.Name()
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", fmt.Errorf("keys: write master key file: %w", err)
	}
	return name, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("keys: sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("keys: sync directory: %w", err)
	}
	return nil
}
