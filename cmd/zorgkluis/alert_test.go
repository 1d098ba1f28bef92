package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/alert"
)

// REQ: LOG-9
// Security events reach the security officer outside the application too:
// the real server, started with ZK_ALERT_WEBHOOK, posts an emergency access
// to the webhook and writes it as a warning log line, besides the officer's
// queue.
func TestSecurityEventsReachWebhookAndLog(t *testing.T) {
	var mu sync.Mutex
	var got []alert.Event
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e alert.Event
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
	}))
	defer hook.Close()
	bin := buildBinary(t)
	data := t.TempDir()
	srv := startServer(t, bin, data, "ZK_ALERT_WEBHOOK="+hook.URL+"/incident?token=abc123")
	creds := readCreds(t, data)
	c := client()
	tok := logon(t, c, srv.base, demoUser(t, creds, "dr.bakker"))
	code, body, _ := do(t, c, "POST", srv.base+"/api/v1/emergencies", tok,
		map[string]string{"patient_id": creds.PatientID, "reason": "bewusteloos binnengebracht, medicatie onbekend"})
	if code != http.StatusCreated {
		t.Fatalf("declare emergency: %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		var found *alert.Event
		for i := range got {
			if strings.HasPrefix(got[i].Kind, "emergency") && got[i].Subject == creds.PatientID {
				found = &got[i]
			}
		}
		mu.Unlock()
		if found != nil {
			if found.TenantID != creds.TenantID || found.AccountID == "" {
				t.Fatalf("webhook event lacks tenant or account: %+v", *found)
			}
			if found.Ref == "" || strings.Contains(found.Detail, "bewusteloos") {
				t.Fatalf("webhook event lacks its queue reference or carries the typed reason: %+v", *found)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no emergency event at the webhook; got %+v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	logs := srv.stderr.String()
	if !strings.Contains(logs, `"msg":"security event"`) || strings.Contains(logs, "abc123") || strings.Contains(logs, "bewusteloos") {
		t.Fatalf("no security-event warning in the log, or the webhook token or the emergency reason leaked:\n%s", logs)
	}
}
