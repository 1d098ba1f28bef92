package sso

import "slices"

// Factor categories of RFC 8176's amr values. Two factors count only when
// they come from two different categories: a password and a PIN are two
// things the user knows, one category (AUTH-1).
const (
	knowledge  = "knowledge"
	possession = "possession"
	inherence  = "inherence"
)

var amrCategory = map[string]string{
	"pwd": knowledge, "pin": knowledge, "kba": knowledge, "wia": knowledge,
	"otp": possession, "hwk": possession, "swk": possession, "sms": possession, "tel": possession,
	"sc": possession, "pop": possession, "mca": possession,
	"fpt": inherence, "face": inherence, "iris": inherence, "retina": inherence, "vbm": inherence,
}

// twoFactors reports whether amr proves factors of two categories, counting
// only the values the provider is allowed to assert (all when allowed is
// empty). "mfa" is the provider's own word for two: it counts as such.
// Values outside RFC 8176 (or "user", "rba", "geo", which prove no factor)
// count for nothing.
func twoFactors(amr, allowed []string) bool {
	cats := map[string]bool{}
	for _, v := range amr {
		if len(allowed) > 0 && !slices.Contains(allowed, v) {
			continue
		}
		if v == "mfa" {
			return true
		}
		if c, ok := amrCategory[v]; ok {
			cats[c] = true
		}
	}
	return len(cats) >= 2
}
