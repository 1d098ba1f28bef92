package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/backup"
	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/compliance"
	"github.com/zorgkluis/zorgkluis/internal/config"
	"github.com/zorgkluis/zorgkluis/internal/devices"
	"github.com/zorgkluis/zorgkluis/internal/governance"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/oauth"
	"github.com/zorgkluis/zorgkluis/internal/password"
	"github.com/zorgkluis/zorgkluis/internal/pki"
	"github.com/zorgkluis/zorgkluis/internal/record"
	"github.com/zorgkluis/zorgkluis/internal/router"
	"github.com/zorgkluis/zorgkluis/internal/sso"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// app is the set of services every subcommand works through.
type app struct {
	cfg     config.Config
	log     *slog.Logger
	clock   clock.Clock
	db      *store.DB
	master  keys.Master
	keys    *keys.Keyring
	ids     *identity.Registry
	audit   *audit.Log
	auditPK string // verifier key of the checkpoint signing key (public)
	access  *access.Decider
	changes *change.Service // the four-eyes change requests (GOV-1)
	// rewrapped counts the tenant and CA keys the last approved master-key
	// rotation re-wrapped, for the command's report.
	rewrapped [2]int
	authn     *authn.Service
	records   *record.Store
	ca        *pki.CA             // the organisations' CA for third-party systems (DP-3)
	oauth     *oauth.Service      // the authorisation server for persons' apps (EX-1)
	sso       *sso.Service        // single sign-on through the tenants' identity providers (AUTH-3)
	gov       *governance.Service // access reviews and the incident register (GOV-2, GOV-4)
	devices   *devices.Service    // paired mobile devices (AUTH-7)
	comp      *compliance.Service // the controls register and the compliance report (GOV-3)
	queue     *alert.Queue        // security events (LOG-9)
	webhook   *alert.Webhook      // nil without --alert-webhook
	sender    authn.Sender        // mail and SMS; nil when neither is configured
}

// openApp opens the database (migrating it), loads the master key from the
// data directory and builds the services.
func openApp(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...store.Option) (*app, error) {
	return openAppAt(ctx, cfg, log, clock.System{}, opts...)
}

