// Package testkit wires zorgkluis's services for tests the way
// cmd/zorgkluis serve does — keyring, password hasher, identity, access
// log, access decider, log-on, records — so that the tests of the packages
// above them (the protocols, the router, the commands) set up the real
// services in one call instead of a copy of their own. The packages it
// wires test themselves with fixtures of their own (an import of testkit
// from their tests would be a cycle). Tests only: the architecture test
// refuses an import of testkit from non-test code.
package testkit

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"testing"

	"github.com/pquerna/otp/totp"
	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/password"
	"github.com/zorgkluis/zorgkluis/internal/principal"
	"github.com/zorgkluis/zorgkluis/internal/record"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// MasterKey is the tests' master key (the bytes 0 to 31, base64), as
// ZK_MASTER_KEY would carry it. Never a real key.
const MasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// Master returns MasterKey parsed.
func Master(t testing.TB) keys.Master {
	t.Helper()
	m, err := keys.MasterFromEnv(MasterKey)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Kit is the wired services on one database.
type Kit struct {
	DB      *store.DB
	Clock   clock.Clock
	Master  keys.Master
	Keys    *keys.Keyring
	Hasher  *password.Hasher
	IDs     *identity.Registry
	Audit   *audit.Log
	Access  *access.Decider
	Changes *change.Service // the four-eyes requests (GOV-1), shared as serve shares it
	Authn   *authn.Service
	Records *record.Store
	Log     *slog.Logger
}

// Option changes how New wires the kit.
type Option func(*options)

type options struct {
	clock  clock.Clock
	authn  []func(*authn.Settings)
	access []access.Option
}

// WithClock sets the clock of every service (default the system clock).
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithAuthn changes the log-on settings before the service is made.
func WithAuthn(f func(*authn.Settings)) Option {
	return func(o *options) { o.authn = append(o.authn, f) }
}

// WithAccess adds options of the decider.
func WithAccess(opts ...access.Option) Option {
	return func(o *options) { o.access = append(o.access, opts...) }
}

// New wires the services on db as serve does, with fast password hashing.
func New(t testing.TB, db *store.DB, opts ...Option) *Kit {
	t.Helper()
	o := options{clock: clock.System{}}
	for _, f := range opts {
		f(&o)
	}
	k := &Kit{DB: db, Clock: o.clock, Master: Master(t), Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	var err error
	k.Keys, err = keys.NewKeyring(keys.Config{Master: k.Master, Store: keys.NewSQLStore(db), Now: o.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	k.Hasher, err = password.NewHasher(password.Config{Params: password.TestParams()})
	if err != nil {
		t.Fatal(err)
	}
	k.IDs = identity.NewRegistry(db, o.clock, rand.Reader)
	k.Audit = audit.New(db, o.clock, rand.Reader)
	k.Changes = change.New(change.Config{DB: db, Audit: k.Audit, Clock: o.clock, Rand: rand.Reader})
	k.Access = access.NewDecider(db, k.Audit, o.clock, append([]access.Option{access.WithRoleWriter(k.IDs), access.WithChanges(k.Changes)}, o.access...)...)
	set := authn.DefaultSettings()
	set.RoleCurrent = k.Access.RoleCurrent // as serve: an ended privileged right is never a session role
	set.Changes = k.Changes
	for _, f := range o.authn {
		f(&set)
	}
	k.Authn = authn.New(db, k.IDs, k.Hasher, k.Master, o.clock, rand.Reader, set)
	k.Records = record.New(db, k.Keys, k.Audit, o.clock)
	return k
}

// Logon is an account logged on with password and TOTP.
type Logon struct {
	Token   string
	Session authn.Session
	Subject access.Subject // as the server sees the session (principal.FromSession)
	Secret  string         // the TOTP secret enrolled for it
}

// LogOn gives the account a password and a TOTP app and logs it on with
// both, at the kit's clock, from 127.0.0.1.
func (k *Kit) LogOn(t testing.TB, accountID, username string) Logon {
	t.Helper()
	ctx := context.Background()
	const pw = "correct horse battery staple 42"
	if err := k.Authn.SetPassword(ctx, accountID, pw, false); err != nil {
		t.Fatal(err)
	}
	_, secret, err := k.Authn.EnrollTOTP(ctx, accountID, username)
	if err != nil {
		t.Fatal(err)
	}
	attempt, err := k.Authn.Begin(ctx, username, pw, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(secret, k.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok, sess, err := k.Authn.CompleteTOTP(ctx, attempt, code, "127.0.0.1", username)
	if err != nil {
		t.Fatalf("log on %s: %v", username, err)
	}
	subj, err := principal.FromSession(ctx, k.IDs, sess)
	if err != nil {
		t.Fatal(err)
	}
	return Logon{Token: tok, Session: sess, Subject: subj, Secret: secret}
}
