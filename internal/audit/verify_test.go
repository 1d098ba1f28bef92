package audit

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// positions returns the event ids of a tenant's tree in position order.
func positions(t testing.TB, db *store.DB, tenant string) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT event_id FROM audit_leaves WHERE tenant_id = $1 ORDER BY idx`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		out = append(out, id)
	}
	return out
}

func sqlExec(t testing.TB, db *store.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// tamperWorld is a sequenced log of three trees; pos are t1's event ids by
// position.
type tamperWorld struct {
	db  *store.DB
	l   *testLog
	pos []string
}

func newTamperWorld(t *testing.T, db *store.DB) *tamperWorld {
	l := newTestLog(t, db)
	for i := range 6 {
		mustAppend(t, l, event("t1", fmt.Sprintf("p%d", i%3), fmt.Sprintf("u%d", i%2)))
		mustAppend(t, l, event("t2", "p9", "u9"))
	}
	mustAppend(t, l, Event{Action: ActionLogon, Outcome: OutcomeSuccess, UserID: "op1"}) // platform tree
	mustSequence(t, l)
	// Some events that are stored but not yet sequenced are fine too.
	mustAppend(t, l, event("t1", "p0", "u0"))
	return &tamperWorld{db: db, l: l, pos: positions(t, db, "t1")}
}

func verifyLog(t *testing.T, l *testLog) Report {
	t.Helper()
	r, err := l.Verify(context.Background(), note.VerifierList(l.verifier), nil)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return r
}

// REQ: LOG-2
func TestVerifyIntactLog(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newTamperWorld(t, db)
		var calls, last int
		r, err := w.l.Verify(context.Background(), note.VerifierList(w.l.verifier), func(done, total int) { calls++; last = done })
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() || r.Events != 13 || len(r.Trees) != 3 {
			t.Fatalf("intact log: ok=%v events=%d trees=%d damage=%v", r.OK(), r.Events, len(r.Trees), r.Damage)
		}
		if calls == 0 || last != 13 {
			t.Fatalf("progress called %d times, last done %d; want done 13", calls, last)
		}
		for _, tr := range r.Trees {
			if tr.TenantID == "t1" && (tr.Leaves != 6 || tr.Pending != 1 || tr.Checkpoints != 1) {
				t.Fatalf("t1 report %+v", tr)
			}
		}
		// Verify after more sequencing and with an empty log also passes.
		mustSequence(t, w.l)
		if r := verifyLog(t, w.l); !r.OK() {
			t.Fatalf("after sequencing: %v", r.Damage)
		}
	})
}

// Tampering straight in the database, as an attacker with SQL access
// would, is found and named: which tree, which position, which event.
// REQ: LOG-2
func TestVerifyNamesTampering(t *testing.T) {
	type want struct {
		kind DamageKind
		pos  int    // position in t1 (-1: none)
		id   string // "pos" = the event at pos, "new" = the inserted one
		text string // in Detail
	}
	cases := []struct {
		name   string
		tamper func(t *testing.T, w *tamperWorld) string // returns an id for "new"
		want   []want
	}{
		{"edit body", func(t *testing.T, w *tamperWorld) string {
			sqlExec(t, w.db, `UPDATE audit_events SET body = REPLACE(body, '"userName":"Dr. ', '"userName":"Mr. ') WHERE id = $1`, w.pos[2])
			return ""
		}, []want{{DamageEdited, 2, "pos", ""}, {DamageCheckpoint, -1, "", "differs from the recomputed root"}}},
		{"edit patient column to hide an event", func(t *testing.T, w *tamperWorld) string {
			sqlExec(t, w.db, `UPDATE audit_events SET patient_id = 'someone-else' WHERE id = $1`, w.pos[4])
			return ""
		}, []want{{DamageColumn, 4, "pos", "patient_id"}}},
		{"edit user and time columns", func(t *testing.T, w *tamperWorld) string {
			sqlExec(t, w.db, `UPDATE audit_events SET user_id = 'u7', time = time + 1 WHERE id = $1`, w.pos[1])
			return ""
		}, []want{{DamageColumn, 1, "pos", "user_id, time"}}},
		{"edit action and emergency columns", func(t *testing.T, w *tamperWorld) string {
			sqlExec(t, w.db, `UPDATE audit_events SET action = 'create', emergency = TRUE WHERE id = $1`, w.pos[0])
			return ""
		}, []want{{DamageColumn, 0, "pos", "action, emergency"}}},
		{"delete event", func(t *testing.T, w *tamperWorld) string {
			sqlExec(t, w.db, `DELETE FROM audit_events WHERE id = $1`, w.pos[3])
			return ""
		}, []want{{DamageDeleted, 3, "pos", ""}}},
		{"delete event and its leaf", func(t *testing.T, w *tamperWorld) string {
			sqlExec(t, w.db, `DELETE FROM audit_events WHERE id = $1`, w.pos[3])
			sqlExec(t, w.db, `DELETE FROM audit_leaves WHERE event_id = $1`, w.pos[3])
			return ""
		}, []want{{DamagePosition, 3, "", ""}}},
		{"swap two bodies", func(t *testing.T, w *tamperWorld) string {
			var b1, b5 string
			w.db.QueryRowContext(context.Background(), `SELECT body FROM audit_events WHERE id = $1`, w.pos[1]).Scan(&b1)
			w.db.QueryRowContext(context.Background(), `SELECT body FROM audit_events WHERE id = $1`, w.pos[5]).Scan(&b5)
			sqlExec(t, w.db, `UPDATE audit_events SET body = $1 WHERE id = $2`, b5, w.pos[1])
			sqlExec(t, w.db, `UPDATE audit_events SET body = $1 WHERE id = $2`, b1, w.pos[5])
			return ""
		}, []want{{DamageReordered, 1, "pos", "sequenced at position 5"}, {DamageReordered, 5, "pos", "sequenced at position 1"}, {DamageColumn, 1, "pos", "id"}}},
		{"swap two leaves", func(t *testing.T, w *tamperWorld) string {
			sqlExec(t, w.db, `UPDATE audit_leaves SET event_id = 'tmp' WHERE event_id = $1`, w.pos[0])
			sqlExec(t, w.db, `UPDATE audit_leaves SET event_id = $1 WHERE event_id = $2`, w.pos[0], w.pos[2])
			sqlExec(t, w.db, `UPDATE audit_leaves SET event_id = $1 WHERE event_id = 'tmp'`, w.pos[2])
			return ""
		}, []want{{DamageReordered, 0, "", "sequenced at position 2"}, {DamageReordered, 2, "", "sequenced at position 0"}}},
		{"insert event row", func(t *testing.T, w *tamperWorld) string {
			var body string
			w.db.QueryRowContext(context.Background(), `SELECT body FROM audit_events WHERE id = $1`, w.pos[0]).Scan(&body)
			id := "01ffffffffff0000000000000000beef"
			body = strings.Replace(body, w.pos[0], id, 1)
			sqlExec(t, w.db, `INSERT INTO audit_events (id, tenant_id, time, action, outcome, user_id, patient_id, emergency, kind, body)
				SELECT $1, tenant_id, time, action, outcome, user_id, patient_id, emergency, kind, $2 FROM audit_events WHERE id = $3`, id, body, w.pos[0])
			return id
		}, []want{{DamageInserted, -1, "new", ""}}},
		{"insert leaf beyond the checkpoint", func(t *testing.T, w *tamperWorld) string {
			id := "01ffffffffff0000000000000000cafe"
			sqlExec(t, w.db, `INSERT INTO audit_events (id, tenant_id, time, action, outcome, user_id, patient_id, emergency, kind, body)
				VALUES ($1, 't1', 0, 'read', 'success', 'u', 'p', FALSE, 'access', '{}')`, id)
			sqlExec(t, w.db, `INSERT INTO audit_leaves (tenant_id, idx, event_id) VALUES ('t1', 6, $1)`, id)
			return id
		}, []want{{DamageUncovered, 6, "", "1 leaves beyond"}}},
		{"insert leaf in the middle", func(t *testing.T, w *tamperWorld) string {
			id := "01ffffffffff0000000000000000f00d"
			sqlExec(t, w.db, `INSERT INTO audit_events (id, tenant_id, time, action, outcome, user_id, patient_id, emergency, kind, body)
				VALUES ($1, 't1', 0, 'read', 'success', 'u', 'p', FALSE, 'access', '{}')`, id)
			sqlExec(t, w.db, `UPDATE audit_leaves SET idx = idx + 100 WHERE tenant_id = 't1' AND idx >= 3`)
			sqlExec(t, w.db, `UPDATE audit_leaves SET idx = idx - 99 WHERE tenant_id = 't1' AND idx >= 100`)
			sqlExec(t, w.db, `INSERT INTO audit_leaves (tenant_id, idx, event_id) VALUES ('t1', 3, $1)`, id)
			return id
		}, []want{{DamageEdited, 3, "new", ""}, {DamageReordered, 4, "", "sequenced at position 3"}, {DamageUncovered, 6, "", ""}}},
		{"forge checkpoint", func(t *testing.T, w *tamperWorld) string {
			sqlExec(t, w.db, `UPDATE audit_checkpoints SET note = REPLACE(note, 'time ', 'tame ') WHERE tenant_id = 't1'`)
			return ""
		}, []want{{DamageCheckpoint, -1, "", "signature does not verify"}, {DamageUncovered, 0, "", "no valid checkpoint"}}},
		{"truncate the tree", func(t *testing.T, w *tamperWorld) string {
			sqlExec(t, w.db, `DELETE FROM audit_leaves WHERE tenant_id = 't1' AND idx = 5`)
			sqlExec(t, w.db, `DELETE FROM audit_events WHERE id = $1`, w.pos[5])
			return ""
		}, []want{{DamageCheckpoint, -1, "", "the tree has only 5 leaves"}}},
		{"damage stored hashes", func(t *testing.T, w *tamperWorld) string {
			sqlExec(t, w.db, `UPDATE audit_hashes SET hashes = $1 WHERE tenant_id = 't1' AND level = 1`, make([]byte, 96))
			return ""
		}, []want{{DamageHashes, -1, "", "interior"}}},
		{"delete a queued event", func(t *testing.T, w *tamperWorld) string {
			var id string
			w.db.QueryRowContext(context.Background(), `SELECT event_id FROM audit_pending WHERE tenant_id = 't1'`).Scan(&id)
			sqlExec(t, w.db, `DELETE FROM audit_events WHERE id = $1`, id)
			return id
		}, []want{{DamageQueue, -1, "new", ""}}},
		{"mark unexpired event purged", func(t *testing.T, w *tamperWorld) string {
			sqlExec(t, w.db, `UPDATE audit_leaves SET purged = TRUE WHERE event_id = $1`, w.pos[2])
			sqlExec(t, w.db, `DELETE FROM audit_events WHERE id = $1`, w.pos[2])
			return ""
		}, []want{{DamagePurge, 2, "", ""}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				w := newTamperWorld(t, db)
				newID := tc.tamper(t, w)
				r := verifyLog(t, w.l)
				if r.OK() {
					t.Fatal("Verify passed a tampered log")
				}
				for _, wt := range tc.want {
					found := false
					for _, d := range r.Damage {
						if d.Kind != wt.kind || d.TenantID != "t1" || !strings.Contains(d.Detail, wt.text) {
							continue
						}
						if wt.pos >= 0 && d.Position != int64(wt.pos) {
							continue
						}
						switch wt.id {
						case "pos":
							if d.EventID != w.pos[wt.pos] {
								continue
							}
						case "new":
							if d.EventID != newID {
								continue
							}
						}
						found = true
					}
					if !found {
						t.Errorf("want %s at position %d (%s %q); got:\n%s", wt.kind, wt.pos, wt.id, wt.text, damageList(r))
					}
				}
				// The other trees are unharmed.
				for _, d := range r.Damage {
					if d.TenantID != "t1" {
						t.Errorf("damage reported in an untouched tree: %v", d)
					}
				}
			})
		})
	}
}

func damageList(r Report) string {
	var b strings.Builder
	for _, d := range r.Damage {
		b.WriteString("  " + d.String() + "\n")
	}
	return b.String()
}

// A checkpoint signed by an unknown key does not verify.
// REQ: LOG-2
func TestVerifyRejectsOtherKey(t *testing.T) {
	db := storetest.SQLite(t)
	w := newTamperWorld(t, db)
	other := newTestLog(t, db)
	r, err := w.l.Verify(context.Background(), note.VerifierList(other.verifier), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() || r.Damage[0].Kind != DamageCheckpoint {
		t.Fatalf("checkpoints by an unknown key accepted: %v", r.Damage)
	}
}

func TestScanFields(t *testing.T) {
	cases := []struct {
		body    string
		id, pat string
		err     bool
	}{
		{`{"id":"a","patientId":"p"}`, `"a"`, `"p"`, false},
		{` { "x" : [1, {"id":"no"}, "]"], "id" : "a\"b", "y": {"patientId": "no"}, "patientId":"q" } `, `"a\"b"`, `"q"`, false},
		{`{"id":"a"`, "", "", true},
		{`["id"]`, "", "", true},
		{`{"id":}`, "", "", true},
		{`{}`, "", "", false},
	}
	for _, c := range cases {
		var f bodyFields
		err := scanFields([]byte(c.body), &f)
		if (err != nil) != c.err {
			t.Errorf("scanFields(%s) err = %v", c.body, err)
			continue
		}
		if !c.err && (string(f.id) != c.id || string(f.patient) != c.pat) {
			t.Errorf("scanFields(%s) = id %s patient %s; want %s %s", c.body, f.id, f.patient, c.id, c.pat)
		}
	}
	if s, ok := jsonString([]byte(`"a\u0041"`)); !ok || string(s) != "aA" {
		t.Errorf("jsonString escape = %q, %v", s, ok)
	}
}

// A small tenant among a large one (Verify reads it by id batches instead
// of range scans): intact, it verifies; a deleted event of the small tenant
// and an edited index column of the large one are both named.
// REQ: LOG-2
func TestVerifySmallTenantAmongLarge(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		l := newTestLog(t, db)
		var evs []Event
		for k := range 3000 {
			ten := "t1"
			if k%100 == 7 {
				ten = "t2"
			}
			e := event(ten, fmt.Sprintf("p%d", k%10), "u1")
			e.Time = testStart.Add(time.Duration(k) * time.Minute)
			evs = append(evs, e)
		}
		mustAppend(t, l, evs...)
		if _, err := l.Sequence(context.Background()); err != nil {
			t.Fatal(err)
		}
		r := verifyLog(t, l)
		if !r.OK() || r.Events != 3000 {
			t.Fatalf("ok=%v events=%d %v", r.OK(), r.Events, r.Damage)
		}
		pos := positions(t, db, "t2")
		sqlExec(t, db, `DELETE FROM audit_events WHERE id = $1`, pos[5])
		pos1 := positions(t, db, "t1")
		sqlExec(t, db, `UPDATE audit_events SET patient_id = 'zz' WHERE id = $1`, pos1[2000])
		r = verifyLog(t, l)
		kinds := map[DamageKind]bool{}
		for _, d := range r.Damage {
			kinds[d.Kind] = true
		}
		if len(r.Damage) != 2 || !kinds[DamageDeleted] || !kinds[DamageColumn] {
			t.Fatalf("damage %v; want one deleted and one column-edited", r.Damage)
		}
	})
}
