package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/config"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// REQ: LOG-9
// The API and the security officer's page show one list: a log-on attack on
// an account of tenant A (raised by authn) and an emergency access in A
// (raised by access) are both in GET /api/v1/security-events and on
// /security/events for A's officer, and neither is there for tenant B's
// officer; an attack on an unknown user name is in neither tenant's list.
// The services are openApp's (one alert.Queue for access and authn), on a
// fake clock.
func TestOneSecurityQueueForAPIAndPage(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) { testOneSecurityQueue(t, dialect) })
	}
}

func testOneSecurityQueue(t *testing.T, dialect string) {
	ctx := context.Background()
	data := t.TempDir()
	cfg := config.Default()
	cfg.DataDir, cfg.DatabaseURL = data, filepath.Join(data, "zk.db")
	if dialect == "postgres" {
		cfg.DatabaseURL = storetest.PostgresURL(t)
	}
	c := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	discard := slog.New(slog.NewJSONHandler(io.Discard, nil))
	a, err := openAppAt(ctx, cfg, discard, c)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ids, an := a.ids, a.authn
	// The handler as serve mounts it.
	h, err := a.handler(discard, prometheus.NewRegistry(), "https://localhost")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	defer srv.Close()

	tenant := func(name string) string {
		ten, err := ids.CreateTenant(ctx, identity.Tenant{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return ten.ID
	}
	tenantA, tenantB := tenant("Praktijk A"), tenant("Ziekenhuis B")
	const pw = "correct horse battery staple 42"
	n := 0
	account := func(tenant, kind string, role access.Role) identity.Account {
		n++
		name := fmt.Sprintf("%s-%d", role, n)
		acc, err := ids.CreateAccount(ctx, identity.Account{TenantID: tenant, Kind: kind, Username: name, DisplayName: name, RegistrationMethod: 3})
		if err != nil {
			t.Fatal(err)
		}
		if err := ids.GrantRole(ctx, acc.ID, string(role), "test set-up"); err != nil {
			t.Fatal(err)
		}
		if err := an.SetPassword(ctx, acc.ID, pw, false); err != nil {
			t.Fatal(err)
		}
		return acc
	}
	logon := func(acc identity.Account) string {
		_, secret, err := an.EnrollTOTP(ctx, acc.ID, acc.Username)
		if err != nil {
			t.Fatal(err)
		}
		attempt, err := an.Begin(ctx, acc.Username, pw, "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		code, err := totp.GenerateCode(secret, c.Now())
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := an.CompleteTOTP(ctx, attempt, code, "192.0.2.1", acc.Username)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	get := func(tok, path string, asPage bool) (int, string) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if asPage {
			req.AddCookie(&http.Cookie{Name: "__Host-zk-session", Value: tok})
		} else {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	officerA := logon(account(tenantA, identity.KindAdmin, access.RoleSecurityOfficer))
	officerB := logon(account(tenantB, identity.KindAdmin, access.RoleSecurityOfficer))
	doc := account(tenantA, identity.KindProfessional, access.RoleProfessional)
	docTok := logon(doc)
	victim := account(tenantA, identity.KindProfessional, access.RoleProfessional)
	pid, err := ids.NewID("p-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ids.CreatePatient(ctx, a.db, pid, tenantA, nil); err != nil {
		t.Fatal(err)
	}

	// authn: wrong passwords for A's account, and for a name nobody has,
	// spaced as the throttle asks, until the lock: an attack.
	for i := range authn.DefaultSettings().LockAfter {
		c.Advance(2*time.Second<<max(0, i-3) + time.Second)
		for _, name := range []string{victim.Username, "niemand"} {
			if _, err := an.Begin(ctx, name, "not the password", "198.51.100.7"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// access: an emergency access in A, through the API.
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/emergencies",
		strings.NewReader(fmt.Sprintf(`{"patient_id":%q,"reason":"bewusteloos binnengebracht"}`, pid)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+docTok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("declare emergency: %d", resp.StatusCode)
	}

	// The API's list.
	code, body := get(officerA, "/api/v1/security-events", false)
	var evs []alert.Entry
	if code != http.StatusOK || json.Unmarshal([]byte(body), &evs) != nil {
		t.Fatalf("A's officer, API: %d %s", code, body)
	}
	kinds := map[string]string{}
	for _, e := range evs {
		if e.TenantID != tenantA {
			t.Errorf("another tenant's event in A's list: %+v", e)
		}
		kinds[e.Kind] = e.AccountID
	}
	if len(evs) != 2 || kinds["account-attack"] != victim.ID || kinds["emergency-access"] != doc.ID {
		t.Fatalf("A's officer, API: want the attack on %s and the emergency by %s, got %+v", victim.ID, doc.ID, evs)
	}
	if code, body := get(officerB, "/api/v1/security-events", false); code != http.StatusOK || strings.TrimSpace(body) != "[]" {
		t.Errorf("B's officer, API: %d %s", code, body)
	}

	// The page: the same two, and nothing of A's for B.
	code, page := get(officerA, "/security/events", true)
	if code != http.StatusOK {
		t.Fatalf("A's officer, page: %d %s", code, page)
	}
	if got := strings.Count(page, "<tr><td>"); got != len(evs) {
		t.Errorf("A's page has %d lines, the API %d:\n%s", got, len(evs), page)
	}
	// The page names the accounts in words (their user names), not by id.
	for _, want := range []string{"account-attack", victim.Username, "198.51.100.7", "emergency-access", doc.Username} {
		if !strings.Contains(page, want) {
			t.Errorf("A's page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, victim.ID) || strings.Contains(page, doc.ID) {
		t.Errorf("A's page shows an account id instead of its name:\n%s", page)
	}
	if strings.Contains(page, "niemand") || strings.Contains(page, "source-attack") {
		t.Errorf("an attack on an unknown name is on A's page:\n%s", page)
	}
	code, page = get(officerB, "/security/events", true)
	if code != http.StatusOK {
		t.Fatalf("B's officer, page: %d", code)
	}
	for _, never := range []string{"account-attack", "emergency-access", victim.ID, doc.ID, victim.Username, doc.Username} {
		if strings.Contains(page, never) {
			t.Errorf("B's page shows A's %q:\n%s", never, page)
		}
	}
	// The unknown name's attack is the operators'.
	ops, err := alert.NewQueue(a.db, c, rand.Reader, nil).List(ctx, "", time.Time{}, 0)
	if err != nil || len(ops) != 1 || ops[0].Kind != "account-attack" || ops[0].AccountID != "" || !strings.Contains(ops[0].Detail, "niemand") {
		t.Errorf("operators' queue: %+v %v", ops, err)
	}
}
