package password

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// loadList shares one decompressed list between the tests of this package.
var loadList = sync.OnceValues(LoadCommon)

func testPolicy(t testing.TB) *Policy {
	t.Helper()
	list, err := loadList()
	if err != nil {
		t.Fatalf("LoadCommon: %v", err)
	}
	return &Policy{Common: list}
}

func codes(err error) []Code {
	var vs Violations
	if !errors.As(err, &vs) {
		return nil
	}
	var out []Code
	for _, v := range vs {
		out = append(out, v.Code)
	}
	return out
}

// sentence128 is a passphrase of exactly the default maximum length.
const sentence128 = "De zon scheen fel boven het IJsselmeer terwijl wij met de fiets naar Dokkum reden, langs dijken, weilanden en oude boerderijen!!"

var jan = UserContext{
	UserName:  "jdevries",
	Email:     "jan.devries@example.nl",
	Names:     []string{"Jan", "de Vries"},
	BirthDate: time.Date(1980, time.January, 31, 0, 0, 0, 0, time.UTC),
}

// REQ: AUTH-5 — strength enforced NIST 800-63B style: minimum and maximum
// length, Unicode accepted after NFKC, no composition rules; common,
// breached and dictionary passwords, the user's own data, only digits, runs
// of identical characters and trivial sequences rejected.
func TestPolicyCheck(t *testing.T) {
	p := testPolicy(t)
	tests := []struct {
		name     string
		password string
		user     UserContext
		want     []Code // all must be reported; empty means accepted
	}{
		// Accepted: length is what counts, no composition rules.
		{"passphrase", "paard batterij nietje correct", UserContext{}, nil},
		{"passphrase for Jan", "paard batterij nietje correct", jan, nil},
		{"lower-case letters only", "zwembadtegelvoeg", UserContext{}, nil},
		{"exactly 12", "Kx9#mq2!Lpzt", UserContext{}, nil},
		{"Unicode", "Ĳsselmeer ☀ wandeling 🚲", UserContext{}, nil},
		{"Dutch accents", "één reünie in Curaçao, ça va", UserContext{}, nil},
		{"three identical allowed", "zaaag-Kx9#mq2p", UserContext{}, nil},
		{"spaces allowed", "   Kx9#mq2!Lp   ", UserContext{}, nil},
		{"128 characters", sentence128, UserContext{}, nil},
		{"short name not a token", "Boterham-Kx9#mqz", UserContext{Names: []string{"Bo"}}, nil},
		{"name particle ignored", "Vandaag-Kx9#mqz2", UserContext{Names: []string{"van Dijk"}}, nil},

		// Length.
		{"too short", "Kx9#mq2!Lpz", UserContext{}, []Code{CodeTooShort}},
		{"password-only needs 15", "Kx9#mq2!Lpzt-w", UserContext{PasswordOnly: true}, []Code{CodeTooShort}},
		{"password-only 15 ok", "Kx9#mq2!Lpzt-wu", UserContext{PasswordOnly: true}, nil},
		{"129 characters", sentence128 + "x", UserContext{}, []Code{CodeTooLong}},
		{"too long", strings.Repeat("Kx9#mq2!Lpzt-", 10), UserContext{}, []Code{CodeTooLong}},
		{"combining marks do not count twice", "cafe\u0301cafe\u0301ca", UserContext{}, []Code{CodeTooShort}},
		{"empty", "", UserContext{}, []Code{CodeTooShort}},

		// Invalid input.
		{"invalid UTF-8", "Kx9#mq2!Lpzt\xff", UserContext{}, []Code{CodeInvalid}},
		{"NUL", "Kx9#mq2!\x00Lpzt", UserContext{}, []Code{CodeInvalid}},
		{"newline", "Kx9#mq2!Lpzt\n", UserContext{}, []Code{CodeInvalid}},

		// Only digits.
		{"only digits", "739182640573", UserContext{}, []Code{CodeOnlyDigits}},
		{"fullwidth digits", "７３９１８２６４０５７３", UserContext{}, []Code{CodeOnlyDigits}},

		// Runs of identical characters.
		{"four identical", "Kx9#aaaa-mq2p", UserContext{}, []Code{CodeRepeated}},
		{"four identical any case", "Kx9#aAaA-mq2p", UserContext{}, []Code{CodeRepeated}},
		{"four identical symbols", "Kx9#!!!!-mq2p", UserContext{}, []Code{CodeRepeated}},
		{"all one character", "zzzzzzzzzzzzzzzz", UserContext{}, []Code{CodeRepeated, CodePattern}},

		// Trivial sequences and repeats.
		{"digit run wrapping", "123456789012", UserContext{}, []Code{CodePattern, CodeOnlyDigits}},
		{"alphabet", "abcdefghijkl", UserContext{}, []Code{CodePattern}},
		{"alphabet backwards", "ZYXWVUTSRQPO", UserContext{}, []Code{CodePattern}},
		{"alphabet wrapping", "wxyzabcdefgh", UserContext{}, []Code{CodePattern}},
		{"qwerty row walk", "qwertyuiopas", UserContext{}, []Code{CodePattern}},
		{"azerty row walk", "azertyuiopqsdf", UserContext{}, []Code{CodePattern}},
		{"repeated chunk", "abcabcabcabc", UserContext{}, []Code{CodePattern}},
		{"repeated word", "zwembadzwembad", UserContext{}, []Code{CodePattern}},
		{"repeated pair", "k9k9k9k9k9k9", UserContext{}, []Code{CodePattern}},

		// Common, breached and dictionary passwords.
		{"welkom01", "welkom01", UserContext{}, []Code{CodeCommon, CodeTooShort}},
		{"password123", "password123", UserContext{}, []Code{CodeCommon}},
		{"qwerty123456", "qwerty123456", UserContext{}, []Code{CodeCommon}},
		{"case-insensitive", "QwErTy123456", UserContext{}, []Code{CodeCommon}},
		{"fullwidth common", "ｑｗｅｒｔｙ１２３４５６", UserContext{}, []Code{CodeCommon}},
		{"Dutch word with year", "Zonnebloem2024!", UserContext{}, []Code{CodeCommon}},
		{"Dutch word with digits", "wachtwoord123456", UserContext{}, []Code{CodeCommon}},
		{"look-alikes", "P@ssw0rd12345", UserContext{}, []Code{CodeCommon}},
		{"look-alikes Dutch", "W@chtw00rd2024", UserContext{}, []Code{CodeCommon}},
		{"breached long", "iloveyou1234", UserContext{}, []Code{CodeCommon}},

		// The user's own data.
		{"user name", "Jdevries-Kx9#mq", jan, []Code{CodeUserData}},
		{"e-mail local part", "Kx9#jan.devries!", jan, []Code{CodeUserData}},
		{"family name", "Kx9#VRIES-mq2plo", jan, []Code{CodeUserData}},
		{"family name joined", "Kx9#DeVries-mq2p", jan, []Code{CodeUserData}},
		{"given name", "Kx9#mq2plo-jan!", jan, []Code{CodeUserData}},
		{"birth date ISO compact", "Kx9#mq2plo19800131", jan, []Code{CodeUserData}},
		{"birth date Dutch compact", "31011980-Kx9#mqz", jan, []Code{CodeUserData}},
		{"birth date Dutch dashes", "31-01-1980-Kx9#m", jan, []Code{CodeUserData}},
		{"birth date ISO", "1980-01-31Kx9#mq", jan, []Code{CodeUserData}},
		{"birth date slashes", "Kx9#mq 31/01/1980", jan, []Code{CodeUserData}},
		{"birth date short year", "Kx9#mq2plo310180", jan, []Code{CodeUserData}},
		{"diacritics folded", "Kx9#mq-zoe-2plo", UserContext{Names: []string{"Zoë"}}, []Code{CodeUserData}},
		{"fullwidth name", "Kx9#ｖｒｉｅｓ-mq2p", jan, []Code{CodeUserData}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Check(tt.password, tt.user)
			got := codes(err)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Check rejected it: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check accepted it; want %v", tt.want)
			}
			for _, c := range tt.want {
				if !slices.Contains(got, c) {
					t.Errorf("Check = %v; want %v among them", got, c)
				}
			}
			// Secrets never in error strings.
			if strings.TrimSpace(tt.password) != "" && strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.password)) {
				t.Errorf("error text contains the password")
			}
		})
	}
}

