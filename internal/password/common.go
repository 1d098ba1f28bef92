package password

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// commonGz is the list of common, breached and dictionary passwords: one
// NFKC-normalised, lower-cased entry of 4 to 128 characters per line, sorted
// by bytes, gzip-compressed. gen/ rebuilds it; README.md names the sources.
//
//go:embed common.txt.gz
var commonGz []byte

// Blocklist is an immutable, sorted set of forbidden passwords. It keeps the
// entries in one string with an offset table (about 7 MB for the embedded
// list, a third of what a map would take) and answers by binary search.
// It is safe for concurrent use.
type Blocklist struct {
	data string   // entries, each followed by '\n'
	offs []uint32 // start of each entry in data
}

// LoadCommon decompresses and indexes the embedded list. It takes about
// 50 ms; load it once and share it between Policies.
func LoadCommon() (*Blocklist, error) {
	zr, err := gzip.NewReader(bytes.NewReader(commonGz))
	if err != nil {
		return nil, fmt.Errorf("password: opening embedded list: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("password: reading embedded list: %w", err)
	}
	if len(raw) > math.MaxUint32 {
		return nil, fmt.Errorf("password: embedded list too large")
	}
	data := string(raw)
	offs := make([]uint32, 0, strings.Count(data, "\n"))
	prev := ""
	for start := 0; start < len(data); {
		end := strings.IndexByte(data[start:], '\n')
		if end < 0 {
			return nil, fmt.Errorf("password: embedded list: last line unterminated")
		}
		entry := data[start : start+end]
		// The search depends on strict order; a badly rebuilt file must fail
		// loudly rather than quietly miss entries.
		if len(offs) > 0 && entry <= prev {
			return nil, fmt.Errorf("password: embedded list not sorted at line %d", len(offs)+1)
		}
		offs = append(offs, uint32(start))
		prev = entry
		start += end + 1
	}
	return &Blocklist{data: data, offs: offs}, nil
}

// Len returns the number of entries.
func (b *Blocklist) Len() int { return len(b.offs) }

// entry returns the i-th entry without its newline.
func (b *Blocklist) entry(i int) string {
	s := b.data[b.offs[i]:]
	return s[:strings.IndexByte(s, '\n')]
}

// has reports whether the already normalised, lower-cased s is an entry.
func (b *Blocklist) has(s string) bool {
	i := sort.Search(len(b.offs), func(i int) bool { return b.entry(i) >= s })
	return i < len(b.offs) && b.entry(i) == s
}

// Contains reports whether password, case-insensitively after NFKC, is on
// the list, or becomes an entry of at least 4 characters once leading and
// trailing digits, punctuation and spaces are stripped ("Welkom2024!"), or
// once common look-alike substitutions are undone ("p@ssw0rd").
func (b *Blocklist) Contains(password string) bool {
	return b.matches(strings.ToLower(Normalize(password)))
}

func (b *Blocklist) matches(lower string) bool {
	for _, s := range [2]string{lower, unleet(lower)} {
		if b.has(s) {
			return true
		}
		base := strings.TrimFunc(s, func(r rune) bool { return !unicode.IsLetter(r) })
		if base != s && utf8.RuneCountInString(base) >= 4 && b.has(base) {
			return true
		}
	}
	return false
}

// unleet undoes the look-alike substitutions people use to dress up a
// common word. Digits at either end are left alone so "welkom01" still
// reduces to "welkom" after stripping.
func unleet(s string) string {
	core := strings.TrimFunc(s, unicode.IsDigit)
	if core == "" {
		return s
	}
	i := strings.Index(s, core)
	mapped := strings.Map(func(r rune) rune {
		switch r {
		case '0':
			return 'o'
		case '1', '!':
			return 'i'
		case '3':
			return 'e'
		case '4', '@':
			return 'a'
		case '5', '$':
			return 's'
		case '7':
			return 't'
		}
		return r
	}, core)
	return s[:i] + mapped + s[i+len(core):]
}
