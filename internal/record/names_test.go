package record_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/record"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

func TestDisplayName(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`{"resourceType":"Patient","name":[{"family":"de Vries","given":["Jan","Pieter"]}],"birthDate":"1984-03-12"}`, "J.P. de Vries (1984)"},
		{`{"resourceType":"Patient","name":[{"use":"usual","text":"Jantje"},{"use":"official","family":"Bakker","given":["anna"]}]}`, "A. Bakker"},
		{`{"resourceType":"Patient","name":[{"text":"Mw. K. Smit"}],"birthDate":"1950"}`, "Mw. K. Smit (1950)"},
		{`{"resourceType":"Patient","birthDate":"1950"}`, ""},
		{`{"resourceType":"Observation","status":"final"}`, ""},
		{`not json`, ""},
	} {
		if got := record.DisplayName([]byte(c.body)); got != c.want {
			t.Errorf("DisplayName(%s) = %q; want %q", c.body, got, c.want)
		}
	}
}

// officer makes a security officer of w's tenant.
func (w *world) officer(t *testing.T) access.Subject {
	t.Helper()
	a, err := w.ids.CreateAccount(context.Background(), identity.Account{TenantID: w.tenantID, Kind: identity.KindAdmin, Username: "officer", DisplayName: "officer", RegistrationMethod: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.ids.GrantRole(context.Background(), a.ID, string(access.RoleSecurityOfficer), "test set-up"); err != nil {
		t.Fatal(err)
	}
	return access.NewSubject(access.SubjectSpec{AccountID: a.ID, Name: "officer", TenantID: w.tenantID, Role: access.RoleSecurityOfficer, Assurance: access.Hoog})
}

// register registers one more patient with a Patient resource named body's
// way, under the GP, and returns the id.
func (w *world) register(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	pid, _ := w.ids.NewID("p-")
	g, err := w.decider.DecideRegistration(ctx, w.gp, pid)
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"resourceType":"Patient","id":%q,"name":[{"family":%q,"given":["Jan"]}],"birthDate":"1984-03-12"}`, pid, name)
	if _, err := w.records.RegisterPatient(ctx, g, w.ids, []byte("idx-"+pid), []byte(body)); err != nil {
		t.Fatal(err)
	}
	return pid
}

// read is the officer's reading of the log under q, released.
func (w *world) read(t *testing.T, s access.Subject, scope access.LogScope, q audit.Search) *audit.Reading {
	t.Helper()
	ctx := context.Background()
	p, err := w.decider.DecideLogRead(ctx, s, scope)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := w.log.Read(ctx, p, q, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rd.Each(ctx, func(audit.Event) error { return nil }); err != nil {
		t.Fatal(err)
	}
	return rd
}

// REQ: LOG-5, DP-1 — the officer's reading of the log names the patients of
// its lines from the name record keeps with the record (no person account
// needed), an update renames, only the patients the reading released are
// named, and a shredded patient's name is gone with the record.
func TestPatientNamesForTheOfficersReading(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db, 0)
		officer := w.officer(t)
		a, b := w.register(t, "de Vries"), w.register(t, "Bakker")

		names, err := w.records.PatientNames(ctx, w.read(t, officer, access.LogScope{}, audit.Search{PatientID: a}))
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != 1 || names[a] != "J. de Vries (1984)" {
			t.Fatalf("names of a's lines = %v; want only a's", names)
		}
		names, err = w.records.PatientNames(ctx, w.read(t, officer, access.LogScope{}, audit.Search{}))
		if err != nil {
			t.Fatal(err)
		}
		if names[a] != "J. de Vries (1984)" || names[b] != "J. Bakker (1984)" || names[w.patient] != "Geheimnaam" {
			t.Fatalf("names of the tenant's lines = %v", names)
		}

		// An update of the Patient renames; the stored name is sealed, not
		// in the clear.
		g, err := w.decider.Decide(ctx, w.gp, access.Request{PatientID: w.patient, Action: access.Update})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.records.Update(ctx, g, record.Resource{Type: "Patient", ID: w.patient, PatientID: w.patient, Categories: []string{"demographics"},
			Body: []byte(fmt.Sprintf(`{"resourceType":"Patient","id":%q,"name":[{"family":"Open","given":["Kees"]}]}`, w.patient))}, 0, nil); err != nil {
			t.Fatal(err)
		}
		names, err = w.records.PatientNames(ctx, w.read(t, officer, access.LogScope{}, audit.Search{PatientID: w.patient}))
		if err != nil {
			t.Fatal(err)
		}
		if names[w.patient] != "K. Open" {
			t.Fatalf("name after the update = %q", names[w.patient])
		}
		var plain int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM record_patient_names WHERE name LIKE '%Open%' OR name LIKE '%Vries%'`).Scan(&plain); err != nil {
			t.Fatal(err)
		}
		if plain != 0 {
			t.Fatal("a stored name is readable without the patient's key")
		}

		// Crypto-shredding takes the name with it.
		if err := w.keys.Shred(ctx, w.tenantID, a); err != nil {
			t.Fatal(err)
		}
		names, err = w.records.PatientNames(ctx, w.read(t, officer, access.LogScope{}, audit.Search{}))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := names[a]; ok || names[b] != "J. Bakker (1984)" {
			t.Fatalf("names after shredding a = %v", names)
		}
	})
}

