package devices_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/devices"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/password"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

const pin = "48213"

type fixture struct {
	t      *testing.T
	ctx    context.Context
	db     *store.DB
	clk    *clock.Fake
	ids    *identity.Registry
	log    *audit.Log
	queue  *alert.Queue
	svc    *devices.Service
	tenant string
	person access.Subject // Sanne, a person of the tenant
	admin  access.Subject // the tenant's application admin
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	log := audit.New(db, clk, rand.Reader)
	ids := identity.NewRegistry(db, clk, rand.Reader)
	queue := alert.NewQueue(db, clk, rand.Reader, nil)
	dec := access.NewDecider(db, log, clk, access.WithRoleWriter(ids), access.WithSecurityQueue(queue))
	h, err := password.NewHasher(password.Config{Params: password.TestParams()})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: ctx, db: db, clk: clk, ids: ids, log: log, queue: queue,
		svc: devices.New(devices.Config{DB: db, Clock: clk, Rand: rand.Reader, Hasher: h, Audit: log, Alerts: queue, Access: dec})}
	ten, err := ids.CreateTenant(ctx, identity.Tenant{Name: "Huisartsen De Linde"})
	if err != nil {
		t.Fatal(err)
	}
	f.tenant = ten.ID
	f.person = f.account(ten.ID, "sanne", identity.KindPerson, access.RolePerson)
	f.admin = f.account(ten.ID, "beheer", identity.KindAdmin, access.RoleAppAdmin)
	return f
}

// account makes an account holding role and returns its subject as a
// session with two factors would have it.
func (f *fixture) account(tenant, name, kind string, role access.Role) access.Subject {
	f.t.Helper()
	acc, err := f.ids.CreateAccount(f.ctx, identity.Account{TenantID: tenant, Kind: kind, Username: name, DisplayName: name, RegistrationMethod: 3})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.ids.GrantRole(f.ctx, acc.ID, string(role), "test"); err != nil {
		f.t.Fatal(err)
	}
	return access.NewSubject(access.SubjectSpec{AccountID: acc.ID, Name: name, TenantID: tenant, Role: role, Assurance: access.Hoog})
}

// phone is a device with its own key, as the app keeps it.
type phone struct {
	key *ecdsa.PrivateKey
	id  string
}

func newPhone(t *testing.T) *phone {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &phone{key: k}
}

func (p *phone) spki() string {
	der, _ := x509.MarshalPKIXPublicKey(&p.key.PublicKey)
	return base64.StdEncoding.EncodeToString(der)
}

func (p *phone) sign(auth bool, value string) string {
	sum := sha256.Sum256(devices.SignedMessage(auth, p.id, value))
	sig, err := ecdsa.SignASN1(rand.Reader, p.key, sum[:])
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(sig)
}

// pair makes a code as subj and redeems it with a new phone.
func (f *fixture) pair(subj access.Subject) *phone {
	f.t.Helper()
	p := newPhone(f.t)
	code, err := f.svc.NewPairing(f.ctx, subj, "https://zk.test")
	if err != nil {
		f.t.Fatal(err)
	}
	got, err := f.svc.Pair(f.ctx, devices.PairRequest{Code: code.Code, PublicSPKI: p.spki(), PIN: pin, Name: "Telefoon"})
	if err != nil {
		f.t.Fatalf("pair: %v", err)
	}
	p.id = got.DeviceID
	return p
}

// token runs challenge and response, with pin when it is not "".
func (f *fixture) token(p *phone, pin string) (string, error) {
	f.t.Helper()
	c, err := f.svc.Challenge(f.ctx, p.id)
	if err != nil {
		return "", err
	}
	tok, err := f.svc.Authenticate(f.ctx, devices.AuthRequest{DeviceID: p.id, Challenge: c.Challenge, Signature: p.sign(true, c.Challenge), PIN: pin})
	return tok.AccessToken, err
}

// mustToken is token that must succeed.
func (f *fixture) mustToken(p *phone, pin string) string {
	f.t.Helper()
	tok, err := f.token(p, pin)
	if err != nil {
		f.t.Fatalf("authenticate: %v", err)
	}
	return tok
}

// steps returns the steps logged for a device as "step outcome", in no
// particular order (events of one fake-clock instant have no order).
func (f *fixture) steps(deviceID string) []string {
	f.t.Helper()
	evs, err := f.log.Query(f.ctx, audit.Filter{TenantID: f.tenant, Action: audit.ActionDevice})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		for _, r := range ev.Resources {
			if r == "Device/"+deviceID {
				out = append(out, ev.Query+" "+string(ev.Outcome))
			}
		}
	}
	return out
}

func asError(t *testing.T, err error) *devices.Error {
	t.Helper()
	var e *devices.Error
	if !errors.As(err, &e) {
		t.Fatalf("want a *devices.Error, got %v", err)
	}
	return e
}

func asWipe(t *testing.T, err error) devices.Wipe {
	t.Helper()
	var w *devices.WipeError
	if !errors.As(err, &w) {
		t.Fatalf("want a wipe instruction, got %v", err)
	}
	return w.Wipe
}
