package password

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func testHasher(t testing.TB, c Config) *Hasher {
	t.Helper()
	if c.Params == (Params{}) {
		c.Params = TestParams()
	}
	h, err := NewHasher(c)
	if err != nil {
		t.Fatalf("NewHasher: %v", err)
	}
	return h
}

var phc = regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

// REQ: AUTH-5 — stored only as a salted argon2id hash, parameters recorded.
func TestHashVerifyRoundTrip(t *testing.T) {
	ctx := context.Background()
	h := testHasher(t, Config{})
	for _, pw := range []string{"correct paard batterij nietje", "Ĳsselmeer ☀ wandeling", "", strings.Repeat("x", 128)} {
		enc, err := h.Hash(ctx, pw)
		if err != nil {
			t.Fatalf("Hash: %v", err)
		}
		if !phc.MatchString(enc) {
			t.Errorf("Hash = %q, not a PHC argon2id string with the test parameters", enc)
		}
		if strings.Contains(enc, pw) && pw != "" {
			t.Errorf("encoding contains the password")
		}
		ok, rehash, err := h.Verify(ctx, enc, pw)
		if err != nil || !ok || rehash {
			t.Errorf("Verify(own hash) = %v, %v, %v; want true, false, nil", ok, rehash, err)
		}
		ok, _, err = h.Verify(ctx, enc, pw+"!")
		if err != nil || ok {
			t.Errorf("Verify(wrong password) = %v, %v; want false, nil", ok, err)
		}
		again, _ := h.Hash(ctx, pw)
		if again == enc {
			t.Errorf("two hashes of the same password are equal: salt not fresh")
		}
	}
}

// Vectors from the reference implementation (Debian package argon2,
// 0~20171227), e.g. `echo -n "correct horse battery staple" |
// argon2 somesalt -id -t 2 -k 1024 -p 1 -l 32 -e`. They prove the encoding
// and the derivation interoperate with other argon2id implementations.
// REQ: AUTH-5
func TestVerifyReferenceVectors(t *testing.T) {
	h := testHasher(t, Config{})
	vectors := []struct{ password, encoded string }{
		{"correct horse battery staple", "$argon2id$v=19$m=1024,t=2,p=1$c29tZXNhbHQ$iWEazOv7SVe111jE6/xOxfMNHSSmyR9voAQ00YW7heo"},
		{"correct horse battery staple", "$argon2id$v=19$m=4096,t=1,p=4$c2FsdHNhbHRzYWx0c2FsdA$2bSGjX24a5JybX/s9JPiXw"},
		{"correct horse battery staple", "$argon2id$v=19$m=256,t=3,p=2$MDEyMzQ1Njc4OWFiY2RlZg$XCOQCHkylKqi1z/dqEznEcpfZYLYEKpdVeOGCFHAevShRqkURB5vxHIxImTYQdEx4t3zMQzg4tkk6tUvHmIBRA"},
		// Made from the NFKC form "wachtwoord🔑ij"; the ligature ĳ must
		// normalise to it.
		{"wachtwoord🔑ĳ", "$argon2id$v=19$m=512,t=1,p=1$em9yZ2tsdWlzc2FsdA$0OssmVP1CvjIjc8fPiHF+YQCn9y5gqzHLQuNqC2Lwks"},
		{"wachtwoord🔑ij", "$argon2id$v=19$m=512,t=1,p=1$em9yZ2tsdWlzc2FsdA$0OssmVP1CvjIjc8fPiHF+YQCn9y5gqzHLQuNqC2Lwks"},
	}
	for _, v := range vectors {
		ok, _, err := h.Verify(context.Background(), v.encoded, v.password)
		if err != nil || !ok {
			t.Errorf("Verify(%q) = %v, %v; want true, nil", v.encoded, ok, err)
		}
		ok, _, _ = h.Verify(context.Background(), v.encoded, "Correct horse battery staple")
		if ok {
			t.Errorf("Verify(%q) accepted a different password", v.encoded)
		}
	}
}

