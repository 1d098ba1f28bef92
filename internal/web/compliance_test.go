package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/compliance"
	"github.com/zorgkluis/zorgkluis/internal/governance"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

// newPageEnvWith is newPageEnv whose option sees the environment (its
// database, clock and services) to build further services on.
func newPageEnvWith(t *testing.T, opt func(*pageEnv, *Deps)) *pageEnv {
	t.Helper()
	db := storetest.SQLite(t)
	c := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	k := testkit.New(t, db, testkit.WithClock(c))
	e := &pageEnv{t: t, ctx: context.Background(), clock: c, db: db, kit: k, ids: k.IDs, an: k.Authn, dec: k.Access, log: k.Audit}
	deps := Deps{IDs: e.ids, Authn: e.an, Access: e.dec, Audit: e.log, Records: k.Records, Clock: c, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	opt(e, &deps)
	hd, err := Routes(http.NewServeMux(), deps)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(hd)
	t.Cleanup(e.srv.Close)
	return e
}

func itoa(n int) string { return strconv.Itoa(n) }

// upload posts a file as the control page's form does.
func (e *pageEnv) upload(u pageUser, path, name string, content []byte) (int, string) {
	e.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("csrf", testCSRF)
	fw, err := mw.CreateFormFile("document", name)
	if err != nil {
		e.t.Fatal(err)
	}
	fw.Write(content)
	mw.Close()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, &body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.AddCookie(&http.Cookie{Name: cookieSession, Value: u.token})
	req.AddCookie(&http.Cookie{Name: cookieCSRF, Value: testCSRF})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The controls page shows every control with its status in Dutch and
// English; an admin marks a control not applicable and attaches a PDF (an
// executable named .pdf is refused); a professional cannot open it. On the
// admin-log review the officer's own line offers no form to the officer,
// and marking it anyway is refused, while an admin marks it.
//
// REQ: GOV-3, LOG-7
func TestCompliancePages(t *testing.T) {
	var gov *governance.Service
	e := newPageEnvWith(t, func(e *pageEnv, d *Deps) {
		gov = governance.New(governance.Config{DB: e.db, Clock: e.clock, Rand: rand.Reader, Audit: e.log, Access: e.dec, IDs: e.ids})
		d.Governance = gov
		d.Compliance = compliance.New(compliance.Config{DB: e.db, Clock: e.clock, Rand: rand.Reader, Audit: e.log, Keys: e.kit.Keys, Gov: gov})
	})
	tenant := e.tenant("Praktijk A")
	officer := e.login(tenant, identity.KindAdmin, access.RoleSecurityOfficer)
	admin := e.login(tenant, identity.KindAdmin, access.RoleAppAdmin)
	pro := e.login(tenant, identity.KindProfessional, access.RoleProfessional)

	code, body := e.page(officer, "/governance/controls", nil, false)
	if code != http.StatusOK || !strings.Contains(body, `id="ctl-medmij/A.12.3.1"`) || !strings.Contains(body, "rood") ||
		!strings.Contains(body, "nen7512/6.4.5b") || !strings.Contains(body, `href="/governance/controls"`) {
		t.Fatalf("officer's controls page: %d %.400s", code, body)
	}
	if _, body := e.page(admin, "/governance/controls?lang=en", nil, false); !strings.Contains(body, "Controls register and compliance report") || !strings.Contains(body, "restore test") {
		t.Fatalf("English controls page: %.400s", body)
	}
	if code, _ := e.page(pro, "/governance/controls", nil, false); code != http.StatusForbidden {
		t.Fatalf("a professional opens the controls page: %d", code)
	}

	const ctl = "/governance/controls/medmij/A.14.2.1"
	if code, body := e.page(admin, ctl, url.Values{"applicable": {"no"}, "justification": {"geen eigen ontwikkeling"}, "responsible": {"CISO"}}, false); code != http.StatusSeeOther {
		t.Fatalf("update the control: %d %s", code, body)
	}
	if code, body := e.page(admin, ctl, nil, false); code != http.StatusOK || !strings.Contains(body, "niet van toepassing") || !strings.Contains(body, `value="CISO"`) {
		t.Fatalf("the control after its update: %d %.600s", code, body)
	}
	exe := append([]byte("MZ\x90\x00\x03\x00\x00\x00"), bytes.Repeat([]byte{0}, 300)...)
	if code, body := e.upload(admin, ctl+"/documents", "beleid.pdf", exe); code != http.StatusUnsupportedMediaType || !strings.Contains(body, "geweigerd") {
		t.Fatalf("an executable named .pdf: %d %.300s", code, body)
	}
	pdf := []byte("%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n")
	if code, body := e.upload(admin, ctl+"/documents", "beleid.pdf", pdf); code != http.StatusSeeOther {
		t.Fatalf("a PDF: %d %.300s", code, body)
	}
	// A real report is larger than a form: the page takes up to the 5 MB
	// the register does, not the forms' 64 KiB.
	big := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("0123456789abcdef"), 1<<16)...) // 1 MiB
	if code, body := e.upload(admin, ctl+"/documents", "pentest.pdf", big); code != http.StatusSeeOther {
		t.Fatalf("a 1 MiB PDF: %d %.300s", code, body)
	}
	_, body = e.page(officer, ctl, nil, false)
	m := regexp.MustCompile(`href="/governance/documents/(doc-[a-z0-9]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the document is not listed: %.800s", body)
	}
	if code, got := e.page(officer, "/governance/documents/"+m[1], nil, false); code != http.StatusOK || got != string(pdf) {
		t.Fatalf("the document back: %d %q", code, got)
	}

	// The admin-log review: the officer's reading of the log is a line.
	code, body = e.page(officer, "/governance/admin-log", url.Values{"period": {e.clock.Now().UTC().Format("2006-01")}}, false)
	if code != http.StatusSeeOther {
		t.Fatalf("open the admin-log review: %d %s", code, body)
	}
	reports, err := gov.AdminLogs(e.ctx, officer.subj)
	if err != nil || len(reports) != 1 {
		t.Fatalf("reports: %v %v", reports, err)
	}
	rep, err := gov.AdminLog(e.ctx, officer.subj, reports[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	own := 0
	for _, l := range rep.Lines {
		if l.ActorID == officer.subj.AccountID() {
			own = l.N
		}
	}
	if own == 0 {
		t.Fatalf("the officer's reading is not a line: %+v", rep.Lines)
	}
	path := "/governance/admin-log/" + rep.ID
	mark := `id="mark-` + itoa(own) + `"`
	if _, body := e.page(officer, path, nil, false); strings.Contains(body, mark) || !strings.Contains(body, "uw eigen handeling") {
		t.Fatalf("the officer is offered their own line: %.600s", body)
	}
	if code, body := e.page(officer, path+"/lines", url.Values{"line": {itoa(own)}, "finding": {"ok"}}, false); code != http.StatusForbidden || !strings.Contains(body, "eigen beheerhandelingen") {
		t.Fatalf("the officer marks their own line: %d %.300s", code, body)
	}
	if _, body := e.page(admin, path, nil, false); !strings.Contains(body, mark) {
		t.Fatalf("the admin is not offered the officer's line: %.600s", body)
	}
	if code, _ := e.page(admin, path+"/lines", url.Values{"line": {itoa(own)}, "finding": {"ok"}}, false); code != http.StatusSeeOther {
		t.Fatalf("the admin marks the officer's line: %d", code)
	}
}
