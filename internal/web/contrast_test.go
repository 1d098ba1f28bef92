package web

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The palette's contrast, measured from the stylesheet the pages serve
// (WCAG 2.1 success criteria 1.4.3 and 1.4.11): text needs 4.5:1 against
// its background, large text and the parts of controls and charts one has
// to see (borders of inputs, focus rings, chart lines) 3:1.

// cssRule is one rule of the stylesheet: its selector and declarations.
type cssRule struct {
	selector string
	decls    map[string]string
}

var (
	cssComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	cssBlock   = regexp.MustCompile(`(?s)([^{}]+)\{([^{}]*)\}`)
	cssColor   = regexp.MustCompile(`#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b|var\(--[a-z-]+\)`)
)

// parseCSS reads the rules of app.css; rules inside @media blocks are read
// like the others (the palette does not change with the width).
func parseCSS(t *testing.T) []cssRule {
	t.Helper()
	b, err := staticFS.ReadFile("static/app.css")
	if err != nil {
		t.Fatal(err)
	}
	src := cssComment.ReplaceAllString(string(b), "")
	src = regexp.MustCompile(`@media[^{]*\{`).ReplaceAllString(src, "")
	var out []cssRule
	for _, m := range cssBlock.FindAllStringSubmatch(src, -1) {
		r := cssRule{selector: strings.Join(strings.Fields(m[1]), " "), decls: map[string]string{}}
		for _, d := range strings.Split(m[2], ";") {
			k, v, ok := strings.Cut(d, ":")
			if ok {
				r.decls[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
		out = append(out, r)
	}
	if len(out) < 50 {
		t.Fatalf("read only %d rules from app.css", len(out))
	}
	return out
}

// palette is the stylesheet's custom properties (:root and the chart
// series' --series) by name, with "white" for #fff.
func palette(t *testing.T, rules []cssRule) map[string]string {
	t.Helper()
	p := map[string]string{}
	for _, r := range rules {
		for k, v := range r.decls {
			if strings.HasPrefix(k, "--") {
				if _, dup := p[k]; dup && k != "--series" {
					t.Fatalf("custom property %s defined twice", k)
				}
				if k == "--series" {
					k = "--series(" + r.selector + ")"
				}
				p[k] = v
			}
		}
	}
	return p
}

// resolve turns a colour value (#rgb, #rrggbb, var(--x), #fff) into
// #rrggbb; "" when the value holds no colour (none, inherit...).
func resolve(t *testing.T, p map[string]string, v string) string {
	t.Helper()
	c := cssColor.FindString(v)
	for i := 0; strings.HasPrefix(c, "var(") && i < 5; i++ {
		c = cssColor.FindString(p[strings.TrimSuffix(strings.TrimPrefix(c, "var("), ")")])
	}
	if strings.HasPrefix(c, "var(") {
		t.Fatalf("colour %s does not resolve", v)
	}
	if len(c) == 4 {
		c = "#" + strings.Repeat(c[1:2], 2) + strings.Repeat(c[2:3], 2) + strings.Repeat(c[3:4], 2)
	}
	return strings.ToLower(c)
}

// luminance is WCAG 2.1's relative luminance of #rrggbb.
func luminance(hex string) float64 {
	var ch [3]float64
	for i := range ch {
		n, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		c := float64(n) / 255
		if c <= 0.04045 {
			ch[i] = c / 12.92
		} else {
			ch[i] = math.Pow((c+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*ch[0] + 0.7152*ch[1] + 0.0722*ch[2]
}

// contrast is WCAG 2.1's contrast ratio of two colours, 1 to 21.
func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// REQ: DP-7 (WCAG 2.1 AA) — the contrast helper agrees with the figures
// WCAG gives: black on white 21:1, white on white 1:1, #767676 on white
// the classic 4.54:1.
func TestContrastRatio(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want float64
	}{{"#000000", "#ffffff", 21}, {"#ffffff", "#ffffff", 1}, {"#767676", "#ffffff", 4.54}} {
		if got := contrast(c.a, c.b); math.Abs(got-c.want) > 0.01 {
			t.Errorf("contrast(%s, %s) = %.3f; want %.2f", c.a, c.b, got, c.want)
		}
	}
}

// REQ: DP-7 (WCAG 2.1 AA 1.4.3, 1.4.11) — every colour pair the pages use
// has enough contrast. The pairs come from the stylesheet itself: each rule
// that sets both a text colour and a background, each rule's text colour
// against the backgrounds it is shown on, and the parts of controls one has
// to see (input borders, the focus ring, chart lines and markers) against
// what surrounds them. A colour changed in app.css is measured here.
func TestPaletteContrast(t *testing.T) {
	rules := parseCSS(t)
	p := palette(t, rules)
	col := func(v string) string { return resolve(t, p, v) }
	white, bg, soft, accent := "#ffffff", col("var(--bg)"), col("var(--soft)"), col("var(--accent)")
	type pair struct {
		what   string
		fg, bg string
		min    float64
	}
	var pairs []pair
	bgOf := func(r cssRule) string {
		for _, k := range []string{"background-color", "background"} {
			if v, ok := r.decls[k]; ok {
				return col(v)
			}
		}
		return ""
	}
	// Rules with their own text and background colour.
	for _, r := range rules {
		fg, ok := r.decls["color"]
		if !ok || col(fg) == "" {
			continue
		}
		if b := bgOf(r); b != "" {
			pairs = append(pairs, pair{r.selector, col(fg), b, 4.5})
		}
	}
	// Text colours set without a background are read on the page's
	// backgrounds: the page itself, the soft panels (menu, table heads,
	// banners, notices) and for the header's own rules the header.
	for _, r := range rules {
		fg, ok := r.decls["color"]
		if !ok || col(fg) == "" || bgOf(r) != "" || strings.HasPrefix(r.selector, ":root") {
			continue
		}
		backs := []string{bg, soft}
		switch {
		case strings.HasPrefix(r.selector, "header.top"):
			backs = []string{accent}
		case strings.Contains(r.selector, ".error") || strings.Contains(r.selector, ".notice .warn"):
			backs = []string{bg, soft, col("var(--danger-bg)")}
		}
		for _, b := range backs {
			pairs = append(pairs, pair{r.selector, col(fg), b, 4.5})
		}
	}
	// The page's own text and the muted text on every panel background.
	for _, b := range []string{bg, soft, white, col("var(--danger-bg)"), col("var(--ok-bg)")} {
		pairs = append(pairs, pair{"text (--fg)", col("var(--fg)"), b, 4.5})
	}
	for _, b := range []string{bg, soft, col("var(--danger-bg)")} {
		pairs = append(pairs, pair{".muted (--muted)", col("var(--muted)"), b, 4.5})
	}
	// White text on the danger colour: the danger button, the emergency
	// banner and tag.
	pairs = append(pairs, pair{"button.danger", col("var(--accent-fg)"), col("var(--danger)"), 4.5})
	// Controls and graphics (3:1): input borders, focus rings, chart
	// lines and markers, the active section's border.
	for _, r := range rules {
		for _, k := range []string{"border", "border-color", "outline", "outline-color", "stroke", "fill"} {
			v, ok := r.decls[k]
			if !ok || col(v) == "" || strings.Contains(r.selector, "chart-grid") ||
				strings.Contains(v, "var(--line)") || k == "stroke" && strings.Contains(v, "var(--bg)") {
				continue
			}
			backs := []string{bg, soft}
			if strings.HasPrefix(r.selector, "header.top") {
				backs = []string{accent}
			}
			for _, b := range backs {
				pairs = append(pairs, pair{r.selector + " " + k, col(v), b, 3})
			}
		}
	}
	for k, v := range p {
		if strings.HasPrefix(k, "--series(") {
			pairs = append(pairs, pair{"chart " + k, col(v), bg, 3})
		}
	}
	var n int
	for _, pr := range pairs {
		n++
		if c := contrast(pr.fg, pr.bg); c < pr.min {
			t.Errorf("%s: %s on %s is %.2f:1; want at least %.1f:1", pr.what, pr.fg, pr.bg, c, pr.min)
		}
	}
	if n < 40 {
		t.Fatalf("measured only %d pairs; the stylesheet was not read", n)
	}
	t.Logf("measured %d colour pairs", n)
}
