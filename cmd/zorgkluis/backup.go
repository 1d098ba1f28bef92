package main

import (
	"context"
	"crypto/rand"
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

	"golang.org/x/mod/sumdb/note"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/backup"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/config"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

const backupUsage = `Usage: zorgkluis backup [--to DIR] [--json] [flags]
       zorgkluis backup check FILE [--json] [flags]
       zorgkluis restore --from FILE [--person TENANT/PATIENT] [--json] [flags]

backup makes a consistent backup of the running installation (every table,
one snapshot, while serving), encrypted with age to each recipient in
--backup-recipients (created with its identity --backup-identity on first
use), checksummed, with a manifest NAME.json beside it. The master key and
the checkpoint signing key are never in a backup: keep them apart.

backup check restore-tests a backup into a scratch database beside the live
one: counts, audit verify against its signed checkpoints, a sample of
records decrypted with the master key.

restore puts a backup back:
  without --person  the whole installation into the empty database given by
                    --data/--database (refused when it holds any row); put
                    master.key (or ZK_MASTER_KEY) and audit-checkpoint.key in
                    the data directory first; the restored log is verified.
  --person T/P      one patient record into the live database: their rows as in
                    the backup replace theirs, nobody else is touched, their
                    audit events are kept, the restore is logged; a shredded
                    patient stays shredded.

Flags:
  --to DIR          where the backup goes (default --backup-dir, DATA/backups)
  --from FILE       the backup to restore (its manifest FILE.json beside it)
  --json            print the manifest or report as JSON
  --data, --database, --config, --backup-identity, --backup-recipients
                    as for zorgkluis serve`

type backupFlags struct {
	to, from, person string
	json             bool
}

// splitOwn separates a command's own flags (names; bools listed) from the
// configuration flags, which config.Load parses.
func splitOwn(args []string, names, bools []string) (own, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !slices.Contains(names, name) {
			rest = append(rest, a)
			continue
		}
		own = append(own, a)
		if !hasValue && !slices.Contains(bools, name) && i+1 < len(args) {
			i++
			own = append(own, args[i])
		}
	}
	return own, rest
}

func parseBackupFlags(name string, args []string) (backupFlags, []string, error) {
	own, rest := splitOwn(args, []string{"to", "from", "person", "json"}, []string{"json"})
	var f backupFlags
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.to, "to", "", "")
	fs.StringVar(&f.from, "from", "", "")
	fs.StringVar(&f.person, "person", "", "")
	fs.BoolVar(&f.json, "json", false, "")
	return f, rest, fs.Parse(own)
}

