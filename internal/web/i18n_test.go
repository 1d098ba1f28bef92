package web

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/compliance"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/oauth"
	"github.com/zorgkluis/zorgkluis/internal/pki"
	"github.com/zorgkluis/zorgkluis/internal/record"
	"github.com/zorgkluis/zorgkluis/internal/sso"
)

// codeSets are the codes the pages can show, by the prefix of their keys:
// each needs a text in every language.
func codeSets() map[string][]string {
	actions := []audit.Action{audit.ActionRead, audit.ActionSearch, audit.ActionCreate, audit.ActionUpdate, audit.ActionDelete,
		audit.ActionExport, audit.ActionPrint, audit.ActionAssignID, audit.ActionEmergency, audit.ActionLogRead, audit.ActionConsent,
		audit.ActionCollect, audit.ActionShare, audit.ActionLogon, audit.ActionExchange, audit.ActionCertificate, audit.ActionDevice, audit.ActionEvidence}
	bases := []access.Basis{access.BasisCareRelationship, access.BasisTeam, access.BasisDelegation, access.BasisEmergency,
		access.BasisOwnData, access.BasisRepresentation, access.BasisOperator, access.BasisRegistration, access.BasisSystem}
	roles := []access.Role{access.RoleProfessional, access.RoleAssistant, access.RoleAppAdmin, access.RoleSecurityOfficer,
		access.RolePerson, access.RoleOperator, access.RoleSystem}
	sets := map[string][]string{
		"outcome.": {string(audit.OutcomeSuccess), string(audit.OutcomeDenied), string(audit.OutcomeFailed)},
		"cat.":     append(fhir.AllCategories(), access.CategoryAll),
		// What an app's scopes can reach, described on the consent page.
		"appcat.":       fhir.ScopeCategories([]string{"patient/*.rs"}, 'r'),
		"rev.decision.": {"keep", "revoke"},
		"chg.status.":   {string(change.Pending), string(change.Approved), string(change.Rejected), string(change.Expired), string(change.Failed)},
		"chg.kind.": {access.ChangeRole, access.ChangeRight, sso.ChangeProvider, oauth.ChangeClient, oauth.ChangePublicPolicy,
			pki.ChangeIntermediate, pki.ChangePolicy, authn.ChangeTenantSettings},
		"dev.state.": {"active", "locked", "unlinked"},
		"rep.":       {access.RepresentParent, access.RepresentLegal, access.RepresentAuthorised},
		"gender.":    {"male", "female", "other", "unknown"},
		// Access's refusals as the pages say them (refusal.go).
		"deny.": refusalKeys(),
		// The security events' details (eventdetail.go).
		"evd.": detailFormKeys(),
		// FHIR R4 value sets of the statuses the record view shows:
		// ObservationStatus, condition-clinical, AllergyIntolerance
		// clinical, MedicationStatement, MedicationRequest,
		// MedicationDispense, Immunization, Procedure (EventStatus) and
		// Encounter status.
		"status.": {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown",
			"active", "recurrence", "relapse", "inactive", "remission", "resolved",
			"completed", "intended", "stopped", "on-hold", "not-taken", "draft",
			"preparation", "in-progress", "declined", "not-done",
			"planned", "arrived", "triaged", "onleave", "finished"},
		"verification.": {"unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error", "presumed"},
		"review.":       {"pending", "justified", "unjustified"},
		"op.status.":    {"pending", "approved", "rejected"},
		"admin.state.":  {"current", "expired", "revoked"},
		"rel.":          {"gp", "treatment", "referral"},
		"event.": {"emergency-access", "emergency-reviewed-justified", "emergency-reviewed-unjustified", "operator-access-requested",
			"operator-access-approved", "operator-access-rejected", "operator-access-denied", "right-requested", "right-approved",
			"right-rejected", "right-revoked", "role-definition-proposed", "role-definition-approved", "role-definition-rejected",
			"certificate-expiring", "privilege-mix", "account-attack", "source-attack", "webauthn-sign-count",
			"clock-offset", "clock-offset-recovered", "backup-failed", "backup-restore-test-failed", "control-due"},
		// The compliance report (GOV-3) and the admin-log review (LOG-7).
		"ctl.status.":  {compliance.Green, compliance.Red, compliance.NotApplicable},
		"ctl.period.":  {"monthly", "half-yearly", "yearly"},
		"ctl.kind.":    {compliance.KindSettings, compliance.KindTLS, compliance.KindAccessReview, compliance.KindAdminLogReview, compliance.KindRestoreTest, compliance.KindClock, compliance.KindAuditVerify, compliance.KindCertificates, compliance.KindIncidents},
		"alr.finding.": {"ok", "question", "unnecessary", "unjustified"},
	}
	for _, a := range actions {
		sets["act."] = append(sets["act."], string(a))
	}
	// What a role may do, on the roles page.
	for _, a := range access.Actions() {
		sets["perm."] = append(sets["perm."], string(a))
	}
	for _, b := range bases {
		sets["basis."] = append(sets["basis."], string(b))
	}
	for _, r := range roles {
		sets["role."] = append(sets["role."], string(r))
	}
	// Besides FHIR's, the log names the accounts, systems, certificates
	// and CA requests an event touched.
	for _, t := range append(fhir.ResourceTypes(), "Account", "System", "Certificate", "PKIRequest") {
		sets["type."] = append(sets["type."], t, t+".n")
	}
	return sets
}

