package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/config"
	"github.com/zorgkluis/zorgkluis/internal/mgmtapi"
	"github.com/zorgkluis/zorgkluis/internal/pki"
)

const pkiUsage = `Usage: zorgkluis pki ACTION [ARGS] --tenant TENANT [flags]

The organisation's own CA for third-party systems (mutual TLS on --api-addr,
signed documents). See docs/exchange.md.

Actions:
  propose-ca            propose the tenant's intermediate CA (four eyes: another
                        person approves, here or through the admin API)
  propose-policy --max-days N [--require-signed]
                        propose the tenant's CA policy (four eyes)
  requests              the tenant's four-eyes requests
  approve REQUEST       approve a request someone else proposed (issues the CA)
  reject REQUEST        reject it
  register --name NAME --responsible ACCOUNT --scopes read,search
           --categories '*' [--patients P1,P2]
                        register a system with its responsible person (ID-3)
  systems [--json]      the tenant's systems
  issue SYSTEM --csr FILE [--days N] [--purpose tls|signing] [--out FILE]
                        sign the system's CSR (at most 365 days); writes the
                        certificate, then the chain (tenant CA, root)
  certificates [--json] every certificate ever issued for the tenant
  revoke SERIAL [--reason TEXT]
                        revoke a certificate at once
  deactivate SYSTEM     deactivate a system; revokes its certificates (ID-5)
  crl [--out FILE]      the tenant CA's CRL (DER; next update within 7 days)
  chain [--out FILE]    the tenant CA and the root (PEM), for the system's trust store

Every action is logged with your operating-system user name. The other flags
are those of "zorgkluis migrate" (--data, --database, --config).`

