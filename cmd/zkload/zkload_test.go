package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// fakeDNS answers from a table so the tests never touch the network.
func fakeDNS(table map[string][]string) lookupFunc {
	return func(_ context.Context, host string) ([]net.IPAddr, error) {
		ips, ok := table[host]
		if !ok {
			return nil, errors.New("no such host")
		}
		var out []net.IPAddr
		for _, s := range ips {
			out = append(out, net.IPAddr{IP: net.ParseIP(s)})
		}
		return out, nil
	}
}

// zkload refuses, by construction, to drive anything but this machine.
func TestLoopbackGuard(t *testing.T) {
	dns := fakeDNS(map[string][]string{
		"localhost":   {"127.0.0.1", "::1"},
		"example.com": {"93.184.215.14"},
		"mixed.test":  {"127.0.0.1", "10.0.0.1"},
	})
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://localhost:8443", true},
		{"https://127.0.0.1:8443/", true},
		{"https://[::1]:8443", true},
		{"http://127.0.0.1:9464/metrics", true},
		{"https://10.0.0.1:8443", false},
		{"https://example.com", false},
		{"https://mixed.test:8443", false},
		{"https://unknown.test", false},
		{"https://0.0.0.0:8443", false},
		{"ftp://127.0.0.1", false},
		{"https://user:pw@127.0.0.1:8443", false},
		{"127.0.0.1:8443", false},
	}
	for _, tt := range tests {
		_, err := loopbackTarget(context.Background(), tt.url, dns)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v; want ok=%v", tt.url, err, tt.ok)
		}
	}
	// The dialer only reaches the checked target, whatever it is asked.
	tg, err := loopbackTarget(context.Background(), "https://localhost:8443", dns)
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"10.0.0.1:8443", "example.com:443", "localhost:9999"} {
		if _, err := tg.dial(context.Background(), "tcp", addr); !errors.Is(err, errOffTarget) {
			t.Errorf("dial %s: err = %v; want errOffTarget", addr, err)
		}
	}
}

// The bounds are hard caps, not defaults.
func TestFlagsAreBounded(t *testing.T) {
	for _, args := range [][]string{
		{"--duration", "11m"}, {"--duration", "0s"}, {"--requests", "0"}, {"--requests", "10000001"},
		{"--clients", "0"}, {"--clients", "257"}, {"--sample", "10ms"}, {"extra"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if code := run(context.Background(), []string{"--target", "https://10.0.0.1:8443"}, io.Discard, io.Discard, fakeDNS(nil)); code != 1 {
		t.Errorf("non-loopback target: exit %d; want 1", code)
	}
	if _, err := parseMix("read-patient=3,nonsense=1"); err == nil {
		t.Error("unknown operation in --mix accepted")
	}
}

func TestQuantiles(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	s := summarise(lat, 2, 10*time.Second)
	if s.P50 != 50 || s.P90 != 90 || s.P99 != 99 || s.Max != 100 || s.Count != 100 || s.Errors != 2 || s.Throughput != 10 {
		t.Fatalf("summary %+v", s)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServer generates a small data set and serves it; it returns the
// base URL, the metrics URL, the data directory and the server's pid.
func startServer(t *testing.T, bin, dbURL string) (base, metrics, data string, pid int) {
	t.Helper()
	data = t.TempDir()
	gen := exec.Command(bin, "generate", "--data", data, "--database", dbURL, "--patients", "12", "--resources-per-patient", "3",
		"--professionals", "3", "--persons", "3", "--seed", "5", "--batch", "5") // batches of 5, 5 and 2
	if out, err := gen.CombinedOutput(); err != nil || !strings.Contains(string(out), "generated 12 patients") {
		t.Fatalf("generate: %v\n%s", err, out)
	}
	// The bulk load ends flushed and with its access log sequenced and signed.
	if out, err := exec.Command(bin, "audit", "verify", "--data", data, "--database", dbURL).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "OK: the access log is intact") || strings.Contains(string(out), "awaiting the next checkpoint") {
		t.Fatalf("audit verify after generate: %v\n%s", err, out)
	}
	addr, maddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "serve", "--demo", "--data", data, "--database", dbURL, "--addr", addr, "--metrics-addr", maddr, "--log-level", "warn")
	var stderr bytes.Buffer
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "zorgkluis listening on") {
				close(listening)
				io.Copy(io.Discard, pr)
				return
			}
		}
	}()
	select {
	case <-listening:
	case err := <-done:
		t.Fatalf("server exited: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start\n%s", stderr.String())
	}
	return "https://" + addr, "http://" + maddr + "/metrics", data, cmd.Process.Pid
}

// The harness drives the real binary for a few seconds with the full mix:
// no errors, and every core operation measured. Run on both engines.
func TestHarnessAgainstRealServer(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "zorgkluis")
	build := exec.Command("go", "build", "-o", bin, "github.com/zorgkluis/zorgkluis/cmd/zorgkluis")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build zorgkluis: %v", err)
	}
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			dbURL := filepath.Join(t.TempDir(), "zk.db")
			if dialect == "postgres" {
				dbURL = storetest.PostgresURL(t)
			}
			base, metrics, data, pid := startServer(t, bin, dbURL)
			var out, errOut bytes.Buffer
			args := []string{"--target", base, "--credentials", filepath.Join(data, "synth-credentials.json"),
				"--ca", filepath.Join(data, "demo-cert.pem"), "--metrics", metrics, "--server-pid", fmt.Sprint(pid),
				"--clients", "4", "--duration", "3s", "--requests", "2000", "--sample", "1s", "--json", "--progress=false"}
			code := run(context.Background(), args, &out, &errOut, net.DefaultResolver.LookupIPAddr)
			var rep Report
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("exit %d, report not JSON: %v\n%s\n%s", code, err, out.String(), errOut.String())
			}
			if code != 0 || rep.Errors != 0 {
				t.Fatalf("exit %d, %d errors: %+v\n%s", code, rep.Errors, rep.ErrorSamples, errOut.String())
			}
			for _, op := range []string{"read-patient", "search-observation", "person-read", "person-search", "logon-warmup"} {
				if s := rep.Ops[op]; s.Count == 0 || s.P50 <= 0 || s.Max < s.P99 || s.P99 < s.P50 {
					t.Errorf("operation %s: %+v", op, s)
				}
			}
			for _, s := range rep.Samples {
				if s.RSSBytes <= 0 || s.PeakRSSBytes < s.RSSBytes {
					t.Errorf("sample without server memory: %+v", s)
				}
			}
			if w := rep.Ops["logon-warmup"]; w.Throughput <= 0 {
				t.Errorf("log-on warm-up has no rate: %+v", w)
			}
			if rep.Operations == 0 || rep.PerSecond <= 0 || rep.Server.PeakRSSBytes <= 0 || rep.Server.CPUSeconds <= 0 || len(rep.Samples) < 2 {
				t.Errorf("report incomplete: %d ops, %.1f/s, server %+v (%s), %d samples", rep.Operations, rep.PerSecond, rep.Server, rep.ServerError, len(rep.Samples))
			}
		})
	}
}
