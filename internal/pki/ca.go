package pki

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/change"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/keys"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Lifetimes of the CA certificates. A tenant's intermediate outlives every
// leaf it signs by far; the root outlives its intermediates.
const (
	rootValidity         = 20 * 365 * 24 * time.Hour
	intermediateValidity = 10 * 365 * 24 * time.Hour
)

// Request is a four-eyes request (GOV-1): a tenant's intermediate, or a
// change of its CA policy. It takes effect only when someone other than
// the proposer approves it.
type Request struct {
	ID         string     `json:"id"`
	TenantID   string     `json:"tenant_id"`
	Kind       string     `json:"kind"` // intermediate, policy
	Policy     *Policy    `json:"policy,omitempty"`
	Status     string     `json:"status"`
	ProposedBy string     `json:"proposed_by"`
	ProposedAt time.Time  `json:"proposed_at"`
	DecidedBy  string     `json:"decided_by,omitempty"`
	DecidedAt  *time.Time `json:"decided_at,omitempty"`
}

// Policy is a tenant's CA policy.
type Policy struct {
	// MaxDays is the longest validity of a system certificate, 1..365.
	MaxDays int `json:"max_days"`
	// RequireSigned: incoming Bundles must carry a valid signature (DP-4).
	RequireSigned bool `json:"require_signed"`
}

// DefaultPolicy is a tenant's policy until a change is approved.
var DefaultPolicy = Policy{MaxDays: 365}

// ProposeIntermediate asks for the tenant's intermediate CA (the first, or
// a new one that replaces it). The actor proposes; Approve by another
// person issues it.
func (ca *CA) ProposeIntermediate(ctx context.Context, actor audit.Event, tenantID string) (Request, error) {
	return ca.propose(ctx, actor, tenantID, "intermediate", nil)
}

// ProposePolicy asks for a change of the tenant's CA policy.
func (ca *CA) ProposePolicy(ctx context.Context, actor audit.Event, tenantID string, p Policy) (Request, error) {
	if p.MaxDays < 1 || p.MaxDays > int(MaxValidity/(24*time.Hour)) {
		return Request{}, invalid("max_days must be 1 to %d, not %d", int(MaxValidity/(24*time.Hour)), p.MaxDays)
	}
	return ca.propose(ctx, actor, tenantID, "policy", &p)
}

func (ca *CA) propose(ctx context.Context, actor audit.Event, tenantID, kind string, p *Policy) (Request, error) {
	if err := ca.tenantExists(ctx, tenantID); err != nil {
		return Request{}, err
	}
	if actor.UserID == "" {
		return Request{}, fmt.Errorf("no proposer: %w", ErrForbidden)
	}
	if actor.TenantID != "" && actor.TenantID != tenantID {
		return Request{}, fmt.Errorf("tenant %q: %w", tenantID, ErrNotFound)
	}
	detail, _ := json.Marshal(p)
	summary := "intermediate CA for the organisation (name-constrained, path length 0)"
	if p != nil {
		summary = fmt.Sprintf("CA policy: system certificates at most %d days, signed documents required %t", p.MaxDays, p.RequireSigned)
	}
	var req Request
	err := ca.db.Tx(ctx, func(tx *store.Tx) error {
		// The request's id is its change request's (GOV-1).
		cr, err := ca.changes.Propose(ctx, tx, changeActor(actor), change.Proposal{Kind: "pki." + kind, TenantID: tenantID, Summary: summary,
			Payload: json.RawMessage(detail)})
		if err != nil {
			return changeErr(err)
		}
		req = Request{ID: cr.ID, TenantID: tenantID, Kind: kind, Policy: p, Status: "pending", ProposedBy: actor.UserID, ProposedAt: cr.ProposedAt}
		if _, err := tx.ExecContext(ctx, `INSERT INTO pki_requests (id, tenant_id, kind, detail, status, proposed_by, proposed_at)
			VALUES ($1, $2, $3, $4, 'pending', $5, $6)`, req.ID, tenantID, kind, string(detail), actor.UserID, clock.Micros(cr.ProposedAt)); err != nil {
			return err
		}
		ev := certEvent(actor, tenantID, "", "proposed "+kind+" request="+req.ID)
		ev.Resources = []string{"PKIRequest/" + req.ID}
		_, err = ca.log.AppendIn(ctx, tx, ev)
		return err
	})
	if err != nil {
		return Request{}, fmt.Errorf("propose %s: %w", kind, err)
	}
	return req, nil
}

