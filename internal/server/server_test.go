package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func startTLS(t *testing.T, h http.Handler) (string, *x509.CertPool) {
	t.Helper()
	cert, path, err := DemoCertificate(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(path)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := New(SecurityHeaders(LimitBody(1024, h)), TLSConfig(cert), slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan error, 1)
	go func() { done <- Run(ctx, srv, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String(), pool
}

// REQ: DP-2 — TLS per the NCSC guidelines: 1.3 and 1.2 with ECDHE+AEAD
// only; older versions, CBC and static-RSA suites are refused.
func TestTLSProfile(t *testing.T) {
	addr, pool := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	dial := func(c *tls.Config) (*tls.ConnectionState, error) {
		c.RootCAs, c.ServerName = pool, "localhost"
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, c)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		st := conn.ConnectionState()
		return &st, nil
	}
	st, err := dial(&tls.Config{})
	if err != nil || st.Version != tls.VersionTLS13 {
		t.Fatalf("default client: %v %v; want TLS 1.3", st, err)
	}
	st, err = dial(&tls.Config{MaxVersion: tls.VersionTLS12})
	if err != nil || st.Version != tls.VersionTLS12 {
		t.Fatalf("TLS 1.2 client refused: %v", err)
	}
	if !strings.Contains(tls.CipherSuiteName(st.CipherSuite), "ECDHE") || !strings.Contains(tls.CipherSuiteName(st.CipherSuite), "GCM") &&
		!strings.Contains(tls.CipherSuiteName(st.CipherSuite), "CHACHA20") {
		t.Fatalf("TLS 1.2 suite %s is not ECDHE+AEAD", tls.CipherSuiteName(st.CipherSuite))
	}
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		if _, err := dial(&tls.Config{MinVersion: v, MaxVersion: v}); err == nil {
			t.Errorf("TLS version %x accepted", v)
		}
	}
	weak := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_RSA_WITH_AES_128_GCM_SHA256}
	for _, s := range weak {
		if _, err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{s}}); err == nil {
			t.Errorf("weak suite %s accepted", tls.CipherSuiteName(s))
		}
	}
	// The server prefers hybrid post-quantum key exchange when offered.
	st, err = dial(&tls.Config{CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519}})
	if err != nil || st.CurveID != tls.X25519MLKEM768 {
		t.Fatalf("key exchange = %v, %v; want X25519MLKEM768", st, err)
	}
}

// REQ: DP-2 — HSTS and the NCSC web-application headers on every response;
// bodies over the limit are refused with a problem document.
func TestHeadersAndBodyLimit(t *testing.T) {
	addr, pool := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		}
	}))
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	resp, err := c.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := map[string]string{
		"Strict-Transport-Security": "max-age=31536000",
		"Content-Security-Policy":   "frame-ancestors 'none'",
		"X-Content-Type-Options":    "nosniff",
		"Referrer-Policy":           "no-referrer",
		"X-Frame-Options":           "DENY",
	}
	for h, v := range want {
		if !strings.Contains(resp.Header.Get(h), v) {
			t.Errorf("%s = %q; want it to contain %q", h, resp.Header.Get(h), v)
		}
	}
	resp, err = c.Post("https://"+addr+"/", "application/json", strings.NewReader(strings.Repeat("x", 4096)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("oversized body: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// Graceful shutdown lets an in-flight request finish.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "done")
	})
	cert, path, err := DemoCertificate(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(path)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	srv := New(h, TLSConfig(cert), slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan error, 1)
	go func() { done <- Run(ctx, srv, ln) }()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	got := make(chan string, 1)
	go func() {
		resp, err := c.Get("https://" + ln.Addr().String() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	cancel()
	if s := <-got; s != "done" {
		t.Fatalf("in-flight request got %q; want done", s)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestDemoCertificateIsReusedAndKeyPrivate(t *testing.T) {
	dir := t.TempDir()
	c1, _, err := DemoCertificate(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c2, _, err := DemoCertificate(dir, time.Now())
	if err != nil || string(c1.Certificate[0]) != string(c2.Certificate[0]) {
		t.Fatalf("second call made a new certificate: %v", err)
	}
	fi, err := os.Stat(dir + "/demo-key.pem")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v %v; want 0600", fi.Mode().Perm(), err)
	}
	leaf, _ := x509.ParseCertificate(c1.Certificate[0])
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("demo key is %v; want ECDSA P-256", leaf.PublicKeyAlgorithm)
	}
}
