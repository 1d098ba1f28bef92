// Package nlid validates and generates Dutch identifiers for persons,
// professionals and organisations (BSN, BIG, UZI, AGB-Z, URA) and names their
// FHIR NamingSystem URIs.
//
// It promises only format checks: a value that passes is well formed (and,
// for the BSN, passes the elfproef); it does not say the number was ever
// issued. Every function is pure except GenerateBSN, which reads the
// randomness it is given.
package nlid

import (
	"errors"
	"fmt"
	"io"
)

// FHIR NamingSystem URIs of the Dutch identifiers (Nictiz, fhir.nl).
const (
	SystemBSN     = "http://fhir.nl/fhir/NamingSystem/bsn"
	SystemUZIPers = "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers"
	SystemUZISys  = "http://fhir.nl/fhir/NamingSystem/uzi-nr-sys"
	SystemURA     = "http://fhir.nl/fhir/NamingSystem/ura"
	SystemAGB     = "http://fhir.nl/fhir/NamingSystem/agb-z"
	SystemBIG     = "http://fhir.nl/fhir/NamingSystem/big"
)

// ValidBSN reports whether s is a burgerservicenummer: exactly nine ASCII
// digits that pass the elfproef 9A+8B+7C+6D+5E+4F+3G+2H−1·I ≡ 0 (mod 11),
// and not all zeros.
//
// Old BSNs were sometimes written with eight digits (the leading zero
// dropped). ValidBSN rejects them on purpose: a stored BSN always has nine
// digits, so that one person never has two spellings. Callers that accept
// eight-digit input must left-pad it with a zero themselves, visibly.
func ValidBSN(s string) bool {
	if !digits(s, 9) {
		return false
	}
	sum, zero := 0, true
	for i := range 8 {
		d := int(s[i] - '0')
		sum += (9 - i) * d
		zero = zero && d == 0
	}
	last := int(s[8] - '0')
	if zero && last == 0 {
		return false
	}
	return (sum-last)%11 == 0
}

// ValidURA reports whether s is a UZI-register abonneenummer (URA) of an
// organisation: exactly eight digits.
func ValidURA(s string) bool { return digits(s, 8) }

// ValidAGB reports whether s is an AGB-Z code: exactly eight digits.
func ValidAGB(s string) bool { return digits(s, 8) }

// ValidBIG reports whether s is a BIG-registration number: exactly eleven
// digits.
func ValidBIG(s string) bool { return digits(s, 11) }

// ValidUZI reports whether s is a UZI number of a person: exactly nine digits.
func ValidUZI(s string) bool { return digits(s, 9) }

// Validator returns the format check for the identifier system URI, or nil
// when the system is not one whose format this package knows (including the
// UZI system number, whose format the sources do not fix).
func Validator(system string) func(string) bool {
	switch system {
	case SystemBSN:
		return ValidBSN
	case SystemUZIPers:
		return ValidUZI
	case SystemURA:
		return ValidURA
	case SystemAGB:
		return ValidAGB
	case SystemBIG:
		return ValidBIG
	}
	return nil
}

// GenerateBSN returns a random valid BSN for synthetic and demo data, reading
// its randomness from r (crypto/rand.Reader in production, a seeded reader in
// tests). The first digit is never zero, like the BSNs issued today. The
// result is not guaranteed to be unissued: use it only in demo tenants.
func GenerateBSN(r io.Reader) (string, error) {
	var b [9]byte
	for {
		sum := 0
		for i := range 8 {
			d, err := randDigit(r, i == 0)
			if err != nil {
				return "", fmt.Errorf("nlid: generate BSN: %w", err)
			}
			b[i] = '0' + d
			sum += (9 - i) * int(d)
		}
		// The check digit I must satisfy I ≡ sum (mod 11); when that is 10 no
		// digit fits, so draw again.
		if c := sum % 11; c < 10 {
			b[8] = '0' + byte(c)
			return string(b[:]), nil
		}
	}
}

// randDigit draws a uniform decimal digit (1–9 when nonZero) by rejection
// sampling single bytes, so the result has no modulo bias.
func randDigit(r io.Reader, nonZero bool) (byte, error) {
	var one [1]byte
	for range 1 << 16 {
		if _, err := io.ReadFull(r, one[:]); err != nil {
			return 0, err
		}
		if nonZero {
			if one[0] < 252 { // 252 = 28·9
				return 1 + one[0]%9, nil
			}
			continue
		}
		if one[0] < 250 { // 250 = 25·10
			return one[0] % 10, nil
		}
	}
	return 0, errors.New("random source keeps returning out-of-range bytes")
}

// digits reports whether s is exactly n ASCII digits.
func digits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
