package password

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// REQ: AUTH-5 — common, breached and dictionary passwords: the embedded list
// holds at least 100,000 entries, each in the form the policy compares.
func TestEmbeddedListSizeAndForm(t *testing.T) {
	list, err := loadList()
	if err != nil {
		t.Fatal(err)
	}
	if n := list.Len(); n < 100_000 {
		t.Fatalf("embedded list has %d entries; want at least 100,000", n)
	}
	prev := ""
	for i := range list.Len() {
		e := list.entry(i)
		n := utf8.RuneCountInString(e)
		if n < 4 || n > DefaultMaxLength || e != strings.ToLower(Normalize(e)) || strings.ContainsFunc(e, unicode.IsControl) {
			t.Fatalf("entry %d (%d runes) is not a normalised, lower-cased entry of 4..128 runes", i, n)
		}
		if i > 0 && e <= prev {
			t.Fatalf("entry %d out of order", i)
		}
		prev = e
	}
}

// REQ: AUTH-5 — known common passwords are on the list, case-insensitively;
// ordinary passphrases are not.
func TestBlocklistContains(t *testing.T) {
	list, err := loadList()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		password string
		want     bool
	}{
		{"welkom01", true},
		{"password123", true},
		{"qwerty123456", true},
		{"wachtwoord", true},
		{"123456789", true},
		{"iloveyou", true},
		{"PassWord123", true},
		{"WELKOM01", true},
		{"ｗｅｌｋｏｍ０１", true},       // fullwidth, NFKC
		{"Zonnebloem", true},     // Dutch dictionary word
		{"Amsterdam2024!", true}, // word plus year and symbol
		{"!!Voetbal", true},      // word with leading symbols
		{"W3lk0m01", true},       // look-alikes undone
		{"p@$$w0rd", true},
		{"paard batterij nietje correct", false},
		{"Kx9#mq2!Lpzt", false},
		{"hK7mq-Ra3Xe-2ZbtN-wPq9d", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := list.Contains(tt.password); got != tt.want {
			t.Errorf("Contains(%q) = %v; want %v", tt.password, got, tt.want)
		}
	}
}

func TestUnleet(t *testing.T) {
	tests := map[string]string{
		"p@ssw0rd":   "password",
		"w3lk0m01":   "welkom01",
		"2024s0mmer": "2024sommer",
		"123456":     "123456",
		"plain":      "plain",
	}
	for in, want := range tests {
		if got := unleet(in); got != want {
			t.Errorf("unleet(%q) = %q; want %q", in, got, want)
		}
	}
}

// BenchmarkCommonCheck measures one case-insensitive look-up with its
// stripped and look-alike variants.
func BenchmarkCommonCheck(b *testing.B) {
	list, err := loadList()
	if err != nil {
		b.Fatal(err)
	}
	words := []string{"Welkom2024!", "paard batterij nietje correct", "qwerty123456", "Kx9#mq2!Lpzt"}
	i := 0
	for b.Loop() {
		list.Contains(words[i%len(words)])
		i++
	}
}

// BenchmarkLoadCommon measures decompressing and indexing the embedded list,
// paid once per process.
func BenchmarkLoadCommon(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadCommon(); err != nil {
			b.Fatal(err)
		}
	}
}
