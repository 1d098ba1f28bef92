package main

import (
	"context"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/demo"
)

// The browser tests drive Debian's Chromium (headless, through chromedp)
// against the real binary over HTTPS on localhost, one test per journey.
// With -screenshots they also write the main pages to docs/screenshots/.

var screenshots = flag.Bool("screenshots", false, "write screenshots of the main pages to docs/screenshots/")

type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	shot int
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("ZK_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Skip("chromium not installed (apt-get install -y chromium); browser tests skipped")
	return ""
}

// newBrowser starts a fresh headless Chromium for the server at r. On
// failure the test saves a screenshot of the current page in its temp dir.
func newBrowser(t *testing.T, r *running) *browser {
	t.Helper()
	exe := chromiumPath(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(r.base, "https://"))
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("ignore-certificate-errors", true), chromedp.Flag("lang", "nl-NL"),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 150*time.Second)
	b := &browser{t: t, ctx: ctx, base: "https://localhost:" + port}
	// Dutch is the default; headless Chromium asks for English, so pick
	// Dutch once (the choice is kept in a cookie).
	if err := chromedp.Do(ctx, chromedp.Navigate(b.base+"/logon?lang=nl")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// Failure screenshots go to the test's temp dir, or to ZK_BROWSER_ARTIFACTS
	// (kept after the test) when set.
	shots := t.TempDir()
	if d := os.Getenv("ZK_BROWSER_ARTIFACTS"); d != "" {
		shots = d
	}
	t.Cleanup(func() {
		if t.Failed() {
			b.save(filepath.Join(shots, t.Name()+"-failure.png"))
			if loc, err := chromedp.Run(ctx, chromedp.Location()); err == nil {
				t.Logf("failing page: %s", loc)
			}
		}
		cancelT()
		cancelB()
		cancelA()
	})
	return b
}

func (b *browser) save(path string) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot: %v", err)
		return
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot: %v", err)
	}
	b.t.Logf("screenshot %s", path)
}

// doc saves a screenshot for the README when -screenshots is given.
func (b *browser) doc(name string) {
	if !*screenshots {
		return
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	b.save(filepath.Join(dir, name))
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// long runs steps that may take up to the browser's whole time budget.
func (b *browser) long(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// open loads path and checks the page's accessibility (axe-core).
func (b *browser) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base + path))
	b.checkAccessibility()
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// attr is an attribute of the first element sel finds.
func (b *browser) attr(sel, name string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector(`+jsString(sel)+`).getAttribute(`+jsString(name)+`) || ""`))
	if err != nil {
		b.t.Fatalf("%s of %s: %v", name, sel, err)
	}
	return v
}

func (b *browser) value(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("value of %s: %v", sel, err)
	}
	return v
}

func (b *browser) title() string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Title())
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

func (b *browser) location() string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

// has reports whether sel is in the page now.
func (b *browser) has(sel string) bool {
	b.t.Helper()
	ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.querySelector(`+jsString(sel)+`) !== null`))
	if err != nil {
		b.t.Fatal(err)
	}
	return ok
}

// poll waits until the JavaScript expression is true, across navigations
// (an evaluation during a navigation fails and is retried).
func (b *browser) poll(expr string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatalf("timed out waiting for %s", expr)
}

func (b *browser) eval(expr string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr)); err != nil {
		b.t.Fatalf("eval %s: %v", expr, err)
	}
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// fill sets an input's value and types nothing else.
func (b *browser) fill(sel, value string) {
	b.t.Helper()
	b.do(chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.SetValue(chromedp.CSS(sel), value))
}

// submit clicks sel and waits until the next document has loaded (the old
// document carries a marker, the new one does not), then checks the new
// page's accessibility (axe-core).
func (b *browser) submit(sel string) {
	b.t.Helper()
	b.eval(`window.__zkOld = true`)
	b.do(chromedp.Click(chromedp.CSS(sel)))
	b.poll(`window.__zkOld === undefined && document.readyState === "complete"`)
	b.checkAccessibility()
}