// changeActor is the four-eyes actor of an audit actor; platform staff at
// the server (the pki commands) have no tenant.
func changeActor(e audit.Event) change.Actor {
	return change.Actor{TenantID: e.TenantID, AccountID: e.UserID, Name: e.UserName, Role: e.Role, Organisation: e.Organisation, Assurance: e.Assurance}
}

// actorEvent is the audit actor of a four-eyes actor.
func actorEvent(a change.Actor) audit.Event {
	return audit.Event{TenantID: a.TenantID, UserID: a.AccountID, UserName: a.Name, Role: a.Role, Organisation: a.Organisation, Assurance: a.Assurance}
}

// changeErr maps change's errors onto pki's.
func changeErr(err error) error {
	switch {
	case errors.Is(err, change.ErrSelf), errors.Is(err, change.ErrForbidden):
		return fmt.Errorf("%w: %w", err, ErrForbidden)
	case errors.Is(err, change.ErrNotFound):
		return fmt.Errorf("%w: %w", err, ErrNotFound)
	case errors.Is(err, change.ErrDecided), errors.Is(err, change.ErrExpired), errors.Is(err, change.ErrInapplicable):
		return fmt.Errorf("%w: %w", err, ErrConflict)
	case errors.Is(err, change.ErrInvalid):
		return fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	return err
}

// The kinds of four-eyes change (GOV-1) the CA owns.
const (
	ChangeIntermediate = "pki.intermediate"
	ChangePolicy       = "pki.policy"
)

// caDeciders are the roles that decide the CA's requests: the tenant's
// application admins and security officers, and the platform's staff at
// the server (the pki commands).
var caDeciders = []string{"application-admin", "security-officer", "platform-admin"}

// registerChanges gives change the CA's two kinds: a new intermediate
// (made and sealed before the approval's transaction, written in it) and
// a policy change.
func (ca *CA) registerChanges() {
	ca.changes.Register(ChangeIntermediate, change.Handler{
		Approvers: caDeciders,
		Platform:  true,
		Prepare: func(ctx context.Context, r change.Request, by change.Actor) (func(context.Context, *store.Tx) error, error) {
			req, err := ca.request(ctx, ca.db, r.ID)
			if err != nil {
				return nil, err
			}
			approver := actorEvent(by)
			issue, err := ca.prepareIntermediate(ctx, req, approver, *r.DecidedAt)
			if err != nil {
				return nil, err
			}
			return func(ctx context.Context, tx *store.Tx) error {
				if err := ca.settle(ctx, tx, r, "approved", approver); err != nil {
					return err
				}
				ca.forget() // Verify reloads its trust when it meets an unknown CA
				return issue(ctx, tx)
			}, nil
		},
		Closed: func(ctx context.Context, tx *store.Tx, r change.Request) error {
			return ca.settle(ctx, tx, r, string(r.Status), audit.Event{TenantID: r.TenantID, UserID: orSystem(r.DecidedBy)})
		},
	})
	ca.changes.Register(ChangePolicy, change.Handler{
		Approvers: caDeciders,
		Platform:  true,
		Apply: func(ctx context.Context, tx *store.Tx, r change.Request, by change.Actor) error {
			req, err := ca.request(ctx, tx, r.ID)
			if err != nil {
				return err
			}
			if err := ca.settle(ctx, tx, r, "approved", actorEvent(by)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM pki_policies WHERE tenant_id = $1`, req.TenantID); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO pki_policies (tenant_id, max_days, require_signed, changed_by, changed_at)
				VALUES ($1, $2, $3, $4, $5)`, req.TenantID, req.Policy.MaxDays, req.Policy.RequireSigned, by.AccountID, clock.Micros(*r.DecidedAt))
			return err
		},
		Closed: func(ctx context.Context, tx *store.Tx, r change.Request) error {
			return ca.settle(ctx, tx, r, string(r.Status), audit.Event{TenantID: r.TenantID, UserID: orSystem(r.DecidedBy)})
		},
	})
}

func orSystem(account string) string {
	if account == "" {
		return "system"
	}
	return account
}

// settle records the end of a request on its row and in the tenant's log:
// approved, rejected, expired or failed. Only an approval needs the row
// still pending.
func (ca *CA) settle(ctx context.Context, tx *store.Tx, r change.Request, status string, by audit.Event) error {
	req, err := ca.request(ctx, tx, r.ID)
	if err != nil {
		return err
	}
	if req.Status != "pending" {
		if status != "approved" {
			return nil
		}
		return fmt.Errorf("request %s is %s: %w", r.ID, req.Status, change.ErrInapplicable)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE pki_requests SET status = $1, decided_by = $2, decided_at = $3 WHERE id = $4 AND status = 'pending'`,
		status, r.DecidedBy, clock.Micros(*r.DecidedAt), r.ID); err != nil {
		return err
	}
	ev := certEvent(by, req.TenantID, "", status+" "+req.Kind+" request="+r.ID+" proposed_by="+req.ProposedBy)
	ev.Resources = []string{"PKIRequest/" + r.ID}
	_, err = ca.log.AppendIn(ctx, tx, ev)
	return err
}

func (ca *CA) request(ctx context.Context, q store.Querier, id string) (Request, error) {
	req, err := scanRequest(q.QueryRowContext(ctx, `SELECT id, tenant_id, kind, detail, status, proposed_by, proposed_at, decided_by, decided_at
		FROM pki_requests WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Request{}, fmt.Errorf("request %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Request{}, fmt.Errorf("request: %w", err)
	}
	return req, nil
}

// Requests lists a tenant's four-eyes requests, newest first.
func (ca *CA) Requests(ctx context.Context, tenantID string) ([]Request, error) {
	return queryAll(ctx, ca.db, "requests", scanRequest, `SELECT id, tenant_id, kind, detail, status, proposed_by, proposed_at, decided_by, decided_at
		FROM pki_requests WHERE tenant_id = $1 ORDER BY proposed_at DESC`, tenantID)
}

func scanRequest(row interface{ Scan(...any) error }) (Request, error) {
	var r Request
	var detail string
	var proposed int64
	var decided sql.NullInt64
	if err := row.Scan(&r.ID, &r.TenantID, &r.Kind, &detail, &r.Status, &r.ProposedBy, &proposed, &r.DecidedBy, &decided); err != nil {
		return Request{}, err
	}
	if detail != "null" && detail != "" {
		r.Policy = new(Policy)
		if err := json.Unmarshal([]byte(detail), r.Policy); err != nil {
			return Request{}, err
		}
	}
	r.ProposedAt = clock.FromMicros(proposed)
	if decided.Valid {
		t := clock.FromMicros(decided.Int64)
		r.DecidedAt = &t
	}
	return r, nil
}

// Approve carries out a pending request on the approver's word, through
// its change request; the approver must not be the proposer (GOV-1). An
// intermediate request creates the installation's root first when there is
// none.
func (ca *CA) Approve(ctx context.Context, approver audit.Event, requestID string) (Request, error) {
	return ca.decide(ctx, approver, requestID, true)
}

// Reject closes a pending request without effect.
func (ca *CA) Reject(ctx context.Context, approver audit.Event, requestID string) (Request, error) {
	return ca.decide(ctx, approver, requestID, false)
}

func (ca *CA) decide(ctx context.Context, approver audit.Event, requestID string, approve bool) (Request, error) {
	req, err := ca.request(ctx, ca.db, requestID)
	if err == nil && approver.TenantID != "" && req.TenantID != approver.TenantID {
		err = fmt.Errorf("request %s: %w", requestID, ErrNotFound)
	}
	if err != nil {
		return Request{}, err
	}
	if approver.UserID == "" {
		return Request{}, fmt.Errorf("no approver: %w", ErrForbidden)
	}
	if _, err := ca.changes.DecideKind(ctx, changeActor(approver), "pki."+req.Kind, requestID, approve, ""); err != nil {
		return Request{}, fmt.Errorf("decide request: %w", changeErr(err))
	}
	ca.forget()
	return ca.request(ctx, ca.db, requestID)
}

// PolicyOf returns the tenant's CA policy in force.
func (ca *CA) PolicyOf(ctx context.Context, tenantID string) (Policy, error) {
	var p Policy
	err := ca.db.QueryRowContext(ctx, `SELECT max_days, require_signed FROM pki_policies WHERE tenant_id = $1`, tenantID).Scan(&p.MaxDays, &p.RequireSigned)
	if errors.Is(err, sql.ErrNoRows) {
		return DefaultPolicy, nil
	}
	if err != nil {
		return Policy{}, fmt.Errorf("policy: %w", err)
	}
	return p, nil
}

// caCert is a stored CA certificate with its sealed key.
type caCert struct {
	id, tenantID, kind string
	cert               *x509.Certificate
	der, sealed        []byte
}

func (ca *CA) activeCA(ctx context.Context, q store.Querier, tenantID, kind string) (caCert, error) {
	c := caCert{tenantID: tenantID, kind: kind}
	err := q.QueryRowContext(ctx, `SELECT id, cert_der, key_sealed FROM pki_cas WHERE tenant_id = $1 AND kind = $2 AND status = 'active'
		ORDER BY created_at DESC LIMIT 1`, tenantID, kind).Scan(&c.id, &c.der, &c.sealed)
	if errors.Is(err, sql.ErrNoRows) {
		if kind == "root" {
			return caCert{}, fmt.Errorf("no root CA yet (approve a tenant's intermediate first): %w", ErrNotFound)
		}
		return caCert{}, fmt.Errorf("tenant %s has no CA yet (propose and approve its intermediate first): %w", tenantID, ErrNotFound)
	}
	if err != nil {
		return caCert{}, fmt.Errorf("CA certificate: %w", err)
	}
	if c.cert, err = x509.ParseCertificate(c.der); err != nil {
		return caCert{}, fmt.Errorf("CA certificate %s: %w", c.id, err)
	}
	return c, nil
}

// prepareIntermediate makes the tenant's new intermediate (and the root,
// when the installation has none) and returns the write of both.
func (ca *CA) prepareIntermediate(ctx context.Context, req Request, approver audit.Event, now time.Time) (func(context.Context, *store.Tx) error, error) {
	var writes []func(context.Context, *store.Tx) error
	root, err := ca.activeCA(ctx, ca.db, "", "root")
	if errors.Is(err, ErrNotFound) {
		root, err = ca.makeRoot(ctx, now)
		if err != nil {
			return nil, err
		}
		writes = append(writes, ca.insertCA(root, req.ProposedBy, approver, now))
	} else if err != nil {
		return nil, err
	}
	rootKey, err := openKey(ctx, ca.master, "", root.id, root.sealed)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P384(), ca.rand)
	if err != nil {
		return nil, fmt.Errorf("intermediate key: %w", err)
	}
	serial, hexSerial, err := ca.newSerial()
	if err != nil {
		return nil, err
	}
	var org string
	_ = ca.db.QueryRowContext(ctx, `SELECT name FROM tenants WHERE id = $1`, req.TenantID).Scan(&org)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "zorgkluis CA " + req.TenantID, Organization: []string{org}, OrganizationalUnit: []string{req.TenantID}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(intermediateValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true, // leaves only: a longer chain fails verification
		// Name constraints: the tenant's systems only, no addresses, so a
		// tenant's CA cannot vouch for another tenant's or any public name.
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         []string{req.TenantID + "." + Domain},
		ExcludedIPRanges:            []*net.IPNet{{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}, {IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}},
	}
	der, err := x509.CreateCertificate(ca.rand, tmpl, root.cert, &key.PublicKey, rootKey)
	if err != nil {
		return nil, fmt.Errorf("sign intermediate: %w", err)
	}
	sealed, err := sealKey(ctx, ca.master, req.TenantID, hexSerial, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse intermediate: %w", err)
	}
	inter := caCert{id: hexSerial, tenantID: req.TenantID, kind: "intermediate", cert: cert, der: der, sealed: sealed}
	writes = append(writes, func(ctx context.Context, tx *store.Tx) error {
		// The previous intermediate is retired for signing; certificates it
		// signed stay valid until they expire or are revoked.
		_, err := tx.ExecContext(ctx, `UPDATE pki_cas SET status = 'retired' WHERE tenant_id = $1 AND kind = 'intermediate' AND status = 'active'`, req.TenantID)
		return err
	}, ca.insertCA(inter, req.ProposedBy, approver, now))
	return func(ctx context.Context, tx *store.Tx) error {
		for _, w := range writes {
			if err := w(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

func (ca *CA) makeRoot(ctx context.Context, now time.Time) (caCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), ca.rand)
	if err != nil {
		return caCert{}, fmt.Errorf("root key: %w", err)
	}
	serial, hexSerial, err := ca.newSerial()
	if err != nil {
		return caCert{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "zorgkluis root CA " + hexSerial[:8], Organization: []string{"zorgkluis"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(rootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	der, err := x509.CreateCertificate(ca.rand, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return caCert{}, fmt.Errorf("sign root: %w", err)
	}
	sealed, err := sealKey(ctx, ca.master, "", hexSerial, key)
	if err != nil {
		return caCert{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return caCert{}, fmt.Errorf("parse root: %w", err)
	}
	return caCert{id: hexSerial, kind: "root", cert: cert, der: der, sealed: sealed}, nil
}

// insertCA stores a CA certificate and appends its leaf to the log of its
// tenant (the root's to the operators' log, tenant ”).
func (ca *CA) insertCA(c caCert, proposer string, approver audit.Event, now time.Time) func(context.Context, *store.Tx) error {
	return func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO pki_cas (id, tenant_id, kind, cert_der, key_sealed, not_before, not_after, status, created_by, approved_by, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $10)`, c.id, c.tenantID, c.kind, c.der, c.sealed,
			clock.Micros(c.cert.NotBefore), clock.Micros(c.cert.NotAfter), proposer, approver.UserID, clock.Micros(now)); err != nil {
			return err
		}
		sum := sha256.Sum256(c.der)
		_, err := ca.log.AppendIn(ctx, tx, certEvent(approver, c.tenantID, c.id, fmt.Sprintf("issued %s sha256=%s not_after=%s",
			c.kind, hex.EncodeToString(sum[:]), c.cert.NotAfter.UTC().Format(time.RFC3339))))
		return err
	}
}

func (ca *CA) tenantExists(ctx context.Context, tenantID string) error {
	var one int
	err := ca.db.QueryRowContext(ctx, `SELECT 1 FROM tenants WHERE id = $1`, tenantID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) || tenantID == "" {
		return fmt.Errorf("tenant %q: %w", tenantID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("tenant: %w", err)
	}
	return nil
}

// Chain returns the PEM of the tenant's active intermediate and the root.
func (ca *CA) Chain(ctx context.Context, tenantID string) ([]*x509.Certificate, error) {
	inter, err := ca.activeCA(ctx, ca.db, tenantID, "intermediate")
	if err != nil {
		return nil, err
	}
	root, err := ca.activeCA(ctx, ca.db, "", "root")
	if err != nil {
		return nil, err
	}
	return []*x509.Certificate{inter.cert, root.cert}, nil
}

// Root returns the installation's root certificate.
func (ca *CA) Root(ctx context.Context) (*x509.Certificate, error) {
	root, err := ca.activeCA(ctx, ca.db, "", "root")
	if err != nil {
		return nil, err
	}
	return root.cert, nil
}

// Rewrap seals every CA and document-signer key again under the current
// master key, after a master-key rotation, so that the old master key can
// be removed. It returns how many keys it re-sealed.
func (ca *CA) Rewrap(ctx context.Context) (int, error) {
	rows, err := ca.db.QueryContext(ctx, `SELECT id, tenant_id, key_sealed FROM pki_cas ORDER BY id`)
	if err != nil {
		return 0, fmt.Errorf("rewrap CA keys: %w", err)
	}
	type sealed struct {
		id, tenant string
		ct         []byte
	}
	var all []sealed
	for rows.Next() {
		var s sealed
		if err := rows.Scan(&s.id, &s.tenant, &s.ct); err != nil {
			rows.Close()
			return 0, fmt.Errorf("rewrap CA keys: %w", err)
		}
		all = append(all, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("rewrap CA keys: %w", err)
	}
	for _, s := range all {
		der, err := ca.master.Unwrap(ctx, s.ct, keys.CAKeyAD(s.tenant, s.id))
		if err != nil {
			return 0, fmt.Errorf("rewrap CA key %s: %w", s.id, err)
		}
		ct, err := ca.master.Wrap(ctx, der, keys.CAKeyAD(s.tenant, s.id))
		if err != nil {
			return 0, fmt.Errorf("rewrap CA key %s: %w", s.id, err)
		}
		if _, err := ca.db.ExecContext(ctx, `UPDATE pki_cas SET key_sealed = $1 WHERE id = $2`, ct, s.id); err != nil {
			return 0, fmt.Errorf("rewrap CA key %s: %w", s.id, err)
		}
	}
	return len(all), nil
}
