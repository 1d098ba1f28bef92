package web

import (
	"context"
	"net/http"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/backup"
)

// BackupHistory is the backup schedule's record of runs (backup.History).
type BackupHistory interface {
	Recent(ctx context.Context, n int) ([]backup.Run, error)
}

// backupMaxAge is DP-5's bound: at most 24 hours of data may be lost, so the
// newest restore-tested backup must be younger.
const backupMaxAge = 24 * time.Hour

type backupView struct {
	Runs   []backup.Run
	LastOK time.Time // zero: no backup has passed its restore test
	Stale  bool      // LastOK older than backupMaxAge (or none)
}

// backups shows the security officer the evidence that backups are made and
// restore-tested (DP-5): the schedule's recent runs, each with its restore
// test's result, and whether the newest good one is within 24 hours. The
// runs are the installation's, not a tenant's: they name no person.
func (s *server) backups(w http.ResponseWriter, r *http.Request, c *sessionCtx) {
	runs, err := s.d.Backups.Recent(r.Context(), 60)
	if err != nil {
		s.failed(w, r, err)
		return
	}
	v := backupView{Runs: runs}
	for _, run := range runs {
		if run.OK() {
			v.LastOK = run.Finished
			break
		}
	}
	v.Stale = v.LastOK.IsZero() || s.d.Clock.Now().Sub(v.LastOK) > backupMaxAge
	s.render(w, r, http.StatusOK, "backups", s.page(w, r, c, "sec.bk.title", v))
}
