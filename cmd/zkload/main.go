// Command zkload drives a running zorgkluis server on this machine with a
// realistic, weighted mix of requests from N concurrent clients and reports
// throughput, latency percentiles per operation, errors, and the server's
// peak memory and CPU. It is bounded by construction: only loopback
// targets, at most maxDuration and maxRequests, and it needs a data set
// made by `zorgkluis generate` (whose log-ins it reads).
//
//	zorgkluis generate --data ./data --patients 10000 --resources-per-patient 20
//	zorgkluis serve --demo --data ./data &
//	zkload --target https://localhost:8443 --credentials ./data/synth-credentials.json --duration 60s
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/synth"
)

// Hard caps: a mistyped flag cannot turn zkload into a long-running flood.
const (
	maxDuration = 10 * time.Minute
	maxRequests = 10_000_000
	maxClients  = 256
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, net.DefaultResolver.LookupIPAddr)
	stop()
	os.Exit(code)
}

// options are zkload's flags.
type options struct {
	target, metrics, credentials, ca, mix string
	jsonFile                              string
	clients, requests, serverPID          int
	duration, sample                      time.Duration
	jsonOut, progress                     bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("zkload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.target, "target", "https://localhost:8443", "server base URL; must resolve to loopback addresses only")
	fs.StringVar(&o.metrics, "metrics", "", "server metrics URL (e.g. http://127.0.0.1:9464/metrics), loopback only; for peak RSS and CPU")
	fs.IntVar(&o.serverPID, "server-pid", 0, "server process id: read RSS, VmHWM and CPU from /proc (better than --metrics)")
	fs.StringVar(&o.credentials, "credentials", "./data/synth-credentials.json", "log-ins written by `zorgkluis generate`")
	fs.StringVar(&o.ca, "ca", "", "PEM certificate to trust (e.g. DATA/demo-cert.pem); empty: the loopback server's certificate is not verified")
	fs.StringVar(&o.mix, "mix", defaultMix, "operation weights, name=weight,...")
	fs.IntVar(&o.clients, "clients", 8, fmt.Sprintf("concurrent clients (max %d)", maxClients))
	fs.IntVar(&o.requests, "requests", 100_000, fmt.Sprintf("stop after this many operations (max %d)", maxRequests))
	fs.DurationVar(&o.duration, "duration", 30*time.Second, fmt.Sprintf("stop after this long (max %s)", maxDuration))
	fs.DurationVar(&o.sample, "sample", 30*time.Second, "interval of the over-time samples (throughput, latency, server memory)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.StringVar(&o.jsonFile, "json-file", "", "also write the JSON report to this file")
	fs.BoolVar(&o.progress, "progress", isTerminal(os.Stderr), "print a progress line on stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.clients < 1 || o.clients > maxClients:
		return o, fmt.Errorf("--clients must be 1..%d", maxClients)
	case o.requests < 1 || o.requests > maxRequests:
		return o, fmt.Errorf("--requests must be 1..%d", maxRequests)
	case o.duration <= 0 || o.duration > maxDuration:
		return o, fmt.Errorf("--duration must be more than 0 and at most %s", maxDuration)
	case o.sample < time.Second:
		return o, errors.New("--sample must be at least 1s")
	}
	return o, nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookup lookupFunc) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "zkload:", err)
		return 2
	}
	rep, err := load(ctx, o, stderr, lookup)
	if err != nil {
		fmt.Fprintln(stderr, "zkload:", err)
		return 1
	}
	if o.jsonFile != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(o.jsonFile, b, 0o644)
		}
		if err != nil {
			fmt.Fprintln(stderr, "zkload: --json-file:", err)
			return 1
		}
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.print(stdout)
	}
	if rep.Errors > 0 {
		return 1
	}
	return 0
}