// openAppAt is openApp on clock c (a fake one in tests).
func openAppAt(ctx context.Context, cfg config.Config, log *slog.Logger, c clock.Clock, opts ...store.Option) (*app, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, opts...)
	if err != nil {
		return nil, err
	}
	n, err := db.Migrate(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	if n > 0 {
		log.Info("database migrated", "migrations", n, "dialect", db.Dialect())
	}
	master, err := loadMaster(cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	kr, err := keys.NewKeyring(keys.Config{Master: master, Store: keys.NewSQLStore(db), Now: c.Now})
	if err != nil {
		db.Close()
		return nil, err
	}
	hasher, err := password.NewHasher(password.Config{})
	if err != nil {
		db.Close()
		return nil, err
	}
	// The checkpoint signing key lives in the data directory, never in the
	// database, so a database thief cannot sign a rewritten log (LOG-2).
	signer, auditPK, err := audit.LoadOrCreateSigner(auditKeyPath(cfg.DataDir), auditKeyName)
	if err != nil {
		db.Close()
		return nil, err
	}
	a := &app{cfg: cfg, log: log, clock: c, db: db, master: master, keys: kr, auditPK: auditPK}
	a.ids = identity.NewRegistry(db, c, rand.Reader)
	a.audit = audit.New(db, c, rand.Reader, audit.WithSigner(signer), audit.WithLogger(log))
	// Security events go to the officer's queue in the database and, as
	// notifications, to the log and an optional webhook (LOG-9).
	alerts := alert.Multi{alert.Log{Logger: log}}
	if cfg.AlertWebhook != "" {
		a.webhook = alert.NewWebhook(cfg.AlertWebhook, nil, log, 1000)
		alerts = append(alerts, a.webhook)
	}
	queue := alert.NewQueue(db, c, rand.Reader, alerts) // one queue for access's and authn's events
	a.queue = queue
	// One four-eyes service (GOV-1) for every owner of a security setting.
	a.changes = change.New(change.Config{DB: db, Audit: a.audit, Clock: c, Rand: rand.Reader, Expiry: cfg.ChangeExpiry})
	a.access = access.NewDecider(db, a.audit, c, access.WithEmergencyDuration(cfg.EmergencyDuration), access.WithSecurityQueue(queue),
		access.WithChanges(a.changes))
	set := authn.DefaultSettings()
	set.IdleTimeout, set.SessionLifetime = cfg.IdleTimeout, cfg.SessionLifetime
	set.Audit = a.audit // log-on events also go to the tamper-evident log
	set.Queue = queue
	set.Changes = a.changes                // the weak-factor switch waits for a second admin (GOV-1)
	set.RoleCurrent = a.access.RoleCurrent // an ended privileged right is never a session role
	a.sender = senderFrom(cfg, log)
	set.Sender = a.sender
	a.authn = authn.New(db, a.ids, hasher, master, c, rand.Reader, set)
	a.records = record.New(db, kr, a.audit, c)
	a.ca = pki.New(db, master, a.audit, c, rand.Reader, pki.WithChanges(a.changes))
	a.sso = sso.New(sso.Config{DB: db, Clock: c, Rand: rand.Reader, Master: master, Audit: a.audit, Alerts: queue, Changes: a.changes})
	a.gov = governance.New(governance.Config{DB: db, Clock: c, Rand: rand.Reader, Audit: a.audit, Alerts: queue, Access: a.access, IDs: a.ids})
	a.comp = compliance.New(compliance.Config{DB: db, Clock: c, Rand: rand.Reader, Audit: a.audit, Keys: kr, Gov: a.gov, Alerts: queue,
		VerifierKey: auditPK, ServerCert: serverCertificate(cfg)})
	a.devices = devices.New(devices.Config{DB: db, Clock: c, Rand: rand.Reader, Hasher: hasher, Audit: a.audit, Alerts: queue, Access: a.access})
	a.registerKeyChanges()
	log.Info("keys loaded", "master_key", master.ID())
	return a, nil
}

// ChangeRotateTenant is the four-eyes kind (GOV-1) of a tenant key's
// rotation: `zorgkluis keys rotate-tenant` proposes it, another operator's
// `zorgkluis keys approve` carries it out. keys sits below change, so the
// command that owns the operation registers it.
const changeRotateTenant = "keys.rotate-tenant"

type rotateChange struct {
	TenantID string `json:"tenant_id"`
}

// changeRotateMaster is the four-eyes kind (GOV-1) of the master key's
// rotation: `zorgkluis keys rotate-master` proposes it; another operator's
// `zorgkluis keys approve` adds the new key to the key file, then re-wraps
// every tenant key and re-seals the CA keys under it.
const changeRotateMaster = "keys.rotate-master"

func (a *app) registerKeyChanges() {
	registerRetention(a.changes)
	a.changes.Register(changeRotateMaster, change.Handler{
		Approvers: []string{"platform-admin"},
		// Like a tenant key's rotation, its own transactions; keysDecide
		// has added the new key to the file before this app loaded it.
		Prepare: func(ctx context.Context, r change.Request, by change.Actor) (func(context.Context, *store.Tx) error, error) {
			n, err := a.keys.RotateMaster(ctx)
			if err != nil {
				return nil, err
			}
			// The CA keys (internal/pki) are sealed under the master key too.
			nca, err := a.ca.Rewrap(ctx)
			if err != nil {
				return nil, err
			}
			a.rewrapped = [2]int{n, nca}
			return func(context.Context, *store.Tx) error { return nil }, nil
		},
	})
	a.changes.Register(changeRotateTenant, change.Handler{
		Approvers: []string{"platform-admin"},
		Platform:  true,
		// The rotation is its own transactions (a new tenant key, then each
		// patient key re-wrapped), so it runs once the decision is allowed
		// and the approval records it. Repeating it is harmless (one more
		// key version), should the record fail.
		Prepare: func(ctx context.Context, r change.Request, by change.Actor) (func(context.Context, *store.Tx) error, error) {
			if _, err := a.ids.Tenant(ctx, r.TenantID); err != nil {
				return nil, fmt.Errorf("tenant %s: %w: %w", r.TenantID, err, change.ErrInapplicable)
			}
			if _, err := a.keys.RotateTenant(ctx, r.TenantID); err != nil {
				return nil, err
			}
			return func(context.Context, *store.Tx) error { return nil }, nil
		},
	})
}

// handler is the public HTTP surface on a's services, as serve mounts it.
func (a *app) handler(log *slog.Logger, reg prometheus.Registerer, base string) (http.Handler, error) {
	return a.handlerWith(log, reg, base, nil, nil)
}

// handlerWith is handler behind trusted proxies and with readiness checks.
func (a *app) handlerWith(log *slog.Logger, reg prometheus.Registerer, base string, trusted []*net.IPNet, ready []router.ReadyCheck) (http.Handler, error) {
	return router.New(router.Deps{DB: a.db, IDs: a.ids, Authn: a.authn, Access: a.access, Records: a.records, Audit: a.audit,
		Index: a.keys, Clock: a.clock, Log: log, Metrics: reg, Version: buildVersion(), BaseURL: base,
		IdleTimeout: a.cfg.IdleTimeout, MaxBodyBytes: a.cfg.MaxBodyBytes, Onboard: a.onboarding(base, 0), CA: a.ca,
		TrustedProxies: trusted, Ready: ready, Backups: backup.History{DB: a.db},
		OAuth: a.oauthAt(base), SSO: a.sso, Governance: a.gov, Compliance: a.comp, Devices: a.devices})
}

// oauthAt is the authorisation server with base, the server's public URL,
// as its issuer; made once, the first time serve knows its URL.
func (a *app) oauthAt(base string) *oauth.Service {
	if a.oauth == nil || a.oauth.Issuer() != base {
		a.oauth = oauth.New(oauth.Config{DB: a.db, Clock: a.clock, Rand: rand.Reader, Audit: a.audit, Alerts: a.queue, Issuer: base, Changes: a.changes})
	}
	return a.oauth
}

// senderFrom builds the sender of SMS and e-mail codes from the
// configuration: SMTP for e-mail, the provider's webhook for SMS. Without
// either, weak factors are off (nil), except for the demo, whose codes land
// in <data>/outbox for it to show.
func senderFrom(cfg config.Config, log *slog.Logger) authn.Sender {
	var m authn.MultiSender
	if cfg.SMTPAddr != "" {
		s := authn.SMTPSender{Addr: cfg.SMTPAddr, From: cfg.SMTPFrom}
		if cfg.SMTPUser != "" {
			host, _, _ := net.SplitHostPort(cfg.SMTPAddr)
			// net/smtp sends PLAIN credentials only over TLS or to localhost.
			s.Auth = smtp.PlainAuth("", cfg.SMTPUser, cfg.SMTPPassword, host)
		}
		m.Email = s
	}
	if cfg.SMSWebhook != "" {
		m.SMS = authn.WebhookSender{URL: cfg.SMSWebhook, Token: cfg.SMSWebhookSecret}
	}
	switch {
	case m.Email != nil || m.SMS != nil:
		log.Info("SMS and e-mail codes", "email", m.Email != nil, "sms", m.SMS != nil)
		return m
	case cfg.Demo:
		return authn.OutboxSender{Dir: filepath.Join(cfg.DataDir, "outbox")}
	}
	log.Info("SMS and e-mail codes off: no smtp-addr or sms-webhook configured")
	return nil
}

func (a *app) Close() error {
	if a.webhook != nil {
		a.webhook.Close() // send the security events still queued
	}
	return a.db.Close()
}

func newLogger(e env, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: l}))
}

