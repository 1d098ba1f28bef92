package pki

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/alert"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// System is a registered third-party system of a tenant.
type System struct {
	ID            string    `json:"id"`
	TenantID      string    `json:"tenant_id"`
	Name          string    `json:"name"`
	ResponsibleID string    `json:"responsible_id"` // the natural person answerable for it (ID-3)
	Scopes        []string  `json:"scopes"`         // access actions: read, search, create, ...
	Categories    []string  `json:"categories"`     // data categories; * for all
	Patients      []string  `json:"patients,omitempty"`
	PatientSet    bool      `json:"patient_set"` // true: only Patients
	Active        bool      `json:"active"`
	CreatedAt     time.Time `json:"created_at"`
}

// DNSName is the name a system's certificates carry.
func (s System) DNSName() string { return s.ID + "." + s.TenantID + "." + Domain }

// OIDDocumentSigning is the extended key usage of a document-signing
// certificate (1.3.6.1.4.1.311.10.3.12, "Document Signing").
var OIDDocumentSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 10, 3, 12}

// Scopes a system may be given: the access actions.
var knownScopes = []string{"read", "search", "create", "update", "delete", "export"}

// Categories the caller may name; pki does not decide on them (access
// does), it only refuses what no rule knows. Set by the caller that wires
// the CA (fhir.AllCategories plus "*").
type Categories func(c string) bool

// RegisterSystem registers a system of the actor's tenant (ID-3): its
// responsible person must be an active staff or professional account of
// the same tenant.
func (ca *CA) RegisterSystem(ctx context.Context, actor audit.Event, s System, known Categories) (System, error) {
	if err := checkText("name", s.Name, 200); err != nil {
		return System{}, err
	}
	if strings.TrimSpace(s.Name) == "" {
		return System{}, invalid("name is required")
	}
	if err := ca.tenantExists(ctx, s.TenantID); err != nil {
		return System{}, err
	}
	if err := ca.responsibleOK(ctx, ca.db, s.TenantID, s.ResponsibleID); err != nil {
		return System{}, err
	}
	if len(s.Scopes) == 0 {
		return System{}, invalid("scopes are required (of %s)", strings.Join(knownScopes, ", "))
	}
	for _, sc := range s.Scopes {
		if !slices.Contains(knownScopes, sc) {
			return System{}, invalid("unknown scope %q (known: %s)", sc, strings.Join(knownScopes, ", "))
		}
	}
	if len(s.Categories) == 0 {
		return System{}, invalid("categories are required (* for all)")
	}
	for _, c := range s.Categories {
		if known != nil && !known(c) {
			return System{}, invalid("unknown data category %q", c)
		}
	}
	slices.Sort(s.Scopes)
	s.Scopes = slices.Compact(s.Scopes)
	id, err := ca.newID("sys-")
	if err != nil {
		return System{}, err
	}
	s.ID, s.Active, s.CreatedAt = id, true, ca.clock.Now()
	s.PatientSet = s.PatientSet || len(s.Patients) > 0
	err = ca.db.Tx(ctx, func(tx *store.Tx) error {
		for _, p := range s.Patients {
			var tenant string
			if err := tx.QueryRowContext(ctx, `SELECT tenant_id FROM patients WHERE id = $1`, p).Scan(&tenant); err != nil || tenant != s.TenantID {
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					return err
				}
				return invalid("patient %q is not a patient of this organisation", p)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO pki_system_patients (system_id, patient_id) VALUES ($1, $2)`, id, p); err != nil {
				if store.IsUniqueViolation(err) {
					continue
				}
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO pki_systems (id, tenant_id, name, responsible_id, scopes, categories, patient_set, status, created_by, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9)`, id, s.TenantID, s.Name, s.ResponsibleID,
			strings.Join(s.Scopes, " "), strings.Join(s.Categories, " "), s.PatientSet, actor.UserID, clock.Micros(s.CreatedAt))
		if store.IsUniqueViolation(err) {
			return fmt.Errorf("a system named %q exists: %w", s.Name, ErrConflict)
		}
		if err != nil {
			return err
		}
		ev := certEvent(actor, s.TenantID, "", fmt.Sprintf("registered system %s responsible=%s scopes=%s", id, s.ResponsibleID, strings.Join(s.Scopes, ",")))
		ev.Resources = []string{"System/" + id}
		_, err = ca.log.AppendIn(ctx, tx, ev)
		return err
	})
	if err != nil {
		return System{}, fmt.Errorf("register system: %w", err)
	}
	return s, nil
}