// logon logs on with user name, password and a TOTP code from secret. A code
// is accepted once, so a second log-on within the same 30 s step retries
// with the next step's code.
func (b *browser) logon(user, password, secret string) {
	b.t.Helper()
	for try := 0; try < 2; try++ {
		b.open("/logon")
		if !strings.Contains(b.text("#logon-banner"), "bevoegde") {
			b.t.Fatalf("log-on page lacks the warning banner (AUTH-4)")
		}
		b.fill("#username", user)
		b.fill("#password", password)
		b.submit("#logon-next")
		code, err := totp.GenerateCode(secret, time.Now().Add(time.Duration(try)*30*time.Second))
		if err != nil {
			b.t.Fatal(err)
		}
		b.fill("#code-totp", code)
		b.submit("#confirm-totp")
		b.waitLoaded()
		if !strings.Contains(b.location(), "/logon") {
			return
		}
	}
	b.t.Fatalf("log-on of %s failed; at %s", user, b.location())
}

// waitLoaded waits for the redirects after a form post to settle.
func (b *browser) waitLoaded() {
	b.t.Helper()
	b.poll(`document.readyState === "complete" && document.body !== null`)
}

func (b *browser) logoff() {
	b.t.Helper()
	b.submit("#logoff")
	b.waitLoaded()
}

func demoUser(t *testing.T, c demo.Credentials, name string) demo.User {
	t.Helper()
	for _, u := range c.Users {
		if u.Username == name {
			return u
		}
	}
	t.Fatalf("demo has no user %s", name)
	return demo.User{}
}

func startBrowserServer(t *testing.T, env ...string) (*running, demo.Credentials) {
	t.Helper()
	bin := buildBinary(t)
	data := t.TempDir()
	r := startServer(t, bin, data, env...)
	return r, readCreds(t, data)
}

// A person enrols a second authenticator app on the factors page and logs
// on with it; the log-on shows the previous log-on (AUTH-4). The apps are
// listed by the names their owner gave them, and one is renamed.
// REQ: AUTH-1, AUTH-2, AUTH-4
func TestBrowserPersonEnrolsTOTP(t *testing.T) {
	t.Parallel()
	r, creds := startBrowserServer(t)
	b := newBrowser(t, r)
	p := demoUser(t, creds, "s.devries")

	b.logon(p.Username, p.Password, p.TOTPSecret)
	if !strings.HasSuffix(b.location(), "/me") {
		t.Fatalf("person landed on %s; want /me", b.location())
	}
	if !strings.Contains(b.text("#personal"), "Sanne de Vries") {
		t.Fatalf("own record not shown: %q", b.text("main"))
	}
	b.open("/me/factors")
	b.fill("#totp-label", "Werktelefoon")
	b.submit("#totp-add")
	secret := strings.TrimSpace(b.text("#totp-secret"))
	if len(secret) < 16 || !b.has("#totp-new img.qr") {
		t.Fatalf("enrolment shows no QR code or secret (%q)", secret)
	}
	// The apps carry their owner's names, never their ids (issue 20).
	if l := b.text("#totp-list"); !strings.Contains(l, "Authenticator-app 1") || !strings.Contains(l, "Werktelefoon") || strings.Contains(l, "totp-") {
		t.Fatalf("apps listed as %q", l)
	}
	b.doc("factors.png")
	b.do(chromedp.Click(chromedp.CSS("#totp-list li:first-child summary")))
	b.fill("#totp-label-0", "Oude telefoon")
	b.submit("#totp-list li:first-child details button[type=submit]")
	if l := b.text("#totp-list"); !strings.Contains(l, "Oude telefoon") || strings.Contains(l, "Authenticator-app 1") || !strings.Contains(b.text("main"), "De naam is gewijzigd") {
		t.Fatalf("after renaming: %q", b.text("main"))
	}
	b.logoff()
	if !strings.Contains(b.text("main"), "afgemeld") {
		t.Fatalf("log-off page: %q", b.text("main"))
	}

	// Log on with the new authenticator.
	b.logon(p.Username, p.Password, secret)
	if !b.has("#logon-notice") || !strings.Contains(b.text("#logon-notice"), "vorige aanmelding") {
		t.Fatalf("no previous log-on notice after the second log-on")
	}
	// A wrong code fails with the one message that says nothing specific.
	b.logoff()
	b.open("/logon")
	b.fill("#username", p.Username)
	b.fill("#password", p.Password)
	b.submit("#logon-next")
	b.fill("#code-totp", "000000")
	b.submit("#confirm-totp")
	b.waitLoaded()
	if !strings.Contains(b.text(".error"), "mislukt") {
		t.Fatalf("wrong code: %q", b.text("main"))
	}
}

