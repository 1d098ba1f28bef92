package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/config"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// auditRetentionUsage is the part of the audit help about retention.
const auditRetentionUsage = `  purge              remove the events whose retention has ended (LOG-6): access log
                     after 5 years, technical log (log-on) after --technical-retention,
                     the MedMij chain log (apps' exchange steps) after --chain-retention,
                     keeping only its counts per month, step, app and outcome.
                     Events under a legal hold and events not yet in a signed checkpoint
                     stay; leaf and tree hashes and checkpoints stay, so verify still
                     checks the whole log. The purge is itself logged. On PostgreSQL run it
                     as the database owner: the application role may not delete events.
                     --technical-retention D   default: the retention in force (8760h, 1 year, until
                                               changed), at least 720h; never shorter than in force
                     --chain-retention D       likewise (17544h, 24 months), 17544h to 26280h
                     --dry-run                 count what would go, change nothing
                     --json                    print the counts as JSON
  retention          the retention in force; changing it takes two operators (four eyes, GOV-1):
                     retention propose --technical-retention D --chain-retention D
                     retention approve ID | retention reject ID   (as another operating-system user)
  hold EVENT_ID...   place a legal hold on events for a complaint or proceeding and print
                     the held lines with their inclusion proofs as JSON. Held events are
                     not purged until the hold ends. The reading is logged per line.
                     --tenant T --reason R --until YYYY-MM-DD (the hold ends at the start
                     of that day, UTC; at most 10 years ahead)`

// runAuditRetention runs the purge and hold actions, which take flags of
// their own; ok is false for any other action.
func runAuditRetention(ctx context.Context, e env, action string, args []string) (code int, ok bool) {
	switch action {
	case "purge":
		return auditPurge(ctx, e, args), true
	case "hold":
		return auditHold(ctx, e, args), true
	case "retention":
		return auditRetention(ctx, e, args), true
	}
	return 0, false
}

// changeRetention is the four-eyes kind (GOV-1) of the installation's
// retention (LOG-6): proposed by one operator, approved by another, both
// through `zorgkluis audit retention`.
const changeRetention = "audit.retention"

type retentionChange struct {
	TechnicalSec int64 `json:"technical_seconds"`
	ChainSec     int64 `json:"chain_seconds"`
}

// registerRetention gives change the retention's handler: the approval
// stores the policy in audit's table in its transaction.
func registerRetention(c *change.Service) {
	c.Register(changeRetention, change.Handler{
		Approvers: []string{"platform-admin"},
		Apply: func(ctx context.Context, tx *store.Tx, r change.Request, by change.Actor) error {
			var p retentionChange
			if err := json.Unmarshal(r.Payload, &p); err != nil {
				return fmt.Errorf("retention change: %w", err)
			}
			return audit.SetRetentionIn(ctx, tx, audit.RetentionPolicy{Technical: time.Duration(p.TechnicalSec) * time.Second,
				Chain: time.Duration(p.ChainSec) * time.Second}, r.ProposedBy+" approved by "+by.AccountID, *r.DecidedAt)
		},
	})
}

