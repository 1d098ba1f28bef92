package server

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"
)

// The mutual-TLS listener asks verify on every handshake, refuses a client
// without a certificate, and closes an open connection by the id verify
// returned for it (a revoked certificate's connection, DP-3).
// REQ: DP-3
func TestPeerConnsCloseByID(t *testing.T) {
	cert, _, err := DemoCertificate(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	client, _, err := DemoCertificate(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	peers := NewPeerConns()
	handshakes := 0
	conf := peers.TLSConfig(TLSConfig(cert), func(cs tls.ConnectionState) (string, error) {
		handshakes++
		if len(cs.PeerCertificates) == 0 {
			return "", errors.New("no certificate")
		}
		return "serial-1", nil
	})
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }), conf, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go srv.ServeTLS(peers.Listener(ln), "", "")
	defer srv.Close()

	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{client}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	buf := make([]byte, 4096)
	if n, err := c.Read(buf); err != nil || n == 0 {
		t.Fatalf("first response: %v", err)
	}
	if peers.Open() != 1 || handshakes != 1 {
		t.Fatalf("open %d, handshakes %d", peers.Open(), handshakes)
	}
	if n := peers.Close([]string{"other"}); n != 0 {
		t.Fatalf("closed %d connections of another certificate", n)
	}
	if n := peers.Close([]string{"serial-1"}); n != 1 {
		t.Fatalf("closed %d; want 1", n)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := c.Read(buf); err == nil {
		t.Fatal("the closed connection still answers")
	}

	// Without a client certificate the handshake fails.
	nc, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = nc.Read(buf)
		nc.Close()
	}
	if err == nil {
		t.Fatal("a client without a certificate was served")
	}
}
