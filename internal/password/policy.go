package password

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Default lengths, in characters (runes) after NFKC. NIST SP 800-63B rev 4
// asks for at least 15 when a password is the only factor and at least 8
// inside MFA; zorgkluis uses 12 inside MFA. At least 64 must be allowed.
const (
	DefaultMinLength             = 12
	DefaultMinLengthPasswordOnly = 15
	DefaultMaxLength             = 128
)

// maxRun is the longest run of one character allowed ("aaa" passes,
// "aaaa" does not).
const maxRun = 3

// Code identifies why a password was rejected. The values are stable, so a
// user interface can map them to Dutch and English texts.
type Code string

// The reasons a Policy rejects a password.
const (
	CodeInvalid    Code = "invalid"     // not valid UTF-8, or contains control characters
	CodeTooShort   Code = "too_short"   // fewer than Limit characters
	CodeTooLong    Code = "too_long"    // more than Limit characters
	CodeOnlyDigits Code = "only_digits" // nothing but digits
	CodeRepeated   Code = "repeated"    // 4 or more identical characters in a row
	CodePattern    Code = "pattern"     // a keyboard/alphabet/digit sequence or a repeated chunk
	CodeCommon     Code = "common"      // a common, breached or dictionary password
	CodeUserData   Code = "user_data"   // contains the user's own data (see Field)
)

// Fields named by a CodeUserData violation.
const (
	FieldUserName  = "username"
	FieldEmail     = "email"
	FieldName      = "name"
	FieldBirthDate = "birthdate"
)

// Violation is one reason a password was rejected. Its Error text is English
// and never contains the password.
type Violation struct {
	Code  Code
	Limit int    // CodeTooShort, CodeTooLong: the bound in characters
	Field string // CodeUserData: which of the user's data, e.g. FieldName
}

func (v Violation) Error() string {
	switch v.Code {
	case CodeInvalid:
		return "password contains invalid characters"
	case CodeTooShort:
		return fmt.Sprintf("password must have at least %d characters", v.Limit)
	case CodeTooLong:
		return fmt.Sprintf("password must have at most %d characters", v.Limit)
	case CodeOnlyDigits:
		return "password must not consist of digits only"
	case CodeRepeated:
		return fmt.Sprintf("password must not repeat a character more than %d times in a row", maxRun)
	case CodePattern:
		return "password must not be a simple sequence or repeated pattern"
	case CodeCommon:
		return "password is too common or a dictionary word"
	case CodeUserData:
		return "password must not contain your " + v.Field
	}
	return "password rejected: " + string(v.Code)
}

// Is makes errors.Is(err, Violation{Code: c}) true for any violation with
// code c, whatever its Limit or Field.
func (v Violation) Is(target error) bool {
	t, ok := target.(Violation)
	return ok && t.Code == v.Code
}

// Violations is the error Check returns: every rule the password broke, in a
// fixed order.
type Violations []Violation