// REQ: AUTH-5 — a UI can tell which rule failed and translate it.
func TestViolationsAreTyped(t *testing.T) {
	p := testPolicy(t)
	err := p.Check("jdevries", jan)
	var vs Violations
	if !errors.As(err, &vs) {
		t.Fatalf("Check error %T is not Violations", err)
	}
	if !vs.Has(CodeTooShort) || !vs.Has(CodeUserData) || vs.Has(CodeOnlyDigits) {
		t.Errorf("Violations = %v", vs)
	}
	if !errors.Is(err, Violation{Code: CodeTooShort}) || errors.Is(err, Violation{Code: CodeTooLong}) {
		t.Errorf("errors.Is does not match violations by code")
	}
	var v Violation
	if !errors.As(err, &v) || v.Code != CodeTooShort || v.Limit != DefaultMinLength {
		t.Errorf("first violation = %+v; want too_short with limit %d", v, DefaultMinLength)
	}
	var fields []string
	for _, v := range vs {
		if v.Code == CodeUserData {
			fields = append(fields, v.Field)
		}
	}
	if want := []string{FieldUserName, FieldEmail, FieldName}; !slices.Equal(fields, want) {
		t.Errorf("user data fields = %v; want %v", fields, want)
	}
	for _, c := range []Code{CodeInvalid, CodeTooShort, CodeTooLong, CodeOnlyDigits, CodeRepeated, CodePattern, CodeCommon, CodeUserData} {
		if msg := (Violation{Code: c, Limit: 12, Field: FieldName}).Error(); strings.Contains(msg, "rejected: ") {
			t.Errorf("code %s has no message of its own: %q", c, msg)
		}
	}
}