// A professional reads a related patient, is refused an unrelated one, uses
// emergency access and sees it marked; the patient sees it in their log;
// the security officer finds it in the review queue.
// REQ: AZ-3, AZ-5, LOG-4
func TestBrowserProfessionalEmergencyAccess(t *testing.T) {
	t.Parallel()
	r, creds := startBrowserServer(t)
	b := newBrowser(t, r)
	gp, other, p, sec := demoUser(t, creds, "dr.jansen"), demoUser(t, creds, "dr.bakker"), demoUser(t, creds, "s.devries"), demoUser(t, creds, "security.mulder")

	b.logon(gp.Username, gp.Password, gp.TOTPSecret)
	if !strings.HasSuffix(b.location(), "/patients") {
		t.Fatalf("professional landed on %s", b.location())
	}
	if !strings.Contains(b.text("#patient-list"), "Sanne de Vries") {
		t.Fatalf("related patient not listed: %q", b.text("main"))
	}
	b.submit("#patient-list a.open-patient")
	b.open("/patients/" + creds.PatientID + "?section=measurements")
	if rows := b.text("#record-rows"); !strings.Contains(rows, "HbA1c") || !strings.Contains(rows, "mmol/mol") {
		t.Fatalf("measurements not shown: %q", rows)
	}
	// Values in Dutch: decimal comma, units as people write them.
	if rows := b.text("#record-rows"); !strings.Contains(rows, "67,9 kg") || !strings.Contains(rows, "5,8 mmol/l") || !strings.Contains(rows, "128 mmHg") || strings.Contains(rows, "mm[Hg]") {
		t.Fatalf("measurements not in Dutch form: %q", rows)
	}
	// A trend per measured code above the table, drawn on the server as
	// an SVG image with a summary in Dutch (issue 20).
	if !b.has("#trends svg[role=img]") || !b.has("#trends svg polyline") {
		t.Fatalf("no weight trend above the measurements: %q", b.text("main"))
	}
	if !b.has(`#trends svg[aria-label*="Lichaamsgewicht: 2 metingen"][aria-label$="laatste 67,9 kg"]`) {
		t.Fatalf("the weight chart's summary: %q", b.attr("#trends svg", "aria-label"))
	}
	if b.has("#emergency-banner") {
		t.Fatal("emergency banner shown for a care relationship")
	}
	if strings.Contains(b.text("title"), "Sanne") || strings.Contains(b.location(), "Sanne") {
		t.Fatal("patient name in title or URL")
	}
	// The patient banner says whose record this is (issue 20); the title
	// has the initials only, the BSN is masked until asked for.
	banner := b.text("#patient-banner")
	for _, want := range []string{"Sanne de Vries", "12-03-1984", "jaar", "vrouw", "behandelrelatie"} {
		if !strings.Contains(banner, want) {
			t.Fatalf("patient banner lacks %q: %q", want, banner)
		}
	}
	if title := b.title(); !strings.HasPrefix(title, "S.d.V. – ") {
		t.Fatalf("title %q lacks the initials", title)
	}
	b.doc("professional-record.png")
	masked, tail := b.text("#banner-bsn"), b.text("#banner-bsn-tail")
	b.submit("#show-bsn")
	bsn := strings.TrimSpace(b.text("#banner-bsn"))
	if full := bsn; strings.Contains(masked, full) || len(full) != 9 || len(tail) != 3 || !strings.HasSuffix(full, tail) {
		t.Fatalf("toon BSN: masked %q, shown %q", masked, full)
	}
	if !strings.Contains(b.text("#section-title"), "Metingen") {
		t.Fatalf("toon BSN left the section: %q", b.text("#section-title"))
	}
	b.logoff()

	b.logon(other.Username, other.Password, other.TOTPSecret)
	if strings.Contains(b.text("main"), "Sanne") {
		t.Fatal("unrelated patient listed for the second GP")
	}
	b.open("/patients/" + creds.PatientID)
	if !strings.Contains(b.text("#refused"), "geen behandelrelatie") {
		t.Fatalf("unrelated patient not refused: %q", b.text("main"))
	}
	// The reason is mandatory: a short one is refused.
	b.fill("#reason", "x")
	b.eval(`document.querySelector('#reason').removeAttribute('minlength'), true`)
	b.submit("#btg")
	b.waitLoaded()
	if !b.has("#btg") || b.has("#emergency-banner") {
		t.Fatal("emergency access started without a proper reason")
	}
	b.fill("#reason", "Bewusteloos binnengebracht op de SEH, medicatie onbekend")
	b.submit("#btg")
	b.waitLoaded()
	if !b.has("#emergency-banner") || !strings.Contains(b.text("#emergency-banner"), "NOODTOEGANG") {
		t.Fatalf("emergency access not marked: %q", b.text("body"))
	}
	if basis := b.text("#banner-basis"); !strings.Contains(basis, "noodtoegang – nog 3 u 59 min") && !strings.Contains(basis, "noodtoegang – nog 4 u") {
		t.Fatalf("banner's basis under emergency access: %q", basis)
	}
	if !strings.Contains(b.text("#personal"), "Sanne de Vries") {
		t.Fatalf("record not shown under emergency access")
	}
	b.open("/patients/" + creds.PatientID + "?section=measurements")
	if !b.has("#emergency-banner") || !strings.Contains(b.text("#record-rows"), "Glucose") {
		t.Fatal("emergency banner or data missing on the next section")
	}
	b.logoff()

	b.logon(p.Username, p.Password, p.TOTPSecret)
	b.open("/me/log")
	log := b.text("#access-log")
	if !strings.Contains(log, "noodtoegang") || !strings.Contains(log, "ja") {
		t.Fatalf("emergency access not in the patient's log: %q", log)
	}
	if strings.Contains(log, "Bakker") {
		t.Fatal("employee name shown by default")
	}
	b.doc("person-log.png")
	if w := b.pageWidth(); w > 1280 {
		t.Fatalf("the log is %d px wide in a 1280 px window", w)
	}
	// The filter takes Dutch dates and says so.
	if !strings.Contains(b.text("label[for=from]"), "dd-mm-jjjj") {
		t.Fatalf("date filter label: %q", b.text("label[for=from]"))
	}
	today := time.Now().In(clock.Amsterdam()).Format("02-01-2006")
	b.fill("#from", today)
	b.fill("#to", today)
	b.submit("main form button[type=submit]")
	if v := b.value("#from"); v != today || !strings.Contains(b.text("#access-log"), today) {
		t.Fatalf("filter on %s: field %q, log %q", today, v, b.text("main"))
	}
	if !strings.Contains(b.text("#access-log"), "× op "+today+" ") {
		t.Fatalf("merged lines not in words: %q", b.text("#access-log"))
	}
	b.submit("#show-names")
	if !strings.Contains(b.text("#access-log"), "Bakker") {
		t.Fatal("employee names not shown on request")
	}
	b.logoff()

	b.logon(sec.Username, sec.Password, sec.TOTPSecret)
	b.open("/security/emergencies")
	// The start page charts the last 30 days: today's emergency access and
	// the refusal of dr.bakker are in it.
	if !b.has("#activity svg[role=img]") {
		t.Fatalf("no chart on the officer's start page: %q", b.text("main"))
	}
	if label := b.attr("#activity svg", "aria-label"); !strings.Contains(label, "1 noodtoegangen") || strings.Contains(label, " 0 weigeringen") {
		t.Fatalf("the officer's chart: %q", label)
	}
	b.doc("security-start.png")
	if q := b.text("#emergencies"); !strings.Contains(q, "Bakker") || !strings.Contains(q, "Bewusteloos") {
		t.Fatalf("emergency not in the review queue: %q", q)
	}
	b.fill("#emergencies input[name=note]", "Bevestigd met de dienstdoende arts")
	b.submit("#emergencies button[value=justified]")
	if !strings.Contains(b.text("#emergencies"), "terecht") {
		t.Fatalf("review not recorded: %q", b.text("main"))
	}

	// The officer searches the log by the patient's BSN and the GP's user
	// name, and reads names and bases in words, the refusal in Dutch
	// (issue 20); the BSN is in no URL.
	b.open("/security/audit")
	b.fill("#a-bsn", bsn)
	b.fill("#a-user", other.Username)
	b.submit("#audit-search")
	if strings.Contains(b.location(), bsn) || !strings.Contains(b.location(), "user="+other.Username) {
		t.Fatalf("the search's URL: %s", b.location())
	}
	results := b.text("#audit-results")
	for _, want := range []string{"Sanne de Vries", "noodtoegang", "geweigerd", "geen behandelrelatie", "Bewusteloos"} {
		if !strings.Contains(results, want) {
			t.Fatalf("the officer's results lack %q: %q", want, results)
		}
	}
	if strings.Contains(results, creds.PatientID) || strings.Contains(results, "emergency:") || strings.Contains(results, "care-relationship") {
		t.Fatalf("the officer's results show internal ids: %q", results)
	}
	if !strings.Contains(b.text("#audit-patient"), "Sanne de Vries") {
		t.Fatalf("the search does not say whose lines: %q", b.text("main"))
	}
	b.doc("security-audit.png")
}