func runBackup(ctx context.Context, e env, args []string) int {
	if slices.ContainsFunc(args, isHelpArg) {
		fmt.Fprintln(e.stdout, backupUsage)
		return 0
	}
	fail := func(code int, err error) int {
		fmt.Fprintln(e.stderr, "zorgkluis backup:", err)
		return code
	}
	check := len(args) > 0 && args[0] == "check"
	var file string
	if check {
		if len(args) < 2 || strings.HasPrefix(args[1], "-") {
			return fail(2, errors.New("check needs the backup FILE"))
		}
		file, args = args[1], args[2:]
	}
	f, rest, err := parseBackupFlags("backup", args)
	if err != nil {
		return fail(2, err)
	}
	cfg, err := config.Load("backup", rest, e.getenv, e.stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return fail(2, err)
	}
	if check {
		return backupCheck(ctx, e, cfg, file, f)
	}
	if f.to == "" {
		f.to = cfg.BackupDir
	}
	k, created, err := backup.LoadKeys(cfg.BackupIdentity, cfg.BackupRecipients)
	if err != nil {
		return fail(1, err)
	}
	if created {
		fmt.Fprintf(e.stderr, "zorgkluis backup: created the backup key %s (recipients in %s).\n  Copy the identity file somewhere safe and offline, apart from the master key: without it no backup can be read.\n", cfg.BackupIdentity, cfg.BackupRecipients)
	}
	db, err := openAuditDB(ctx, cfg)
	if err != nil {
		return fail(1, err)
	}
	defer db.Close()
	m, err := backup.Create(ctx, db, backup.Dir(f.to), k, clock.System{}, terminalProgress(e, "backup"))
	if err != nil {
		return fail(1, err)
	}
	// A backup reads every record: it is logged as an export (NEN 7513).
	l := audit.New(db, clock.System{}, rand.Reader)
	ev := operatorEvent("zorgkluis backup")
	ev.Action, ev.Outcome, ev.Basis, ev.Query = audit.ActionExport, audit.OutcomeSuccess, "backup", "backup "+m.Name
	if _, err := l.Append(ctx, ev); err != nil {
		l.Close()
		return fail(1, fmt.Errorf("backup %s made but not logged: %w", m.Name, err))
	}
	l.Close()
	if f.json {
		b, _ := json.MarshalIndent(m, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
		return 0
	}
	fmt.Fprintf(e.stdout, "backup %s: %d rows in %d tables, %d audit trees, %d bytes encrypted (sha256 %s), took %s\n",
		filepath.Join(f.to, m.Name), m.Rows(), len(m.Tables), len(m.Trees), m.Bytes, m.SHA256, m.Took)
	return 0
}

func backupCheck(ctx context.Context, e env, cfg config.Config, file string, f backupFlags) int {
	fail := func(code int, err error) int {
		fmt.Fprintln(e.stderr, "zorgkluis backup check:", err)
		return code
	}
	ch, err := checkerFor(cfg)
	if err != nil {
		return fail(1, err)
	}
	res := ch.Check(ctx, backup.Dir(filepath.Dir(file)), filepath.Base(file))
	logRestoreTest(ctx, e, cfg, res)
	if f.json {
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
	} else if res.OK {
		fmt.Fprintf(e.stdout, "OK: %s restores: %d rows, %d events in %d audit trees verified, %d records decrypted, in %s\n",
			res.Backup, res.Rows, res.Events, res.Trees, res.Sampled, res.Took)
	}
	if !res.OK {
		return fail(1, errors.New(res.Error))
	}
	return 0
}

// logRestoreTest logs a restore test by hand as evidence in the live
// installation's log (GOV-3), as the schedule logs its own; a check run
// where there is no live database is told, not logged.
func logRestoreTest(ctx context.Context, e env, cfg config.Config, res backup.CheckResult) {
	db, err := openAuditDB(ctx, cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "zorgkluis backup check: the result is not logged as evidence: %v\n", err)
		return
	}
	defer db.Close()
	l := audit.New(db, clock.System{}, rand.Reader)
	defer l.Close()
	detail := fmt.Sprintf("%s: restore test by hand: %d rows, %d events in %d trees verified, %d records decrypted, %s", res.Backup, res.Rows, res.Events, res.Trees, res.Sampled, res.Took)
	if !res.OK {
		detail = res.Backup + ": restore test by hand failed: " + res.Error
	}
	ev := operatorEvent("zorgkluis backup check")
	ev.Resources = []string{"Backup/" + res.Backup}
	if _, err := l.Append(ctx, audit.Evidence(ev, audit.FactRestoreTest, res.OK, detail)); err != nil {
		fmt.Fprintf(e.stderr, "zorgkluis backup check: the result could not be logged as evidence: %v\n", err)
	}
}

// checkerFor builds the restore test from the configuration: the backup
// identity, the master key and the checkpoint verifier key.
func checkerFor(cfg config.Config) (*backup.Checker, error) {
	ids, err := backup.LoadIdentities(cfg.BackupIdentity)
	if err != nil {
		return nil, err
	}
	master, err := loadExistingMaster(cfg)
	if err != nil {
		return nil, err
	}
	vkey, err := audit.LoadVerifierKey(auditKeyPath(cfg.DataDir))
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	return &backup.Checker{DatabaseURL: cfg.DatabaseURL, TempDir: cfg.DataDir, Identities: ids, Master: master, Verifier: v}, nil
}

