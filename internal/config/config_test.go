package config

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsAndPrecedence(t *testing.T) {
	c, err := Load("serve", []string{"--demo"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "./data" || c.Addr != "127.0.0.1:8443" || c.MetricsAddr != "127.0.0.1:9464" || c.DatabaseURL != filepath.Join("data", "zorgkluis.db") {
		t.Fatalf("defaults: %+v", c)
	}
	if c.IdleTimeout != 15*time.Minute || c.SessionLifetime != 12*time.Hour {
		t.Fatalf("session defaults: %v %v", c.IdleTimeout, c.SessionLifetime)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "zk.json")
	if err := os.WriteFile(file, []byte(`{"addr":"127.0.0.1:1111","data":"/from/file","idle-timeout":"20m"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Load("serve", []string{"--demo", "--config", file, "--addr", "127.0.0.1:3333"},
		env(map[string]string{"ZK_ADDR": "127.0.0.1:2222", "ZK_DATA_DIR": "/from/env"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:3333" || c.DataDir != "/from/env" || c.IdleTimeout != 20*time.Minute {
		t.Fatalf("precedence flag > env > file broken: %+v", c)
	}
}

func TestInvalidSettingsNameTheSetting(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--demo", "--addr", "nonsense"}, nil, "setting addr"},
		{[]string{"--insecure-http", "--addr", "0.0.0.0:8080"}, nil, "setting insecure-http"},
		{nil, nil, "setting tls-cert"},
		{[]string{"--demo"}, map[string]string{"ZK_IDLE_TIMEOUT": "soon"}, "setting idle-timeout"},
		{[]string{"--demo", "--log-level", "loud"}, nil, "setting log-level"},
		{[]string{"--demo", "--metrics-addr", "127.0.0.1:8443"}, nil, "setting metrics-addr"},
		{[]string{"--demo", "--max-body-bytes", "10"}, nil, "setting max-body-bytes"},
		{[]string{"--demo", "--emergency-duration", "72h"}, nil, "setting emergency-duration"}, // REQ: AZ-5
		{[]string{"--demo", "--change-expiry", "10m"}, nil, "setting change-expiry"},           // REQ: GOV-1
		{[]string{"--demo"}, map[string]string{"ZK_ALERT_WEBHOOK": "http://hooks.example.nl/x?token=t0k"}, "setting alert-webhook"},
		{[]string{"--demo", "--alert-webhook", "not a url"}, nil, "setting alert-webhook"},
		{[]string{"--demo", "--api-addr", "nonsense"}, nil, "setting api-addr"},                                            // REQ: DP-3
		{[]string{"--demo"}, map[string]string{"ZK_API_ADDR": "127.0.0.1:8443"}, "setting api-addr"},                       // not the public address
		{[]string{"--insecure-http", "--addr", "127.0.0.1:8080", "--api-addr", "127.0.0.1:9443"}, nil, "setting api-addr"}, // mutual TLS only
		{[]string{"--demo", "--pprof", "--metrics-addr", ""}, nil, "setting pprof"},                                        // only on the private listener
	}
	for _, tc := range cases {
		c, err := Load("serve", tc.args, env(tc.env), io.Discard)
		if err == nil {
			err = c.ValidateServe()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%v, %v) error = %v; want it to name %q", tc.args, tc.env, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "t0k") {
			t.Errorf("error echoes the webhook token: %v", err)
		}
	}
}

func TestPlainHTTPAllowedOnLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:8080", "[::1]:8080", "localhost:8080"} {
		c, err := Load("serve", []string{"--insecure-http", "--addr", addr}, env(nil), io.Discard)
		if err == nil {
			err = c.ValidateServe()
		}
		if err != nil {
			t.Fatalf("loopback plain HTTP on %s refused: %v", addr, err)
		}
	}
}

// Emergency access lasts 4 h unless configured otherwise.
// REQ: AZ-5
func TestEmergencyDuration(t *testing.T) {
	c, err := Load("serve", []string{"--demo"}, env(nil), io.Discard)
	if err != nil || c.EmergencyDuration != 4*time.Hour {
		t.Fatalf("default emergency duration %v (%v), want 4h", c.EmergencyDuration, err)
	}
	c, err = Load("serve", []string{"--demo"}, env(map[string]string{"ZK_EMERGENCY_DURATION": "90m"}), io.Discard)
	if err != nil || c.EmergencyDuration != 90*time.Minute {
		t.Fatalf("configured emergency duration %v (%v), want 90m", c.EmergencyDuration, err)
	}
}

// REQ: AUTH-2
// The SMTP and SMS senders are configured like every setting (flag > env >
// file), their secrets come from the environment only, and a bad or
// incomplete sender setting stops start-up naming it, without echoing a
// secret.
func TestSenderSettings(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "zk.json")
	if err := os.WriteFile(file, []byte(`{"smtp_addr":"mail.example.nl:587","smtp_from":"file@example.nl","sms_webhook":"https://sms.example.nl/send"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load("serve", []string{"--demo", "--config", file, "--smtp-from", "flag@example.nl"},
		env(map[string]string{"ZK_SMTP_FROM": "env@example.nl", "ZK_SMTP_USER": "mailer", "ZK_SMTP_PASSWORD": "s3cret", "ZK_SMS_WEBHOOK_SECRET": "t0k"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTPAddr != "mail.example.nl:587" || c.SMTPFrom != "flag@example.nl" || c.SMTPUser != "mailer" || c.SMTPPassword != "s3cret" ||
		c.SMSWebhook != "https://sms.example.nl/send" || c.SMSWebhookSecret != "t0k" {
		t.Fatalf("sender settings: %+v", c)
	}
	// Secrets are not settings: no flag, no file key.
	if _, err := Load("serve", []string{"--demo", "--smtp-password", "x"}, env(nil), io.Discard); err == nil {
		t.Error("--smtp-password accepted on the command line")
	}
	if err := os.WriteFile(file, []byte(`{"smtp_addr":"mail.example.nl:587","smtp_from":"a@example.nl","smtp_password":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load("serve", []string{"--demo", "--config", file}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "unknown setting") {
		t.Errorf("smtp_password in the config file: %v", err)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--demo", "--smtp-addr", "mail.example.nl"}, nil, "setting smtp-addr"},
		{[]string{"--demo", "--smtp-addr", "mail.example.nl:25"}, nil, "setting smtp-from"},
		{[]string{"--demo", "--smtp-addr", "mail.example.nl:25", "--smtp-from", "Zorg <a@example.nl>"}, nil, "setting smtp-from"},
		{[]string{"--demo", "--smtp-from", "a@example.nl"}, nil, "setting smtp-addr"},
		{[]string{"--demo", "--smtp-addr", "mail.example.nl:25", "--smtp-from", "a@example.nl", "--smtp-user", "u"}, nil, "setting smtp-user"},
		{[]string{"--demo", "--smtp-addr", "mail.example.nl:25", "--smtp-from", "a@example.nl"}, map[string]string{"ZK_SMTP_PASSWORD": "s3cret"}, "setting smtp-user"},
		{[]string{"--demo", "--sms-webhook", "http://sms.example.nl/x?token=t0k"}, nil, "setting sms-webhook"},
		{[]string{"--demo"}, map[string]string{"ZK_SMS_WEBHOOK_SECRET": "t0k"}, "setting sms-webhook"},
	} {
		_, err := Load("serve", tc.args, env(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%v, %v) error = %v; want it to name %q", tc.args, tc.env, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "t0k") || strings.Contains(err.Error(), "s3cret")) {
			t.Errorf("error echoes a secret: %v", err)
		}
	}
}
