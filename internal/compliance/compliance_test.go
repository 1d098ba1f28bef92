package compliance_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/compliance"
	"github.com/zorgkluis/zorgkluis/internal/governance"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

// wantIDs is every control row of the seeds, in their order: the MedMij
// normenkader (seed 000), NEN 7510-2 chapter 9 (seed 002) and NEN 7512
// Tabel 7's normative rows (seed 001, from line 306). controls.json is
// made from the seeds by testdata/gen_controls.py.
var wantIDs = []string{
	"medmij/A.10.1.1", "medmij/A.12.1.2(1)", "medmij/A.12.1.2(2)", "medmij/A.12.1.2(3)", "medmij/A.12.1.3(1)", "medmij/A.12.1.3(2)",
	"medmij/A.12.3.1", "medmij/A.12.4.1", "medmij/A.12.4.3", "medmij/A.12.4.4", "medmij/A.12.6.1", "medmij/A.14.2.1", "medmij/A.15.1.2",
	"medmij/A.15.2.1", "medmij/A.16.1.1", "medmij/A.16.1.3", "medmij/A.16.1.7", "medmij/A.18.2.3", "medmij/A.5.1.1", "medmij/A.6.1.1",
	"medmij/A.7.2.2", "medmij/A.8.2.1", "medmij/A.9.1.1", "medmij/A.9.2.5", "medmij/A.9.4.1",
	"nen7510-2/9.1.1", "nen7510-2/9.1.2", "nen7510-2/9.2.1", "nen7510-2/9.2.2", "nen7510-2/9.2.3", "nen7510-2/9.2.4", "nen7510-2/9.2.5",
	"nen7510-2/9.2.6", "nen7510-2/9.3.1", "nen7510-2/9.4.1", "nen7510-2/9.4.2", "nen7510-2/9.4.3", "nen7510-2/9.4.4", "nen7510-2/9.4.5",
	"nen7512/6.2.1", "nen7512/6.2.2", "nen7512/6.2.3a", "nen7512/6.2.3b", "nen7512/6.2.3c", "nen7512/6.2.4a", "nen7512/6.2.4b",
	"nen7512/6.3.1", "nen7512/6.3.2a", "nen7512/6.3.2b", "nen7512/6.3.2c", "nen7512/6.3.3.1", "nen7512/6.3.3.2", "nen7512/6.3.4a",
	"nen7512/6.3.4b", "nen7512/6.3.4c", "nen7512/6.3.4d", "nen7512/6.3.5", "nen7512/6.3.6a", "nen7512/6.3.6b", "nen7512/6.3.6c",
	"nen7512/6.3.6d", "nen7512/6.4.1", "nen7512/6.4.2a", "nen7512/6.4.2b", "nen7512/6.4.3a", "nen7512/6.4.3b", "nen7512/6.4.4a",
	"nen7512/6.4.4b", "nen7512/6.4.4c", "nen7512/6.4.5a", "nen7512/6.4.5b",
}

// The embedded register holds every control row of the seeds, once, each
// with a title and text, a known period and known evidence kinds; the
// periodic controls the norms name are periodic (monthly reviews, the
// yearly restore and penetration test, the half-yearly self-assessment).
//
// REQ: GOV-3
func TestControlRows(t *testing.T) {
	cs := compliance.Controls()
	var ids []string
	kinds := []string{compliance.KindSettings, compliance.KindTLS, compliance.KindAccessReview, compliance.KindAdminLogReview, compliance.KindRestoreTest,
		compliance.KindClock, compliance.KindAuditVerify, compliance.KindCertificates, compliance.KindIncidents}
	per := map[string]string{}
	periodic := 0
	for _, c := range cs {
		ids = append(ids, c.ID)
		if c.Title == "" || c.Text == "" || c.Framework == "" || c.Ref == "" {
			t.Errorf("control %s incomplete: %+v", c.ID, c)
		}
		if c.Period != "" && c.Period != "monthly" && c.Period != "half-yearly" && c.Period != "yearly" {
			t.Errorf("control %s: period %q", c.ID, c.Period)
		}
		for _, k := range c.Evidence {
			if !slices.Contains(kinds, k) {
				t.Errorf("control %s: unknown evidence %q", c.ID, k)
			}
		}
		per[c.ID] = c.Period
		if c.Period != "" {
			periodic++
		}
	}
	if periodic != 6 {
		t.Errorf("%d periodic controls, want 6", periodic)
	}
	if !slices.Equal(ids, wantIDs) {
		t.Fatalf("%d control rows, want %d:\n%v", len(ids), len(wantIDs), ids)
	}
	for id, p := range map[string]string{"medmij/A.9.2.5": "monthly", "medmij/A.12.4.3": "monthly", "medmij/A.12.3.1": "yearly",
		"medmij/A.18.2.3": "yearly", "medmij/A.9.1.1": "half-yearly", "nen7510-2/9.2.5": "monthly"} {
		if per[id] != p {
			t.Errorf("%s: period %q, want %q", id, per[id], p)
		}
	}
}

