package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// appRoleGrants are the statements docs/audit-proofs.md gives for the
// role the server runs as (with the test's schema and role): everything the
// application needs, and no UPDATE, DELETE or TRUNCATE of events or of
// their tree positions.
var appRoleGrants = []string{
	`GRANT USAGE ON SCHEMA public TO zorgkluis_app`,
	`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO zorgkluis_app`,
	`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO zorgkluis_app`,
	`REVOKE INSERT, UPDATE, DELETE ON goose_db_version FROM zorgkluis_app`,
	`REVOKE UPDATE, DELETE, TRUNCATE ON audit_events, audit_leaves FROM zorgkluis_app`,
	`REVOKE UPDATE ON audit_pending, audit_checkpoints FROM zorgkluis_app`,
	`REVOKE UPDATE, DELETE, TRUNCATE ON audit_holds, audit_hold_events FROM zorgkluis_app`,
}

// TestPostgresAppRoleCannotRewriteEvents runs the log as a PostgreSQL role
// with the documented grants: appending, sequencing and verifying work,
// and every UPDATE, DELETE or TRUNCATE of an event or a tree position is
// refused by the database itself.
//
// REQ: LOG-2
func TestPostgresAppRoleCannotRewriteEvents(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.PostgresURL(t)
	owner, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	if _, err := owner.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	var b [6]byte
	rand.Read(b[:])
	role := "zk_app_" + hex.EncodeToString(b[:])
	ownerExec := func(q string) {
		t.Helper()
		if _, err := owner.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	ownerExec(`CREATE ROLE ` + role + ` NOLOGIN`)
	t.Cleanup(func() {
		owner.ExecContext(context.Background(), `DROP OWNED BY `+role)
		owner.ExecContext(context.Background(), `DROP ROLE `+role)
	})
	for _, g := range appRoleGrants {
		ownerExec(strings.NewReplacer("SCHEMA public", "SCHEMA "+schema, "zorgkluis_app", role).Replace(g))
	}

	// The application connects as the role (here: the test superuser
	// switches to it at connection start).
	q := u.Query()
	q.Set("options", "-c role="+role)
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20") // the driver reads + literally
	app, err := store.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	var current string
	if err := app.QueryRowContext(ctx, `SELECT current_user`).Scan(&current); err != nil || current != role {
		t.Fatalf("connected as %q (%v); want %s", current, err, role)
	}

	// serve migrates at start; with nothing pending that works as the role.
	if n, err := app.Migrate(ctx); err != nil || n != 0 {
		t.Fatalf("migrate as the application role: %d, %v", n, err)
	}
	l := newTestLog(t, app)
	for range 3 {
		mustAppend(t, l, event("t1", "p1", "u1"), event("t1", "p2", "u2"))
		mustSequence(t, l)
	}
	mustAppend(t, l, event("t1", "p1", "u1"))
	id := positions(t, app, "t1")[0]

	for _, stmt := range []string{
		`UPDATE audit_events SET patient_id = 'someone-else' WHERE id = $1`,
		`UPDATE audit_events SET body = body WHERE id = $1`,
		`DELETE FROM audit_events WHERE id = $1`,
		`UPDATE audit_leaves SET event_id = 'x' WHERE event_id = $1`,
		`DELETE FROM audit_leaves WHERE event_id = $1`,
	} {
		_, err := app.ExecContext(ctx, stmt, id)
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s as the application role: %v; want permission denied", stmt, err)
		}
	}
	for _, stmt := range []string{`TRUNCATE audit_events`, `TRUNCATE audit_leaves`} {
		if _, err := app.ExecContext(ctx, stmt); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s as the application role: %v; want permission denied", stmt, err)
		}
	}
	r, err := l.Verify(ctx, note.VerifierList(l.verifier), nil)
	if err != nil || !r.OK() || r.Events != 6 {
		t.Fatalf("verify as the application role: %v events=%d %v", err, r.Events, r.Damage)
	}
}
