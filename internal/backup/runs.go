package backup

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/store"
)

// Run is one slot of the schedule as backup_runs records it: the evidence
// that backups are made and restore-tested (DP-5).
type Run struct {
	Slot     string
	Host     string
	Started  time.Time
	Finished time.Time // zero: still running, or the replica stopped
	Backup   string    // empty: the backup failed
	Bytes    int64
	Tested   *bool // nil: not restore-tested
	Detail   string
}

// OK reports whether the run made a backup that passed its restore test.
func (r Run) OK() bool { return r.Backup != "" && r.Tested != nil && *r.Tested }

// History reads the schedule's runs.
type History struct{ DB *store.DB }

// Recent returns the newest n runs, newest first.
func (h History) Recent(ctx context.Context, n int) ([]Run, error) {
	rows, err := h.DB.QueryContext(ctx, `SELECT slot, host, started_at, finished_at, backup, bytes, tested_ok, detail
		FROM backup_runs ORDER BY started_at DESC LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("backup runs: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		var started int64
		var finished sql.NullInt64
		var tested sql.NullBool
		if err := rows.Scan(&r.Slot, &r.Host, &started, &finished, &r.Backup, &r.Bytes, &tested, &r.Detail); err != nil {
			return nil, fmt.Errorf("backup runs: %w", err)
		}
		r.Started = time.UnixMicro(started).UTC()
		if finished.Valid {
			r.Finished = time.UnixMicro(finished.Int64).UTC()
		}
		if tested.Valid {
			ok := tested.Bool
			r.Tested = &ok
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
