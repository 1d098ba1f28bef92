package main

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/server"
)

// TestTLSReloadOnHangup: a renewed certificate is served after SIGHUP
// without a restart; a broken file is reported and the one in use stays.
// REQ: DP-2
func TestTLSReloadOnHangup(t *testing.T) {
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	live, renewed := t.TempDir(), t.TempDir()
	for _, dir := range []string{live, renewed} {
		if _, _, err := server.DemoCertificate(dir, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	certFile, keyFile := filepath.Join(live, "demo-cert.pem"), filepath.Join(live, "demo-key.pem")
	srv := startServerArgs(t, bin, data, []string{"--tls-cert", certFile, "--tls-key", keyFile})
	addr := strings.TrimPrefix(srv.base, "https://")
	served := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // only the served serial is compared
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
	}
	hangup := func() {
		t.Helper()
		if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	waitLog := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if strings.Count(srv.stderr.String(), want) > 0 {
				return
			}
		}
		t.Fatalf("no %q in the log:\n%s", want, srv.stderr)
	}
	first := served()

	// A broken certificate file: the reload is refused, the old one stays.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	hangup()
	waitLog("TLS certificate not reloaded")
	if got := served(); got != first {
		t.Fatalf("after a broken reload the server serves %s, want the old %s", got, first)
	}

	// The renewed pair: served from the next handshake on.
	for _, f := range []string{"demo-cert.pem", "demo-key.pem"} {
		b, err := os.ReadFile(filepath.Join(renewed, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(live, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hangup()
	waitLog("TLS certificate reloaded")
	if got := served(); got == first {
		t.Fatalf("after SIGHUP the server still serves %s", got)
	}
	select {
	case err := <-srv.done:
		t.Fatalf("the server exited on SIGHUP: %v", err)
	default:
	}
}
