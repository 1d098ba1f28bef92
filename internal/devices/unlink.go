package devices

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Mine lists the devices the subject's account paired, with those still
// waiting for their wipe's acknowledgement.
func (s *Service) Mine(ctx context.Context, subj access.Subject) ([]Device, error) {
	return s.list(ctx, `WHERE d.account_id = $1 ORDER BY d.created_at`, subj.AccountID())
}

// OfTenant lists every device of the admin's organisation (the admin's
// accounts page), after checking that actor acts as its application admin.
func (s *Service) OfTenant(ctx context.Context, actor access.Subject) ([]Device, error) {
	if err := s.access.CheckActor(ctx, actor, access.RoleAppAdmin); err != nil {
		return nil, err
	}
	return s.list(ctx, `WHERE d.tenant_id = $1 ORDER BY a.display_name, d.created_at`, actor.TenantID())
}

// OfAccount lists the devices of one account of the admin's organisation.
func (s *Service) OfAccount(ctx context.Context, actor access.Subject, accountID string) ([]Device, error) {
	if err := s.access.CheckActor(ctx, actor, access.RoleAppAdmin); err != nil {
		return nil, err
	}
	return s.list(ctx, `WHERE d.account_id = $1 AND d.tenant_id = $2 ORDER BY d.created_at`, accountID, actor.TenantID())
}

func (s *Service) list(ctx context.Context, where string, args ...any) ([]Device, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+deviceColumns+` `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("devices: list: %w", err)
	}
	defer rows.Close()
	out := []Device{}
	for rows.Next() {
		d, err := scanRow(rows)
		if err != nil {
			return nil, fmt.Errorf("devices: list: %w", err)
		}
		out = append(out, d.public())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("devices: list: %w", err)
	}
	return out, nil
}

// Unlink unlinks a device without having it: its user may, and an
// application admin of its organisation. Its tokens are revoked in the same
// transaction; its next contact is answered with a wipe instruction. A
// device the actor may not unlink is ErrNotFound, like an unknown one.
func (s *Service) Unlink(ctx context.Context, actor access.Subject, deviceID string) error {
	d, err := s.device(ctx, s.db, deviceID)
	if err != nil {
		return err
	}
	switch actor.Kind() {
	case access.KindPerson, access.KindProfessional, access.KindStaff:
	default:
		return ErrNotFound // a device, an app or a system unlinks nothing
	}
	if actor.AccountID() != d.accountID {
		err := s.access.CheckActor(ctx, actor, access.RoleAppAdmin)
		if errors.Is(err, access.ErrForbidden) || (err == nil && actor.TenantID() != d.tenantID) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
	}
	if d.status == StatusUnlinked {
		return nil // waiting for the wipe already
	}
	ev := actorEvent(actor, d.id, "unlink")
	ev.TenantID = d.tenantID
	ev.Reason = "device of " + d.accountID + " unlinked by " + actor.AccountID()
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		if err := s.unlinkIn(ctx, tx, d, actor.AccountID(), reasonUnlinked); err != nil {
			return err
		}
		return s.append(ctx, tx, ev)
	})
}

// unlinkIn marks the device unlinked and revokes its tokens.
func (s *Service) unlinkIn(ctx context.Context, tx *store.Tx, d *row, by, reason string) error {
	now := clock.Micros(s.clock.Now())
	if _, err := tx.ExecContext(ctx, `UPDATE devices SET status = 'unlinked', unlinked_at = $2, unlinked_by = $3, unlink_reason = $4
		WHERE id = $1 AND status <> 'unlinked'`, d.id, now, by, reason); err != nil {
		return fmt.Errorf("devices: unlink: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE devices_tokens SET revoked_at = $2 WHERE device_id = $1 AND revoked_at IS NULL`, d.id, now); err != nil {
		return fmt.Errorf("devices: revoke tokens: %w", err)
	}
	return nil
}

// wipe returns the wipe instruction for a gone device, with a fresh nonce
// to acknowledge. A device whose account was deactivated is marked
// unlinked at its first contact (its tokens stopped working at the
// deactivation already: every look-up joins the account).
func (s *Service) wipe(ctx context.Context, d *row) error {
	reason := d.gone()
	nonce, err := s.random(32)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	w := Wipe{Instruction: "wipe", DeviceID: d.id, Nonce: nonce, Reason: reason, Expires: now.Add(WipeTTL)}
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		if d.status != StatusUnlinked {
			if err := s.unlinkIn(ctx, tx, d, "", reason); err != nil {
				return err
			}
			if err := s.append(ctx, tx, d.event("unlink", audit.OutcomeSuccess, "the account was deactivated (ID-5)")); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO devices_challenges (hash, device_id, kind, created_at, expires_at) VALUES ($1, $2, 'wipe', $3, $4)`,
			hash(nonce), d.id, clock.Micros(now), clock.Micros(w.Expires)); err != nil {
			return fmt.Errorf("devices: store wipe nonce: %w", err)
		}
		return s.append(ctx, tx, d.event("wipe-instruction", audit.OutcomeSuccess, reason))
	})
	if err != nil {
		return err
	}
	return &WipeError{Wipe: w}
}

// WipeAck is a device's signed acknowledgement that it wiped its data.
type WipeAck struct {
	DeviceID  string `json:"device_id"`
	Nonce     string `json:"nonce"`
	Signature string `json:"signature"` // over SignedMessage(false, device_id, nonce)
}

var errNonce = refuse(http.StatusBadRequest, "Acknowledgement refused", "the nonce is unknown, expired or used, or the signature does not verify: contact the server again for a new wipe instruction")

// AcknowledgeWipe takes an unlinked device's signed acknowledgement: it is
// logged and every row of the device is deleted, in one transaction. The
// device is then forgotten.
func (s *Service) AcknowledgeWipe(ctx context.Context, ack WipeAck) error {
	d, err := s.device(ctx, s.db, ack.DeviceID)
	if err != nil {
		return err
	}
	if d.gone() == "" {
		return refuse(http.StatusConflict, "Not unlinked", "the device is not unlinked: there is nothing to acknowledge")
	}
	if len(ack.Nonce) > 100 || !verify(d.publicKey, SignedMessage(false, d.id, ack.Nonce), ack.Signature) {
		return s.refused(ctx, d, "wipe-ack", "the acknowledgement's signature does not verify", errNonce)
	}
	now := clock.Micros(s.clock.Now())
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE devices_challenges SET used_at = $3 WHERE hash = $1 AND device_id = $2 AND kind = 'wipe'
			AND used_at IS NULL AND expires_at > $3`, hash(ack.Nonce), d.id, now)
		if err != nil {
			return fmt.Errorf("devices: spend wipe nonce: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errNonce
		}
		if err := s.append(ctx, tx, d.event("wipe-ack", audit.OutcomeSuccess, "the device wiped its data and is forgotten")); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM devices_tokens WHERE device_id = $1`,
			`DELETE FROM devices_challenges WHERE device_id = $1`,
			`DELETE FROM devices WHERE id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, d.id); err != nil {
				return fmt.Errorf("devices: forget: %w", err)
			}
		}
		return nil
	})
}
