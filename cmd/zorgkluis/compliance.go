package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/compliance"
	"github.com/zorgkluis/zorgkluis/internal/config"
	"github.com/zorgkluis/zorgkluis/internal/governance"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

const complianceUsageText = `Usage: zorgkluis compliance report [--json] [--tenant TENANT] [flags]

Prints the compliance report (GOV-3): every control row of the MedMij
normenkader, NEN 7510-2 chapter 9 and NEN 7512 Tabel 7 with the
organisation's register entry and its live evidence from the running
system (the settings in force, the last access review and admin-log review,
the last restore test, the clock offset, the last audit verify, the TLS
settings, certificates near expiry, overdue incidents), red where evidence
is missing or stale. Every technical evidence item carries the inclusion
proof of the log events it rests on; check one offline with
"zorgkluis audit check-proof FILE --key KEY".

  --json           a JSON object with a "controls" array (default: HTML)
  --tenant TENANT  the organisation (default: the only one; with none or
                   several and no --tenant, the installation's own evidence)

The other flags are those of serve (--data, --database, --config). The
command reads; it changes nothing.`

// Exit codes of compliance report.
const (
	complianceOK       = 0
	complianceBadUsage = 2
	complianceFail     = 3
)

func runCompliance(ctx context.Context, e env, args []string) int {
	if len(args) == 0 || args[0] != "report" {
		fmt.Fprintln(e.stderr, complianceUsageText)
		return complianceBadUsage
	}
	own, rest, err := localFlags(args[1:], []string{"tenant"}, []string{"json"})
	if err != nil {
		fmt.Fprintf(e.stderr, "zorgkluis compliance report: %v\n\n%s\n", err, complianceUsageText)
		return complianceBadUsage
	}
	cfg, err := config.Load("compliance report", rest, e.getenv, e.stderr)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(e.stdout, complianceUsageText)
		return complianceOK
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "zorgkluis compliance report: %v\n", err)
		return complianceBadUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(e.stderr, "zorgkluis compliance report: %v\n", err)
		return complianceFail
	}
	db, err := openAuditDB(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	vkey, err := audit.LoadVerifierKey(auditKeyPath(cfg.DataDir))
	if err != nil {
		return fail(fmt.Errorf("the log's public key: %w", err))
	}
	c := clock.System{}
	l := audit.New(db, c, rand.Reader)
	defer l.Close()
	tenant := own["tenant"]
	if tenant == "" {
		ts, err := identity.NewRegistry(db, c, rand.Reader).Tenants(ctx)
		if err != nil {
			return fail(err)
		}
		if len(ts) == 1 {
			tenant = ts[0].ID
		}
	} else if _, err := identity.NewRegistry(db, c, rand.Reader).Tenant(ctx, tenant); err != nil {
		return fail(fmt.Errorf("tenant %q: %w", tenant, err))
	}
	svc := compliance.New(compliance.Config{DB: db, Clock: c, Audit: l, Gov: governance.New(governance.Config{DB: db, Clock: c}),
		VerifierKey: vkey, ServerCert: serverCertificate(cfg)})
	rep, err := svc.Report(ctx, tenant)
	if err != nil {
		return fail(err)
	}
	if own["json"] == "true" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
		return complianceOK
	}
	if err := rep.WriteHTML(e.stdout); err != nil {
		return fail(err)
	}
	return complianceOK
}

// serverCertificate is the HTTPS certificate serve uses (the configured
// one, else the demo certificate in the data directory); nil when there is
// none to read.
func serverCertificate(cfg config.Config) *x509.Certificate {
	path := cfg.TLSCert
	if path == "" {
		path = filepath.Join(cfg.DataDir, "demo-cert.pem")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil
	}
	return cert
}
