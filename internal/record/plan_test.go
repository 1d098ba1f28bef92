package record

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/store"
)

// On SQLite without planner statistics (a fresh or freshly grown
// database), a patient's search and export use the patient index, not a
// walk over the tenant's resources of that type.
func TestPatientQueriesUseThePatientIndexWithoutStatistics(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "zk.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, extra := range []string{"AND r.type = $3", ""} {
		q := "EXPLAIN QUERY PLAN " + fmt.Sprintf(versionsQuery, extra)
		args := []any{"t", "p", "Observation"}[:2]
		if extra != "" {
			args = append(args, "Observation")
		}
		rows, err := db.QueryContext(ctx, q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); !strings.Contains(p, "resources_patient_v") {
			t.Errorf("plan for %q does not use the patient index: %s", extra, p)
		}
	}
}
