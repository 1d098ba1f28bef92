package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/config"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// auditKeyName names the checkpoint signing key; it appears in every
// checkpoint's origin and in the verifier key.
const auditKeyName = "zorgkluis-audit"

// auditKeyPath is where the checkpoint signing key lives: in the data
// directory, outside the database.
func auditKeyPath(dataDir string) string { return filepath.Join(dataDir, "audit-checkpoint.key") }

// startSequencer runs the audit sequencer beside the server and returns the
// function that stops it: it stores every append still in progress, then
// signs a last checkpoint, so a clean shutdown leaves every event covered.
// The sequencer has its own context because it must outlive the server's
// graceful shutdown, during which requests still append.
func startSequencer(ctx context.Context, a *app) func() {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- a.audit.RunSequencer(sctx, 0) }()
	a.log.Info("audit log: signing checkpoints", "verifier_key", a.auditPK, "key_file", auditKeyPath(a.cfg.DataDir))
	return func() {
		a.audit.Close()
		cancel()
		if err := <-done; err != nil {
			a.log.Error("audit log: last checkpoint at shutdown failed", "err", err)
			return
		}
		a.log.Info("audit log: last checkpoint signed")
	}
}

// auditLagMetric exports how long the oldest unsigned event has waited;
// alarm when it exceeds a few seconds.
func auditLagMetric(a *app) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "zorgkluis_audit_sequencer_lag_seconds",
		Help: "Age of the oldest access-log event not yet covered by a signed checkpoint (0 when all are).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		d, err := a.audit.Lag(ctx)
		if err != nil {
			return -1
		}
		return d.Seconds()
	})
}

const auditUsage = `Usage: zorgkluis audit ACTION [ARGS] [flags]

The access log (NEN 7513) is an append-only Merkle tree per care
organisation. Every half second the server signs each tree's size and root
hash (a "checkpoint") with the key in DATA/audit-checkpoint.key, which never
goes into the database. These actions check the log and prove single lines.

Actions:
  verify             recompute every tree from the database and check every signed
                     checkpoint. Names each edited, deleted, reordered or inserted event
                     and each edited index column (patient, user, time, action).
                     Exit status: 0 intact, 1 damage found, 2 usage error, 3 could not check.
  proof EVENT_ID     print the event with its inclusion proof against the newest signed
                     checkpoint, as JSON. Reading the log this way is itself logged.
  check-proof FILE   check a proof offline, without any database, with --key or --key-file.
                     FILE "-" reads standard input. Exit status 0 valid, 1 invalid.
  public-key         print the public verifier key. Publish it to auditors and partners:
                     with it they can check proofs and checkpoints without trusting us.
` + auditRetentionUsage + `

Flags:
  --key KEY          the verifier key (as printed by "public-key") to check against;
                     verify uses the server's own key file when none is given
  --key-file FILE    a file holding the verifier key
  --json             verify: print the full report as JSON
  --data, --database, --config
                     where the data directory and database are, as for "zorgkluis serve"
                     (env ZK_DATA_DIR, ZK_DATABASE_URL, ZK_CONFIG); not for check-proof

Examples:
  zorgkluis audit verify --data /var/lib/zorgkluis
  zorgkluis audit proof 019a3c5e7f21a4b1c2d3e4f5a6b7c8d9 --data /var/lib/zorgkluis > proof.json
  zorgkluis audit public-key --data /var/lib/zorgkluis > audit-key.txt
  zorgkluis audit check-proof proof.json --key-file audit-key.txt

docs/audit-proofs.md describes the proof format and how to check it without zorgkluis.`

// Exit statuses of the audit actions.
const (
	auditOK       = 0
	auditDamaged  = 1 // verify found damage; check-proof rejected the proof; proof found nothing
	auditUsageErr = 2
	auditFailed   = 3 // the check could not be done (database unreachable, no key)
)

type auditFlags struct {
	key, keyFile string
	json         bool
}

