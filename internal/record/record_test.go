package record_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/record"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// world is a tenant with a GP who has a relationship with a patient, a GP
// who has none, and the patient's own person account.
type world struct {
	db       *store.DB
	ids      *identity.Registry
	log      *audit.Log
	decider  *access.Decider
	records  *record.Store
	keys     *keys.Keyring
	clock    *clock.Fake
	gp, gp2  access.Subject
	person   access.Subject
	patient  string
	obsIDs   []string
	tenantID string
}

func newWorld(t testing.TB, db *store.DB, observations int) *world {
	t.Helper()
	ctx := context.Background()
	c := clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	master, err := keys.MasterFromEnv("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keys.NewKeyring(keys.Config{Master: master, Store: keys.NewSQLStore(db), Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{db: db, ids: identity.NewRegistry(db, c, rand.Reader), log: audit.New(db, c, rand.Reader)}
	w.decider = access.NewDecider(db, w.log, c)
	w.records = record.New(db, kr, w.log, c)
	w.keys, w.clock = kr, c
	ten, err := w.ids.CreateTenant(ctx, identity.Tenant{Name: "Praktijk"})
	if err != nil {
		t.Fatal(err)
	}
	w.tenantID = ten.ID
	mk := func(name, kind string, role access.Role) access.Subject {
		a, err := w.ids.CreateAccount(ctx, identity.Account{TenantID: ten.ID, Kind: kind, Username: name, DisplayName: name, RegistrationMethod: 3})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.ids.GrantRole(ctx, a.ID, string(role), "test set-up"); err != nil { // Decide checks the account holds it
			t.Fatal(err)
		}
		return access.NewSubject(access.SubjectSpec{AccountID: a.ID, Name: name, TenantID: ten.ID, Organisation: ten.Name, Role: role, Assurance: access.Hoog})
	}
	w.gp = mk("gp", identity.KindProfessional, access.RoleProfessional)
	w.gp2 = mk("gp2", identity.KindProfessional, access.RoleProfessional)
	w.person = mk("person", identity.KindPerson, access.RolePerson)
	w.patient, _ = w.ids.NewID("p-")
	g, err := w.decider.DecideRegistration(ctx, w.gp, w.patient)
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"resourceType":"Patient","id":%q,"name":[{"family":"Geheimnaam"}]}`, w.patient)
	if _, err := w.records.RegisterPatient(ctx, g, w.ids, []byte("bsn-index"), []byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := w.ids.LinkPerson(ctx, w.person.AccountID(), w.patient); err != nil {
		t.Fatal(err)
	}
	if _, err := w.decider.AddRelationship(ctx, access.Relationship{TenantID: ten.ID, ProfessionalID: w.gp.AccountID(), PatientID: w.patient,
		Kind: "gp", Start: c.Now().Add(-time.Hour), RecordedBy: "test"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < observations; i++ {
		g, err := w.decider.Decide(ctx, w.gp, access.Request{PatientID: w.patient, Action: access.Create})
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("obs-%d", i)
		if _, err := w.records.Insert(ctx, g, record.Resource{Type: "Observation", ID: id, PatientID: w.patient, Categories: []string{"clinical"},
			Body: []byte(`{"resourceType":"Observation","id":"` + id + `","status":"final"}`)}); err != nil {
			t.Fatal(err)
		}
		w.obsIDs = append(w.obsIDs, id)
	}
	return w
}

func (w *world) count(t *testing.T, user, action, outcome string) int {
	t.Helper()
	var n int
	if err := w.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM audit_events WHERE user_id = $1 AND action = $2 AND outcome = $3`,
		user, action, outcome).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// REQ: AZ-1, AZ-3, LOG-1 — a read without a care relationship is denied and
