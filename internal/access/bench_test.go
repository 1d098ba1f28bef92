package access

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// The benchmark population: 100,000 patients of one tenant, 10,000
// professionals, 1,000,000 care relationships (ten per patient).
const (
	benchPatients = 100_000
	benchProfs    = 10_000
	benchRels     = 1_000_000
	benchTenant   = "t-bench"
)

func benchPatient(p int) string { return fmt.Sprintf("p-bench-%07d", p) }
func benchProf(a int) string    { return fmt.Sprintf("a-bench-%05d", a) }

// benchRel returns the professional and patient of relationship k; each
// patient's ten relationships are with ten different professionals.
func benchRel(k int) (prof, patient int) {
	p, j := k%benchPatients, k/benchPatients
	return (p*31 + j*997) % benchProfs, p
}

// BenchmarkDecide measures Decide for a professional with a care
// relationship (the common, allowed path) among 100,000 patients and
// 1,000,000 relationships, on SQLite and PostgreSQL, and reports the p50
// and p99 latency of single decisions. The loaded database is kept between
// runs (a file under os.TempDir for SQLite, a schema for PostgreSQL), keyed
// by the population size and schema version.
//
//	go test ./internal/access -run '^$' -bench BenchmarkDecide -benchtime 20000x
func BenchmarkDecide(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			db := benchDB(b, engine)
			c := clock.NewFake(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
			d := NewDecider(db, audit.New(db, c, rand.Reader), c)
			ctx := context.Background()
			rng := mrand.New(mrand.NewPCG(1, 2))
			durs := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				k := rng.IntN(benchRels)
				if k%10 == 9 { // ended: pick its neighbour, which is current
					k--
				}
				prof, p := benchRel(k)
				s := NewSubject(SubjectSpec{AccountID: benchProf(prof), TenantID: benchTenant, Role: RoleProfessional, Assurance: Hoog})
				start := time.Now()
				g, err := d.Decide(ctx, s, Request{PatientID: benchPatient(p), Action: Read, Categories: []string{fhir.CategoryClinical}})
				durs = append(durs, time.Since(start))
				if err != nil || g.Basis() != BasisCareRelationship {
					b.Fatalf("decide: %v", err)
				}
			}
			b.StopTimer()
			sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
			pct := func(q float64) float64 {
				return float64(durs[min(len(durs)-1, int(q*float64(len(durs))))].Microseconds())
			}
			b.ReportMetric(pct(0.50), "p50-µs")
			b.ReportMetric(pct(0.99), "p99-µs")
		})
	}
}

// benchDB returns the migrated, loaded benchmark database of engine.
func benchDB(b *testing.B, engine string) *store.DB {
	b.Helper()
	ctx := context.Background()
	key := fmt.Sprintf("zk_bench_access_v2_%d_%d", benchPatients, benchRels)
	var u string
	switch engine {
	case "sqlite":
		u = filepath.Join(os.TempDir(), key+".db")
	default:
		dsn := os.Getenv("ZK_TEST_POSTGRES_DSN")
		if dsn == "" {
			dsn = storetest.DefaultPostgresDSN
		}
		if os.Getenv("ZK_TEST_POSTGRES") == "off" {
			b.Skip("PostgreSQL switched off by ZK_TEST_POSTGRES=off")
		}
		admin, err := store.Open(ctx, dsn)
		if err != nil {
			b.Fatalf("PostgreSQL: %v", err)
		}
		if _, err := admin.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+key); err != nil {
			b.Fatal(err)
		}
		admin.Close()
		pu, err := url.Parse(dsn)
		if err != nil {
			b.Fatal(err)
		}
		q := pu.Query()
		q.Set("search_path", key)
		pu.RawQuery = q.Encode()
		u = pu.String()
	}
	db, err := store.Open(ctx, u)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM care_relationships WHERE tenant_id = $1`, benchTenant).Scan(&n); err != nil {
		b.Fatal(err)
	}
	if n == benchRels {
		return db
	}
	start := time.Now()
	if err := loadBench(ctx, db); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: loaded %d patients and %d relationships in %s", engine, benchPatients, benchRels, time.Since(start).Round(time.Second))
	return db
}

// loadBench fills the database with multi-row INSERTs, in one transaction.
func loadBench(ctx context.Context, db *store.DB) error {
	now := clock.Micros(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	return db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM account_roles WHERE account_id LIKE '%bench%'`); err != nil {
			return err
		}
		for _, t := range []string{"care_relationships", "patients", "accounts", "tenants"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+t+` WHERE id LIKE '%bench%'`); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ($1, 'Benchmark', $2)`, benchTenant, now); err != nil {
			return err
		}
		insert := func(head string, cols, n int, row func(i int) []any) error {
			const chunk = 100 // the SQLite driver looks parameters up linearly: small statements load faster
			for start := 0; start < n; start += chunk {
				m := min(chunk, n-start)
				args := make([]any, 0, m*cols)
				for i := start; i < start+m; i++ {
					args = append(args, row(i)...)
				}
				if _, err := tx.ExecContext(ctx, head+store.Values(tx, m, cols), args...); err != nil {
					return fmt.Errorf("%s: %w", head, err)
				}
			}
			return nil
		}
		if err := insert(`INSERT INTO accounts (id, tenant_id, kind, username, display_name, created_at) VALUES `, 6, benchProfs, func(i int) []any {
			return []any{benchProf(i), benchTenant, "professional", benchProf(i), "Bench " + benchProf(i), now}
		}); err != nil {
			return err
		}
		// Decide checks that the account holds the role it acts in.
		if err := insert(`INSERT INTO account_roles (account_id, role, granted_by, granted_at) VALUES `, 4, benchProfs, func(i int) []any {
			return []any{benchProf(i), "professional", "bench", now}
		}); err != nil {
			return err
		}
		if err := insert(`INSERT INTO patients (id, tenant_id, created_at) VALUES `, 3, benchPatients, func(i int) []any {
			return []any{benchPatient(i), benchTenant, now}
		}); err != nil {
			return err
		}
		return insert(`INSERT INTO care_relationships (id, tenant_id, professional_id, patient_id, kind, start_at, end_at, recorded_by, recorded_at) VALUES `,
			9, benchRels, func(k int) []any {
				prof, p := benchRel(k)
				var end any
				if k%10 == 9 { // some relationships ended long ago
					end = now + 1
				}
				return []any{fmt.Sprintf("r-bench-%07d", k), benchTenant, benchProf(prof), benchPatient(p), "treatment", now - 1000, end, "bench", now}
			})
	})
}
