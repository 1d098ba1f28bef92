package onboard_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/onboard"
	"github.com/zorgkluis/zorgkluis/internal/password"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

const goodPassword = "paarse olifant danst op het ijs 7"

type env struct {
	kit    *testkit.Kit
	clk    *clock.Fake
	svc    *onboard.Service
	letter string
}

func newEnv(t *testing.T, db *store.DB) env {
	clk := clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	kit := testkit.New(t, db, testkit.WithClock(clk))
	dir := t.TempDir()
	svc := onboard.New(onboard.Config{DB: db, IDs: kit.IDs, Authn: kit.Authn, Audit: kit.Audit, Clock: clk,
		LetterDir: dir, BaseURL: "https://zorg.example"})
	return env{kit: kit, clk: clk, svc: svc, letter: dir}
}

func operator() audit.Event {
	return audit.Event{UserID: "os:beheer", UserName: "beheer", Role: "platform-admin", SourceApp: "test"}
}

var secretRe = regexp.MustCompile(`(?m)^    ([A-Z2-7-]+)$`)

// secretOf reads the second-channel secret from the sealed letter.
func secretOf(t *testing.T, inv onboard.Invitation) string {
	t.Helper()
	fi, err := os.Stat(inv.Letter)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("letter mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := os.ReadFile(inv.Letter)
	if err != nil {
		t.Fatal(err)
	}
	m := secretRe.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no secret in letter:\n%s", b)
	}
	return string(m[1])
}

