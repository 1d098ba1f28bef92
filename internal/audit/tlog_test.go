package audit

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// The verifier builds each tree its own way (a stack of perfect subtrees, one
// pass over the events); the sequencer and the proofs use
// golang.org/x/mod/sumdb/tlog. Their leaf, node and root hashes, and the
// verifier's view of the stored interior hashes, must agree for every tree
// size, the empty tree included: RFC 6962 §2.1 defines its hash as SHA-256
// of the empty string, and both return that (tlog since it fixed its
// TreeHash(0); older versions returned 32 zero bytes).
// REQ: LOG-2
func TestVerifierTreeMatchesTlog(t *testing.T) {
	const n = 300
	var stored []tlog.Hash // tlog's stored-hash layout, as audit_hashes holds it
	r := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x >= int64(len(stored)) {
				return nil, fmt.Errorf("stored hash %d of %d", x, len(stored))
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	tr := &treeRun{verifyRun: &verifyRun{}, stored: map[groupKey][]byte{}}

	empty := sha256.Sum256(nil)
	if got, err := tlog.TreeHash(0, r); err != nil || got != empty {
		t.Fatalf("tlog.TreeHash(0) = %x, %v; RFC 6962 says %x", got, err, empty)
	}
	if got := tr.root(); got != empty {
		t.Fatalf("verifier's empty root = %x; RFC 6962 says %x", got, empty)
	}

	sha := sha256.New()
	leaves := make([]tlog.Hash, n)
	for i := range int64(n) {
		body := fmt.Appendf(nil, `{"id":"ev-%d","tenantId":"t1"}`, i)
		leafHash(sha, body, &leaves[i])
		if want := tlog.RecordHash(body); leaves[i] != want {
			t.Fatalf("leaf %d: hash %x, tlog.RecordHash %x", i, leaves[i], want)
		}
		hs, err := tlog.StoredHashes(i, body, r)
		if err != nil {
			t.Fatal(err)
		}
		for j, h := range hs {
			key := groupKey{j, (i >> uint(j)) / groupSize} // level j, node i>>j
			tr.stored[key] = append(tr.stored[key], h[:]...)
		}
		stored = append(stored, hs...)

		tr.push(leaves[i])
		want, err := tlog.TreeHash(i+1, r)
		if err != nil {
			t.Fatal(err)
		}
		if got := tr.root(); got != want {
			t.Fatalf("tree of %d leaves: verifier's root %x, tlog.TreeHash %x", i+1, got, want)
		}
	}
	if tr.badNodes != 0 {
		t.Fatalf("%d interior hashes differ from tlog's stored hashes, the first at %s", tr.badNodes, tr.firstBadNode)
	}
	if got, want := tr.nodeHash(leaves[0], leaves[1]), tlog.NodeHash(leaves[0], leaves[1]); got != want {
		t.Fatalf("node hash %x, tlog.NodeHash %x", got, want)
	}
	// Proofs (tlog) check against the verifier's root at every position.
	root := tr.root()
	for i := range int64(n) {
		p, err := tlog.ProveRecord(n, i, r)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(p, n, root, i, leaves[i]); err != nil {
			t.Fatalf("proof of leaf %d against the verifier's root: %v", i, err)
		}
	}
}

// No checkpoint of an empty tree is ever signed, so no signed root depends
// on what the empty tree's hash is: the sequencer signs only when it adds
// leaves.
// REQ: LOG-2
func TestNoCheckpointOfEmptyTree(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		l := newTestLog(t, db)
		count := func(query string) int {
			t.Helper()
			var n int
			if err := db.QueryRowContext(context.Background(), query).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := mustSequence(t, l); n != 0 {
			t.Fatalf("sequenced %d events of an empty log", n)
		}
		if n := count(`SELECT COUNT(*) FROM audit_checkpoints`); n != 0 {
			t.Fatalf("%d checkpoints of an empty log", n)
		}
		mustAppend(t, l, event("t1", "p1", "u1"))
		mustSequence(t, l)
		mustSequence(t, l) // nothing new: no second checkpoint
		if n := count(`SELECT COUNT(*) FROM audit_checkpoints WHERE size = 0`); n != 0 {
			t.Fatalf("%d checkpoints of size 0", n)
		}
		if n := count(`SELECT COUNT(*) FROM audit_checkpoints WHERE size = 1`); n != 1 {
			t.Fatalf("%d checkpoints of size 1, want 1", n)
		}
		if r := verifyLog(t, l); !r.OK() {
			t.Fatalf("verify: %+v", r.Damage)
		}
	})
}
