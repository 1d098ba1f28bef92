package audit

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

var testStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// testLog is a Log with a fake clock and a fresh signing key.
type testLog struct {
	*Log
	clock    *clock.Fake
	verifier note.Verifier
	vkey     string
}

func newTestLog(t testing.TB, db *store.DB, opts ...Option) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "zorgkluis.test/audit")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	c := clock.NewFake(testStart)
	l := New(db, c, rand.Reader, append([]Option{WithSigner(signer)}, opts...)...)
	t.Cleanup(func() { l.Close() })
	return &testLog{Log: l, clock: c, verifier: v, vkey: vkey}
}

// event returns a typical read event of a patient of a tenant.
func event(tenant, patient, user string) Event {
	return Event{
		Action: ActionRead, Outcome: OutcomeSuccess,
		TenantID: tenant, Organisation: "Huisartsenpraktijk " + tenant,
		UserID: user, UserName: "Dr. " + user, Role: "huisarts", Assurance: "hoog",
		Basis: "care-relationship", PatientID: patient,
		Resources: []string{"Observation/" + patient + "-1"},
	}
}

func mustAppend(t testing.TB, l *testLog, events ...Event) []Event {
	t.Helper()
	out, err := l.Append(context.Background(), events...)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return out
}

func mustSequence(t testing.TB, l *testLog) int {
	t.Helper()
	n, err := l.Sequence(context.Background())
	if err != nil {
		t.Fatalf("Sequence: %v", err)
	}
	return n
}

// leafBodies returns the bodies of a tenant's tree in position order.
func leafBodies(t testing.TB, db *store.DB, tenant string) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT l.idx, e.body FROM audit_leaves l JOIN audit_events e ON e.id = l.event_id
		WHERE l.tenant_id = $1 ORDER BY l.idx`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var idx int64
		var body string
		if err := rows.Scan(&idx, &body); err != nil {
			t.Fatal(err)
		}
		if idx != int64(len(out)) {
			t.Fatalf("tenant %q: position %d after %d leaves; want dense positions", tenant, idx, len(out))
		}
		out = append(out, body)
	}
	return out
}

// memTree is an independent, in-memory RFC 6962 tree for checking roots.
func memRoot(t testing.TB, bodies []string) tlog.Hash {
	t.Helper()
	var hashes []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x >= int64(len(hashes)) {
				return nil, fmt.Errorf("no hash %d", x)
			}
			out[i] = hashes[x]
		}
		return out, nil
	})
	for i, b := range bodies {
		hs, err := tlog.StoredHashes(int64(i), []byte(b), r)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
	}
	root, err := tlog.TreeHash(int64(len(bodies)), r)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// latestCheckpoint opens the newest checkpoint of a tenant with v.
func latestCheckpoint(t testing.TB, db *store.DB, v note.Verifier, tenant string) Checkpoint {
	t.Helper()
	var msg string
	if err := db.QueryRowContext(context.Background(), `SELECT note FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY size DESC LIMIT 1`, tenant).Scan(&msg); err != nil {
		t.Fatalf("checkpoint of %q: %v", tenant, err)
	}
	n, err := note.Open([]byte(msg), note.VerifierList(v))
	if err != nil {
		t.Fatalf("open checkpoint of %q: %v", tenant, err)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fillPatient stores n read events of patient (tenant t-1), one a second
// before start going back, in one transaction: faster than n Appends.
func fillPatient(t testing.TB, l *testLog, db *store.DB, patient string, n int, start time.Time) {
	t.Helper()
	ctx := context.Background()
	evs := make([]Event, n)
	for i := range evs {
		evs[i] = event("t-1", patient, fmt.Sprintf("u-%d", i%3))
		evs[i].Time = start.Add(-time.Duration(i+1) * time.Second)
	}
	rows, err := l.prepare(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Tx(ctx, func(tx *store.Tx) error { return insertRows(ctx, tx, rows, true) }); err != nil {
		t.Fatal(err)
	}
}
