package authn

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Message is one SMS or e-mail to deliver.
type Message struct {
	Channel string // FactorSMS or FactorEmail
	To      string
	Subject string // e-mail only
	Body    string
}

// Sender delivers one-time codes. Implementations must not log the body.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// SMTPSender sends e-mail through an SMTP server (net/smtp; STARTTLS when
// the server offers it).
type SMTPSender struct {
	Addr string    // host:port
	From string    // envelope and header sender
	Auth smtp.Auth // nil for none
}

// Send sends m by e-mail; SMS messages are refused.
func (s SMTPSender) Send(ctx context.Context, m Message) error {
	if m.Channel != FactorEmail {
		return fmt.Errorf("smtp sender: cannot send %s", m.Channel)
	}
	if strings.ContainsAny(m.To, "\r\n") || strings.ContainsAny(m.Subject, "\r\n") {
		return errors.New("smtp sender: header injection refused")
	}
	msg := "From: " + s.From + "\r\nTo: " + m.To + "\r\nSubject: " + m.Subject +
		"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + m.Body + "\r\n"
	if err := s.send(ctx, m.To, []byte(msg)); err != nil {
		return fmt.Errorf("smtp sender: %w", err)
	}
	return nil
}

// smtpTimeout bounds one delivery when ctx has no earlier deadline: a
// log-on waits for its code to be handed over.
const smtpTimeout = 30 * time.Second

// send is smtp.SendMail bounded by ctx: the conversation gets ctx's
// deadline (at most smtpTimeout), so an unresponsive server cannot hold a
// log-on request.
func (s SMTPSender) send(ctx context.Context, to string, msg []byte) error {
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, smtpTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}); err != nil {
			return err
		}
	}
	if s.Auth != nil {
		if err := c.Auth(s.Auth); err != nil {
			return err
		}
	}
	if err := c.Mail(s.From); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// WebhookSender posts SMS messages as JSON {"to":..., "message":...} to an
// SMS provider's HTTP endpoint, with an optional bearer token.
type WebhookSender struct {
	URL    string
	Token  string
	Client *http.Client // nil: a client with a 10 s timeout
}

// Send posts m; any status other than 2xx is an error.
func (s WebhookSender) Send(ctx context.Context, m Message) error {
	if m.Channel != FactorSMS {
		return fmt.Errorf("webhook sender: cannot send %s", m.Channel)
	}
	body, err := json.Marshal(map[string]string{"to": m.To, "message": m.Body})
	if err != nil {
		return fmt.Errorf("webhook sender: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		// The error names the URL, which may carry the provider's token.
		return errors.New("webhook sender: invalid webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	c := s.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		// net/http's error names the URL, which may carry the provider's
		// token, and it ends up in a log line: keep only what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
			if ue.Timeout() {
				return errors.New("webhook sender: provider timed out")
			}
		}
		var oe *net.OpError
		if errors.As(err, &oe) {
			return fmt.Errorf("webhook sender: provider unreachable (%s)", oe.Op)
		}
		return errors.New("webhook sender: provider unreachable")
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook sender: provider answered %d", resp.StatusCode)
	}
	return nil
}

// MultiSender routes SMS and e-mail to their own senders; a nil one means
// that channel is not available.
type MultiSender struct {
	SMS, Email Sender
}

// Supports reports whether a sender for channel is set.
func (s MultiSender) Supports(channel string) bool {
	switch channel {
	case FactorSMS:
		return s.SMS != nil
	case FactorEmail:
		return s.Email != nil
	}
	return false
}

// channelSender is a Sender that can only deliver some channels.
type channelSender interface {
	Supports(channel string) bool
}

// canSend reports whether codes for channel can be delivered: a Sender is
// configured and, if it says so, handles that channel.
func (s *Service) canSend(channel string) bool {
	if s.settings.Sender == nil {
		return false
	}
	if cs, ok := s.settings.Sender.(channelSender); ok {
		return cs.Supports(channel)
	}
	return true
}

// Send hands m to the sender for its channel.
func (s MultiSender) Send(ctx context.Context, m Message) error {
	var to Sender
	switch m.Channel {
	case FactorSMS:
		to = s.SMS
	case FactorEmail:
		to = s.Email
	}
	if to == nil {
		return fmt.Errorf("no sender for %s", m.Channel)
	}
	return to.Send(ctx, m)
}

// OutboxSender is for development and the demo: each message becomes a file
// in Dir (mode 0600), where the demo shows it. Never for production.
type OutboxSender struct {
	Dir string
	Now func() time.Time
}

// Send writes m to a new file in the outbox.
func (s OutboxSender) Send(ctx context.Context, m Message) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	f, err := os.CreateTemp(s.Dir, now().UTC().Format("20060102T150405.000000")+"-"+m.Channel+"-*.txt")
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	_, err = fmt.Fprintf(f, "Channel: %s\nTo: %s\nSubject: %s\n\n%s\n", m.Channel, m.To, m.Subject, m.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// OutboxFiles lists the outbox, oldest first (for the demo and tests).
func OutboxFiles(dir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return m, nil
}
