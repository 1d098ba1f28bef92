package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/zorgkluis/zorgkluis/internal/config"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/onboard"
)

const accountsUsage = `Usage: zorgkluis accounts import FILE --tenant TENANT [--apply] [--deliver letter|email|sms] [--url URL] [flags]

Invites the staff listed in FILE, a CSV file with a header line. Columns:
  name, email, registration_method (1..4), verified_by     required
  function, big, uzi, agb, kind (professional|admin), phone, deliver   optional

Every line is checked first and each error names its line and field. Without
--apply nothing is written (a dry run). With --apply all lines are invited or,
when one fails, none: what was made is withdrawn. The accounts get no role;
their first roles go through a right request and a second person's approval.
The other flags are those of "zorgkluis migrate" (--data, --database, --config).`

var importColumns = []string{"name", "email", "registration_method", "verified_by", "function", "big", "uzi", "agb", "kind", "phone", "deliver"}

// maxImportBytes bounds the file read (a staff list, not a data set).
const maxImportBytes = 8 << 20

func runAccounts(ctx context.Context, e env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(e.stdout, accountsUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] != "import" {
		fmt.Fprintf(e.stderr, "zorgkluis accounts: unknown action %q\n\n%s\n", args[0], accountsUsage)
		return 2
	}
	local, rest, err := localFlags(args[1:], []string{"tenant", "deliver", "url"}, []string{"apply"})
	if err == nil && (len(rest) < 1 || strings.HasPrefix(rest[0], "-")) {
		err = errors.New("needs the FILE first")
	}
	if err == nil && local["tenant"] == "" {
		err = errors.New("--tenant is required")
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "zorgkluis accounts import: %v\n\n%s\n", err, accountsUsage)
		return 2
	}
	cfg, err := config.Load("accounts import", rest[1:], e.getenv, e.stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "zorgkluis accounts import: %v\n", err)
		return 2
	}
	code, err := importAccounts(ctx, e, cfg, rest[0], local)
	if err != nil {
		fmt.Fprintf(e.stderr, "zorgkluis accounts import: %v\n", err)
	}
	return code
}

type importLine struct {
	line int
	in   onboard.Invite
}

