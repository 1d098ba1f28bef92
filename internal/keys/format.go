package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// Ciphertext format, version 1. Every sealed value in this package (data
// under a patient key, a patient key under a tenant key, a tenant key under a
// local master key) has this shape:
//
//	offset  size  field
//	0       1     format version, 0x01
//	1       8     key id: which key sealed it (meaning depends on the layer)
//	9       12    nonce, random
//	21      n+16  AES-256-GCM ciphertext and tag
//
// The GCM additional data is the 9-byte header (version and key id)
// followed by the caller's associated data, so the header cannot be altered
// and a value moved to another record, patient or tenant does not open.
// testdata/vectors.json pins the format; it was produced by an independent
// implementation (testdata/vectors.py).
const (
	formatV1   = 0x01
	keyIDSize  = 8
	headerSize = 1 + keyIDSize
	nonceSize  = 12
	tagSize    = 16
	keySize    = 32 // AES-256

	// Overhead is how many bytes Seal adds to a plaintext.
	Overhead = headerSize + nonceSize + tagSize
)

// ErrDecrypt means a ciphertext did not open: the key, the associated data
// or the bytes are not the ones it was sealed with.
var ErrDecrypt = errors.New("keys: ciphertext does not open (wrong key, wrong associated data, or altered)")

// keyID names the key that sealed a value. For data it is dekID of the
// patient key, for a wrapped patient key the tenant key version (big-endian),
// for a wrapped tenant key the local master key's fingerprint.
type keyID [keyIDSize]byte

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != keySize {
		return nil, fmt.Errorf("keys: key is %d bytes, want %d", len(key), keySize)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return cipher.NewGCM(b)
}

// sealWith seals plaintext in format v1. nonce must be nonceSize random bytes.
func sealWith(aead cipher.AEAD, id keyID, nonce, plaintext, aad []byte) []byte {
	out := make([]byte, headerSize+nonceSize, Overhead+len(plaintext))
	out[0] = formatV1
	copy(out[1:headerSize], id[:])
	copy(out[headerSize:], nonce)
	return aead.Seal(out, nonce, plaintext, additional(out[:headerSize], aad))
}

// parseHeader returns the key id of a format v1 ciphertext.
func parseHeader(ct []byte) (keyID, error) {
	var id keyID
	if len(ct) < Overhead {
		return id, fmt.Errorf("%w: %d bytes is too short", ErrDecrypt, len(ct))
	}
	if ct[0] != formatV1 {
		return id, fmt.Errorf("%w: unknown format version %d", ErrDecrypt, ct[0])
	}
	copy(id[:], ct[1:headerSize])
	return id, nil
}

// openWith opens a format v1 ciphertext. The caller has checked the key id.
func openWith(aead cipher.AEAD, ct, aad []byte) ([]byte, error) {
	if _, err := parseHeader(ct); err != nil {
		return nil, err
	}
	nonce := ct[headerSize : headerSize+nonceSize]
	pt, err := aead.Open(nil, nonce, ct[headerSize+nonceSize:], additional(ct[:headerSize], aad))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

func additional(header, aad []byte) []byte {
	b := make([]byte, 0, len(header)+len(aad))
	return append(append(b, header...), aad...)
}

// AAD encodes parts as associated data without ambiguity: each part is
// preceded by its length as 4 bytes big-endian, so ("ab", "c") and
// ("a", "bc") differ. Callers of Seal and Open name what the value belongs
// to, e.g. AAD("resource", tenantID, patientID, type, id, version).
func AAD(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += 4 + len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

// Domain-separation labels; changing one is a format change.
const (
	labelMasterID   = "zorgkluis master key id v1"
	labelDEKID      = "zorgkluis data key id v1"
	labelTenantKEK  = "zorgkluis tenant kek v1"
	labelPatientDEK = "zorgkluis patient dek v1"
	labelBlindIndex = "zorgkluis blind index v1"
)

// fingerprint is the first 8 bytes of SHA-256(label || 0x00 || key): it
// names a key without revealing anything usable about it.
func fingerprint(label string, key []byte) keyID {
	h := sha256.New()
	h.Write([]byte(label))
	h.Write([]byte{0})
	h.Write(key)
	var id keyID
	copy(id[:], h.Sum(nil))
	return id
}

func masterID(key []byte) keyID { return fingerprint(labelMasterID, key) }
func dekID(key []byte) keyID    { return fingerprint(labelDEKID, key) }

func versionID(version int) keyID {
	var id keyID
	binary.BigEndian.PutUint64(id[:], uint64(version))
	return id
}

// kekAAD binds a wrapped tenant key to its tenant and version.
func kekAAD(tenantID string, version int) []byte {
	return AAD(labelTenantKEK, tenantID, strconv.Itoa(version))
}

// dekAAD binds a wrapped patient key to its tenant and patient.
func dekAAD(tenantID, patientID string) []byte {
	return AAD(labelPatientDEK, tenantID, patientID)
}

// blindIndex is HMAC-SHA256 under the tenant's index key.
func blindIndex(key []byte, kind, value string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(AAD(labelBlindIndex, kind, value))
	return m.Sum(nil)
}