func (ca *CA) responsibleOK(ctx context.Context, q store.Querier, tenantID, accountID string) error {
	var tenant sql.NullString
	var kind, status string
	err := q.QueryRowContext(ctx, `SELECT tenant_id, kind, status FROM accounts WHERE id = $1`, accountID).Scan(&tenant, &kind, &status)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (tenant.String != tenantID || status != "active" || kind == "person" || kind == "operator")) {
		return invalid("responsible_id must be an active staff or professional account of the organisation (ID-3)")
	}
	if err != nil {
		return fmt.Errorf("responsible person: %w", err)
	}
	return nil
}

const systemCols = `id, tenant_id, name, responsible_id, scopes, categories, patient_set, status, created_at`

func scanSystem(row interface{ Scan(...any) error }) (System, error) {
	var s System
	var scopes, cats, status string
	var created int64
	if err := row.Scan(&s.ID, &s.TenantID, &s.Name, &s.ResponsibleID, &scopes, &cats, &s.PatientSet, &status, &created); err != nil {
		return System{}, err
	}
	s.Scopes, s.Categories, s.Active, s.CreatedAt = strings.Fields(scopes), strings.Fields(cats), status == "active", clock.FromMicros(created)
	return s, nil
}

// System returns a system of the tenant.
func (ca *CA) System(ctx context.Context, tenantID, id string) (System, error) {
	s, err := scanSystem(ca.db.QueryRowContext(ctx, `SELECT `+systemCols+` FROM pki_systems WHERE id = $1 AND tenant_id = $2`, id, tenantID))
	if errors.Is(err, sql.ErrNoRows) {
		return System{}, fmt.Errorf("system %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return System{}, fmt.Errorf("system: %w", err)
	}
	rows, err := ca.db.QueryContext(ctx, `SELECT patient_id FROM pki_system_patients WHERE system_id = $1 ORDER BY patient_id`, id)
	if err != nil {
		return System{}, fmt.Errorf("system: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return System{}, err
		}
		s.Patients = append(s.Patients, p)
	}
	return s, rows.Err()
}

// Systems lists the tenant's systems.
func (ca *CA) Systems(ctx context.Context, tenantID string) ([]System, error) {
	return queryAll(ctx, ca.db, "systems", scanSystem, `SELECT `+systemCols+` FROM pki_systems WHERE tenant_id = $1 ORDER BY name`, tenantID)
}

// DeactivateSystem ends a system: it is marked deactivated and every
// certificate it holds is revoked at once (ID-5).
func (ca *CA) DeactivateSystem(ctx context.Context, actor audit.Event, tenantID, id string) (int, error) {
	now := ca.clock.Now()
	n := 0
	err := ca.db.Tx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE pki_systems SET status = 'deactivated', deactivated_at = $1
			WHERE id = $2 AND tenant_id = $3 AND status = 'active'`, clock.Micros(now), id, tenantID)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k != 1 {
			return fmt.Errorf("active system %s: %w", id, ErrNotFound)
		}
		ev := certEvent(actor, tenantID, "", "deactivated system "+id)
		ev.Resources = []string{"System/" + id}
		if _, err := ca.log.AppendIn(ctx, tx, ev); err != nil {
			return err
		}
		n, err = ca.revokeWhere(ctx, tx, actor, now, "system deactivated", `system_id = $1`, id)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("deactivate system: %w", err)
	}
	return n, nil
}

// Sweep revokes the certificates of systems whose responsible person is no
// longer an active account (ID-5: deactivating a leaver revokes what they
// hold). access and Verify refuse such a system already, at once; Sweep
// makes the revocation a fact in the table, the CRL and the tenant's log.
// Run periodically by the server; safe on every replica at the same time.
func (ca *CA) Sweep(ctx context.Context, actor audit.Event) (int, error) {
	const orphaned = `system_id IN (SELECT s.id FROM pki_systems s JOIN accounts a ON a.id = s.responsible_id WHERE a.status <> 'active')`
	var any sql.NullInt64
	if err := ca.db.QueryRowContext(ctx, `SELECT MIN(1) FROM pki_certificates WHERE revoked_at IS NULL AND `+orphaned).Scan(&any); err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	if !any.Valid {
		return 0, nil // the usual case: no write transaction
	}
	now := ca.clock.Now()
	n := 0
	err := ca.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		n, err = ca.revokeWhere(ctx, tx, actor, now, "responsible person deactivated", orphaned)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	return n, nil
}

// revokeWhere revokes every current certificate matching cond (with args
// from $1), each with its leaf in its tenant's log.
func (ca *CA) revokeWhere(ctx context.Context, tx *store.Tx, actor audit.Event, now time.Time, reason, cond string, args ...any) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT serial, tenant_id, sha256 FROM pki_certificates WHERE revoked_at IS NULL AND `+cond+` ORDER BY serial`, args...)
	if err != nil {
		return 0, err
	}
	type hit struct{ serial, tenant, sum string }
	var hits []hit
	for rows.Next() {
		var h hit
		if err := rows.Scan(&h.serial, &h.tenant, &h.sum); err != nil {
			rows.Close()
			return 0, err
		}
		hits = append(hits, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, h := range hits {
		res, err := tx.ExecContext(ctx, `UPDATE pki_certificates SET revoked_at = $1, revoked_by = $2, revoke_reason = $3
			WHERE serial = $4 AND revoked_at IS NULL`, clock.Micros(now), actor.UserID, reason, h.serial)
		if err != nil {
			return 0, err
		}
		if k, _ := res.RowsAffected(); k != 1 {
			continue // another replica revoked it meanwhile, and logged it
		}
		if _, err := ca.log.AppendIn(ctx, tx, certEvent(actor, h.tenant, h.serial, "revoked reason="+reason+" sha256="+h.sum)); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// Revoke revokes one certificate of the tenant, at once; the next
// handshake with it fails on every replica.
func (ca *CA) Revoke(ctx context.Context, actor audit.Event, tenantID, serial, reason string) error {
	if err := checkText("reason", reason, 200); err != nil {
		return err
	}
	if reason == "" {
		reason = "revoked by the organisation"
	}
	serial = strings.ToLower(serial)
	var n int
	err := ca.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		n, err = ca.revokeWhere(ctx, tx, actor, ca.clock.Now(), reason, `serial = $1 AND tenant_id = $2`, serial, tenantID)
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("no current certificate %s of this organisation: %w", serial, ErrNotFound)
	}
	return nil
}

// Issue signs a system's CSR (PEM) on the actor's instruction, valid for
// validity from now: the CSR's signature must verify (proof of
// possession), its key must be ECDSA P-256 or P-384 and not another
// system's or one of the CA's, its names (if any) the system's own, and
// validity at most the tenant's policy (365 days; more is refused). A
// renewal is one more Issue: the old certificate stays valid beside the
// new one until it expires or is revoked (overlap).
func (ca *CA) Issue(ctx context.Context, actor audit.Event, tenantID, systemID, purpose string, csrPEM []byte, validity time.Duration) (Certificate, error) {
	if purpose == "" {
		purpose = PurposeTLS
	}
	if purpose != PurposeTLS && purpose != PurposeSigning {
		return Certificate{}, invalid("purpose must be %s or %s", PurposeTLS, PurposeSigning)
	}
	pol, err := ca.PolicyOf(ctx, tenantID)
	if err != nil {
		return Certificate{}, err
	}
	maxV := time.Duration(pol.MaxDays) * 24 * time.Hour
	if validity <= 0 {
		validity = maxV
	}
	if validity > maxV {
		return Certificate{}, invalid("a validity of %d days exceeds the policy's maximum of %d days (DP-3: at most one year)",
			int((validity+24*time.Hour-1)/(24*time.Hour)), pol.MaxDays)
	}
	sys, err := ca.System(ctx, tenantID, systemID)
	if err != nil {
		return Certificate{}, err
	}
	if !sys.Active {
		return Certificate{}, fmt.Errorf("system %s is deactivated: %w", systemID, ErrConflict)
	}
	if err := ca.responsibleOK(ctx, ca.db, tenantID, sys.ResponsibleID); err != nil {
		return Certificate{}, fmt.Errorf("system %s: its responsible person is no longer active: %w", systemID, ErrConflict)
	}
	csr, err := parseCSR(csrPEM)
	if err != nil {
		return Certificate{}, err
	}
	if err := checkNames(csr, sys); err != nil {
		return Certificate{}, err
	}
	spki := sha256.Sum256(csr.RawSubjectPublicKeyInfo)
	inter, err := ca.activeCA(ctx, ca.db, tenantID, "intermediate")
	if err != nil {
		return Certificate{}, err
	}
	if err := ca.keyUnused(ctx, csr, sys, purpose, inter); err != nil {
		return Certificate{}, err
	}
	key, err := openKey(ctx, ca.master, tenantID, inter.id, inter.sealed)
	if err != nil {
		return Certificate{}, err
	}
	serial, hexSerial, err := ca.newSerial()
	if err != nil {
		return Certificate{}, err
	}
	now := ca.clock.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: sys.Name, Organization: inter.cert.Subject.Organization, OrganizationalUnit: []string{tenantID}, SerialNumber: sys.ID},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validity),
		DNSNames:     []string{sys.DNSName()},
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if purpose == PurposeTLS {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		// Non-repudiation and the document-signing purpose, never client
		// authentication: a signing certificate cannot open a connection.
		tmpl.KeyUsage |= x509.KeyUsageContentCommitment
		tmpl.UnknownExtKeyUsage = []asn1.ObjectIdentifier{OIDDocumentSigning}
	}
	der, err := x509.CreateCertificate(ca.rand, tmpl, inter.cert, csr.PublicKey, key)
	if err != nil {
		return Certificate{}, fmt.Errorf("sign certificate: %w", err)
	}
	sum := sha256.Sum256(der)
	c := Certificate{Serial: hexSerial, TenantID: tenantID, SystemID: systemID, Purpose: purpose, SHA256: hex.EncodeToString(sum[:]),
		NotBefore: tmpl.NotBefore.UTC(), NotAfter: tmpl.NotAfter.UTC(), IssuedBy: actor.UserID, IssuedAt: now, DER: der}
	err = ca.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO pki_certificates (serial, tenant_id, system_id, ca_id, purpose, sha256, cert_der, not_before, not_after, issued_by, issued_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, hexSerial, tenantID, systemID, inter.id, purpose, c.SHA256, der,
			clock.Micros(c.NotBefore), clock.Micros(c.NotAfter), actor.UserID, clock.Micros(now)); err != nil {
			return err
		}
		_, err := ca.log.AppendIn(ctx, tx, certEvent(actor, tenantID, hexSerial, fmt.Sprintf("issued %s system=%s sha256=%s spki=%s not_after=%s",
			purpose, systemID, c.SHA256, hex.EncodeToString(spki[:]), c.NotAfter.Format(time.RFC3339))))
		return err
	})
	if err != nil {
		return Certificate{}, fmt.Errorf("issue: %w", err)
	}
	c.PEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	c.ChainPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inter.der}))
	if root, err := ca.activeCA(ctx, ca.db, "", "root"); err == nil {
		c.ChainPEM += string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.der}))
	}
	return c, nil
}

