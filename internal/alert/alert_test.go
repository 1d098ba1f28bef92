package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// REQ: LOG-9
// A security event reaches the webhook receiver as JSON and the log as a
// warning line; a failing receiver is logged without its URL (which may
// carry a token).
func TestWebhookAndLog(t *testing.T) {
	var mu sync.Mutex
	var got []Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e Event
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&e) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
		if e.Kind == "refuse-me" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	var logs bytes.Buffer
	lg := slog.New(slog.NewJSONHandler(&logs, nil))
	wh := NewWebhook(srv.URL+"/hook?token=s3cret", srv.Client(), lg, 10)
	sink := Multi{Log{Logger: lg}, wh}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	sink.Alert(context.Background(), Event{Time: at, TenantID: "t1", Kind: "emergency-access", AccountID: "a1", Subject: "p1", Detail: "collapsed"})
	sink.Alert(context.Background(), Event{Time: at, Kind: "refuse-me"})
	wh.Close()
	if len(got) != 2 || got[0].Kind != "emergency-access" || got[0].Subject != "p1" || !got[0].Time.Equal(at) {
		t.Fatalf("receiver got %+v", got)
	}
	l := logs.String()
	if !strings.Contains(l, `"msg":"security event"`) || !strings.Contains(l, `"kind":"emergency-access"`) {
		t.Fatalf("no warning line: %s", l)
	}
	if !strings.Contains(l, "receiver answered 500") || strings.Contains(l, "s3cret") {
		t.Fatalf("failure not logged, or the URL leaked: %s", l)
	}
}

// An unreachable or slow receiver never blocks the caller: Alert returns at
// once, and a full queue drops with an error line.
func TestWebhookNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	var logs bytes.Buffer
	wh := NewWebhook(srv.URL, srv.Client(), slog.New(slog.NewJSONHandler(&logs, nil)), 2)
	done := make(chan struct{})
	go func() {
		for range 10 {
			wh.Alert(context.Background(), Event{Kind: "account-attack"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Alert blocked on a slow receiver")
	}
	close(release)
	wh.Close()
	if !strings.Contains(logs.String(), "queue full") {
		t.Fatalf("dropped events not logged: %s", logs.String())
	}
}

// REQ: LOG-9 — a receiver that never answers does not hold up shutdown:
// Close stops waiting after closeWait and says how many events it did not
// send; an event raised after Close (a request outliving the shutdown
// deadline) is refused with a log line instead of a panic.
func TestWebhookCloseIsBounded(t *testing.T) {
	release := make(chan struct{})
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer recv.Close()
	defer close(release)
	var logs bytes.Buffer
	var mu sync.Mutex
	lw := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) })
	w := NewWebhook(recv.URL, nil, slog.New(slog.NewTextHandler(lw, nil)), 10)
	w.closeWait = 200 * time.Millisecond
	for range 3 {
		w.Alert(context.Background(), Event{Kind: "emergency-access", TenantID: "t1"})
	}
	start := time.Now()
	w.Close()
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("Close took %s with a hanging receiver", el)
	}
	w.Alert(context.Background(), Event{Kind: "late", TenantID: "t1"})
	w.Close() // a second Close is harmless
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"events not sent", "events=2", "after the webhook closed"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
