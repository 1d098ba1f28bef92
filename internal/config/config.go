// Package config reads zorgkluis settings from flags, ZK_* environment
// variables and an optional JSON config file, in that order of precedence,
// over safe defaults. Invalid settings stop start-up with a message that
// names the setting.
package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config holds every setting of the server.
type Config struct {
	DataDir         string        `json:"data"`
	Addr            string        `json:"addr"`
	DatabaseURL     string        `json:"database"`
	MetricsAddr     string        `json:"metrics_addr"`
	Pprof           bool          `json:"pprof"`
	APIAddr         string        `json:"api_addr"` // mutual-TLS listener for third-party systems (DP-3); "" is off
	TLSCert         string        `json:"tls_cert"`
	TLSKey          string        `json:"tls_key"`
	InsecureHTTP    bool          `json:"insecure_http"`
	Demo            bool          `json:"demo"`
	LogLevel        string        `json:"log_level"`
	IdleTimeout     time.Duration `json:"-"`
	SessionLifetime time.Duration `json:"-"`
	// EmergencyDuration is how long declared emergency access lasts (AZ-5).
	EmergencyDuration time.Duration `json:"-"`
	// ChangeExpiry is how long a four-eyes change request waits for its
	// decision before it expires (GOV-1).
	ChangeExpiry   time.Duration `json:"-"`
	MaxBodyBytes   int64         `json:"max_body_bytes"`
	WebAuthnRPID   string        `json:"webauthn_rp_id"`
	WebAuthnOrigin string        `json:"webauthn_origin"`
	// AlertWebhook receives every security event as JSON (LOG-9).
	AlertWebhook string `json:"alert_webhook"`
	// SMTP server for e-mail codes and notices (AUTH-2): host:port, the
	// sender address and an optional user; the password comes from the
	// environment only (ZK_SMTP_PASSWORD).
	SMTPAddr     string `json:"smtp_addr"`
	SMTPFrom     string `json:"smtp_from"`
	SMTPUser     string `json:"smtp_user"`
	SMTPPassword string `json:"-"`
	// SMSWebhook is the SMS provider's https endpoint for SMS codes; its
	// bearer secret comes from the environment only (ZK_SMS_WEBHOOK_SECRET).
	SMSWebhook       string `json:"sms_webhook"`
	SMSWebhookSecret string `json:"-"`
	// MasterKey is the master key from the environment (ZK_MASTER_KEY,
	// base64 of 32 bytes, comma-separated when rotating) for deployments
	// that keep it out of the data directory. Environment only: never a
	// flag (visible in ps) or the config file.
	MasterKey string `json:"-"`

	// Backups (DP-5): where they go, how often serve makes one (0: never),
	// and the age key files (default in the data directory).
	BackupDir        string        `json:"backup_dir"`
	BackupInterval   time.Duration `json:"-"`
	BackupIdentity   string        `json:"backup_identity"`
	BackupRecipients string        `json:"backup_recipients"`
	// Clock watch (DP-6): NTP servers, comma separated ("off": no watch),
	// and the largest offset before readiness fails.
	NTPServers     string        `json:"ntp_servers"`
	ClockMaxOffset time.Duration `json:"-"`
	// TrustedProxies are the CIDRs of load balancers whose X-Forwarded-For
	// or Forwarded header names the client for the access log.
	TrustedProxies string `json:"trusted_proxies"`
}

// setting describes one configurable value.
type setting struct {
	name, env, usage string
	str              *string
	boolean          *bool
	dur              *time.Duration
	i64              *int64
}

