package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// phoneWidth is a small phone's viewport in CSS pixels.
const phoneWidth = 360

// pageWidth is how wide the current page is laid out, in CSS pixels; wider
// than the viewport, it scrolls sideways.
func (b *browser) pageWidth() int {
	b.t.Helper()
	w, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)`))
	if err != nil {
		b.t.Fatal(err)
	}
	return w
}

// tooWide names the innermost elements that reach past the viewport, to
// say what to fix.
func (b *browser) tooWide() string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll('body *')).filter(e =>
		e.getBoundingClientRect().right > `+strconv.Itoa(phoneWidth)+` && !Array.from(e.children).some(c => c.getBoundingClientRect().right > `+strconv.Itoa(phoneWidth)+`)).
		slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '') + ' ' + Math.round(e.getBoundingClientRect().right)).join(', ')`))
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

// A person reads their record, their access log and their factors on a
// phone: at 360 px wide no page scrolls sideways (tables become stacked
// lists, the header wraps), and the log's lines are still there to read.
// REQ: LOG-4, DP-7
func TestBrowserPhonePages(t *testing.T) {
	t.Parallel()
	r, creds := startBrowserServer(t)
	b := newBrowser(t, r)
	p := demoUser(t, creds, "s.devries")
	b.do(chromedp.EmulateViewport(phoneWidth, 780, chromedp.EmulateMobile))
	b.logon(p.Username, p.Password, p.TOTPSecret)
	b.open("/me/record?section=measurements")
	// A read of the record fills the log the next page shows.
	for _, path := range []string{"/me", "/me/record?section=measurements", "/me/record?section=allergies", "/me/log", "/me/log?names=1", "/me/factors"} {
		b.open(path)
		b.waitLoaded()
		if w := b.pageWidth(); w > phoneWidth {
			t.Errorf("%s is %d px wide at %d px; too wide: %s", path, w, phoneWidth, b.tooWide())
		}
	}
	b.open("/me/log")
	if log := b.text("#access-log tbody"); !strings.Contains(log, "eigen gegevens") {
		t.Fatalf("the log's lines on a phone: %q", log)
	}
	// Each cell is led by its column's name once the table is a list.
	label, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('#access-log tbody td'), '::before').content`))
	if err != nil || !strings.Contains(label, "Wanneer") {
		t.Fatalf("the log's cells on a phone are not labelled: %q %v", label, err)
	}
	b.doc("person-log-phone.png")
}
