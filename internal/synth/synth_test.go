package synth_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/nlid"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/synth"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

var postcodeRE = regexp.MustCompile(`^[1-9][0-9]{3} [A-Z]{2}$`)

// REQ: ID-4 — every generated patient has a valid BSN (elfproef), unique
// within the data set; the same seed gives the same people and values.
func TestSourceIsDeterministicAndValid(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	a, b, c := synth.NewSource(7), synth.NewSource(7), synth.NewSource(8)
	seen := map[string]bool{}
	differs := false
	for i := range 3000 {
		pa, err := a.Person(now)
		if err != nil {
			t.Fatal(err)
		}
		pb, _ := b.Person(now)
		pc, _ := c.Person(now)
		if pa != pb {
			t.Fatalf("draw %d: same seed, different people: %+v vs %+v", i, pa, pb)
		}
		differs = differs || pa != pc
		if !nlid.ValidBSN(pa.BSN) || seen[pa.BSN] {
			t.Fatalf("draw %d: BSN %s invalid or repeated", i, pa.BSN)
		}
		seen[pa.BSN] = true
		born, err := time.Parse("2006-01-02", pa.BirthDate)
		if err != nil || born.After(now) || born.Before(now.AddDate(-97, 0, 0)) {
			t.Fatalf("draw %d: birth date %q", i, pa.BirthDate)
		}
		if !postcodeRE.MatchString(pa.PostalCode) || pa.Given == "" || pa.Family == "" || (pa.Gender != "female" && pa.Gender != "male") {
			t.Fatalf("draw %d: implausible person %+v", i, pa)
		}
		ma, mb := a.Measurement(), b.Measurement()
		if ma != mb {
			t.Fatalf("draw %d: same seed, different measurements", i)
		}
		if ma.Code == "" || ma.Unit == "" || ma.Value <= 0 || ma.DaysAgo < 0 || ma.DaysAgo > 730 {
			t.Fatalf("draw %d: implausible measurement %+v", i, ma)
		}
	}
	if !differs {
		t.Fatal("seeds 7 and 8 gave the same people")
	}
}

type services struct {
	deps synth.Deps
	db   *store.DB
}

func newServices(t testing.TB, db *store.DB) services {
	t.Helper()
	k := testkit.New(t, db)
	return services{db: db, deps: synth.Deps{IDs: k.IDs, Authn: k.Authn, Access: k.Access, Records: k.Records, Keys: k.Keys,
		Clock: k.Clock, Rand: rand.Reader}}
}

// REQ: LOG-1, DP-1 — generated data goes through the real services: it is
// readable only through an access decision, sealed at rest, and every
// write is in the access log; the generated log-ins work with two factors.
func TestGenerateWritesReadableAuditedRecords(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newServices(t, db)
		done := 0
		cred, err := synth.Generate(ctx, s.deps, synth.Options{Seed: 3, Patients: 7, ResourcesPerPatient: 3, Professionals: 2,
			Persons: 2, Workers: 3, Batch: 3, Progress: func(n int) { done = n }}) // batches of 3, 3 and 1
		if err != nil {
			t.Fatal(err)
		}
		if cred.Patients != 7 || done != 7 || len(cred.Professionals) != 2 || len(cred.Persons) != 2 {
			t.Fatalf("credentials: %d patients (progress %d), %d professionals, %d persons", cred.Patients, done, len(cred.Professionals), len(cred.Persons))
		}
		if n := len(cred.Professionals[0].Patients) + len(cred.Professionals[1].Patients); n != 7 {
			t.Fatalf("relationships cover %d patients; want 7", n)
		}
		for _, prof := range cred.Professionals {
			subj := access.NewSubject(access.SubjectSpec{AccountID: prof.AccountID, TenantID: cred.TenantID, Role: access.RoleProfessional, Assurance: access.Hoog})
			for _, pid := range prof.Patients {
				g, err := s.deps.Access.Decide(ctx, subj, access.Request{PatientID: pid, Action: access.Read, Purpose: "TREAT"})
				if err != nil {
					t.Fatalf("professional with a relationship denied: %v", err)
				}
				res, err := s.deps.Records.Read(ctx, g, "Patient", pid)
				if err != nil {
					t.Fatal(err)
				}
				var p struct {
					Identifier []struct{ System, Value string }
					Name       []struct{ Family string }
				}
				if err := json.Unmarshal(res.Body, &p); err != nil || len(p.Identifier) != 1 || p.Identifier[0].System != nlid.SystemBSN ||
					!nlid.ValidBSN(p.Identifier[0].Value) || p.Name[0].Family == "" {
					t.Fatalf("patient %s: %v %s", pid, err, res.Body)
				}
				var obs, plain int
				if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM resources WHERE patient_id = $1 AND type = 'Observation'`, pid).Scan(&obs); err != nil {
					t.Fatal(err)
				}
				// Sealed at rest: the BSN does not occur in any stored body.
				if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM resources WHERE patient_id = $1 AND body LIKE $2`, pid, "%"+p.Identifier[0].Value+"%").Scan(&plain); err != nil {
					t.Fatal(err)
				}
				if obs != 3 || plain != 0 {
					t.Fatalf("patient %s: %d Observations (want 3), %d bodies with the BSN in clear", pid, obs, plain)
				}
			}
		}
		var creates int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_events WHERE action = 'create' AND outcome = 'success'`).Scan(&creates); err != nil {
			t.Fatal(err)
		}
		if creates != 7*4 {
			t.Fatalf("access log holds %d create events; want %d", creates, 7*4)
		}
		// A generated person logs on with password and TOTP and reads their own record.
		pers := cred.Persons[0]
		attempt, err := s.deps.Authn.Begin(ctx, pers.Username, pers.Password, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		code, err := totp.GenerateCodeCustom(pers.TOTPSecret, time.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			t.Fatal(err)
		}
		if _, sess, err := s.deps.Authn.CompleteTOTP(ctx, attempt, code, "127.0.0.1", ""); err != nil || sess.Assurance < access.Hoog {
			t.Fatalf("generated person cannot log on: %v (assurance %v)", err, sess.Assurance)
		}
		g, err := s.deps.Access.Decide(ctx, access.NewSubject(access.SubjectSpec{AccountID: pers.AccountID, TenantID: cred.TenantID, Role: access.RolePerson, Assurance: access.Hoog}),
			access.Request{PatientID: pers.Patients[0], Action: access.Read, Purpose: "TREAT"})
		if err != nil {
			t.Fatalf("person reading own record: %v", err)
		}
		if _, err := s.deps.Records.Read(ctx, g, "Patient", pers.Patients[0]); err != nil {
			t.Fatal(err)
		}
	})
}

// A bounded run stops cleanly and reports what it wrote.
func TestGenerateStopsWhenContextEnds(t *testing.T) {
	s := newServices(t, storetest.SQLite(t))
	ctx, cancel := context.WithCancel(context.Background())
	cred, err := synth.Generate(ctx, s.deps, synth.Options{Seed: 1, Patients: 100000, ResourcesPerPatient: 1, Professionals: 1, Persons: 1,
		Progress: func(n int) {
			if n >= 5 {
				cancel()
			}
		}})
	if err != context.Canceled {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
	if cred.Patients < 1 || cred.Patients >= 100000 || len(cred.Professionals[0].Patients) != cred.Patients {
		t.Fatalf("bounded run reported %d patients", cred.Patients)
	}
}