type world struct {
	ctx    context.Context
	clk    *clock.Fake
	kit    *testkit.Kit
	log    *audit.Log // the kit's log with a signer: it sequences and signs
	vkey   string
	gov    *governance.Service
	comp   *compliance.Service
	queue  *alert.Queue
	tenant string
}

func newWorld(t *testing.T, db *store.DB) *world {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	k := testkit.New(t, db, testkit.WithClock(clk))
	skey, vkey, err := note.GenerateKey(rand.Reader, "zorgkluis.test/audit")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := audit.New(db, clk, rand.Reader, audit.WithSigner(signer))
	t.Cleanup(func() { l.Close() })
	q := alert.NewQueue(db, clk, rand.Reader, nil)
	ten, err := k.IDs.CreateTenant(ctx, identity.Tenant{Name: "Huisartsen De Linde"})
	if err != nil {
		t.Fatal(err)
	}
	gov := governance.New(governance.Config{DB: db, Clock: clk, Rand: rand.Reader, Audit: k.Audit, Alerts: q, Access: k.Access, IDs: k.IDs})
	return &world{ctx: ctx, clk: clk, kit: k, log: l, vkey: vkey, gov: gov, queue: q, tenant: ten.ID,
		comp: compliance.New(compliance.Config{DB: db, Clock: clk, Rand: rand.Reader, Audit: l, Keys: k.Keys, Gov: gov, Alerts: q, VerifierKey: vkey})}
}

