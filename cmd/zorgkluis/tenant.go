package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/config"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/onboard"
)

const tenantUsage = `Usage: zorgkluis tenant ACTION [ARGS] [flags]

Actions:
  create --name NAME --ura URA [--agb AGB]
                        register a care organisation (URA and AGB: 8 digits; a URA
                        that is registered already is refused)
  list [--json]         the tenants: id, name, URA, AGB, state
  deactivate TENANT     end a tenant: every account of it is deactivated at once
  invite-admin TENANT --name NAME --email EMAIL --verified-by WHO
                [--registration-method 1..4] [--deliver letter|email|sms] [--phone NR]
                [--url https://zorg.example] [--role application-admin|security-officer]
                        create the tenant's first administrator (a personal admin
                        account, AUTH-8) and print its one-time activation code and
                        link; the second secret goes by mail, SMS or a sealed letter
                        in DATA/letters (default: e-mail when smtp-addr is set,
                        otherwise a letter). Valid 72 hours (--invite-ttl), once.
                        Invite the security officer the same way (--role
                        security-officer): the second person who approves the
                        admin's right requests (four eyes, AZ-7). Refused once the
                        tenant has an active holder of the role: a further admin
                        gets the role by a right request and a second approval.

Every action is logged with your operating-system user name. The other flags
are those of "zorgkluis migrate" (--data, --database, --config).`

// localFlags takes the command's own flags out of args and leaves the
// configuration flags (for config.Load). bools are the flags without value.
func localFlags(args []string, names, bools []string) (map[string]string, []string, error) {
	got := map[string]string{}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			rest = append(rest, a)
			continue
		}
		switch {
		case contains(bools, name):
			got[name] = "true"
			if hasVal {
				got[name] = val
			}
		case contains(names, name):
			if !hasVal {
				if i+1 >= len(args) {
					return nil, nil, fmt.Errorf("flag --%s needs a value", name)
				}
				i++
				val = args[i]
			}
			got[name] = val
		default:
			rest = append(rest, a)
		}
	}
	return got, rest, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// runTenant is the tenant subcommand.
func runTenant(ctx context.Context, e env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(e.stdout, tenantUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	need := map[string]int{"create": 0, "list": 0, "deactivate": 1, "invite-admin": 1}
	action := args[0]
	n, ok := need[action]
	if !ok {
		fmt.Fprintf(e.stderr, "zorgkluis tenant: unknown action %q\n\n%s\n", action, tenantUsage)
		return 2
	}
	local, rest, err := localFlags(args[1:], []string{"name", "ura", "agb", "email", "verified-by", "registration-method", "deliver", "phone", "url", "invite-ttl", "role"}, []string{"json"})
	if err == nil && len(rest) < n {
		err = fmt.Errorf("needs %d argument(s)", n)
	}
	if err == nil && n > 0 && strings.HasPrefix(rest[0], "-") {
		err = errors.New("the tenant id comes first")
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "zorgkluis tenant %s: %v\n\n%s\n", action, err, tenantUsage)
		return 2
	}
	cfg, err := config.Load("tenant "+action, rest[n:], e.getenv, e.stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "zorgkluis tenant %s: %v\n", action, err)
		return 2
	}
	if err := tenantAction(ctx, e, cfg, action, rest[:n], local); err != nil {
		fmt.Fprintf(e.stderr, "zorgkluis tenant %s: %v\n", action, err)
		var ie *onboard.InputError
		if errors.As(err, &ie) || errors.Is(err, onboard.ErrDuplicate) {
			return 2
		}
		return 1
	}
	return 0
}

// onboarding is the onboard service on a's services, as the commands and
// the server use it.
func (a *app) onboarding(baseURL string, ttl time.Duration) *onboard.Service {
	return a.onboardWith(baseURL, ttl, a.sender)
}

