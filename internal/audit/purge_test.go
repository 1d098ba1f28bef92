package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// sequenceAll sequences until nothing is pending. On PostgreSQL the
// sequencer's advisory lock is per database, not per schema, so a test in
// another schema sequencing a tenant of the same name makes a round skip
// it; a few retries ride that out.
func sequenceAll(t testing.TB, l *testLog) {
	t.Helper()
	for range 200 {
		mustSequence(t, l)
		var pending int
		if err := l.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM audit_pending`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("events still pending after 200 sequencing rounds")
}

func logon(tenant, user string) Event {
	return Event{Action: ActionLogon, Outcome: OutcomeSuccess, TenantID: tenant, UserID: user, Assurance: "hoog"}
}

func mustVerifyOK(t *testing.T, l *testLog, wantPurged int64) {
	t.Helper()
	r, err := l.Verify(context.Background(), note.VerifierList(l.verifier), nil)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !r.OK() {
		t.Fatalf("Verify found damage after purge: %v", r.Damage)
	}
	var purged int64
	for _, tr := range r.Trees {
		purged += tr.Purged
	}
	if purged != wantPurged {
		t.Fatalf("Verify counted %d purged; want %d", purged, wantPurged)
	}
}

func mustProofChecks(t *testing.T, l *testLog, id string) {
	t.Helper()
	b, err := l.Proof(context.Background(), id)
	if err != nil {
		t.Fatalf("Proof(%s): %v", id, err)
	}
	if _, err := CheckProof(b, l.vkey); err != nil {
		t.Fatalf("CheckProof(%s): %v", id, err)
	}
}

// Technical events go after a year, access events stay 5 years, held and
// unsequenced events stay; the log still verifies and the remaining proofs
// still check after each purge.
// REQ: LOG-6
// REQ: LOG-2
func TestPurgeKeepsLogVerifiable(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := newTestLog(t, db)
		old := mustAppend(t, l, logon("t1", "u1"), event("t1", "p1", "u1"), logon("t1", "u2"), event("t2", "p2", "u3"))
		tech, access, heldTech, access2 := old[0], old[1], old[2], old[3]
		sequenceAll(t, l)

		l.clock.Advance(400 * 24 * time.Hour)
		young := mustAppend(t, l, logon("t1", "u1"))[0]
		sequenceAll(t, l)
		// Stored with an old time but never sequenced: no proof it was in
		// the log before the cut-off, so it must stay.
		unseq := logon("t1", "u9")
		unseq.Time = testStart
		unseq = mustAppend(t, l, unseq)[0]

		hold, err := l.PlaceHold(ctx, Hold{TenantID: "t1", Reason: "klacht 2027-04", PlacedBy: "security.mulder",
			Until: l.clock.Now().AddDate(3, 0, 0), EventIDs: []string{heldTech.ID}})
		if err != nil {
			t.Fatalf("PlaceHold: %v", err)
		}

		dry, err := l.Purge(ctx, l.clock.Now(), DefaultRetention(), PurgeOptions{DryRun: true})
		if err != nil {
			t.Fatalf("dry run: %v", err)
		}
		if dry.Technical != 1 || dry.Access != 0 || dry.Held != 1 {
			t.Fatalf("dry run = %+v; want 1 technical, 0 access, 1 held", dry)
		}
		if _, err := l.Proof(ctx, tech.ID); err != nil {
			t.Fatalf("a dry run purged: %v", err)
		}

		var calls int
		res, err := l.Purge(ctx, l.clock.Now(), DefaultRetention(), PurgeOptions{Progress: func(PurgeResult) { calls++ }})
		if err != nil {
			t.Fatalf("Purge: %v", err)
		}
		if res.Technical != 1 || res.Access != 0 || res.Held != 1 || res.Skipped != 0 || calls == 0 {
			t.Fatalf("Purge = %+v (%d progress calls); want 1 technical, 0 access, 1 held", res, calls)
		}
		if _, err := l.Proof(ctx, tech.ID); !errors.Is(err, ErrPurged) {
			t.Fatalf("Proof of the purged event: %v; want ErrPurged", err)
		}
		for _, e := range []Event{access, heldTech, young, access2} {
			mustProofChecks(t, l, e.ID)
		}
		mustVerifyOK(t, l, 1)

		// Past five years and past the hold's end: the access events, the
		// formerly held and the younger technical event all go; the
		// unsequenced one still stays.
		l.clock.Set(testStart.Add(MinAccessRetention + 24*time.Hour))
		res, err = l.Purge(ctx, l.clock.Now(), DefaultRetention(), PurgeOptions{})
		if err != nil {
			t.Fatalf("second Purge: %v", err)
		}
		// The hold's own log-read event (access, 400 days in) is not yet 5 years old.
		if res.Technical != 2 || res.Access != 2 || res.Held != 0 {
			t.Fatalf("second Purge = %+v; want 2 technical (held one and young one), 2 access", res)
		}
		for _, e := range []Event{access, heldTech, young, access2} {
			if _, err := l.Proof(ctx, e.ID); !errors.Is(err, ErrPurged) {
				t.Fatalf("Proof(%s) after its retention: %v; want ErrPurged", e.ID, err)
			}
		}
		if _, err := l.Proof(ctx, unseq.ID); !errors.Is(err, ErrNotSequenced) {
			t.Fatalf("the unsequenced event: %v; want it kept and still unsequenced", err)
		}
		mustVerifyOK(t, l, 5)
		// Sequenced only now, its old time is no proof it was in the log
		// before the cut-off: it stays until a checkpoint has aged.
		sequenceAll(t, l)
		if res, err := l.Purge(ctx, l.clock.Now(), DefaultRetention(), PurgeOptions{}); err != nil || res.Purged() != 0 {
			t.Fatalf("Purge right after sequencing = %+v, %v; want nothing purged", res, err)
		}
		mustProofChecks(t, l, unseq.ID)
		mustVerifyOK(t, l, 5)

		// The hold's export outlives the purge and still checks offline.
		j, err := json.Marshal(hold)
		if err != nil {
			t.Fatal(err)
		}
		var back HoldBundle
		if err := json.Unmarshal(j, &back); err != nil {
			t.Fatal(err)
		}
		if back.Format != HoldFormat || len(back.Proofs) != 1 || back.Proofs[0].EventID != heldTech.ID {
			t.Fatalf("hold bundle = %s", j)
		}
		if _, err := CheckProof(back.Proofs[0], l.vkey); err != nil {
			t.Fatalf("held line's proof after the purge: %v", err)
		}
	})
}

// The hold itself is logged: reading lines out of the log for it is access
// to the log (a log-read event per line, in the hold's transaction).
// REQ: LOG-6
func TestPlaceHoldLogsAndValidates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := newTestLog(t, db)
		evs := mustAppend(t, l, event("t1", "p1", "u1"), event("t2", "p2", "u1"))
		sequenceAll(t, l)
		unseq := mustAppend(t, l, event("t1", "p3", "u1"))[0]
		now := l.clock.Now()
		good := Hold{TenantID: "t1", Reason: "tuchtzaak", PlacedBy: "security.mulder", Until: now.AddDate(1, 0, 0), EventIDs: []string{evs[0].ID}}
		for name, mod := range map[string]func(*Hold){
			"no reason":        func(h *Hold) { h.Reason = " " },
			"no placer":        func(h *Hold) { h.PlacedBy = "" },
			"past end":         func(h *Hold) { h.Until = now.Add(-time.Hour) },
			"over ten years":   func(h *Hold) { h.Until = now.AddDate(10, 0, 1) },
			"no events":        func(h *Hold) { h.EventIDs = nil },
			"other tenant":     func(h *Hold) { h.EventIDs = []string{evs[1].ID} },
			"unknown event":    func(h *Hold) { h.EventIDs = []string{"00000000000000000000000000000000"} },
			"unsequenced line": func(h *Hold) { h.EventIDs = []string{unseq.ID} },
		} {
			h := good
			mod(&h)
			if _, err := l.PlaceHold(ctx, h); !errors.Is(err, ErrHoldInvalid) {
				t.Errorf("%s: %v; want ErrHoldInvalid", name, err)
			}
		}
		var holds int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_holds`).Scan(&holds); err != nil || holds != 0 {
			t.Fatalf("refused holds left %d rows (%v)", holds, err)
		}
		good.Until = now.AddDate(10, 0, 0)
		b, err := l.PlaceHold(ctx, good)
		if err != nil {
			t.Fatalf("PlaceHold: %v", err)
		}
		reads, err := l.Query(ctx, Filter{TenantID: "t1", Action: ActionLogRead})
		if err != nil {
			t.Fatal(err)
		}
		if len(reads) != 1 || reads[0].PatientID != "p1" || reads[0].UserID != "security.mulder" || reads[0].Query != "legal hold "+b.HoldID {
			t.Fatalf("log-read events of the hold = %+v", reads)
		}
	})
}

