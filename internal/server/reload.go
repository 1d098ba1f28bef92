package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"
	"time"
)

// Certs is the server's certificate read from its PEM files, replaced by
// Reload while the server runs (SIGHUP), so a renewed certificate needs no
// restart. A reload that fails keeps the certificate in use: a broken file
// never takes the listener down.
type Certs struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// LoadCerts reads the certificate chain and key from their PEM files.
func LoadCerts(certFile, keyFile string) (*Certs, error) {
	c := &Certs{certFile: certFile, keyFile: keyFile}
	if _, err := c.Reload(time.Time{}); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again. It refuses a key that does not match the
// certificate and, when now is not zero, a certificate outside its validity
// at now; either way the certificate in use stays. It returns the new leaf.
func (c *Certs) Reload(now time.Time) (*x509.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("setting tls-cert/tls-key: %w", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("setting tls-cert: %w", err)
	}
	if !now.IsZero() && (now.Before(leaf.NotBefore) || now.After(leaf.NotAfter)) {
		return nil, fmt.Errorf("setting tls-cert: %s is valid from %s to %s, not now",
			c.certFile, leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	cert.Leaf = leaf
	c.cur.Store(&cert)
	return leaf, nil
}

// Current is the certificate in use.
func (c *Certs) Current() tls.Certificate { return *c.cur.Load() }

// Apply makes conf hand out the current certificate at every handshake
// instead of the one it was made with; configurations cloned from conf
// afterwards (the API listener's per-client ones) do the same.
func (c *Certs) Apply(conf *tls.Config) *tls.Config {
	conf.Certificates = nil
	conf.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.cur.Load(), nil }
	return conf
}
