package web

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

// REQ: LOG-5, LOG-1 — the officer searches the log by a patient's BSN and a
// user's user name: the BSN goes in a POST and is resolved through the
// blind index (the lookup logged there), the search's URL carries only the
// opaque id; the results name the patient by their account and the bases,
// refusals and outcomes in Dutch words, never "care-relationship:…" or a
// patient id; the emergency column is there only when a line used it; a
// BSN that fails the elfproef, a BSN nobody has and an unknown user name
// each get a clear message.
func TestAuditSearchByBSNAndUserName(t *testing.T) {
	e := newPageEnv(t, func(d *Deps) { d.Index = testIndex{} })
	tenant := e.tenant("Praktijk A")
	officer := e.login(tenant, identity.KindAdmin, access.RoleSecurityOfficer)
	const bsn, unregistered = "123456782", "111222333"
	idx, _ := testIndex{}.BlindIndex(e.ctx, tenant, "bsn", bsn)
	pid, other := "p-sanne", "p-zonderaccount"
	if _, err := e.ids.CreatePatient(e.ctx, e.db, pid, tenant, idx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ids.CreatePatient(e.ctx, e.db, other, tenant, nil); err != nil {
		t.Fatal(err)
	}
	sanne, err := e.ids.CreateAccount(e.ctx, identity.Account{TenantID: tenant, Kind: identity.KindPerson, Username: "s.devries", DisplayName: "Sanne de Vries", RegistrationMethod: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ids.LinkPerson(e.ctx, sanne.ID, pid); err != nil {
		t.Fatal(err)
	}
	gp, err := e.ids.CreateAccount(e.ctx, identity.Account{TenantID: tenant, Kind: identity.KindProfessional, Username: "dr.jansen", DisplayName: "Dr. Jansen", RegistrationMethod: 3})
	if err != nil {
		t.Fatal(err)
	}
	line := func(user, name, patient, basis string, out audit.Outcome, reason string) audit.Event {
		return audit.Event{Action: audit.ActionRead, Outcome: out, TenantID: tenant, UserID: user, UserName: name, Role: "professional",
			Basis: basis, PatientID: patient, Reason: reason, Resources: []string{"Patient/" + patient}}
	}
	if _, err := e.log.Append(e.ctx,
		line(gp.ID, "Dr. Jansen", pid, "care-relationship:r-123", audit.OutcomeSuccess, ""),
		line(gp.ID, "Dr. Jansen", other, "", audit.OutcomeDenied, "no care relationship, team, delegation or emergency access for this patient"),
		line("a-someone", "Dr. Ander", pid, "care-relationship:r-456", audit.OutcomeSuccess, "")); err != nil {
		t.Fatal(err)
	}

	resp, _ := e.request(officer, "/security/audit", url.Values{"bsn": {"1234 567 82"}, "action": {"read"}})
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "patient="+pid) || strings.Contains(loc, bsn) {
		t.Fatalf("search by BSN: %d to %q", resp.StatusCode, loc)
	}
	u, _ := url.Parse(loc)
	code, html := e.page(officer, u.RequestURI(), nil, false)
	words := visibleWords(html)
	if code != http.StatusOK || !strings.Contains(words, "Regels over Sanne de Vries") || !strings.Contains(words, "behandelrelatie") ||
		!strings.Contains(words, "Dr. Ander") || strings.Contains(words, "Dr. Jansen geweigerd") {
		t.Fatalf("results of the BSN search: %d %s", code, words)
	}
	for _, raw := range []string{pid, "care-relationship", "r-123", bsn} {
		if strings.Contains(words, raw) {
			t.Errorf("the page shows %q", raw)
		}
	}
	if strings.Contains(html, `scope="col">Noodtoegang`) {
		t.Error("emergency column shown without an emergency line")
	}
	lookups, err := e.log.Query(e.ctx, audit.Filter{TenantID: tenant, UserID: officer.subj.AccountID(), Action: audit.ActionLogRead})
	if err != nil {
		t.Fatal(err)
	}
	var lookup int
	for _, l := range lookups {
		if strings.Contains(l.Query, bsn) || l.PatientID != pid {
			t.Fatalf("a log line of the search: %+v", l)
		}
		if strings.Contains(l.Query, "lookup=bsn") {
			lookup++
		}
	}
	if len(lookups) != 2 || lookup != 1 {
		t.Fatalf("the BSN lookup and the search in the log: %+v", lookups)
	}

	// By user name: Dr. Jansen's lines, the refused one in Dutch, the
	// patient without a name (no account, no Patient resource) said so, no
	// id shown.
	code, html = e.page(officer, "/security/audit?search=1&user=dr.jansen", nil, false)
	words = visibleWords(html)
	if code != http.StatusOK || strings.Contains(words, "Dr. Ander") || !strings.Contains(words, "Sanne de Vries") ||
		!strings.Contains(words, "geen behandelrelatie, team, delegatie of noodtoegang voor deze patiënt") ||
		!strings.Contains(words, "patiënt zonder naam") || strings.Contains(words, other) {
		t.Fatalf("search by user name: %d %s", code, words)
	}
	if !strings.Contains(html, `href="/security/audit?search=1&amp;patient=`+other+`"`) {
		t.Error("a line's patient does not lead to that patient's lines")
	}
	// English on request.
	resp, html = e.request(officer, "/security/audit?search=1&user=dr.jansen&lang=en", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(visibleWords(html), "no care relationship, team, delegation or emergency access for this patient") ||
		!strings.Contains(visibleWords(html), "care relationship") {
		t.Fatalf("English results: %d", resp.StatusCode)
	}

	for _, c := range []struct {
		form url.Values
		path string
		want string
	}{
		{url.Values{"bsn": {"123456789"}}, "", "geen geldig BSN"},
		{url.Values{"bsn": {unregistered}}, "", "geen patiënt met dit BSN"},
		{nil, "/security/audit?search=1&user=niemand", "geen gebruiker met deze gebruikersnaam"},
	} {
		var code int
		var html string
		if c.form != nil {
			code, html = e.page(officer, "/security/audit", c.form, false)
		} else {
			code, html = e.page(officer, c.path, nil, false)
		}
		if code != http.StatusBadRequest || !strings.Contains(visibleWords(html), c.want) {
			t.Errorf("%v %s: %d; want 400 saying %q", c.form, c.path, code, c.want)
		}
	}
	// A user of another organisation is a name nobody has.
	elsewhere := e.tenant("Praktijk B")
	if _, err := e.ids.CreateAccount(e.ctx, identity.Account{TenantID: elsewhere, Kind: identity.KindProfessional, Username: "dr.elders", DisplayName: "Dr. Elders", RegistrationMethod: 3}); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.page(officer, "/security/audit?search=1&user=dr.elders", nil, false); code != http.StatusBadRequest {
		t.Fatalf("another organisation's user: %d", code)
	}
}

// REQ: LOG-5 — with an emergency line among the results the column is
// there, marked on that line only.
func TestAuditEmergencyColumnOnlyWithEmergency(t *testing.T) {
	ev := audit.Event{ID: "e1", Action: audit.ActionRead, Outcome: audit.OutcomeSuccess, UserName: "Dr. Nood", Role: "professional", PatientID: "p-1"}
	with := ev
	with.Emergency, with.EmergencyReason, with.Basis = true, "bewusteloos", "emergency:em-1"
	html := renderPage(t, "audit", &auditData{Searched: true, AnyEmergency: true, Events: []audit.Event{ev, with}})
	if !strings.Contains(html, ">Noodtoegang</th>") || strings.Count(html, `class="tag-emergency"`) != 1 || !strings.Contains(html, "bewusteloos") {
		t.Fatal("emergency column or mark missing")
	}
	html = renderPage(t, "audit", &auditData{Searched: true, Events: []audit.Event{ev}})
	if strings.Contains(html, ">Noodtoegang</th>") || strings.Contains(html, `data-label="Noodtoegang"`) {
		t.Fatal("emergency column shown without an emergency line")
	}
}

// REQ: LOG-4 — every refusal access records has a Dutch and an English
// form: the test reads access's sources for the reasons it can record
// (denied("…"), deny: fmt.Sprintf("…"), the reasons it passes on) and
// says each through refusal, which must not fall back to the recorded
// words; every form's key has as many parts in both languages.
func TestRefusalsTranslated(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "access", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("access sources: %v", err)
	}
	forms := map[string]bool{}
	fset := token.NewFileSet()
	var parsed []*ast.File
	consts := map[string]string{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, file)
		ast.Inspect(file, func(n ast.Node) bool {
			if vs, ok := n.(*ast.ValueSpec); ok {
				for i, id := range vs.Names {
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							consts[id.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			}
			return true
		})
	}
	// text is the refusal an expression spells: a string literal, a
	// constant, fmt.Sprintf's format, a literal + err.Error() (a part).
	var text func(ast.Expr) string
	text = func(x ast.Expr) string {
		switch x := x.(type) {
		case *ast.BasicLit:
			if x.Kind == token.STRING {
				s, _ := strconv.Unquote(x.Value)
				return s
			}
		case *ast.Ident:
			return consts[x.Name]
		case *ast.CallExpr:
			if sel, ok := x.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Sprintf" && len(x.Args) > 0 {
				return text(x.Args[0])
			}
		case *ast.BinaryExpr:
			if s := text(x.X); strings.HasSuffix(s, ": ") {
				return s + "%s"
			}
		}
		return ""
	}
	for _, file := range parsed {
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				name := ""
				switch fn := n.Fun.(type) {
				case *ast.Ident:
					name = fn.Name
				case *ast.SelectorExpr:
					name = fn.Sel.Name
				}
				switch {
				case name == "denied" && len(n.Args) > 0:
					forms[text(n.Args[0])] = true
				case name == "denyLogRead" && len(n.Args) > 0:
					forms[text(n.Args[len(n.Args)-1])] = true
				}
			case *ast.KeyValueExpr:
				if k, ok := n.Key.(*ast.Ident); ok && (k.Name == "deny" || k.Name == "Reason") {
					forms[text(n.Value)] = true
				}
			}
			return true
		})
	}
	delete(forms, "")
	forms["the patient's data was erased (crypto-shredded)"] = true // record's reason for an erased patient
	if len(forms) < 25 {
		t.Fatalf("found only %d refusal forms in access", len(forms))
	}
	s := &server{d: Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	for form := range forms {
		reason := strings.ReplaceAll(form, "%s", "professional")
		for _, lang := range languages {
			got := s.refusal(lang, reason)
			if strings.HasPrefix(got, strings.SplitN(msg(lang, "deny.other"), "%", 2)[0]) {
				t.Errorf("refusal %q has no %s form", form, lang)
			}
		}
	}
	for _, f := range refusalForms {
		for _, lang := range languages {
			if strings.Count(messages[lang][f.key], "%s") != strings.Count(f.form, "%s") {
				t.Errorf("%s in %s: %q has not the %d parts of %q", f.key, lang, messages[lang][f.key], strings.Count(f.form, "%s"), f.form)
			}
		}
	}
	if got := s.refusal("nl", "role assistant may not read"); got != "de rol assistent mag deze handeling niet uitvoeren (ingezien)" {
		t.Errorf("a refusal's parts in Dutch: %q", got)
	}
}