// REQ: AUTH-5 — Unicode accepted and normalised with NFKC before hashing.
func TestHashNormalisesNFKC(t *testing.T) {
	ctx := context.Background()
	h := testHasher(t, Config{})
	enc, err := h.Hash(ctx, "ｚｏｒｇｋｌｕｉｓ２０２６") // fullwidth
	if err != nil {
		t.Fatal(err)
	}
	ok, _, err := h.Verify(ctx, enc, "zorgkluis2026")
	if err != nil || !ok {
		t.Errorf("fullwidth hash does not verify with the ASCII form: %v, %v", ok, err)
	}
	// Composed and decomposed é are the same password.
	enc, _ = h.Hash(ctx, "caf\u00e9 au lait")
	if ok, _, _ := h.Verify(ctx, enc, "cafe\u0301 au lait"); !ok {
		t.Errorf("decomposed é does not verify against composed é")
	}
}

// REQ: AUTH-5 — a tampered or absurd stored hash is refused before any
// argon2 work is done.
func TestVerifyRejectsTamperedEncoding(t *testing.T) {
	ctx := context.Background()
	h := testHasher(t, Config{})
	var derived atomic.Int32
	h.hook = func(Params) { derived.Add(1) }
	const pw = "correct paard batterij nietje"
	enc, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(enc, "$") // "", argon2id, v=19, m=64,t=1,p=1, salt, key
	join := func(p ...string) string { return strings.Join(p, "$") }
	flip := func(s string) string { // change the first base64 character
		c := "A"
		if s[0] == 'A' {
			c = "B"
		}
		return c + s[1:]
	}

	// Still well-formed, so computed, but must not match.
	mismatches := map[string]string{
		"key changed":    join(parts[:5]...) + "$" + flip(parts[5]),
		"salt changed":   join(parts[:4]...) + "$" + flip(parts[4]) + "$" + parts[5],
		"memory changed": join(parts[0], parts[1], parts[2], "m=72,t=1,p=1", parts[4], parts[5]),
		"time changed":   join(parts[0], parts[1], parts[2], "m=64,t=2,p=1", parts[4], parts[5]),
	}
	for name, e := range mismatches {
		ok, _, err := h.Verify(ctx, e, pw)
		if err != nil || ok {
			t.Errorf("%s: Verify = %v, %v; want false, nil", name, ok, err)
		}
	}

	derived.Store(0)
	malformed := map[string]string{
		"empty":             "",
		"bcrypt":            "$2b$12$abcdefghijklmnopqrstuuVQ3e2dF1xyRmTQ1Cj3z9jPfm4p3eC7y",
		"argon2i":           join(parts[0], "argon2i", parts[2], parts[3], parts[4], parts[5]),
		"version 16":        join(parts[0], parts[1], "v=16", parts[3], parts[4], parts[5]),
		"missing version":   join(parts[0], parts[1], parts[3], parts[4], parts[5]),
		"extra field":       enc + "$x",
		"params reordered":  join(parts[0], parts[1], parts[2], "t=1,m=64,p=1", parts[4], parts[5]),
		"leading zero":      join(parts[0], parts[1], parts[2], "m=064,t=1,p=1", parts[4], parts[5]),
		"sign":              join(parts[0], parts[1], parts[2], "m=+64,t=1,p=1", parts[4], parts[5]),
		"padded base64":     enc + "=",
		"bad base64":        join(parts[:5]...) + "$" + "!" + parts[5][1:],
		"memory 1 TiB":      join(parts[0], parts[1], parts[2], "m=1073741824,t=1,p=1", parts[4], parts[5]),
		"memory 512 MiB":    join(parts[0], parts[1], parts[2], "m=524288,t=1,p=1", parts[4], parts[5]),
		"memory overflow":   join(parts[0], parts[1], parts[2], "m=4294967296,t=1,p=1", parts[4], parts[5]),
		"memory below 8p":   join(parts[0], parts[1], parts[2], "m=16,t=1,p=4", parts[4], parts[5]),
		"time 1000":         join(parts[0], parts[1], parts[2], "m=64,t=1000,p=1", parts[4], parts[5]),
		"time 0":            join(parts[0], parts[1], parts[2], "m=64,t=0,p=1", parts[4], parts[5]),
		"threads 255":       join(parts[0], parts[1], parts[2], "m=4096,t=1,p=255", parts[4], parts[5]),
		"threads 300":       join(parts[0], parts[1], parts[2], "m=4096,t=1,p=300", parts[4], parts[5]),
		"key 4 bytes":       join(parts[:5]...) + "$" + "AAAAAA",
		"key 1 KiB":         join(parts[:5]...) + "$" + strings.Repeat("A", 1366),
		"salt 2 bytes":      join(parts[:4]...) + "$AAA$" + parts[5],
		"salt empty":        join(parts[:4]...) + "$$" + parts[5],
		"no leading dollar": strings.TrimPrefix(enc, "$"),
	}
	for name, e := range malformed {
		ok, rehash, err := h.Verify(ctx, e, pw)
		if !errors.Is(err, ErrMalformed) || ok || rehash {
			t.Errorf("%s: Verify = %v, %v, %v; want ErrMalformed", name, ok, rehash, err)
		}
		if err != nil && strings.Contains(err.Error(), parts[5]) {
			t.Errorf("%s: error text contains the stored hash", name)
		}
	}
	if n := derived.Load(); n != 0 {
		t.Errorf("%d argon2 computations for malformed hashes; want 0", n)
	}
}

