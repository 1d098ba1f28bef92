package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/config"
	"github.com/zorgkluis/zorgkluis/internal/record"
)

const patientsUsage = `Usage: zorgkluis patients ACTION [flags]

Actions:
  backfill-names   give every patient written before the sealed display names
                   (migration 00520) their name, so the security officer's log
                   pages name them instead of "patiënt zonder naam": each
                   unnamed patient's Patient resource is opened with the
                   patient's key, the name derived and sealed under that key.
                   Nothing of any record is shown; the run is logged as one
                   event with its counts. A shredded patient is skipped.
                   Safe to repeat and to run beside serving replicas: a name
                   that exists is never overwritten. serve runs it once at
                   start-up too, in the background, when patients are unnamed.

Flags are those of "zorgkluis migrate" (--data, --database, --config).`

// batchNames is the backfill's batch: patients read, opened and named per
// transaction.
const batchNames = 200

func runPatients(ctx context.Context, e env, args []string) int {
	if len(args) == 0 || isHelpArg(args[0]) || args[0] == "help" {
		fmt.Fprintln(e.stdout, patientsUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] != "backfill-names" {
		fmt.Fprintf(e.stderr, "zorgkluis patients: unknown action %q\n\n%s\n", args[0], patientsUsage)
		return 2
	}
	fail := func(code int, err error) int {
		fmt.Fprintln(e.stderr, "zorgkluis patients backfill-names:", err)
		return code
	}
	cfg, err := config.Load("patients backfill-names", args[1:], e.getenv, e.stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return fail(2, err)
	}
	// An existing installation only: a new master key or an empty database
	// would name nobody, silently.
	if err := haveDatabase(cfg); err != nil {
		return fail(1, err)
	}
	if _, err := loadExistingMaster(cfg); err != nil {
		return fail(1, err)
	}
	a, err := openApp(ctx, cfg, newLogger(env{stdout: e.stdout, stderr: discard{}, getenv: e.getenv}, "error"))
	if err != nil {
		return fail(1, err)
	}
	defer a.Close()
	var progress func(done, total int)
	if isTerminal(e.stderr) {
		var last time.Time
		progress = func(done, total int) {
			if now := time.Now(); now.Sub(last) >= 200*time.Millisecond || done == total {
				last = now
				fmt.Fprintf(e.stderr, "\rnaming patients: %d of %d          ", done, total)
			}
		}
	}
	start := time.Now()
	ev := operatorEvent("zorgkluis patients backfill-names")
	res, berr := backfillNames(ctx, a, ev, progress, true)
	if progress != nil {
		fmt.Fprintln(e.stderr)
	}
	if errors.Is(berr, errNotLogged) {
		return fail(1, berr)
	}
	fmt.Fprintf(e.stdout, "patient names: %d named, %d already named, %d skipped (shredded), %d without a name in their Patient resource, %d damaged; %d patients, in %s\n",
		res.Named, res.Already, res.Shredded, res.Nameless, res.Damaged, res.Patients, time.Since(start).Round(time.Millisecond))
	if berr != nil {
		return fail(1, berr)
	}
	return 0
}

// errNotLogged means names were (perhaps) written but the run's event is
// not in the log.
var errNotLogged = errors.New("the run is not logged")

// backfillNames runs record.BackfillNames and logs the run as one event of
// base, with its counts, durably before it returns: success when it
// finished, failed (with the reason) when it did not. The run opens Patient
// resources only to seal their names again and releases nothing, so it is
// logged once as the platform's maintenance, not per patient as an access.
// Unless always, a run that wrote nothing and did not fail (or was only
// stopped) is not logged: serve's start-up run finds the shredded patients
// unnamed on every start.
func backfillNames(ctx context.Context, a *app, base audit.Event, progress func(done, total int), always bool) (record.BackfillResult, error) {
	res, err := a.records.BackfillNames(ctx, batchNames, progress)
	if !always && res.Named == 0 && (err == nil || ctx.Err() != nil) {
		return res, err
	}
	ev := base
	ev.Action, ev.Outcome, ev.Basis = audit.ActionCreate, audit.OutcomeSuccess, "maintenance"
	ev.Resources = []string{"Patient"}
	ev.Query = fmt.Sprintf("backfill-names: %d named, %d already named, %d shredded, %d nameless, %d damaged, of %d patients",
		res.Named, res.Already, res.Shredded, res.Nameless, res.Damaged, res.Patients)
	if err != nil {
		ev.Outcome, ev.Reason = audit.OutcomeFailed, err.Error()
	}
	// Logged even when stopped: what was written must be on record.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, lerr := a.audit.Append(lctx, ev); lerr != nil {
		return res, fmt.Errorf("%w: %w (%d named)", errNotLogged, lerr, res.Named)
	}
	return res, err
}

// startNameBackfill names, once, in the background, the patients written
// before the sealed names (00520), as `zorgkluis patients backfill-names`
// does; wait returns when it is done (serve's stop cancels it first). Two
// replicas starting together both try: each name is inserted only where
// none exists, so the second finds them named and writes nothing.
func startNameBackfill(ctx context.Context, a *app, log *slog.Logger) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ev := operatorEvent("zorgkluis serve: patient names")
		ev.UserID, ev.UserName = "system:backfill-names", "patient names backfill"
		res, err := backfillNames(ctx, a, ev, nil, false)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("patient names backfill", "err", err, "named", res.Named)
		case res.Named > 0 || res.Shredded > 0 || res.Nameless > 0:
			log.Info("patient names backfill", "named", res.Named, "already", res.Already, "shredded", res.Shredded, "nameless", res.Nameless)
		}
	}()
	return func() { <-done }
}

// haveDatabase refuses a SQLite file that does not exist (store.Open would
// create an empty one).
func haveDatabase(cfg config.Config) error {
	u := cfg.DatabaseURL
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		return nil
	}
	path := strings.TrimPrefix(u, "sqlite:")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no database at %s (set --data or --database as for serve): %w", path, err)
	}
	return nil
}