func runRestore(ctx context.Context, e env, args []string) int {
	if slices.ContainsFunc(args, isHelpArg) {
		fmt.Fprintln(e.stdout, backupUsage)
		return 0
	}
	fail := func(code int, err error) int {
		fmt.Fprintln(e.stderr, "zorgkluis restore:", err)
		return code
	}
	f, rest, err := parseBackupFlags("restore", args)
	if err != nil {
		return fail(2, err)
	}
	if f.from == "" {
		return fail(2, errors.New("needs --from FILE"))
	}
	cfg, err := config.Load("restore", rest, e.getenv, e.stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return fail(2, err)
	}
	ids, err := backup.LoadIdentities(cfg.BackupIdentity)
	if err != nil {
		return fail(1, err)
	}
	in, err := os.Open(f.from)
	if err != nil {
		return fail(1, err)
	}
	defer in.Close()
	start := time.Now()
	if f.person != "" {
		tenant, patient, ok := strings.Cut(f.person, "/")
		if !ok || tenant == "" || patient == "" {
			return fail(2, errors.New("--person takes TENANT/PATIENT"))
		}
		db, err := openAuditDB(ctx, cfg)
		if err != nil {
			return fail(1, err)
		}
		defer db.Close()
		l := audit.New(db, clock.System{}, rand.Reader)
		defer l.Close()
		later, err := laterShreds(ctx, f.from)
		if err != nil {
			return fail(1, err)
		}
		if slices.Contains(later, backup.Person{TenantID: tenant, PatientID: patient}) {
			return fail(1, fmt.Errorf("%w (in a newer backup's manifest)", backup.ErrShredded))
		}
		rep, err := backup.RestorePerson(ctx, in, ids, db, l, backup.Person{TenantID: tenant, PatientID: patient}, operatorEvent("zorgkluis restore"))
		if err != nil {
			return fail(1, err)
		}
		if f.json {
			b, _ := json.MarshalIndent(rep, "", "  ")
			fmt.Fprintf(e.stdout, "%s\n", b)
			return 0
		}
		var n int64
		for _, c := range rep.Restored {
			n += c
		}
		fmt.Fprintf(e.stdout, "restored patient %s/%s from %s: %d rows (%d resource versions), %d links left out, logged as event %s, in %s\n",
			tenant, patient, rep.Backup, n, rep.Restored["resources"], rep.Skipped, rep.EventID, time.Since(start).Round(time.Millisecond))
		fmt.Fprintln(e.stdout, "Running servers keep patient keys cached for a few minutes; restart them if the patient's key was also lost.")
		return 0
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fail(1, err)
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, store.BulkLoad())
	if err != nil {
		return fail(1, err)
	}
	defer db.Close()
	m, err := backup.Restore(ctx, in, ids, db, terminalProgress(e, "restore"))
	if err == nil {
		err = db.Flush(ctx)
	}
	if err != nil {
		return fail(1, err)
	}
	took := time.Since(start).Round(time.Millisecond)
	if f.json {
		b, _ := json.MarshalIndent(m, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
	} else {
		fmt.Fprintf(e.stdout, "restored %s: %d rows in %d tables, in %s\n", m.Name, m.Rows(), len(m.Tables), took)
	}
	// The log must verify against its own signed checkpoints (LOG-2).
	if _, err := os.Stat(auditKeyPath(cfg.DataDir)); err != nil {
		fmt.Fprintf(e.stderr, "zorgkluis restore: no %s yet: put the checkpoint key there and run zorgkluis audit verify\n", auditKeyPath(cfg.DataDir))
		return 0
	}
	if code := auditVerify(ctx, e, cfg, auditFlags{}); code != 0 {
		return code
	}
	if err := reapplyShreds(ctx, e, cfg, f.from, m); err != nil {
		return fail(1, err)
	}
	return 0
}

// laterShreds lists the patients shredded after file was made: those the
// shred records beside it name, and those in the manifests of the newer
// backups beside it.
func laterShreds(ctx context.Context, file string) ([]backup.Person, error) {
	st := backup.Dir(filepath.Dir(file))
	this, err := backup.ReadManifest(ctx, st, filepath.Base(file))
	if err != nil {
		return nil, err
	}
	ms, err := backup.List(ctx, st)
	if err != nil {
		return nil, err
	}
	// Shreds recorded by `keys shred` (after the newest backup too).
	out, err := backup.Shreds(ctx, st)
	if err != nil {
		return nil, err
	}
	out = slices.DeleteFunc(out, func(p backup.Person) bool { return slices.Contains(this.Shredded, p) })
	for _, m := range ms {
		if !m.Created.After(this.Created) {
			continue
		}
		for _, p := range m.Shredded {
			if !slices.Contains(this.Shredded, p) && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// reapplyShreds shreds again, after a whole restore, the patients shredded
// after the backup was made (as the newer backups beside it record), so a
// restore never brings an erased record back (DP-1).
func reapplyShreds(ctx context.Context, e env, cfg config.Config, file string, m backup.Manifest) error {
	later, err := laterShreds(ctx, file)
	if err != nil || len(later) == 0 {
		return err
	}
	if _, err := loadExistingMaster(cfg); err != nil {
		return fmt.Errorf("%d patient(s) were shredded after this backup and must be again: %w", len(later), err)
	}
	a, err := openApp(ctx, cfg, newLogger(e, "warn"))
	if err != nil {
		return err
	}
	defer a.Close()
	for _, p := range later {
		if err := shredPatient(ctx, a, p.TenantID, p.PatientID); err != nil {
			return fmt.Errorf("re-apply the shred of %s/%s: %w", p.TenantID, p.PatientID, err)
		}
		fmt.Fprintf(e.stdout, "shredded again: patient %s/%s (shredded after backup %s was made)\n", p.TenantID, p.PatientID, m.Name)
	}
	return nil
}

// terminalProgress reports rows on a terminal, nothing otherwise.
func terminalProgress(e env, what string) backup.Progress {
	if !isTerminal(e.stderr) {
		return nil
	}
	var last time.Time
	return func(table string, rows, total int64) {
		if now := time.Now(); now.Sub(last) >= 200*time.Millisecond {
			last = now
			fmt.Fprintf(e.stderr, "\r%s: %d rows (%s: %d)          ", what, total, table, rows)
		}
	}
}

// loadExistingMaster loads the master key without ever creating one: a
// restore test with a new key could only fail.
func loadExistingMaster(cfg config.Config) (keys.Master, error) {
	if cfg.MasterKey == "" {
		p := filepath.Join(cfg.DataDir, "master.key")
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("master key: %w (set ZK_MASTER_KEY or put master.key in the data directory)", err)
		}
	}
	return loadMaster(cfg)
}
