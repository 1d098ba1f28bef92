package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/config"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/record"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// keysFixture is a data directory with a tenant, a GP and two patients
// with a few resources each, written through the app as the server would.
type keysFixture struct {
	getenv   func(string) string
	tenantID string
	gp       access.Subject
	patients []string
}

func newKeysFixture(t *testing.T, dialect string) *keysFixture {
	t.Helper()
	data := t.TempDir()
	vars := map[string]string{"ZK_DATA_DIR": data, "ZK_DATABASE_URL": filepath.Join(data, "zk.db")}
	if dialect == "postgres" {
		vars["ZK_DATABASE_URL"] = storetest.PostgresURL(t)
	}
	f := &keysFixture{getenv: func(k string) string { return vars[k] }}
	a := f.open(t)
	defer a.Close()
	ctx := context.Background()
	ten, err := a.ids.CreateTenant(ctx, identity.Tenant{Name: "Praktijk"})
	if err != nil {
		t.Fatal(err)
	}
	f.tenantID = ten.ID
	acc, err := a.ids.CreateAccount(ctx, identity.Account{TenantID: ten.ID, Kind: identity.KindProfessional, Username: "gp", DisplayName: "gp", RegistrationMethod: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ids.GrantRole(ctx, acc.ID, string(access.RoleProfessional), "test set-up"); err != nil { // Decide checks the account holds it
		t.Fatal(err)
	}
	f.gp = access.NewSubject(access.SubjectSpec{AccountID: acc.ID, Name: "gp", TenantID: ten.ID, Organisation: ten.Name, Role: access.RoleProfessional, Assurance: access.Hoog})
	for i := 0; i < 2; i++ {
		pid, _ := a.ids.NewID("p-")
		g, err := a.access.DecideRegistration(ctx, f.gp, pid)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.records.RegisterPatient(ctx, g, a.ids, nil, []byte(`{"resourceType":"Patient","name":[{"family":"P`+fmt.Sprint(i)+`"}]}`)); err != nil {
			t.Fatal(err)
		}
		if _, err := a.access.AddRelationship(ctx, access.Relationship{TenantID: ten.ID, ProfessionalID: acc.ID, PatientID: pid, Kind: "gp",
			Start: time.Now().Add(-time.Hour), RecordedBy: "test"}); err != nil {
			t.Fatal(err)
		}
		cg, err := a.access.Decide(ctx, f.gp, access.Request{PatientID: pid, Action: access.Create})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.records.Insert(ctx, cg, record.Resource{Type: "Observation", ID: "o-" + pid, PatientID: pid, Categories: []string{"clinical"},
			Body: []byte(`{"resourceType":"Observation","status":"final"}`)}); err != nil {
			t.Fatal(err)
		}
		f.patients = append(f.patients, pid)
	}
	return f
}

func (f *keysFixture) open(t *testing.T) *app {
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

func (f *keysFixture) keys(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), env{stdout: &out, stderr: &errb, getenv: f.getenv}, append([]string{"keys"}, args...)); code != 0 {
		t.Fatalf("keys %v: exit %d\n%s%s", args, code, out.String(), errb.String())
	}
	return out.String()
}

// read reads a patient's Patient and Observation through a fresh app (so
// no key cache survives from before) and returns the first error.
func (f *keysFixture) read(t *testing.T, pid string) error {
	t.Helper()
	a := f.open(t)
	defer a.Close()
	ctx := context.Background()
	g, err := a.access.Decide(ctx, f.gp, access.Request{PatientID: pid, Action: access.Read})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.records.Read(ctx, g, "Patient", pid); err != nil {
		return err
	}
	_, err = a.records.Read(ctx, g, "Observation", "o-"+pid)
	return err
}

// REQ: DP-1, GOV-1 — `zorgkluis keys` rotates the master key and (after a
// second operator's approval) a tenant key
// without re-encrypting data, every record stays readable, and shredding
// one patient's key makes exactly that patient unreadable; the shred is in
// the access log.
func TestKeysRotateAndShred(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			f := newKeysFixture(t, dialect)
			before := f.keys(t, "show")
			if !strings.Contains(before, "key version 1") {
				t.Fatalf("show: %s", before)
			}
			// A tenant key's rotation is a four-eyes change (GOV-1): the
			// proposing operator cannot carry it out, another can.
			out := f.keys(t, "rotate-tenant", f.tenantID)
			reqID := regexp.MustCompile(`ch-[a-z0-9]+`).FindString(out)
			if reqID == "" || !strings.Contains(f.keys(t, "requests", f.tenantID), reqID) || !strings.Contains(f.keys(t, "show"), "key version 1") {
				t.Fatalf("rotate-tenant: %s", out)
			}
			var errb bytes.Buffer
			if code := run(context.Background(), env{stdout: io.Discard, stderr: &errb, getenv: f.getenv}, []string{"keys", "approve", reqID}); code != 1 ||
				!strings.Contains(errb.String(), "proposed by this account") {
				t.Fatalf("the proposer approves: exit %d %s", code, errb.String())
			}
			second := change.Actor{AccountID: "os:second-operator", Role: "platform-admin"} // another operating-system user
			cfg, err := config.Load("test", nil, f.getenv, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			var approved bytes.Buffer
			if err := keysDecide(context.Background(), env{stdout: &approved, stderr: io.Discard, getenv: f.getenv}, cfg, reqID, true, second); err != nil ||
				!strings.Contains(approved.String(), "re-wrapped") {
				t.Fatalf("the second operator approves: %v %s", err, approved.String())
			}
			out = f.keys(t, "rotate-master")
			masterID := regexp.MustCompile(`ch-[a-z0-9]+`).FindString(out)
			if masterID == "" || !strings.Contains(f.keys(t, "requests"), masterID) {
				t.Fatalf("rotate-master: %s", out)
			}
			keyFile := filepath.Join(cfg.DataDir, "master.key")
			keyBefore, _ := os.ReadFile(keyFile)
			errb.Reset()
			if code := run(context.Background(), env{stdout: io.Discard, stderr: &errb, getenv: f.getenv}, []string{"keys", "approve", masterID}); code != 1 ||
				!strings.Contains(errb.String(), "proposed by this account") {
				t.Fatalf("the proposer approves the master key's rotation: exit %d %s", code, errb.String())
			}
			if keyAfter, _ := os.ReadFile(keyFile); !bytes.Equal(keyBefore, keyAfter) {
				t.Fatal("a refused approval added a master key")
			}
			approved.Reset()
			if err := keysDecide(context.Background(), env{stdout: &approved, stderr: io.Discard, getenv: f.getenv}, cfg, masterID, true, second); err != nil ||
				!strings.Contains(approved.String(), "re-wrapped 1 tenant key(s)") {
				t.Fatalf("rotate-master approved: %v %s", err, approved.String())
			}
			after := f.keys(t, "show")
			if !strings.Contains(after, "key version 2") || strings.SplitN(after, "\n", 2)[0] == strings.SplitN(before, "\n", 2)[0] {
				t.Fatalf("show after rotations:\n%s\nbefore:\n%s", after, before)
			}
			for _, p := range f.patients {
				if err := f.read(t, p); err != nil {
					t.Fatalf("after rotation %s: %v", p, err)
				}
			}

			f.keys(t, "shred", f.tenantID, f.patients[0])
			if err := f.read(t, f.patients[0]); !errors.Is(err, record.ErrErased) {
				t.Fatalf("shredded patient read: %v; want ErrErased", err)
			}
			if err := f.read(t, f.patients[1]); err != nil {
				t.Fatalf("other patient after shred: %v", err)
			}
			a := f.open(t)
			defer a.Close()
			evs, err := a.audit.Query(context.Background(), audit.Filter{TenantID: f.tenantID, PatientID: f.patients[0], Action: audit.ActionDelete})
			if err != nil || len(evs) != 1 || evs[0].Basis != "crypto-shredding" || evs[0].Outcome != audit.OutcomeSuccess || !strings.HasPrefix(evs[0].UserID, "os:") {
				t.Fatalf("shred event: %+v, %v", evs, err)
			}
			// The failed read of the erased record is logged too.
			evs, err = a.audit.Query(context.Background(), audit.Filter{TenantID: f.tenantID, PatientID: f.patients[0], Action: audit.ActionRead})
			if err != nil || len(evs) == 0 || evs[len(evs)-1].Outcome != audit.OutcomeFailed && evs[0].Outcome != audit.OutcomeFailed {
				t.Fatalf("failed read of erased data not logged: %+v, %v", evs, err)
			}
			// A patient without a key: an error, and logged as failed.
			errb.Reset()
			if code := run(context.Background(), env{stdout: io.Discard, stderr: &errb, getenv: f.getenv}, []string{"keys", "shred", f.tenantID, "p-nobody"}); code != 1 {
				t.Fatalf("shred of an unknown patient: exit %d %s", code, errb.String())
			}
		})
	}
}

