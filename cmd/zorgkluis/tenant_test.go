package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pquerna/otp/totp"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/config"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// cliFixture runs subcommands on one data directory (and database).
type cliFixture struct{ getenv func(string) string }

func newCLIFixture(t *testing.T, dialect string) *cliFixture {
	data := t.TempDir()
	vars := map[string]string{"ZK_DATA_DIR": data, "ZK_DATABASE_URL": filepath.Join(data, "zk.db")}
	if dialect == "postgres" {
		vars["ZK_DATABASE_URL"] = storetest.PostgresURL(t)
	}
	return &cliFixture{getenv: func(k string) string { return vars[k] }}
}

func (f *cliFixture) run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), env{stdout: &out, stderr: &errb, getenv: f.getenv}, args)
	return code, out.String(), errb.String()
}

func (f *cliFixture) must(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := f.run(args...)
	if code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, errs)
	}
	return out
}

func dialects() []string {
	if os.Getenv("ZK_TEST_POSTGRES_DSN") != "" {
		return []string{"sqlite", "postgres"}
	}
	return []string{"sqlite"}
}

var (
	tenantIDRe = regexp.MustCompile(`tenant (t-[a-z2-7]+) created`)
	codeRe     = regexp.MustCompile(`activation code: (\S+)`)
	letterRe   = regexp.MustCompile(`sealed letter (\S+):`)
	secretLine = regexp.MustCompile(`(?m)^    ([A-Z2-7-]+)$`)
)

// REQ: ID-6, AUTH-8, LOG-1
func TestTenantCommands(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d, func(t *testing.T) {
			f := newCLIFixture(t, d)
			// Bad input: a clear error naming the field, nothing created.
			for _, args := range [][]string{
				{"tenant", "create", "--name", "X", "--ura", "12"},
				{"tenant", "create", "--ura", "90000001"},
				{"tenant", "create", "--name", "X", "--ura", "90000001", "--agb", "abc"},
			} {
				if code, _, errs := f.run(args...); code != 2 || !strings.Contains(errs, ": ") {
					t.Errorf("%v: exit %d %q, want 2 and the field", args, code, errs)
				}
			}
			out := f.must(t, "tenant", "create", "--name", "Huisartsenpraktijk De Eik", "--ura", "90000123", "--agb=01000123")
			m := tenantIDRe.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("create said %q", out)
			}
			tid := m[1]
			if code, _, errs := f.run("tenant", "create", "--name", "Tweede", "--ura", "90000123"); code != 2 || !strings.Contains(errs, "URA 90000123: already registered") {
				t.Errorf("duplicate URA: exit %d %q", code, errs)
			}
			var list []struct {
				ID, Name, URA string
				Active        bool
			}
			if err := json.Unmarshal([]byte(f.must(t, "tenant", "list", "--json")), &list); err != nil || len(list) != 1 || list[0].ID != tid || list[0].URA != "90000123" || !list[0].Active {
				t.Fatalf("list: %+v %v", list, err)
			}
			if code, _, errs := f.run("tenant", "invite-admin", tid, "--name", "Anna de Vries", "--email", "anna@eik.example"); code != 2 || !strings.Contains(errs, "verified-by") {
				t.Errorf("invite without verified-by: %d %q", code, errs)
			}
			out = f.must(t, "tenant", "invite-admin", tid, "--name", "Anna de Vries", "--email", "anna@eik.example",
				"--verified-by", "J. Bakker (paspoort gezien)", "--url", "https://zorg.example")
			code, letter := codeRe.FindStringSubmatch(out), letterRe.FindStringSubmatch(out)
			if code == nil || letter == nil || !strings.Contains(out, "https://zorg.example/activate?code=") {
				t.Fatalf("invite-admin said %q", out)
			}
			b, err := os.ReadFile(letter[1])
			if err != nil {
				t.Fatal(err)
			}
			secret := secretLine.FindSubmatch(b)
			if secret == nil || strings.Contains(out, string(secret[1])) {
				t.Fatalf("the secret must be in the letter only:\n%s\n%s", out, b)
			}
			// Activate through the same service the server uses, then log on.
			a := f.open(t)
			defer a.Close()
			ctx := context.Background()
			svc := a.onboarding("https://zorg.example", 0)
			const pw = "paarse olifant danst op het ijs 7"
			enr, err := svc.StartActivation(ctx, code[1], string(secret[1]), pw, "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			c, _ := totp.GenerateCode(enr.Secret, a.clock.Now())
			if _, err := svc.CompleteActivation(ctx, code[1], string(secret[1]), c, "127.0.0.1"); err != nil {
				t.Fatal(err)
			}
			evs, err := a.audit.Query(ctx, audit.Filter{TenantID: tid})
			if err != nil {
				t.Fatal(err)
			}
			var byOS int
			for _, ev := range evs {
				if strings.HasPrefix(ev.UserID, "os:") && strings.HasPrefix(ev.SourceApp, "zorgkluis tenant ") {
					byOS++
				}
			}
			if byOS < 2 {
				t.Errorf("%d events with the operator's OS identity, want create and invite-admin", byOS)
			}
			f.must(t, "tenant", "deactivate", tid)
			if !strings.Contains(f.must(t, "tenant", "list"), "deactivated") {
				t.Error("list does not show the deactivation")
			}
		})
	}
}