func (c *Config) settings() []setting {
	return []setting{
		{name: "data", env: "ZK_DATA_DIR", usage: "data directory (database, keys, certificates)", str: &c.DataDir},
		{name: "addr", env: "ZK_ADDR", usage: "HTTPS listen address", str: &c.Addr},
		{name: "database", env: "ZK_DATABASE_URL", usage: "database: postgres://... URL, or a SQLite file (default DATA/zorgkluis.db)", str: &c.DatabaseURL},
		{name: "metrics-addr", env: "ZK_METRICS_ADDR", usage: "Prometheus metrics listen address (keep it private)", str: &c.MetricsAddr},
		{name: "pprof", env: "ZK_PPROF", usage: "serve Go's profiler (/debug/pprof/) on the metrics listener, never the public port (off by default)", boolean: &c.Pprof},
		{name: "api-addr", env: "ZK_API_ADDR", usage: "listen address for third-party systems, mutual TLS with the organisations' CA certificates (empty: off)", str: &c.APIAddr},
		{name: "tls-cert", env: "ZK_TLS_CERT", usage: "TLS certificate chain (PEM); --demo generates one when empty", str: &c.TLSCert},
		{name: "tls-key", env: "ZK_TLS_KEY", usage: "TLS private key (PEM)", str: &c.TLSKey},
		{name: "insecure-http", env: "ZK_INSECURE_HTTP", usage: "serve plain HTTP (only allowed on a loopback address, for development)", boolean: &c.InsecureHTTP},
		{name: "demo", env: "ZK_DEMO", usage: "create demo data on an empty database and a self-signed certificate", boolean: &c.Demo},
		{name: "log-level", env: "ZK_LOG_LEVEL", usage: "debug, info, warn or error", str: &c.LogLevel},
		{name: "idle-timeout", env: "ZK_IDLE_TIMEOUT", usage: "end sessions idle this long", dur: &c.IdleTimeout},
		{name: "session-lifetime", env: "ZK_SESSION_LIFETIME", usage: "maximum session lifetime", dur: &c.SessionLifetime},
		{name: "emergency-duration", env: "ZK_EMERGENCY_DURATION", usage: "how long declared emergency access (break-the-glass) lasts", dur: &c.EmergencyDuration},
		{name: "change-expiry", env: "ZK_CHANGE_EXPIRY", usage: "how long a four-eyes change request waits for its decision (GOV-1)", dur: &c.ChangeExpiry},
		{name: "max-body-bytes", env: "ZK_MAX_BODY_BYTES", usage: "largest request body accepted", i64: &c.MaxBodyBytes},
		{name: "webauthn-rp-id", env: "ZK_WEBAUTHN_RP_ID", usage: "WebAuthn relying party id, the domain security keys are bound to (default: the host of the server's URL; localhost for a loopback address)", str: &c.WebAuthnRPID},
		{name: "alert-webhook", env: "ZK_ALERT_WEBHOOK", usage: "https URL that receives every security event as JSON (e.g. an incident tool); security events are always logged as warnings too", str: &c.AlertWebhook},
		{name: "webauthn-origin", env: "ZK_WEBAUTHN_ORIGIN", usage: "origin browsers use to reach the server, e.g. https://zorg.example.nl (default: https://RP-ID:PORT)", str: &c.WebAuthnOrigin},
		{name: "smtp-addr", env: "ZK_SMTP_ADDR", usage: "SMTP server HOST:PORT for e-mail codes (STARTTLS when offered); without it and --sms-webhook, SMS and e-mail codes are off", str: &c.SMTPAddr},
		{name: "smtp-from", env: "ZK_SMTP_FROM", usage: "sender address of the e-mails, e.g. noreply@zorg.example.nl", str: &c.SMTPFrom},
		{name: "smtp-user", env: "ZK_SMTP_USER", usage: "SMTP user name (PLAIN auth, only over TLS or to a loopback server); the password only from env ZK_SMTP_PASSWORD", str: &c.SMTPUser},
		{name: "backup-dir", env: "ZK_BACKUP_DIR", usage: "directory the backups go to (default DATA/backups; better another disk)", str: &c.BackupDir},
		{name: "backup-interval", env: "ZK_BACKUP_INTERVAL", usage: "serve makes, restore-tests and thins a backup this often, once across replicas (0: never)", dur: &c.BackupInterval},
		{name: "backup-identity", env: "ZK_BACKUP_IDENTITY", usage: "age identity file that decrypts backups (default DATA/backup-identity.txt)", str: &c.BackupIdentity},
		{name: "backup-recipients", env: "ZK_BACKUP_RECIPIENTS", usage: "age recipients file backups are encrypted to (default DATA/backup-recipients.txt)", str: &c.BackupRecipients},
		{name: "ntp-servers", env: "ZK_NTP_SERVERS", usage: "NTP servers the clock is checked against every minute, comma separated; off: no check", str: &c.NTPServers},
		{name: "clock-max-offset", env: "ZK_CLOCK_MAX_OFFSET", usage: "largest clock offset from NTP before readiness fails (DP-6)", dur: &c.ClockMaxOffset},
		{name: "trusted-proxies", env: "ZK_TRUSTED_PROXIES", usage: "CIDRs of load balancers whose X-Forwarded-For/Forwarded names the client, comma separated", str: &c.TrustedProxies},
		{name: "sms-webhook", env: "ZK_SMS_WEBHOOK", usage: "https URL of the SMS provider that receives {\"to\",\"message\"} as JSON; its bearer token only from env ZK_SMS_WEBHOOK_SECRET", str: &c.SMSWebhook},
	}
}

