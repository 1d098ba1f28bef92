package router_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// secrets writes a patient's identifiers and a resource text that must
// never be stored in the clear, through the API, and returns them.
func (w *fhirWorld) secrets() []string {
	w.t.Helper()
	const text = "Vertrouwelijke-diagnose-tekst-7731"
	w.create(w.gp, "Observation", observation(w.patient, "29463-7", "2025-03-01", `"note":[{"text":"`+text+`"}]`))
	// A BSN lookup, so the search event is written too.
	if resp, b := w.do("GET", "/fhir/Patient?identifier=http://fhir.nl/fhir/NamingSystem/bsn|"+w.bsn, w.gp, ""); resp.StatusCode != 200 || parseBundle(w.t, b).Total != 1 {
		w.t.Fatalf("BSN search: %d %s", resp.StatusCode, b)
	}
	return []string{w.bsn, "Zeldzaamheid", "1911-11-11", text}
}

// rowsContaining returns table:column of every stored value holding one of
// the secrets, over every table of the database.
func rowsContaining(t *testing.T, db *store.DB, secrets []string) []string {
	t.Helper()
	ctx := context.Background()
	q := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if db.Dialect() == store.Postgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	if len(tables) < 5 {
		t.Fatalf("only %d tables found", len(tables))
	}
	var found []string
	for _, tab := range tables {
		rows, err := db.QueryContext(ctx, `SELECT * FROM `+tab)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				var b []byte
				switch x := v.(type) {
				case []byte:
					b = x
				case string:
					b = []byte(x)
				default:
					b = []byte(fmt.Sprint(x))
				}
				for _, s := range secrets {
					if bytes.Contains(b, []byte(s)) {
						found = append(found, tab+"."+cols[i]+" holds "+s)
					}
				}
			}
		}
		rows.Close()
	}
	return found
}

// REQ: DP-1 — a patient's BSN, name and birth date and the text of their
// resources appear in no stored row, and not in the bytes of the SQLite
// files either; only sealed bodies and the BSN's blind index are stored.
func TestNoPlaintextAtRest(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "zk.db")
		db, err := store.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		w := newFHIRWorld(t, db)
		secrets := w.secrets()
		if found := rowsContaining(t, db, secrets); len(found) > 0 {
			t.Fatalf("plaintext in rows: %v", found)
		}
		files, _ := filepath.Glob(path + "*") // the database, its WAL and shared memory
		if len(files) < 2 {
			t.Fatalf("database files: %v", files)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range secrets {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%s holds %q in the clear", filepath.Base(f), s)
				}
			}
		}
	})
	t.Run("postgres", func(t *testing.T) {
		db := storetest.Postgres(t)
		w := newFHIRWorld(t, db)
		secrets := w.secrets()
		if found := rowsContaining(t, db, secrets); len(found) > 0 {
			t.Fatalf("plaintext in rows: %v", found)
		}
		// The bytes PostgreSQL keeps on disk: every table, its TOAST table
		// and every index of this test's schema, flushed by a checkpoint.
		for name, b := range pgRelationFiles(t, db) {
			for _, s := range secrets {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("relation file of %s holds %q in the clear", name, s)
				}
			}
		}
	})
}