func (f *cliFixture) open(t *testing.T) *app {
	t.Helper()
	cfg, err := config.Load("test", nil, f.getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := openApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// REQ: ID-2, ID-6
func TestAccountsImport(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d, func(t *testing.T) {
			f := newCLIFixture(t, d)
			tid := tenantIDRe.FindStringSubmatch(f.must(t, "tenant", "create", "--name", "Praktijk", "--ura", "90000555"))[1]
			dir := t.TempDir()
			write := func(name, body string) string {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			}
			good := write("good.csv", "name,email,registration_method,verified_by,function,big\n"+
				"Dr. P. Jansen,p@praktijk.example,3,A. de Vries (BIG-register),huisarts,12345678901\n"+
				"M. Smit,m@praktijk.example,3,A. de Vries (paspoort),assistent,\n")
			broken := write("broken.csv", "name,email,registration_method,verified_by,big\n"+
				"Dr. P. Jansen,p@praktijk.example,3,A. de Vries,12345678901\n"+
				"M. Smit,m@praktijk.example,7,A. de Vries,\n"+
				"K. Bakker,geen-adres,3,A. de Vries,\n"+
				"L. Visser,l@praktijk.example,3,A. de Vries,123\n"+
				"Dubbel,P@praktijk.example,3,A. de Vries,\n")
			code, _, errs := f.run("accounts", "import", broken, "--tenant", tid, "--apply")
			for _, want := range []string{"line 3, field registration_method", "line 4, field email", "line 5, field big", "line 6, field email: the same as line 2", "nothing was imported"} {
				if !strings.Contains(errs, want) {
					t.Errorf("broken CSV: want %q in:\n%s", want, errs)
				}
			}
			if code != 2 {
				t.Errorf("broken CSV: exit %d", code)
			}
			if _, _, errs := f.run("accounts", "import", write("cols.csv", "name,email,password\nX,x@y.z,geheim\n"), "--tenant", tid); !strings.Contains(errs, `unknown column "password"`) {
				t.Errorf("unknown column: %s", errs)
			}
			a := f.open(t)
			if _, err := a.ids.AccountByUsername(context.Background(), "p@praktijk.example"); err == nil {
				t.Fatal("a broken import created an account")
			}
			a.Close()
			if out := f.must(t, "accounts", "import", good, "--tenant", tid); !strings.Contains(out, "dry run: 2 account(s)") {
				t.Errorf("dry run said %q", out)
			}
			a = f.open(t)
			if _, err := a.ids.AccountByUsername(context.Background(), "p@praktijk.example"); err == nil {
				t.Fatal("the dry run created an account")
			}
			a.Close()
			out := f.must(t, "accounts", "import", good, "--tenant", tid, "--apply")
			if !strings.Contains(out, "2 account(s) invited") || strings.Count(out, "code ") != 2 {
				t.Fatalf("apply said %q", out)
			}
			a = f.open(t)
			defer a.Close()
			acc, err := a.ids.AccountByUsername(context.Background(), "p@praktijk.example")
			if err != nil || !acc.Pending || acc.RegistrationMethod != 3 || acc.VerifiedBy != "A. de Vries (BIG-register)" {
				t.Fatalf("imported %+v %v", acc, err)
			}
			if roles, _ := a.ids.Roles(context.Background(), acc.ID); len(roles) != 0 {
				t.Errorf("imported with roles %v", roles)
			}
		})
	}
}

// The import's withdraw path: the lines are written in one transaction and
// their secrets sent after it; when the mail server cannot be reached,
// every invitation of the file is withdrawn (no code works, no account can
// ever log on), the error names the line, and the exit code says it failed.
// A file with only a header imports nothing.
//
// REQ: ID-6
func TestAccountsImportWithdrawsOnFailure(t *testing.T) {
	for _, d := range dialects() {
		t.Run(d, func(t *testing.T) {
			base := newCLIFixture(t, d)
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			closed := l.Addr().String()
			l.Close() // nothing listens there: every mail fails
			f := &cliFixture{getenv: func(k string) string {
				switch k {
				case "ZK_SMTP_ADDR":
					return closed
				case "ZK_SMTP_FROM":
					return "noreply@praktijk.example"
				}
				return base.getenv(k)
			}}
			tid := tenantIDRe.FindStringSubmatch(f.must(t, "tenant", "create", "--name", "Praktijk", "--ura", "90000556"))[1]
			dir := t.TempDir()
			csvPath := filepath.Join(dir, "staff.csv")
			if err := os.WriteFile(csvPath, []byte("name,email,registration_method,verified_by\n"+
				"Dr. P. Jansen,p@praktijk.example,3,A. de Vries\nM. Smit,m@praktijk.example,3,A. de Vries\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, errs := f.run("accounts", "import", csvPath, "--tenant", tid, "--deliver", "email", "--apply")
			if code != 1 || !strings.Contains(errs, "line 2: deliver the secret") || !strings.Contains(errs, "nothing was imported") {
				t.Fatalf("failed delivery: exit %d: %s", code, errs)
			}
			a := f.open(t)
			defer a.Close()
			ctx := context.Background()
			for _, u := range []string{"p@praktijk.example", "m@praktijk.example"} {
				acc, err := a.ids.AccountByUsername(ctx, u)
				if err != nil || acc.Active || acc.Pending {
					t.Errorf("%s: %+v %v, want withdrawn", u, acc, err)
				}
			}
			var open int
			if err := a.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM onboard_invitations WHERE tenant_id = $1 AND state <> 'revoked'`, tid).Scan(&open); err != nil || open != 0 {
				t.Errorf("%d invitations still open (%v)", open, err)
			}
			header := filepath.Join(dir, "empty.csv")
			_ = os.WriteFile(header, []byte("name,email,registration_method,verified_by\n"), 0o600)
			if code, _, errs := f.run("accounts", "import", header, "--tenant", tid, "--apply"); code != 2 || !strings.Contains(errs, "holds no accounts") {
				t.Errorf("header only: exit %d: %s", code, errs)
			}
		})
	}
}
