package web

import (
	"fmt"
	"regexp"
	"strings"
)

// Access's refusals are recorded in English, as the log keeps them (the
// officer's export carries them as they are). A page shows them in the
// reader's language: each refusal's form has a locale key, its parts (a
// role, an action, a category, a basis) are translated as codes are. A
// form added to access without a key here fails TestRefusalsTranslated,
// which reads access's sources.
var refusalForms = []struct{ form, key string }{
	{"a delegation does not allow %s", "deny.delegation-action"},
	{"an app may only read and search", "deny.app-action"},
	{"assurance level %s is below %s", "deny.assurance"},
	{"emergency access does not allow %s", "deny.emergency-action"},
	{"no care relationship, team, delegation or emergency access for this patient", "deny.no-relationship"},
	{"no organisation", "deny.no-organisation"},
	{"no patient named", "deny.no-patient"},
	{"no subject", "deny.no-subject"},
	{"no such patient in this organisation", "deny.unknown-patient"},
	{"no such system", "deny.unknown-system"},
	{"not the person's own data and no current representation", "deny.not-own"},
	{"only a security officer reads the organisation's access log: %s", "deny.log-officer"},
	{"only persons act on behalf of a patient", "deny.on-behalf"},
	{"operators reach health data only through an approved operator request", "deny.operator"},
	{"patient is not the person this session acts for", "deny.not-acting-for"},
	{"role %s has no access to health data", "deny.role-health"},
	{"role %s may not read a patient's access log", "deny.role-log"},
	{"role %s under %s may not see category %s", "deny.role-category"},
	{"role %s may not %s", "deny.role-action"},
	{"system %s has no scope %s", "deny.system-scope"},
	{"system %s may not see category %s", "deny.system-category"},
	{"the account does not hold the role %s", "deny.not-held"},
	{"the app's scopes do not allow %s", "deny.app-scope"},
	{"the patient is not in the system's patient set", "deny.system-patient"},
	{"the patient's data was erased (crypto-shredded)", "deny.erased"},
	{"the right to act as %s was revoked or has ended", "deny.right-ended"},
	{"the session does not act on behalf of this patient", "deny.not-represented"},
	{"the system is deactivated", "deny.system-inactive"},
	{"the system's certificate is revoked or not current", "deny.system-certificate"},
	{"the system's responsible person is no longer active", "deny.system-responsible"},
}

// refusalPatterns are refusalForms as anchored patterns, %s a part.
var refusalPatterns = func() []*regexp.Regexp {
	out := make([]*regexp.Regexp, len(refusalForms))
	for i, f := range refusalForms {
		out[i] = regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(f.form), "%s", "(.+?)") + "$")
	}
	return out
}()

// refusal says a recorded refusal reason in lang. A reason of no known form
// is said as a plain refusal with the recorded words after it (and logged,
// so that a translator hears of it).
func (s *server) refusal(lang, reason string) string {
	for i, p := range refusalPatterns {
		m := p.FindStringSubmatch(reason)
		if m == nil {
			continue
		}
		args := make([]any, len(m)-1)
		for j, part := range m[1:] {
			args[j] = refusalPart(lang, part)
		}
		return fmt.Sprintf(msg(lang, refusalForms[i].key), args...)
	}
	if reason != "" {
		s.d.Log.Warn("web: untranslated refusal", "reason", reason)
	}
	return fmt.Sprintf(msg(lang, "deny.other"), reason)
}

// refusalPart translates one part of a refusal when it is a code the pages
// know (a role, an action, a category, a basis), else keeps it.
func refusalPart(lang, part string) string {
	kind, _, _ := strings.Cut(part, ":")
	for _, k := range []string{"role." + part, "act." + part, "cat." + part, "basis." + kind, "level." + part} {
		if t, ok := messages[lang][k]; ok {
			return t
		}
	}
	return part
}
