package keys

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Master is the top of the key hierarchy: it wraps and unwraps tenant keys
// and never leaves its source (a file in the data directory, the
// environment, or an external KMS). It is a key set, not one key: Wrap uses
// the current key, Unwrap any key the source still holds, so the master can
// be rotated while serving.
//
// External KMS. A KMS-backed Master (for example HashiCorp Vault's transit
// engine with an aes256-gcm96 key) implements the same three methods:
//   - ID returns a name for the key version Wrap uses now, e.g.
//     "vault:transit/zorgkluis:v3"; it is stored beside every wrapped tenant
//     key, so it must change when the KMS key is rotated.
//   - Wrap calls transit/encrypt/<name> with the plaintext and
//     ad.MarshalBinary() as associated_data, and returns the KMS ciphertext
//     ("vault:v3:...").
//   - Unwrap calls transit/decrypt/<name> with the same associated_data; the
//     KMS picks the key version from the ciphertext.
//
// Rotating it is: rotate the key in the KMS, then Keyring.RotateMaster, then
// raise the KMS's minimum decryption version. Implementations must be safe
// for concurrent use and must not put key material in errors.
type Master interface {
	// ID names the key Wrap uses now (a fingerprint, not a secret).
	ID() string
	// Wrap seals plaintext (a tenant key, a TOTP secret) bound to ad.
	Wrap(ctx context.Context, plaintext []byte, ad AD) ([]byte, error)
	// Unwrap opens what Wrap returned, under the current or an older key.
	Unwrap(ctx context.Context, wrapped []byte, ad AD) ([]byte, error)
}

// localMaster holds master keys in process memory (from a file or the
// environment) and wraps in the package's ciphertext format with the key's
// fingerprint as key id.
type localMaster struct {
	current keyID
	keys    map[keyID]cipher.AEAD
	rand    io.Reader
	source  string // where the keys came from, for error messages
}

// newLocalMaster builds a master from raw 32-byte keys; the first is current.
func newLocalMaster(source string, rnd io.Reader, raw ...[]byte) (*localMaster, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("keys: no master key in %s", source)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	m := &localMaster{keys: make(map[keyID]cipher.AEAD, len(raw)), rand: rnd, source: source}
	for i, k := range raw {
		a, err := newAEAD(k)
		if err != nil {
			return nil, fmt.Errorf("keys: master key %d in %s: %w", i+1, source, err)
		}
		id := masterID(k)
		if _, dup := m.keys[id]; dup {
			return nil, fmt.Errorf("keys: master key %s appears twice in %s", hex.EncodeToString(id[:]), source)
		}
		m.keys[id] = a
		if i == 0 {
			m.current = id
		}
	}
	return m, nil
}

func (m *localMaster) ID() string { return hex.EncodeToString(m.current[:]) }

func (m *localMaster) Wrap(_ context.Context, plaintext []byte, ad AD) ([]byte, error) {
	if ad.label == "" {
		return nil, errNoPurpose
	}
	nonce := make([]byte, nonceSize)
	if _, err := io.ReadFull(m.rand, nonce); err != nil {
		return nil, fmt.Errorf("keys: master wrap nonce: %w", err)
	}
	return sealWith(m.keys[m.current], m.current, nonce, plaintext, ad), nil
}

func (m *localMaster) Unwrap(_ context.Context, wrapped []byte, ad AD) ([]byte, error) {
	id, err := parseHeader(wrapped)
	if err != nil {
		return nil, err
	}
	a, ok := m.keys[id]
	if !ok {
		return nil, fmt.Errorf("keys: wrapped under master key %s, which is not in %s; add it back (from a backup of the key) until rotation has finished: %w",
			hex.EncodeToString(id[:]), m.source, ErrDecrypt)
	}
	return openWith(a, wrapped, ad)
}

// EnvMasterKey is the environment variable MasterFromEnv is meant for.
const EnvMasterKey = "ZK_MASTER_KEY"

// MasterFromEnv builds a master from the value of ZK_MASTER_KEY: standard
// base64 of 32 random bytes (make one with `head -c 32 /dev/urandom |
// base64`). For rotation the value may hold several keys separated by
// commas, the current one first and older ones after it; drop an older key
// once Keyring.RotateMaster has succeeded. Errors never repeat the value.
func MasterFromEnv(value string) (Master, error) {
	var raw [][]byte
	for i, part := range strings.Split(value, ",") {
		part = strings.TrimSpace(part)
		k, err := base64.StdEncoding.DecodeString(part)
		if err != nil || len(k) != keySize {
			return nil, fmt.Errorf("keys: %s key %d is not base64 of 32 bytes; make one with: head -c 32 /dev/urandom | base64", EnvMasterKey, i+1)
		}
		raw = append(raw, k)
	}
	return newLocalMaster("$"+EnvMasterKey, nil, raw...)
}

// Chain joins master sources for moving from one to another (for example
// from ZK_MASTER_KEY to a KMS): Wrap and ID use current; Unwrap tries
// current and then each older source. After Keyring.RotateMaster has
// succeeded, the older sources are no longer needed.
func Chain(current Master, older ...Master) Master {
	return chain(append([]Master{current}, older...))
}

type chain []Master

func (c chain) ID() string { return c[0].ID() }

func (c chain) Wrap(ctx context.Context, plaintext []byte, ad AD) ([]byte, error) {
	return c[0].Wrap(ctx, plaintext, ad)
}

func (c chain) Unwrap(ctx context.Context, wrapped []byte, ad AD) ([]byte, error) {
	var errs []error
	for _, m := range c {
		pt, err := m.Unwrap(ctx, wrapped, ad)
		if err == nil {
			return pt, nil
		}
		errs = append(errs, fmt.Errorf("master %s: %w", m.ID(), err))
	}
	return nil, errors.Join(errs...)
}
