package change

import (
	"context"
	"testing"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// REQ: GOV-1 — the role definitions, right requests and CA requests
// pending when migration 01500 runs become change requests with the same
// id, the account receiving a right as its subject, expiring 7 days after
// they were proposed; decided ones do not.
func TestMigrationCarriesPendingRequests(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.MigrateTo(ctx, 1400); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			`INSERT INTO tenants (id, name, created_at) VALUES ('t1', 'Praktijk', 1)`,
			`INSERT INTO accounts (id, tenant_id, kind, username, display_name, status, registration_method, created_at) VALUES ('acc-1', 't1', 'professional', 'jansen', 'Jansen', 'active', 3, 1)`,
			`INSERT INTO access_role_defs (id, tenant_id, name, base, actions, categories, status, proposed_by, proposed_at) VALUES ('rd-1', 't1', 'dietitian', 'professional', 'read', 'clinical', 'pending', 'acc-a', 1780000000000000)`,
			`INSERT INTO access_role_defs (id, tenant_id, name, base, actions, categories, status, proposed_by, proposed_at) VALUES ('rd-2', 't1', 'old', 'professional', 'read', 'clinical', 'approved', 'acc-a', 1)`,
			`INSERT INTO access_right_requests (id, tenant_id, account_id, role, privileged, reason, requested_by, requested_at) VALUES ('rr-1', 't1', 'acc-1', 'assistant', FALSE, 'cover', 'acc-a', 1780000000000000)`,
			`INSERT INTO pki_requests (id, tenant_id, kind, detail, status, proposed_by, proposed_at) VALUES ('pkr-1', 't1', 'intermediate', 'null', 'pending', 'os:root', 1780000000000000)`,
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if err := db.MigrateTo(ctx, 1500); err != nil {
			t.Fatal(err)
		}
		rows, err := db.QueryContext(ctx, `SELECT `+cols+` FROM change_requests ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		want := map[string]string{"pkr-1": "pki.intermediate", "rd-1": "access.role", "rr-1": "access.right"}
		n := 0
		for rows.Next() {
			r, err := scan(rows)
			if err != nil {
				t.Fatal(err)
			}
			n++
			if want[r.ID] != r.Kind || r.Status != Pending || r.TenantID != "t1" || r.ExpiresAt.Sub(r.ProposedAt) != DefaultExpiry ||
				(r.Kind == "access.right") != (r.SubjectID == "acc-1") || r.Summary == "" {
				t.Errorf("carried over: %+v", r)
			}
		}
		if n != len(want) {
			t.Fatalf("%d requests carried over, want %d", n, len(want))
		}
	})
}
