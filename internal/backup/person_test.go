package backup

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// personLines are the rows of dump d that belong to patient p.
func personLines(d map[string][]string, p string) map[string][]string {
	out := map[string][]string{}
	for _, t := range personTables {
		for _, r := range d[t.name] {
			if strings.Contains(r, `"`+p+`"`) {
				out[t.name] = append(out[t.name], r)
			}
		}
	}
	return out
}

// REQ: DP-5
// An accidental delete of one person's record is undone from a backup: the
// person comes back with every resource version, key, sealed name and link
// as in the backup; others' writes since the backup stay; the person's audit events
// are not rewritten and the restore is logged; a patient shredded since the
// backup stays shredded.
func TestRestorePersonAfterAccidentalDelete(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, 8)
		person := f.cred.Persons[0]
		p := Person{TenantID: f.cred.TenantID, PatientID: person.Patients[0]}
		var shred string
		for _, pr := range f.cred.Professionals {
			for _, id := range pr.Patients {
				if id != p.PatientID && shred == "" {
					shred = id
				}
			}
		}
		m, err := Create(ctx, db, f.st, f.keys, clock.System{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		inBackup := personLines(dump(t, db), p.PatientID)
		if len(inBackup["resources"]) < 3 || len(inBackup["person_patients"]) != 1 || len(inBackup["patient_deks"]) != 1 ||
			len(inBackup["record_patient_names"]) != 1 {
			t.Fatalf("the person's rows in the backup: %v", inBackup)
		}

		// After the backup: others write (a new organisation), one patient
		// is shredded, and the person's resources and key are deleted by
		// mistake.
		f.generate(t, ctx, 7, 5)
		if err := f.kit.Keys.Shred(ctx, p.TenantID, shred); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{`DELETE FROM resources WHERE patient_id = $1`, `DELETE FROM patient_deks WHERE patient_id = $1`,
			`DELETE FROM record_patient_names WHERE patient_id = $1`} {
			if _, err := db.ExecContext(ctx, q, p.PatientID); err != nil {
				t.Fatal(err)
			}
		}
		before := dump(t, db)
		eventsBefore, err := f.kit.Audit.Query(ctx, audit.Filter{TenantID: p.TenantID, PatientID: p.PatientID})
		if err != nil {
			t.Fatal(err)
		}

		ev := audit.Event{UserID: "os:test", UserName: "test", Role: "platform-admin", SourceApp: "backup test"}
		rep, err := RestorePerson(ctx, f.open(t, m.Name), f.keys.Identities, db, f.kit.Audit, p, ev)
		if err != nil {
			t.Fatal(err)
		}
		after := dump(t, db)
		if got := personLines(after, p.PatientID); !equalLines(got, inBackup) {
			t.Fatalf("the person after the restore:\n%v\nin the backup:\n%v", got, inBackup)
		}
		if rep.Restored["resources"] != int64(len(inBackup["resources"])) || rep.EventID == "" {
			t.Fatalf("report: %+v", rep)
		}
		// Nobody else changed: every table outside the person's rows is as
		// before, except the one new audit event of the restore.
		for table, rows := range before {
			other := func(rs []string) []string {
				return slices.DeleteFunc(slices.Clone(rs), func(r string) bool { return strings.Contains(r, `"`+p.PatientID+`"`) })
			}
			b, a := other(rows), other(after[table])
			if table == "store_watches" {
				// The restore wrote the person's care relationships and
				// roles, so the caches built from them must hear of it: a
				// version went up, no watch came or went.
				if len(a) != len(b) {
					t.Fatalf("%s: %d watches before, %d after", table, len(b), len(a))
				}
				continue
			}
			if table == "audit_events" || table == "audit_pending" {
				// (The restore's own event awaits its checkpoint in
				// audit_pending, whose rows name their patient: it is
				// among the person's rows, not the others'.)
				if len(a) != len(b) {
					t.Fatalf("%s: %d rows of others before, %d after", table, len(b), len(a))
				}
				continue
			}
			if !slices.Equal(a, b) {
				t.Fatalf("table %s changed outside the person: %d rows before, %d after", table, len(b), len(a))
			}
		}
		eventsAfter, err := f.kit.Audit.Query(ctx, audit.Filter{TenantID: p.TenantID, PatientID: p.PatientID})
		if err != nil {
			t.Fatal(err)
		}
		if len(eventsAfter) != len(eventsBefore)+1 {
			t.Fatalf("%d events of the person before, %d after; want one more (the restore)", len(eventsBefore), len(eventsAfter))
		}
		for _, e := range eventsBefore {
			if !slices.ContainsFunc(eventsAfter, func(x audit.Event) bool { return x.ID == e.ID && x.Action == e.Action && x.Time.Equal(e.Time) }) {
				t.Fatalf("event %s was rewritten or lost", e.ID)
			}
		}
		if !slices.ContainsFunc(eventsAfter, func(x audit.Event) bool {
			return x.ID == rep.EventID && x.Basis == "restore-from-backup" && strings.Contains(x.Query, m.Name)
		}) {
			t.Fatalf("the restore's own event %s is not in the log", rep.EventID)
		}
		if _, err := f.signed.Sequence(ctx); err != nil {
			t.Fatal(err)
		}
		verifyLog(t, db, f.verifier)

		// The shredded patient stays shredded.
		_, err = RestorePerson(ctx, f.open(t, m.Name), f.keys.Identities, db, f.kit.Audit, Person{TenantID: p.TenantID, PatientID: shred}, ev)
		if !errors.Is(err, ErrShredded) {
			t.Fatalf("restore of a shredded patient: %v, want ErrShredded", err)
		}
		var shreddedAt *int64
		if err := db.QueryRowContext(ctx, `SELECT shredded_at FROM patient_deks WHERE tenant_id = $1 AND patient_id = $2`, p.TenantID, shred).Scan(&shreddedAt); err != nil || shreddedAt == nil {
			t.Fatalf("the shredded patient's key is back: %v", err)
		}
		if _, err := RestorePerson(ctx, f.open(t, m.Name), f.keys.Identities, db, f.kit.Audit, Person{TenantID: p.TenantID, PatientID: "nobody"}, ev); !errors.Is(err, ErrNotInBackup) {
			t.Fatalf("restore of an unknown patient: %v", err)
		}
	})
}

func equalLines(a, b map[string][]string) bool {
	for _, t := range personTables {
		x, y := slices.Clone(a[t.name]), slices.Clone(b[t.name])
		slices.Sort(x)
		slices.Sort(y)
		if !slices.Equal(x, y) {
			return false
		}
	}
	return true
}