// enableWebAuthn sets up security keys for the URL the server answers on
// (AUTH-2). A relying party id that was configured must be valid; one that
// cannot be derived (a non-loopback IP address) only switches keys off.
func enableWebAuthn(a *app, cfg config.Config, base string, log *slog.Logger) error {
	rpID, origins, err := authn.WebAuthnRelyingParty(cfg.WebAuthnRPID, cfg.WebAuthnOrigin, base)
	if err != nil && cfg.WebAuthnRPID == "" {
		log.Warn("security keys (WebAuthn) off: set webauthn-rp-id to the server's domain name", "err", err)
		return nil
	}
	if err == nil {
		err = a.authn.EnableWebAuthn(rpID, origins)
	}
	if err != nil {
		return fmt.Errorf("setting webauthn-rp-id (ZK_WEBAUTHN_RP_ID): %w", err)
	}
	log.Info("security keys (WebAuthn) on", "rp_id", rpID, "origins", origins)
	return nil
}

// loadMaster takes the master key from ZK_MASTER_KEY when set, otherwise
// from (or newly into) the 0600 file master.key in the data directory:
// either way outside the database (DP-1).
func loadMaster(cfg config.Config) (keys.Master, error) {
	if cfg.MasterKey != "" {
		m, err := keys.MasterFromEnv(cfg.MasterKey)
		if err != nil {
			return nil, fmt.Errorf("setting ZK_MASTER_KEY: %w", err)
		}
		return m, nil
	}
	return keys.LoadOrCreateMasterFile(filepath.Join(cfg.DataDir, "master.key"), rand.Reader)
}