// the denial is in the access log; a read with one is allowed and logged.
func TestReadWithoutRelationshipIsDeniedAndLogged(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db, 1)
		_, err := w.decider.Decide(ctx, w.gp2, access.Request{PatientID: w.patient, Action: access.Read})
		if !access.IsDenied(err) {
			t.Fatalf("unrelated GP: err = %v; want denial", err)
		}
		if n := w.count(t, w.gp2.AccountID(), "read", "denied"); n != 1 {
			t.Fatalf("denied reads logged = %d; want 1", n)
		}
		g, err := w.decider.Decide(ctx, w.gp, access.Request{PatientID: w.patient, Action: access.Read})
		if err != nil {
			t.Fatal(err)
		}
		res, err := w.records.Read(ctx, g, "Patient", w.patient)
		if err != nil || !strings.Contains(string(res.Body), "Geheimnaam") {
			t.Fatalf("related GP read = %q, %v", res.Body, err)
		}
		evs, err := w.log.Query(ctx, audit.Filter{TenantID: w.tenantID, PatientID: w.patient, UserID: w.gp.AccountID(), Action: audit.ActionRead})
		if err != nil || len(evs) != 1 {
			t.Fatalf("read events = %d, %v; want 1", len(evs), err)
		}
		e := evs[0]
		if !strings.HasPrefix(e.Basis, string(access.BasisCareRelationship)) || e.Role != "professional" || e.Organisation != "Praktijk" ||
			e.UserName != "gp" || e.Assurance != "hoog" || e.Outcome != audit.OutcomeSuccess || len(e.Resources) != 1 {
			t.Fatalf("read event lacks LOG-1 fields: %+v", e)
		}
	})
}

// REQ: AZ-4 — a person reaches only their own record.
func TestPersonReachesOnlyOwnData(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db, 0)
		if _, err := w.decider.Decide(ctx, w.person, access.Request{PatientID: w.patient, Action: access.Read}); err != nil {
			t.Fatalf("own data: %v", err)
		}
		other, _ := w.ids.NewID("p-")
		g, err := w.decider.DecideRegistration(ctx, w.gp, other)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.records.RegisterPatient(ctx, g, w.ids, []byte("other-index"), []byte(`{"resourceType":"Patient","id":"`+other+`"}`)); err != nil {
			t.Fatal(err)
		}
		if _, err := w.decider.Decide(ctx, w.person, access.Request{PatientID: other, Action: access.Read}); !access.IsDenied(err) {
			t.Fatalf("someone else's record: %v; want denial", err)
		}
		// Persons cannot write (least rights, AZ-2).
		if _, err := w.decider.Decide(ctx, w.person, access.Request{PatientID: w.patient, Action: access.Delete}); !access.IsDenied(err) {
			t.Fatalf("person delete: %v; want denial", err)
		}
	})
}

// REQ: AUTH-6 — health data needs assurance Hoog.
func TestHealthDataNeedsHoog(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db, 0)
		spec := w.gp.Spec()
		spec.Assurance = access.Midden
		low := access.NewSubject(spec)
		if _, err := w.decider.Decide(context.Background(), low, access.Request{PatientID: w.patient, Action: access.Read}); !access.IsDenied(err) {
			t.Fatalf("Midden session: %v; want denial", err)
		}
	})
}