// An admin requests a role for an account; they cannot approve it
// themselves; a second admin approves it, and the overview shows who did
// what.
// REQ: AZ-7, GOV-1
func TestBrowserRightFourEyes(t *testing.T) {
	t.Parallel()
	r, creds := startBrowserServer(t)
	b := newBrowser(t, r)
	a1, a2 := demoUser(t, creds, "beheer.smit"), demoUser(t, creds, "beheer.visser")

	b.logon(a1.Username, a1.Password, a1.TOTPSecret)
	if !strings.HasSuffix(b.location(), "/admin/rights") {
		t.Fatalf("admin landed on %s", b.location())
	}
	b.fill("#req-user", "dr.bakker")
	b.do(chromedp.SetValue(chromedp.CSS("#req-role"), "assistant"))
	b.fill("#req-reason", "Waarneming op de balie tijdens vakantie")
	b.submit("#request-send")
	if !strings.Contains(b.text("#pending"), "dr.bakker") {
		t.Fatalf("request not pending: %q", b.text("main"))
	}
	// The requester may not approve their own request.
	b.submit("#pending button.approve")
	if !b.has(".error") || !strings.Contains(b.text("#pending"), "dr.bakker") {
		t.Fatalf("requester approved own request: %q", b.text("main"))
	}
	b.logoff()

	b.logon(a2.Username, a2.Password, a2.TOTPSecret)
	b.fill("#pending input[name=note]", "Akkoord, tot eind augustus")
	b.submit("#pending button.approve")
	if b.has("#pending") {
		t.Fatalf("request still pending: %q", b.text("main"))
	}
	rights := b.text("#rights")
	if !strings.Contains(rights, "dr.bakker") || !strings.Contains(rights, "assistent") || !strings.Contains(rights, "beheer.smit") || !strings.Contains(rights, "beheer.visser") {
		t.Fatalf("approved right not in the overview with requester and approver: %q", rights)
	}
	b.doc("admin-rights.png")
}