// Default returns the safe defaults.
func Default() Config {
	return Config{
		DataDir:           "./data",
		Addr:              "127.0.0.1:8443",
		MetricsAddr:       "127.0.0.1:9464",
		LogLevel:          "info",
		IdleTimeout:       15 * time.Minute,
		SessionLifetime:   12 * time.Hour,
		EmergencyDuration: 4 * time.Hour,
		ChangeExpiry:      7 * 24 * time.Hour,
		MaxBodyBytes:      1 << 20,
		BackupInterval:    6 * time.Hour,
		NTPServers:        "0.nl.pool.ntp.org,1.nl.pool.ntp.org,2.nl.pool.ntp.org,3.nl.pool.ntp.org",
		ClockMaxOffset:    500 * time.Millisecond,
	}
}

// Load parses args (without the subcommand) and the environment.
func Load(name string, args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", getenv("ZK_CONFIG"), "optional JSON config file (env ZK_CONFIG)")
	// Flags are registered on a scratch copy so that we can tell which were set.
	flagVals := Default()
	for _, s := range flagVals.settings() {
		usage := fmt.Sprintf("%s (env %s)", s.usage, s.env)
		switch {
		case s.str != nil:
			fs.StringVar(s.str, s.name, *s.str, usage)
		case s.boolean != nil:
			fs.BoolVar(s.boolean, s.name, *s.boolean, usage)
		case s.dur != nil:
			fs.DurationVar(s.dur, s.name, *s.dur, usage)
		case s.i64 != nil:
			fs.Int64Var(s.i64, s.name, *s.i64, usage)
		}
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: zorgkluis %s [flags]\n\nFlags (a flag beats its environment variable, which beats the config file):\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *configFile != "" {
		if err := c.readFile(*configFile); err != nil {
			return Config{}, err
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cs, fv := c.settings(), flagVals.settings()
	for i, s := range cs {
		if set[s.name] {
			copySetting(s, fv[i])
			continue
		}
		if v := getenv(s.env); v != "" {
			if err := parseInto(s, v); err != nil {
				return Config{}, fmt.Errorf("setting %s (env %s): %w", s.name, s.env, err)
			}
		}
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = filepath.Join(c.DataDir, "zorgkluis.db")
	}
	if c.BackupDir == "" {
		c.BackupDir = filepath.Join(c.DataDir, "backups")
	}
	if c.BackupIdentity == "" {
		c.BackupIdentity = filepath.Join(c.DataDir, "backup-identity.txt")
	}
	if c.BackupRecipients == "" {
		c.BackupRecipients = filepath.Join(c.DataDir, "backup-recipients.txt")
	}
	c.MasterKey = getenv("ZK_MASTER_KEY")
	// Secrets: environment only, never a flag (visible in ps) or the file.
	c.SMTPPassword = getenv("ZK_SMTP_PASSWORD")
	c.SMSWebhookSecret = getenv("ZK_SMS_WEBHOOK_SECRET")
	return c, c.Validate()
}

func copySetting(dst, src setting) {
	switch {
	case dst.str != nil:
		*dst.str = *src.str
	case dst.boolean != nil:
		*dst.boolean = *src.boolean
	case dst.dur != nil:
		*dst.dur = *src.dur
	case dst.i64 != nil:
		*dst.i64 = *src.i64
	}
}

func parseInto(s setting, v string) error {
	switch {
	case s.str != nil:
		*s.str = v
	case s.boolean != nil:
		switch strings.ToLower(v) {
		case "1", "true", "yes", "on":
			*s.boolean = true
		case "0", "false", "no", "off":
			*s.boolean = false
		default:
			return fmt.Errorf("%q is not a boolean", v)
		}
	case s.dur != nil:
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 15m", v)
		}
		*s.dur = d
	case s.i64 != nil:
		var n int64
		if _, err := fmt.Sscan(v, &n); err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		*s.i64 = n
	}
	return nil
}

func (c *Config) readFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	byName := map[string]setting{}
	for _, s := range c.settings() {
		byName[s.name] = s
		byName[strings.ReplaceAll(s.name, "-", "_")] = s
	}
	for k, v := range raw {
		s, ok := byName[k]
		if !ok {
			return fmt.Errorf("config file %s: unknown setting %q", path, k)
		}
		var str string
		if err := json.Unmarshal(v, &str); err != nil {
			str = string(v) // numbers and booleans
		}
		if err := parseInto(s, str); err != nil {
			return fmt.Errorf("config file %s: setting %s: %w", path, k, err)
		}
	}
	return nil
}

// Validate checks the settings and names the first bad one.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("setting data (ZK_DATA_DIR): must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("setting addr (ZK_ADDR): %q is not HOST:PORT", c.Addr)
	}
	if c.Pprof && c.MetricsAddr == "" {
		return errors.New("setting pprof (ZK_PPROF): needs metrics-addr, the private listener it is served on")
	}
	if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil && c.MetricsAddr != "" {
		return fmt.Errorf("setting metrics-addr (ZK_METRICS_ADDR): %q is not HOST:PORT", c.MetricsAddr)
	}
	if c.MetricsAddr != "" && c.MetricsAddr == c.Addr {
		return errors.New("setting metrics-addr (ZK_METRICS_ADDR): must not be the public address")
	}
	if _, _, err := net.SplitHostPort(c.APIAddr); err != nil && c.APIAddr != "" {
		return fmt.Errorf("setting api-addr (ZK_API_ADDR): %q is not HOST:PORT", c.APIAddr)
	}
	if c.APIAddr != "" && (c.APIAddr == c.Addr || c.APIAddr == c.MetricsAddr) {
		return errors.New("setting api-addr (ZK_API_ADDR): must differ from the public and the metrics address")
	}
	if c.APIAddr != "" && c.InsecureHTTP {
		return errors.New("setting api-addr (ZK_API_ADDR): the API listener is mutual TLS only; it cannot run with insecure-http")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("setting tls-cert/tls-key (ZK_TLS_CERT/ZK_TLS_KEY): give both or neither")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("setting log-level (ZK_LOG_LEVEL): %q is not debug, info, warn or error", c.LogLevel)
	}
	if c.IdleTimeout < time.Minute || c.IdleTimeout > 12*time.Hour {
		return fmt.Errorf("setting idle-timeout (ZK_IDLE_TIMEOUT): %s is outside 1m..12h", c.IdleTimeout)
	}
	if c.SessionLifetime < c.IdleTimeout || c.SessionLifetime > 24*time.Hour {
		return fmt.Errorf("setting session-lifetime (ZK_SESSION_LIFETIME): %s must be between the idle timeout and 24h", c.SessionLifetime)
	}
	if c.ChangeExpiry < time.Hour || c.ChangeExpiry > 30*24*time.Hour {
		return fmt.Errorf("setting change-expiry (ZK_CHANGE_EXPIRY): %s is outside 1h..720h", c.ChangeExpiry)
	}
	if c.EmergencyDuration < 15*time.Minute || c.EmergencyDuration > 24*time.Hour {
		return fmt.Errorf("setting emergency-duration (ZK_EMERGENCY_DURATION): %s is outside 15m..24h", c.EmergencyDuration)
	}
	if c.AlertWebhook != "" {
		// The value is not echoed: a webhook URL often carries a token.
		u, err := url.Parse(c.AlertWebhook)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && IsLoopback(u.Hostname()))) {
			return errors.New("setting alert-webhook (ZK_ALERT_WEBHOOK): must be an https URL (plain http only on a loopback address)")
		}
	}
	if c.BackupInterval != 0 && (c.BackupInterval < 10*time.Second || c.BackupInterval > 24*time.Hour) {
		return fmt.Errorf("setting backup-interval (ZK_BACKUP_INTERVAL): %s is outside 10s..24h (at most 24 h of data may be lost); 0 turns the schedule off", c.BackupInterval)
	}
	if c.ClockMaxOffset < time.Millisecond || c.ClockMaxOffset > 10*time.Second {
		return fmt.Errorf("setting clock-max-offset (ZK_CLOCK_MAX_OFFSET): %s is outside 1ms..10s", c.ClockMaxOffset)
	}
	for _, s := range c.NTPServerList() {
		if strings.ContainsAny(s, " /") {
			return fmt.Errorf("setting ntp-servers (ZK_NTP_SERVERS): %q is not a host or HOST:PORT", s)
		}
	}
	if _, err := c.TrustedProxyNets(); err != nil {
		return err
	}
	if err := c.validateSenders(); err != nil {
		return err
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 64<<20 {
		return fmt.Errorf("setting max-body-bytes (ZK_MAX_BODY_BYTES): %d is outside 1 KiB..64 MiB", c.MaxBodyBytes)
	}
	return nil
}