func parseCSR(b []byte) (*x509.CertificateRequest, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" && blk.Type != "NEW CERTIFICATE REQUEST" {
		return nil, invalid("the CSR must be one PEM block of type CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, invalid("the CSR does not parse: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, invalid("the CSR's signature does not verify with its own key (no proof of possession)")
	}
	k, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok || (k.Curve != elliptic.P256() && k.Curve != elliptic.P384()) {
		return nil, invalid("the CSR's key must be ECDSA P-256 or P-384")
	}
	return csr, nil
}

// checkNames refuses a CSR that asks for a name that is not the system's:
// another tenant's or system's, an address, a URI or an e-mail address.
func checkNames(csr *x509.CertificateRequest, sys System) error {
	if cn := csr.Subject.CommonName; cn != "" && cn != sys.ID && cn != sys.Name && cn != sys.DNSName() {
		return invalid("the CSR's common name %q is not this system's (%s)", cn, sys.DNSName())
	}
	for _, n := range csr.DNSNames {
		if n != sys.DNSName() {
			return invalid("the CSR names %q; a certificate of this system names %s only", n, sys.DNSName())
		}
	}
	if len(csr.IPAddresses)+len(csr.URIs)+len(csr.EmailAddresses) > 0 {
		return invalid("the CSR asks for addresses, URIs or e-mail addresses; a system certificate names its system only")
	}
	return nil
}