// readImport parses the CSV file into invitations; errors name line and
// field.
func readImport(r io.Reader, tenantID, deliver string) ([]importLine, []string) {
	cr := csv.NewReader(io.LimitReader(r, maxImportBytes))
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, []string{"line 1: cannot read the header: " + err.Error()}
	}
	col := map[string]int{}
	var errs []string
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !contains(importColumns, h) {
			errs = append(errs, fmt.Sprintf("line 1, column %d: unknown column %q", i+1, h))
		}
		col[h] = i
	}
	for _, req := range importColumns[:4] {
		if _, ok := col[req]; !ok {
			errs = append(errs, fmt.Sprintf("line 1: column %q is missing", req))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	var out []importLine
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			errs = append(errs, fmt.Sprintf("line %d: %v", line, err))
			break
		}
		if len(rec) != len(header) {
			errs = append(errs, fmt.Sprintf("line %d: %d fields, the header has %d", line, len(rec), len(header)))
			continue
		}
		get := func(name string) string {
			if i, ok := col[name]; ok {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		method, err := strconv.Atoi(get("registration_method"))
		if err != nil {
			errs = append(errs, fmt.Sprintf("line %d, field registration_method: registratiewijze 1..4", line))
			continue
		}
		in := onboard.Invite{TenantID: tenantID, Kind: get("kind"), Name: get("name"), Email: get("email"), Phone: get("phone"),
			RegistrationMethod: method, VerifiedBy: get("verified_by"), Deliver: get("deliver")}
		if in.Kind == "" {
			in.Kind = identity.KindProfessional
		}
		if in.Kind != identity.KindProfessional && in.Kind != identity.KindAdmin {
			errs = append(errs, fmt.Sprintf("line %d, field kind: professional or admin", line))
			continue
		}
		if in.Deliver == "" {
			in.Deliver = deliver
		}
		if in.VerifiedBy == "" {
			errs = append(errs, fmt.Sprintf("line %d, field verified_by: say who verified the identity and how (ID-2)", line))
			continue
		}
		if in.Kind == identity.KindProfessional {
			in.Professional = &identity.Professional{BIG: get("big"), UZI: get("uzi"), AGB: get("agb"), FunctionTitle: get("function")}
		}
		out = append(out, importLine{line: line, in: in})
	}
	return out, errs
}

func importAccounts(ctx context.Context, e env, cfg config.Config, path string, f map[string]string) (int, error) {
	file, err := os.Open(path)
	if err != nil {
		return 2, err
	}
	defer file.Close()
	deliver := f["deliver"]
	if deliver == "" {
		deliver = onboard.DeliverLetter
		if cfg.SMTPAddr != "" {
			deliver = onboard.DeliverEmail
		}
	}
	lines, errs := readImport(file, f["tenant"], deliver)
	log := newLogger(env{stdout: e.stdout, stderr: discard{}, getenv: e.getenv}, "error")
	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return 1, err
	}
	defer a.Close()
	base := f["url"]
	if base == "" {
		base = "https://" + displayAddr(cfg.Addr)
	}
	svc := a.onboarding(base, 0)
	seen := map[string]int{}
	for i, l := range lines {
		in, err := svc.CheckInvite(ctx, l.in)
		if err != nil {
			field := "line"
			var ie *onboard.InputError
			if errors.As(err, &ie) {
				field, err = ie.Field, errors.New(ie.Problem)
			}
			errs = append(errs, fmt.Sprintf("line %d, field %s: %v", l.line, field, err))
			continue
		}
		key := identity.NormalizeUsername(in.Email)
		if first, dup := seen[key]; dup {
			errs = append(errs, fmt.Sprintf("line %d, field email: the same as line %d", l.line, first))
		}
		seen[key] = l.line
		lines[i].in = in
	}
	if len(errs) > 0 {
		for _, m := range errs {
			fmt.Fprintln(e.stderr, m)
		}
		return 2, fmt.Errorf("%d error(s) in %s; nothing was imported", len(errs), path)
	}
	if len(lines) == 0 {
		return 2, fmt.Errorf("%s holds no accounts (only a header)", path)
	}
	if f["apply"] != "true" {
		fmt.Fprintf(e.stdout, "dry run: %d account(s) in %s are valid; run again with --apply to invite them\n", len(lines), path)
		return 0, nil
	}
	// One batch: every account, invitation and log line in one
	// transaction, then the secrets; a failure anywhere leaves no
	// invitation that works (onboard.CreateInvitations).
	ins := make([]onboard.Invite, len(lines))
	for i, l := range lines {
		ins[i] = l.in
	}
	var report func(string, int, int)
	if isTerminal(e.stdout) {
		report = func(step string, done, total int) { fmt.Fprintf(e.stdout, "\r%s %d/%d", step, done, total) }
	}
	made, err := svc.CreateInvitations(ctx, operatorEvent("zorgkluis accounts import"), ins, report)
	if report != nil {
		fmt.Fprintln(e.stdout)
	}
	if err != nil {
		var be *onboard.BatchError
		if errors.As(err, &be) {
			at := fmt.Sprintf("line %d", lines[be.Index].line)
			cause := be.Err
			var ie *onboard.InputError
			if errors.As(cause, &ie) {
				at, cause = at+", field "+ie.Field, errors.New(ie.Problem)
			}
			return 1, fmt.Errorf("%s: %v; nothing was imported", at, cause)
		}
		return 1, fmt.Errorf("%w; nothing was imported", err)
	}
	for _, inv := range made {
		where := "secret by " + deliver
		if inv.Letter != "" {
			where = "letter " + inv.Letter
		}
		fmt.Fprintf(e.stdout, "%s\t%s\tcode %s\t%s\n", inv.Username, inv.AccountID, inv.Code, where)
	}
	fmt.Fprintf(e.stdout, "%d account(s) invited; valid until %s\n", len(made), made[0].Expires.UTC().Format("2006-01-02 15:04 MST"))
	return 0, nil
}
