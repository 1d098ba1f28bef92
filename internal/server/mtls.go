package server

import (
	"crypto/tls"
	"net"
	"sync"
)

// PeerConns is the mutual-TLS side of a listener (DP-3): it requires a
// client certificate on every handshake, lets verify decide on it (chain,
// validity and revocation, in internal/pki) and remembers which open
// connection presented which certificate, so that a revoked certificate's
// connections can be closed at once (Close) instead of living on until
// they idle out.
type PeerConns struct {
	mu    sync.Mutex
	conns map[net.Conn]string // open connection -> the id verify returned (a certificate serial)
}

// NewPeerConns returns an empty tracker.
func NewPeerConns() *PeerConns { return &PeerConns{conns: map[net.Conn]string{}} }

// Listener wraps ln so that a connection leaves the tracker when it
// closes. The API listener must be served through it.
func (p *PeerConns) Listener(ln net.Listener) net.Listener { return &peerListener{Listener: ln, p: p} }

// TLSConfig returns public (the server's NCSC profile, from TLSConfig, with
// its certificate or Certs' reloading one) with client certificates
// required and verify called on every handshake with the connection's
// state; verify returns the id to close the connection by, or an error
// that fails the handshake.
func (p *PeerConns) TLSConfig(public *tls.Config, verify func(cs tls.ConnectionState) (string, error)) *tls.Config {
	base := public.Clone()
	base.ClientAuth = tls.RequireAnyClientCert // the chain is verify's, against the CA's own certificates only
	base.NextProtos = []string{"http/1.1"}     // one request stream per connection: closing it is exact
	conf := base.Clone()
	conf.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		c := base.Clone()
		conn := hello.Conn
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			id, err := verify(cs)
			if err != nil {
				return err
			}
			p.mu.Lock()
			if _, open := p.conns[conn]; open {
				p.conns[conn] = id
			}
			p.mu.Unlock()
			return nil
		}
		return c, nil
	}
	return conf
}

// Close closes every open connection whose certificate has one of ids,
// and returns how many it closed.
func (p *PeerConns) Close(ids []string) int {
	if len(ids) == 0 {
		return 0
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var doomed []net.Conn
	p.mu.Lock()
	for c, id := range p.conns {
		if want[id] {
			doomed = append(doomed, c)
		}
	}
	p.mu.Unlock()
	for _, c := range doomed {
		c.Close()
	}
	return len(doomed)
}

// Open is the number of open connections.
func (p *PeerConns) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

type peerListener struct {
	net.Listener
	p *PeerConns
}

func (l *peerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	pc := &peerConn{Conn: c, p: l.p}
	l.p.mu.Lock()
	l.p.conns[pc] = ""
	l.p.mu.Unlock()
	return pc, nil
}

type peerConn struct {
	net.Conn
	p    *PeerConns
	once sync.Once
}

func (c *peerConn) Close() error {
	c.once.Do(func() {
		c.p.mu.Lock()
		delete(c.p.conns, c)
		c.p.mu.Unlock()
	})
	return c.Conn.Close()
}
