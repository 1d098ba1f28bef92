package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clockwatch"
)

// TestServeWatchesTheClock: the real server asks a loopback chronyd (and a
// port where nothing answers) at start; /readyz carries the clock check,
// the metrics show the offset, one server answering and one unreachable.
//
// REQ: DP-6
func TestServeWatchesTheClock(t *testing.T) {
	ntpServer := startChronyd(t)
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := c.LocalAddr().String()
	c.Close()
	bin := buildBinary(t)
	srv := startServer(t, bin, t.TempDir(), "ZK_NTP_SERVERS="+ntpServer+","+closed)
	cl := client()
	var metrics string
	for i := 0; i < 100; i++ { // the first check runs at start
		resp, err := cl.Get(srv.metrics)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			metrics = string(b)
			if strings.Contains(metrics, "zorgkluis_clock_ntp_answered 1") {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(metrics, "zorgkluis_clock_ntp_answered 1") || !strings.Contains(metrics, "zorgkluis_clock_ntp_unreachable 1") ||
		!strings.Contains(metrics, "zorgkluis_clock_offset_seconds") {
		t.Fatalf("clock metrics:\n%s", grepLines(metrics, "zorgkluis_clock"))
	}
	resp, err := cl.Get(srv.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"clock":"ok"`) {
		t.Fatalf("readyz: %d %s", resp.StatusCode, b)
	}
	srv.stop(t)
	if !strings.Contains(srv.stderr.String(), "NTP servers not answering") {
		t.Fatalf("the unreachable server is not reported:\n%s", srv.stderr)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// startChronyd runs Debian's chronyd as a stratum-1 NTP server on a
// loopback port (-x: it never sets the system clock).
func startChronyd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("chronyd")
	if err != nil {
		bin = "/usr/sbin/chronyd"
		if _, err := os.Stat(bin); err != nil {
			t.Fatal("chronyd not installed (apt-get install chrony; scripts/test does)")
		}
	}
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	dir := t.TempDir()
	conf := fmt.Sprintf("port %d\nbindaddress 127.0.0.1\ncmdport 0\nlocal stratum 1\nallow 127.0.0.1\npidfile %s\ndriftfile %s\n",
		port, filepath.Join(dir, "pid"), filepath.Join(dir, "drift"))
	if err := os.WriteFile(filepath.Join(dir, "chrony.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-x", "-d", "-f", filepath.Join(dir, "chrony.conf")}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	server := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; i < 50; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := clockwatch.NTP(ctx, server)
		cancel()
		if err == nil {
			return server
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("chronyd does not answer on %s", server)
	return ""
}