// REQ: AUTH-5 — parameters can be raised later: a hash made with weaker
// parameters verifies and asks to be replaced.
func TestVerifyNeedsRehash(t *testing.T) {
	ctx := context.Background()
	weak := testHasher(t, Config{Params: TestParams()})
	stronger := func(mod func(*Params)) *Hasher {
		p := TestParams()
		mod(&p)
		return testHasher(t, Config{Params: p})
	}
	enc, err := weak.Hash(ctx, "correct paard batterij nietje")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		h      *Hasher
		rehash bool
	}{
		{"same parameters", weak, false},
		{"more memory", stronger(func(p *Params) { p.MemoryKiB *= 2 }), true},
		{"more time", stronger(func(p *Params) { p.Time++ }), true},
		{"longer key", stronger(func(p *Params) { p.KeyLen = 64 }), true},
		{"longer salt", stronger(func(p *Params) { p.SaltLen = 32 }), true},
		{"more threads is not stronger", stronger(func(p *Params) { p.Threads = 2 }), false},
		{"current weaker than stored", stronger(func(p *Params) { p.MemoryKiB = 32 }), false},
	}
	for _, tt := range tests {
		ok, rehash, err := tt.h.Verify(ctx, enc, "correct paard batterij nietje")
		if err != nil || !ok || rehash != tt.rehash {
			t.Errorf("%s: Verify = %v, %v, %v; want true, %v, nil", tt.name, ok, rehash, err, tt.rehash)
		}
		// Without the right password there is nothing to rehash.
		if _, rehash, _ := tt.h.Verify(ctx, enc, "wrong"); rehash {
			t.Errorf("%s: needsRehash for a wrong password", tt.name)
		}
	}
}

