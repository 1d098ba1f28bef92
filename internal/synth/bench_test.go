package synth_test

import (
	"context"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/synth"
)

// BenchmarkGenerate measures the service-level write path: one op is one
// patient registered (Patient resource, blind index, relationship) with 20
// Observations, each sealed and logged, by 4 concurrent writers.
//
//	go test -run '^$' -bench BenchmarkGenerate -benchtime 200x ./internal/synth
func BenchmarkGenerate(b *testing.B) {
	for _, e := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		b.Run(e.name, func(b *testing.B) {
			s := newServices(b, e.open(b))
			b.ResetTimer()
			cred, err := synth.Generate(context.Background(), s.deps, synth.Options{Seed: 1, Patients: b.N, ResourcesPerPatient: 20,
				Professionals: 4, Persons: 1, Workers: 4})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(cred.Patients*21)/b.Elapsed().Seconds(), "resources/s")
		})
	}
}