func (w *world) logOn(t *testing.T, username string, role access.Role) testkit.Logon {
	kind := identity.KindAdmin
	if role == access.RoleProfessional {
		kind = identity.KindProfessional
	}
	acc, err := w.kit.IDs.CreateAccount(w.ctx, identity.Account{TenantID: w.tenant, Kind: kind, Username: username, DisplayName: username, RegistrationMethod: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.kit.IDs.GrantRole(w.ctx, acc.ID, string(role), "set-up"); err != nil {
		t.Fatal(err)
	}
	return w.kit.LogOn(t, acc.ID, username)
}

// fact logs an evidence event as its owner does (the backup schedule, audit
// verify, serve) and signs it into the platform tree.
func (w *world) fact(t *testing.T, name string, ok bool, detail string) {
	ev := audit.Evidence(audit.Event{UserID: "system:backup", UserName: "backup schedule", SourceApp: "test"}, name, ok, detail)
	if _, err := w.log.Append(w.ctx, ev); err != nil {
		t.Fatal(err)
	}
	if _, err := w.log.Sequence(w.ctx); err != nil {
		t.Fatal(err)
	}
}

func row(t *testing.T, r compliance.Report, id string) compliance.Row {
	for _, c := range r.Controls {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no row %s in the report", id)
	return compliance.Row{}
}

func item(r compliance.Row, kind string) compliance.Evidence {
	for _, it := range r.Items {
		if it.Kind == kind {
			return it
		}
	}
	return compliance.Evidence{}
}

// The backup control is red while no restore test is logged, green once
// one arrives (with a proof that checks offline with nothing but the
// public key, also after a JSON round trip), red again when the newest is
// older than 24 hours, and green when the next one arrives; a failed
// restore test is red. A closed access review is evidence of the monthly
// review control, with the proof of its closing event.
//
// REQ: GOV-3, GOV-2
func TestReportRedUntilEvidenceArrives(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		ctx := w.ctx
		const backupRow = "nen7512/6.4.3b"
		rep, err := w.comp.Report(ctx, w.tenant)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Controls) != len(wantIDs) || rep.Green+rep.Red != len(wantIDs) {
			t.Fatalf("report of %d rows, %d green, %d red", len(rep.Controls), rep.Green, rep.Red)
		}
		if r := row(t, rep, backupRow); r.Status != compliance.Red || item(r, compliance.KindRestoreTest).Status != compliance.Red {
			t.Fatalf("no restore test logged, yet %+v", r)
		}

		w.fact(t, audit.FactRestoreTest, true, "backup-20261201T0900Z: restore test: 120 rows")
		rep, err = w.comp.Report(ctx, w.tenant)
		if err != nil {
			t.Fatal(err)
		}
		r := row(t, rep, backupRow)
		it := item(r, compliance.KindRestoreTest)
		if r.Status != compliance.Green || it.Status != compliance.Green || len(it.Proofs) != 1 {
			t.Fatalf("a restore test arrived, yet %+v", r)
		}
		// Offline: the report as an auditor receives it, and the public key.
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		var got compliance.Report
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		p := item(row(t, got, backupRow), compliance.KindRestoreTest).Proofs[0]
		if _, err := audit.CheckProof(p, got.VerifierKey); err != nil {
			t.Fatalf("the evidence proof does not check offline: %v", err)
		}
		if !strings.Contains(p.Event, `"query":"restore-test backup-20261201T0900Z`) {
			t.Fatalf("the proof is not of the restore test: %s", p.Event)
		}
		forged := p
		forged.Event = strings.Replace(p.Event, "120 rows", "999 rows", 1)
		if _, err := audit.CheckProof(forged, got.VerifierKey); err == nil {
			t.Fatal("a changed evidence event passed its proof")
		}

		w.clk.Advance(25 * time.Hour)
		rep, _ = w.comp.Report(ctx, w.tenant)
		if r := row(t, rep, backupRow); r.Status != compliance.Red || !strings.Contains(item(r, compliance.KindRestoreTest).Summary, "stale") {
			t.Fatalf("no restore test in 25 h, yet %+v", r)
		}
		w.fact(t, audit.FactRestoreTest, true, "backup-20261202T1000Z: restore test: 121 rows")
		rep, _ = w.comp.Report(ctx, w.tenant)
		if r := row(t, rep, backupRow); r.Status != compliance.Green {
			t.Fatalf("the next restore test arrived, yet %+v", r)
		}
		w.clk.Advance(6 * time.Hour)
		w.fact(t, audit.FactRestoreTest, false, "backup-20261202T1600Z: restore test failed: counts differ")
		rep, _ = w.comp.Report(ctx, w.tenant)
		if r := row(t, rep, backupRow); r.Status != compliance.Red {
			t.Fatalf("a failed restore test, yet %+v", r)
		}

		// The monthly access review (GOV-2) as evidence: red without one,
		// green with the closing event's proof once one is closed.
		const reviewRow = "medmij/A.9.2.5"
		if r := row(t, rep, reviewRow); r.Status != compliance.Red {
			t.Fatalf("no access review, yet %+v", r)
		}
		one, two := w.logOn(t, "beheer.een", access.RoleAppAdmin), w.logOn(t, "beheer.twee", access.RoleAppAdmin)
		rev, err := w.gov.OpenReview(ctx, one.Subject, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range rev.Lines {
			by := one.Subject
			if l.AccountID == one.Subject.AccountID() {
				by = two.Subject
			}
			if err := w.gov.DecideLine(ctx, by, rev.ID, l.N, "keep", ""); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.gov.CloseReview(ctx, two.Subject, rev.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := w.log.Sequence(ctx); err != nil {
			t.Fatal(err)
		}
		rep, err = w.comp.ReportFor(ctx, one.Subject)
		if err != nil {
			t.Fatal(err)
		}
		r = row(t, rep, reviewRow)
		it = item(r, compliance.KindAccessReview)
		if r.Status != compliance.Green || len(it.Proofs) != 1 || r.Due == nil {
			t.Fatalf("a closed access review, yet %+v", r)
		}
		if c, err := audit.CheckProof(it.Proofs[0], w.vkey); err != nil || c.Origin != audit.Origin("zorgkluis.test/audit", w.tenant) {
			t.Fatalf("the review's proof: %+v %v", c, err)
		}
	})
}

func pdf(n int) []byte {
	b := []byte("%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n")
	return append(b, bytes.Repeat([]byte("%"), max(0, n-len(b)))...)
}

func docx(t *testing.T, contentTypes bool) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := []string{"word/document.xml", "_rels/.rels"}
	if contentTypes {
		names = append(names, "[Content_Types].xml")
	}
	for _, n := range names {
		f, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("<x/>"))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// An evidence document is at most 5 MB and is what its name says (the type
// sniffed from the content): an executable or a script named .pdf, a zip
// named .docx and an unknown extension are refused; an accepted one is
// stored sealed (its bytes not in the database) and comes back whole.
//
// REQ: GOV-3
func TestUploadRefusesOversizedAndDisguised(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		ctx := w.ctx
		off := w.logOn(t, "security.mulder", access.RoleSecurityOfficer)
		const ctl = "medmij/A.18.2.3"
		for name, body := range map[string][]byte{
			"pentest.pdf":  append([]byte("MZ\x90\x00\x03\x00\x00\x00"), bytes.Repeat([]byte{0}, 200)...), // a Windows executable
			"report.pdf":   []byte("\x7fELF\x02\x01\x01\x00" + strings.Repeat("\x00", 100)),
			"run.pdf":      []byte("#!/bin/sh\nrm -rf /\n"),
			"notes.docx":   docx(t, false),
			"tool.exe":     pdf(100),
			"scan.png":     pdf(100),
			"empty.pdf":    {},
			"document.odt": []byte("PK\x03\x04 not an OpenDocument package"),
		} {
			if _, err := w.comp.Attach(ctx, off.Subject, ctl, name, bytes.NewReader(body)); !errors.Is(err, compliance.ErrContentType) {
				t.Errorf("%s accepted or refused for another reason: %v", name, err)
			}
		}
		if _, err := w.comp.Attach(ctx, off.Subject, ctl, "pentest-groot.pdf", bytes.NewReader(pdf(compliance.MaxDocument+1))); !errors.Is(err, compliance.ErrTooLarge) {
			t.Fatalf("a document over 5 MB: %v", err)
		}
		if _, err := w.comp.Attach(ctx, off.Subject, "medmij/A.0.0", "x.pdf", bytes.NewReader(pdf(100))); !errors.Is(err, compliance.ErrNotFound) {
			t.Fatalf("a document for no control: %v", err)
		}
		prof := w.logOn(t, "dr.linde", access.RoleProfessional)
		if _, err := w.comp.Attach(ctx, prof.Subject, ctl, "x.pdf", bytes.NewReader(pdf(100))); !errors.Is(err, compliance.ErrForbidden) {
			t.Fatalf("a professional attached evidence: %v", err)
		}

		body := pdf(compliance.MaxDocument)
		d, err := w.comp.Attach(ctx, off.Subject, ctl, `C:\rapporten\pentest 2026.pdf`, bytes.NewReader(body))
		if err != nil || d.ContentType != "application/pdf" || d.Name != "pentest 2026.pdf" || d.Size != compliance.MaxDocument {
			t.Fatalf("a 5 MB PDF: %+v %v", d, err)
		}
		if _, err := w.comp.Attach(ctx, off.Subject, ctl, "plan.docx", bytes.NewReader(docx(t, true))); err != nil {
			t.Fatalf("a Word document: %v", err)
		}
		var sealed []byte
		if err := db.QueryRowContext(ctx, `SELECT sealed FROM compliance_documents WHERE id = $1`, d.ID).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(sealed, []byte("/Type /Catalog")) {
			t.Fatal("the document is stored in the clear")
		}
		got, content, err := w.comp.Document(ctx, off.Subject, d.ID)
		if err != nil || !bytes.Equal(content, body) || got.SHA256 != d.SHA256 {
			t.Fatalf("the document back: %v", err)
		}
		// Opening it is a line in the log, as its upload is (LOG-3).
		var opened int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_events WHERE action = 'read' AND user_id = $1 AND body LIKE $2`,
			off.Subject.AccountID(), "%DocumentReference/"+d.ID+"%").Scan(&opened); err != nil || opened != 1 {
			t.Fatalf("the opening's log line: %d %v", opened, err)
		}
		_, e, err := w.comp.Entry(ctx, off.Subject, ctl)
		if err != nil || len(e.Documents) != 2 {
			t.Fatalf("the control's documents: %+v %v", e, err)
		}
	})
}

// A periodic control is due a period after it was last done; its reminder
// is raised once when the due date is within 14 days (or past), and again
// only for the next due date; marking it done moves the due date and
// turns the row green when it has evidence; a control marked not
// applicable is neither red nor reminded.
//
// REQ: GOV-3
func TestPeriodicControlsDueAndReminded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		ctx := w.ctx
		off := w.logOn(t, "security.mulder", access.RoleSecurityOfficer)
		const pentest = "medmij/A.18.2.3"
		n, err := w.comp.Remind(ctx)
		if err != nil || n != 6 {
			t.Fatalf("reminders for the 6 never-done periodic controls: %d %v", n, err)
		}
		if n, _ := w.comp.Remind(ctx); n != 0 {
			t.Fatalf("reminded twice: %d", n)
		}
		evs, err := w.queue.List(ctx, w.tenant, time.Time{}, 20)
		if err != nil || len(evs) != 6 || evs[0].Kind != "control-due" {
			t.Fatalf("control-due events: %+v %v", evs, err)
		}
		if _, err := w.comp.Attach(ctx, off.Subject, pentest, "pentest.pdf", bytes.NewReader(pdf(1000))); err != nil {
			t.Fatal(err)
		}
		done := w.clk.Now().Add(-time.Hour)
		method, who := "greybox pentest door extern bureau", "CISO"
		if _, err := w.comp.UpdateEntry(ctx, off.Subject, pentest, compliance.Update{Done: &done, AuditMethod: &method, Responsible: &who}); err != nil {
			t.Fatal(err)
		}
		future := w.clk.Now().Add(time.Hour)
		if _, err := w.comp.UpdateEntry(ctx, off.Subject, pentest, compliance.Update{Done: &future}); err == nil {
			t.Fatal("done in the future accepted")
		}
		no, why := false, "geen eigen ontwikkeling"
		if _, err := w.comp.UpdateEntry(ctx, off.Subject, "medmij/A.14.2.1", compliance.Update{Applicable: &no, Justification: &why}); err != nil {
			t.Fatal(err)
		}
		rep, err := w.comp.Report(ctx, w.tenant)
		if err != nil {
			t.Fatal(err)
		}
		r := row(t, rep, pentest)
		if r.Status != compliance.Green || r.Due == nil || !r.Due.Equal(done.Add(365*24*time.Hour)) || r.AuditMethod != method || len(r.Documents) != 1 {
			t.Fatalf("the pentest done an hour ago with its report: %+v", r)
		}
		if r := row(t, rep, "medmij/A.14.2.1"); r.Status != compliance.NotApplicable {
			t.Fatalf("a control not applicable: %+v", r)
		}
		// 352 days on, the pentest is due within 14 days: one reminder.
		w.clk.Advance(352 * 24 * time.Hour)
		before, _ := w.queue.List(ctx, w.tenant, time.Time{}, 100)
		if _, err := w.comp.Remind(ctx); err != nil {
			t.Fatal(err)
		}
		after, _ := w.queue.List(ctx, w.tenant, time.Time{}, 100)
		pentestReminders := 0
		for _, e := range after[:len(after)-len(before)] {
			if e.Ref == pentest {
				pentestReminders++
			}
		}
		if pentestReminders != 1 {
			t.Fatalf("pentest reminders when due within 14 days: %d", pentestReminders)
		}
		w.clk.Advance(14 * 24 * time.Hour)
		rep, _ = w.comp.Report(ctx, w.tenant)
		if r := row(t, rep, pentest); r.Status != compliance.Red {
			t.Fatalf("the pentest a year and 5 days ago, yet %+v", r)
		}
	})
}

// An incident past its 48-hour deadline unreported turns the reporting
// control red, and reporting it turns it green; the clock's offset is
// evidence while fresh and within the bound, red when out of bounds or
// older than two hours.
//
// REQ: GOV-4, GOV-3
func TestIncidentAndClockEvidence(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		ctx := w.ctx
		off := w.logOn(t, "security.mulder", access.RoleSecurityOfficer)
		const incidentRow, clockRow = "medmij/A.16.1.3", "medmij/A.12.4.4"
		in, err := w.gov.OpenIncident(ctx, off.Subject, governance.NewIncident{Title: "Datalek", Discovered: w.clk.Now()})
		if err != nil {
			t.Fatal(err)
		}
		rep, _ := w.comp.Report(ctx, w.tenant)
		if r := row(t, rep, incidentRow); r.Status != compliance.Green {
			t.Fatalf("an incident within its 48 hours, yet %+v", r)
		}
		w.clk.Advance(49 * time.Hour)
		rep, _ = w.comp.Report(ctx, w.tenant)
		if r := row(t, rep, incidentRow); r.Status != compliance.Red || !strings.Contains(item(r, compliance.KindIncidents).Summary, "1 past") {
			t.Fatalf("an incident past 48 hours unreported, yet %+v", r)
		}
		if _, err := w.gov.UpdateIncident(ctx, off.Subject, in.ID, governance.Update{ReportedTo: "Autoriteit Persoonsgegevens", Note: "gemeld"}); err != nil {
			t.Fatal(err)
		}
		rep, _ = w.comp.Report(ctx, w.tenant)
		if r := row(t, rep, incidentRow); r.Status != compliance.Green {
			t.Fatalf("the incident reported, yet %+v", r)
		}

		if r := row(t, rep, clockRow); r.Status != compliance.Red {
			t.Fatalf("no clock check logged, yet %+v", r)
		}
		w.fact(t, audit.FactClock, true, "12ms from NTP time (bound ±500ms, 3 servers answered)")
		rep, _ = w.comp.Report(ctx, w.tenant)
		if r := row(t, rep, clockRow); r.Status != compliance.Green || len(item(r, compliance.KindClock).Proofs) != 1 {
			t.Fatalf("a clock check within the bound, yet %+v", r)
		}
		w.clk.Advance(3 * time.Hour)
		rep, _ = w.comp.Report(ctx, w.tenant)
		if r := row(t, rep, clockRow); r.Status != compliance.Red {
			t.Fatalf("the newest clock check 3 hours old, yet %+v", r)
		}
		w.fact(t, audit.FactClock, false, "812ms from NTP time (bound ±500ms, 3 servers answered)")
		rep, _ = w.comp.Report(ctx, w.tenant)
		if r := row(t, rep, clockRow); r.Status != compliance.Red {
			t.Fatalf("the clock out of bounds, yet %+v", r)
		}
	})
}

// A certificate of the organisation that expires within 30 days turns the
// certificate evidence red, with the proof of its issue event; the TLS
// evidence is red when the logged settings allow plain HTTP.
//
// REQ: GOV-3
func TestCertificateAndTLSEvidence(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		ctx := w.ctx
		const certRow, tlsRow = "nen7512/6.3.1", "nen7512/6.3.4a"
		rep, _ := w.comp.Report(ctx, w.tenant)
		if it := item(row(t, rep, certRow), compliance.KindCertificates); it.Status != compliance.Green {
			t.Fatalf("no certificates, yet %+v", it)
		}
		now := w.clk.Now()
		for _, c := range []struct {
			serial string
			left   time.Duration
		}{{"0a0b0c", 20 * 24 * time.Hour}, {"0d0e0f", 200 * 24 * time.Hour}} {
			// As pki issues one: the row and its certificate event.
			if _, err := db.ExecContext(ctx, `INSERT INTO pki_certificates (serial, tenant_id, system_id, ca_id, purpose, sha256, cert_der, not_before,
				not_after, issued_by, issued_at) VALUES ($1, $2, 'sys-1', 'ca-1', 'tls', 'ff', $3, $4, $5, 'a-1', $4)`,
				c.serial, w.tenant, []byte{0x30}, clock.Micros(now), clock.Micros(now.Add(c.left))); err != nil {
				t.Fatal(err)
			}
			if _, err := w.log.Append(ctx, audit.Event{Action: audit.ActionCertificate, Outcome: audit.OutcomeSuccess, TenantID: w.tenant, UserID: "a-1",
				Resources: []string{"Certificate/" + c.serial}, Query: "issued"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.log.Sequence(ctx); err != nil {
			t.Fatal(err)
		}
		rep, _ = w.comp.Report(ctx, w.tenant)
		it := item(row(t, rep, certRow), compliance.KindCertificates)
		if it.Status != compliance.Red || !strings.Contains(it.Summary, "0a0b0c") || strings.Contains(it.Summary, "0d0e0f") || len(it.Proofs) != 1 {
			t.Fatalf("a certificate expiring in 20 days: %+v", it)
		}
		if _, err := audit.CheckProof(it.Proofs[0], w.vkey); err != nil || !strings.Contains(it.Proofs[0].Event, "Certificate/0a0b0c") {
			t.Fatalf("the certificate's proof: %v", err)
		}

		w.fact(t, audit.FactSettings, true, "tls=min-TLS1.2,ECDHE-AEAD,X25519MLKEM768/X25519/P-256/P-384 insecure_http=false")
		rep, _ = w.comp.Report(ctx, w.tenant)
		if it := item(row(t, rep, tlsRow), compliance.KindTLS); it.Status != compliance.Green || !strings.HasPrefix(it.Summary, "tls=min-TLS1.2") {
			t.Fatalf("the TLS settings in force: %+v", it)
		}
		w.clk.Advance(time.Minute)
		w.fact(t, audit.FactSettings, true, "tls=off insecure_http=true")
		rep, _ = w.comp.Report(ctx, w.tenant)
		if it := item(row(t, rep, tlsRow), compliance.KindTLS); it.Status != compliance.Red {
			t.Fatalf("plain HTTP allowed, yet %+v", it)
		}
	})
}