// runAudit is the audit subcommand: ACTION [ARGS] first, flags after.
func runAudit(ctx context.Context, e env, args []string) int {
	if len(args) == 0 || slices.ContainsFunc(args, isHelpArg) {
		fmt.Fprintln(e.stdout, auditUsage)
		if len(args) == 0 {
			return auditUsageErr
		}
		return auditOK
	}
	if code, ok := runAuditRetention(ctx, e, args[0], args[1:]); ok {
		return code
	}
	need := map[string]int{"verify": 0, "proof": 1, "check-proof": 1, "public-key": 0}
	action := args[0]
	n, ok := need[action]
	if !ok {
		fmt.Fprintf(e.stderr, "zorgkluis audit: unknown action %q\n\n%s\n", action, auditUsage)
		return auditUsageErr
	}
	if len(args) < 1+n || (n > 0 && strings.HasPrefix(args[1], "-") && args[1] != "-") {
		fmt.Fprintf(e.stderr, "zorgkluis audit %s: needs %d argument(s) before the flags\n\n%s\n", action, n, auditUsage)
		return auditUsageErr
	}
	pos := args[1 : 1+n]
	own, rest := splitAuditFlags(args[1+n:])
	var f auditFlags
	fs := flag.NewFlagSet("audit "+action, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.key, "key", "", "")
	fs.StringVar(&f.keyFile, "key-file", "", "")
	fs.BoolVar(&f.json, "json", false, "")
	if err := fs.Parse(own); err != nil {
		fmt.Fprintf(e.stderr, "zorgkluis audit %s: %v\n", action, err)
		return auditUsageErr
	}
	fail := func(code int, err error) int {
		fmt.Fprintf(e.stderr, "zorgkluis audit %s: %v\n", action, err)
		return code
	}
	if action == "check-proof" {
		if len(rest) > 0 {
			return fail(auditUsageErr, fmt.Errorf("check-proof works without a database; unexpected %q", rest[0]))
		}
		return auditCheckProof(e, pos[0], f)
	}
	cfg, err := config.Load("audit "+action, rest, e.getenv, e.stderr)
	if errors.Is(err, flag.ErrHelp) {
		return auditOK
	}
	if err != nil {
		return fail(auditUsageErr, err)
	}
	switch action {
	case "public-key":
		vkey, err := audit.LoadVerifierKey(auditKeyPath(cfg.DataDir))
		if errors.Is(err, audit.ErrNoKey) {
			return fail(auditFailed, fmt.Errorf("%v; the server creates the key on its first start (zorgkluis serve)", err))
		}
		if err != nil {
			return fail(auditFailed, err)
		}
		fmt.Fprintln(e.stdout, vkey)
		return auditOK
	case "verify":
		return auditVerify(ctx, e, cfg, f)
	default:
		return auditProof(ctx, e, cfg, pos[0])
	}
}

func isHelpArg(a string) bool { return a == "-h" || a == "--help" || a == "-help" || a == "help" }

// splitAuditFlags separates the audit flags from the configuration flags,
// which config.Load parses.
func splitAuditFlags(args []string) (own, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || (name != "key" && name != "key-file" && name != "json") {
			rest = append(rest, a)
			continue
		}
		own = append(own, a)
		if !hasValue && name != "json" && i+1 < len(args) {
			i++
			own = append(own, args[i])
		}
	}
	return own, rest
}

// openAuditDB opens the configured database for reading the log. Unlike
// serve it neither creates nor migrates a database: checking must not
// change what it checks.
func openAuditDB(ctx context.Context, cfg config.Config) (*store.DB, error) {
	u := cfg.DatabaseURL
	if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		path := strings.TrimPrefix(u, "sqlite:")
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no database at %s (set --data or --database as for serve): %w", path, err)
		}
	}
	db, err := store.Open(ctx, u)
	if err != nil {
		return nil, err
	}
	current, err := db.MigrationsCurrent(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	if !current {
		db.Close()
		return nil, errors.New("the database schema is not current; run zorgkluis migrate first")
	}
	return db, nil
}

