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
	"crypto/rand"
	"io"
	"log/slog"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/password"
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
	k.Access = access.NewDecider(db, k.Audit, o.clock, append([]access.Option{access.WithRoleWriter(k.IDs)}, o.access...)...)
	set := authn.DefaultSettings()
	set.RoleCurrent = k.Access.RoleCurrent // as serve: an ended privileged right is never a session role
	for _, f := range o.authn {
		f(&set)
	}
	k.Authn = authn.New(db, k.IDs, k.Hasher, k.Master, o.clock, rand.Reader, set)
	k.Records = record.New(db, k.Keys, k.Audit, o.clock)
	return k
}