// failAuditWrites makes every insert into the access log fail, as a full
// disk or a broken log table would.
func failAuditWrites(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	var stmts []string
	if db.Dialect() == store.SQLite {
		stmts = []string{`CREATE TRIGGER audit_fail BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'log device failure'); END`}
	} else {
		stmts = []string{
			`CREATE FUNCTION audit_fail() RETURNS trigger AS 'BEGIN RAISE EXCEPTION ''log device failure''; END' LANGUAGE plpgsql`,
			`CREATE TRIGGER audit_fail BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_fail()`,
		}
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
}

// REQ: LOG-3 — when the access-log write fails, no health data is returned
// and no write happens.
func TestAuditFailureReleasesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db, 1)
		g, err := w.decider.Decide(ctx, w.gp, access.Request{PatientID: w.patient, Action: access.Read})
		if err != nil {
			t.Fatal(err)
		}
		sg, err := w.decider.Decide(ctx, w.gp, access.Request{PatientID: w.patient, Action: access.Search})
		if err != nil {
			t.Fatal(err)
		}
		cg, err := w.decider.Decide(ctx, w.gp, access.Request{PatientID: w.patient, Action: access.Create})
		if err != nil {
			t.Fatal(err)
		}
		eg, err := w.decider.Decide(ctx, w.gp, access.Request{PatientID: w.patient, Action: access.Export})
		if err != nil {
			t.Fatal(err)
		}
		ug, err := w.decider.Decide(ctx, w.gp, access.Request{PatientID: w.patient, Action: access.Update})
		if err != nil {
			t.Fatal(err)
		}
		failAuditWrites(t, db)
		if all, err := w.records.Everything(ctx, eg); !errors.Is(err, audit.ErrUnavailable) || all != nil {
			t.Fatalf("export with failing log = %d resources, %v", len(all), err)
		}
		if h, err := w.records.History(ctx, g, "Observation", w.obsIDs[0]); !errors.Is(err, audit.ErrUnavailable) || h != nil {
			t.Fatalf("history with failing log = %d versions, %v", len(h), err)
		}
		if v, err := w.records.VRead(ctx, g, "Observation", w.obsIDs[0], 1); !errors.Is(err, audit.ErrUnavailable) || v.Body != nil {
			t.Fatalf("vread with failing log = %q, %v", v.Body, err)
		}
		up := record.Resource{Type: "Observation", ID: w.obsIDs[0], PatientID: w.patient, Categories: []string{"clinical"},
			Body: []byte(`{"resourceType":"Observation","status":"amended"}`)}
		if _, err := w.records.Update(ctx, ug, up, 0, nil); !errors.Is(err, audit.ErrUnavailable) {
			t.Fatalf("update with failing log: %v", err)
		}
		res, err := w.records.Read(ctx, g, "Patient", w.patient)
		if !errors.Is(err, audit.ErrUnavailable) || res.Body != nil {
			t.Fatalf("read with failing log = %q, %v; want no data and ErrUnavailable", res.Body, err)
		}
		found, err := w.records.Search(ctx, sg, record.SearchParams{Type: "Observation"})
		if !errors.Is(err, audit.ErrUnavailable) || found.Resources != nil {
			t.Fatalf("search with failing log = %d results, %v; want none and ErrUnavailable", len(found.Resources), err)
		}
		_, err = w.records.Insert(ctx, cg, record.Resource{Type: "Observation", ID: "new", PatientID: w.patient, Body: []byte(`{"resourceType":"Observation"}`)})
		if !errors.Is(err, audit.ErrUnavailable) {
			t.Fatalf("insert with failing log: %v; want ErrUnavailable", err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM resources WHERE id = 'new'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("insert without its log line left %d rows (%v); want 0 (no partial write)", n, err)
		}
		// A denial cannot be logged either: still a denial, never a grant.
		if _, err := w.decider.Decide(ctx, w.gp2, access.Request{PatientID: w.patient, Action: access.Read}); err == nil {
			t.Fatal("decision without a log line granted access")
		}
	})
}

// REQ: DP-1 — the stored body is ciphertext bound to its row.
func TestBodiesAreSealedAndBoundToTheirRow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db, 2)
		var body []byte
		if err := db.QueryRowContext(ctx, `SELECT body FROM resources WHERE type = 'Patient'`).Scan(&body); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(body), "Geheimnaam") {
			t.Fatal("plaintext name in the stored row")
		}
		// Swap the ciphertexts of two observations: both must fail to open.
		var a, b []byte
		db.QueryRowContext(ctx, `SELECT body FROM resources WHERE id = $1`, w.obsIDs[0]).Scan(&a)
		db.QueryRowContext(ctx, `SELECT body FROM resources WHERE id = $1`, w.obsIDs[1]).Scan(&b)
		db.ExecContext(ctx, `UPDATE resources SET body = $1 WHERE id = $2`, b, w.obsIDs[0])
		g, err := w.decider.Decide(ctx, w.gp, access.Request{PatientID: w.patient, Action: access.Read})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.records.Read(ctx, g, "Observation", w.obsIDs[0]); err == nil {
			t.Fatal("swapped ciphertext opened")
		}
	})
}

