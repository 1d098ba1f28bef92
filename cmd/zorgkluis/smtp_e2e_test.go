package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// smtpSink is a loopback SMTP server speaking as much of RFC 5321 (and
// AUTH PLAIN, RFC 4954) as net/smtp needs; it keeps every message and the
// credentials it was given.
type smtpSink struct {
	ln    net.Listener
	mu    sync.Mutex
	mails []string
	auths []string
	got   chan struct{}
}

func startSMTPSink(t *testing.T) *smtpSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpSink{ln: ln, got: make(chan struct{}, 16)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpSink) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	w := func(line string) { _, _ = c.Write([]byte(line + "\r\n")) }
	w("220 127.0.0.1 ESMTP sink")
	var body strings.Builder
	inData := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if inData {
			if line == ".\r\n" {
				inData = false
				s.mu.Lock()
				s.mails = append(s.mails, body.String())
				s.mu.Unlock()
				body.Reset()
				s.got <- struct{}{}
				w("250 2.0.0 queued")
				continue
			}
			body.WriteString(strings.TrimPrefix(line, "."))
			continue
		}
		cmd := strings.TrimSpace(line)
		switch up := strings.ToUpper(cmd); {
		case strings.HasPrefix(up, "EHLO"):
			w("250-127.0.0.1")
			w("250 AUTH PLAIN")
		case strings.HasPrefix(up, "HELO"):
			w("250 127.0.0.1")
		case strings.HasPrefix(up, "AUTH PLAIN "):
			b, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(cmd[len("AUTH PLAIN "):]))
			s.mu.Lock()
			s.auths = append(s.auths, string(b))
			s.mu.Unlock()
			w("235 2.7.0 authenticated")
		case strings.HasPrefix(up, "MAIL FROM:"), strings.HasPrefix(up, "RCPT TO:"), strings.HasPrefix(up, "RSET"), strings.HasPrefix(up, "NOOP"):
			w("250 2.0.0 ok")
		case strings.HasPrefix(up, "DATA"):
			inData = true
			w("354 end with <CRLF>.<CRLF>")
		case strings.HasPrefix(up, "QUIT"):
			w("221 2.0.0 bye")
			return
		default:
			w("502 5.5.2 not implemented")
		}
	}
}

var mailCode = regexp.MustCompile(`code is (\d{8})`)

// nextCode waits for the next mail with a code (notices have none) and
// returns the code and the mail.
func (s *smtpSink) nextCode(t *testing.T) (string, string) {
	t.Helper()
	for {
		select {
		case <-s.got:
		case <-time.After(20 * time.Second):
			t.Fatal("no mail with a code arrived")
		}
		s.mu.Lock()
		m := s.mails[len(s.mails)-1]
		s.mu.Unlock()
		if sub := mailCode.FindStringSubmatch(m); sub != nil {
			return sub[1], m
		}
	}
}

// REQ: AUTH-2, AUTH-4
// The e-mail sender is built from configuration (ZK_SMTP_ADDR/FROM/USER, the
// password from ZK_SMTP_PASSWORD) and delivers through a real SMTP
// conversation: an address is verified with a mailed code, a log-on
// completes with a mailed code, and nothing lands in the demo outbox.
func TestServeMailsCodesThroughConfiguredSMTP(t *testing.T) {
	bin := buildBinary(t)
	sink := startSMTPSink(t)
	data := t.TempDir()
	srv := startServer(t, bin, data, "ZK_SMTP_ADDR="+sink.ln.Addr().String(), "ZK_SMTP_FROM=noreply@zorgkluis.example.invalid",
		"ZK_SMTP_USER=mailer", "ZK_SMTP_PASSWORD=mail-secret-42")
	creds := readCreds(t, data)
	c := client()
	jansen := demoUser(t, creds, "dr.jansen")
	tok := logon(t, c, srv.base, jansen)

	// Verify an e-mail address (the fresh log-on counts as the step-up).
	code, b, _ := do(t, c, "POST", srv.base+"/api/v1/factors/contact", tok, map[string]string{"channel": "email", "address": "jansen@example.invalid"})
	var added struct{ ID string }
	if code != 202 || json.Unmarshal(b, &added) != nil || added.ID == "" {
		t.Fatalf("add e-mail address: %d %s", code, b)
	}
	vcode, mail := sink.nextCode(t)
	if !strings.Contains(mail, "To: jansen@example.invalid") || !strings.Contains(mail, "From: noreply@zorgkluis.example.invalid") {
		t.Fatalf("verification mail %q", mail)
	}
	if code, b, _ := do(t, c, "POST", srv.base+"/api/v1/factors/contact/"+added.ID+"/confirm", tok, map[string]string{"code": vcode}); code != 204 {
		t.Fatalf("confirm address: %d %s", code, b)
	}

	// Log on with password and a mailed code.
	code, b, _ = do(t, c, "POST", srv.base+"/api/v1/logon", "", map[string]string{"username": jansen.Username, "password": jansen.Password})
	var att struct {
		Attempt string
		Factors []string
	}
	if code != 200 || json.Unmarshal(b, &att) != nil || !strings.Contains(strings.Join(att.Factors, " "), "email") {
		t.Fatalf("log-on step 1: %d %s", code, b)
	}
	if code, b, _ := do(t, c, "POST", srv.base+"/api/v1/logon/send", "", map[string]string{"attempt": att.Attempt, "channel": "email"}); code != 202 {
		t.Fatalf("send code: %d %s", code, b)
	}
	lcode, _ := sink.nextCode(t)
	code, b, _ = do(t, c, "POST", srv.base+"/api/v1/logon/complete", "", map[string]string{"attempt": att.Attempt, "factor": "email", "code": lcode})
	var sess struct{ Token, Assurance string }
	if code != 200 || json.Unmarshal(b, &sess) != nil || sess.Token == "" || sess.Assurance != "midden" {
		t.Fatalf("log-on with the mailed code: %d %s", code, b)
	}

	sink.mu.Lock()
	auths := append([]string(nil), sink.auths...)
	sink.mu.Unlock()
	if len(auths) == 0 || auths[0] != "\x00mailer\x00mail-secret-42" {
		t.Fatalf("SMTP AUTH PLAIN credentials %q", auths)
	}
	if files, _ := filepath.Glob(filepath.Join(data, "outbox", "*")); len(files) != 0 {
		t.Fatalf("codes went to the demo outbox instead: %v", files)
	}
	if strings.Contains(srv.stderr.String(), "mail-secret-42") || strings.Contains(srv.stdout.String(), "mail-secret-42") {
		t.Fatal("the SMTP password reached the server's output")
	}
}