func (e env) tenant(t *testing.T) identity.Tenant {
	t.Helper()
	tn, err := e.svc.CreateTenant(context.Background(), operator(), "Huisartsenpraktijk De Eik", "90000123", "01000123")
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

func (e env) inviteAdmin(t *testing.T, tenantID, email string) onboard.Invitation {
	t.Helper()
	inv, err := e.svc.CreateInvitation(context.Background(), operator(), onboard.Invite{TenantID: tenantID, Kind: identity.KindAdmin,
		Name: "Anna de Vries", Email: email, RegistrationMethod: 2, VerifiedBy: "beheer (paspoort gezien)",
		Deliver: onboard.DeliverLetter, Role: string(access.RoleAppAdmin)})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// REQ: ID-6, AUTH-1, AUTH-5, AUTH-8, LOG-1
func TestInviteAndActivateAdmin(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		tn := e.tenant(t)
		inv := e.inviteAdmin(t, tn.ID, "anna@eik.example")
		if n := len(strings.ReplaceAll(inv.Code, "-", "")); n < 26 { // 26 base32 characters = 130 bits
			t.Fatalf("code %q has %d characters, want >= 128 bits", inv.Code, n)
		}
		if !strings.HasPrefix(inv.Link, "https://zorg.example/activate?code=") {
			t.Errorf("link %q", inv.Link)
		}
		if got := inv.Expires.Sub(e.clk.Now()); got != 72*time.Hour {
			t.Errorf("expires after %v, want 72h", got)
		}
		secret := secretOf(t, inv)
		// No code or secret is stored in the clear.
		var stored int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM onboard_invitations WHERE code_hash = $1 OR secret_hash = $2`, []byte(inv.Code), []byte(secret)).Scan(&stored); err != nil || stored != 0 {
			t.Fatalf("code stored in the clear (%d, %v)", stored, err)
		}
		// Pending: no log-on yet (no password, inactive).
		acc, err := e.kit.IDs.Account(ctx, inv.AccountID)
		if err != nil || !acc.Pending || acc.Active || acc.Kind != identity.KindAdmin {
			t.Fatalf("account %+v %v, want a pending admin", acc, err)
		}
		// A weak password is refused by the policy, and nothing changes.
		if _, err := e.svc.StartActivation(ctx, inv.Code, secret, "welkom01", "192.0.2.1"); !errors.As(err, new(password.Violations)) {
			t.Fatalf("weak password: %v, want policy violations", err)
		}
		enr, err := e.svc.StartActivation(ctx, strings.ToLower(inv.Code), secret, goodPassword, "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		// The password alone does not log on: the account is still pending.
		if _, err := e.kit.Authn.Begin(ctx, inv.Username, goodPassword, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		if acc, _ := e.kit.IDs.Account(ctx, inv.AccountID); acc.Active {
			t.Fatal("active before the authenticator app was confirmed")
		}
		if _, err := e.svc.CompleteActivation(ctx, inv.Code, secret, "000000", "192.0.2.1"); !errors.Is(err, onboard.ErrTOTP) {
			t.Fatalf("wrong TOTP: %v", err)
		}
		code, _ := totp.GenerateCode(enr.Secret, e.clk.Now())
		if _, err := e.svc.CompleteActivation(ctx, inv.Code, secret, code, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		// Used once: the same code again is the one invalid answer.
		if _, err := e.svc.StartActivation(ctx, inv.Code, secret, goodPassword, "192.0.2.1"); !errors.Is(err, onboard.ErrInvalidCode) {
			t.Fatalf("reused code: %v", err)
		}
		e.clk.Advance(31 * time.Second)
		attempt, err := e.kit.Authn.Begin(ctx, inv.Username, goodPassword, "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		code, _ = totp.GenerateCode(enr.Secret, e.clk.Now())
		_, sess, err := e.kit.Authn.CompleteTOTP(ctx, attempt, code, "192.0.2.1", inv.Username)
		if err != nil {
			t.Fatalf("log on after activation: %v", err)
		}
		if sess.Role != access.RoleAppAdmin {
			t.Errorf("session role %q", sess.Role)
		}
		// Every step is in the log: tenant, invitation, start, complete.
		evs, err := e.kit.Audit.Query(ctx, audit.Filter{TenantID: tn.ID})
		if err != nil {
			t.Fatal(err)
		}
		var steps []string
		for _, ev := range evs {
			if ev.Reason == "tenant created (URA 90000123)" || strings.Contains(ev.Reason, "account invited") || strings.HasPrefix(ev.Query, "activation-") {
				steps = append(steps, string(ev.Outcome)+":"+ev.Query+":"+ev.Reason)
			}
		}
		if len(steps) < 5 {
			t.Errorf("logged steps %q, want tenant, invitation, failures, start, complete", steps)
		}
	})
}

// REQ: ID-6
func TestActivationCodeRefusals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		tn := e.tenant(t)
		inv := e.inviteAdmin(t, tn.ID, "anna@eik.example")
		secret := secretOf(t, inv)
		// Guessed code, right code with a wrong secret, expired code: one answer.
		if _, err := e.svc.StartActivation(ctx, "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG-HHHH", secret, goodPassword, "192.0.2.9"); !errors.Is(err, onboard.ErrInvalidCode) {
			t.Fatalf("guessed: %v", err)
		}
		if _, err := e.svc.StartActivation(ctx, inv.Code, "WRONG", goodPassword, "192.0.2.9"); !errors.Is(err, onboard.ErrInvalidCode) {
			t.Fatalf("wrong secret: %v", err)
		}
		e.clk.Advance(72*time.Hour + time.Second)
		if _, err := e.svc.StartActivation(ctx, inv.Code, secret, goodPassword, "192.0.2.9"); !errors.Is(err, onboard.ErrInvalidCode) {
			t.Fatalf("expired: %v", err)
		}
		// Throttled: many failures from one source.
		for range 10 {
			_, _ = e.svc.StartActivation(ctx, "AAAA", "B", goodPassword, "192.0.2.10")
		}
		if _, err := e.svc.StartActivation(ctx, "AAAA", "B", goodPassword, "192.0.2.10"); !errors.Is(err, onboard.ErrThrottled) {
			t.Fatalf("throttle: %v", err)
		}
		// Wrong secrets on one code revoke it.
		inv2 := e.inviteAdmin(t, tn.ID, "bert@eik.example")
		s2 := secretOf(t, inv2)
		for range 5 {
			_, _ = e.svc.StartActivation(ctx, inv2.Code, "WRONG", goodPassword, "192.0.2.11")
		}
		if _, err := e.svc.StartActivation(ctx, inv2.Code, s2, goodPassword, "192.0.2.12"); !errors.Is(err, onboard.ErrInvalidCode) {
			t.Fatalf("after 5 wrong secrets: %v", err)
		}
	})
}

// REQ: ID-1, ID-5
func TestTenantCreateListDeactivate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		tn := e.tenant(t)
		for _, c := range []struct{ name, ura, agb, field string }{
			{"", "90000124", "", "name"},
			{"X", "1234", "", "ura"},
			{"X", "90000124", "12", "agb"},
		} {
			var ie *onboard.InputError
			if _, err := e.svc.CreateTenant(ctx, operator(), c.name, c.ura, c.agb); !errors.As(err, &ie) || ie.Field != c.field {
				t.Errorf("%+v: %v, want an error on %s", c, err, c.field)
			}
		}
		if _, err := e.svc.CreateTenant(ctx, operator(), "Andere praktijk", "90000123", ""); !errors.Is(err, onboard.ErrDuplicate) {
			t.Fatalf("duplicate URA: %v", err)
		}
		list, err := e.svc.Tenants(ctx)
		if err != nil || len(list) != 1 || list[0].ID != tn.ID || !list[0].Active {
			t.Fatalf("tenants %+v %v, want the one tenant", list, err)
		}
		inv := e.inviteAdmin(t, tn.ID, "anna@eik.example")
		secret := secretOf(t, inv)
		if err := e.svc.DeactivateTenant(ctx, operator(), tn.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.StartActivation(ctx, inv.Code, secret, goodPassword, "192.0.2.1"); !errors.Is(err, onboard.ErrInvalidCode) {
			t.Fatalf("invitation after deactivation: %v", err)
		}
		if _, err := e.svc.CreateInvitation(ctx, operator(), onboard.Invite{TenantID: tn.ID, Kind: identity.KindAdmin, Name: "C",
			Email: "c@eik.example", RegistrationMethod: 2, Deliver: onboard.DeliverLetter}); err == nil {
			t.Fatal("invited into a deactivated tenant")
		}
		list, _ = e.svc.Tenants(ctx)
		if list[0].Active {
			t.Error("tenant still active")
		}
		// The user name stays taken (ID-1).
		if _, err := e.svc.CreateTenant(ctx, operator(), "Nieuw", "90000125", ""); err != nil {
			t.Fatal(err)
		}
	})
}

// REQ: ID-2, ID-6
func TestInvitationInputAndDelivery(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		tn := e.tenant(t)
		base := onboard.Invite{TenantID: tn.ID, Kind: identity.KindProfessional, Name: "Dr. P. Jansen", Email: "p@eik.example",
			RegistrationMethod: 3, VerifiedBy: "Anna de Vries", Deliver: onboard.DeliverLetter,
			Professional: &identity.Professional{BIG: "12345678901", FunctionTitle: "huisarts"}}
		for field, mut := range map[string]func(*onboard.Invite){
			"registration_method": func(i *onboard.Invite) { i.RegistrationMethod = 5 },
			"email":               func(i *onboard.Invite) { i.Email = "geen-adres" },
			"big":                 func(i *onboard.Invite) { i.Professional = &identity.Professional{BIG: "123"} },
			"deliver":             func(i *onboard.Invite) { i.Deliver = onboard.DeliverEmail }, // no sender configured
			"role":                func(i *onboard.Invite) { i.Role = string(access.RoleProfessional) },
			"patient":             func(i *onboard.Invite) { i.Kind = identity.KindPerson },
		} {
			in := base
			mut(&in)
			var ie *onboard.InputError
			if _, err := e.svc.CreateInvitation(ctx, operator(), in); !errors.As(err, &ie) || ie.Field != field {
				t.Errorf("%s: %v", field, err)
			}
		}
		if _, err := e.kit.IDs.AccountByUsername(ctx, "p@eik.example"); !errors.Is(err, identity.ErrNotFound) {
			t.Fatalf("a refused invitation left an account: %v", err)
		}
		// By mail through the configured sender: the secret is in the mail only.
		outbox := filepath.Join(t.TempDir(), "outbox")
		svc := onboard.New(onboard.Config{DB: db, IDs: e.kit.IDs, Authn: e.kit.Authn, Audit: e.kit.Audit, Clock: e.clk,
			Sender: authn.OutboxSender{Dir: outbox}})
		in := base
		in.Deliver = onboard.DeliverEmail
		inv, err := svc.CreateInvitation(ctx, operator(), in)
		if err != nil {
			t.Fatal(err)
		}
		files, _ := authn.OutboxFiles(outbox)
		if len(files) != 1 || inv.Letter != "" {
			t.Fatalf("outbox %v, letter %q", files, inv.Letter)
		}
		b, _ := os.ReadFile(files[0])
		if strings.Contains(string(b), inv.Code) || !strings.Contains(string(b), "To: p@eik.example") {
			t.Errorf("mail:\n%s", b)
		}
		acc, _ := e.kit.IDs.Account(ctx, inv.AccountID)
		if acc.RegistrationMethod != 3 || acc.VerifiedBy != "Anna de Vries" || acc.Kind != identity.KindProfessional {
			t.Errorf("account %+v", acc)
		}
	})
}