// Every text is in both locale files, with the same place-holders; every
// key a template or the Go code names exists; every code the pages can
// show has a text in both languages.
// REQ: DP-7
func TestMessagesComplete(t *testing.T) {
	verbs := regexp.MustCompile(`%[sdv]`)
	for key, nl := range messages["nl"] {
		en, ok := messages["en"][key]
		if !ok {
			t.Errorf("%s: no English text", key)
			continue
		}
		if strings.TrimSpace(nl) == "" || strings.TrimSpace(en) == "" {
			t.Errorf("%s: empty text", key)
		}
		if a, b := verbs.FindAllString(nl, -1), verbs.FindAllString(en, -1); strings.Join(a, "") != strings.Join(b, "") {
			t.Errorf("%s: place-holders %v in Dutch, %v in English", key, a, b)
		}
	}
	for key := range messages["en"] {
		if _, ok := messages["nl"][key]; !ok {
			t.Errorf("%s: no Dutch text", key)
		}
	}
	has := func(key string) bool { _, nl := messages["nl"][key]; _, en := messages["en"][key]; return nl && en }

	// Keys named in the templates: t and tf take a key, tk a prefix and a
	// literal code.
	var (
		tKey  = regexp.MustCompile(`\{\{-?\s*(?:t|tf)\s+\S+\s+"([^"]+)"`)
		tkLit = regexp.MustCompile(`tk\s+\S+\s+"([^"]+)"\s+"([^"]+)"`)
		tkAny = regexp.MustCompile(`tk\s+\S+\s+"([^"]+)"`)
		inner = regexp.MustCompile(`\((?:t|tf)\s+\S+\s+"([^"]+)"`)
	)
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		t.Fatal(err)
	}
	sets, named := codeSets(), 0
	for _, f := range files {
		b, _ := fs.ReadFile(templateFS, f)
		for _, re := range []*regexp.Regexp{tKey, inner} {
			for _, m := range re.FindAllStringSubmatch(string(b), -1) {
				named++
				if !has(m[1]) {
					t.Errorf("%s names %q, which is not in both locale files", f, m[1])
				}
			}
		}
		for _, m := range tkLit.FindAllStringSubmatch(string(b), -1) {
			if !has(m[1] + m[2]) {
				t.Errorf("%s names %q, which is not in both locale files", f, m[1]+m[2])
			}
		}
		for _, m := range tkAny.FindAllStringSubmatch(string(b), -1) {
			if _, ok := sets[m[1]]; !ok && !strings.HasPrefix(m[1], "pki.") && !strings.HasPrefix(m[1], "sec.op.status.") && !strings.HasPrefix(m[1], "factors.") {
				t.Errorf("%s translates codes under %q, which no code set in this test lists", f, m[1])
			}
		}
	}
	if named < 200 {
		t.Fatalf("only %d keys found in the templates; the patterns no longer match", named)
	}
	// Keys in the Go code: string literals shaped like a key whose first
	// part is one of the locale files' namespaces.
	spaces := map[string]bool{}
	for key := range messages["nl"] {
		ns, _, _ := strings.Cut(key, ".")
		spaces[ns] = true
	}
	lit := regexp.MustCompile(`"([a-z]+(?:\.[a-z0-9-]+)+)"`)
	gofiles, _ := filepath.Glob("*.go")
	for _, f := range gofiles {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
			ns, _, _ := strings.Cut(m[1], ".")
			if spaces[ns] && !strings.HasSuffix(m[1], ".json") && !has(m[1]) {
				t.Errorf("%s names %q, which is not in both locale files", f, m[1])
			}
		}
	}
	for prefix, codes := range sets {
		for _, c := range codes {
			if !has(prefix + c) {
				t.Errorf("code %q has no text in both languages", prefix+c)
			}
		}
	}
}