// keyUnused refuses a key that is the CA's own or that another system, or
// the system's other purpose, already uses: a TLS key never signs
// documents (DP-4) and no two systems share a key.
func (ca *CA) keyUnused(ctx context.Context, csr *x509.CertificateRequest, sys System, purpose string, inter caCert) error {
	if bytes.Equal(csr.RawSubjectPublicKeyInfo, inter.cert.RawSubjectPublicKeyInfo) {
		return invalid("the CSR's key is the CA's key")
	}
	rows, err := ca.db.QueryContext(ctx, `SELECT system_id, purpose, cert_der FROM pki_certificates WHERE tenant_id = $1 OR system_id = $2`, sys.TenantID, sys.ID)
	if err != nil {
		return fmt.Errorf("key check: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sid, p string
		var der []byte
		if err := rows.Scan(&sid, &p, &der); err != nil {
			return fmt.Errorf("key check: %w", err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil || !bytes.Equal(c.RawSubjectPublicKeyInfo, csr.RawSubjectPublicKeyInfo) {
			continue
		}
		if sid != sys.ID {
			return invalid("the CSR's key belongs to another system")
		}
		if p != purpose {
			return invalid("the CSR's key is this system's %s key; a %s certificate needs a key of its own", p, purpose)
		}
	}
	return rows.Err()
}

const certCols = `serial, tenant_id, system_id, purpose, sha256, cert_der, not_before, not_after, issued_by, issued_at, revoked_at, revoke_reason`

func scanCert(row interface{ Scan(...any) error }) (Certificate, error) {
	var c Certificate
	var nb, na, ia int64
	var rv sql.NullInt64
	if err := row.Scan(&c.Serial, &c.TenantID, &c.SystemID, &c.Purpose, &c.SHA256, &c.DER, &nb, &na, &c.IssuedBy, &ia, &rv, &c.Reason); err != nil {
		return Certificate{}, err
	}
	c.NotBefore, c.NotAfter, c.IssuedAt = clock.FromMicros(nb), clock.FromMicros(na), clock.FromMicros(ia)
	if rv.Valid {
		t := clock.FromMicros(rv.Int64)
		c.RevokedAt = &t
	}
	c.PEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}))
	return c, nil
}