func TestKeysUsage(t *testing.T) {
	var out, errb bytes.Buffer
	e := env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := run(context.Background(), e, []string{"keys", "bogus"}); code != 2 || !strings.Contains(errb.String(), "unknown action") {
		t.Fatalf("bogus action: %d %s", code, errb.String())
	}
	if code := run(context.Background(), e, []string{"keys", "shred", "only-tenant"}); code != 2 {
		t.Fatalf("missing argument: %d", code)
	}
}

// The master key can come from ZK_MASTER_KEY instead of the data
// directory: then no key file is written there; a bad value stops start-up
// naming the setting, never echoing the value.
// REQ: DP-1
func TestMasterKeyFromEnvironment(t *testing.T) {
	data := t.TempDir()
	const good = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	getenv := func(key string) func(string) string {
		return func(k string) string {
			switch k {
			case "ZK_DATA_DIR":
				return data
			case "ZK_MASTER_KEY":
				return key
			}
			return ""
		}
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), env{stdout: &out, stderr: &errb, getenv: getenv(good)}, []string{"keys", "show"}); code != 0 {
		t.Fatalf("keys show with ZK_MASTER_KEY: exit %d %s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(data, "master.key")); !os.IsNotExist(err) {
		t.Fatalf("a master key file was written although ZK_MASTER_KEY is set: %v", err)
	}
	errb.Reset()
	const bad = "bm90LWEta2V5LXNlY3JldC12YWx1ZQ=="
	if code := run(context.Background(), env{stdout: io.Discard, stderr: &errb, getenv: getenv(bad)}, []string{"keys", "show"}); code == 0 ||
		!strings.Contains(errb.String(), "ZK_MASTER_KEY") || strings.Contains(errb.String(), bad) {
		t.Fatalf("bad ZK_MASTER_KEY: exit %d %s", code, errb.String())
	}
}