// REQ: LOG-5, LOG-4 — nobody but the security officer gets names through
// this seam: a professional's log read is refused (and logged) before any
// reading exists, a person's reading of their own log names nobody, and a
// reading not yet released or none at all gives nothing.
func TestPatientNamesOnlyForTheOfficer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db, 0)
		if _, err := w.decider.DecideLogRead(ctx, w.gp, access.LogScope{}); !access.IsDenied(err) {
			t.Fatalf("a professional's tenant log read: %v; want denied", err)
		}
		if _, err := w.decider.DecideLogRead(ctx, w.gp, access.LogScope{PatientID: w.patient}); !access.IsDenied(err) {
			t.Fatalf("a professional's patient log read: %v; want denied", err)
		}
		own := w.read(t, w.person, access.LogScope{PatientID: w.patient}, audit.Search{})
		if names, err := w.records.PatientNames(ctx, own); !errors.Is(err, record.ErrNoReading) || names != nil {
			t.Fatalf("a person's reading: %v, %v; want ErrNoReading", names, err)
		}
		p, err := w.decider.DecideLogRead(ctx, w.officer(t), access.LogScope{})
		if err != nil {
			t.Fatal(err)
		}
		rd, err := w.log.Read(ctx, p, audit.Search{}, "test")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.records.PatientNames(ctx, rd); !errors.Is(err, record.ErrNoReading) {
			t.Fatalf("an unreleased reading: %v; want ErrNoReading", err)
		}
		if _, err := w.records.PatientNames(ctx); !errors.Is(err, record.ErrNoReading) {
			t.Fatalf("no reading: %v; want ErrNoReading", err)
		}
		if _, err := w.records.PatientNames(ctx, nil); !errors.Is(err, record.ErrNoReading) {
			t.Fatalf("a nil reading: %v; want ErrNoReading", err)
		}
	})
}