// Certificates lists every certificate ever issued for the tenant (every
// one is also a leaf of its log), oldest first.
func (ca *CA) Certificates(ctx context.Context, tenantID string) ([]Certificate, error) {
	return queryAll(ctx, ca.db, "certificates", scanCert, `SELECT `+certCols+` FROM pki_certificates WHERE tenant_id = $1 ORDER BY issued_at, serial`, tenantID)
}

// Certificate returns one certificate of the tenant.
func (ca *CA) Certificate(ctx context.Context, tenantID, serial string) (Certificate, error) {
	c, err := scanCert(ca.db.QueryRowContext(ctx, `SELECT `+certCols+` FROM pki_certificates WHERE serial = $1 AND tenant_id = $2`, strings.ToLower(serial), tenantID))
	if errors.Is(err, sql.ErrNoRows) {
		return Certificate{}, fmt.Errorf("certificate %s: %w", serial, ErrNotFound)
	}
	if err != nil {
		return Certificate{}, fmt.Errorf("certificate: %w", err)
	}
	return c, nil
}

// Expiring lists the current certificates (of every tenant) that expire
// within d: the warnings 30 days ahead.
func (ca *CA) Expiring(ctx context.Context, d time.Duration) ([]Certificate, error) {
	now := ca.clock.Now()
	return queryAll(ctx, ca.db, "expiring certificates", scanCert, `SELECT `+certCols+` FROM pki_certificates WHERE revoked_at IS NULL AND not_after > $1 AND not_after <= $2
		ORDER BY not_after`, clock.Micros(now), clock.Micros(now.Add(d)))
}