// An event marked purged before any retention could have ended is named by
// Verify, end to end through the database.
// REQ: LOG-6
// REQ: LOG-2
func TestVerifyNamesPurgeOfYoungEvent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := newTestLog(t, db)
		ev := mustAppend(t, l, logon("t1", "u1"), logon("t1", "u2"))
		sequenceAll(t, l)
		l.clock.Advance(24 * time.Hour)
		// What an early purge does, behind Purge's back.
		if _, err := db.ExecContext(ctx, `UPDATE audit_leaves SET purged = TRUE WHERE event_id = $1`, ev[0].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `DELETE FROM audit_events WHERE id = $1`, ev[0].ID); err != nil {
			t.Fatal(err)
		}
		var pos int64
		if err := db.QueryRowContext(ctx, `SELECT idx FROM audit_leaves WHERE event_id = $1`, ev[0].ID).Scan(&pos); err != nil {
			t.Fatal(err)
		}
		r, err := l.Verify(ctx, note.VerifierList(l.verifier), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Damage) != 1 || r.Damage[0].Kind != DamagePurge || r.Damage[0].Position != pos {
			t.Fatalf("Verify damage = %v; want one purged-early at position %d", r.Damage, pos)
		}
		// Purge itself refuses to touch it: it is only a day old.
		res, err := l.Purge(ctx, l.clock.Now(), DefaultRetention(), PurgeOptions{})
		if err != nil || res.Purged() != 0 {
			t.Fatalf("Purge of a young log = %+v, %v; want nothing", res, err)
		}
	})
}

