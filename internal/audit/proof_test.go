package audit

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
)

// A proof is exported as JSON, the database closed, and the proof checked
// with nothing but the JSON and the public key.
// REQ: LOG-2
func TestProofCheckedOfflineWithPublicKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := newTestLog(t, db)
		var all []Event
		for i := range 37 {
			all = append(all, mustAppend(t, l, event("t1", "p1", "u1"))...)
			if i%10 == 0 {
				mustSequence(t, l)
			}
		}
		mustAppend(t, l, event("t2", "p1", "u1"))
		mustSequence(t, l)
		var exported [][]byte
		for _, e := range []Event{all[0], all[17], all[36]} {
			b, err := l.Proof(ctx, e.ID)
			if err != nil {
				t.Fatalf("Proof(%s): %v", e.ID, err)
			}
			j, err := json.MarshalIndent(b, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			exported = append(exported, j)
		}
		vkey := l.vkey
		l.Close()
		db.Close()

		for _, j := range exported {
			var b ProofBundle
			if err := json.Unmarshal(j, &b); err != nil {
				t.Fatal(err)
			}
			c, err := CheckProof(b, vkey)
			if err != nil {
				t.Fatalf("CheckProof: %v\n%s", err, j)
			}
			if c.Size != 37 {
				t.Fatalf("checked against size %d; want the newest checkpoint, 37", c.Size)
			}
		}
	})
}

// REQ: LOG-2
func TestCheckProofRejectsForgeries(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := context.Background()
	l := newTestLog(t, db)
	var evs []Event
	for range 5 {
		evs = append(evs, mustAppend(t, l, event("t1", "p1", "u1"))...)
	}
	mustAppend(t, l, event("t2", "p1", "u1"))
	mustSequence(t, l)
	good, err := l.Proof(ctx, evs[2].ID)
	if err != nil {
		t.Fatal(err)
	}
	other, err := l.Proof(ctx, evs[3].ID)
	if err != nil {
		t.Fatal(err)
	}
	t2 := positions(t, db, "t2")
	otherTree, err := l.Proof(ctx, t2[0])
	if err != nil {
		t.Fatal(err)
	}
	stranger := newTestLog(t, storetest.SQLite(t))
	cases := []struct {
		name   string
		mutate func(b *ProofBundle)
		key    string
	}{
		{"edited event", func(b *ProofBundle) { b.Event = strings.Replace(b.Event, `"p1"`, `"p2"`, 1) }, ""},
		{"other event's body", func(b *ProofBundle) { b.Event = other.Event }, ""},
		{"wrong position", func(b *ProofBundle) { b.Position = (good.Position + 1) % 5 }, ""}, // never the real one
		{"position beyond tree", func(b *ProofBundle) { b.Position = 99 }, ""},
		{"damaged path", func(b *ProofBundle) { b.Proof[0] = tlog.Hash{1} }, ""},
		{"short path", func(b *ProofBundle) { b.Proof = b.Proof[1:] }, ""},
		{"other tree's checkpoint", func(b *ProofBundle) { b.Checkpoint = otherTree.Checkpoint }, ""},
		{"edited checkpoint", func(b *ProofBundle) { b.Checkpoint = strings.Replace(b.Checkpoint, "\n5\n", "\n6\n", 1) }, ""},
		{"other tenant claimed", func(b *ProofBundle) { b.TenantID = "t2" }, ""},
		{"other id claimed", func(b *ProofBundle) { b.EventID = evs[1].ID }, ""},
		{"unknown format", func(b *ProofBundle) { b.Format = "v0" }, ""},
		{"stranger's key", func(b *ProofBundle) {}, stranger.vkey},
	}
	if _, err := CheckProof(good, l.vkey); err != nil {
		t.Fatalf("good proof: %v", err)
	}
	for _, c := range cases {
		b := good
		b.Proof = append(tlog.RecordProof(nil), good.Proof...)
		c.mutate(&b)
		key := l.vkey
		if c.key != "" {
			key = c.key
		}
		if _, err := CheckProof(b, key); err == nil {
			t.Errorf("%s: CheckProof accepted it", c.name)
		}
	}
}

func TestProofOfUnsequencedOrUnknownEvent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := newTestLog(t, db)
		e := mustAppend(t, l, event("t1", "p1", "u1"))[0]
		if _, err := l.Proof(ctx, e.ID); !errors.Is(err, ErrNotSequenced) {
			t.Fatalf("Proof before sequencing = %v; want ErrNotSequenced", err)
		}
		if _, err := l.Proof(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Proof of unknown = %v; want ErrNotFound", err)
		}
	})
}
