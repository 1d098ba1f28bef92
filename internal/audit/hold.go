package audit

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// HoldFormat names the version of the HoldBundle layout.
const HoldFormat = "zorgkluis-audit-hold/1"

// MaxHoldYears is how long a legal hold may keep lines (LOG-6).
const MaxHoldYears = 10

// maxHoldEvents bounds one hold, so that placing it is one modest
// transaction; larger cases take several holds.
const maxHoldEvents = 10000

// ErrHoldInvalid wraps every refusal of a hold because of what was asked.
var ErrHoldInvalid = errors.New("invalid legal hold")

// Hold is a request to keep access-log lines for complaints or
// proceedings beyond their retention.
type Hold struct {
	TenantID string
	Reason   string    // the complaint or proceeding, for the register
	Until    time.Time // when the hold ends; at most MaxHoldYears ahead
	PlacedBy string    // who placed it (user id)
	EventIDs []string
}

// HoldBundle is the export made when a hold is placed: the hold and every
// held line with its inclusion proof, each checkable with CheckProof.
type HoldBundle struct {
	Format   string        `json:"format"`
	HoldID   string        `json:"holdId"`
	TenantID string        `json:"tenantId"`
	Reason   string        `json:"reason"`
	Until    time.Time     `json:"until"`
	PlacedBy string        `json:"placedBy"`
	PlacedAt time.Time     `json:"placedAt"`
	Proofs   []ProofBundle `json:"proofs"`
}

// PlaceHold registers a legal hold and returns its export. The held events
// must be the tenant's, sequenced and not purged. Exporting the lines is
// access to the log, so a log-read event per line is stored in the same
// transaction as the hold; nothing is returned unless both are durable.
func (l *Log) PlaceHold(ctx context.Context, h Hold) (HoldBundle, error) {
	now := l.clock.Now().UTC()
	ids := slices.Clone(h.EventIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	switch {
	case strings.TrimSpace(h.Reason) == "":
		return HoldBundle{}, fmt.Errorf("%w: a reason is required", ErrHoldInvalid)
	case strings.TrimSpace(h.PlacedBy) == "":
		return HoldBundle{}, fmt.Errorf("%w: who places it is required", ErrHoldInvalid)
	case !h.Until.After(now):
		return HoldBundle{}, fmt.Errorf("%w: the end date %s is not in the future", ErrHoldInvalid, h.Until.Format(time.RFC3339))
	case h.Until.After(now.AddDate(MaxHoldYears, 0, 0)):
		return HoldBundle{}, fmt.Errorf("%w: the end date %s is more than %d years ahead", ErrHoldInvalid, h.Until.Format(time.RFC3339), MaxHoldYears)
	case len(ids) == 0 || ids[0] == "":
		return HoldBundle{}, fmt.Errorf("%w: no event ids", ErrHoldInvalid)
	case len(ids) > maxHoldEvents:
		return HoldBundle{}, fmt.Errorf("%w: %d events; at most %d per hold", ErrHoldInvalid, len(ids), maxHoldEvents)
	}
	var raw [16]byte
	if _, err := io.ReadFull(l.rand, raw[:]); err != nil {
		return HoldBundle{}, fmt.Errorf("hold id: %w", err)
	}
	b := HoldBundle{Format: HoldFormat, HoldID: hex.EncodeToString(raw[:]), TenantID: h.TenantID, Reason: h.Reason,
		Until: h.Until.UTC().Truncate(time.Microsecond), PlacedBy: h.PlacedBy, PlacedAt: now.Truncate(time.Microsecond)}
	reads := make([]Event, 0, len(ids))
	for _, id := range ids {
		p, err := l.Proof(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrNotSequenced), errors.Is(err, ErrPurged):
			return HoldBundle{}, fmt.Errorf("%w: event %s: %w", ErrHoldInvalid, id, err)
		case err != nil:
			return HoldBundle{}, fmt.Errorf("hold: %w", err)
		}
		if p.TenantID != h.TenantID {
			return HoldBundle{}, fmt.Errorf("%w: event %s: %w", ErrHoldInvalid, id, ErrNotFound)
		}
		ev, err := decode(p.Event)
		if err != nil {
			return HoldBundle{}, fmt.Errorf("hold: event %s: %w", id, err)
		}
		b.Proofs = append(b.Proofs, p)
		reads = append(reads, Event{
			Action: ActionLogRead, Outcome: OutcomeSuccess, TenantID: h.TenantID, UserID: h.PlacedBy,
			Basis: "legal-hold", PatientID: ev.PatientID, Resources: []string{"AuditEvent/" + id},
			Query: "legal hold " + b.HoldID,
		})
	}
	err := l.db.Tx(ctx, func(tx *store.Tx) error {
		if err := lockHolds(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_holds (id, tenant_id, reason, until_time, placed_by, placed_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, b.HoldID, b.TenantID, b.Reason, clock.Micros(b.Until), b.PlacedBy, clock.Micros(b.PlacedAt)); err != nil {
			return fmt.Errorf("store hold: %w", err)
		}
		for start := 0; start < len(ids); start += 100 {
			part := ids[start:min(start+100, len(ids))]
			args := make([]any, 0, 2*len(part))
			for _, id := range part {
				args = append(args, b.HoldID, id)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO audit_hold_events (hold_id, event_id) VALUES `+store.Values(tx, len(part), 2), args...); err != nil {
				return fmt.Errorf("store held events: %w", err)
			}
		}
		// A purge that ran after the proofs were read must not leave a
		// hold over lines that are gone (lockHolds orders the two).
		in, inArgs := store.InList(tx, ids, 1)
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_events WHERE id IN (`+in+`)`, inArgs...).Scan(&n); err != nil {
			return fmt.Errorf("check held events: %w", err)
		}
		if n != len(ids) {
			return fmt.Errorf("%w: %d of the events were purged meanwhile", ErrHoldInvalid, len(ids)-n)
		}
		_, err := l.AppendIn(ctx, tx, reads...)
		return err
	})
	if err != nil {
		return HoldBundle{}, fmt.Errorf("place hold: %w", err)
	}
	return b, nil
}
