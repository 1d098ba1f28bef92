package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/pquerna/otp/totp"
)

// The keyboard-only journey: everything after loading the log-on page is
// done with Tab, Shift+Tab, Enter, Space and typed characters, as someone
// who cannot use a mouse does it (WCAG 2.1 2.1.1 Keyboard, 2.4.3 Focus
// Order, 2.4.7 Focus Visible).

// focusStop is what has the focus after one press of Tab.
type focusStop struct {
	Desc    string `json:"desc"`    // tag#id.class "text", to say which one
	Visible bool   `json:"visible"` // a focus ring is drawn and the element is on the screen
}

// focusNow describes document.activeElement; Desc is "" for the body (no
// element has the focus).
const focusNow = `(() => {
	const e = document.activeElement;
	if (!e || e === document.body || e === document.documentElement) return JSON.stringify({desc: "", visible: false});
	const s = getComputedStyle(e), r = e.getBoundingClientRect();
	const ring = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) || s.boxShadow !== 'none';
	const onScreen = r.width > 0 && r.height > 0 && r.right > 0 && r.left < window.innerWidth;
	return JSON.stringify({desc: window.__zkDesc(e), visible: ring && onScreen});
})()`

// describe is installed in each page: how the focus order and the list of
// controls name an element.
const describe = `window.__zkDesc = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
	(e.getAttribute('href') ? '[' + e.getAttribute('href') + ']' : '') +
	(e.name ? '[name=' + e.name + ']' : '') + (e.value && e.tagName === 'BUTTON' ? '[' + e.value + ']' : '') +
	' "' + (e.innerText || e.value || '').trim().slice(0, 30) + '"'; true`

// controls lists the page's controls in document order, the ones a Tab
// should reach: links, buttons, fields, nothing hidden or disabled.
const controls = `JSON.stringify(Array.from(document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')).filter(e =>
	!e.disabled && e.type !== 'hidden' && e.tabIndex >= 0 && e.getClientRects().length > 0 &&
	getComputedStyle(e).visibility !== 'hidden').map(window.__zkDesc))`

// press sends one key (kb.Tab, kb.Enter, " "), with Shift when shift is set.
func (b *browser) press(key string, shift bool) {
	b.t.Helper()
	var opts []chromedp.KeyOption
	if shift {
		opts = append(opts, chromedp.KeyModifiers(chromedp.ModifierShift))
	}
	b.do(chromedp.KeyEvent(key, opts...))
}

func (b *browser) focused() focusStop {
	b.t.Helper()
	b.eval(describe)
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](focusNow))
	if err != nil {
		b.t.Fatal(err)
	}
	var f focusStop
	if err := json.Unmarshal([]byte(s), &f); err != nil {
		b.t.Fatal(err)
	}
	return f
}

// maxStops bounds every walk through a page's focus order.
const maxStops = 120

// toTop moves the focus before the first control with Shift+Tab, so that
// the next Tab reaches the first one (the skip link).
func (b *browser) toTop() {
	b.t.Helper()
	for i := 0; i < maxStops; i++ {
		if b.focused().Desc == "" {
			return
		}
		b.press(kb.Tab, true)
	}
	b.t.Fatalf("Shift+Tab never left the page's first control")
}

// checkFocusOrder walks the page with Tab from the top to the end and
// checks that the focus reaches every control, in document order, and is
// visible at each; the walk back with Shift+Tab meets them in reverse.
func (b *browser) checkFocusOrder(page string) {
	b.t.Helper()
	b.eval(describe)
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](controls))
	if err != nil {
		b.t.Fatal(err)
	}
	var want []string
	if err := json.Unmarshal([]byte(s), &want); err != nil {
		b.t.Fatal(err)
	}
	if len(want) < 3 {
		b.t.Fatalf("%s: only %d controls found: %v", page, len(want), want)
	}
	b.toTop()
	var got []string
	for i := 0; i < maxStops; i++ {
		b.press(kb.Tab, false)
		f := b.focused()
		if f.Desc == "" {
			break
		}
		if !f.Visible {
			b.t.Errorf("%s: the focus on %s is not visible", page, f.Desc)
		}
		got = append(got, f.Desc)
	}
	b.t.Logf("%s: %d controls, Tab reaches each in order", page, len(got))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		b.t.Fatalf("%s: Tab reaches\n  %s\nthe page's controls are\n  %s", page, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	var back []string
	for i := 0; i < maxStops; i++ {
		b.press(kb.Tab, true)
		f := b.focused()
		if f.Desc == "" {
			break
		}
		back = append(back, f.Desc)
	}
	for i, j := 0, len(back)-1; i < j; i, j = i+1, j-1 {
		back[i], back[j] = back[j], back[i]
	}
	if strings.Join(back, "\n") != strings.Join(want, "\n") {
		b.t.Fatalf("%s: Shift+Tab reaches (reversed)\n  %s\nwant\n  %s", page, strings.Join(back, "\n  "), strings.Join(want, "\n  "))
	}
}