// validateSenders checks the SMTP and SMS settings. Values are not echoed
// where they may carry a secret (a webhook URL often holds a token).
func (c Config) validateSenders() error {
	if c.SMTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.SMTPAddr); err != nil {
			return fmt.Errorf("setting smtp-addr (ZK_SMTP_ADDR): %q is not HOST:PORT", c.SMTPAddr)
		}
		a, err := mail.ParseAddress(c.SMTPFrom)
		if c.SMTPFrom == "" || err != nil || a.Name != "" || strings.ContainsAny(c.SMTPFrom, "\r\n") {
			return errors.New("setting smtp-from (ZK_SMTP_FROM): give the sender's plain e-mail address, e.g. noreply@zorg.example.nl")
		}
	} else if c.SMTPFrom != "" || c.SMTPUser != "" {
		return errors.New("setting smtp-addr (ZK_SMTP_ADDR): smtp-from and smtp-user need the SMTP server's HOST:PORT")
	}
	if (c.SMTPUser == "") != (c.SMTPPassword == "") {
		return errors.New("setting smtp-user (ZK_SMTP_USER): give the user and env ZK_SMTP_PASSWORD together, or neither")
	}
	if c.SMSWebhook != "" {
		u, err := url.Parse(c.SMSWebhook)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && IsLoopback(u.Hostname()))) {
			return errors.New("setting sms-webhook (ZK_SMS_WEBHOOK): must be an https URL (plain http only on a loopback address)")
		}
	} else if c.SMSWebhookSecret != "" {
		return errors.New("setting sms-webhook (ZK_SMS_WEBHOOK): env ZK_SMS_WEBHOOK_SECRET is set but there is no webhook to send it to")
	}
	return nil
}

