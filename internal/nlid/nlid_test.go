package nlid

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// REQ: ID-4
func TestValidBSN(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"123456782", true}, // reference.md's example
		{"111222333", true},
		{"999999990", true},
		{"012345672", true}, // a leading zero is a digit like any other
		{"123456789", false},
		{"111222334", false},
		{"000000000", false}, // passes the sum, but all zeros is never a BSN
		{"12345678", false},  // eight digits: caller must pad, see doc
		{"23456782", false},
		{"0123456782", false},
		{"12345678a", false},
		{"12345678 ", false},
		{" 123456782", false},
		{"１23456782", false}, // full-width digit
		{"", false},
		{"-23456782", false},
	}
	for _, tt := range tests {
		if got := ValidBSN(tt.in); got != tt.want {
			t.Errorf("ValidBSN(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// The elfproef catches every single-digit typo: changing one digit of a
// valid BSN always makes it invalid.
// REQ: ID-4
func TestValidBSNCatchesSingleDigitErrors(t *testing.T) {
	for _, bsn := range []string{"123456782", "111222333", "999999990"} {
		for pos := range 9 {
			for d := byte('0'); d <= '9'; d++ {
				if bsn[pos] == d {
					continue
				}
				b := []byte(bsn)
				b[pos] = d
				if ValidBSN(string(b)) {
					t.Errorf("ValidBSN(%s) = true after changing digit %d of %s", b, pos, bsn)
				}
			}
		}
	}
}

// REQ: ID-2
func TestProfessionalIdentifiers(t *testing.T) {
	tests := []struct {
		name  string
		valid func(string) bool
		in    string
		want  bool
	}{
		{"URA", ValidURA, "12345678", true},
		{"URA 7 digits", ValidURA, "1234567", false},
		{"URA 9 digits", ValidURA, "123456789", false},
		{"URA letter", ValidURA, "1234567X", false},
		{"AGB", ValidAGB, "01234567", true},
		{"AGB 9 digits", ValidAGB, "012345678", false},
		{"AGB empty", ValidAGB, "", false},
		{"BIG", ValidBIG, "19012345601", true},
		{"BIG 10 digits", ValidBIG, "1901234560", false},
		{"BIG space", ValidBIG, "1901234560 ", false},
		{"UZI", ValidUZI, "123456789", true},
		{"UZI 8 digits", ValidUZI, "12345678", false},
		{"UZI sign", ValidUZI, "+12345678", false},
	}
	for _, tt := range tests {
		if got := tt.valid(tt.in); got != tt.want {
			t.Errorf("%s: valid(%q) = %v, want %v", tt.name, tt.in, got, tt.want)
		}
	}
}

// REQ: ID-2
func TestValidator(t *testing.T) {
	tests := []struct {
		system string
		value  string
		known  bool
		want   bool
	}{
		{SystemBSN, "123456782", true, true},
		{SystemBSN, "123456789", true, false},
		{SystemURA, "12345678", true, true},
		{SystemAGB, "1234567", true, false},
		{SystemBIG, "19012345601", true, true},
		{SystemUZIPers, "123456789", true, true},
		{SystemUZISys, "anything", false, false},
		{"http://example.org/mrn", "123", false, false},
	}
	for _, tt := range tests {
		v := Validator(tt.system)
		if (v != nil) != tt.known {
			t.Errorf("Validator(%q) known = %v, want %v", tt.system, v != nil, tt.known)
			continue
		}
		if v != nil && v(tt.value) != tt.want {
			t.Errorf("Validator(%q)(%q) = %v, want %v", tt.system, tt.value, v(tt.value), tt.want)
		}
	}
}

// REQ: ID-4
func TestGenerateBSN(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{}
	firstDigits := map[byte]bool{}
	for range 2000 {
		bsn, err := GenerateBSN(readerFunc(func(p []byte) (int, error) {
			for i := range p {
				p[i] = byte(r.Uint32())
			}
			return len(p), nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		if !ValidBSN(bsn) {
			t.Fatalf("GenerateBSN produced invalid BSN %q", bsn)
		}
		if bsn[0] == '0' {
			t.Fatalf("GenerateBSN produced %q with a leading zero", bsn)
		}
		seen[bsn] = true
		firstDigits[bsn[0]] = true
	}
	if len(seen) < 1990 {
		t.Errorf("only %d distinct BSNs in 2000 draws", len(seen))
	}
	if len(firstDigits) != 9 {
		t.Errorf("first digits used: %d, want all 9", len(firstDigits))
	}
}

func TestGenerateBSNReaderErrors(t *testing.T) {
	if _, err := GenerateBSN(bytes.NewReader([]byte{1, 2, 3})); !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		t.Errorf("short reader: err = %v, want EOF", err)
	}
	// A reader that only yields bytes the sampler rejects must not loop forever.
	if _, err := GenerateBSN(readerFunc(func(p []byte) (int, error) {
		for i := range p {
			p[i] = 255
		}
		return len(p), nil
	})); err == nil {
		t.Error("all-0xFF reader: no error")
	}
}

func FuzzValidBSN(f *testing.F) {
	for _, s := range []string{"123456782", "000000000", "", "12345678", "１23456782"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidBSN(s) {
			return
		}
		if !digits(s, 9) || s == "000000000" {
			t.Errorf("ValidBSN(%q) = true", s)
		}
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