// openAuditLog opens the database as openAuditDB does and the log on it;
// the returned func closes both.
func openAuditLog(ctx context.Context, cfg config.Config) (*audit.Log, func(), error) {
	db, err := openAuditDB(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	l := audit.New(db, clock.System{}, rand.Reader)
	return l, func() { l.Close(); db.Close() }, nil
}

// verifierFrom returns the verifier key given by flag, or "" when none was.
func verifierFrom(f auditFlags) (string, error) {
	switch {
	case f.key != "" && f.keyFile != "":
		return "", errors.New("give --key or --key-file, not both")
	case f.key != "":
		return strings.TrimSpace(f.key), nil
	case f.keyFile != "":
		b, err := os.ReadFile(f.keyFile)
		if err != nil {
			return "", fmt.Errorf("key file: %w", err)
		}
		k := strings.TrimSpace(string(b))
		if strings.HasPrefix(k, "PRIVATE+KEY+") {
			return "", fmt.Errorf("%s holds the private signing key; give the public key (zorgkluis audit public-key) instead, and keep that file secret", f.keyFile)
		}
		return k, nil
	}
	return "", nil
}

// damageLabels are the words verify uses for each finding.
var damageLabels = map[audit.DamageKind]string{
	audit.DamageEdited:     "edited event",
	audit.DamageColumn:     "tampered index column",
	audit.DamageDeleted:    "deleted event",
	audit.DamageReordered:  "reordered event",
	audit.DamageInserted:   "inserted event",
	audit.DamagePosition:   "missing tree position",
	audit.DamageUncovered:  "events without a signed checkpoint",
	audit.DamageCheckpoint: "bad checkpoint",
	audit.DamageHashes:     "tampered tree hashes",
	audit.DamagePurge:      "purged too early",
	audit.DamageQueue:      "broken sequencing queue",
}

func treeName(tenant string) string {
	if tenant == "" {
		return "platform tree"
	}
	return fmt.Sprintf("tenant %q", tenant)
}

func auditVerify(ctx context.Context, e env, cfg config.Config, f auditFlags) int {
	fail := func(err error) int {
		fmt.Fprintf(e.stderr, "zorgkluis audit verify: %v\n", err)
		return auditFailed
	}
	vkey, err := verifierFrom(f)
	if err != nil {
		return fail(err)
	}
	source := "given on the command line"
	if vkey == "" {
		source = "from " + auditKeyPath(cfg.DataDir) + "; an auditor passes the published key with --key"
		if vkey, err = audit.LoadVerifierKey(auditKeyPath(cfg.DataDir)); err != nil {
			return fail(err)
		}
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return fail(fmt.Errorf("verifier key: %w", err))
	}
	l, closeLog, err := openAuditLog(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	defer closeLog()

	var progress func(done, total int)
	if isTerminal(e.stderr) {
		var last time.Time
		progress = func(done, total int) {
			if now := time.Now(); now.Sub(last) >= 200*time.Millisecond || done == total {
				last = now
				fmt.Fprintf(e.stderr, "\rverifying: %d of %d events (%d%%)", done, total, 100*done/max(total, 1))
			}
		}
	}
	start := time.Now()
	r, err := l.Verify(ctx, note.VerifierList(v), progress)
	if progress != nil {
		fmt.Fprintln(e.stderr)
	}
	if err != nil {
		return fail(err)
	}
	if f.json {
		b, _ := json.MarshalIndent(r, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
	} else {
		printReport(e.stdout, r, vkey, source, time.Since(start))
	}
	logVerify(ctx, e, l, r)
	if !r.OK() {
		notifyDamage(ctx, e, cfg, r)
		return auditDamaged
	}
	return auditOK
}

// logVerify appends the outcome of the verification to the platform's log
// once it is done (the check itself changes nothing it checks): the
// compliance report's evidence of the last audit verify (GOV-3). A failure
// to log is told, not fatal: the report then shows the evidence missing.
func logVerify(ctx context.Context, e env, l *audit.Log, r audit.Report) {
	detail := fmt.Sprintf("ok: %d events in %d trees", r.Events, len(r.Trees))
	if !r.OK() {
		detail = fmt.Sprintf("damaged: %d findings in %d events", len(r.Damage)+r.Truncated, r.Events)
	}
	if _, err := l.Append(ctx, audit.Evidence(operatorEvent("zorgkluis audit verify"), audit.FactAuditVerify, r.OK(), detail)); err != nil {
		fmt.Fprintf(e.stderr, "zorgkluis audit verify: the outcome could not be logged as evidence: %v\n", err)
	}
}

// notifyDamage raises a security event per damaged tree (LOG-9: a failed
// verification of the log reaches the security officer): a warning line,
// and the alert webhook when one is configured. Verify itself writes
// nothing to the database it checks; only its outcome is logged after.
func notifyDamage(ctx context.Context, e env, cfg config.Config, r audit.Report) {
	sinks := alert.Multi{alert.Log{Logger: newLogger(e, "warn")}}
	if cfg.AlertWebhook != "" {
		wh := alert.NewWebhook(cfg.AlertWebhook, nil, newLogger(e, "warn"), 100)
		defer wh.Close()
		sinks = append(sinks, wh)
	}
	kinds := map[string]map[audit.DamageKind]int{}
	for _, d := range r.Damage {
		if kinds[d.TenantID] == nil {
			kinds[d.TenantID] = map[audit.DamageKind]int{}
		}
		kinds[d.TenantID][d.Kind]++
	}
	for tenant, k := range kinds {
		var parts []string
		for kind, n := range k {
			parts = append(parts, fmt.Sprintf("%d %s", n, damageLabels[kind]))
		}
		slices.Sort(parts)
		sinks.Alert(ctx, alert.Event{Time: time.Now().UTC(), TenantID: tenant, Kind: "audit-verify-failed",
			Detail: "zorgkluis audit verify found: " + strings.Join(parts, ", ")})
	}
}

func printReport(w io.Writer, r audit.Report, vkey, source string, took time.Duration) {
	fmt.Fprintf(w, "verifier key: %s (%s)\n", vkey, source)
	checkpoints := 0
	for _, t := range r.Trees {
		checkpoints += t.Checkpoints
		fmt.Fprintf(w, "%s: %d events in the tree", treeName(t.TenantID), t.Leaves)
		if t.Purged > 0 {
			fmt.Fprintf(w, " (%d purged by retention)", t.Purged)
		}
		if t.Pending > 0 {
			fmt.Fprintf(w, ", %d awaiting the next checkpoint", t.Pending)
		}
		fmt.Fprintf(w, ", %d signed checkpoint(s), root %s\n", t.Checkpoints, base64.StdEncoding.EncodeToString(t.Root[:]))
	}
	for _, d := range r.Damage {
		label := damageLabels[d.Kind]
		if label == "" {
			label = string(d.Kind)
		}
		fmt.Fprintf(w, "DAMAGE %s (%s): %s", label, d.Kind, treeName(d.TenantID))
		if d.Position >= 0 {
			fmt.Fprintf(w, " position %d", d.Position)
		}
		if d.EventID != "" {
			fmt.Fprintf(w, " event %s", d.EventID)
		}
		fmt.Fprintf(w, ": %s\n", d.Detail)
	}
	if r.Truncated > 0 {
		fmt.Fprintf(w, "DAMAGE: %d more findings not listed\n", r.Truncated)
	}
	if r.OK() {
		fmt.Fprintf(w, "OK: the access log is intact: %d events in %d tree(s), %d signed checkpoint(s) checked in %v\n",
			r.Events, len(r.Trees), checkpoints, took.Round(time.Millisecond))
		return
	}
	fmt.Fprintf(w, "DAMAGED: %d finding(s); the log was changed outside zorgkluis. Keep this output and the database as they are, and tell the security officer.\n",
		len(r.Damage)+r.Truncated)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// auditProof prints an event's proof bundle. Reading a log line is access
// to the log itself (NEN 7513), so it is logged, durably, before the line
// is printed.
func auditProof(ctx context.Context, e env, cfg config.Config, eventID string) int {
	fail := func(code int, err error) int {
		fmt.Fprintf(e.stderr, "zorgkluis audit proof: %v\n", err)
		return code
	}
	l, closeLog, err := openAuditLog(ctx, cfg)
	if err != nil {
		return fail(auditFailed, err)
	}
	defer closeLog()
	b, err := l.Proof(ctx, eventID)
	switch {
	case errors.Is(err, audit.ErrNotFound), errors.Is(err, audit.ErrNotSequenced), errors.Is(err, audit.ErrPurged):
		return fail(auditDamaged, fmt.Errorf("event %s: %w", eventID, err))
	case err != nil:
		return fail(auditFailed, err)
	}
	var ev audit.Event
	if err := json.Unmarshal([]byte(b.Event), &ev); err != nil {
		return fail(auditFailed, fmt.Errorf("event %s: %w", eventID, err))
	}
	read := operatorEvent("zorgkluis audit proof")
	read.Action, read.Outcome, read.TenantID, read.Basis = audit.ActionLogRead, audit.OutcomeSuccess, b.TenantID, "log-inspection"
	read.PatientID, read.Resources = ev.PatientID, []string{"AuditEvent/" + eventID}
	if _, err := l.Append(ctx, read); err != nil {
		return fail(auditFailed, fmt.Errorf("log the reading first: %w; nothing printed", err))
	}
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return fail(auditFailed, err)
	}
	fmt.Fprintf(e.stdout, "%s\n", out)
	return auditOK
}

// auditCheckProof checks a bundle with nothing but the verifier key.
func auditCheckProof(e env, file string, f auditFlags) int {
	fail := func(code int, err error) int {
		fmt.Fprintf(e.stderr, "zorgkluis audit check-proof: %v\n", err)
		return code
	}
	vkey, err := verifierFrom(f)
	if err != nil {
		return fail(auditUsageErr, err)
	}
	if vkey == "" {
		return fail(auditUsageErr, errors.New("needs the public verifier key: --key KEY or --key-file FILE (from zorgkluis audit public-key)"))
	}
	var raw []byte
	if file == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(file)
	}
	if err != nil {
		return fail(auditFailed, err)
	}
	var b audit.ProofBundle
	if err := json.Unmarshal(raw, &b); err != nil {
		return fail(auditDamaged, fmt.Errorf("INVALID: %s is not a proof bundle: %v", file, err))
	}
	c, err := audit.CheckProof(b, vkey)
	if err != nil {
		return fail(auditDamaged, fmt.Errorf("INVALID: %v", err))
	}
	var ev audit.Event
	_ = json.Unmarshal([]byte(b.Event), &ev) // CheckProof parsed it already
	fmt.Fprintf(e.stdout, "OK: event %s is at position %d of %s's log, in the checkpoint of %d events signed at %s by %s\n",
		b.EventID, b.Position, treeName(b.TenantID), c.Size, c.Time.Format(time.RFC3339), c.Origin)
	fmt.Fprintf(e.stdout, "event: %s %s %s by user %s", ev.Time.Format(time.RFC3339), ev.Action, ev.Outcome, ev.UserID)
	if ev.PatientID != "" {
		fmt.Fprintf(e.stdout, ", patient %s", ev.PatientID)
	}
	fmt.Fprintln(e.stdout)
	return auditOK
}
