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

// Ciphertext format. Every sealed value in this package (data under a
// patient key, a patient key under a tenant key, a tenant key or a TOTP
// secret under a local master key) has this shape:
//
//	offset  size  field
//	0       1     format version: 0x02 for everything sealed now, 0x01 before
//	1       8     key id: which key sealed it (meaning depends on the layer)
//	9       12    nonce, random
//	21      n+16  AES-256-GCM ciphertext and tag
//
// The GCM additional data is the 9-byte header (version and key id)
// followed by the encoding of the value's AD (see AD), so the header cannot
// be altered and a value moved to another record, patient, tenant or purpose
// does not open. The version byte says which AD encoding a value was sealed
// with: format 2 values with AD.MarshalBinary's encoding, format 1 values
// (sealed before format 2 existed) with the encoding their purpose used
// then (AD.v1). Seal writes format 2 only; Open reads both.
//
// testdata/vectors.json pins format 1 and testdata/ad-vectors.json format 2;
// both were produced by an independent implementation (testdata/vectors.py).
const (
	formatV1   = 0x01
	formatV2   = 0x02
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

// sealWith seals plaintext in format 2. nonce must be nonceSize random bytes.
func sealWith(aead cipher.AEAD, id keyID, nonce, plaintext []byte, ad AD) []byte {
	out := make([]byte, headerSize+nonceSize, Overhead+len(plaintext))
	out[0] = formatV2
	copy(out[1:headerSize], id[:])
	copy(out[headerSize:], nonce)
	add, _ := ad.additional(out[:headerSize])
	return aead.Seal(out, nonce, plaintext, add)
}

// parseHeader returns the key id of a format 1 or 2 ciphertext.
func parseHeader(ct []byte) (keyID, error) {
	var id keyID
	if len(ct) < Overhead {
		return id, fmt.Errorf("%w: %d bytes is too short", ErrDecrypt, len(ct))
	}
	if ct[0] != formatV1 && ct[0] != formatV2 {
		return id, fmt.Errorf("%w: unknown format version %d", ErrDecrypt, ct[0])
	}
	copy(id[:], ct[1:headerSize])
	return id, nil
}

// openWith opens a format 1 or 2 ciphertext bound to ad. The caller has
// checked the key id.
func openWith(aead cipher.AEAD, ct []byte, ad AD) ([]byte, error) {
	if _, err := parseHeader(ct); err != nil {
		return nil, err
	}
	add, ok := ad.additional(ct[:headerSize])
	if !ok {
		return nil, fmt.Errorf("%w: format 1 has no %q values", ErrDecrypt, ad.label)
	}
	return openAdditional(aead, ct, add)
}

// openAdditional opens ct with add as the complete GCM additional data.
func openAdditional(aead cipher.AEAD, ct, add []byte) ([]byte, error) {
	if _, err := parseHeader(ct); err != nil {
		return nil, err
	}
	nonce := ct[headerSize : headerSize+nonceSize]
	pt, err := aead.Open(nil, nonce, ct[headerSize+nonceSize:], add)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// AD is the associated data of a sealed value: its purpose (what kind of
// value it is) and the fields that name whose value it is. A value opens only
// with the AD it was sealed with, so a ciphertext copied to another record,
// version, patient, tenant or account, or used for another purpose, does not
// open. Build one with the constructor of its purpose (ResourceAD,
// TOTPSecretAD); the zero AD seals nothing.
//
// Encoding (format 2), the bytes after the ciphertext header in the GCM
// additional data:
//
//	u32be(len(label)) || label || u32be(len(field1)) || field1 || ...
//
// Lengths are 4 bytes big-endian, so ("ab", "c") and ("a", "bc") differ, and
// the number of fields is fixed per purpose:
//
//	purpose        label                    fields
//	resource body  "zorgkluis resource"     tenant, patient, type, id, version (decimal)
//	TOTP secret    "zorgkluis totp secret"  account
//	tenant key     "zorgkluis tenant key"   tenant, key version (decimal)
//	patient key    "zorgkluis patient key"  tenant, patient
//
// The format version (the ciphertext's first byte, also the first byte of
// the additional data) versions the encoding; a new encoding is a new
// format version, with the old one still opened.
type AD struct {
	label  string
	n      int
	fields [maxADFields]string
}

const maxADFields = 5

// Purpose labels of AD; changing one is a format change.
const (
	labelResource    = "zorgkluis resource"
	labelTOTPSecret  = "zorgkluis totp secret"
	labelTenantKey   = "zorgkluis tenant key"
	labelPatientKey  = "zorgkluis patient key"
	labelCAKey       = "zorgkluis ca key"
	labelSSOSecret   = "zorgkluis sso client secret"
	labelDocument    = "zorgkluis compliance document"
	labelPatientName = "zorgkluis patient name"
)

func newAD(label string, fields ...string) AD {
	if len(fields) > maxADFields {
		panic("keys: too many associated-data fields")
	}
	ad := AD{label: label, n: len(fields)}
	copy(ad.fields[:], fields)
	return ad
}

// ResourceAD is the AD of a FHIR resource version's body.
func ResourceAD(tenantID, patientID, resourceType, id string, version int64) AD {
	return newAD(labelResource, tenantID, patientID, resourceType, id, strconv.FormatInt(version, 10))
}

// TOTPSecretAD is the AD of an account's TOTP secret.
func TOTPSecretAD(accountID string) AD {
	return newAD(labelTOTPSecret, accountID)
}

// CAKeyAD is the AD of a CA's or signer's private key (internal/pki),
// sealed under the master key: the tenant (empty for the root) and the
// certificate's serial.
func CAKeyAD(tenantID, serial string) AD {
	return newAD(labelCAKey, tenantID, serial)
}

// SSOSecretAD is the AD of an identity provider's client secret
// (internal/sso), sealed under the master key: the tenant and the
// provider's id.
func SSOSecretAD(tenantID, providerID string) AD {
	return newAD(labelSSOSecret, tenantID, providerID)
}

// DocumentAD is the AD of an evidence document of the controls register
// (internal/compliance), sealed under the tenant's documents key: the
// tenant, the document's id and the SHA-256 of its content.
func DocumentAD(tenantID, documentID, sha256 string) AD {
	return newAD(labelDocument, tenantID, documentID, sha256)
}

// PatientNameAD is the AD of a patient's display name (internal/record),
// sealed with the patient's data key: the tenant and the patient, so a
// name copied to another patient's row does not open.
func PatientNameAD(tenantID, patientID string) AD {
	return newAD(labelPatientName, tenantID, patientID)
}

// tenantKeyAD binds a wrapped tenant key to its tenant and version.
func tenantKeyAD(tenantID string, version int) AD {
	return newAD(labelTenantKey, tenantID, strconv.Itoa(version))
}

// patientKeyAD binds a wrapped patient key to its tenant and patient.
func patientKeyAD(tenantID, patientID string) AD {
	return newAD(labelPatientKey, tenantID, patientID)
}

func (ad AD) size() int {
	n := 4 + len(ad.label)
	for _, f := range ad.fields[:ad.n] {
		n += 4 + len(f)
	}
	return n
}

func (ad AD) appendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(ad.label)))
	b = append(b, ad.label...)
	for _, f := range ad.fields[:ad.n] {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// MarshalBinary returns the format 2 encoding of ad, without a ciphertext
// header: what an external KMS takes as its associated data.
func (ad AD) MarshalBinary() ([]byte, error) {
	if ad.label == "" {
		return nil, errNoPurpose
	}
	return ad.appendTo(make([]byte, 0, ad.size())), nil
}

var errNoPurpose = errors.New("keys: associated data without a purpose (use a constructor such as ResourceAD)")

// additional returns the complete GCM additional data for a value with the
// given header: the header followed by ad in the header's format. It is
// false when the format has no encoding of ad's purpose.
func (ad AD) additional(header []byte) ([]byte, bool) {
	if header[0] == formatV1 {
		old, ok := ad.v1()
		if !ok {
			return nil, false
		}
		return append(append(make([]byte, 0, len(header)+len(old)), header...), old...), true
	}
	return ad.appendTo(append(make([]byte, 0, len(header)+ad.size()), header...)), true
}

// v1 is ad as format 1 encoded it: each purpose had its own layout.
func (ad AD) v1() ([]byte, bool) {
	f := ad.fields
	switch {
	case ad.label == labelResource && ad.n == 5:
		return []byte("zk-resource\x00" + f[0] + "\x00" + f[1] + "\x00" + f[2] + "/" + f[3] + "\x00" + f[4]), true
	case ad.label == labelTOTPSecret && ad.n == 1:
		return []byte("totp:" + f[0]), true
	case ad.label == labelTenantKey && ad.n == 2:
		return lengthPrefixed(labelTenantKEKv1, f[0], f[1]), true
	case ad.label == labelPatientKey && ad.n == 2:
		return lengthPrefixed(labelPatientDEKv1, f[0], f[1]), true
	}
	return nil, false
}

// lengthPrefixed encodes parts without ambiguity: each part is preceded by
// its length as 4 bytes big-endian.
func lengthPrefixed(parts ...string) []byte {
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
	labelMasterID = "zorgkluis master key id v1"
	labelDEKID    = "zorgkluis data key id v1"
	// Format 1 labels of wrapped keys' associated data (AD.v1).
	labelTenantKEKv1  = "zorgkluis tenant kek v1"
	labelPatientDEKv1 = "zorgkluis patient dek v1"
	labelBlindIndex   = "zorgkluis blind index v1"
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

// blindIndex is HMAC-SHA256 under the tenant's index key.
func blindIndex(key []byte, kind, value string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(lengthPrefixed(labelBlindIndex, kind, value))
	return m.Sum(nil)
}
