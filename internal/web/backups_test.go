package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/backup"
	"github.com/zorgkluis/zorgkluis/internal/identity"
)

// runs is a BackupHistory of fixed runs (backup.History reads the table;
// its test is backup's).
type runs []backup.Run

func (r runs) Recent(_ context.Context, n int) ([]backup.Run, error) { return r[:min(n, len(r))], nil }

// The security officer sees the schedule's backups and their restore
// tests, and is warned when no backup younger than 24 hours passed its
// test; other roles cannot open the page.
//
// REQ: DP-5
func TestBackupsPage(t *testing.T) {
	var history runs
	e := newPageEnv(t, func(d *Deps) { d.Backups = &history })
	now := e.clock.Now()
	pass, fail := true, false
	history = runs{
		{Slot: "s3", Host: "replica-b", Started: now.Add(-time.Hour), Finished: now.Add(-50 * time.Minute), Backup: "zk-3.zkb", Bytes: 9000, Tested: &fail, Detail: "audit verify: root mismatch"},
		{Slot: "s2", Host: "replica-a", Started: now.Add(-7 * time.Hour), Finished: now.Add(-6 * time.Hour), Backup: "zk-2.zkb", Bytes: 8000, Tested: &pass},
	}
	tenant := e.tenant("Praktijk A")
	officer := e.login(tenant, identity.KindAdmin, access.RoleSecurityOfficer)
	admin := e.login(tenant, identity.KindAdmin, access.RoleAppAdmin)

	code, body := e.page(officer, "/security/backups", nil, false)
	if code != http.StatusOK || !strings.Contains(body, `id="backup-ok"`) || !strings.Contains(body, "zk-2.zkb") ||
		!strings.Contains(body, "geslaagd") || !strings.Contains(body, "mislukt") || !strings.Contains(body, "root mismatch") ||
		!strings.Contains(body, `href="/security/backups"`) {
		t.Fatalf("officer's page: %d %s", code, body)
	}
	// The newest good backup is older than 24 hours: a warning.
	history[1].Finished = now.Add(-25 * time.Hour)
	if code, body := e.page(officer, "/security/backups?lang=en", nil, false); code != http.StatusOK ||
		!strings.Contains(body, `id="backup-stale"`) || !strings.Contains(body, "Restore test") {
		t.Fatalf("stale backups: %d %s", code, body)
	}
	history = history[:1] // none passed
	if _, body := e.page(officer, "/security/backups", nil, false); !strings.Contains(body, "nog geen back-up die de hersteltest doorstond") {
		t.Fatalf("no good backup: %s", body)
	}
	if code, _ := e.page(admin, "/security/backups", nil, false); code != http.StatusForbidden {
		t.Errorf("application admin opens the page: %d", code)
	}
}
