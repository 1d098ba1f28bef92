package web

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
)

// The security events' details are written by their producers (access,
// authn, pki) in English, for the operators' logs and the API, where they
// stay as recorded. The officer's page says the ones it knows in the
// reader's language: each known form is a pattern whose groups become the
// arguments of a locale text ("evd." keys), with times in Dutch form
// (dd-mm-jjjj HH:MM, Amsterdam), durations, categories and roles in words.
// A detail of no known form (a reviewer's note, a backup's error) is shown
// as recorded.

// An argument's kind says how a group is said.
type detailArg int

const (
	argText     detailArg = iota // as recorded
	argTime                      // an RFC 3339 time
	argDuration                  // a Go duration ("15m0s")
	argCats                      // categories, comma-separated
	argRole                      // a role's code (a tenant's own role as named)
	argQuoted                    // a Go-quoted string
)

type detailForm struct {
	kind string
	re   *regexp.Regexp
	args []detailArg
}

// detailForms are the known details by event kind; the locale key is
// "evd." + kind (the first form of a kind) or "evd." + kind + "." + n.
var detailForms = []detailForm{
	{"account-attack", regexp.MustCompile(`^(\d+) failed log-ons within (\S+)$`), []detailArg{argText, argDuration}},
	{"source-attack", regexp.MustCompile(`^(\d+) failed log-ons from one source within (\S+)$`), []detailArg{argText, argDuration}},
	{"privilege-mix", regexp.MustCompile(`^account holds an everyday role and an admin/operator role \(AUTH-8\)$`), nil},
	{"webauthn-sign-count", regexp.MustCompile(`^security key ("(?:[^"\\]|\\.)*"): signature counter (\d+) not above the stored (\d+); the key may be cloned$`),
		[]detailArg{argQuoted, argText, argText}},
	{"emergency-access", regexp.MustCompile(`(?s)^until (\S+): (.*)$`), []detailArg{argTime, argText}},
	{"operator-access-requested", regexp.MustCompile(`(?s)^(\d+) patient\(s\), categories ([^ ]*), ([0-9.hmsµun]+): (.*)$`),
		[]detailArg{argText, argCats, argDuration, argText}},
	{"right-requested", regexp.MustCompile(`^role (\S+)$`), []detailArg{argRole}},
	{"right-approved", regexp.MustCompile(`^role (\S+)$`), []detailArg{argRole}},
	{"right-rejected", regexp.MustCompile(`^role (\S+)$`), []detailArg{argRole}},
	{"right-revoked", regexp.MustCompile(`^role (\S+)$`), []detailArg{argRole}},
	{"right-revoked", regexp.MustCompile(`^role (\S+) revoked in the access review$`), []detailArg{argRole}},
	{"role-definition-proposed", regexp.MustCompile(`^role (.+) proposed by (.+)$`), []detailArg{argRole, argText}},
	{"certificate-expiring", regexp.MustCompile(`^the system's certificate (\S+) expires at (\S+); renew it$`), []detailArg{argText, argTime}},
}

// userNameSuffix is what authn adds to a log-on event's detail: the user
// name that was typed.
var userNameSuffix = regexp.MustCompile(`^(?s)(.*) \(user name (.+)\)$`)

// eventDetail says an event's detail in lang.
func (s *server) eventDetail(lang, kind, detail string) string {
	if kind == "operator-access-denied" {
		// "read: <access's refusal>", said in the reader's language.
		if act, reason, ok := strings.Cut(detail, ": "); ok {
			return s.code(lang, "act.", act) + ": " + s.refusal(lang, reason)
		}
		return detail
	}
	body, user := detail, ""
	if m := userNameSuffix.FindStringSubmatch(detail); m != nil {
		body, user = m[1], m[2]
	}
	out, ok := s.detailText(lang, kind, body)
	if !ok {
		return detail
	}
	if user != "" {
		out += " " + fmt.Sprintf(msg(lang, "evd.username"), user)
	}
	return out
}

func (s *server) detailText(lang, kind, body string) (string, bool) {
	n := 0
	for _, f := range detailForms {
		if f.kind != kind {
			continue
		}
		n++
		m := f.re.FindStringSubmatch(body)
		if m == nil {
			continue
		}
		args := make([]any, len(f.args))
		for i, a := range f.args {
			v, ok := detailValue(lang, a, m[i+1])
			if !ok {
				return "", false
			}
			args[i] = v
		}
		key := "evd." + kind
		if n > 1 {
			key += "." + strconv.Itoa(n)
		}
		return fmt.Sprintf(msg(lang, key), args...), true
	}
	return "", false
}

func detailValue(lang string, a detailArg, v string) (string, bool) {
	switch a {
	case argTime:
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return "", false
		}
		return t.In(clock.Amsterdam()).Format(layoutDay + " " + layoutTime), true
	case argDuration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return "", false
		}
		return duration(lang, d), true
	case argCats:
		var out []string
		for _, c := range strings.Split(v, ",") {
			if c != "" {
				out = append(out, known(lang, "cat.", c))
			}
		}
		return strings.Join(out, ", "), true
	case argRole:
		return known(lang, "role.", v), true
	case argQuoted:
		u, err := strconv.Unquote(v)
		if err != nil {
			return "", false
		}
		return "“" + u + "”", true
	}
	return v, true
}

// known translates a code that has a translation and leaves any other (a
// tenant's own role, say) as it is.
func known(lang, prefix, code string) string {
	if t, ok := messages[lang][prefix+code]; ok {
		return t
	}
	if t, ok := messages["nl"][prefix+code]; ok {
		return t
	}
	return code
}