// ExpiryWarning is how far ahead a certificate's expiry is warned about.
const ExpiryWarning = 30 * 24 * time.Hour

// WarnExpiring raises a security event (LOG-9) for each current system
// certificate that expires within ExpiryWarning, once per certificate, in
// the tenant's queue, naming the system's responsible person; it returns
// how many it raised. Safe on every replica at once (the first one to mark
// a certificate raises its event).
func (ca *CA) WarnExpiring(ctx context.Context, q *alert.Queue) (int, error) {
	now := ca.clock.Now()
	rows, err := ca.db.QueryContext(ctx, `SELECT c.serial, c.tenant_id, c.system_id, s.responsible_id, c.not_after FROM pki_certificates c
		JOIN pki_systems s ON s.id = c.system_id
		WHERE c.revoked_at IS NULL AND c.expiry_warned_at IS NULL AND c.not_after > $1 AND c.not_after <= $2`,
		clock.Micros(now), clock.Micros(now.Add(ExpiryWarning)))
	if err != nil {
		return 0, fmt.Errorf("expiring certificates: %w", err)
	}
	type hit struct {
		serial, tenant, system, resp string
		notAfter                     int64
	}
	var hits []hit
	for rows.Next() {
		var h hit
		if err := rows.Scan(&h.serial, &h.tenant, &h.system, &h.resp, &h.notAfter); err != nil {
			rows.Close()
			return 0, err
		}
		hits = append(hits, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, h := range hits {
		err := ca.db.Tx(ctx, func(tx *store.Tx) error {
			res, err := tx.ExecContext(ctx, `UPDATE pki_certificates SET expiry_warned_at = $1 WHERE serial = $2 AND expiry_warned_at IS NULL`, clock.Micros(now), h.serial)
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k != 1 {
				return nil
			}
			n++
			_, err = q.Raise(ctx, tx, alert.Entry{TenantID: h.tenant, Kind: "certificate-expiring", AccountID: h.resp, SubjectID: h.system, Ref: h.serial,
				Detail: "the system's certificate " + h.serial + " expires at " + clock.FromMicros(h.notAfter).Format(time.RFC3339) + "; renew it"})
			return err
		})
		if err != nil {
			return n, fmt.Errorf("expiry warning: %w", err)
		}
	}
	return n, nil
}

// queryAll runs query on db and scans every row with scan; what names the
// list in errors.
func queryAll[T any](ctx context.Context, db *store.DB, what string, scan func(interface{ Scan(...any) error }) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
