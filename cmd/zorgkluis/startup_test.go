package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A second start on a busy port fails before it opens the database or
// writes anything: no database, no keys, no certificate in the data
// directory. So does a missing certificate file.
func TestStartupChecksBeforeSideEffects(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free := freeAddr(t)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"busy port", []string{"--demo", "--addr", busy.Addr().String(), "--metrics-addr", ""}, "setting addr"},
		{"busy metrics port", []string{"--demo", "--addr", free, "--metrics-addr", busy.Addr().String()}, "setting metrics-addr"},
		{"missing certificate", []string{"--addr", free, "--metrics-addr", "", "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"}, "setting tls-cert"},
		{"busy API port", []string{"--demo", "--addr", free, "--metrics-addr", "", "--api-addr", busy.Addr().String()}, "setting api-addr"},
		{"API port without TLS", []string{"--addr", free, "--metrics-addr", "", "--insecure-http", "--api-addr", freeAddr(t)}, "setting api-addr"},
		{"bad trusted proxy", []string{"--addr", free, "--insecure-http", "--trusted-proxies", "10.0.0.0/33"}, "trusted-proxies"},
	} {
		data := filepath.Join(t.TempDir(), "data")
		code, _, errOut := runCLI(t, append([]string{"serve", "--data", data}, c.args...)...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Fatalf("%s: exit %d, %s", c.name, code, errOut)
		}
		if entries, err := os.ReadDir(data); err == nil && len(entries) > 0 {
			t.Fatalf("%s: the failed start wrote %v", c.name, entries)
		}
	}
}
