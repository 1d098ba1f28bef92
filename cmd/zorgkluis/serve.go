package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/authn"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/compliance"
	"github.com/zorgkluis/zorgkluis/internal/config"
	"github.com/zorgkluis/zorgkluis/internal/demo"
	"github.com/zorgkluis/zorgkluis/internal/governance"
	"github.com/zorgkluis/zorgkluis/internal/router"
	"github.com/zorgkluis/zorgkluis/internal/server"
)

func runServe(ctx context.Context, e env, args []string) int {
	cfg, err := config.Load("serve", args, e.getenv, e.stderr)
	if err == nil {
		err = cfg.ValidateServe()
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "zorgkluis serve:", err)
		return 2
	}
	log := newLogger(e, cfg.LogLevel)
	if err := serve(ctx, e, cfg); err != nil {
		log.Error("zorgkluis stopped", "err", err)
		fmt.Fprintln(e.stderr, "zorgkluis serve:", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, e env, cfg config.Config) error {
	log := newLogger(e, cfg.LogLevel)
	// Start-up checks before side effects: settings, certificate files and
	// ports are checked before the database is opened or anything written,
	// so a second start on a busy port leaves the installation untouched.
	trusted, err := cfg.TrustedProxyNets()
	if err != nil {
		return err
	}
	var tlsConf *tls.Config
	var certs *server.Certs // the configured certificate, reloaded on SIGHUP
	if cfg.TLSCert != "" && !cfg.InsecureHTTP {
		if certs, err = server.LoadCerts(cfg.TLSCert, cfg.TLSKey); err != nil {
			return err
		}
		tlsConf = certs.Apply(server.TLSConfig(certs.Current()))
	}
	ln, err := server.Listen(cfg.Addr)
	if err != nil {
		return fmt.Errorf("setting addr: %w", err)
	}
	var mln net.Listener
	if cfg.MetricsAddr != "" {
		if mln, err = server.Listen(cfg.MetricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("setting metrics-addr: %w", err)
		}
	}
	var aln net.Listener
	if cfg.APIAddr != "" {
		if cfg.InsecureHTTP {
			ln.Close()
			if mln != nil {
				mln.Close()
			}
			return errors.New("setting api-addr (ZK_API_ADDR): needs TLS, not insecure-http")
		}
		if aln, err = server.Listen(cfg.APIAddr); err != nil {
			ln.Close()
			if mln != nil {
				mln.Close()
			}
			return fmt.Errorf("setting api-addr: %w", err)
		}
	}
	closeListeners := func() {
		for _, l := range []net.Listener{ln, mln, aln} {
			if l != nil {
				l.Close()
			}
		}
	}

	a, err := openApp(ctx, cfg, log)
	if err != nil {
		closeListeners()
		return err
	}
	defer a.Close()
	defer startSequencer(ctx, a)() // signed checkpoints every 500 ms, and a last one at shutdown (LOG-2)

	scheme := "https"
	switch {
	case cfg.InsecureHTTP:
		scheme = "http"
		log.Warn("PLAIN HTTP: serving without TLS on a loopback address; development only, never for real data", "addr", cfg.Addr)
		fmt.Fprintln(e.stderr, "WARNING: zorgkluis serves PLAIN HTTP (no TLS). Development only.")
	case tlsConf != nil:
	default: // demo
		cert, path, err := server.DemoCertificate(cfg.DataDir, a.clock.Now())
		if err != nil {
			closeListeners()
			return err
		}
		tlsConf = server.TLSConfig(cert)
		log.Warn("using the self-signed demo certificate", "path", path)
	}

	base := scheme + "://" + displayAddr(ln.Addr().String())
	if err := enableWebAuthn(a, cfg, base, log); err != nil {
		closeListeners()
		return err
	}

	if cfg.Demo {
		if err := ensureDemo(ctx, e.stdout, a, base); err != nil {
			closeListeners()
			return err
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), auditLagMetric(a))
	ready, err := startOperations(ctx, a, reg, log)
	if err != nil {
		closeListeners()
		return err
	}
	// Waited for before the log's last checkpoint and the database close.
	defer startNameBackfill(ctx, a, log)()
	if err := logSettings(ctx, a, tlsConf, aln != nil); err != nil {
		closeListeners()
		return err
	}
	h, err := a.handlerWith(log, reg, base, trusted, ready)
	// Spent codes, requests and tokens go hourly; the governance alerts
	// are checked every five minutes.
	go every(ctx, time.Hour, log, "oauth sweep", a.oauthAt(base).Sweep)
	go every(ctx, 5*time.Minute, log, "governance watch", watchGovernance(a.gov))
	go every(ctx, time.Hour, log, "control reminders", remindControls(a.comp))
	go every(ctx, time.Hour, log, "devices sweep", a.devices.Sweep)
	// The settings are logged again daily, so that the compliance report
	// finds them among the newest evidence however long the server runs.
	go every(ctx, 24*time.Hour, log, "settings evidence", func(ctx context.Context) error { return logSettings(ctx, a, tlsConf, aln != nil) })
	go every(ctx, 5*time.Minute, log, "change expiry", a.changes.Expire) // stale four-eyes requests (GOV-1)
	// Sessions are kept in memory while this runs; a log-off or
	// deactivation on another replica empties the cache within a second.
	go every(ctx, authn.SessionSyncInterval, log, "session sync", a.authn.SyncSessions)
	// Likewise the care rule's allows (AZ-1): a write to any table they
	// depend on, on any replica, retires them within a second.
	go every(ctx, access.DecisionSyncInterval, log, "decision sync", a.access.SyncDecisions)
	// The persons' views of their logs are kept merged; a purge on any
	// replica retires them within a second.
	go every(ctx, audit.ViewSyncInterval, log, "view sync", a.audit.SyncViews)
	if err != nil {
		closeListeners()
		return err
	}
	eps := []server.Endpoint{{Name: "public", Listener: ln, Handler: h, TLS: tlsConf}}
	if mln != nil {
		mh := router.Metrics(reg)
		if cfg.Pprof {
			mh = router.MetricsWithProfiler(reg)
			log.Warn("profiler on the metrics listener", "url", "http://"+mln.Addr().String()+"/debug/pprof/")
		}
		eps = append(eps, server.Endpoint{Name: "metrics", Listener: mln, Handler: mh})
		log.Info("metrics listening", "addr", mln.Addr().String())
	}
	if aln != nil {
		ep, apiURL, err := apiEndpoint(ctx, a, log, aln, tlsConf, base, reg)
		if err != nil {
			aln.Close()
			closeAll(eps)
			return err
		}
		eps = append(eps, ep)
		log.Info("API listening (mutual TLS)", "url", apiURL)
		fmt.Fprintf(e.stdout, "zorgkluis API listening on %s\n", apiURL)
	}
	if certs != nil {
		go reloadOnHangup(ctx, log, certs, a.clock)
	}
	go keepStatistics(ctx, a, log)
	log.Info("zorgkluis listening", "url", base, "dialect", a.db.Dialect(), "version", buildVersion())
	fmt.Fprintf(e.stdout, "zorgkluis listening on %s\n", base)
	return server.Serve(ctx, log, eps...)
}

// keepStatistics refreshes the database's planner statistics at start and
// every ten minutes while the server runs (SQLite only; see store.Optimize).
// Statistics taken while a fresh installation's tables were small had
// SQLite scan a table grown a hundredfold; a run analyzes only the tables
// that grew much since, so it costs next to nothing otherwise.
func keepStatistics(ctx context.Context, a *app, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		if err := a.db.Optimize(ctx); err != nil && ctx.Err() == nil {
			log.Warn("refreshing planner statistics failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func displayAddr(a string) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return a
	}
	if host == "127.0.0.1" || host == "::1" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// ensureDemo seeds an empty installation once and prints the demo log-ins;
// later starts reuse the data and the credentials file.
func ensureDemo(ctx context.Context, out io.Writer, a *app, base string) error {
	path := filepath.Join(a.cfg.DataDir, "demo-credentials.json")
	tenants, err := a.ids.Tenants(ctx)
	if err != nil {
		return err
	}
	var cred demo.Credentials
	if len(tenants) == 0 {
		// The demo's accounts are invited and activated through the same
		// onboarding as a real organisation's; only while seeding do their
		// secrets go to the demo's own mailbox instead of a person.
		box := &demo.Mailbox{}
		cred, err = demo.Seed(ctx, demo.Deps{IDs: a.ids, Authn: a.authn, Access: a.access, Records: a.records,
			Index: a.keys, Clock: a.clock, Rand: rand.Reader, Onboard: a.onboardWith(base, 0, box), Mailbox: box})
		if err != nil {
			return err
		}
		b, err := json.MarshalIndent(cred, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	} else {
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(out, "Demo: the database already has data; no demo log-ins file at %s.\n", path)
			return nil
		}
		if err := json.Unmarshal(b, &cred); err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
	}
	fmt.Fprintf(out, "\nzorgkluis demo: %s (tenant %s)\n", cred.Tenant, cred.TenantID)
	fmt.Fprintf(out, "  URL:            %s\n  demo patient:   Patient/%s\n", base, cred.PatientID)
	for _, u := range cred.Users {
		fmt.Fprintf(out, "  %-10s password %s  (%s)\n             TOTP %s\n", u.Username, u.Password, u.Description, u.TOTPURI)
	}
	fmt.Fprintf(out, "  The same, for scripts: %s (mode 0600). TOTP code: oathtool --totp -b SECRET\n\n", path)
	return nil
}

// reloadOnHangup reads the TLS certificate files again on every SIGHUP, so a
// renewed certificate is served without a restart; a file that does not
// load (or a certificate not valid now) is reported and the one in use stays.
func reloadOnHangup(ctx context.Context, log *slog.Logger, certs *server.Certs, c clock.Clock) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			leaf, err := certs.Reload(c.Now())
			if err != nil {
				log.Error("TLS certificate not reloaded; the one in use stays", "err", err)
				continue
			}
			log.Info("TLS certificate reloaded", "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339),
				"serial", leaf.SerialNumber.Text(16))
		}
	}
}