// A grant for one patient cannot read another patient's resource, and a
// grant for one action cannot be used for another.
func TestGrantIsScoped(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db, 1)
		sg, err := w.decider.Decide(ctx, w.gp, access.Request{PatientID: w.patient, Action: access.Search})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.records.Read(ctx, sg, "Patient", w.patient); !errors.Is(err, record.ErrWrongGrant) {
			t.Fatalf("search grant used to read: %v", err)
		}
		if _, err := w.records.Read(ctx, access.Grant{}, "Patient", w.patient); !errors.Is(err, record.ErrWrongGrant) {
			t.Fatalf("zero grant: %v", err)
		}
	})
}

// latencies collects per-operation durations for percentiles.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// report adds p50, p99 and operations per second of wall time.
func (l *latencies) report(b *testing.B, unit string, wall time.Duration) {
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	b.ReportMetric(float64(l.d[len(l.d)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(l.d[len(l.d)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(len(l.d))/wall.Seconds(), unit+"/s")
}

func benchDB(b *testing.B, dialect string) *store.DB {
	if dialect == "sqlite" {
		return storetest.SQLite(b)
	}
	return storetest.Postgres(b)
}

// BenchmarkAuthorisedRead measures the one rule end to end, in process:
// Decide, read and decrypt, durable audit append; serially and with
// parallel readers (GOMAXPROCS goroutines).
func BenchmarkAuthorisedRead(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		for _, parallel := range []bool{false, true} {
			name := dialect + "/serial"
			if parallel {
				name = dialect + "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				w := newWorld(b, benchDB(b, dialect), 1)
				ctx := context.Background()
				var lat latencies
				read := func() {
					t0 := time.Now()
					g, err := w.decider.Decide(ctx, w.gp, access.Request{PatientID: w.patient, Action: access.Read})
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := w.records.Read(ctx, g, "Observation", w.obsIDs[0]); err != nil {
						b.Error(err)
						return
					}
					lat.add(time.Since(t0))
				}
				b.ResetTimer()
				start := time.Now()
				if parallel {
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							read()
						}
					})
				} else {
					for i := 0; i < b.N; i++ {
						read()
					}
				}
				lat.report(b, "reads", time.Since(start))
			})
		}
	}
}

