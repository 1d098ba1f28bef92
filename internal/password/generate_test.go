package password

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

// REQ: ID-6 — initial/temporary secrets are unique and unguessable, and
// pass the password policy themselves.
func TestGenerate(t *testing.T) {
	p := testPolicy(t)
	seen := make(map[string]bool)
	for range 500 {
		pw, err := Generate(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if seen[pw] {
			t.Fatalf("duplicate generated password")
		}
		seen[pw] = true
		if len(pw) != genChars+genChars/genGroup-1 {
			t.Fatalf("generated password has length %d", len(pw))
		}
		for i, c := range pw {
			if i%(genGroup+1) == genGroup {
				if c != '-' {
					t.Fatalf("no separator at %d", i)
				}
			} else if !strings.ContainsRune(alphabet, c) {
				t.Fatalf("character outside the alphabet")
			}
		}
		if err := p.Check(pw, UserContext{PasswordOnly: true}); err != nil {
			t.Fatalf("generated password fails the policy: %v", err)
		}
	}
}

// REQ: ID-6 — at least 90 bits from an alphabet without look-alikes.
func TestGenerateAlphabet(t *testing.T) {
	if bits := float64(genChars) * math.Log2(float64(len(alphabet))); bits < 90 {
		t.Errorf("generated passwords carry %.1f bits; want at least 90", bits)
	}
	for _, c := range "0O1lIio" {
		if strings.ContainsRune(alphabet, c) {
			t.Errorf("alphabet contains ambiguous %q", c)
		}
	}
	seen := make(map[rune]bool)
	for _, c := range alphabet {
		if seen[c] {
			t.Errorf("alphabet repeats %q, biasing the draw", c)
		}
		seen[c] = true
	}
}

// REQ: ID-6 — every symbol is equally likely: bytes at or above the largest
// multiple of the alphabet size are skipped, not folded onto the start.
func TestGenerateRejectionSampling(t *testing.T) {
	limit := 256 - 256%len(alphabet)
	var src []byte
	for i := range 20 {
		src = append(src, byte(limit+i%(256-limit))) // all to be skipped
		src = append(src, byte(i*len(alphabet)+i%len(alphabet))%byte(limit))
	}
	src = append(src, make([]byte, 64)...)
	got, err := candidate(bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := range 20 {
		if i > 0 && i%genGroup == 0 {
			want.WriteByte('-')
		}
		b := byte(i*len(alphabet)+i%len(alphabet)) % byte(limit)
		want.WriteByte(alphabet[int(b)%len(alphabet)])
	}
	if got != want.String() {
		t.Errorf("candidate = %q; want %q", got, want.String())
	}
}

// REQ: ID-6 — a broken random source fails loudly rather than producing a
// guessable password.
func TestGenerateBrokenSource(t *testing.T) {
	if _, err := Generate(bytes.NewReader(nil)); !errors.Is(err, io.EOF) {
		t.Errorf("Generate(empty) err = %v; want io.EOF", err)
	}
	// All zero bytes give "AAAAA-AAAAA-…", which the policy rejects every
	// time, so Generate gives up.
	if _, err := Generate(zeros{}); !errors.Is(err, errGenerate) {
		t.Errorf("Generate(zeros) err = %v; want errGenerate", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// REQ: ID-6, AUTH-5 — Policy.Generate also keeps the user's own data out.
func TestPolicyGenerateAvoidsUserData(t *testing.T) {
	p := testPolicy(t)
	// Names built from the alphabet so a plain draw would often contain them.
	u := UserContext{Names: []string{"abc", "def", "ghj", "kmn", "pqr", "stu", "vwx", "yz2", "345", "678"}}
	for range 200 {
		pw, err := p.Generate(rand.Reader, u)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Check(pw, u); err != nil {
			t.Fatalf("Policy.Generate returned a password that fails Check: %v", err)
		}
	}
	if _, err := p.Generate(zeros{}, u); !errors.Is(err, errGenerate) {
		t.Errorf("Policy.Generate(zeros) err = %v; want errGenerate", err)
	}
}
