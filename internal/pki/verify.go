package pki

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
)

// Peer is the system a verified client certificate belongs to: what
// principal.FromSystem makes a subject of.
type Peer struct {
	Serial          string
	TenantID        string
	Organisation    string
	SystemID        string
	SystemName      string
	ResponsibleID   string
	ResponsibleName string
	Scopes          []string
	NotAfter        time.Time
}

// RefusedError is a certificate the CA does not accept; Reason says why
// (safe to log and to show the client's operator).
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "certificate refused: " + e.Reason }

func refused(format string, args ...any) error {
	return &RefusedError{Reason: fmt.Sprintf(format, args...)}
}

// trust is the root and every intermediate (active or retired: the
// certificates a retired one signed stay valid until they expire or are
// revoked), with the tenant of each intermediate.
type trust struct {
	roots, inters *x509.CertPool
	tenantOf      map[string]string // intermediate's raw DER -> tenant
	keyIDs        map[string]bool   // subject key ids of the intermediates
	loaded        time.Time
}

func (ca *CA) forget() {
	ca.mu.Lock()
	ca.cache = nil
	ca.mu.Unlock()
}

// trustFor returns the trust store, reloaded when it is older than a minute
// or does not know the issuer key id aki (an intermediate made on another
// replica since).
func (ca *CA) trustFor(ctx context.Context, aki []byte) (*trust, error) {
	ca.mu.Lock()
	t := ca.cache
	ca.mu.Unlock()
	now := ca.clock.Now()
	if t != nil && now.Sub(t.loaded) < time.Minute && t.keyIDs[string(aki)] {
		return t, nil
	}
	rows, err := ca.db.QueryContext(ctx, `SELECT tenant_id, kind, cert_der FROM pki_cas`)
	if err != nil {
		return nil, fmt.Errorf("trust store: %w", err)
	}
	defer rows.Close()
	t = &trust{roots: x509.NewCertPool(), inters: x509.NewCertPool(), tenantOf: map[string]string{}, keyIDs: map[string]bool{}, loaded: now}
	for rows.Next() {
		var tenant, kind string
		var der []byte
		if err := rows.Scan(&tenant, &kind, &der); err != nil {
			return nil, fmt.Errorf("trust store: %w", err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("trust store: %w", err)
		}
		switch kind {
		case "root":
			t.roots.AddCert(c)
		case "intermediate":
			t.inters.AddCert(c)
			t.tenantOf[string(c.Raw)] = tenant
			t.keyIDs[string(c.SubjectKeyId)] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trust store: %w", err)
	}
	ca.mu.Lock()
	ca.cache = t
	ca.mu.Unlock()
	return t, nil
}

// Verify checks a client's certificate at the handshake (DP-3): it must
// chain to a tenant's intermediate and the installation's root through the
// CA's own certificates only (whatever else the client sends is ignored),
// be a client-authentication certificate valid now, and be in the table:
// not revoked, its system active, its responsible person active. A
// refusal is a *RefusedError; any other error means the check could not
// be made (and the handshake fails too).
func (ca *CA) Verify(ctx context.Context, rawCerts [][]byte) (Peer, error) {
	if len(rawCerts) == 0 {
		return Peer{}, refused("no client certificate")
	}
	leaf, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return Peer{}, refused("the client certificate does not parse")
	}
	return ca.verifyLeaf(ctx, leaf, x509.ExtKeyUsageClientAuth, PurposeTLS)
}

func (ca *CA) verifyLeaf(ctx context.Context, leaf *x509.Certificate, usage x509.ExtKeyUsage, purpose string) (Peer, error) {
	tenant, err := ca.verifyChain(ctx, leaf, usage)
	if err != nil {
		return Peer{}, err
	}
	return ca.lookup(ctx, leaf, tenant, purpose)
}

// verifyChain checks the leaf's validity and its chain to a tenant's CA
// and the root, and returns that tenant.
func (ca *CA) verifyChain(ctx context.Context, leaf *x509.Certificate, usage x509.ExtKeyUsage) (string, error) {
	t, err := ca.trustFor(ctx, leaf.AuthorityKeyId)
	if err != nil {
		return "", err
	}
	now := ca.clock.Now()
	if now.Before(leaf.NotBefore) {
		return "", refused("the certificate is not valid yet (from %s)", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return "", refused("the certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: t.roots, Intermediates: t.inters, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}})
	if err != nil {
		return "", refused("the certificate does not chain to this installation's CA for this use: %v", err)
	}
	var tenant string
	for _, ch := range chains {
		if len(ch) == 3 {
			tenant = t.tenantOf[string(ch[1].Raw)]
		}
	}
	if tenant == "" {
		return "", refused("the certificate's chain is not leaf, tenant CA, root")
	}
	return tenant, nil
}

// peerQuery finds the certificate's row with its system and responsible
// person, in one round trip.
const peerQuery = `SELECT c.tenant_id, c.system_id, c.purpose, c.sha256, c.revoked_at, c.not_after,
	s.name, s.status, s.scopes, s.responsible_id, a.display_name, a.status, COALESCE(t.name, '')
	FROM pki_certificates c JOIN pki_systems s ON s.id = c.system_id JOIN accounts a ON a.id = s.responsible_id
	LEFT JOIN tenants t ON t.id = c.tenant_id
	WHERE c.serial = $1`

// Lookup maps a certificate that passed the handshake to its system, with
// the revocation and the system's state read again: the API listener
// calls it on every request, so a revocation also holds on a connection
// that is still open.
func (ca *CA) Lookup(ctx context.Context, leaf *x509.Certificate) (Peer, error) {
	if leaf == nil {
		return Peer{}, refused("no client certificate")
	}
	return ca.lookup(ctx, leaf, "", PurposeTLS)
}

func (ca *CA) lookup(ctx context.Context, leaf *x509.Certificate, tenant, purpose string) (Peer, error) {
	serial := SerialHex(leaf.SerialNumber)
	var p Peer
	var certPurpose, sum, sysStatus, scopes, accStatus string
	var revoked sql.NullInt64
	var notAfter int64
	err := ca.db.Stmt(peerQuery).QueryRowContext(ctx, serial).Scan(&p.TenantID, &p.SystemID, &certPurpose, &sum, &revoked, &notAfter,
		&p.SystemName, &sysStatus, &scopes, &p.ResponsibleID, &p.ResponsibleName, &accStatus, &p.Organisation)
	if errors.Is(err, sql.ErrNoRows) {
		return Peer{}, refused("certificate %s was not issued by this installation", serial)
	}
	if err != nil {
		return Peer{}, fmt.Errorf("certificate lookup: %w", err)
	}
	got := sha256.Sum256(leaf.Raw)
	switch {
	case hex.EncodeToString(got[:]) != sum:
		return Peer{}, refused("certificate %s is not the one issued under that serial", serial)
	case tenant != "" && tenant != p.TenantID:
		return Peer{}, refused("certificate %s was issued for another organisation", serial)
	case certPurpose != purpose:
		return Peer{}, refused("certificate %s is a %s certificate, not for %s", serial, certPurpose, purpose)
	case revoked.Valid:
		return Peer{}, refused("certificate %s is revoked", serial)
	case !ca.clock.Now().Before(clock.FromMicros(notAfter)):
		return Peer{}, refused("certificate %s expired", serial)
	case sysStatus != "active":
		return Peer{}, refused("system %s is deactivated", p.SystemID)
	case accStatus != "active":
		return Peer{}, refused("the responsible person of system %s is no longer active", p.SystemID)
	}
	p.Serial, p.Scopes, p.NotAfter = serial, strings.Fields(scopes), leaf.NotAfter
	return p, nil
}

// RevokedSince returns the serials revoked after since, and the time to
// ask from next: the API listener closes the open connections of these
// certificates (within a second of the revocation).
func (ca *CA) RevokedSince(ctx context.Context, since time.Time) ([]string, time.Time, error) {
	rows, err := ca.db.QueryContext(ctx, `SELECT serial, revoked_at FROM pki_certificates WHERE revoked_at > $1 ORDER BY revoked_at`, clock.Micros(since))
	if err != nil {
		return nil, since, fmt.Errorf("revocations: %w", err)
	}
	defer rows.Close()
	var out []string
	next := since
	for rows.Next() {
		var s string
		var at int64
		if err := rows.Scan(&s, &at); err != nil {
			return nil, since, fmt.Errorf("revocations: %w", err)
		}
		out = append(out, s)
		if t := clock.FromMicros(at); t.After(next) {
			next = t
		}
	}
	return out, next, rows.Err()
}

// CRLValidity is how long a CRL is current: nextUpdate is at most a week
// after it was made.
const CRLValidity = 7 * 24 * time.Hour

// CRL returns the DER of the tenant's CRL, signed by its active
// intermediate: every revoked certificate it issued.
func (ca *CA) CRL(ctx context.Context, tenantID string) ([]byte, error) {
	inter, err := ca.activeCA(ctx, ca.db, tenantID, "intermediate")
	if err != nil {
		return nil, err
	}
	rows, err := ca.db.QueryContext(ctx, `SELECT serial, revoked_at FROM pki_certificates WHERE ca_id = $1 AND revoked_at IS NOT NULL ORDER BY serial`, inter.id)
	if err != nil {
		return nil, fmt.Errorf("crl: %w", err)
	}
	var entries []x509.RevocationListEntry
	for rows.Next() {
		var s string
		var at int64
		if err := rows.Scan(&s, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("crl: %w", err)
		}
		n, ok := new(big.Int).SetString(s, 16)
		if !ok {
			rows.Close()
			return nil, fmt.Errorf("crl: serial %q", s)
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: clock.FromMicros(at)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("crl: %w", err)
	}
	key, err := openKey(ctx, ca.master, tenantID, inter.id, inter.sealed)
	if err != nil {
		return nil, err
	}
	now := ca.clock.Now()
	der, err := x509.CreateRevocationList(ca.rand, &x509.RevocationList{
		Number: big.NewInt(clock.Micros(now)), ThisUpdate: now, NextUpdate: now.Add(CRLValidity), RevokedCertificateEntries: entries,
	}, inter.cert, key)
	if err != nil {
		return nil, fmt.Errorf("crl: %w", err)
	}
	return der, nil
}

// VerifySigner checks a document signer's chain (x5c: the leaf first) for
// DP-4: a signing certificate of a tenant's CA, valid now, not revoked,
// its system and responsible person active. The chain's other elements
// must be the CA's own.
func (ca *CA) VerifySigner(ctx context.Context, chain []*x509.Certificate) (Peer, error) {
	if len(chain) == 0 {
		return Peer{}, refused("no signer certificate")
	}
	t, err := ca.trustFor(ctx, chain[0].AuthorityKeyId)
	if err != nil {
		return Peer{}, err
	}
	for _, c := range chain[1:] {
		if _, ok := t.tenantOf[string(c.Raw)]; !ok && !isRoot(t, c) {
			return Peer{}, refused("the x5c chain contains a certificate that is not this installation's CA")
		}
	}
	if p, own, err := ca.ownSigner(ctx, chain[0]); err != nil || own {
		if err == nil {
			_, err = ca.verifyChain(ctx, chain[0], x509.ExtKeyUsageAny)
		}
		return p, err
	}
	return ca.verifyLeaf(ctx, chain[0], x509.ExtKeyUsageAny, PurposeSigning)
}

func isRoot(t *trust, c *x509.Certificate) bool {
	chains, err := c.Verify(x509.VerifyOptions{Roots: t.roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil && len(chains) > 0 && len(chains[0]) == 1 && bytes.Equal(chains[0][0].Raw, c.Raw)
}

// OperatorEvent is the actor of what the server does on its own (Sweep).
func OperatorEvent(app string) audit.Event {
	return audit.Event{UserID: "zorgkluis", UserName: "zorgkluis server", Role: "platform", SourceApp: app}
}
