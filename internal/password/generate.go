package password

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// alphabet leaves out characters that are easily confused when read from a
// letter or a screen: 0/O/o, 1/l/I/i. 55 symbols give 5.78 bits each.
const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789"

// Generated passwords have genChars random symbols (115 bits) in groups of
// genGroup, joined by '-' so they can be read out and typed in chunks.
const (
	genChars = 20
	genGroup = 5
)

// genAttempts bounds the retries when a candidate breaks a rule; with a
// working random source a retry is needed in well under 1% of cases.
const genAttempts = 100

var errGenerate = errors.New("password: could not generate an acceptable password")

// Generate returns a random temporary or initial password (ID-6), such as
// "hK7mq-Ra3Xe-2ZbtN-wPq9d": 20 symbols from an unambiguous 55-symbol
// alphabet, more than 115 bits, that passes the structural rules of the
// policy. rand must be a cryptographic source such as crypto/rand.Reader.
// To also be sure it contains nothing of a particular user's data, use
// Policy.Generate.
func Generate(rand io.Reader) (string, error) {
	for range genAttempts {
		pw, err := candidate(rand)
		if err != nil {
			return "", err
		}
		if len(structural([]rune(strings.ToLower(pw)))) == 0 {
			return pw, nil
		}
	}
	return "", errGenerate
}

// Generate returns a password as the package-level Generate does that also
// passes p.Check for the account u.
func (p *Policy) Generate(rand io.Reader, u UserContext) (string, error) {
	for range genAttempts {
		pw, err := Generate(rand)
		if err != nil {
			return "", err
		}
		err = p.Check(pw, u)
		var vs Violations
		switch {
		case err == nil:
			return pw, nil
		case !errors.As(err, &vs):
			return "", err
		}
	}
	return "", errGenerate
}

// candidate draws genChars symbols uniformly by rejection sampling: bytes at
// or above the largest multiple of len(alphabet) are discarded so no symbol
// is more likely than another.
func candidate(rand io.Reader) (string, error) {
	const limit = 256 - 256%len(alphabet)
	var b strings.Builder
	buf := make([]byte, 32)
	n := 0
	for n < genChars {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return "", fmt.Errorf("password: reading randomness: %w", err)
		}
		for _, c := range buf {
			if int(c) >= limit || n == genChars {
				continue
			}
			if n > 0 && n%genGroup == 0 {
				b.WriteByte('-')
			}
			b.WriteByte(alphabet[int(c)%len(alphabet)])
			n++
		}
	}
	return b.String(), nil
}