// BenchmarkCreate measures Decide + seal + insert with its audit event in
// one transaction, with parallel writers.
func BenchmarkCreate(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			w := newWorld(b, benchDB(b, dialect), 0)
			ctx := context.Background()
			var lat latencies
			var n atomic.Int64
			body := []byte(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},` +
				`"subject":{"reference":"Patient/` + w.patient + `"},"effectiveDateTime":"2026-01-01","valueQuantity":{"value":70.1,"unit":"kg"}}`)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					t0 := time.Now()
					g, err := w.decider.Decide(ctx, w.gp, access.Request{PatientID: w.patient, Action: access.Create, Categories: []string{"clinical"}})
					if err != nil {
						b.Error(err)
						return
					}
					id := fmt.Sprintf("bench-%d", n.Add(1))
					if _, err := w.records.Insert(ctx, g, record.Resource{Type: "Observation", ID: id, PatientID: w.patient, Categories: []string{"clinical"}, Body: body}); err != nil {
						b.Error(err)
						return
					}
					lat.add(time.Since(t0))
				}
			})
			lat.report(b, "creates", time.Since(start))
		})
	}
}

// BenchmarkEverything1000 measures the export of a patient with 1,000
// resources: Decide, open every current version, one durable export event.
func BenchmarkEverything1000(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			w := newWorld(b, benchDB(b, dialect), 999) // and the Patient
			ctx := context.Background()
			var lat latencies
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				g, err := w.decider.Decide(ctx, w.gp, access.Request{PatientID: w.patient, Action: access.Export})
				if err != nil {
					b.Fatal(err)
				}
				all, err := w.records.Everything(ctx, g)
				if err != nil || len(all) != 1000 {
					b.Fatalf("everything: %d, %v", len(all), err)
				}
				lat.add(time.Since(t0))
			}
			lat.report(b, "exports", time.Since(start))
		})
	}
}

// Many searches at once, each missing the key cache, finish: a search
// releases its connection before it asks the database for the patient's
// data key. (It used to hold the result rows open while opening each body,
// so as many concurrent searches as pooled connections deadlocked.)
// REQ: DP-1
func TestConcurrentSearchesWithColdKeyCache(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db, 3)
		master, err := keys.MasterFromEnv("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
		if err != nil {
			t.Fatal(err)
		}
		cold, err := keys.NewKeyring(keys.Config{Master: master, Store: keys.NewSQLStore(db), CacheEntries: -1})
		if err != nil {
			t.Fatal(err)
		}
		recs := record.New(db, cold, w.log, clock.System{})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		const searches = 48 // more than either pool holds (SQLite 8, PostgreSQL 32)
		errs := make(chan error, searches)
		start := make(chan struct{})
		for range searches {
			go func() {
				<-start
				g, err := w.decider.Decide(ctx, w.gp, access.Request{PatientID: w.patient, Action: access.Search})
				if err != nil {
					errs <- err
					return
				}
				p, err := recs.Search(ctx, g, record.SearchParams{Type: "Observation", Count: 10})
				if err == nil && p.Total != 3 {
					err = fmt.Errorf("total %d, want 3", p.Total)
				}
				errs <- err
			}()
		}
		close(start)
		for range searches {
			if err := <-errs; err != nil {
				t.Fatalf("search: %v", err)
			}
		}
	})
}

// A search and an export see each resource once, in its newest version,
// newest change first; a deleted resource is gone from both, and its
// history keeps every version.
// REQ: EX-2, DP-7
func TestSearchShowsNewestVersions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db, 4)
		decide := func(a access.Action) access.Grant {
			t.Helper()
			g, err := w.decider.Decide(ctx, w.gp, access.Request{PatientID: w.patient, Action: a})
			if err != nil {
				t.Fatal(err)
			}
			return g
		}
		update := func(id string, n int) {
			t.Helper()
			for v := range n {
				w.clock.Advance(time.Minute)
				body := fmt.Sprintf(`{"resourceType":"Observation","id":%q,"status":"amended","note":[{"text":"v%d"}]}`, id, v)
				if _, err := w.records.Update(ctx, decide(access.Update), record.Resource{Type: "Observation", ID: id, PatientID: w.patient,
					Categories: []string{"clinical"}, Body: []byte(body)}, 0, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		update("obs-1", 3)
		update("obs-3", 1)
		if _, err := w.records.Delete(ctx, decide(access.Delete), "Observation", "obs-2"); err != nil {
			t.Fatal(err)
		}
		page, err := w.records.Search(ctx, decide(access.Search), record.SearchParams{Type: "Observation", Count: 100})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range page.Resources {
			got = append(got, fmt.Sprintf("%s/%d", r.ID, r.Version))
		}
		// obs-3 changed last, then obs-1; obs-0 was never changed.
		if want := []string{"obs-3/2", "obs-1/4", "obs-0/1"}; !slices.Equal(got, want) || page.Total != 3 {
			t.Fatalf("search: %v (total %d); want %v", got, page.Total, want)
		}
		all, err := w.records.Everything(ctx, decide(access.Export))
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, r := range all {
			n[r.Type+"/"+r.ID]++
			if r.ID == "obs-1" && (r.Version != 4 || !strings.Contains(string(r.Body), "v2")) {
				t.Fatalf("export: obs-1 in version %d: %s", r.Version, r.Body)
			}
		}
		if n["Observation/obs-2"] != 0 || n["Observation/obs-1"] != 1 || len(all) != 4 { // the Patient and three Observations
			t.Fatalf("export: %v", n)
		}
	})
}