// tabTo presses Tab from the top until the control sel finds has the
// focus.
func (b *browser) tabTo(sel string) {
	b.t.Helper()
	b.toTop()
	for i := 0; i < maxStops; i++ {
		b.press(kb.Tab, false)
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.activeElement === document.querySelector(`+jsString(sel)+`)`))
		if err != nil {
			b.t.Fatal(err)
		}
		if ok {
			return
		}
		if b.focused().Desc == "" {
			break
		}
	}
	b.t.Fatalf("Tab never reaches %s", sel)
}

// activate presses key (Enter or Space) on the focused control and waits
// for the next page, then checks its accessibility.
func (b *browser) activate(key string) {
	b.t.Helper()
	b.eval(`window.__zkOld = true`)
	b.press(key, false)
	b.poll(`window.__zkOld === undefined && document.readyState === "complete"`)
	b.checkAccessibility()
}

// A GP logs on and opens a patient's record and its measurements with the
// keyboard only; on every page the focus reaches each control in document
// order and is visible, the skip link moves the focus to the content, and
// Space reveals the BSN.
// REQ: DP-7, AUTH-1
func TestBrowserKeyboardOnly(t *testing.T) {
	t.Parallel()
	r, creds := startBrowserServer(t)
	b := newBrowser(t, r)
	gp := demoUser(t, creds, "dr.jansen")

	b.open("/logon")
	b.checkFocusOrder("log-on")
	// The skip link comes first, shows itself on focus and moves the focus
	// to the page's content.
	b.toTop()
	b.press(kb.Tab, false)
	if f := b.focused(); !strings.HasPrefix(f.Desc, "a[#main]") || !f.Visible {
		t.Fatalf("the first Tab reaches %+v; want the visible skip link", f)
	}
	b.press(kb.Enter, false)
	b.poll(`document.activeElement === document.querySelector('main')`)

	b.tabTo("#username")
	b.do(chromedp.KeyEvent(gp.Username))
	b.press(kb.Tab, false)
	b.do(chromedp.KeyEvent(gp.Password))
	b.press(kb.Tab, false)
	if f := b.focused(); !strings.HasPrefix(f.Desc, "button#logon-next") {
		t.Fatalf("Tab after the password reaches %s", f.Desc)
	}
	b.activate(kb.Enter)

	if !b.has("#code-totp") {
		t.Fatalf("no code field after the password: %q", b.text("main"))
	}
	b.checkFocusOrder("second factor")
	code, err := totp.GenerateCode(gp.TOTPSecret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b.tabTo("#code-totp")
	b.do(chromedp.KeyEvent(code))
	b.press(kb.Tab, false)
	b.activate(" ") // Space presses the focused button
	b.waitLoaded()
	if !strings.HasSuffix(b.location(), "/patients") {
		t.Fatalf("after the log-on by keyboard: %s %q", b.location(), b.text("main"))
	}

	b.checkFocusOrder("patients")
	b.tabTo("#patient-list a.open-patient")
	b.activate(kb.Enter)
	b.waitLoaded()
	if !strings.Contains(b.text("#patient-banner"), "Sanne de Vries") {
		t.Fatalf("the record by keyboard: %q", b.text("main"))
	}
	b.checkFocusOrder("record")
	b.tabTo(`a[href$="section=measurements"]`)
	b.activate(kb.Enter)
	if !strings.Contains(b.text("#record-rows"), "HbA1c") {
		t.Fatalf("measurements by keyboard: %q", b.text("main"))
	}
	b.checkFocusOrder("measurements")
	masked := b.text("#banner-bsn")
	b.tabTo("#show-bsn")
	b.activate(" ")
	if full := strings.TrimSpace(b.text("#banner-bsn")); len(full) != 9 || full == masked {
		t.Fatalf("Space on toon BSN: masked %q, shown %q", masked, full)
	}
	b.tabTo("#logoff")
	b.activate(kb.Enter)
	b.waitLoaded()
	if !strings.Contains(b.text("main"), "afgemeld") {
		t.Fatalf("log-off by keyboard: %q", b.text("main"))
	}
}
