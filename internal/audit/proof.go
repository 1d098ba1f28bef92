package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ProofFormat names the version of the ProofBundle layout.
const ProofFormat = "zorgkluis-audit-proof/1"

var (
	// ErrNotFound means no event has the id.
	ErrNotFound = errors.New("audit event not found")
	// ErrNotSequenced means the event is stored but not yet in a signed
	// checkpoint; that normally takes under a second.
	ErrNotSequenced = errors.New("audit event not yet in a signed checkpoint; try again in a second")
	// ErrPurged means the event's retention ended and its body was removed;
	// a copy may be kept in the legal-hold register.
	ErrPurged = errors.New("audit event purged after its retention ended")
)

// ProofBundle proves that one event is in its tenant's log. It is
// self-contained: CheckProof needs nothing else but the log's public key,
// and docs/audit-proofs.md tells how to check it without our code.
type ProofBundle struct {
	Format     string           `json:"format"`
	EventID    string           `json:"eventId"`
	TenantID   string           `json:"tenantId"`
	Event      string           `json:"event"`      // the canonical JSON, byte for byte what was hashed
	Position   int64            `json:"position"`   // leaf index in the tenant's tree
	Checkpoint string           `json:"checkpoint"` // signed note: origin, tree size, root hash, time
	Proof      tlog.RecordProof `json:"proof"`      // RFC 6962 audit path, base64 hashes, leaf to root
}

// Proof returns the inclusion proof of an event against its tenant's newest
// signed checkpoint.
func (l *Log) Proof(ctx context.Context, eventID string) (ProofBundle, error) {
	snap, err := l.db.Snapshot(ctx)
	if err != nil {
		return ProofBundle{}, err
	}
	defer snap.Close()
	b := ProofBundle{Format: ProofFormat, EventID: eventID}
	var body sql.NullString
	var purged bool
	err = snap.QueryRowContext(ctx, `SELECT l.tenant_id, l.idx, l.purged, e.body FROM audit_leaves l
		LEFT JOIN audit_events e ON e.id = l.event_id WHERE l.event_id = $1`, eventID).Scan(&b.TenantID, &b.Position, &purged, &body)
	if errors.Is(err, sql.ErrNoRows) {
		var n int
		if err := snap.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_events WHERE id = $1`, eventID).Scan(&n); err != nil {
			return ProofBundle{}, fmt.Errorf("proof of %s: %w", eventID, err)
		}
		if n > 0 {
			return ProofBundle{}, ErrNotSequenced
		}
		return ProofBundle{}, ErrNotFound
	}
	if err != nil {
		return ProofBundle{}, fmt.Errorf("proof of %s: %w", eventID, err)
	}
	if !body.Valid {
		if purged {
			return ProofBundle{}, ErrPurged
		}
		return ProofBundle{}, fmt.Errorf("proof of %s: the event's row is missing (run audit verify)", eventID)
	}
	b.Event = body.String
	var size int64
	err = snap.QueryRowContext(ctx, `SELECT size, note FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY size DESC LIMIT 1`,
		b.TenantID).Scan(&size, &b.Checkpoint)
	if err != nil {
		return ProofBundle{}, fmt.Errorf("proof of %s: newest checkpoint: %w", eventID, err)
	}
	b.Proof, err = tlog.ProveRecord(size, b.Position, newHashStore(ctx, snap, b.TenantID))
	if err != nil {
		return ProofBundle{}, fmt.Errorf("proof of %s: %w", eventID, err)
	}
	return b, nil
}

// CheckProof checks a bundle with nothing but the log's verifier key: the
// checkpoint's signature, that it is the checkpoint of the event's tenant,
// that the event is the one named, and that the audit path leads from the
// event's leaf hash to the signed root. It returns the checkpoint it
// checked against.
func CheckProof(b ProofBundle, verifierKey string) (Checkpoint, error) {
	if b.Format != ProofFormat {
		return Checkpoint{}, fmt.Errorf("proof: format %q, want %q", b.Format, ProofFormat)
	}
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("proof: verifier key: %w", err)
	}
	n, err := note.Open([]byte(b.Checkpoint), note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("proof: checkpoint signature: %w", err)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("proof: %w", err)
	}
	if want := Origin(v.Name(), b.TenantID); c.Origin != want {
		return Checkpoint{}, fmt.Errorf("proof: checkpoint of %q, not of the event's tree %q", c.Origin, want)
	}
	var f bodyFields
	if err := scanFields([]byte(b.Event), &f); err != nil {
		return Checkpoint{}, fmt.Errorf("proof: event: %w", err)
	}
	if id, ok := jsonString(f.id); !ok || string(id) != b.EventID {
		return Checkpoint{}, fmt.Errorf("proof: the event's id is %s, not %q", f.id, b.EventID)
	}
	if tenant, ok := jsonString(f.tenant); !ok || string(tenant) != b.TenantID {
		return Checkpoint{}, fmt.Errorf("proof: the event's tenant is %s, not %q", f.tenant, b.TenantID)
	}
	if b.Position < 0 || b.Position >= c.Size {
		return Checkpoint{}, fmt.Errorf("proof: position %d outside a tree of %d leaves", b.Position, c.Size)
	}
	if err := tlog.CheckRecord(b.Proof, c.Size, c.Root, b.Position, tlog.RecordHash([]byte(b.Event))); err != nil {
		return Checkpoint{}, fmt.Errorf("proof: the event is not in the signed tree: %w", err)
	}
	return c, nil
}
