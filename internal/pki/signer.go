package pki

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// signerValidity is the life of a tenant's document-signing certificate;
// a new one is made when less than signerRenew is left.
const (
	signerValidity = 365 * 24 * time.Hour
	signerRenew    = 30 * 24 * time.Hour
)

// DocumentSigner returns the key the tenant's outgoing documents are
// signed with (DP-4) and its chain (signer, tenant CA; the root is the
// trust anchor). The key is its own: never a TLS key. It is made on first
// use, and again when it nears its end, by the tenant's intermediate; its
// certificate is a leaf of the tenant's log like every other.
func (ca *CA) DocumentSigner(ctx context.Context, tenantID string) (*ecdsa.PrivateKey, []*x509.Certificate, error) {
	now := ca.clock.Now()
	var id string
	var der, sealed []byte
	err := ca.db.QueryRowContext(ctx, `SELECT id, cert_der, key_sealed FROM pki_cas WHERE tenant_id = $1 AND kind = 'signing' AND status = 'active'
		AND not_after > $2 ORDER BY not_after DESC LIMIT 1`, tenantID, clock.Micros(now.Add(signerRenew))).Scan(&id, &der, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		id, der, sealed, err = ca.newDocumentSigner(ctx, tenantID, now)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("document signer: %w", err)
	}
	key, err := openKey(ctx, ca.master, tenantID, id, sealed)
	if err != nil {
		return nil, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("document signer: %w", err)
	}
	inter, err := ca.issuerOf(ctx, leaf)
	if err != nil {
		return nil, nil, err
	}
	return key, []*x509.Certificate{leaf, inter}, nil
}

func (ca *CA) issuerOf(ctx context.Context, leaf *x509.Certificate) (*x509.Certificate, error) {
	t, err := ca.trustFor(ctx, leaf.AuthorityKeyId)
	if err != nil {
		return nil, err
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: t.roots, Intermediates: t.inters, CurrentTime: ca.clock.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil || len(chains[0]) < 2 {
		return nil, fmt.Errorf("document signer's chain: %v", err)
	}
	return chains[0][1], nil
}

func (ca *CA) newDocumentSigner(ctx context.Context, tenantID string, now time.Time) (string, []byte, []byte, error) {
	inter, err := ca.activeCA(ctx, ca.db, tenantID, "intermediate")
	if err != nil {
		return "", nil, nil, err
	}
	interKey, err := openKey(ctx, ca.master, tenantID, inter.id, inter.sealed)
	if err != nil {
		return "", nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), ca.rand)
	if err != nil {
		return "", nil, nil, err
	}
	serial, hexSerial, err := ca.newSerial()
	if err != nil {
		return "", nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:       serial,
		Subject:            pkix.Name{CommonName: "zorgkluis document signer", Organization: inter.cert.Subject.Organization, OrganizationalUnit: []string{tenantID}},
		NotBefore:          now.Add(-time.Minute),
		NotAfter:           now.Add(signerValidity),
		DNSNames:           []string{"signer." + tenantID + "." + Domain},
		KeyUsage:           x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{OIDDocumentSigning},
	}
	der, err := x509.CreateCertificate(ca.rand, tmpl, inter.cert, &key.PublicKey, interKey)
	if err != nil {
		return "", nil, nil, err
	}
	sealed, err := sealKey(ctx, ca.master, tenantID, hexSerial, key)
	if err != nil {
		return "", nil, nil, err
	}
	sum := sha256.Sum256(der)
	actor := OperatorEvent("zorgkluis document signer")
	err = ca.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO pki_cas (id, tenant_id, kind, cert_der, key_sealed, not_before, not_after, status, created_by, approved_by, created_at)
			VALUES ($1, $2, 'signing', $3, $4, $5, $6, 'active', $7, $7, $8)`, hexSerial, tenantID, der, sealed,
			clock.Micros(tmpl.NotBefore), clock.Micros(tmpl.NotAfter), actor.UserID, clock.Micros(now)); err != nil {
			return err
		}
		_, err := ca.log.AppendIn(ctx, tx, certEvent(actor, tenantID, hexSerial, fmt.Sprintf("issued document-signer sha256=%s not_after=%s",
			hex.EncodeToString(sum[:]), tmpl.NotAfter.UTC().Format(time.RFC3339))))
		return err
	})
	return hexSerial, der, sealed, err
}

// ownSigner returns the Peer of a tenant's own document signer, when der
// is one (a document this installation signed).
func (ca *CA) ownSigner(ctx context.Context, leaf *x509.Certificate) (Peer, bool, error) {
	var tenant, status string
	var der []byte
	err := ca.db.QueryRowContext(ctx, `SELECT tenant_id, status, cert_der FROM pki_cas WHERE id = $1 AND kind = 'signing'`, SerialHex(leaf.SerialNumber)).
		Scan(&tenant, &status, &der)
	if errors.Is(err, sql.ErrNoRows) {
		return Peer{}, false, nil
	}
	if err != nil {
		return Peer{}, false, fmt.Errorf("signer lookup: %w", err)
	}
	if string(der) != string(leaf.Raw) {
		return Peer{}, false, nil
	}
	return Peer{Serial: SerialHex(leaf.SerialNumber), TenantID: tenant, SystemID: "zorgkluis", SystemName: "zorgkluis document signer", NotAfter: leaf.NotAfter}, true, nil
}
