package web

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/pki"
)

// pkiError is one error form found in the sources, with its sentinel's name.
type pkiError struct {
	form, sentinel string
}

// pkiErrorsIn reads files for pki's errors: invalid(…) (ErrInvalid) and
// fmt.Errorf(…: %w, …, ErrX) or pki.ErrX; sentinels collects pki's
// package-level Err… = errors.New(…) by name.
func pkiErrorsIn(t *testing.T, files []string, sentinels map[string]string) []pkiError {
	t.Helper()
	var out []pkiError
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if vs, ok := n.(*ast.ValueSpec); ok && sentinels != nil {
				for i, name := range vs.Names {
					if i >= len(vs.Values) {
						break
					}
					if call, ok := vs.Values[i].(*ast.CallExpr); ok && strings.HasPrefix(name.Name, "Err") && len(call.Args) == 1 {
						if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							sentinels[name.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			}
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
					out = append(out, pkiError{s, "ErrInvalid"})
				}
			case *ast.SelectorExpr:
				// "%w: %w" carries change's own error (pki's changeErr),
				// said through change's sentinels (changeMessage).
				if fn.Sel.Name != "Errorf" || !strings.HasSuffix(s, ": %w") || s == "%w: %w" {
					return true
				}
				var name string
				switch last := call.Args[len(call.Args)-1].(type) {
				case *ast.Ident:
					name = last.Name
				case *ast.SelectorExpr:
					if x, ok := last.X.(*ast.Ident); ok && x.Name == "pki" {
						name = last.Sel.Name
					}
				}
				if strings.HasPrefix(name, "Err") && s != "%s: %w" { // not invalid's own body
					out = append(out, pkiError{strings.TrimSuffix(s, ": %w"), name})
				}
			}
			return true
		})
	}
	return out
}

// REQ: DP-3, DP-7 — every sentinel of the certificate authority has a
// general text, and every error form pki (and the systems page itself)
// answers with has its form in pkiForms, so the systems page says it in
// Dutch or English and never shows pki's English; a new sentinel or form
// without a translation fails here.
func TestPKIErrorsTranslated(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "pki", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("pki sources: %v", err)
	}
	sentinels := map[string]string{}
	forms := pkiErrorsIn(t, files, sentinels)
	forms = append(forms, pkiErrorsIn(t, []string{"systems.go"}, nil)...)
	if len(sentinels) < 4 || len(forms) < 35 {
		t.Fatalf("found %d sentinels and %d error forms in pki; the parser no longer matches", len(sentinels), len(forms))
	}
	byName := map[string]error{}
	for name, text := range sentinels {
		for _, s := range pkiSentinels {
			if s.err.Error() == text {
				byName[name] = s.err
			}
		}
		if byName[name] == nil {
			t.Errorf("pki.%s (%q) has no general text in pkiSentinels", name, text)
		}
	}
	fill := strings.NewReplacer("%s", "s-1", "%d", "16", "%q", `"x"`, "%v", "asn1: syntax error")
	for _, f := range forms {
		sentinel := byName[f.sentinel]
		if sentinel == nil {
			t.Errorf("%q wraps %s, which is not one of pki's sentinels", f.form, f.sentinel)
			continue
		}
		err := fmt.Errorf("context: %s: %w", fill.Replace(f.form), sentinel)
		if _, _, ok := pkiForm(strings.TrimSuffix(err.Error(), ": "+sentinel.Error())); !ok {
			t.Errorf("pki's %q has no form in pkiForms", f.form)
			continue
		}
		for _, lang := range languages {
			m, ok := pkiMessage(lang, err)
			if !ok || m == "" || strings.Contains(m, "%!") || strings.Contains(m, sentinel.Error()) || strings.Contains(m, fill.Replace(f.form)) {
				t.Errorf("%q in %s: %q", f.form, lang, m)
			}
		}
	}
	// The longest form wins where forms overlap; parts are translated.
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("issue: system s-1 is deactivated: %w", pki.ErrConflict), "Dit systeem is gedeactiveerd."},
		{fmt.Errorf("system s-1: %w", pki.ErrNotFound), "Dit systeem bestaat niet in deze organisatie."},
		{fmt.Errorf("register: %s must be valid UTF-8 without control characters, at most %d bytes: %w", "name", 200, pki.ErrInvalid), "Naam: gewone tekst zonder regeleinden of stuurtekens, hoogstens 200 bytes."},
		{fmt.Errorf("something new: %w", pki.ErrForbidden), "Dit mag u niet."},
	} {
		if m, _ := pkiMessage("nl", c.err); m != c.want {
			t.Errorf("%v: %q, want %q", c.err, m, c.want)
		}
	}
	if _, ok := pkiMessage("nl", errors.New("disk full")); ok {
		t.Error("an error of no sentinel said as a refusal")
	}
}
