package clockwatch

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// shifted is a server clock a fixed amount off the system clock.
type shifted struct {
	mu sync.Mutex
	d  time.Duration
}

func (s *shifted) Now() time.Time      { s.mu.Lock(); defer s.mu.Unlock(); return time.Now().UTC().Add(s.d) }
func (s *shifted) set(d time.Duration) { s.mu.Lock(); s.d = d; s.mu.Unlock() }

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// startChrony runs Debian's chronyd as an NTP server on a loopback port,
// serving the system clock (-x: it never sets it) at stratum 1.
func startChrony(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("chronyd")
	if err != nil {
		for _, p := range []string{"/usr/sbin/chronyd", "/sbin/chronyd"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Fatal("chronyd not installed (apt-get install chrony; scripts/test does)")
	}
	dir := t.TempDir()
	port := freeUDPPort(t)
	conf := fmt.Sprintf("port %d\nbindaddress 127.0.0.1\ncmdport 0\nlocal stratum 1\nallow 127.0.0.1\npidfile %s\ndriftfile %s\n",
		port, filepath.Join(dir, "pid"), filepath.Join(dir, "drift"))
	if err := os.WriteFile(filepath.Join(dir, "chrony.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-x", "-d", "-f", filepath.Join(dir, "chrony.conf")}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root") // keep privileges: the temp dir is root's
	}
	cmd := exec.Command(bin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	server := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; i < 50; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := NTP(ctx, server)
		cancel()
		if err == nil {
			return server
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("chronyd does not answer on %s:\n%s", server, out.String())
	return ""
}

// REQ: DP-6
// Against a loopback chronyd: a server clock 2 s off fails readiness and
// raises a security event; back within ±500 ms readiness recovers; a server
// that does not answer is reported. chronyd serves the true (system) time;
// the shift is the server's own clock (the one zorgkluis stamps log lines
// with), because shifting chronyd's served time would need CAP_SYS_TIME or
// a reference-clock feed.
func TestClockWatchAgainstChrony(t *testing.T) {
	server := startChrony(t)
	closed := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	clk := &shifted{}
	var mu sync.Mutex
	var events []string
	w := New([]string{server, closed}, 500*time.Millisecond, clk, NTP, func(_ context.Context, kind, detail string) {
		mu.Lock()
		events = append(events, kind+": "+detail)
		mu.Unlock()
	})
	ctx := context.Background()

	st := w.Check(ctx)
	if st.Answered != 1 || !st.Within || w.Ready(ctx) != nil || st.Offset.Abs() > 100*time.Millisecond {
		t.Fatalf("in sync: %+v, ready %v", st, w.Ready(ctx))
	}
	if len(st.Unreachable) != 1 || !strings.Contains(st.Unreachable[0], closed) || len(events) != 1 || !strings.HasPrefix(events[0], "ntp-unreachable") {
		t.Fatalf("unreachable server not reported: %+v, events %v", st, events)
	}

	clk.set(2 * time.Second)
	st = w.Check(ctx)
	if st.Within || w.Ready(ctx) == nil || st.Offset < 1900*time.Millisecond {
		t.Fatalf("2 s off: %+v, ready %v", st, w.Ready(ctx))
	}
	if len(events) != 2 || !strings.HasPrefix(events[1], "clock-offset:") {
		t.Fatalf("no security event for the offset: %v", events)
	}
	t.Logf("2 s off: %v; readiness: %v", st.Offset, w.Ready(ctx))

	clk.set(-300 * time.Millisecond) // within the bound
	st = w.Check(ctx)
	if !st.Within || w.Ready(ctx) != nil {
		t.Fatalf("back within bounds: %+v, ready %v", st, w.Ready(ctx))
	}
	if len(events) != 3 || !strings.HasPrefix(events[2], "clock-offset-recovered") {
		t.Fatalf("events: %v", events)
	}
}
