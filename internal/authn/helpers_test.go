package authn

import (
	"context"
	"crypto/rand"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/password"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// securityEvents reads one tenant's security-event queue ("" for the
// operators'), newest first.
func (f *fixture) securityEvents(ctx context.Context, tenant string, since time.Time) ([]alert.Entry, error) {
	return f.svc.settings.Queue.List(ctx, tenant, since, 0)
}

// memSender keeps sent messages for tests.
type memSender struct {
	mu   sync.Mutex
	sent []Message
}

func (m *memSender) Send(_ context.Context, msg Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, msg)
	return nil
}

// lastCode returns the digits of the last message.
func (m *memSender) lastCode(t *testing.T) string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.sent) == 0 {
		t.Fatal("no message sent")
	}
	f := strings.Fields(m.sent[len(m.sent)-1].Body)
	for _, w := range f {
		w = strings.TrimSuffix(w, ".")
		if len(w) == codeDigits && strings.Trim(w, "0123456789") == "" {
			return w
		}
	}
	t.Fatal("no code in message")
	return ""
}

type fixture struct {
	svc    *Service
	ids    *identity.Registry
	clock  *clock.Fake
	sender *memSender
	db     *store.DB
	tenant string
}

func newFixture(t testing.TB, db *store.DB, params password.Params) *fixture {
	t.Helper()
	c := clock.NewFake(time.Now())
	h, err := password.NewHasher(password.Config{Params: params})
	if err != nil {
		t.Fatal(err)
	}
	m, err := keys.LoadOrCreateMasterFile(filepath.Join(t.TempDir(), "master.key"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ids := identity.NewRegistry(db, c, rand.Reader)
	snd := &memSender{}
	set := DefaultSettings()
	set.Sender = snd
	svc := New(db, ids, h, m, c, rand.Reader, set)
	ten, err := ids.CreateTenant(context.Background(), identity.Tenant{Name: "Praktijk"})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, ids: ids, clock: c, sender: snd, db: db, tenant: ten.ID}
}

type user struct {
	id, name, pw, secret string
}

// addUser creates an account with a password, roles and (if totp) a TOTP credential.
func (f *fixture) addUser(t testing.TB, name, kind string, method int, withTOTP bool, roles ...string) user {
	t.Helper()
	ctx := context.Background()
	tenant := f.tenant
	if kind == identity.KindOperator {
		tenant = ""
	}
	acc, err := f.ids.CreateAccount(ctx, identity.Account{TenantID: tenant, Kind: kind, Username: name, DisplayName: "Test " + name,
		Email: name + "@example.invalid", BirthDate: "1980-04-12", RegistrationMethod: method})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		if err := f.ids.GrantRole(ctx, acc.ID, r, "test"); err != nil {
			t.Fatal(err)
		}
	}
	pw, err := password.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SetPassword(ctx, acc.ID, pw, false); err != nil {
		t.Fatal(err)
	}
	u := user{id: acc.ID, name: name, pw: pw}
	if withTOTP {
		_, u.secret, err = f.svc.EnrollTOTP(ctx, acc.ID, name)
		if err != nil {
			t.Fatal(err)
		}
	}
	return u
}

// code returns the TOTP code at the fixture's time, one step later each
// call would be a replay, so callers advance the clock between log-ons.
func (f *fixture) code(t testing.TB, secret string) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, f.clock.Now(), totpOpts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// logon runs both steps with TOTP and returns the token or the error.
func (f *fixture) logon(t testing.TB, u user, pw, source string) (string, Session, error) {
	t.Helper()
	ctx := context.Background()
	att, err := f.svc.Begin(ctx, u.name, pw, source)
	if err != nil {
		t.Fatal(err)
	}
	code := "000000"
	if u.secret != "" {
		code = f.code(t, u.secret)
	}
	return f.svc.Complete(ctx, att, FactorTOTP, code, source)
}

func oathtool(t *testing.T, secret string) string {
	t.Helper()
	out, err := exec.Command("oathtool", "--totp", "-b", secret).Output()
	if err != nil {
		t.Fatalf("oathtool (apt-get install oathtool): %v", err)
	}
	return strings.TrimSpace(string(out))
}