// REQ: AUTH-5 — a Hasher refuses absurd parameters of its own.
func TestNewHasherRejectsAbsurdParams(t *testing.T) {
	bad := map[string]func(*Params){
		"time 0":         func(p *Params) { p.Time = 0 },
		"time 17":        func(p *Params) { p.Time = 17 },
		"memory 512 MiB": func(p *Params) { p.MemoryKiB = 512 * 1024 },
		"memory < 8p":    func(p *Params) { p.Threads = 4; p.MemoryKiB = 31 },
		"threads 0":      func(p *Params) { p.Threads = 0 },
		"threads 17":     func(p *Params) { p.Threads = 17; p.MemoryKiB = 1024 },
		"key 8 bytes":    func(p *Params) { p.KeyLen = 8 },
		"key 65 bytes":   func(p *Params) { p.KeyLen = 65 },
		"salt 4 bytes":   func(p *Params) { p.SaltLen = 4 },
		"salt 65 bytes":  func(p *Params) { p.SaltLen = 65 },
	}
	for name, mod := range bad {
		p := TestParams()
		mod(&p)
		if _, err := NewHasher(Config{Params: p}); err == nil {
			t.Errorf("%s: NewHasher accepted %+v", name, p)
		}
	}
	if _, err := NewHasher(Config{Params: TestParams(), MaxConcurrent: -1}); err == nil {
		t.Errorf("NewHasher accepted a negative MaxConcurrent")
	}
	h, err := NewHasher(Config{})
	if err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	if h.params != DefaultParams() || cap(h.sem) < 1 {
		t.Errorf("zero Config gave params %+v, %d slots; want defaults", h.params, cap(h.sem))
	}
}

// REQ: AUTH-5 — salts come from the injected reader.
func TestSaltFromInjectedReader(t *testing.T) {
	// NewHasher reads the dummy salt and key first (16 + 32 bytes).
	src := bytes.Repeat([]byte{0xAB}, 16+32)
	src = append(src, []byte("0123456789abcdef")...)
	h := testHasher(t, Config{Rand: bytes.NewReader(src)})
	enc, err := h.Hash(context.Background(), "correct paard batterij nietje")
	if err != nil {
		t.Fatal(err)
	}
	if want := "$MDEyMzQ1Njc4OWFiY2RlZg$"; !strings.Contains(enc, want) {
		t.Errorf("Hash = %q; want salt segment %q from the reader", enc, want)
	}
	// The reader is now exhausted: no salt, no hash.
	if _, err := h.Hash(context.Background(), "x"); !errors.Is(err, io.EOF) {
		t.Errorf("Hash with exhausted reader: err = %v; want io.EOF", err)
	}
	if _, err := NewHasher(Config{Params: TestParams(), Rand: bytes.NewReader(nil)}); err == nil {
		t.Errorf("NewHasher with an empty reader succeeded")
	}
}

// REQ: AUTH-5 — bounded input.
func TestHashRejectsHugeInput(t *testing.T) {
	ctx := context.Background()
	h := testHasher(t, Config{})
	huge := strings.Repeat("a", maxPasswordBytes+1)
	if _, err := h.Hash(ctx, huge); !errors.Is(err, ErrInputTooLong) {
		t.Errorf("Hash(huge) err = %v; want ErrInputTooLong", err)
	}
	enc, _ := h.Hash(ctx, "correct paard batterij nietje")
	var derived atomic.Int32
	h.hook = func(Params) { derived.Add(1) }
	ok, _, err := h.Verify(ctx, enc, huge)
	if ok || err != nil {
		t.Errorf("Verify(huge) = %v, %v; want false, nil", ok, err)
	}
	if derived.Load() != 1 {
		t.Errorf("Verify(huge) did %d hashes; want 1 so it takes as long as a real check", derived.Load())
	}
}

// REQ: AUTH-4, AUTH-5 — an unknown account costs the same work as a known
// one: one argon2 computation with the current parameters.
func TestVerifyDummyDoesTheSameWork(t *testing.T) {
	ctx := context.Background()
	p := TestParams()
	p.MemoryKiB = 128
	h := testHasher(t, Config{Params: p})
	var got []Params
	var mu sync.Mutex
	h.hook = func(p Params) { mu.Lock(); got = append(got, p); mu.Unlock() }
	enc, _ := h.Hash(ctx, "correct paard batterij nietje")
	if _, _, err := h.Verify(ctx, enc, "guess"); err != nil {
		t.Fatal(err)
	}
	if err := h.VerifyDummy(ctx, "guess"); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1] != got[2] || got[2] != p {
		t.Errorf("hash, verify, dummy used params %+v; want three computations with %+v", got, p)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := h.VerifyDummy(cancelled, "guess"); !errors.Is(err, context.Canceled) {
		t.Errorf("VerifyDummy(cancelled) = %v; want context.Canceled", err)
	}
}

