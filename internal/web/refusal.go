package web

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/zorgkluis/zorgkluis/internal/change"
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

// ruleForms are the forms of the errors access answers a change of the
// rules with (a right, a relationship, a role, a review...), which the
// pages show on the page the change came from; the key says it in the
// reader's language. TestRuleErrorsTranslated reads access's sources for
// them. A form's parts can be left out of a translation (%[2]s picks).
var ruleForms = []struct{ form, key string }{
	// Refused (access.ErrForbidden).
	{"my patients", "rule.forbidden"},
	{"no actor", "rule.forbidden"},
	{"no organisation", "rule.no-organisation"},
	{"nobody requests rights for themself", "rule.own-right"},
	{"nobody reviews their own emergency access", "rule.own-emergency"},
	{"only a professional with a care relationship may delegate", "rule.delegate-relationship"},
	{"the approver must be neither the requester nor the receiver", "rule.four-eyes"},
	{"the proposer may not approve their own change", "rule.four-eyes"},
	{"the requester may not approve their own request", "rule.four-eyes"},
	{"declare emergency: role %s may not", "rule.emergency-role"},
	{"assurance level %s is below %s", "rule.assurance"},
	{"role %s may not do this", "rule.role"},
	{"role %s is no longer current for this account", "rule.role-lapsed"},
	// Already decided (access.ErrConflict).
	{"emergency %s is already reviewed", "rule.decided"},
	{"operator request %s is %s", "rule.decided"},
	{"right request %s is %s", "rule.decided"},
	{"role definition %s is %s", "rule.decided"},
	{"team %q exists", "rule.team-exists"},
	// Not valid (access.ErrInvalid).
	{"add relationship: end must be after start", "rule.end-after-start"},
	{"add relationship: tenant, professional, patient, kind and recorder are required", "rule.relationship-fields"},
	{"add representation: %s is not a person account", "rule.not-person"},
	{"add representation: a parent's representation needs the patient's birth date (YYYY-MM-DD)", "rule.parent-birthdate"},
	{"add representation: end must be after start", "rule.end-after-start"},
	{"add representation: kind must be parent, legal-representative or authorised", "rule.representation-kind"},
	{"add representation: no deciding admin", "rule.representation-admin"},
	{"add representation: the patient is %d or older; record a legal representative or authorised person instead", "rule.parent-age"},
	{"add representation: unknown category %q", "rule.category"},
	{"create team: a name of 1 to 200 characters is required", "rule.team-name"},
	{"decide operator request: a note of 1 to 2000 characters is required", "rule.note"},
	{"decide operator request: patient %s is not a patient of this organisation", "rule.operator-patient"},
	{"declare emergency: a reason of %d to 1000 characters is required", "rule.reason-min"},
	{"delegate: %s is not a professional", "rule.not-professional"},
	{"delegate: a reason of 1 to 500 characters is required", "rule.reason"},
	{"delegate: cannot delegate to oneself", "rule.delegate-self"},
	{"delegate: the end must be in the future and at most %d days away", "rule.delegate-end"},
	{"operator request: a reason of %d to 1000 characters is required", "rule.reason-min"},
	{"operator request: duration must be positive and at most %s", "rule.operator-duration"},
	{"operator request: name 1 to 100 patients", "rule.operator-patients"},
	{"operator request: name the data categories", "rule.categories"},
	{"operator request: patient ids must be distinct and non-empty", "rule.operator-patients"},
	{"operator request: tenant is required", "rule.operator-tenant"},
	{"operator request: unknown category %q", "rule.category"},
	{"propose role: %s is a predefined role", "rule.role-predefined"},
	{"propose role: a role name is 3 to 41 lower-case letters, digits or hyphens", "rule.role-name"},
	{"propose role: actions and categories are required", "rule.role-fields"},
	{"propose role: base %s does not allow action %q", "rule.role-base-action"},
	{"propose role: base %s does not allow category %q", "rule.role-base-category"},
	{"propose role: base must be professional or assistant", "rule.role-base"},
	{"propose role: unknown category %q", "rule.category"},
	{"record relationship: %s is not a professional", "rule.not-professional"},
	{"request right: a privileged right needs an end within %s", "rule.right-end"},
	{"request right: a reason of 1 to 1000 characters is required", "rule.reason"},
	{"request right: no role %q in this organisation", "rule.right-role"},
	{"request right: operators are platform staff, not granted by a tenant", "rule.right-operator"},
	{"request right: role %s belongs on a %s account, not a %s account", "rule.right-kind"},
	{"request right: valid_until must be in the future", "rule.right-until"},
	{"review emergency: a note of 1 to 2000 characters is required", "rule.note"},
	{"text must be valid UTF-8 without control characters", "rule.text"},
	// A user name the admin typed that names no account here (lookup.go).
	{"no account %q in this organisation", "rule.no-account"},
}

// rulePatterns are ruleForms as patterns: a form ends the error's text
// once the sentinel's words are cut off, after the caller's context if any.
var rulePatterns = func() []*regexp.Regexp {
	out := make([]*regexp.Regexp, len(ruleForms))
	for i, f := range ruleForms {
		q := regexp.QuoteMeta(f.form)
		for _, verb := range []string{"%s", "%d", "%q"} {
			q = strings.ReplaceAll(q, verb, "(.+?)")
		}
		out[i] = regexp.MustCompile("(?:^|: )" + q + "$")
	}
	return out
}()

// ruleMessage says a rule-management error in lang: its form's text, or
// the sentinel's general one.
func ruleMessage(lang string, err error, sentinel error, general string) string {
	i, parts, ok := ruleForm(strings.TrimSuffix(err.Error(), ": "+sentinel.Error()))
	if !ok {
		return msg(lang, general)
	}
	t := msg(lang, ruleForms[i].key)
	if !strings.Contains(t, "%") {
		return t // a text that needs none of the parts (ids, states)
	}
	args := make([]any, len(parts))
	for j, part := range parts {
		args[j] = refusalPart(lang, strings.Trim(part, `"`))
	}
	return fmt.Sprintf(t, args...)
}

// ruleForm finds the form of an error's text (the sentinel cut off): its
// index in ruleForms and its parts.
func ruleForm(text string) (int, []string, bool) {
	for i, p := range rulePatterns {
		if m := p.FindStringSubmatch(text); m != nil {
			return i, m[1:], true
		}
	}
	return 0, nil, false
}

// changeMessage says a refused four-eyes decision in lang: the refusal is
// change's, whichever owner (access, pki, sso, oauth) wraps it.
func changeMessage(lang string, err error) (string, bool) {
	for _, e := range []struct {
		sentinel error
		key      string
	}{{change.ErrSelf, "rule.four-eyes"}, {change.ErrExpired, "rule.expired"}, {change.ErrInapplicable, "rule.inapplicable"},
		{change.ErrDecided, "rule.decided"}, {change.ErrForbidden, "rule.forbidden"}, {change.ErrNotFound, "rule.notfound"}} {
		if errors.Is(err, e.sentinel) {
			return msg(lang, e.key), true
		}
	}
	return "", false
}