// REQ: LOG-5, DP-1 — patients written before migration 00520 (their name
// rows deleted here) are named by the backfill, so the officer's pages name
// them; a shredded patient is skipped and counted, a patient already named
// is left alone, and a second run writes nothing.
func TestBackfillNames(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db, 0)
		officer := w.officer(t)
		a, b, c := w.register(t, "de Vries"), w.register(t, "Bakker"), w.register(t, "Smit")
		// Pre-00520 data: a, b and c have no name row; w.patient keeps its own.
		if _, err := db.ExecContext(ctx, `DELETE FROM record_patient_names WHERE tenant_id = $1 AND patient_id IN ($2, $3, $4)`, w.tenantID, a, b, c); err != nil {
			t.Fatal(err)
		}
		if err := w.keys.Shred(ctx, w.tenantID, c); err != nil {
			t.Fatal(err)
		}
		var calls [][2]int
		res, err := w.records.BackfillNames(ctx, 2, func(done, total int) { calls = append(calls, [2]int{done, total}) })
		if err != nil {
			t.Fatal(err)
		}
		want := record.BackfillResult{Patients: 4, Named: 2, Already: 1, Shredded: 1}
		if res != want {
			t.Fatalf("backfill = %+v; want %+v", res, want)
		}
		// Batches of 2 over 3 unnamed patients: progress after each.
		if len(calls) != 2 || calls[0] != [2]int{2, 3} || calls[1] != [2]int{3, 3} {
			t.Fatalf("progress calls = %v", calls)
		}
		names, err := w.records.PatientNames(ctx, w.read(t, officer, access.LogScope{}, audit.Search{}))
		if err != nil {
			t.Fatal(err)
		}
		if names[a] != "J. de Vries (1984)" || names[b] != "J. Bakker (1984)" || names[w.patient] != "Geheimnaam" {
			t.Fatalf("names after the backfill = %v", names)
		}
		if _, ok := names[c]; ok {
			t.Fatalf("the shredded patient was named: %v", names)
		}
		var rows int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM record_patient_names WHERE tenant_id = $1`, w.tenantID).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows != 3 {
			t.Fatalf("%d name rows; want 3 (none for the shredded patient)", rows)
		}

		// A second run writes nothing (a rewrite would seal anew, under a
		// fresh nonce); the shredded patient is skipped again.
		before := sealedNames(t, db)
		res, err = w.records.BackfillNames(ctx, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := (record.BackfillResult{Patients: 4, Already: 3, Shredded: 1}); res != want {
			t.Fatalf("second backfill = %+v; want %+v", res, want)
		}
		if after := sealedNames(t, db); !maps.Equal(before, after) {
			t.Fatal("the second backfill rewrote name rows")
		}

		// A cancelled context stops it before any write.
		if _, err := db.ExecContext(ctx, `DELETE FROM record_patient_names WHERE tenant_id = $1 AND patient_id = $2`, w.tenantID, a); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := w.records.BackfillNames(cctx, 2, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled backfill: %v; want context.Canceled", err)
		}
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM record_patient_names WHERE tenant_id = $1`, w.tenantID).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows != 2 {
			t.Fatalf("a cancelled backfill wrote: %d name rows; want 2", rows)
		}

		// A Patient body that does not open (b's moved onto a's row) is
		// counted and reported as an integrity failure naming a; the rest
		// is still named.
		if _, err := db.ExecContext(ctx, `DELETE FROM record_patient_names WHERE tenant_id = $1 AND patient_id = $2`, w.tenantID, b); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `UPDATE resources SET body = (SELECT body FROM resources WHERE tenant_id = $1 AND type = 'Patient' AND id = $2)
			WHERE tenant_id = $1 AND type = 'Patient' AND id = $3`, w.tenantID, b, a); err != nil {
			t.Fatal(err)
		}
		res, err = w.records.BackfillNames(ctx, 10, nil)
		if !errors.Is(err, record.ErrIntegrity) || !strings.Contains(err.Error(), a) {
			t.Fatalf("backfill over a damaged Patient: %v; want ErrIntegrity naming %s", err, a)
		}
		if want := (record.BackfillResult{Patients: 4, Named: 1, Already: 1, Shredded: 1, Damaged: 1}); res != want {
			t.Fatalf("backfill over a damaged Patient = %+v; want %+v", res, want)
		}
	})
}

// sealedNames is every stored name row, sealed, by patient.
func sealedNames(t *testing.T, db *store.DB) map[string]string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT patient_id, name, updated_at FROM record_patient_names`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var p string
		var name []byte
		var at int64
		if err := rows.Scan(&p, &name, &at); err != nil {
			t.Fatal(err)
		}
		out[p] = fmt.Sprintf("%x@%d", name, at)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