// httpClient returns a client whose connections can only reach t.
func httpClient(t target, caFile string, conns int) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.host}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s: no certificate found", caFile)
		}
		tc.RootCAs = pool
	} else {
		// Loopback only (checked and enforced by the dialer): the demo
		// certificate is self-signed.
		tc.InsecureSkipVerify = true
	}
	tr := &http.Transport{
		DialContext:         t.dial,
		TLSClientConfig:     tc,
		ForceAttemptHTTP2:   false,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

func readCredentials(path string) (synth.Credentials, error) {
	var c synth.Credentials
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("credentials: %w (make a data set with `zorgkluis generate`)", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("credentials %s: %w", path, err)
	}
	if len(c.Professionals) == 0 {
		return c, fmt.Errorf("credentials %s: no professionals", path)
	}
	return c, nil
}

// Report is zkload's result; --json prints it as is.
type Report struct {
	Target       string             `json:"target"`
	Clients      int                `json:"clients"`
	Seconds      float64            `json:"seconds"`
	Operations   int                `json:"operations"`
	PerSecond    float64            `json:"per_second"`
	Errors       int                `json:"errors"`
	Ops          map[string]OpStats `json:"ops"`
	NotAvailable map[string]string  `json:"not_available,omitempty"`
	Skipped      map[string]int     `json:"skipped,omitempty"`
	Server       ServerStats        `json:"server"`
	// ClientCPUCores is zkload's own CPU per wall second (Linux).
	ClientCPUCores float64     `json:"client_cpu_cores,omitempty"`
	ServerError    string      `json:"server_error,omitempty"`
	Samples        []Sample    `json:"samples"`
	ErrorSamples   []errSample `json:"error_samples,omitempty"`
	DataSet        string      `json:"data_set"`
}

// Sample is one interval of the run.
type Sample struct {
	Seconds      float64 `json:"t_s"`
	Ops          int     `json:"ops"`
	PerSecond    float64 `json:"per_second"`
	P50          float64 `json:"p50_ms"`
	P99          float64 `json:"p99_ms"`
	Errors       int     `json:"errors"`
	RSSBytes     int64   `json:"rss_bytes"`      // at the end of the interval
	PeakRSSBytes int64   `json:"peak_rss_bytes"` // highest of the once-a-second samples in the interval
	CPUCores     float64 `json:"cpu_cores"`
}

func (r Report) print(w io.Writer) {
	fmt.Fprintf(w, "zkload: %s, %s, %d clients, %.1f s, %d operations (%.1f/s), errors %d\n",
		r.Target, r.DataSet, r.Clients, r.Seconds, r.Operations, r.PerSecond, r.Errors)
	names := make([]string, 0, len(r.Ops))
	for n := range r.Ops {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "%-20s %8s %6s %9s %8s %8s %8s %8s\n", "operation", "count", "errors", "per s", "p50 ms", "p90 ms", "p99 ms", "max ms")
	for _, n := range names {
		s := r.Ops[n]
		fmt.Fprintf(w, "%-20s %8d %6d %9.1f %8.2f %8.2f %8.2f %8.2f\n", n, s.Count, s.Errors, s.Throughput, s.P50, s.P90, s.P99, s.Max)
	}
	for n, why := range r.NotAvailable {
		fmt.Fprintf(w, "not available: %s (%s)\n", n, why)
	}
	for n, k := range r.Skipped {
		why := "nothing to do yet"
		switch n {
		case "logon":
			why = "no account had an unused TOTP time step"
		case "update-observation":
			why = "the client had created nothing yet"
		}
		fmt.Fprintf(w, "skipped: %s %d times (%s); not counted\n", n, k, why)
	}
	if r.Server.Source != "" {
		fmt.Fprintf(w, "server (%s): peak RSS %.1f MiB", r.Server.Source, float64(r.Server.PeakRSSBytes)/(1<<20))
		if r.Server.HWMBytes > 0 {
			fmt.Fprintf(w, " (VmHWM %.1f MiB)", float64(r.Server.HWMBytes)/(1<<20))
		}
		fmt.Fprintf(w, ", CPU %.1f s = %.2f cores\n", r.Server.CPUSeconds, r.Server.CPUCores)
	}
	if r.ClientCPUCores > 0 {
		fmt.Fprintf(w, "zkload itself: %.2f cores\n", r.ClientCPUCores)
	}
	if r.ServerError != "" {
		fmt.Fprintf(w, "server stats unavailable: %s\n", r.ServerError)
	}
	if len(r.Samples) > 1 {
		fmt.Fprintf(w, "%8s %8s %9s %8s %8s %6s %9s %9s %6s\n", "t s", "ops", "per s", "p50 ms", "p99 ms", "errors", "RSS MiB", "peak MiB", "cores")
		for _, s := range r.Samples {
			fmt.Fprintf(w, "%8.0f %8d %9.1f %8.2f %8.2f %6d %9.1f %9.1f %6.2f\n", s.Seconds, s.Ops, s.PerSecond, s.P50, s.P99, s.Errors,
				float64(s.RSSBytes)/(1<<20), float64(s.PeakRSSBytes)/(1<<20), s.CPUCores)
		}
	}
	for _, e := range r.ErrorSamples {
		fmt.Fprintf(w, "error: %s status %d: %s\n", e.Op, e.Status, strings.TrimSpace(e.Detail))
	}
}

func parseMix(s string) (map[string]int, error) {
	m := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(w)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("--mix: %q is not name=weight", part)
		}
		if _, known := operations[name]; !known {
			return nil, fmt.Errorf("--mix: unknown operation %q (known: %s)", name, strings.Join(opNames(), ", "))
		}
		m[name] = n
	}
	return m, nil
}