// A policy shorter than LOG-6 allows is refused.
// REQ: LOG-6
func TestRetentionPolicyMinimums(t *testing.T) {
	for _, p := range []RetentionPolicy{
		{Access: MinAccessRetention - time.Hour, Technical: DefaultTechnicalRetention, Chain: MinChainRetention},
		{Access: MinAccessRetention, Technical: MinTechnicalRetention - time.Hour, Chain: MinChainRetention},
		{Access: MinAccessRetention, Technical: DefaultTechnicalRetention},
		{Access: MinAccessRetention, Technical: DefaultTechnicalRetention, Chain: MaxChainRetention + time.Hour},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("policy %+v accepted", p)
		}
	}
	if err := DefaultRetention().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (RetentionPolicy{Access: 10 * MinAccessRetention, Technical: MinTechnicalRetention, Chain: MaxChainRetention}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// A row whose kind column was edited to look technical is not purged
// early: Purge checks the body the tree covers.
// REQ: LOG-6
func TestPurgeChecksBodyNotColumns(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := context.Background()
	l := newTestLog(t, db)
	ev := mustAppend(t, l, event("t1", "p1", "u1"))[0]
	sequenceAll(t, l)
	if _, err := db.ExecContext(ctx, `UPDATE audit_events SET kind = 'technical' WHERE id = $1`, ev.ID); err != nil {
		t.Fatal(err)
	}
	l.clock.Advance(2 * DefaultTechnicalRetention)
	res, err := l.Purge(ctx, l.clock.Now(), DefaultRetention(), PurgeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Purged() != 0 || res.Skipped != 1 {
		t.Fatalf("Purge = %+v; want the tampered row skipped", res)
	}
	mustProofChecks(t, l, ev.ID)
}

// Small batches walk past held events without reading them again and
// without stopping early; a dry run counts what the real run then does.
// REQ: LOG-6
func TestPurgeInBatches(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := newTestLog(t, db)
		var evs []Event
		for i := range 11 {
			evs = append(evs, mustAppend(t, l, logon("t1", "u1"))...)
			if i%4 == 0 {
				sequenceAll(t, l)
			}
			l.clock.Advance(time.Second)
		}
		sequenceAll(t, l)
		l.clock.Advance(DefaultTechnicalRetention + 24*time.Hour)
		held := []string{evs[0].ID, evs[1].ID, evs[2].ID, evs[7].ID}
		if _, err := l.PlaceHold(ctx, Hold{TenantID: "t1", Reason: "bezwaar", PlacedBy: "security.mulder",
			Until: l.clock.Now().AddDate(0, 1, 0), EventIDs: held}); err != nil {
			t.Fatal(err)
		}
		dry, err := l.Purge(ctx, l.clock.Now(), DefaultRetention(), PurgeOptions{DryRun: true, Batch: 2})
		if err != nil {
			t.Fatal(err)
		}
		var last PurgeResult
		res, err := l.Purge(ctx, l.clock.Now(), DefaultRetention(), PurgeOptions{Batch: 2, Progress: func(r PurgeResult) { last = r }})
		if err != nil {
			t.Fatal(err)
		}
		if res.Technical != 7 || res.Held != 4 || dry.Technical != res.Technical || dry.Held != res.Held || last != res {
			t.Fatalf("Purge = %+v, dry run %+v, last progress %+v; want 7 purged, 4 held", res, dry, last)
		}
		for _, id := range held {
			mustProofChecks(t, l, id)
		}
		mustVerifyOK(t, l, 7)
	})
}

