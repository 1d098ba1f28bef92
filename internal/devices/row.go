package devices

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// row is a device as stored, with its account's state and name.
type row struct {
	id, tenantID, accountID, accountName, username string
	role                                           access.Role
	assurance                                      access.Level
	onBehalfOf, name, status, pinHash              string
	publicKey                                      []byte
	pinFailures                                    int
	created, lastActive                            time.Time
	unlinkedAt                                     *time.Time
	unlinkReason                                   string
	accountActive                                  bool
}

// deviceColumns reads a device with its account in one round trip, so
// that a deactivated account (ID-5) is seen on every look-up.
const deviceColumns = `d.id, d.tenant_id, d.account_id, COALESCE(a.display_name, ''), COALESCE(a.username, ''), d.role, d.assurance,
	d.on_behalf_of, d.name, d.status, d.pin_hash, d.public_key, d.pin_failures, d.created_at, d.last_active_at, d.unlinked_at,
	d.unlink_reason, COALESCE(a.status, '')
	FROM devices d LEFT JOIN accounts a ON a.id = d.account_id`

// scanRow reads deviceColumns, after the extra columns a query puts first.
func scanRow(sc interface{ Scan(...any) error }, extra ...any) (*row, error) {
	var d row
	var role, accStatus string
	var level int64
	var created, active int64
	var unlinked sql.NullInt64
	err := sc.Scan(append(extra, &d.id, &d.tenantID, &d.accountID, &d.accountName, &d.username, &role, &level, &d.onBehalfOf, &d.name, &d.status,
		&d.pinHash, &d.publicKey, &d.pinFailures, &created, &active, &unlinked, &d.unlinkReason, &accStatus)...)
	if err != nil {
		return nil, err
	}
	d.role, d.assurance = access.Role(role), access.Level(level)
	d.created, d.lastActive = clock.FromMicros(created), clock.FromMicros(active)
	if unlinked.Valid {
		t := clock.FromMicros(unlinked.Int64)
		d.unlinkedAt = &t
	}
	d.accountActive = accStatus == "active"
	return &d, nil
}

// device reads one device; a device that does not exist is ErrNotFound.
func (s *Service) device(ctx context.Context, q store.Querier, id string) (*row, error) {
	if id == "" || len(id) > 64 {
		return nil, ErrNotFound
	}
	d, err := scanRow(q.QueryRowContext(ctx, `SELECT `+deviceColumns+` WHERE d.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("devices: read device: %w", err)
	}
	return d, nil
}

// gone reports why a device must wipe: unlinked, or its account is no
// longer active; "" while it may still work.
func (d *row) gone() string {
	switch {
	case d.status == StatusUnlinked:
		return d.unlinkReason
	case !d.accountActive:
		return reasonDeactivated
	}
	return ""
}

const (
	reasonUnlinked    = "unlinked"
	reasonDeactivated = "account-deactivated"
)

// pinDue reports whether the device was idle long enough to need its PIN.
func (d *row) pinDue(now time.Time) bool { return now.Sub(d.lastActive) >= PINIdle }

// Device is a paired device as its user and an admin see it.
type Device struct {
	ID          string     `json:"id"`
	AccountID   string     `json:"account_id"`
	AccountName string     `json:"account_name"`
	Username    string     `json:"username"`
	Name        string     `json:"name"`
	Status      string     `json:"status"` // active, locked, unlinked (waiting for the wipe's acknowledgement)
	Created     time.Time  `json:"created_at"`
	LastActive  time.Time  `json:"last_active_at"`
	Unlinked    *time.Time `json:"unlinked_at,omitempty"`
}

func (d *row) public() Device {
	st := d.status
	if d.gone() != "" {
		st = StatusUnlinked
	}
	return Device{ID: d.id, AccountID: d.accountID, AccountName: d.accountName, Username: d.username, Name: d.name, Status: st,
		Created: d.created, LastActive: d.lastActive, Unlinked: d.unlinkedAt}
}