// onboardWith is the onboard service with sender as the second channel
// (the demo's mailbox while it seeds).
func (a *app) onboardWith(baseURL string, ttl time.Duration, sender authn.Sender) *onboard.Service {
	return onboard.New(onboard.Config{DB: a.db, IDs: a.ids, Authn: a.authn, Audit: a.audit, Access: a.access, Clock: a.clock,
		Sender: sender, LetterDir: filepath.Join(a.cfg.DataDir, "letters"), BaseURL: baseURL, TTL: ttl})
}

func tenantAction(ctx context.Context, e env, cfg config.Config, action string, pos []string, f map[string]string) error {
	log := newLogger(env{stdout: e.stdout, stderr: discard{}, getenv: e.getenv}, "error")
	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	base := f["url"]
	if base == "" {
		base = "https://" + displayAddr(cfg.Addr)
	}
	var ttl time.Duration
	if f["invite-ttl"] != "" {
		if ttl, err = time.ParseDuration(f["invite-ttl"]); err != nil || ttl <= 0 {
			return &onboard.InputError{Field: "invite-ttl", Problem: "a positive duration such as 72h"}
		}
	}
	svc := a.onboarding(base, ttl)
	actor := operatorEvent("zorgkluis tenant " + action)
	switch action {
	case "create":
		t, err := svc.CreateTenant(ctx, actor, f["name"], f["ura"], f["agb"])
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "tenant %s created: %s (URA %s)\n", t.ID, t.Name, t.URA)
	case "list":
		ts, err := svc.Tenants(ctx)
		if err != nil {
			return err
		}
		if f["json"] == "true" {
			type row struct {
				ID     string `json:"id"`
				Name   string `json:"name"`
				URA    string `json:"ura"`
				AGB    string `json:"agb,omitempty"`
				Active bool   `json:"active"`
			}
			out := make([]row, 0, len(ts))
			for _, t := range ts {
				out = append(out, row{t.ID, t.Name, t.URA, t.AGB, t.Active})
			}
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		}
		for _, t := range ts {
			state := "active"
			if !t.Active {
				state = "deactivated"
			}
			fmt.Fprintf(e.stdout, "%s\t%s\tURA %s\t%s\n", t.ID, t.Name, t.URA, state)
		}
	case "deactivate":
		if err := svc.DeactivateTenant(ctx, actor, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "tenant %s deactivated; its accounts are deactivated and their sessions revoked\n", pos[0])
	case "invite-admin":
		method := 3
		if s := f["registration-method"]; s != "" {
			if method, err = strconv.Atoi(s); err != nil {
				return &onboard.InputError{Field: "registration-method", Problem: "registratiewijze 1..4"}
			}
		}
		if strings.TrimSpace(f["verified-by"]) == "" {
			return &onboard.InputError{Field: "verified-by", Problem: "say who verified the administrator's identity and how (ID-2)"}
		}
		deliver := f["deliver"]
		if deliver == "" {
			deliver = onboard.DeliverLetter
			if cfg.SMTPAddr != "" {
				deliver = onboard.DeliverEmail
			}
		}
		role := f["role"]
		if role == "" {
			role = string(access.RoleAppAdmin)
		}
		inv, err := svc.CreateInvitation(ctx, actor, onboard.Invite{TenantID: pos[0], Kind: identity.KindAdmin, Name: f["name"], Email: f["email"],
			Phone: f["phone"], RegistrationMethod: method, VerifiedBy: f["verified-by"], Deliver: deliver, Role: role})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "administrator %s invited (account %s, role %s)\n", inv.Username, inv.AccountID, role)
		fmt.Fprintf(e.stdout, "activation code: %s\nactivation link: %s\nvalid until:     %s (once)\n", inv.Code, inv.Link, inv.Expires.UTC().Format(time.RFC3339))
		if inv.Letter != "" {
			fmt.Fprintf(e.stdout, "the secret is in the sealed letter %s: print it, hand it over or post it, then delete the file\n", inv.Letter)
		} else {
			fmt.Fprintf(e.stdout, "the secret was sent by %s\n", deliver)
		}
	}
	return nil
}
