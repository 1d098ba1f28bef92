package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/synth"
)

// defaultMix: professionals mostly read and search their patients, persons
// look at their own record and log, some writes, and a trickle of log-ons
// (bounded anyway by one TOTP step per account per 30 s).
const defaultMix = "read-patient=30,search-observation=25,person-read=8,person-search=8,person-log=4,create-observation=10,update-observation=5,logon=2"

// operation is one kind of user action. run reports false when it could
// not run now (nothing to update yet, no TOTP step free), which is not an
// error and does not count against --requests.
type operation struct {
	optional bool // probed at start; a 404/405/501 marks it not available
	run      func(ctx context.Context, w *worker) bool
}

var operations = map[string]operation{
	"read-patient":       {run: opReadPatient},
	"search-observation": {run: opSearchObservation},
	"person-read":        {run: opPersonRead},
	"person-search":      {run: opPersonSearch},
	"person-log":         {optional: true, run: opPersonLog},
	"create-observation": {optional: true, run: opCreate},
	"update-observation": {optional: true, run: opUpdate},
	"logon":              {run: opLogon},
}

func opNames() []string {
	var n []string
	for k := range operations {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// harness is the state the clients share.
type harness struct {
	api      *api
	rec      *recorder
	profs    []*session // logged on, with at least one patient
	persons  []*session
	accounts []*account // pool for the logon operation
	now      func() time.Time
	stop     atomic.Bool
	mu       sync.Mutex
	skipped  map[string]int
}

// worker is one client; created holds its own Observations so that two
// clients never update the same resource concurrently.
type worker struct {
	h       *harness
	rng     *rand.Rand
	created []createdRes
}

// timed runs one HTTP exchange as operation name and records it: an error
// when the transport fails or the status is not one of want.
func (w *worker) timed(name string, f func() (response, error), want ...int) (response, bool) {
	start := time.Now()
	r, err := f()
	d := time.Since(start)
	if err != nil {
		w.h.rec.fail(name, 0, err.Error())
		return r, false
	}
	for _, s := range want {
		if r.status == s {
			w.h.rec.ok(name, d)
			return r, true
		}
	}
	w.h.rec.fail(name, r.status, string(r.body))
	return r, false
}

func (w *worker) prof() (*session, string) {
	s := w.h.profs[w.rng.IntN(len(w.h.profs))]
	return s, s.acc.Patients[w.rng.IntN(len(s.acc.Patients))]
}

func (w *worker) person() *session { return w.h.persons[w.rng.IntN(len(w.h.persons))] }

func opReadPatient(ctx context.Context, w *worker) bool {
	s, pid := w.prof()
	w.timed("read-patient", func() (response, error) { return w.h.api.do(ctx, "GET", "/fhir/Patient/"+pid, s.token, nil) }, 200)
	return true
}

func opSearchObservation(ctx context.Context, w *worker) bool {
	s, pid := w.prof()
	w.timed("search-observation", func() (response, error) {
		return w.h.api.do(ctx, "GET", "/fhir/Observation?patient="+pid, s.token, nil)
	}, 200)
	return true
}

func opPersonRead(ctx context.Context, w *worker) bool {
	if len(w.h.persons) == 0 {
		return false
	}
	s := w.person()
	w.timed("person-read", func() (response, error) {
		return w.h.api.do(ctx, "GET", "/fhir/Patient/"+s.acc.Patients[0], s.token, nil)
	}, 200)
	return true
}

func opPersonSearch(ctx context.Context, w *worker) bool {
	if len(w.h.persons) == 0 {
		return false
	}
	s := w.person()
	w.timed("person-search", func() (response, error) {
		return w.h.api.do(ctx, "GET", "/fhir/Observation?patient="+s.acc.Patients[0], s.token, nil)
	}, 200)
	return true
}

// opPersonLog is a person reading who accessed their record (LOG-4).
func opPersonLog(ctx context.Context, w *worker) bool {
	if len(w.h.persons) == 0 {
		return false
	}
	s := w.person()
	w.timed("person-log", func() (response, error) {
		return w.h.api.do(ctx, "GET", "/fhir/AuditEvent?patient="+s.acc.Patients[0], s.token, nil)
	}, 200)
	return true
}

var measureSrc = struct {
	sync.Mutex
	*synth.Source
}{Source: synth.NewSource(42)}

func newMeasurement() synth.Measurement {
	measureSrc.Lock()
	defer measureSrc.Unlock()
	return measureSrc.Measurement()
}

func opCreate(ctx context.Context, w *worker) bool {
	s, pid := w.prof()
	body := synth.ObservationResource("", pid, newMeasurement(), w.h.now())
	r, ok := w.timed("create-observation", func() (response, error) { return w.h.api.do(ctx, "POST", "/fhir/Observation", s.token, body) }, 201, 200)
	if !ok {
		return true
	}
	var got map[string]any
	if err := json.Unmarshal(r.body, &got); err != nil || got["id"] == nil {
		w.h.rec.fail("create-observation", r.status, "answer without a resource id")
		return true
	}
	if len(w.created) < 200 {
		w.created = append(w.created, createdRes{id: fmt.Sprint(got["id"]), sess: s, etag: r.header.Get("ETag"), body: got})
	}
	return true
}

func opUpdate(ctx context.Context, w *worker) bool {
	if len(w.created) == 0 {
		return false
	}
	i := w.rng.IntN(len(w.created))
	c := &w.created[i]
	s := c.sess
	body := map[string]any{}
	for k, v := range c.body {
		if k != "meta" {
			body[k] = v
		}
	}
	m := newMeasurement()
	body["status"] = "amended"
	body["valueQuantity"] = map[string]any{"value": m.Value, "unit": m.Unit, "system": "http://unitsofmeasure.org", "code": m.Unit}
	body["code"] = map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": m.Code, "display": m.Display}}}
	r, ok := w.timed("update-observation", func() (response, error) {
		return w.h.api.doIfMatch(ctx, "PUT", "/fhir/Observation/"+c.id, s.token, c.etag, body)
	}, 200, 201)
	if ok {
		c.etag = r.header.Get("ETag")
	}
	return true
}

// opLogon is a full two-factor log-on (password, then a TOTP code computed
// here) followed by a log-off, measured separately.
func opLogon(ctx context.Context, w *worker) bool {
	n := len(w.h.accounts)
	start := w.rng.IntN(n)
	for k := range n {
		acc := w.h.accounts[(start+k)%n]
		t0 := time.Now()
		tok, r, err := w.h.api.logon(ctx, acc, w.h.now)
		if errors.Is(err, errNoStep) {
			continue
		}
		d := time.Since(t0)
		if err != nil || tok == "" {
			detail := string(r.body)
			if err != nil {
				detail = err.Error()
			}
			w.h.rec.fail("logon", r.status, detail)
			return true
		}
		w.h.rec.ok("logon", d)
		w.timed("logoff", func() (response, error) { return w.h.api.do(ctx, "POST", "/api/v1/logoff", tok, nil) }, 204, 200)
		return true
	}
	return false
}

func (a *api) doIfMatch(ctx context.Context, method, path, token, etag string, body any) (response, error) {
	if etag == "" {
		return a.do(ctx, method, path, token, body)
	}
	return a.doHeader(ctx, method, path, token, map[string]string{"If-Match": etag}, body)
}

// notAvailable reports whether a status means the endpoint does not exist
// (yet) on this server, rather than that it failed.
func notAvailable(status int) bool {
	return status == http.StatusNotFound || status == http.StatusMethodNotAllowed || status == http.StatusNotImplemented
}

// load runs the whole measurement.
func load(ctx context.Context, o options, stderr io.Writer, lookup lookupFunc) (Report, error) {
	mix, err := parseMix(o.mix)
	if err != nil {
		return Report{}, err
	}
	t, err := loopbackTarget(ctx, o.target, lookup)
	if err != nil {
		return Report{}, err
	}
	cred, err := readCredentials(o.credentials)
	if err != nil {
		return Report{}, err
	}
	client, err := httpClient(t, o.ca, o.clients)
	if err != nil {
		return Report{}, err
	}
	probe := serverProbe{pid: o.serverPID}
	if o.metrics != "" {
		mt, err := loopbackTarget(ctx, o.metrics, lookup)
		if err != nil {
			return Report{}, fmt.Errorf("--metrics: %w", err)
		}
		mc, err := httpClient(mt, "", 1)
		if err != nil {
			return Report{}, err
		}
		probe.metrics, probe.client = o.metrics, mc
	}
	h := &harness{api: &api{base: t.url.String(), client: client}, rec: newRecorder(), now: time.Now, skipped: map[string]int{}}
	rep := Report{Target: t.url.String(), Clients: o.clients, Ops: map[string]OpStats{}, NotAvailable: map[string]string{},
		DataSet: fmt.Sprintf("%d patients × %d resources, %d professionals, %d persons", cred.Patients, cred.ResourcesPerPatient+1,
			len(cred.Professionals), len(cred.Persons))}

	// Warm-up: every account logs on once; clients reuse these sessions.
	warm := newRecorder()
	var all []*account
	for _, a := range cred.Professionals {
		all = append(all, &account{Account: a})
	}
	for _, a := range cred.Persons {
		all = append(all, &account{Account: a})
	}
	sessions := make([]*session, len(all))
	warmStart := time.Now()
	err = parallelDo(min(4, o.clients), len(all), func(i int) error {
		t0 := time.Now()
		tok, r, err := h.api.logon(ctx, all[i], time.Now)
		if err == nil && tok != "" {
			warm.ok("logon", time.Since(t0))
		}
		if err != nil || tok == "" {
			return fmt.Errorf("warm-up log-on of %s: status %d %v %s", all[i].Username, r.status, err, strings.TrimSpace(string(r.body)))
		}
		sessions[i] = &session{acc: all[i], token: tok}
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	warmWall := time.Since(warmStart)
	for i, s := range sessions {
		if i < len(cred.Professionals) {
			if len(s.acc.Patients) > 0 {
				h.profs = append(h.profs, s)
			}
		} else {
			h.persons = append(h.persons, s)
		}
	}
	if len(h.profs) == 0 {
		return Report{}, errors.New("the data set has no professional with patients")
	}
	h.accounts = all

	// Probe the optional endpoints once; a missing route is "not available".
	w0 := &worker{h: h, rng: rand.New(rand.NewPCG(0, 1))}
	if len(h.persons) > 0 {
		r, err := h.api.do(ctx, "GET", "/fhir/AuditEvent?patient="+h.persons[0].acc.Patients[0], h.persons[0].token, nil)
		if err == nil && notAvailable(r.status) {
			rep.NotAvailable["person-log"] = fmt.Sprintf("GET /fhir/AuditEvent answered %d", r.status)
		}
	}
	{
		s, pid := h.profs[0], h.profs[0].acc.Patients[0]
		r, err := h.api.do(ctx, "POST", "/fhir/Observation", s.token, synth.ObservationResource("", pid, newMeasurement(), time.Now()))
		switch {
		case err == nil && notAvailable(r.status):
			rep.NotAvailable["create-observation"] = fmt.Sprintf("POST /fhir/Observation answered %d", r.status)
			rep.NotAvailable["update-observation"] = "needs create-observation"
		case err == nil && r.status/100 == 2:
			var got map[string]any
			if json.Unmarshal(r.body, &got) == nil && got["id"] != nil {
				w0.created = append(w0.created, createdRes{id: fmt.Sprint(got["id"]), sess: s, etag: r.header.Get("ETag"), body: got})
				body := map[string]any{}
				for k, v := range got {
					if k != "meta" {
						body[k] = v
					}
				}
				r2, err := h.api.doIfMatch(ctx, "PUT", "/fhir/Observation/"+fmt.Sprint(got["id"]), s.token, r.header.Get("ETag"), body)
				switch {
				case err == nil && notAvailable(r2.status):
					rep.NotAvailable["update-observation"] = fmt.Sprintf("PUT /fhir/Observation/{id} answered %d", r2.status)
				case err == nil && r2.status/100 == 2:
					w0.created[0].etag = r2.header.Get("ETag")
				}
			}
		}
	}
	type weighted struct {
		name string
		op   operation
		w    int
	}
	var ops []weighted
	total := 0
	for _, name := range opNames() {
		wgt := mix[name]
		if _, na := rep.NotAvailable[name]; na || wgt == 0 {
			continue
		}
		ops = append(ops, weighted{name, operations[name], wgt})
		total += wgt
	}
	if total == 0 {
		return Report{}, errors.New("--mix: no available operation has a weight")
	}

	mon := &monitor{probe: probe}
	mctx, mcancel := context.WithCancel(context.Background())
	var mwg sync.WaitGroup
	if probe.enabled() {
		// A first sample now, so that the CPU of the warm-up is not
		// counted in the first interval.
		mon.finish(ctx)
		mwg.Add(1)
		go func() { defer mwg.Done(); mon.run(mctx, time.Second) }()
	}

	self, _ := readProc(os.Getpid())
	start := time.Now()
	var issued atomic.Int64
	var wg sync.WaitGroup
	for c := range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{h: h, rng: rand.New(rand.NewPCG(uint64(c)+1, 7))}
			if c == 0 {
				w.created = w0.created
			}
			for !h.stop.Load() {
				if issued.Add(1) > int64(o.requests) {
					h.stop.Store(true)
					return
				}
				x := w.rng.IntN(total)
				var op weighted
				for _, cand := range ops {
					if x < cand.w {
						op = cand
						break
					}
					x -= cand.w
				}
				// Requests are not cancelled at the end of the run: the
				// last ones finish and are counted.
				if !op.op.run(context.WithoutCancel(ctx), w) {
					issued.Add(-1)
					h.mu.Lock()
					h.skipped[op.name]++
					h.mu.Unlock()
					time.Sleep(2 * time.Millisecond)
				}
			}
		}()
	}

	// Stop on duration, on --requests (the workers set stop) or on a signal;
	// sample over time meanwhile.
	deadline := time.NewTimer(o.duration)
	defer deadline.Stop()
	sampleT := time.NewTicker(o.sample)
	defer sampleT.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastSample, lastCPU := start, mon.current().cpu
	takeSample := func() {
		now := time.Now()
		lat, errs := h.rec.takeWindow()
		cur, peak := mon.takeWindow()
		st := summarise(lat, errs, now.Sub(lastSample))
		s := Sample{Seconds: now.Sub(start).Seconds(), Ops: st.Count, PerSecond: st.Throughput, P50: st.P50, P99: st.P99,
			Errors: errs, RSSBytes: cur.rss, PeakRSSBytes: peak}
		if lastCPU > 0 || cur.cpu > 0 {
			s.CPUCores = (cur.cpu - lastCPU) / now.Sub(lastSample).Seconds()
		}
		rep.Samples = append(rep.Samples, s)
		lastSample, lastCPU = now, cur.cpu
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
loop:
	for {
		select {
		case <-done:
			break loop
		case <-ctx.Done():
			h.stop.Store(true)
		case <-deadline.C:
			h.stop.Store(true)
		case <-sampleT.C:
			takeSample()
		case <-tick.C:
			if o.progress {
				n := int(min(issued.Load(), int64(o.requests)))
				cur := mon.current()
				fmt.Fprintf(stderr, "\rzkload: %5.0f s  %d operations  %.0f/s  rss %.0f MiB   ",
					time.Since(start).Seconds(), n, float64(n)/time.Since(start).Seconds(), float64(cur.rss)/(1<<20))
			}
		}
	}
	wall := time.Since(start)
	if o.progress {
		fmt.Fprintln(stderr)
	}
	mcancel()
	mwg.Wait()
	if probe.enabled() {
		mon.finish(context.Background())
	}
	if time.Since(lastSample) >= o.sample/2 || len(rep.Samples) == 0 {
		takeSample()
	}

	rep.Seconds = wall.Seconds()
	for name, d := range h.rec.ops {
		st := summarise(d.lat, d.errors, wall)
		rep.Ops[name] = st
		rep.Operations += st.Count + st.Errors
		rep.Errors += st.Errors
	}
	if d := warm.ops["logon"]; d != nil {
		// The warm-up logs every account on, min(4, clients) at a time and
		// free of the TOTP-step limit: its rate is the log-on throughput.
		rep.Ops["logon-warmup"] = summarise(d.lat, d.errors, warmWall)
	}
	rep.PerSecond = float64(rep.Operations) / wall.Seconds()
	// The load generator shares the machine with the server: its own CPU
	// says how much of the machine was left to the server.
	if selfEnd, err := readProc(os.Getpid()); err == nil && self.cpu > 0 {
		rep.ClientCPUCores = (selfEnd.cpu - self.cpu) / wall.Seconds()
	}
	rep.ErrorSamples = h.rec.samples
	if len(h.skipped) > 0 {
		rep.Skipped = h.skipped
	}
	if probe.enabled() {
		st, err := mon.stats(wall)
		rep.Server = st
		if err != nil {
			rep.ServerError = err.Error()
		}
	}
	return rep, nil
}

// parallelDo runs fn(0..n-1) on workers goroutines; the first error wins.
func parallelDo(workers, n int, fn func(i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range max(1, min(workers, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
