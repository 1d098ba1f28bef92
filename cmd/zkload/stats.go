package main

import (
	"slices"
	"sync"
	"time"
)

// recorder collects every latency of every operation; a 10-minute run at a
// few thousand requests per second fits comfortably in memory.
type recorder struct {
	mu      sync.Mutex
	ops     map[string]*opData
	window  []time.Duration // latencies since the last sample
	winErrs int
	samples []errSample
}

type opData struct {
	lat    []time.Duration
	errors int
}

// errSample is one failed request, kept so a run's errors can be explained.
type errSample struct {
	Op     string `json:"op"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

func newRecorder() *recorder { return &recorder{ops: map[string]*opData{}} }

func (r *recorder) op(name string) *opData {
	d := r.ops[name]
	if d == nil {
		d = &opData{}
		r.ops[name] = d
	}
	return d
}

func (r *recorder) ok(name string, d time.Duration) {
	r.mu.Lock()
	r.op(name).lat = append(r.op(name).lat, d)
	r.window = append(r.window, d)
	r.mu.Unlock()
}

func (r *recorder) fail(name string, status int, detail string) {
	r.mu.Lock()
	r.op(name).errors++
	r.winErrs++
	if len(r.samples) < 20 {
		if len(detail) > 300 {
			detail = detail[:300]
		}
		r.samples = append(r.samples, errSample{Op: name, Status: status, Detail: detail})
	}
	r.mu.Unlock()
}

// takeWindow returns and resets the latencies and errors since the last call.
func (r *recorder) takeWindow() ([]time.Duration, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, e := r.window, r.winErrs
	r.window, r.winErrs = nil, 0
	return w, e
}

// OpStats summarises one operation; latencies in milliseconds.
type OpStats struct {
	Count      int     `json:"count"`
	Errors     int     `json:"errors"`
	Throughput float64 `json:"per_second"`
	P50        float64 `json:"p50_ms"`
	P90        float64 `json:"p90_ms"`
	P99        float64 `json:"p99_ms"`
	Max        float64 `json:"max_ms"`
	Mean       float64 `json:"mean_ms"`
}

func summarise(lat []time.Duration, errors int, wall time.Duration) OpStats {
	s := OpStats{Count: len(lat), Errors: errors}
	if wall > 0 {
		s.Throughput = float64(len(lat)) / wall.Seconds()
	}
	if len(lat) == 0 {
		return s
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	var sum time.Duration
	for _, d := range sorted {
		sum += d
	}
	s.P50, s.P90, s.P99 = ms(quantile(sorted, .50)), ms(quantile(sorted, .90)), ms(quantile(sorted, .99))
	s.Max, s.Mean = ms(sorted[len(sorted)-1]), ms(sum/time.Duration(len(sorted)))
	return s
}

// quantile is the nearest-rank quantile of sorted.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