// syncBuffer is a log the test server's handlers write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var tagRE = regexp.MustCompile(`(?s)<[^>]*>`)

// visibleText is a page's text without its markup (attribute values, such
// as the form fields' codes, are not shown).
func visibleText(html string) string {
	_, body, _ := strings.Cut(html, "<body")
	return tagRE.ReplaceAllString(body, " ")
}

// Every code a page shows goes through the locale files: a professional,
// a person and a security officer open their pages over a record with every
// part filled, in Dutch and in English, and no page shows a value without a
// translation (tk logs each one) nor, in Dutch, a raw FHIR code.
// REQ: LOG-4, DP-7
func TestPagesShowNoRawCodes(t *testing.T) {
	logs := &syncBuffer{}
	e := newPageEnv(t, func(d *Deps) { d.Log = slog.New(slog.NewTextHandler(logs, nil)) })
	tenant := e.tenant("Praktijk A")
	gp := e.login(tenant, identity.KindProfessional, access.RoleProfessional)
	officer := e.login(tenant, identity.KindAdmin, access.RoleSecurityOfficer)
	person := e.login(tenant, identity.KindPerson, access.RolePerson)
	pid := e.registerPatient(gp, "Sanne de Vries", "female", "1984-03-12", "123456782")
	if _, err := e.dec.AddRelationship(e.ctx, access.Relationship{TenantID: tenant, ProfessionalID: gp.subj.AccountID(), PatientID: pid,
		Kind: "gp", Start: e.clock.Now().Add(-time.Hour), RecordedBy: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := e.ids.LinkPerson(e.ctx, person.subj.AccountID(), pid); err != nil {
		t.Fatal(err)
	}
	coded := func(system, code string) map[string]any {
		return map[string]any{"coding": []any{map[string]any{"system": system, "code": code}}}
	}
	const clin, ver = "http://terminology.hl7.org/CodeSystem/condition-clinical", "http://terminology.hl7.org/CodeSystem/condition-ver-status"
	at := e.clock.Now().Add(-24 * time.Hour).Format(time.RFC3339)
	resources := []map[string]any{
		{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "Lichaamsgewicht"}, "effectiveDateTime": at,
			"category":      []any{coded("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")},
			"valueQuantity": map[string]any{"value": 68.4, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}},
		{"resourceType": "Observation", "status": "preliminary", "code": map[string]any{"text": "Bloeddruk"}, "effectiveDateTime": at,
			"valueQuantity": map[string]any{"value": 128, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
		{"resourceType": "Condition", "clinicalStatus": coded(clin, "active"), "verificationStatus": coded(ver, "confirmed"),
			"code": map[string]any{"text": "Diabetes mellitus type 2"}, "onsetDateTime": at},
		{"resourceType": "Condition", "clinicalStatus": coded(clin, "resolved"), "verificationStatus": coded(ver, "provisional"),
			"code": map[string]any{"text": "Enkelfractuur"}, "onsetDateTime": at},
		{"resourceType": "AllergyIntolerance", "clinicalStatus": coded("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active"),
			"verificationStatus": coded("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "unconfirmed"),
			"code":               map[string]any{"text": "Penicilline"}, "recordedDate": at},
		{"resourceType": "MedicationStatement", "status": "active", "medicationCodeableConcept": map[string]any{"text": "Metformine 500 mg"},
			"dateAsserted": at, "dosage": []any{map[string]any{"text": "2 maal per dag 1 tablet"}}},
		{"resourceType": "Immunization", "status": "completed", "vaccineCode": map[string]any{"text": "Griepvaccin"}, "occurrenceDateTime": at},
		{"resourceType": "Procedure", "status": "completed", "code": map[string]any{"text": "Wondhechting"}, "performedDateTime": at},
		{"resourceType": "Encounter", "status": "finished", "class": map[string]any{"code": "AMB", "display": "Spreekuur"},
			"period": map[string]any{"start": at}},
	}
	for _, r := range resources {
		typ := r["resourceType"].(string)
		cats := fhir.CategoryClinical
		if strings.HasPrefix(typ, "Medication") {
			cats = fhir.CategoryMedication
		}
		g, err := e.dec.Decide(e.ctx, gp.subj, access.Request{PatientID: pid, Action: access.Create, Categories: []string{cats}, Purpose: purposeTreatment})
		if err != nil {
			t.Fatal(err)
		}
		id, err := e.ids.NewID("r-")
		if err != nil {
			t.Fatal(err)
		}
		r["id"], r["subject"] = id, map[string]any{"reference": "Patient/" + pid}
		if typ == "Immunization" {
			delete(r, "subject")
			r["patient"] = map[string]any{"reference": "Patient/" + pid}
		}
		body, _ := json.Marshal(r)
		if _, err := e.kit.Records.Insert(e.ctx, g, record.Resource{Type: typ, ID: id, PatientID: pid, Categories: []string{cats}, Body: body}); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
	}
	// The person's invitation is in their log as an account created.
	if _, err := e.log.Append(e.ctx, audit.Event{TenantID: tenant, Action: audit.ActionCreate, Outcome: audit.OutcomeSuccess,
		UserID: gp.subj.AccountID(), UserName: "Dr. Test", Role: string(access.RoleProfessional), Basis: string(access.BasisCareRelationship),
		PatientID: pid, Resources: []string{"Account/" + person.subj.AccountID()}}); err != nil {
		t.Fatal(err)
	}
	// Raw codes that must not reach a Dutch page as text.
	raw := regexp.MustCompile(`\b(final|preliminary|active|resolved|confirmed|unconfirmed|provisional|completed|finished|female|` +
		`Observation|Condition|AllergyIntolerance|MedicationStatement|Immunization|Procedure|Encounter|Patient|Account|` +
		`care-relationship|own-data|success|denied|read|search|log-read|gp|pending|clinical|demographics)\b`)
	var pages []struct {
		u    pageUser
		path string
	}
	for _, sec := range sections {
		pages = append(pages, struct {
			u    pageUser
			path string
		}{gp, "/patients/" + pid + "?section=" + sec.Key})
	}
	for _, p := range []struct {
		u    pageUser
		path string
	}{{gp, "/patients"}, {person, "/me"}, {person, "/me/record?section=problems"}, {person, "/me/log"}, {person, "/me/log?names=1"},
		{officer, "/security/audit?search=1&patient=" + pid}, {officer, "/security/events"}, {officer, "/security/emergencies"}} {
		pages = append(pages, p)
	}
	for _, lang := range []string{"nl", "en"} {
		for _, p := range pages {
			path := p.path
			if strings.Contains(path, "?") {
				path += "&lang=" + lang
			} else {
				path += "?lang=" + lang
			}
			code, html := e.page(p.u, path, nil, false)
			if code != http.StatusOK {
				t.Fatalf("%s: %d", path, code)
			}
			if lang == "nl" {
				if m := raw.FindString(visibleText(html)); m != "" {
					t.Errorf("%s shows the raw code %q", path, m)
				}
			}
		}
	}
	if strings.Contains(logs.String(), "untranslated") {
		t.Fatalf("pages showed codes without a translation:\n%s", logs)
	}
	// The check above does see a code without a text.
	s := &server{d: Deps{Log: slog.New(slog.NewTextHandler(logs, nil))}}
	if got := s.code("nl", "status.", "no-such-status"); got != "no-such-status" || !strings.Contains(logs.String(), "status.no-such-status") {
		t.Fatalf("an untranslated code is not logged: %q", got)
	}
}

// refusalKeys are the keys of refusalForms without their prefix, and the
// fallback's.
func refusalKeys() []string {
	out := []string{"other"}
	for _, f := range refusalForms {
		out = append(out, strings.TrimPrefix(f.key, "deny."))
	}
	return out
}
