// Package password owns how zorgkluis stores, judges and issues passwords
// (AUTH-5, ID-6).
//
// It promises:
//   - Hasher stores a password only as a salted argon2id hash in the PHC
//     string form $argon2id$v=19$m=…,t=…,p=…$salt$hash, so each hash carries
//     its own parameters and they can be raised later (Verify says when a
//     stored hash is weaker than the current parameters). At most
//     MaxConcurrent hashes run at once, so a flood of log-on attempts queues
//     instead of exhausting memory, and a stored hash that asks for absurd
//     parameters is refused before any work is done.
//   - Policy rejects, in the style of NIST SP 800-63B, passwords that are too
//     short or too long, on an embedded list of more than 500,000 common,
//     breached and dictionary passwords, built from the user's own data, only
//     digits, runs of identical characters or trivial sequences. Every
//     rejection is a Violation with a stable Code that a user interface can
//     translate.
//   - Generate issues temporary passwords of more than 90 bits from an
//     unambiguous alphabet that themselves pass the policy.
//
// Passwords are NFKC-normalised (Normalize) before they are judged or
// hashed, so the same text typed on different keyboards gives the same hash.
// No error string from this package contains a password or a hash.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Params are the argon2id cost parameters and sizes of one hash.
type Params struct {
	Time      uint32 // passes over memory (argon2 t)
	MemoryKiB uint32 // memory in KiB (argon2 m)
	Threads   uint8  // lanes (argon2 p)
	KeyLen    uint32 // bytes of derived key
	SaltLen   uint32 // bytes of random salt
}

// DefaultParams returns the production parameters: m=64 MiB, t=1, p=1, a
// 32-byte key and a 16-byte salt. One hash costs about 45 ms of one core on
// the project's machine (AMD EPYC, 2 cores): `go test -run '^$' -bench Hash
// ./internal/password/` measured 40-46 ms/op, and 47 ms/op with
// GOMAXPROCS=1. That is above OWASP's argon2id minimum (m=46 MiB, t=1, p=1)
// and allows about 20 log-ons per second per core.
func DefaultParams() Params {
	return Params{Time: 1, MemoryKiB: 64 * 1024, Threads: 1, KeyLen: 32, SaltLen: 16}
}

// TestParams returns deliberately cheap parameters (64 KiB, a fraction of a
// millisecond) for tests in other packages. Never use them in production.
func TestParams() Params {
	return Params{Time: 1, MemoryKiB: 64, Threads: 1, KeyLen: 32, SaltLen: 16}
}

// Caps on parameters, both for a Hasher's own configuration and for any
// stored hash being decoded: a stored hash demanding more is treated as
// hostile or corrupt rather than computed, so a tampered row cannot make one
// log-on attempt allocate gigabytes or run for minutes.
const (
	maxTime      = 16
	maxMemoryKiB = 256 * 1024
	maxThreads   = 16
	minKeyLen    = 16
	maxKeyLen    = 64
	minSaltLen   = 8
	maxSaltLen   = 64
)

// maxPasswordBytes bounds the input to one hash after normalisation. The
// policy allows 128 characters; NFKC can expand a character, so the cap is
// generous, and it exists only so nobody can make us hash megabytes.
const maxPasswordBytes = 4096

// Errors returned by Hasher. They never include the password or the hash.
var (
	// ErrMalformed means a stored hash is not a PHC argon2id string this
	// package can read, or asks for parameters beyond the caps.
	ErrMalformed = errors.New("password: malformed or unsupported stored hash")
	// ErrInputTooLong means the password exceeds the hashing input cap.
	ErrInputTooLong = errors.New("password: input too long to hash")
)

func (p Params) validate() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("time %d outside 1..%d", p.Time, maxTime)
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("threads %d outside 1..%d", p.Threads, maxThreads)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("memory %d KiB outside %d..%d", p.MemoryKiB, 8*uint32(p.Threads), maxMemoryKiB)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("key length %d outside %d..%d", p.KeyLen, minKeyLen, maxKeyLen)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("salt length %d outside %d..%d", p.SaltLen, minSaltLen, maxSaltLen)
	}
	return nil
}

// weakerThan reports whether a hash made with p should be replaced by one
// made with cur. Threads are not compared: fewer lanes is not weaker.
func (p Params) weakerThan(cur Params) bool {
	return p.Time < cur.Time || p.MemoryKiB < cur.MemoryKiB ||
		p.KeyLen < cur.KeyLen || p.SaltLen < cur.SaltLen
}

// Config configures a Hasher. The zero value gives production defaults.
type Config struct {
	// Params for new hashes; the zero value means DefaultParams().
	Params Params
	// MaxConcurrent bounds the hashes computed at once; further callers wait
	// (or give up when their context ends). Zero means GOMAXPROCS, since
	// each hash keeps a core busy and more in parallel only costs memory.
	// Memory in use stays below MaxConcurrent × Params.MemoryKiB, or
	// MaxConcurrent × 256 MiB while verifying stored hashes with the largest
	// accepted parameters.
	MaxConcurrent int
	// Rand supplies salts; nil means crypto/rand.Reader.
	Rand io.Reader
}

// Hasher hashes and verifies passwords. It is safe for concurrent use.
type Hasher struct {
	params Params
	sem    chan struct{}
	rand   io.Reader

	// dummySalt and dummyKey give VerifyDummy something of the right shape
	// to compute and compare, so it does the same work as Verify.
	dummySalt []byte
	dummyKey  []byte

	// hook, if set, runs while a hash holds its semaphore slot; tests use it
	// to count concurrent hashes.
	hook func(Params)
}

