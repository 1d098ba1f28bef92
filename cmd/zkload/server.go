package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ServerStats is what zkload observed of the server process.
type ServerStats struct {
	Source       string  `json:"source"` // "metrics", "proc" or "" when not observed
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	LastRSSBytes int64   `json:"last_rss_bytes"`
	HWMBytes     int64   `json:"vmhwm_bytes,omitempty"` // kernel's high-water mark, --server-pid only
	CPUSeconds   float64 `json:"cpu_seconds"`           // used during the run
	CPUCores     float64 `json:"cpu_cores"`             // CPU seconds per wall second
}

// serverProbe reads RSS and CPU time of the server: from /proc when the pid
// is known (exact), otherwise from the Prometheus process collector.
type serverProbe struct {
	pid     int
	metrics string
	client  *http.Client
}

type procSample struct {
	rss, hwm int64
	cpu      float64
}

func (p serverProbe) enabled() bool { return p.pid > 0 || p.metrics != "" }

func (p serverProbe) source() string {
	switch {
	case p.pid > 0:
		return "proc"
	case p.metrics != "":
		return "metrics"
	}
	return ""
}

func (p serverProbe) sample(ctx context.Context) (procSample, error) {
	if p.pid > 0 {
		return readProc(p.pid)
	}
	return p.scrape(ctx)
}

func readProc(pid int) (procSample, error) {
	var s procSample
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("server pid %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			s.rss = kb * 1024
		case "VmHWM:":
			s.hwm = kb * 1024
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("server pid %d: %w", pid, err)
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields, in clock ticks (100 per second on Linux).
	rest := string(stat)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) > 13 {
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		s.cpu = (ut + st) / 100
	}
	return s, nil
}

func (p serverProbe) scrape(ctx context.Context) (procSample, error) {
	var s procSample
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metrics, nil)
	if err != nil {
		return s, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return s, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("metrics: status %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "process_resident_memory_bytes":
			s.rss = int64(v)
		case "process_cpu_seconds_total":
			s.cpu = v
		}
	}
	return s, sc.Err()
}

// monitor samples the server every interval until stopped and keeps the
// peak; last holds the latest sample for the progress samples.
type monitor struct {
	probe serverProbe
	mu    sync.Mutex
	first procSample
	last  procSample
	peak  int64
	win   int64 // peak since the last takeWindow
	err   error
	start time.Time
	n     int
}

func (m *monitor) run(ctx context.Context, every time.Duration) {
	m.start = time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s, err := m.probe.sample(ctx)
		m.mu.Lock()
		if err != nil {
			if ctx.Err() == nil {
				m.err = err
			}
		} else {
			if m.n == 0 {
				m.first = s
			}
			m.n++
			m.last = s
			m.peak = max(m.peak, s.rss)
			m.win = max(m.win, s.rss)
		}
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// takeWindow returns the peak RSS since the last call and starts a new
// window: a point sample once a minute would miss short peaks (a log-on's
// password hash takes 64 MiB for a fraction of a second).
// It returns the latest sample with it, read under the same lock, so the
// window's peak is never below the sample it is reported beside.
func (m *monitor) takeWindow() (procSample, int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := max(m.win, m.last.rss)
	m.win = 0
	return m.last, w
}

func (m *monitor) current() procSample {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

func (m *monitor) stats(wall time.Duration) (ServerStats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := ServerStats{Source: m.probe.source(), PeakRSSBytes: m.peak, LastRSSBytes: m.last.rss, HWMBytes: m.last.hwm,
		CPUSeconds: m.last.cpu - m.first.cpu}
	if wall > 0 {
		st.CPUCores = st.CPUSeconds / wall.Seconds()
	}
	if m.n == 0 && m.err != nil {
		return st, m.err
	}
	return st, nil
}

// finish takes a last sample so CPU time covers the whole run.
func (m *monitor) finish(ctx context.Context) {
	s, err := m.probe.sample(ctx)
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == 0 {
		m.first = s
	}
	m.n++
	m.last = s
	m.peak = max(m.peak, s.rss)
}