func runPKI(ctx context.Context, e env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(e.stdout, pkiUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	need := map[string]int{"propose-ca": 0, "propose-policy": 0, "requests": 0, "approve": 1, "reject": 1, "register": 0, "systems": 0,
		"issue": 1, "certificates": 0, "revoke": 1, "deactivate": 1, "crl": 0, "chain": 0}
	action := args[0]
	n, ok := need[action]
	if !ok {
		fmt.Fprintf(e.stderr, "zorgkluis pki: unknown action %q\n\n%s\n", action, pkiUsage)
		return 2
	}
	local, rest, err := localFlags(args[1:], []string{"tenant", "max-days", "name", "responsible", "scopes", "categories", "patients",
		"csr", "days", "purpose", "out", "reason"}, []string{"json", "require-signed"})
	if err == nil && len(rest) < n {
		err = fmt.Errorf("needs %d argument(s)", n)
	}
	if err == nil && n > 0 && strings.HasPrefix(rest[0], "-") {
		err = errors.New("the argument comes first")
	}
	if err == nil && local["tenant"] == "" && action != "approve" && action != "reject" {
		err = errors.New("--tenant is required")
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "zorgkluis pki %s: %v\n\n%s\n", action, err, pkiUsage)
		return 2
	}
	cfg, err := config.Load("pki "+action, rest[n:], e.getenv, e.stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "zorgkluis pki %s: %v\n", action, err)
		return 2
	}
	if err := pkiAction(ctx, e, cfg, action, rest[:n], local); err != nil {
		fmt.Fprintf(e.stderr, "zorgkluis pki %s: %v\n", action, err)
		if errors.Is(err, pki.ErrInvalid) || errors.Is(err, pki.ErrNotFound) || errors.Is(err, pki.ErrForbidden) || errors.Is(err, pki.ErrConflict) {
			return 2
		}
		return 1
	}
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func writeOut(e env, path string, b []byte) error {
	if path == "" || path == "-" {
		_, err := e.stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func pkiAction(ctx context.Context, e env, cfg config.Config, action string, pos []string, f map[string]string) error {
	log := newLogger(env{stdout: e.stdout, stderr: discard{}, getenv: e.getenv}, "error")
	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	defer a.audit.Close()
	actor := operatorEvent("zorgkluis pki " + action)
	tenant := f["tenant"]
	asJSON := func(v any) error {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	switch action {
	case "propose-ca":
		r, err := a.ca.ProposeIntermediate(ctx, actor, tenant)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "request %s: intermediate CA for tenant %s, pending; another person approves it (four eyes)\n", r.ID, tenant)
	case "propose-policy":
		days, err := strconv.Atoi(f["max-days"])
		if err != nil {
			return fmt.Errorf("--max-days: a number of days: %w", pki.ErrInvalid)
		}
		r, err := a.ca.ProposePolicy(ctx, actor, tenant, pki.Policy{MaxDays: days, RequireSigned: f["require-signed"] == "true"})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "request %s: CA policy for tenant %s, pending; another person approves it (four eyes)\n", r.ID, tenant)
	case "requests":
		rs, err := a.ca.Requests(ctx, tenant)
		if err != nil {
			return err
		}
		for _, r := range rs {
			fmt.Fprintf(e.stdout, "%s\t%s\t%s\tproposed by %s\t%s\n", r.ID, r.Kind, r.Status, r.ProposedBy, r.ProposedAt.UTC().Format(time.RFC3339))
		}
	case "approve", "reject":
		do := a.ca.Approve
		if action == "reject" {
			do = a.ca.Reject
		}
		r, err := do(ctx, actor, pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "request %s %s\n", r.ID, r.Status)
	case "register":
		s, err := a.ca.RegisterSystem(ctx, actor, pki.System{TenantID: tenant, Name: f["name"], ResponsibleID: f["responsible"],
			Scopes: splitList(f["scopes"]), Categories: splitList(f["categories"]), Patients: splitList(f["patients"])}, mgmtapi.KnownCategory)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "system %s registered: %s (responsible %s); its certificates name %s\n", s.ID, s.Name, s.ResponsibleID, s.DNSName())
	case "systems":
		ss, err := a.ca.Systems(ctx, tenant)
		if err != nil {
			return err
		}
		if f["json"] == "true" {
			return asJSON(ss)
		}
		for _, s := range ss {
			state := "active"
			if !s.Active {
				state = "deactivated"
			}
			fmt.Fprintf(e.stdout, "%s\t%s\tresponsible %s\tscopes %s\t%s\n", s.ID, s.Name, s.ResponsibleID, strings.Join(s.Scopes, ","), state)
		}
	case "issue":
		csr, err := os.ReadFile(f["csr"])
		if err != nil {
			return fmt.Errorf("--csr: %v: %w", err, pki.ErrInvalid)
		}
		var days int
		if f["days"] != "" {
			if days, err = strconv.Atoi(f["days"]); err != nil || days <= 0 {
				return fmt.Errorf("--days: a positive number of days: %w", pki.ErrInvalid)
			}
		}
		c, err := a.ca.Issue(ctx, actor, tenant, pos[0], f["purpose"], csr, time.Duration(days)*24*time.Hour)
		if err != nil {
			return err
		}
		if err := writeOut(e, f["out"], []byte(c.PEM+c.ChainPEM)); err != nil {
			return err
		}
		if f["out"] != "" {
			fmt.Fprintf(e.stdout, "certificate %s for %s, valid until %s, written to %s\n", c.Serial, c.SystemID, c.NotAfter.Format(time.RFC3339), f["out"])
		}
	case "certificates":
		cs, err := a.ca.Certificates(ctx, tenant)
		if err != nil {
			return err
		}
		if f["json"] == "true" {
			return asJSON(cs)
		}
		for _, c := range cs {
			state := "current"
			if c.RevokedAt != nil {
				state = "revoked " + c.RevokedAt.UTC().Format(time.RFC3339) + " (" + c.Reason + ")"
			} else if !a.clock.Now().Before(c.NotAfter) {
				state = "expired"
			}
			fmt.Fprintf(e.stdout, "%s\t%s\t%s\tuntil %s\tsha256 %s\t%s\n", c.Serial, c.SystemID, c.Purpose, c.NotAfter.UTC().Format(time.RFC3339), c.SHA256, state)
		}
	case "revoke":
		if err := a.ca.Revoke(ctx, actor, tenant, pos[0], f["reason"]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "certificate %s revoked; refused from the next handshake on\n", pos[0])
	case "deactivate":
		n, err := a.ca.DeactivateSystem(ctx, actor, tenant, pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "system %s deactivated; %d certificate(s) revoked\n", pos[0], n)
	case "crl":
		der, err := a.ca.CRL(ctx, tenant)
		if err != nil {
			return err
		}
		return writeOut(e, f["out"], der)
	case "chain":
		chain, err := a.ca.Chain(ctx, tenant)
		if err != nil {
			return err
		}
		var b []byte
		for _, c := range chain {
			b = append(b, pki.PEM(c.Raw)...)
		}
		return writeOut(e, f["out"], b)
	}
	return nil
}
