// Package pki is the platform's own certificate authority for third-party
// systems (DP-3), with the standard library's crypto/x509 only:
//
//   - one root per installation and one intermediate per tenant (ECDSA
//     P-384), whose private keys are sealed under the master key
//     (keys.CAKeyAD), never stored in plain; the tenant's intermediate is
//     name-constrained to the tenant's DNS subtree and may sign leaves only
//     (path length 0). Issuing an intermediate and changing a tenant's CA
//     policy are four-eyes changes (GOV-1): one person proposes, another
//     approves;
//   - systems a tenant registers (ID-3: name, responsible natural person,
//     scopes, data categories, optional patient set); a system's CSR is
//     signed on the tenant admin's instruction after its proof of
//     possession is checked, for at most the policy's validity (365 days);
//     a renewal is a new certificate beside the old one (overlap), and a
//     certificate can be revoked at any time. Deactivating a system or its
//     responsible person revokes its certificates (ID-5);
//   - every certificate issued or revoked is an event in the tenant's
//     tamper-evident audit log (audit.ActionCertificate), so its Merkle tree
//     proves every certificate ever issued for the tenant;
//   - Verify, for the API listener's handshake: the chain to the tenant's
//     intermediate, validity, the revocation table and the system's state,
//     on every connection; Peer maps the certificate to its system;
//   - a CRL per tenant CA (next update within 7 days).
//
// Serials are 128 random bits, shown as 32 hex digits.
package pki

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base32"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Errors; each wraps a message safe to show the caller.
var (
	ErrInvalid   = errors.New("invalid request")
	ErrNotFound  = errors.New("not found")
	ErrForbidden = errors.New("not allowed")
	ErrConflict  = errors.New("conflicts with the current state")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalid)
}

// MaxValidity is the longest a system certificate may be valid (DP-3: at
// most one year); a tenant's policy may set less, never more.
const MaxValidity = 365 * 24 * time.Hour

// Domain is the DNS suffix of every system's name: a system's certificate
// names <system>.<tenant>.Domain, and a tenant's intermediate may sign
// names under <tenant>.Domain only (its name constraint). ".internal" is
// reserved for private use, so no public name can collide.
const Domain = "systems.zorgkluis.internal"

// CA is the certificate authority of an installation.
type CA struct {
	db     *store.DB
	master keys.Master
	log    *audit.Log
	clock  clock.Clock
	rand   io.Reader

	changes *change.Service // the four-eyes requests (GOV-1): intermediates and policy

	mu    sync.Mutex
	cache *trust // the root and intermediates, for Verify; reloaded when unknown
}

// Option changes a CA setting.
type Option func(*CA)

// WithChanges sets the four-eyes service (GOV-1) the CA's requests wait
// in (default: one of its own on db; serve shares one with every owner).
func WithChanges(c *change.Service) Option { return func(ca *CA) { ca.changes = c } }

// New returns the CA on db; keys are sealed under master, certificate
// events go to log.
func New(db *store.DB, master keys.Master, log *audit.Log, c clock.Clock, r io.Reader, opts ...Option) *CA {
	ca := &CA{db: db, master: master, log: log, clock: c, rand: r}
	for _, o := range opts {
		o(ca)
	}
	if ca.changes == nil {
		ca.changes = change.New(change.Config{DB: db, Audit: log, Clock: c, Rand: r})
	}
	ca.registerChanges()
	return ca
}

// Certificate is an issued system certificate.
type Certificate struct {
	Serial    string     `json:"serial"`
	TenantID  string     `json:"tenant_id"`
	SystemID  string     `json:"system_id"`
	Purpose   string     `json:"purpose"` // tls or signing
	SHA256    string     `json:"sha256"`
	NotBefore time.Time  `json:"not_before"`
	NotAfter  time.Time  `json:"not_after"`
	IssuedBy  string     `json:"issued_by"`
	IssuedAt  time.Time  `json:"issued_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Reason    string     `json:"revoke_reason,omitempty"`
	PEM       string     `json:"certificate_pem,omitempty"`
	ChainPEM  string     `json:"chain_pem,omitempty"` // the tenant's intermediate and the root
	DER       []byte     `json:"-"`
}

// Purposes of a system certificate: a TLS client certificate for the API
// listener, or a document-signing certificate (DP-4: a key separate from
// every TLS key).
const (
	PurposeTLS     = "tls"
	PurposeSigning = "signing"
)

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func (ca *CA) newID(prefix string) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(ca.rand, b[:]); err != nil {
		return "", fmt.Errorf("new id: %w", err)
	}
	return prefix + strings.ToLower(idEncoding.EncodeToString(b[:])), nil
}

// newSerial returns 128 random bits as a positive serial and its hex form
// (32 digits; a leading zero bit is kept in the text).
func (ca *CA) newSerial() (*big.Int, string, error) {
	var b [16]byte
	if _, err := io.ReadFull(ca.rand, b[:]); err != nil {
		return nil, "", fmt.Errorf("serial: %w", err)
	}
	n := new(big.Int).SetBytes(b[:])
	return n, SerialHex(n), nil
}

// SerialHex is the text form of a serial: 32 lower-case hex digits.
func SerialHex(n *big.Int) string { return fmt.Sprintf("%032x", n) }

// checkText refuses text a database cannot store or a page should not
// show.
func checkText(field string, v string, max int) error {
	if !utf8.ValidString(v) || len(v) > max || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return invalid("%s must be valid UTF-8 without control characters, at most %d bytes", field, max)
	}
	return nil
}

// certEvent is the audit leaf of a certificate issued or revoked: the
// actor's fields, the tenant, the certificate as the resource and what
// happened with its fingerprint.
func certEvent(actor audit.Event, tenantID, serial, what string) audit.Event {
	ev := actor
	ev.ID, ev.Time = "", time.Time{}
	ev.Action, ev.Outcome, ev.Kind = audit.ActionCertificate, audit.OutcomeSuccess, ""
	ev.TenantID = tenantID
	ev.PatientID = ""
	ev.Resources = []string{"Certificate/" + serial}
	ev.Query = what
	return ev
}

func sealKey(ctx context.Context, m keys.Master, tenantID, serial string, k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	return m.Wrap(ctx, der, keys.CAKeyAD(tenantID, serial))
}

func openKey(ctx context.Context, m keys.Master, tenantID, serial string, sealed []byte) (*ecdsa.PrivateKey, error) {
	der, err := m.Unwrap(ctx, sealed, keys.CAKeyAD(tenantID, serial))
	if err != nil {
		return nil, fmt.Errorf("open CA key %s: %w", serial, err)
	}
	k, err := x509.ParseECPrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("open CA key %s: %w", serial, err)
	}
	return k, nil
}

// PEM encodes a certificate's DER.
func PEM(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }
