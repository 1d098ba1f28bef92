package web

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// Every page template keeps to what the Content-Security-Policy
// (script-src 'self'; style-src 'self') and the CSRF protection need, so
// no page can break them whatever data it shows:
//   - scripts only from files (no inline script, no on* handler attributes,
//     no javascript: URLs); inline styles neither;
//   - every POST form carries the CSRF token;
//   - every visible form field has a label;
//   - the page title is a fixed, translated text, never data (no health data
//     in titles, which end up in history and bookmarks), but for the
//     patient's initials (view.Initials) on a page of one patient's data.
//
// REQ: AUTH-4
func TestTemplatesKeepCSPAndCSRF(t *testing.T) {
	var (
		scriptTag  = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script>`)
		handler    = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
		jsURL      = regexp.MustCompile(`(?i)javascript:`)
		styleAttr  = regexp.MustCompile(`(?i)\sstyle\s*=`)
		styleTag   = regexp.MustCompile(`(?i)<style\b`)
		postForm   = regexp.MustCompile(`(?is)<form\b[^>]*method="post"[^>]*>(.*?)</form>`)
		titleTag   = regexp.MustCompile(`(?is)<title>(.*?)</title>`)
		field      = regexp.MustCompile(`(?is)<(input|select|textarea)\b([^>]*)>`)
		fieldType  = regexp.MustCompile(`(?i)\stype="([a-z]+)"`)
		fieldID    = regexp.MustCompile(`(?i)\sid="([^"]+)"`)
		fixedTitle = `{{with .Initials}}{{.}} – {{end}}{{t .Lang .Title}} – {{t .Lang "app.name"}}`
	)
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil || len(files) < 15 {
		t.Fatalf("templates: %v %v", files, err)
	}
	forms := 0
	for _, f := range files {
		b, err := fs.ReadFile(templateFS, f)
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		for _, m := range scriptTag.FindAllStringSubmatch(src, -1) {
			if !strings.Contains(m[1], `src="/static/`) || strings.TrimSpace(m[2]) != "" {
				t.Errorf("%s: inline or foreign script: %s", f, m[0])
			}
		}
		for _, re := range []*regexp.Regexp{handler, jsURL, styleAttr, styleTag} {
			if loc := re.FindStringIndex(src); loc != nil {
				t.Errorf("%s: %q breaks the CSP", f, src[loc[0]:min(len(src), loc[1]+30)])
			}
		}
		for _, m := range postForm.FindAllStringSubmatch(src, -1) {
			forms++
			if !strings.Contains(m[1], `name="csrf"`) {
				t.Errorf("%s: POST form without CSRF token: %.120s", f, m[0])
			}
		}
		// Every visible field has a label (WCAG 1.3.1, 4.1.2): a <label
		// around it, a <label for> naming its id, or an aria-label.
		for _, loc := range field.FindAllStringSubmatchIndex(src, -1) {
			m := []string{src[loc[0]:loc[1]], src[loc[2]:loc[3]], src[loc[4]:loc[5]]}
			before := src[:loc[0]]
			if strings.LastIndex(before, "<label") > strings.LastIndex(before, "</label>") {
				continue // wrapped in its label
			}
			if ty := fieldType.FindStringSubmatch(m[2]); ty != nil && (ty[1] == "hidden" || ty[1] == "submit" || ty[1] == "button") {
				continue
			}
			if strings.Contains(m[2], "aria-label") {
				continue
			}
			id := fieldID.FindStringSubmatch(m[2])
			if id == nil || !strings.Contains(src, `for="`+id[1]+`"`) {
				t.Errorf("%s: field without a label: %s", f, m[0])
			}
		}
		for _, m := range titleTag.FindAllStringSubmatch(src, -1) {
			if strings.TrimSpace(m[1]) != fixedTitle {
				t.Errorf("%s: title %q is not the fixed translated title", f, m[1])
			}
		}
	}
	if forms < 20 {
		t.Fatalf("only %d POST forms found; the pattern no longer matches the templates", forms)
	}
}