// REQ: AUTH-5 — the semaphore bounds concurrent hashes. Proven by counting:
// every hash blocks inside its slot until the test releases it, so if more
// than MaxConcurrent could enter, the peak counter would show it.
func TestHasherBoundsConcurrency(t *testing.T) {
	const slots, callers = 3, 12
	h := testHasher(t, Config{MaxConcurrent: slots})
	var inside, peak atomic.Int32
	entered := make(chan struct{}, callers)
	release := make(chan struct{})
	h.hook = func(Params) {
		n := inside.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		entered <- struct{}{}
		<-release
		inside.Add(-1)
	}
	ctx := context.Background()
	errs := make(chan error, callers)
	for i := range callers {
		go func() {
			_, err := h.Hash(ctx, fmt.Sprintf("wachtwoord-%d", i))
			errs <- err
		}()
	}
	// Fill every slot, then let hashes finish one at a time; each release
	// lets exactly one waiter in.
	for range slots {
		<-entered
	}
	// A caller whose context ends while all slots are taken gives up.
	short, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := h.Hash(short, "late"); !errors.Is(err, context.Canceled) {
		t.Errorf("Hash with ended context while full: %v; want context.Canceled", err)
	}
	timed, cancel2 := context.WithTimeout(ctx, time.Millisecond)
	defer cancel2()
	if _, _, err := h.Verify(timed, "$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$0OssmVP1CvjIjc8fPiHF+YQCn9y5gqzHLQuNqC2Lwks", "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Verify with expiring context while full: %v; want context.DeadlineExceeded", err)
	}
	for range callers - slots {
		release <- struct{}{}
		<-entered
	}
	for range slots {
		release <- struct{}{}
	}
	for range callers {
		if err := <-errs; err != nil {
			t.Errorf("Hash: %v", err)
		}
	}
	if p := peak.Load(); p != slots {
		t.Errorf("peak concurrent hashes = %d; want exactly %d", p, slots)
	}
}

// REQ: AUTH-5 — a history prevents reuse.
func TestInHistory(t *testing.T) {
	ctx := context.Background()
	h := testHasher(t, Config{})
	var history []string
	for _, pw := range []string{"eerste wachtwoord lang", "tweede wachtwoord lang", "derde wachtwoord lang"} {
		enc, err := h.Hash(ctx, pw)
		if err != nil {
			t.Fatal(err)
		}
		history = append(history, enc)
	}
	tests := []struct {
		name     string
		password string
		previous []string
		want     bool
		wantErr  bool
	}{
		{"first", "eerste wachtwoord lang", history, true, false},
		{"middle", "tweede wachtwoord lang", history, true, false},
		{"normalised form of an old one", "ｄｅｒｄｅ wachtwoord lang", history, true, false},
		{"new password", "vierde wachtwoord lang", history, false, false},
		{"empty history", "eerste wachtwoord lang", nil, false, false},
		{"corrupt entry", "vierde wachtwoord lang", append([]string{"garbage"}, history...), false, true},
	}
	for _, tt := range tests {
		got, err := InHistory(ctx, h, tt.password, tt.previous)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s: InHistory = %v, %v; want %v, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
		if tt.wantErr && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: error %v does not wrap ErrMalformed", tt.name, err)
		}
	}
}

// BenchmarkHash measures one hash with the production parameters; the
// figure in DefaultParams' comment comes from here.
func BenchmarkHash(b *testing.B) {
	h, err := NewHasher(Config{Rand: rand.Reader})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct paard batterij nietje"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed())/float64(time.Millisecond)/float64(b.N), "ms/op")
}