// auditRetention shows the retention in force, or proposes, approves or
// rejects a change of it.
func auditRetention(ctx context.Context, e env, args []string) int {
	fail := func(code int, err error) int {
		fmt.Fprintf(e.stderr, "zorgkluis audit retention: %v\n", err)
		return code
	}
	fs := flag.NewFlagSet("audit retention", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	policy := audit.DefaultRetention()
	fs.DurationVar(&policy.Technical, "technical-retention", 0, "")
	fs.DurationVar(&policy.Chain, "chain-retention", 0, "")
	cfgArgs := configFlags(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return fail(auditUsageErr, err)
	}
	if len(pos) == 0 {
		pos = []string{"show"}
	}
	action := pos[0]
	need := map[string]int{"show": 1, "propose": 1, "approve": 2, "reject": 2}
	if n, ok := need[action]; !ok || len(pos) != n {
		return fail(auditUsageErr, fmt.Errorf("usage: retention [propose --technical-retention D --chain-retention D | approve ID | reject ID]"))
	}
	cfg, err := config.Load("audit retention", cfgArgs(), e.getenv, e.stderr)
	if err != nil {
		return fail(auditUsageErr, err)
	}
	db, err := openAuditDB(ctx, cfg)
	if err != nil {
		return fail(auditFailed, err)
	}
	defer db.Close()
	l := audit.New(db, clock.System{}, rand.Reader)
	defer l.Close()
	inForce, err := l.Retention(ctx)
	if err != nil {
		return fail(auditFailed, err)
	}
	changes := change.New(change.Config{DB: db, Audit: l, Clock: clock.System{}, Expiry: cfg.ChangeExpiry})
	registerRetention(changes)
	switch action {
	case "show":
		fmt.Fprintf(e.stdout, "retention in force: access log %v, technical log %v, chain log %v\n", inForce.Access, inForce.Technical, inForce.Chain)
	case "propose":
		if policy.Technical == 0 {
			policy.Technical = inForce.Technical
		}
		if policy.Chain == 0 {
			policy.Chain = inForce.Chain
		}
		if err := policy.Validate(); err != nil {
			return fail(auditUsageErr, err)
		}
		var req change.Request
		err := db.Tx(ctx, func(tx *store.Tx) error {
			var err error
			req, err = changes.Propose(ctx, tx, operatorActor(), change.Proposal{Kind: changeRetention,
				Summary: fmt.Sprintf("retention: technical log %v, chain log %v (now %v and %v)", policy.Technical, policy.Chain, inForce.Technical, inForce.Chain),
				Payload: retentionChange{TechnicalSec: int64(policy.Technical / time.Second), ChainSec: int64(policy.Chain / time.Second)}})
			return err
		})
		if err != nil {
			return fail(auditFailed, err)
		}
		fmt.Fprintf(e.stdout, "request %s: %s; pending until %s; another operator approves it: zorgkluis audit retention approve %s (four eyes)\n",
			req.ID, req.Summary, req.ExpiresAt.UTC().Format(time.RFC3339), req.ID)
	case "approve", "reject":
		r, err := changes.DecideKind(ctx, operatorActor(), changeRetention, pos[1], action == "approve", "")
		if err != nil {
			code := auditFailed
			if errors.Is(err, change.ErrSelf) || errors.Is(err, change.ErrNotFound) || errors.Is(err, change.ErrDecided) || errors.Is(err, change.ErrExpired) ||
				errors.Is(err, change.ErrInvalid) || errors.Is(err, change.ErrForbidden) {
				code = auditUsageErr
			}
			return fail(code, err)
		}
		fmt.Fprintf(e.stdout, "request %s %s\n", r.ID, r.Status)
	}
	return auditOK
}

// parseInterleaved parses fs from args where flags and positional arguments
// may mix, and returns the positional ones. The configuration flags --data,
// --database and --config are defined on fs by the caller and forwarded.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// configFlags defines --data, --database and --config on fs and returns a
// function giving them back as arguments for config.Load.
func configFlags(fs *flag.FlagSet) func() []string {
	names := []string{"data", "database", "config"}
	vals := make([]*string, len(names))
	for i, n := range names {
		vals[i] = fs.String(n, "", "")
	}
	return func() []string {
		var out []string
		fs.Visit(func(f *flag.Flag) {
			for i, n := range names {
				if f.Name == n {
					out = append(out, "--"+n+"="+*vals[i])
				}
			}
		})
		return out
	}
}

func auditPurge(ctx context.Context, e env, args []string) int {
	fail := func(code int, err error) int {
		fmt.Fprintf(e.stderr, "zorgkluis audit purge: %v\n", err)
		return code
	}
	fs := flag.NewFlagSet("audit purge", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	policy := audit.DefaultRetention()
	fs.DurationVar(&policy.Technical, "technical-retention", audit.DefaultTechnicalRetention, "")
	fs.DurationVar(&policy.Chain, "chain-retention", audit.MinChainRetention, "")
	set := map[string]bool{}
	dry := fs.Bool("dry-run", false, "")
	asJSON := fs.Bool("json", false, "")
	cfgArgs := configFlags(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return fail(auditUsageErr, err)
	}
	if len(pos) > 0 {
		return fail(auditUsageErr, fmt.Errorf("unexpected argument %q", pos[0]))
	}
	if err := policy.Validate(); err != nil {
		return fail(auditUsageErr, err)
	}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cfg, err := config.Load("audit purge", cfgArgs(), e.getenv, e.stderr)
	if err != nil {
		return fail(auditUsageErr, err)
	}
	l, closeLog, err := openAuditLog(ctx, cfg)
	if err != nil {
		return fail(auditFailed, err)
	}
	defer closeLog()
	// The retention in force is changed only by two operators (GOV-1); a
	// purge may keep longer, never shorter.
	inForce, err := l.Retention(ctx)
	if err != nil {
		return fail(auditFailed, err)
	}
	for _, d := range []struct {
		name          string
		given, stored *time.Duration
	}{{"technical-retention", &policy.Technical, &inForce.Technical}, {"chain-retention", &policy.Chain, &inForce.Chain}} {
		switch {
		case !set[d.name]:
			*d.given = *d.stored
		case *d.given < *d.stored:
			return fail(auditUsageErr, fmt.Errorf("--%s %v is shorter than the retention in force (%v); a shorter one needs "+
				"zorgkluis audit retention propose and a second operator's approval (four eyes)", d.name, *d.given, *d.stored))
		}
	}

	what := fmt.Sprintf("retention purge: access %v, technical %v, chain %v", policy.Access, policy.Technical, policy.Chain)
	ev := operatorEvent("zorgkluis audit purge")
	ev.Action, ev.Outcome, ev.Basis, ev.Resources, ev.Query = audit.ActionDelete, audit.OutcomeSuccess, "retention", []string{"AuditEvent"}, what
	if *dry {
		// A dry run only reads the log, which is access to it all the same.
		ev.Action, ev.Query = audit.ActionLogRead, what+" (dry run)"
	}
	// Logged before anything is removed: no purge goes unrecorded.
	if _, err := l.Append(ctx, ev); err != nil {
		return fail(auditFailed, fmt.Errorf("log the purge first: %w; nothing purged", err))
	}
	var progress func(audit.PurgeResult)
	if isTerminal(e.stderr) {
		progress = func(r audit.PurgeResult) {
			fmt.Fprintf(e.stderr, "\rpurging: %d access, %d technical, %d chain events", r.Access, r.Technical, r.Chain)
		}
	}
	now := clock.System{}.Now()
	res, perr := l.Purge(ctx, now, policy, audit.PurgeOptions{DryRun: *dry, Progress: progress})
	if progress != nil {
		fmt.Fprintln(e.stderr)
	}
	done := ev
	done.ID, done.Time = "", time.Time{}
	done.Query = fmt.Sprintf("%s: %d access, %d technical and %d chain events, %d kept under legal hold", ev.Query, res.Access, res.Technical, res.Chain, res.Held)
	if perr != nil {
		done.Outcome, done.Reason = audit.OutcomeFailed, perr.Error()
	}
	if _, err := l.Append(ctx, done); err != nil {
		fmt.Fprintf(e.stderr, "zorgkluis audit purge: logging the result failed: %v\n", err)
	}
	if perr != nil {
		if store.IsPermissionDenied(perr) {
			perr = fmt.Errorf("%w\nthe application role may not delete access-log events; run the purge as the database owner (docs/audit-proofs.md)", perr)
		}
		return fail(auditFailed, fmt.Errorf("%w (purged before the error: %d access, %d technical)", perr, res.Access, res.Technical))
	}
	if *asJSON {
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
		return auditOK
	}
	verb := "purged"
	if *dry {
		verb = "would purge (dry run)"
	}
	fmt.Fprintf(e.stdout, "%s: %d access-log events (older than %s), %d technical events (older than %s), %d chain-log events (older than %s; counted)\n", verb,
		res.Access, now.Add(-policy.Access).Format(time.DateOnly), res.Technical, now.Add(-policy.Technical).Format(time.DateOnly),
		res.Chain, now.Add(-policy.Chain).Format(time.DateOnly))
	fmt.Fprintf(e.stdout, "kept under legal hold: %d\n", res.Held)
	if res.Skipped > 0 {
		fmt.Fprintf(e.stdout, "NOT purged: %d events whose columns disagree with their signed body; run zorgkluis audit verify\n", res.Skipped)
	}
	return auditOK
}

func auditHold(ctx context.Context, e env, args []string) int {
	fail := func(code int, err error) int {
		fmt.Fprintf(e.stderr, "zorgkluis audit hold: %v\n", err)
		return code
	}
	fs := flag.NewFlagSet("audit hold", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	tenant := fs.String("tenant", "", "")
	reason := fs.String("reason", "", "")
	until := fs.String("until", "", "")
	cfgArgs := configFlags(fs)
	ids, err := parseInterleaved(fs, args)
	if err != nil {
		return fail(auditUsageErr, err)
	}
	if *tenant == "" || *until == "" || len(ids) == 0 {
		return fail(auditUsageErr, errors.New("needs --tenant, --reason, --until YYYY-MM-DD and at least one EVENT_ID"))
	}
	end, err := time.Parse(time.DateOnly, *until)
	if err != nil {
		return fail(auditUsageErr, fmt.Errorf("--until %q: want a date as YYYY-MM-DD", *until))
	}
	cfg, err := config.Load("audit hold", cfgArgs(), e.getenv, e.stderr)
	if err != nil {
		return fail(auditUsageErr, err)
	}
	l, closeLog, err := openAuditLog(ctx, cfg)
	if err != nil {
		return fail(auditFailed, err)
	}
	defer closeLog()
	b, err := l.PlaceHold(ctx, audit.Hold{TenantID: *tenant, Reason: *reason, Until: end, PlacedBy: operatorEvent("").UserID, EventIDs: ids})
	switch {
	case errors.Is(err, audit.ErrHoldInvalid):
		return fail(auditUsageErr, err)
	case err != nil:
		return fail(auditFailed, err)
	}
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return fail(auditFailed, err)
	}
	fmt.Fprintf(e.stdout, "%s\n", out)
	fmt.Fprintf(e.stderr, "legal hold %s placed on %d event(s) until %s; keep the JSON: each element of \"proofs\" checks with zorgkluis audit check-proof\n",
		b.HoldID, len(b.Proofs), b.Until.Format(time.DateOnly))
	return auditOK
}
