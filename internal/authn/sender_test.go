package authn

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/password"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// REQ: AUTH-2
// The webhook sender posts JSON with the bearer token and fails on non-2xx.
func TestWebhookSender(t *testing.T) {
	var got map[string]string
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		_ = json.NewDecoder(r.Body).Decode(&got)
		if got["to"] == "+31699999999" {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	s := WebhookSender{URL: srv.URL, Token: "tok", Client: srv.Client()}
	if err := s.Send(context.Background(), Message{Channel: FactorSMS, To: "+31600000000", Body: "code 12345678"}); err != nil {
		t.Fatal(err)
	}
	if got["to"] != "+31600000000" || got["message"] != "code 12345678" || auth != "Bearer tok" {
		t.Fatalf("posted %v with %q", got, auth)
	}
	if err := s.Send(context.Background(), Message{Channel: FactorSMS, To: "+31699999999", Body: "x"}); err == nil {
		t.Fatal("502 not reported")
	}
	if err := s.Send(context.Background(), Message{Channel: FactorEmail, To: "a@b", Body: "x"}); err == nil {
		t.Fatal("e-mail through SMS webhook")
	}
}

// REQ: AUTH-2
// The outbox sender writes one private file per message.
func TestOutboxSender(t *testing.T) {
	dir := t.TempDir()
	s := OutboxSender{Dir: dir}
	if err := s.Send(context.Background(), Message{Channel: FactorEmail, To: "a@example.invalid", Subject: "code", Body: "Your code is 12345678."}); err != nil {
		t.Fatal(err)
	}
	files, err := OutboxFiles(dir)
	if err != nil || len(files) != 1 {
		t.Fatalf("%v %v", files, err)
	}
	b, _ := os.ReadFile(files[0])
	fi, _ := os.Stat(files[0])
	if !strings.Contains(string(b), "12345678") || fi.Mode().Perm() != 0o600 {
		t.Fatalf("outbox file %q mode %v", b, fi.Mode())
	}
}

// REQ: AUTH-2
// The SMTP sender talks SMTP to a loopback server and refuses header injection.
func TestSMTPSender(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		w := func(s string) { _, _ = c.Write([]byte(s + "\r\n")) }
		w("220 localhost ESMTP test")
		var body strings.Builder
		inData := false
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if inData {
				if line == ".\r\n" {
					inData = false
					data <- body.String()
					w("250 ok")
					continue
				}
				body.WriteString(line)
				continue
			}
			switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
			case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
				w("250 localhost")
			case strings.HasPrefix(cmd, "DATA"):
				inData = true
				w("354 go on")
			case strings.HasPrefix(cmd, "QUIT"):
				w("221 bye")
				return
			default:
				w("250 ok")
			}
		}
	}()
	s := SMTPSender{Addr: ln.Addr().String(), From: "noreply@example.invalid"}
	if err := s.Send(context.Background(), Message{Channel: FactorEmail, To: "user@example.invalid", Subject: "zorgkluis code", Body: "Your code is 87654321."}); err != nil {
		t.Fatal(err)
	}
	got := <-data
	if !strings.Contains(got, "87654321") || !strings.Contains(got, "To: user@example.invalid") {
		t.Fatalf("message %q", got)
	}
	if err := s.Send(context.Background(), Message{Channel: FactorEmail, To: "a@b\r\nBcc: x@y", Body: "x"}); err == nil {
		t.Fatal("header injection accepted")
	}
}

// REQ: AUTH-2
// Weak factors exist only where a sender can deliver them: without one a
// tenant cannot switch them on and they are not offered; with only an
// e-mail sender, only e-mail codes are.
func TestWeakFactorsNeedASender(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, password.TestParams())
		ctx := context.Background()
		u := f.addUser(t, "weak.user", identity.KindProfessional, 3, true, string(access.RoleProfessional))
		f.svc.settings.Sender = nil
		if err := f.svc.SetTenantSettings(ctx, f.tenant, TenantAuthSettings{WeakFactors: true}); !errors.Is(err, ErrNoSender) {
			t.Fatalf("weak factors on without a sender: %v", err)
		}
		if err := f.svc.SetTenantSettings(ctx, f.tenant, TenantAuthSettings{WeakFactors: false}); err != nil {
			t.Fatal(err)
		}
		if k := f.svc.FactorKinds(); slices.Contains(k, FactorSMS) || slices.Contains(k, FactorEmail) {
			t.Fatalf("factors without a sender: %v", k)
		}
		f.svc.settings.Sender = MultiSender{Email: f.sender}
		if err := f.svc.SetTenantSettings(ctx, f.tenant, TenantAuthSettings{WeakFactors: true}); err != nil {
			t.Fatal(err)
		}
		if k := f.svc.FactorKinds(); slices.Contains(k, FactorSMS) || !slices.Contains(k, FactorEmail) {
			t.Fatalf("factors with an e-mail sender: %v", k)
		}
		if _, err := f.svc.AddContact(ctx, u.id, FactorSMS, "+31600000000"); !errors.Is(err, ErrWeakFactorRefused) {
			t.Fatalf("sms contact without an SMS sender: %v", err)
		}
		if _, err := f.svc.AddContact(ctx, u.id, FactorEmail, "weak.user@example.invalid"); err != nil {
			t.Fatalf("e-mail contact: %v", err)
		}
	})
}

// REQ: AUTH-4
// An SMTP server that accepts and then says nothing cannot hold a log-on:
// the delivery ends with the request's context.
func TestSMTPSenderHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // silent: no greeting
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = SMTPSender{Addr: ln.Addr().String(), From: "noreply@example.invalid"}.Send(ctx, Message{Channel: FactorEmail, To: "u@example.invalid", Body: "x"})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("silent server: %v after %s", err, time.Since(start))
	}
}

// REQ: AUTH-2
// The SMS webhook's URL may carry the provider's token: a failed delivery's
// error, which the caller logs, never names it.
func TestWebhookSenderErrorHidesURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	u := srv.URL + "/send?token=s3cr3t-provider-token"
	srv.Close() // unreachable from now on
	s := WebhookSender{URL: u, Client: &http.Client{Timeout: time.Second}}
	err := s.Send(context.Background(), Message{Channel: FactorSMS, To: "+31600000000", Body: "code 12345678"})
	if err == nil {
		t.Fatal("delivery to a closed server succeeded")
	}
	for _, secret := range []string{"s3cr3t-provider-token", "/send", "12345678"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error %q names %q", err, secret)
		}
	}
	bad := WebhookSender{URL: "https://sms.example.invalid/\x7fsend?token=s3cr3t-provider-token"}
	if err := bad.Send(context.Background(), Message{Channel: FactorSMS, To: "+31600000000", Body: "x"}); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("bad URL: %v", err)
	}
}