// As the documented PostgreSQL application role the purge is refused by the
// database and changes nothing, while placing a hold works; as the owner
// (the documented way to run it) the purge then succeeds.
// REQ: LOG-6
// REQ: LOG-2
func TestPostgresPurgeNeedsOwner(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.PostgresURL(t)
	owner, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	if _, err := owner.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	var b [6]byte
	rand.Read(b[:])
	role := "zk_app_" + hex.EncodeToString(b[:])
	grants := append([]string{`CREATE ROLE ` + role + ` NOLOGIN`}, appRoleGrants...)
	grants = append(grants, `REVOKE UPDATE, DELETE, TRUNCATE ON audit_holds, audit_hold_events FROM zorgkluis_app`)
	t.Cleanup(func() {
		owner.ExecContext(context.Background(), `DROP OWNED BY `+role)
		owner.ExecContext(context.Background(), `DROP ROLE `+role)
	})
	for _, g := range grants {
		if _, err := owner.ExecContext(ctx, strings.NewReplacer("SCHEMA public", "SCHEMA "+schema, "zorgkluis_app", role).Replace(g)); err != nil {
			t.Fatalf("%s: %v", g, err)
		}
	}
	q := u.Query()
	q.Set("options", "-c role="+role)
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	app, err := store.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()

	l := newTestLog(t, app)
	evs := mustAppend(t, l, logon("t1", "u1"), logon("t1", "u2"))
	sequenceAll(t, l)
	l.clock.Advance(DefaultTechnicalRetention + 24*time.Hour)
	if _, err := l.PlaceHold(ctx, Hold{TenantID: "t1", Reason: "klacht", PlacedBy: "security.mulder",
		Until: l.clock.Now().AddDate(1, 0, 0), EventIDs: []string{evs[1].ID}}); err != nil {
		t.Fatalf("PlaceHold as the application role: %v", err)
	}
	if _, err := app.ExecContext(ctx, `DELETE FROM audit_hold_events`); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("deleting a hold as the application role: %v; want permission denied", err)
	}
	if _, err := l.Purge(ctx, l.clock.Now(), DefaultRetention(), PurgeOptions{}); err == nil || !store.IsPermissionDenied(err) {
		t.Fatalf("Purge as the application role: %v; want permission denied", err)
	}
	mustProofChecks(t, l, evs[0].ID) // nothing half-done
	mustVerifyOK(t, l, 0)

	ol := New(owner, l.clock, rand.Reader)
	defer ol.Close()
	res, err := ol.Purge(ctx, l.clock.Now(), DefaultRetention(), PurgeOptions{})
	if err != nil || res.Technical != 1 || res.Held != 1 {
		t.Fatalf("Purge as the owner = %+v, %v; want 1 purged, 1 held", res, err)
	}
	mustVerifyOK(t, l, 1)
}