// ValidateServe adds the checks that only matter for serving: a
// certificate is required, and plain HTTP only on loopback.
func (c Config) ValidateServe() error {
	host, _, _ := net.SplitHostPort(c.Addr)
	if c.InsecureHTTP && !IsLoopback(host) {
		return fmt.Errorf("setting insecure-http (ZK_INSECURE_HTTP): plain HTTP is only allowed on a loopback address, not %q", host)
	}
	if !c.InsecureHTTP && !c.Demo && c.TLSCert == "" {
		return errors.New("setting tls-cert (ZK_TLS_CERT): a certificate is required (or use --demo for a self-signed one)")
	}
	return nil
}

// IsLoopback reports whether host names a loopback interface.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NTPServerList is ntp-servers as a list; empty when "off".
func (c Config) NTPServerList() []string {
	if strings.EqualFold(strings.TrimSpace(c.NTPServers), "off") {
		return nil
	}
	return splitList(c.NTPServers)
}

// TrustedProxyNets parses trusted-proxies (CIDRs; a bare address is one host).
func (c Config) TrustedProxyNets() ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, s := range splitList(c.TrustedProxies) {
		if !strings.Contains(s, "/") {
			if ip := net.ParseIP(s); ip != nil {
				bits := 128
				if ip.To4() != nil {
					bits = 32
				}
				s = fmt.Sprintf("%s/%d", s, bits)
			}
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("setting trusted-proxies (ZK_TRUSTED_PROXIES): %q is not a CIDR like 10.0.0.0/8", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
