package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/config"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/synth"
)

// runGenerate fills a database with synthetic patients, professionals and
// Observations for tests, benchmarks and zkload, through the real services.
func runGenerate(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	def := config.Default()
	data := fs.String("data", def.DataDir, "data directory (database, keys)")
	dbURL := fs.String("database", e.getenv("ZK_DATABASE_URL"), "database: postgres://... URL, or a SQLite file (default DATA/zorgkluis.db; env ZK_DATABASE_URL)")
	o := synth.Options{}
	fs.IntVar(&o.Patients, "patients", 1000, "patients to generate")
	fs.IntVar(&o.ResourcesPerPatient, "resources-per-patient", 20, "Observations per patient")
	fs.IntVar(&o.Professionals, "professionals", 20, "professional accounts; patients are shared out among them as care relationships")
	fs.IntVar(&o.Persons, "persons", 0, "person accounts for the first patients (default: as many as professionals)")
	fs.IntVar(&o.Workers, "workers", 4, "concurrent writers")
	fs.IntVar(&o.Batch, "batch", 100, "patients per transaction (each resource is still decided, sealed and logged on its own)")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the synthetic content (same seed, same people and values)")
	credPath := fs.String("credentials", "", "where to write the log-ins for zkload (default DATA/synth-credentials.json, mode 0600)")
	maxDur := fs.Duration("max-duration", 0, "stop after this long and keep what was written (0: no limit)")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: zorgkluis generate [flags]\n\nWrites a synthetic care organisation (never use on a production database):")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || o.Patients < 0 || o.Professionals < 1 || o.ResourcesPerPatient < 0 || o.Batch < 1 {
		fmt.Fprintln(e.stderr, "zorgkluis generate: need --patients ≥ 0, --professionals ≥ 1, --resources-per-patient ≥ 0, --batch ≥ 1 and no arguments")
		return 2
	}
	cfg := def
	cfg.DataDir, cfg.DatabaseURL = *data, *dbURL
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = filepath.Join(cfg.DataDir, "zorgkluis.db")
	}
	if *credPath == "" {
		*credPath = filepath.Join(cfg.DataDir, "synth-credentials.json")
	}
	log := newLogger(e, "warn")
	// A bulk load: commits are not synced one by one (the data set is made
	// durable once, at the end). Everything else, sealing and the access
	// log included, is as in serve.
	a, err := openApp(ctx, cfg, log, store.BulkLoad())
	if err != nil {
		fmt.Fprintln(e.stderr, "zorgkluis generate:", err)
		return 1
	}
	defer a.Close()
	// Sequence the access log while writing, as serve does, so the data set
	// ends with every event in its tenant's signed tree.
	stopSequencer := startSequencer(ctx, a)

	gctx := ctx
	if *maxDur > 0 {
		var cancel context.CancelFunc
		gctx, cancel = context.WithTimeout(ctx, *maxDur)
		defer cancel()
	}
	start := time.Now()
	o.Progress = func(done int) {
		el := time.Since(start).Seconds()
		rate := float64(done) / max(el, 1e-9)
		eta := "?"
		if rate > 0 {
			eta = (time.Duration(float64(o.Patients-done)/rate) * time.Second).Round(time.Second).String()
		}
		fmt.Fprintf(e.stderr, "\rgenerate: %d/%d patients (%.1f patients/s, %.0f resources/s), eta %s   ",
			done, o.Patients, rate, rate*float64(o.ResourcesPerPatient+1), eta)
	}
	cred, err := synth.Generate(gctx, synth.Deps{IDs: a.ids, Authn: a.authn, Access: a.access, Records: a.records,
		Keys: a.keys, Clock: a.clock, Rand: rand.Reader}, o)
	fmt.Fprintln(e.stderr)
	stopSequencer()
	if ferr := a.db.Flush(context.WithoutCancel(ctx)); ferr != nil {
		fmt.Fprintln(e.stderr, "zorgkluis generate:", ferr)
		return 1
	}
	bounded := err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil
	if err != nil && !bounded {
		fmt.Fprintln(e.stderr, "zorgkluis generate:", err)
		if cred.TenantID == "" {
			return 1
		}
	}
	b, jerr := json.MarshalIndent(cred, "", "  ")
	if jerr == nil {
		jerr = os.WriteFile(*credPath, b, 0o600)
	}
	if jerr != nil {
		fmt.Fprintln(e.stderr, "zorgkluis generate: write credentials:", jerr)
		return 1
	}
	el := time.Since(start)
	fmt.Fprintf(e.stdout, "generated %d patients × (1 + %d) resources, %d professionals, %d persons in %s (%.1f patients/s, %.0f resources/s) on %s; log-ins in %s\n",
		cred.Patients, o.ResourcesPerPatient, len(cred.Professionals), len(cred.Persons), el.Round(time.Millisecond),
		float64(cred.Patients)/el.Seconds(), float64(cred.Patients*(o.ResourcesPerPatient+1))/el.Seconds(), a.db.Dialect(), *credPath)
	if bounded {
		fmt.Fprintf(e.stdout, "stopped by --max-duration %s after %d of %d patients\n", *maxDur, cred.Patients, o.Patients)
	}
	if err != nil && !bounded {
		return 1
	}
	return 0
}
