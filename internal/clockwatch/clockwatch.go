// Package clockwatch checks the server's clock against NTP servers (DP-6):
// every access-log line carries a time, so an offset beyond the bound makes
// the server unready and is raised as a security event; servers that do
// not answer are reported, not ignored.
package clockwatch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/beevik/ntp"

	"github.com/zorgkluis/zorgkluis/internal/clock"
)

// Querier asks one NTP server for the offset of the local system clock.
type Querier func(ctx context.Context, server string) (time.Duration, error)

// NTP queries server (HOST or HOST:PORT) with beevik/ntp and checks the
// answer (stratum, leap, root distance).
func NTP(ctx context.Context, server string) (time.Duration, error) {
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	r, err := ntp.QueryWithOptions(server, ntp.QueryOptions{Timeout: timeout})
	if err != nil {
		return 0, err
	}
	if err := r.Validate(); err != nil {
		return 0, err
	}
	return r.ClockOffset, nil
}

// Status is the outcome of the newest check.
type Status struct {
	Checked     time.Time     `json:"checked"`
	Offset      time.Duration `json:"offset"`   // of the server's clock from NTP time; valid when Answered > 0
	Answered    int           `json:"answered"` // servers that answered
	Unreachable []string      `json:"unreachable,omitempty"`
	Within      bool          `json:"within"` // |Offset| <= the bound (true until a server has answered)
}

// Watcher runs the checks.
type Watcher struct {
	servers []string
	max     time.Duration
	query   Querier
	clock   clock.Clock
	// Out is told of every crossing of the bound (out: true when the clock
	// left it) and of servers that stopped answering, for security events.
	out func(ctx context.Context, kind, detail string)

	mu     sync.Mutex
	status Status
}

// New watches the clock c (the one the server stamps log lines with)
// against servers, allowing max. query is NTP outside tests; out receives
// the events to raise.
func New(servers []string, max time.Duration, c clock.Clock, query Querier, out func(ctx context.Context, kind, detail string)) *Watcher {
	return &Watcher{servers: servers, max: max, query: query, clock: c, out: out, status: Status{Within: true}}
}

// Check asks every server once and updates the status: the offset is the
// median of the answers, corrected for the difference between the server's
// clock and the system clock the NTP client measures.
func (w *Watcher) Check(ctx context.Context) Status {
	var offsets []time.Duration
	var unreachable []string
	for _, s := range w.servers {
		d, err := w.query(ctx, s)
		if err != nil {
			unreachable = append(unreachable, fmt.Sprintf("%s (%v)", s, err))
			continue
		}
		// NTP measured the system clock; the server stamps with w.clock.
		skew := w.clock.Now().Sub(time.Now())
		offsets = append(offsets, skew-d)
	}
	w.mu.Lock()
	prev := w.status
	st := Status{Checked: w.clock.Now(), Answered: len(offsets), Unreachable: unreachable, Within: prev.Within}
	if len(offsets) > 0 {
		slices.Sort(offsets)
		st.Offset = offsets[len(offsets)/2]
		st.Within = st.Offset <= w.max && st.Offset >= -w.max
	}
	w.status = st
	w.mu.Unlock()

	if w.out != nil {
		switch {
		case prev.Within && !st.Within:
			w.out(ctx, "clock-offset", fmt.Sprintf("the server's clock is %s off NTP time, beyond ±%s", st.Offset.Round(time.Millisecond), w.max))
		case !prev.Within && st.Within:
			w.out(ctx, "clock-offset-recovered", fmt.Sprintf("the server's clock is back within ±%s (%s)", w.max, st.Offset.Round(time.Millisecond)))
		}
		if len(unreachable) > 0 && len(prev.Unreachable) == 0 {
			w.out(ctx, "ntp-unreachable", "NTP servers not answering: "+strings.Join(unreachable, "; "))
		}
	}
	return st
}

// Status returns the newest check's outcome.
func (w *Watcher) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status
}

// Ready fails while the clock is beyond the bound. Servers that do not
// answer do not make the server unready (it cannot tell), but are named.
func (w *Watcher) Ready(context.Context) error {
	st := w.Status()
	if !st.Within {
		return fmt.Errorf("clock %s off NTP time (bound ±%s)", st.Offset.Round(time.Millisecond), w.max)
	}
	return nil
}

// Run checks every interval until ctx ends.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, interval)
		w.Check(qctx)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
