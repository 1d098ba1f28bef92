package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

// TestPKICommands drives `zorgkluis pki` on both engines: the operator
// proposes the tenant's CA and cannot approve it alone (four eyes), the
// tenant's admin approves; then register (a patient is no responsible
// person), issue an openssl CSR (366 days refused, exit 2), list, revoke,
// the CRL (read back by openssl), deactivate; usage errors exit 2.
// REQ: GOV-1
// REQ: ID-3
// REQ: DP-3
func TestPKICommands(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			f := newKeysFixture(t, dialect)
			pki := func(args ...string) (int, string, string) {
				var out, errb bytes.Buffer
				code := run(context.Background(), env{stdout: &out, stderr: &errb, getenv: f.getenv}, append([]string{"pki"}, args...))
				return code, out.String(), errb.String()
			}
			must := func(args ...string) string {
				t.Helper()
				code, out, errOut := pki(args...)
				if code != 0 {
					t.Fatalf("pki %v: exit %d\n%s%s", args, code, out, errOut)
				}
				return out
			}
			if code, _, errOut := pki("issue"); code != 2 || !strings.Contains(errOut, "needs 1 argument") {
				t.Fatalf("usage: %d %s", code, errOut)
			}
			if code, _, errOut := pki("systems"); code != 2 || !strings.Contains(errOut, "--tenant is required") {
				t.Fatalf("no tenant: %d %s", code, errOut)
			}
			out := must("propose-ca", "--tenant", f.tenantID)
			reqID := regexp.MustCompile(`ch-[a-z0-9]+`).FindString(out)
			if code, _, errOut := pki("approve", reqID); code != 2 || !strings.Contains(errOut, "four eyes") {
				t.Fatalf("the proposer approves: %d %s", code, errOut)
			}
			a := f.open(t)
			ctx := context.Background()
			admin, err := a.ids.CreateAccount(ctx, identity.Account{TenantID: f.tenantID, Kind: identity.KindAdmin, Username: "beheer", DisplayName: "Beheer", RegistrationMethod: 3})
			if err != nil {
				t.Fatal(err)
			}
			person, _ := a.ids.CreateAccount(ctx, identity.Account{TenantID: f.tenantID, Kind: identity.KindPerson, Username: "patient", DisplayName: "P", RegistrationMethod: 3})
			if _, err := a.ca.Approve(ctx, audit.Event{TenantID: f.tenantID, UserID: admin.ID, UserName: "Beheer", Role: "application-admin"}, reqID); err != nil {
				t.Fatal(err)
			}
			a.Close()
			if code, _, errOut := pki("register", "--tenant", f.tenantID, "--name", "Lab", "--responsible", person.ID, "--scopes", "read", "--categories", "*"); code != 2 || !strings.Contains(errOut, "ID-3") {
				t.Fatalf("a patient as responsible person: %d %s", code, errOut)
			}
			out = must("register", "--tenant", f.tenantID, "--name", "Lab", "--responsible", admin.ID, "--scopes", "read,search", "--categories", "*", "--patients", f.patients[0])
			sysID := regexp.MustCompile(`sys-[a-z0-9]+`).FindString(out)
			dir := t.TempDir()
			_, csr := opensslCSR(t, dir, "lab")
			os.WriteFile(filepath.Join(dir, "lab.csr"), []byte(csr), 0o600)
			if code, _, errOut := pki("issue", sysID, "--tenant", f.tenantID, "--csr", filepath.Join(dir, "lab.csr"), "--days", "366"); code != 2 ||
				!strings.Contains(errOut, "366 days exceeds the policy's maximum of 365 days") {
				t.Fatalf("366 days: %d %s", code, errOut)
			}
			out = must("issue", sysID, "--tenant", f.tenantID, "--csr", filepath.Join(dir, "lab.csr"), "--days", "365", "--out", filepath.Join(dir, "lab.pem"))
			serial := regexp.MustCompile(`certificate ([0-9a-f]{32})`).FindStringSubmatch(out)[1]
			if o, err := exec.Command("openssl", "x509", "-in", filepath.Join(dir, "lab.pem"), "-noout", "-serial", "-ext", "subjectAltName").CombinedOutput(); err != nil ||
				!sameSerial(string(o), serial) ||
				!strings.Contains(string(o), sysID+"."+f.tenantID+".systems.zorgkluis.internal") {
				t.Fatalf("openssl x509: %v\n%s", err, o)
			}
			if out := must("systems", "--tenant", f.tenantID); !strings.Contains(out, sysID) || !strings.Contains(out, "read,search") {
				t.Fatalf("systems:\n%s", out)
			}
			must("revoke", serial, "--tenant", f.tenantID, "--reason", "test")
			if code, _, _ := pki("revoke", serial, "--tenant", f.tenantID); code != 2 {
				t.Fatalf("revoked twice: exit %d", code)
			}
			must("crl", "--tenant", f.tenantID, "--out", filepath.Join(dir, "t.crl"))
			if o, err := exec.Command("openssl", "crl", "-inform", "DER", "-in", filepath.Join(dir, "t.crl"), "-noout", "-text").CombinedOutput(); err != nil ||
				!strings.Contains(strings.ToLower(strings.ReplaceAll(string(o), ":", "")), serial) {
				t.Fatalf("openssl crl: %v\n%s", err, o)
			}
			if out := must("certificates", "--tenant", f.tenantID); !strings.Contains(out, serial) || !strings.Contains(out, "revoked") {
				t.Fatalf("certificates:\n%s", out)
			}
			if out := must("deactivate", sysID, "--tenant", f.tenantID); !strings.Contains(out, "deactivated") {
				t.Fatalf("deactivate:\n%s", out)
			}
			if out := must("chain", "--tenant", f.tenantID); strings.Count(out, "BEGIN CERTIFICATE") != 2 {
				t.Fatalf("chain:\n%s", out)
			}
		})
	}
}

// sameSerial reports whether openssl's "serial=" line names serial (hex);
// openssl prints the number without its leading zero bytes.
func sameSerial(opensslOut, serial string) bool {
	m := regexp.MustCompile(`(?m)^serial=([0-9A-Fa-f]+)$`).FindStringSubmatch(opensslOut)
	return m != nil && strings.TrimLeft(strings.ToLower(m[1]), "0") == strings.TrimLeft(serial, "0")
}
