// Package alert owns the security events (LOG-9): the one queue in the
// database that every package raises them through and the security officer
// reads per tenant (Queue), and their delivery to where an officer notices
// them outside the application: a log line always, and a webhook (an
// incident tool, a chat channel, an SMS gateway) when one is configured.
// The queue is the record; alerts are notifications on top of it, best
// effort and never blocking the request that raised them.
package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Event is one security event as sent out. It carries ids and kinds, never
// health data or secrets: free text people typed (an emergency reason, a
// review note) stays in the officer's queue, which Ref names.
type Event struct {
	Time      time.Time `json:"time"`
	TenantID  string    `json:"tenant_id,omitempty"`
	Kind      string    `json:"kind"`
	AccountID string    `json:"account_id,omitempty"`
	Subject   string    `json:"subject,omitempty"` // e.g. the patient of an emergency access
	Source    string    `json:"source,omitempty"`  // source address of a log-on attack
	Ref       string    `json:"ref,omitempty"`     // the event's id in the officer's queue
	Detail    string    `json:"detail,omitempty"`
}

// Sink receives security events. Alert must return quickly.
type Sink interface {
	Alert(ctx context.Context, e Event)
}

// Multi sends each event to every sink.
type Multi []Sink

func (m Multi) Alert(ctx context.Context, e Event) {
	for _, s := range m {
		if s != nil {
			s.Alert(ctx, e)
		}
	}
}

// Log writes each event as a warning log line.
type Log struct{ Logger *slog.Logger }

func (l Log) Alert(_ context.Context, e Event) {
	l.Logger.Warn("security event", "kind", e.Kind, "tenant", e.TenantID, "account", e.AccountID,
		"subject", e.Subject, "source", e.Source, "ref", e.Ref, "detail", e.Detail, "event_time", e.Time)
}

// Webhook posts each event as JSON to a URL from a bounded queue on its
// own goroutine, so a slow or unreachable receiver never delays a request.
// When the queue is full an event is dropped with an error log line (the
// database queue still holds it).
type Webhook struct {
	url       string
	client    *http.Client
	log       *slog.Logger
	queue     chan Event
	done      chan struct{}
	ctx       context.Context // cancelled when Close stops waiting
	cancel    context.CancelFunc
	closeWait time.Duration

	mu     sync.Mutex
	closed bool
}

// NewWebhook starts the sender. The URL is never logged: it may carry a
// token.
func NewWebhook(url string, client *http.Client, log *slog.Logger, queue int) *Webhook {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	if queue <= 0 {
		queue = 1000
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Webhook{url: url, client: client, log: log, queue: make(chan Event, queue), done: make(chan struct{}),
		ctx: ctx, cancel: cancel, closeWait: 15 * time.Second}
	go w.run()
	return w
}

// Alert queues e. After Close (a request still running after the server's
// shutdown deadline) the event is not sent; it is in the officer's queue.
func (w *Webhook) Alert(_ context.Context, e Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		w.log.Error("security event after the webhook closed; not sent (it is still in the officer's queue)", "kind", e.Kind, "tenant", e.TenantID)
		return
	}
	select {
	case w.queue <- e:
	default:
		w.log.Error("security event webhook queue full; event dropped (it is still in the officer's queue)", "kind", e.Kind, "tenant", e.TenantID)
	}
}

// Close sends what is queued and stops the sender, waiting at most
// closeWait: an unreachable receiver must not hold up a shutdown.
func (w *Webhook) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	select {
	case <-w.done:
	case <-time.After(w.closeWait):
		w.cancel()
		<-w.done
	}
	w.cancel()
}

func (w *Webhook) run() {
	defer close(w.done)
	dropped := 0
	for e := range w.queue {
		if w.ctx.Err() != nil {
			dropped++
			continue
		}
		if err := w.post(e); err != nil {
			w.log.Error("security event webhook failed", "kind", e.Kind, "tenant", e.TenantID, "err", err)
		}
	}
	if dropped > 0 {
		w.log.Error("security event webhook stopped at shutdown; events not sent (they are in the officers' queues)", "events", dropped)
	}
}

func (w *Webhook) post(e Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, w.url, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "zorgkluis-alert/1")
	resp, err := w.client.Do(req)
	if err != nil {
		// The error text of net/http names the URL; keep only that it failed.
		return fmt.Errorf("post: receiver unreachable or timed out")
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post: receiver answered %d", resp.StatusCode)
	}
	return nil
}