// pgRelationFiles returns the on-disk bytes of every relation (table, TOAST
// table, index) in the current schema, read after a CHECKPOINT so that the
// files hold what was written. It needs the superuser the tests run as.
func pgRelationFiles(t *testing.T, db *store.DB) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CHECKPOINT`); err != nil {
		t.Fatalf("checkpoint (the test database user must be a superuser): %v", err)
	}
	rows, err := db.QueryContext(ctx, `
		SELECT c.relname, pg_relation_filepath(c.oid) FROM pg_class c
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'i')
		UNION ALL
		SELECT c.relname || ' (toast)', pg_relation_filepath(c.reltoastrelid) FROM pg_class c
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND c.reltoastrelid <> 0`)
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for rows.Next() {
		var name, path string
		if err := rows.Scan(&name, &path); err != nil {
			t.Fatal(err)
		}
		paths[name] = path
	}
	rows.Close()
	out := map[string][]byte{}
	total := 0
	for name, path := range paths {
		var b []byte
		if err := db.QueryRowContext(ctx, `SELECT pg_read_binary_file($1)`, path).Scan(&b); err != nil {
			t.Fatalf("read %s (%s): %v", name, path, err)
		}
		out[name] = b
		total += len(b)
	}
	if len(out) < 10 || total == 0 {
		t.Fatalf("only %d relation files (%d bytes) found", len(out), total)
	}
	return out
}

// REQ: DP-1 — after crypto-shredding one patient's key, every read of that
// patient's data is answered 410 with an OperationOutcome, and another
// patient's data is still served.
func TestShreddedPatientIsGone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newFHIRWorld(t, db)
		ctx := context.Background()
		obs := w.create(w.gp, "Observation", observation(w.patient, "29463-7", "2025-03-01"))
		other := w.register(w.gp, "111222333", "Anders", "1950-01-01")
		if _, err := w.decider.AddRelationship(ctx, access.Relationship{TenantID: w.tenantID, ProfessionalID: w.gpID, PatientID: other,
			Kind: "gp", Start: time.Now().Add(-time.Hour), RecordedBy: "test"}); err != nil {
			t.Fatal(err)
		}
		otherObs := w.create(w.gp, "Observation", observation(other, "29463-7", "2025-03-01"))

		if err := w.keys.Shred(ctx, w.tenantID, w.patient); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/fhir/Patient/" + w.patient, "/fhir/Observation/" + obs, "/fhir/Observation?patient=" + w.patient,
			"/fhir/Patient/" + w.patient + "/$everything", "/fhir/Observation/" + obs + "/_history"} {
			resp, b := w.do("GET", path, w.gp, "")
			if resp.StatusCode != 410 || !isOutcome(b, "") || !strings.Contains(string(b), "erased") {
				t.Errorf("%s after shred: %d %s", path, resp.StatusCode, b)
			}
		}
		// Nothing new can be written for them either.
		if resp, b := w.do("POST", "/fhir/Observation", w.gp, observation(w.patient, "1", "2026")); resp.StatusCode != 410 {
			t.Errorf("create after shred: %d %s", resp.StatusCode, b)
		}
		for _, path := range []string{"/fhir/Patient/" + other, "/fhir/Observation/" + otherObs} {
			if resp, b := w.do("GET", path, w.gp, ""); resp.StatusCode != 200 {
				t.Errorf("other patient %s: %d %s", path, resp.StatusCode, b)
			}
		}
		if n := w.events(w.gpID, "read", "failed"); n < 3 {
			t.Errorf("failed reads of erased data logged: %d; want ≥ 3", n)
		}
	})
}

// REQ: DP-1 — a ciphertext moved to another row does not open: the API
// answers with an error, never with the other resource's content.
func TestSwappedCiphertextOverHTTP(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newFHIRWorld(t, db)
		ctx := context.Background()
		a := w.create(w.gp, "Observation", observation(w.patient, "1111-1", "2025-03-01"))
		b := w.create(w.gp, "Observation", observation(w.patient, "2222-2", "2025-03-01"))
		var body []byte
		if err := db.QueryRowContext(ctx, `SELECT body FROM resources WHERE id = $1`, b).Scan(&body); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `UPDATE resources SET body = $1 WHERE id = $2`, body, a); err != nil {
			t.Fatal(err)
		}
		resp, out := w.do("GET", "/fhir/Observation/"+a, w.gp, "")
		if resp.StatusCode != 500 || strings.Contains(string(out), "2222-2") || !isOutcome(out, "") {
			t.Fatalf("swapped ciphertext: %d %s", resp.StatusCode, out)
		}
	})
}