// NewHasher returns a Hasher for c.
func NewHasher(c Config) (*Hasher, error) {
	if c.Params == (Params{}) {
		c.Params = DefaultParams()
	}
	if err := c.Params.validate(); err != nil {
		return nil, fmt.Errorf("password: hasher parameters: %w", err)
	}
	if c.MaxConcurrent < 0 {
		return nil, fmt.Errorf("password: MaxConcurrent %d is negative", c.MaxConcurrent)
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = runtime.GOMAXPROCS(0)
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	h := &Hasher{
		params:    c.Params,
		sem:       make(chan struct{}, c.MaxConcurrent),
		rand:      c.Rand,
		dummySalt: make([]byte, c.Params.SaltLen),
		dummyKey:  make([]byte, c.Params.KeyLen),
	}
	if _, err := io.ReadFull(c.Rand, h.dummySalt); err != nil {
		return nil, fmt.Errorf("password: reading salt: %w", err)
	}
	if _, err := io.ReadFull(c.Rand, h.dummyKey); err != nil {
		return nil, fmt.Errorf("password: reading randomness: %w", err)
	}
	return h, nil
}

// Normalize returns the NFKC form of password, the form that is judged and
// hashed. Hash and Verify apply it themselves.
func Normalize(password string) string {
	return norm.NFKC.String(password)
}

// Hash returns the PHC-encoded argon2id hash of the normalised password with
// a fresh salt. It waits for a free slot unless ctx ends first.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	pw := Normalize(password)
	if len(pw) > maxPasswordBytes {
		return "", ErrInputTooLong
	}
	salt := make([]byte, h.params.SaltLen)
	if _, err := io.ReadFull(h.rand, salt); err != nil {
		return "", fmt.Errorf("password: reading salt: %w", err)
	}
	key, err := h.derive(ctx, pw, salt, h.params)
	if err != nil {
		return "", err
	}
	return encode(h.params, salt, key), nil
}

// Verify reports whether password matches the stored hash encoded, comparing
// in constant time. needsRehash is true only when ok is true and the stored
// parameters are weaker than the Hasher's: the caller should then store a
// fresh Hash of the same password. A password longer than the hashing cap
// never matches. err is ErrMalformed for an unreadable or absurd stored hash,
// or the context's error when ctx ended while waiting.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (ok, needsRehash bool, err error) {
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	pw := Normalize(password)
	if len(pw) > maxPasswordBytes {
		// Spend the usual cost anyway so the answer takes as long as any other.
		if err := h.VerifyDummy(ctx, ""); err != nil {
			return false, false, err
		}
		return false, false, nil
	}
	got, err := h.derive(ctx, pw, salt, p)
	if err != nil {
		return false, false, err
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, p.weakerThan(h.params), nil
}

// VerifyDummy does the work of a Verify against a hash made with the current
// parameters and throws the result away. Call it for an unknown user name so
// that unknown and known accounts take the same time to reject (AUTH-4). It
// fails only when ctx ends while waiting for a slot.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	pw := Normalize(password)
	if len(pw) > maxPasswordBytes {
		pw = pw[:maxPasswordBytes]
	}
	got, err := h.derive(ctx, pw, h.dummySalt, h.params)
	if err != nil {
		return err
	}
	subtle.ConstantTimeCompare(got, h.dummyKey)
	return nil
}

// derive computes the argon2id key while holding a semaphore slot.
func (h *Hasher) derive(ctx context.Context, pw string, salt []byte, p Params) ([]byte, error) {
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("password: waiting for a hashing slot: %w", context.Cause(ctx))
	}
	defer func() { <-h.sem }()
	// select picks at random when both cases are ready; do not start a
	// 50 ms computation for a caller who has already gone.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("password: waiting for a hashing slot: %w", context.Cause(ctx))
	}
	if h.hook != nil {
		h.hook(p)
	}
	return argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen), nil
}

// InHistory reports whether password matches any of the previous stored
// hashes (most recent first, as many as the reuse rule keeps), so a user
// cannot go back to an old password (AUTH-5). It costs one hash per entry
// until a match; an unreadable entry is an error, since skipping it would
// quietly weaken the rule.
func InHistory(ctx context.Context, h *Hasher, password string, previous []string) (bool, error) {
	for i, enc := range previous {
		ok, _, err := h.Verify(ctx, enc, password)
		if err != nil {
			return false, fmt.Errorf("password: history entry %d: %w", i, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

var b64 = base64.RawStdEncoding.Strict()

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode parses a PHC argon2id string strictly: fields in the canonical
// order, decimal numbers without leading zeros, unpadded standard base64,
// and parameters within the caps.
func decode(s string) (Params, []byte, []byte, error) {
	var p Params
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, ErrMalformed
	}
	v, ok := field(parts[2], "v=")
	if !ok || v != argon2.Version {
		return p, nil, nil, ErrMalformed
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return p, nil, nil, ErrMalformed
	}
	m, ok1 := field(kv[0], "m=")
	t, ok2 := field(kv[1], "t=")
	th, ok3 := field(kv[2], "p=")
	if !ok1 || !ok2 || !ok3 || th > maxThreads {
		return p, nil, nil, ErrMalformed
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return p, nil, nil, ErrMalformed
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil {
		return p, nil, nil, ErrMalformed
	}
	p = Params{Time: t, MemoryKiB: m, Threads: uint8(th), KeyLen: uint32(len(key)), SaltLen: uint32(len(salt))}
	if err := p.validate(); err != nil {
		return p, nil, nil, ErrMalformed
	}
	return p, salt, key, nil
}

// field parses "name=decimal" in canonical form.
func field(s, prefix string) (uint32, bool) {
	num, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil || strconv.FormatUint(n, 10) != num {
		return 0, false
	}
	return uint32(n), true
}