// The idle time-out warns and then logs the user off; the server has ended
// the session too. The server runs with the shortest idle timeout (1 min).
// REQ: AUTH-4
func TestBrowserIdleTimeout(t *testing.T) {
	t.Parallel()
	r, creds := startBrowserServer(t, "ZK_IDLE_TIMEOUT=1m")
	b := newBrowser(t, r)
	p := demoUser(t, creds, "s.devries")
	b.logon(p.Username, p.Password, p.TOTPSecret)
	start := time.Now()
	// The warning comes half-way for a 1-minute timeout.
	b.long(chromedp.WaitVisible(chromedp.CSS("#idle-warning")))
	if w := time.Since(start); w < 20*time.Second || w > 45*time.Second {
		t.Fatalf("warning after %s; want about 30 s", w)
	}
	if !strings.Contains(b.text("#idle-text"), "afgemeld") {
		t.Fatalf("warning text: %q", b.text("#idle-text"))
	}
	b.long(chromedp.WaitVisible(chromedp.CSS("#logon-banner")))
	if !strings.Contains(b.location(), "/logon") || !strings.Contains(b.text("main"), "te lang niets") {
		t.Fatalf("not logged off after the idle timeout: %s %q", b.location(), b.text("main"))
	}
	// The session is gone on the server: the record needs a new log-on.
	b.open("/me")
	b.waitLoaded()
	if !strings.Contains(b.location(), "/logon") {
		t.Fatalf("session still valid after idle log-off: %s", b.location())
	}
}