// BenchmarkPurge measures purging technical events past their retention,
// per event, in batches of DefaultPurgeBatch.
func BenchmarkPurge(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			db := storetest.SQLite(b)
			if dialect == "postgres" {
				db = storetest.Postgres(b)
			}
			ctx := context.Background()
			l := newTestLog(b, db)
			const n = 10000
			batch := make([]Event, 500)
			var purged int64
			for b.Loop() {
				b.StopTimer()
				for range n / len(batch) {
					for i := range batch {
						batch[i] = logon("t1", "u1")
					}
					mustAppend(b, l, batch...)
				}
				sequenceAll(b, l)
				l.clock.Advance(DefaultTechnicalRetention + 24*time.Hour)
				b.StartTimer()
				res, err := l.Purge(ctx, l.clock.Now(), DefaultRetention(), PurgeOptions{})
				if err != nil || res.Technical != n {
					b.Fatalf("Purge = %+v, %v; want %d", res, err, n)
				}
				purged += res.Technical
			}
			b.ReportMetric(float64(purged)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// The chain log (MedMij exchange steps) goes after its 24 months; what
// remains are counts per month, step, app and outcome, without trace or
// session ids, and the log still verifies. A chain retention outside 24 to
// 36 months is refused.
// REQ: LOG-6
func TestPurgeChainKeepsCounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := newTestLog(t, db)
		step := func(q, app string, o Outcome) Event {
			return Event{Action: ActionExchange, Outcome: o, TenantID: "t1", UserID: "a-person", PatientID: "p1", SourceApp: app, Query: q,
				TraceID: "3f2b8c1e-trace", SessionID: "cs-consent"}
		}
		old := mustAppend(t, l, step("token", "app-1", OutcomeSuccess), step("fhir", "app-1", OutcomeSuccess), step("fhir", "app-1", OutcomeSuccess),
			step("fhir", "app-2", OutcomeDenied), event("t1", "p1", "u1"))
		sequenceAll(t, l)
		l.clock.Advance(400 * 24 * time.Hour)
		young := mustAppend(t, l, step("fhir", "app-1", OutcomeSuccess))[0]
		sequenceAll(t, l)

		if res, err := l.Purge(ctx, l.clock.Now(), DefaultRetention(), PurgeOptions{}); err != nil || res.Chain != 0 {
			t.Fatalf("purge within 24 months: %+v %v", res, err)
		}
		l.clock.Set(testStart.Add(MinChainRetention + 24*time.Hour))
		res, err := l.Purge(ctx, l.clock.Now(), DefaultRetention(), PurgeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Chain != 4 || res.Access != 0 {
			t.Fatalf("purge after 24 months = %+v; want the 4 old chain events, no access event", res)
		}
		for _, e := range old[:4] {
			if _, err := l.Proof(ctx, e.ID); !errors.Is(err, ErrPurged) {
				t.Fatalf("chain event %s after its retention: %v", e.Query, err)
			}
		}
		mustProofChecks(t, l, old[4].ID)
		mustProofChecks(t, l, young.ID)
		counts, err := l.ChainCounts(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		month := testStart.UTC().Format("2006-01")
		want := []ChainCount{{month, "fhir", "app-1", "success", 2}, {month, "fhir", "app-2", "denied", 1}, {month, "token", "app-1", "success", 1}}
		if len(counts) != len(want) {
			t.Fatalf("counts %+v; want %+v", counts, want)
		}
		for i := range want {
			if counts[i] != want[i] {
				t.Fatalf("counts %+v; want %+v", counts, want)
			}
		}
		mustVerifyOK(t, l, 4)

		for _, d := range []time.Duration{MinChainRetention - time.Hour, MaxChainRetention + time.Hour} {
			p := DefaultRetention()
			p.Chain = d
			if _, err := l.Purge(ctx, l.clock.Now(), p, PurgeOptions{}); err == nil {
				t.Fatalf("chain retention %v accepted", d)
			}
		}
	})
}