// accessSources parses access's non-test sources.
func accessSources(t *testing.T) []*ast.File {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "access", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("access sources: %v", err)
	}
	var out []*ast.File
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, file)
	}
	return out
}

// REQ: AZ-7, GOV-1 — every error access answers a change of the rules
// with (invalid(…), and fmt.Errorf(…: %w) with ErrForbidden or
// ErrConflict, read from its sources) has its form in ruleForms, so the
// pages say it in Dutch or English and never show access's English; a
// translation with parts fills them without fmt's complaints.
func TestRuleErrorsTranslated(t *testing.T) {
	type found struct {
		form     string
		sentinel error
	}
	var forms []found
	for _, file := range accessSources(t) {
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, _ := strconv.Unquote(lit.Value)
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				if fn.Name == "invalid" {
					forms = append(forms, found{s, access.ErrInvalid})
				}
			case *ast.SelectorExpr:
				last, ok := call.Args[len(call.Args)-1].(*ast.Ident)
				// "%w: %w" carries change's own error (changeErr), said
				// through change's sentinels below.
				if fn.Sel.Name != "Errorf" || !ok || !strings.HasSuffix(s, ": %w") || s == "%w: %w" {
					return true
				}
				switch last.Name {
				case "ErrForbidden":
					forms = append(forms, found{strings.TrimSuffix(s, ": %w"), access.ErrForbidden})
				case "ErrConflict":
					forms = append(forms, found{strings.TrimSuffix(s, ": %w"), access.ErrConflict})
				}
			}
			return true
		})
	}
	if len(forms) < 40 {
		t.Fatalf("found only %d rule errors in access", len(forms))
	}
	fill := strings.NewReplacer("%s", "professional", "%d", "16", "%q", `"x"`)
	for _, f := range forms {
		err := fmt.Errorf("%s: %w", fill.Replace(f.form), f.sentinel)
		if _, _, ok := ruleForm(strings.TrimSuffix(err.Error(), ": "+f.sentinel.Error())); !ok {
			t.Errorf("access's %q has no form in ruleForms", f.form)
			continue
		}
		for _, lang := range languages {
			m, ok := userError(lang, err)
			if !ok || m == "" || strings.Contains(m, "%!") || strings.Contains(m, f.sentinel.Error()) {
				t.Errorf("%q in %s: %q", f.form, lang, m)
			}
		}
	}
	// A four-eyes decision refused by change, as access wraps it.
	for _, sentinel := range []error{change.ErrSelf, change.ErrExpired, change.ErrInapplicable, change.ErrDecided, change.ErrForbidden, change.ErrNotFound} {
		err := fmt.Errorf("decide change: %w: %w", sentinel, access.ErrConflict)
		for _, lang := range languages {
			if m, ok := userError(lang, err); !ok || m == "" || strings.Contains(m, "change:") {
				t.Errorf("change's %q in %s: %q", sentinel, lang, m)
			}
		}
	}
	if m, _ := userError("nl", fmt.Errorf("%w: %w", change.ErrSelf, access.ErrForbidden)); !strings.HasPrefix(m, "Vier ogen") {
		t.Errorf("change's self-approval in Dutch: %q", m)
	}
	four := fmt.Errorf("the requester may not approve their own request: %w", access.ErrForbidden)
	if m, _ := userError("nl", four); !strings.HasPrefix(m, "Vier ogen") {
		t.Errorf("the four-eyes refusal in Dutch: %q", m)
	}
	if m, _ := userError("nl", fmt.Errorf("request right: no role %q in this organisation: %w", "arts", access.ErrInvalid)); m != "De rol arts bestaat niet in deze organisatie." {
		t.Errorf("a refusal with a part: %q", m)
	}
}