func (vs Violations) Error() string {
	msgs := make([]string, len(vs))
	for i, v := range vs {
		msgs[i] = v.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap lets errors.Is and errors.As see each Violation.
func (vs Violations) Unwrap() []error {
	errs := make([]error, len(vs))
	for i, v := range vs {
		errs[i] = v
	}
	return errs
}

// Has reports whether any violation has code c.
func (vs Violations) Has(c Code) bool {
	return slices.ContainsFunc(vs, func(v Violation) bool { return v.Code == c })
}

// UserContext is what is known about the account, to reject passwords built
// from it. Empty fields are skipped.
type UserContext struct {
	UserName  string
	Email     string
	Names     []string  // given names, family name, nickname…
	BirthDate time.Time // zero when unknown
	// PasswordOnly marks an account where the password is the only factor;
	// the longer MinLengthPasswordOnly then applies.
	PasswordOnly bool
}

// Policy judges new passwords. The zero value applies the defaults and the
// embedded list. A Policy must not be copied after first use; it is safe for
// concurrent use.
type Policy struct {
	MinLength             int // zero: DefaultMinLength
	MinLengthPasswordOnly int // zero: DefaultMinLengthPasswordOnly
	MaxLength             int // zero: DefaultMaxLength
	// Common is the blocklist; nil means the embedded list, loaded on first
	// use. Set it to share one loaded list between several Policies.
	Common *Blocklist

	once    sync.Once
	list    *Blocklist
	listErr error
}

func (p *Policy) blocklist() (*Blocklist, error) {
	p.once.Do(func() {
		if p.Common != nil {
			p.list = p.Common
			return
		}
		p.list, p.listErr = LoadCommon()
	})
	return p.list, p.listErr
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// Check judges password for the account described by u. It returns nil when
// the password is acceptable, Violations listing every broken rule, or
// another error when the blocklist cannot be loaded. Callers should hash
// exactly the password they checked; Hash normalises it the same way.
func (p *Policy) Check(password string, u UserContext) error {
	if !utf8.ValidString(password) {
		return Violations{{Code: CodeInvalid}}
	}
	pw := Normalize(password)
	for _, r := range pw {
		if unicode.IsControl(r) {
			return Violations{{Code: CodeInvalid}}
		}
	}
	length := utf8.RuneCountInString(pw)
	lower := strings.ToLower(pw)
	runes := []rune(lower)

	var vs Violations
	minLen := orDefault(p.MinLength, DefaultMinLength)
	if u.PasswordOnly {
		minLen = max(minLen, orDefault(p.MinLengthPasswordOnly, DefaultMinLengthPasswordOnly))
	}
	maxLen := orDefault(p.MaxLength, DefaultMaxLength)
	if length < minLen {
		vs = append(vs, Violation{Code: CodeTooShort, Limit: minLen})
	}
	if length > maxLen {
		// Nothing else matters, and the other rules need not run on
		// arbitrarily long input.
		return Violations{{Code: CodeTooLong, Limit: maxLen}}
	}
	vs = append(vs, structural(runes)...)

	list, err := p.blocklist()
	if err != nil {
		return err
	}
	if list.matches(lower) {
		vs = append(vs, Violation{Code: CodeCommon})
	}
	for _, f := range userDataFields(lower, u) {
		vs = append(vs, Violation{Code: CodeUserData, Field: f})
	}
	if len(vs) == 0 {
		return nil
	}
	return vs
}

// structural applies the rules that need no list and no user data, on the
// lower-cased runes.
func structural(runes []rune) []Violation {
	var vs []Violation
	if len(runes) > 0 && !slices.ContainsFunc(runes, func(r rune) bool { return !unicode.IsDigit(r) }) {
		vs = append(vs, Violation{Code: CodeOnlyDigits})
	}
	if longestRun(runes) > maxRun {
		vs = append(vs, Violation{Code: CodeRepeated})
	}
	if isSequence(runes) || isRepeatedChunk(runes) {
		vs = append(vs, Violation{Code: CodePattern})
	}
	return vs
}

func longestRun(runes []rune) int {
	longest, run := 0, 0
	for i, r := range runes {
		if i > 0 && r == runes[i-1] {
			run++
		} else {
			run = 1
		}
		longest = max(longest, run)
	}
	return longest
}

// sequences are orders people walk along: the alphabet, the digits, and the
// letter rows of QWERTY and of the Belgian AZERTY keyboard.
var sequences = [...]string{
	"abcdefghijklmnopqrstuvwxyz",
	"0123456789",
	"qwertyuiopasdfghjklzxcvbnm",
	"azertyuiopqsdfghjklmwxcvbn",
}

// isSequence reports whether the whole password (at least 4 characters)
// walks one of the sequences forwards or backwards, wrapping around
// ("123456789012", "zyxwvutsrqpo").
func isSequence(runes []rune) bool {
	if len(runes) < 4 {
		return false
	}
	s := string(runes)
	rev := make([]rune, len(runes))
	for i, r := range runes {
		rev[len(runes)-1-i] = r
	}
	r := string(rev)
	for _, seq := range sequences {
		cycle := strings.Repeat(seq, len(runes)/len(seq)+2)
		if strings.Contains(cycle, s) || strings.Contains(cycle, r) {
			return true
		}
	}
	return false
}

// isRepeatedChunk reports whether the password is one chunk of at most half
// its length said over and over ("abcabcabcabc", "wachtwoordwachtwoord",
// also with a partial chunk at the end). The shortest period of a string is
// its length minus its longest proper prefix that is also a suffix (the
// Knuth-Morris-Pratt failure function), so this takes linear time.
func isRepeatedChunk(runes []rune) bool {
	n := len(runes)
	if n < 2 {
		return false
	}
	border := make([]int, n) // border[i]: longest proper border of runes[:i+1]
	for i := 1; i < n; i++ {
		k := border[i-1]
		for k > 0 && runes[i] != runes[k] {
			k = border[k-1]
		}
		if runes[i] == runes[k] {
			k++
		}
		border[i] = k
	}
	return n-border[n-1] <= n/2
}

// Dutch name particles are too common in ordinary words to forbid
// ("vandaag", "dertig"); the rest of the name still counts.
var particles = map[string]bool{
	"van": true, "der": true, "den": true, "ter": true, "ten": true,
	"het": true, "des": true, "aan": true, "uit": true, "von": true,
}

// userDataFields returns which of u's data occur in lower, compared without
// case or diacritics, each field at most once.
func userDataFields(lower string, u UserContext) []string {
	pw := fold(lower)
	// Also compare with separators removed, so "jan.de.vries" in the
	// password is caught by the name "de Vries" → "devries".
	squeezed := strings.Map(dropSeparator, pw)
	contains := func(tok string) bool {
		return strings.Contains(pw, tok) || strings.Contains(squeezed, tok)
	}
	anyToken := func(values ...string) bool {
		for _, v := range values {
			for _, tok := range tokens(v) {
				if contains(tok) {
					return true
				}
			}
		}
		return false
	}
	var fields []string
	if anyToken(u.UserName) {
		fields = append(fields, FieldUserName)
	}
	if u.Email != "" {
		local, _, _ := strings.Cut(u.Email, "@")
		if anyToken(local) {
			fields = append(fields, FieldEmail)
		}
	}
	if anyToken(u.Names...) {
		fields = append(fields, FieldName)
	}
	if !u.BirthDate.IsZero() {
		for _, layout := range dateLayouts {
			if strings.Contains(pw, u.BirthDate.Format(layout)) {
				fields = append(fields, FieldBirthDate)
				break
			}
		}
	}
	return fields
}

// dateLayouts are how Dutch users write a date, plus ISO 8601.
var dateLayouts = [...]string{
	"20060102", "02012006", "020106",
	"2006-01-02", "02-01-2006", "2-1-2006",
	"02/01/2006", "2/1/2006", "02.01.2006", "2.1.2006",
}

// tokens returns the parts of a user datum worth forbidding: the whole value
// with and without separators, and each part of at least 3 characters that
// is not a name particle.
func tokens(v string) []string {
	v = fold(strings.ToLower(Normalize(v)))
	var out []string
	add := func(t string) {
		if utf8.RuneCountInString(t) >= 3 && !particles[t] && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	add(strings.TrimSpace(v))
	add(strings.Map(dropSeparator, v))
	for _, part := range strings.FieldsFunc(v, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		add(part)
	}
	return out
}

func dropSeparator(r rune) rune {
	if unicode.IsLetter(r) || unicode.IsDigit(r) {
		return r
	}
	return -1
}

// fold removes diacritics so "Zoë" and "zoe" compare equal.
func fold(s string) string {
	d := norm.NFD.String(s)
	d = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Mn, r) {
			return -1
		}
		return r
	}, d)
	return norm.NFC.String(d)
}
