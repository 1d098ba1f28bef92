package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
	"github.com/zorgkluis/zorgkluis/internal/store/storetest"
	"github.com/zorgkluis/zorgkluis/internal/synth"
	"github.com/zorgkluis/zorgkluis/internal/testkit"
)

// fixture is a small installation with signed checkpoints and backup keys.
type fixture struct {
	kit      *testkit.Kit
	signed   *audit.Log // the same log with the checkpoint signer, as serve runs it
	verifier note.Verifier
	keys     Keys
	st       Dir
	cred     synth.Credentials
}

func newFixture(t *testing.T, db *store.DB, patients int) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	f := &fixture{kit: testkit.New(t, db), st: Dir(filepath.Join(dir, "backups"))}
	signer, vkey, err := audit.LoadOrCreateSigner(filepath.Join(dir, "audit.key"), "zorgkluis-audit")
	if err != nil {
		t.Fatal(err)
	}
	if f.verifier, err = note.NewVerifier(vkey); err != nil {
		t.Fatal(err)
	}
	f.signed = audit.New(db, clock.System{}, rand.Reader, audit.WithSigner(signer))
	var created bool
	f.keys, created, err = LoadKeys(filepath.Join(dir, IdentityFile), filepath.Join(dir, RecipientsFile))
	if err != nil || !created || len(f.keys.Identities) != 1 {
		t.Fatalf("backup keys: created %v, %d identities, %v", created, len(f.keys.Identities), err)
	}
	f.cred = f.generate(t, ctx, 1, patients)
	if _, err := f.signed.Sequence(ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) generate(t *testing.T, ctx context.Context, seed uint64, patients int) synth.Credentials {
	t.Helper()
	k := f.kit
	cred, err := synth.Generate(ctx, synth.Deps{IDs: k.IDs, Authn: k.Authn, Access: k.Access, Records: k.Records, Keys: k.Keys,
		Clock: k.Clock, Rand: rand.Reader}, synth.Options{Seed: seed, Patients: patients, ResourcesPerPatient: 2, Professionals: 2, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func (f *fixture) open(t *testing.T, name string) io.ReadCloser {
	t.Helper()
	r, err := f.st.Open(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// emptyLike returns a new, empty database of db's engine.
func emptyLike(t *testing.T, db *store.DB) *store.DB {
	t.Helper()
	url := filepath.Join(t.TempDir(), "restored.db")
	if db.Dialect() == store.Postgres {
		url = storetest.PostgresURL(t)
	}
	r, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// dump is every row of every table as its backup encoding, sorted.
func dump(t *testing.T, db *store.DB) map[string][]string {
	t.Helper()
	ctx := context.Background()
	snap, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	tables, err := store.Tables(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	enc := newEncoder(io.Discard)
	for _, tb := range tables {
		var names []string
		for _, c := range tb.Columns {
			names = append(names, c.Name)
		}
		rows, err := snap.QueryContext(ctx, "SELECT "+strings.Join(names, ", ")+" FROM "+tb.Name)
		if err != nil {
			t.Fatal(err)
		}
		dest := scanTargets(tb.Columns)
		vals := make([]any, len(dest))
		lines := []string{}
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			for i, d := range dest {
				vals[i] = scanned(d)
			}
			if err := enc.row(vals); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, string(enc.buf))
		}
		rows.Close()
		slices.Sort(lines)
		out[tb.Name] = lines
	}
	return out
}

func verifyLog(t *testing.T, db *store.DB, v note.Verifier) audit.Report {
	t.Helper()
	r, err := audit.New(db, clock.System{}, rand.Reader).Verify(context.Background(), note.VerifierList(v), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("audit verify of the restored database: %+v", r.Damage)
	}
	return r
}

// REQ: DP-5
// A backup taken while writers and the sequencer run restores into an empty
// database as exactly what the snapshot held: the restored database backs
// up to the same content, its access log verifies against its signed
// checkpoints, and every restored row is in the live database.
func TestBackupRestoreUnderLoad(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, 12)

		lctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // the write load: a second organisation being filled
			defer wg.Done()
			k := f.kit
			_, _ = synth.Generate(lctx, synth.Deps{IDs: k.IDs, Authn: k.Authn, Access: k.Access, Records: k.Records, Keys: k.Keys,
				Clock: k.Clock, Rand: rand.Reader}, synth.Options{Seed: 2, Patients: 200, ResourcesPerPatient: 2, Professionals: 2, Workers: 2})
		}()
		go func() {
			defer wg.Done()
			_ = f.signed.RunSequencer(lctx, 20*time.Millisecond)
		}()
		time.Sleep(100 * time.Millisecond) // let the load start; the backup is bounded, not timed
		m, err := Create(ctx, db, f.st, f.keys, clock.System{}, nil)
		stop()
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if m.Tables["resources"] == 0 || m.Tables["audit_events"] == 0 || len(m.Trees) == 0 || m.Bytes == 0 || len(m.SHA256) != 64 {
			t.Fatalf("manifest: %+v", m)
		}
		outer, err := ReadManifest(ctx, f.st, m.Name)
		if err != nil || outer.SHA256 != m.SHA256 || outer.Rows() != m.Rows() {
			t.Fatalf("manifest beside the backup: %+v, %v", outer, err)
		}
		b, _ := os.ReadFile(filepath.Join(string(f.st), m.Name))
		if bytes.Contains(b, []byte("resourceType")) || bytes.Contains(b, []byte(f.cred.TenantID)) {
			t.Fatal("the backup file holds readable content")
		}

		// Wipe: a new, empty database stands in for the lost one.
		restored := emptyLike(t, db)
		got, err := Restore(ctx, f.open(t, m.Name), f.keys.Identities, restored, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Rows() != m.Rows() {
			t.Fatalf("restored %d rows, backup has %d", got.Rows(), m.Rows())
		}
		rep := verifyLog(t, restored, f.verifier)
		for _, h := range m.Trees {
			i := slices.IndexFunc(rep.Trees, func(tr audit.TreeReport) bool { return tr.TenantID == h.TenantID })
			if i < 0 || rep.Trees[i].Leaves < h.Size || rep.Trees[i].Checkpoints == 0 {
				t.Fatalf("tree %q: restored %+v, backup head %+v", h.TenantID, rep.Trees, h)
			}
		}

		// Identical data: the restored database backs up to the same rows.
		again := Dir(t.TempDir())
		m2, err := Create(ctx, restored, again, f.keys, clock.System{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		r2, _ := again.Open(ctx, m2.Name)
		defer r2.Close()
		round := emptyLike(t, db)
		if _, err := Restore(ctx, r2, f.keys.Identities, round, nil); err != nil {
			t.Fatal(err)
		}
		want, have, live := dump(t, restored), dump(t, round), dump(t, db)
		for table, rows := range want {
			if !slices.Equal(rows, have[table]) {
				t.Fatalf("table %s: %d rows after the second round, %d before", table, len(have[table]), len(rows))
			}
			if int64(len(rows)) != m.Tables[table] {
				t.Fatalf("table %s: %d rows restored, manifest %d", table, len(rows), m.Tables[table])
			}
		}
		// Rows never changed after writing are in the live database as restored.
		for _, table := range []string{"resources", "audit_events", "patients", "tenants"} {
			for _, r := range want[table] {
				if _, ok := slices.BinarySearch(live[table], r); !ok {
					t.Fatalf("table %s: restored row not in the live database: %.200s", table, r)
				}
			}
		}
		// The live database has moved on; a second restore into it is refused.
		if _, err := Restore(ctx, f.open(t, m.Name), f.keys.Identities, db, nil); !errors.Is(err, ErrNotEmpty) {
			t.Fatalf("restore into a database with data: %v, want ErrNotEmpty", err)
		}
	})
}

// REQ: DP-5
// A corrupted or cut backup and a wrong key are refused with a clear error,
// and the target database stays empty.
func TestRestoreRefusesDamage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, 3)
		m, err := Create(ctx, db, f.st, f.keys, clock.System{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		good, err := os.ReadFile(filepath.Join(string(f.st), m.Name))
		if err != nil {
			t.Fatal(err)
		}
		flipped := slices.Clone(good)
		flipped[len(flipped)/2] ^= 0x01
		other, _ := age.GenerateX25519Identity()
		cases := []struct {
			name string
			data []byte
			ids  []age.Identity
			want error
		}{
			{"corrupted", flipped, f.keys.Identities, ErrCorrupt},
			{"truncated", good[:len(good)*2/3], f.keys.Identities, ErrCorrupt},
			{"truncated at a chunk boundary", good[:len(good)-17], f.keys.Identities, ErrCorrupt},
			{"wrong key", good, []age.Identity{other}, ErrWrongKey},
		}
		for _, c := range cases {
			target := emptyLike(t, db)
			_, err := Restore(ctx, bytes.NewReader(c.data), c.ids, target, nil)
			if !errors.Is(err, c.want) {
				t.Fatalf("%s: %v, want %v", c.name, err, c.want)
			}
			if err := requireEmpty(ctx, target); err != nil {
				t.Fatalf("%s: the failed restore left rows: %v", c.name, err)
			}
			t.Logf("%s: %v", c.name, err)
		}
	})
}