// every runs job every d while serve runs, logging its errors under name:
// the sweeps of spent codes and tokens and the governance watch.
func every(ctx context.Context, d time.Duration, log *slog.Logger, name string, job func(context.Context) error) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := job(ctx); err != nil && ctx.Err() == nil {
			log.Error(name, "err", err)
		}
	}
}

// watchGovernance raises the governance alerts: an incident's reporting
// deadline near or past, and a month without a closed access review
// (raised once a month).
func watchGovernance(g *governance.Service) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err1 := g.WarnDeadlines(ctx)
		_, err2 := g.WarnOverdueReviews(ctx)
		return errors.Join(err1, err2)
	}
}

// remindControls raises the reminders of the controls register's periodic
// controls due within 14 days (GOV-3).
func remindControls(c *compliance.Service) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.Remind(ctx)
		return err
	}
}

// logSettings logs the security settings in force as evidence (GOV-3):
// the TLS profile, whether plain HTTP is allowed, the session timeouts,
// the backup schedule, the clock watch and the API listener. A server that
// cannot log them does not start, as for any other log line it owes.
func logSettings(ctx context.Context, a *app, tlsConf *tls.Config, apiListener bool) error {
	tlsDesc := "tls=off"
	if tlsConf != nil {
		var curves []string
		for _, c := range tlsConf.CurvePreferences {
			curves = append(curves, c.String())
		}
		tlsDesc = fmt.Sprintf("tls=min-%s,ECDHE-AEAD,%s", tls.VersionName(tlsConf.MinVersion), strings.Join(curves, "/"))
	}
	cfg := a.cfg
	detail := fmt.Sprintf("%s insecure_http=%t api_mtls=%t idle_timeout=%s session_lifetime=%s emergency_duration=%s max_body_bytes=%d backup_interval=%s ntp_servers=%d clock_max_offset=%s weak_factors=%t",
		strings.ReplaceAll(tlsDesc, " ", ""), cfg.InsecureHTTP, apiListener, cfg.IdleTimeout, cfg.SessionLifetime, cfg.EmergencyDuration, cfg.MaxBodyBytes,
		cfg.BackupInterval, len(cfg.NTPServerList()), cfg.ClockMaxOffset, a.sender != nil)
	ev := operatorEvent("zorgkluis serve")
	ev.UserID, ev.UserName = "system:serve", "zorgkluis serve"
	if _, err := a.audit.Append(ctx, audit.Evidence(ev, audit.FactSettings, true, detail)); err != nil {
		return fmt.Errorf("log the settings in force: %w", err)
	}
	return nil
}