// REQ: AUTH-5 — lengths are configurable.
func TestPolicyConfigurableLengths(t *testing.T) {
	list, err := loadList()
	if err != nil {
		t.Fatal(err)
	}
	p := &Policy{MinLength: 8, MinLengthPasswordOnly: 20, MaxLength: 64, Common: list}
	tests := []struct {
		password string
		user     UserContext
		want     []Code
	}{
		{"Kx9#mq2p", UserContext{}, nil},
		{"Kx9#mq2", UserContext{}, []Code{CodeTooShort}},
		{"Kx9#mq2!Lpzt-wuvbn", UserContext{PasswordOnly: true}, []Code{CodeTooShort}},
		{"Kx9#mq2!Lpzt-wuvbn-z", UserContext{PasswordOnly: true}, nil},
		{strings.Repeat("Kx9#mq2!Lp", 6) + "zwvn", UserContext{}, nil},
		{strings.Repeat("Kx9#mq2!Lp", 6) + "zwvnb", UserContext{}, []Code{CodeTooLong}},
	}
	for _, tt := range tests {
		got := codes(p.Check(tt.password, tt.user))
		if !slices.Equal(got, tt.want) {
			t.Errorf("Check(%d runes, password-only %v) = %v; want %v", utf8.RuneCountInString(tt.password), tt.user.PasswordOnly, got, tt.want)
		}
	}
	var vs Violations
	if errors.As(p.Check("Kx9#mq2", UserContext{}), &vs); vs[0].Limit != 8 {
		t.Errorf("too_short limit = %d; want the configured 8", vs[0].Limit)
	}
}

// REQ: AUTH-5 — an over-long password is reported as too long and nothing
// else, so the other rules never run on arbitrarily large input.
func TestPolicyHugeInput(t *testing.T) {
	p := testPolicy(t)
	got := codes(p.Check(strings.Repeat("aaaa", 1<<18), jan))
	if !slices.Equal(got, []Code{CodeTooLong}) {
		t.Errorf("Check(1 MiB) = %v; want [too_long]", got)
	}
}

// REQ: AUTH-5 — the zero Policy works and loads the embedded list itself.
func TestZeroPolicyLoadsEmbeddedList(t *testing.T) {
	var p Policy
	if err := p.Check("qwerty123456", UserContext{}); !errors.Is(err, Violation{Code: CodeCommon}) {
		t.Errorf("zero Policy: Check(qwerty123456) = %v; want common", err)
	}
	if err := p.Check("paard batterij nietje correct", UserContext{}); err != nil {
		t.Errorf("zero Policy rejected a good passphrase: %v", err)
	}
}

// REQ: AUTH-5 — Normalize is NFKC.
func TestNormalize(t *testing.T) {
	tests := map[string]string{
		"ｐａｓｓｗｏｒｄ":   "password",
		"Ĳssel":      "IJssel",
		"cafe\u0301": "caf\u00e9",
		"ﬁets":       "fiets",
		"x²":         "x2",
		"Ⅻ":          "XII",
		"plain":      "plain",
	}
	for in, want := range tests {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestStructuralHelpers(t *testing.T) {
	runs := map[string]int{"": 0, "a": 1, "abba": 2, "xaaay": 3, "aaaa": 4}
	for s, want := range runs {
		if got := longestRun([]rune(s)); got != want {
			t.Errorf("longestRun(%q) = %d; want %d", s, got, want)
		}
	}
	seq := map[string]bool{"abcd": true, "abc": false, "dcba": true, "9012": true, "mnbvcxzl": true, "abce": false, "hjkl": true}
	for s, want := range seq {
		if got := isSequence([]rune(s)); got != want {
			t.Errorf("isSequence(%q) = %v; want %v", s, got, want)
		}
	}
	rep := map[string]bool{"abab": true, "ababa": true, "abcab": false, "aa": true, "a": false, "": false,
		"abcdabcdx": false, "abcabcab": true, "aab": false, "abaab": false, "abaaba": true}
	for s, want := range rep {
		if got := isRepeatedChunk([]rune(s)); got != want {
			t.Errorf("isRepeatedChunk(%q) = %v; want %v", s, got, want)
		}
	}
	if got := fold("Zoë Müller-Çelik"); got != "Zoe Muller-Celik" {
		t.Errorf("fold = %q", got)
	}
}

// BenchmarkCheck measures the whole policy on a good passphrase with user
// data, the common case at registration and password change.
func BenchmarkCheck(b *testing.B) {
	p := testPolicy(b)
	for b.Loop() {
		if err := p.Check("paard batterij nietje correct", jan); err != nil {
			b.Fatal(err)
		}
	}
}
