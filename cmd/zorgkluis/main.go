// Command zorgkluis is the zorgkluis health-record server and its
// administration tool. Run `zorgkluis help` for the subcommands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"syscall"

	"github.com/zorgkluis/zorgkluis/internal/audit"
)

// env is what a subcommand may touch of the process.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e env, args []string) int
}

func commands() []command {
	return []command{
		{"serve", "run the server (HTTPS; --demo for a ready-to-try installation)", runServe},
		{"migrate", "apply pending database migrations and exit", runMigrate},
		{"keys", "show, rotate (master, tenant), shred a patient's key, export public key ids", runKeys},
		{"audit", "check the tamper-evident access log: verify, proof, check-proof, public-key", runAudit},
		{"tenant", "create, list and deactivate care organisations; invite their first administrator", runTenant},
		{"pki", "the organisations' CA for third-party systems: systems, certificates, revocation, CRL", runPKI},
		{"accounts", "import staff accounts from a CSV file (dry run first; --apply)", runAccounts},
		{"compliance", "the compliance report: every control with its live evidence and proofs (report [--json])", runCompliance},
		{"patients", "maintenance of the patients' records: backfill-names (the names the security officer's pages show)", runPatients},
		{"backup", "make an encrypted backup of the running installation (check FILE: restore-test one)", runBackup},
		{"restore", "restore a backup: the whole installation into an empty database, or one person (--person)", runRestore},
		{"generate", "write a synthetic care organisation for tests and load runs (never in production)", runGenerate},
		{"version", "print the version", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, e env, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(e.stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	fmt.Fprintf(e.stderr, "zorgkluis: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `zorgkluis: a health-record server for Dutch care organisations (NEN 7510, 7512, 7513, MedMij).

Usage: zorgkluis COMMAND [flags]

Commands:`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, `
Run "zorgkluis COMMAND --help" for the flags of a command.
Try it:  zorgkluis serve --demo   (SQLite in ./data, demo log-ins printed)`)
}

// operatorEvent starts the audit event of a command-line action: the
// operating-system user and host running it, as a platform administrator
// (commands act outside any session, so access has no rule for them).
func operatorEvent(sourceApp string) audit.Event {
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	host, _ := os.Hostname()
	return audit.Event{UserID: "os:" + who, UserName: who, Role: "platform-admin", SourceApp: sourceApp, Device: host}
}
