package web

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/pki"
)

// The certificate authority answers a change on the systems page with an
// English error wrapping one of its sentinels, as the admin API shows it.
// The page says it in the reader's language, as refusal.go does for
// access: each form has a locale key, its parts are kept or translated.
// TestPKIErrorsTranslated reads pki's sources and fails on a sentinel or
// a form without a translation here.

// pkiSentinels are pki's sentinels with the general text of each, said
// when an error's form is not known.
var pkiSentinels = []struct {
	err error
	key string
}{
	{pki.ErrInvalid, "pki.err.invalid"},
	{pki.ErrNotFound, "pki.err.notfound"},
	{pki.ErrForbidden, "pki.err.forbidden"},
	{pki.ErrConflict, "pki.err.conflict"},
}

// pkiForms are the forms of pki's errors (the sentinel cut off), and the
// systems page's own (systems.go). Where forms overlap ("system %s",
// "system %s is deactivated") the longest that matches wins.
var pkiForms = []struct{ form, key string }{
	// Not valid (pki.ErrInvalid).
	{"%s must be valid UTF-8 without control characters, at most %d bytes", "pki.err.text"},
	{"a validity of %d days exceeds the policy's maximum of %d days (DP-3: at most one year)", "pki.err.validity"},
	{"categories are required (* for all)", "pki.err.categories"},
	{"max_days must be 1 to %d, not %d", "pki.err.max-days"},
	{"name is required", "pki.err.name"},
	{"patient %q is not a patient of this organisation", "pki.err.patient"},
	{"purpose must be %s or %s", "pki.err.purpose"},
	{"responsible_id must be an active staff or professional account of the organisation (ID-3)", "pki.err.responsible"},
	{"scopes are required (of %s)", "pki.err.scopes"},
	{"the CSR asks for addresses, URIs or e-mail addresses; a system certificate names its system only", "pki.err.csr-extra"},
	{"the CSR does not parse: %v", "pki.err.csr-parse"},
	{"the CSR must be one PEM block of type CERTIFICATE REQUEST", "pki.err.csr-pem"},
	{"the CSR names %q; a certificate of this system names %s only", "pki.err.csr-names"},
	{"the CSR's common name %q is not this system's (%s)", "pki.err.csr-cn"},
	{"the CSR's key belongs to another system", "pki.err.csr-other"},
	{"the CSR's key is the CA's key", "pki.err.csr-ca-key"},
	{"the CSR's key is this system's %s key; a %s certificate needs a key of its own", "pki.err.csr-reuse"},
	{"the CSR's key must be ECDSA P-256 or P-384", "pki.err.csr-key"},
	{"the CSR's signature does not verify with its own key (no proof of possession)", "pki.err.csr-signature"},
	{"unknown data category %q", "pki.err.category"},
	{"unknown scope %q (known: %s)", "pki.err.scope"},
	// Not found (pki.ErrNotFound).
	{"active system %s", "pki.err.system-inactive"},
	{"certificate %s", "pki.err.no-certificate"},
	{"no current certificate %s of this organisation", "pki.err.no-current-certificate"},
	{"no root CA yet (approve a tenant's intermediate first)", "pki.err.no-root"},
	{"request %s", "pki.err.no-request"},
	{"system %s", "pki.err.no-system"},
	{"tenant %q", "pki.err.no-tenant"},
	{"tenant %s has no CA yet (propose and approve its intermediate first)", "pki.err.no-ca"},
	// Refused (pki.ErrForbidden).
	{"no proposer", "pki.err.forbidden"},
	{"no approver", "pki.err.forbidden"},
	// Not in this state (pki.ErrConflict).
	{"a system named %q exists", "pki.err.exists"},
	{"request %s is %s", "pki.err.decided"},
	{"request %s was decided meanwhile", "pki.err.decided"},
	{"system %s is deactivated", "pki.err.system-inactive"},
	{"system %s: its responsible person is no longer active", "pki.err.responsible-gone"},
	// The systems page's own (systems.go).
	{"no such request in this organisation", "pki.err.no-request"},
	{"the validity in days must be a whole number of 1 or more", "pki.err.days"},
	{"unknown change", "pki.err.change"},
}

// pkiPatterns are pkiForms as anchored patterns; pkiForm tries them on the
// text and on each tail after ": ", so the caller's context stays out of a
// form's parts.
var pkiPatterns = func() []*regexp.Regexp {
	out := make([]*regexp.Regexp, len(pkiForms))
	for i, f := range pkiForms {
		q := regexp.QuoteMeta(f.form)
		for _, verb := range []string{"%s", "%d", "%q", "%v"} {
			q = strings.ReplaceAll(q, verb, "(.+?)")
		}
		out[i] = regexp.MustCompile("^" + q + "$")
	}
	return out
}()

// pkiForm finds the form of an error's text (the sentinel cut off): the
// longest form that matches a tail of it, and its parts from the shortest
// tail it matches.
func pkiForm(text string) (int, []string, bool) {
	tails := []string{text}
	for i := strings.Index(text, ": "); i >= 0; {
		tails = append(tails, text[i+2:])
		j := strings.Index(text[i+2:], ": ")
		if j < 0 {
			break
		}
		i += 2 + j
	}
	best, parts := -1, []string(nil)
	for i, p := range pkiPatterns {
		if best >= 0 && len(pkiForms[i].form) <= len(pkiForms[best].form) {
			continue
		}
		for k := len(tails) - 1; k >= 0; k-- {
			if m := p.FindStringSubmatch(tails[k]); m != nil {
				best, parts = i, m[1:]
				break
			}
		}
	}
	return best, parts, best >= 0
}

// pkiMessage says an error of the systems page in lang: a pki error by its
// form (or its sentinel's general text), an account lookup's as the rule
// pages do; ok is false for any other error.
func pkiMessage(lang string, err error) (string, bool) {
	if errors.Is(err, change.ErrSelf) {
		return msg(lang, "pki.err.four-eyes"), true
	}
	if m, ok := changeMessage(lang, err); ok {
		return m, true
	}
	for _, s := range pkiSentinels {
		if !errors.Is(err, s.err) {
			continue
		}
		i, parts, ok := pkiForm(strings.TrimSuffix(err.Error(), ": "+s.err.Error()))
		if !ok {
			return msg(lang, s.key), true
		}
		t := msg(lang, pkiForms[i].key)
		if !strings.Contains(t, "%") {
			return t, true
		}
		args := make([]any, len(parts))
		for j, part := range parts {
			args[j] = pkiPart(lang, strings.Trim(part, `"`))
		}
		return fmt.Sprintf(t, args...), true
	}
	return userError(lang, err)
}

// pkiPart translates a part that names a field, a scope or a code the
// pages know; anything else (a name, a number) is kept.
func pkiPart(lang, part string) string {
	for _, k := range []string{"pki.field." + part, "pki.scope." + part} {
		if t, ok := messages[lang][k]; ok {
			return t
		}
	}
	return refusalPart(lang, part)
}
