package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"hash"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/store"
)

// DamageKind names what Verify found wrong.
type DamageKind string

const (
	DamageEdited     DamageKind = "edited"           // the body differs from what was sequenced at its position
	DamageColumn     DamageKind = "column-edited"    // an indexed column differs from the body (e.g. patient_id changed to hide an event)
	DamageDeleted    DamageKind = "deleted"          // a sequenced event's row is gone and it was not purged
	DamageReordered  DamageKind = "reordered"        // an event's content sits at another position than where it was sequenced
	DamageInserted   DamageKind = "inserted"         // an event row that is neither in its tree nor queued for it
	DamagePosition   DamageKind = "position-missing" // a tree position has no leaf row
	DamageUncovered  DamageKind = "uncovered-leaf"   // a leaf beyond the newest checkpoint; the sequencer writes both together
	DamageCheckpoint DamageKind = "checkpoint"       // a checkpoint's signature, text or root does not hold
	DamageHashes     DamageKind = "stored-hashes"    // stored tree hashes differ from the recomputed tree (proofs would fail)
	DamagePurge      DamageKind = "purged-early"     // an event marked purged that cannot have reached its retention
	DamageQueue      DamageKind = "queue"            // a queued event whose row is missing
)

// Damage is one finding of Verify.
type Damage struct {
	Kind     DamageKind `json:"kind"`
	TenantID string     `json:"tenantId"`
	EventID  string     `json:"eventId,omitempty"`
	Position int64      `json:"position"` // -1 when the finding has no tree position
	Detail   string     `json:"detail"`
}

func (d Damage) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: tree %q", d.Kind, d.TenantID)
	if d.Position >= 0 {
		fmt.Fprintf(&b, " position %d", d.Position)
	}
	if d.EventID != "" {
		fmt.Fprintf(&b, " event %s", d.EventID)
	}
	return b.String() + ": " + d.Detail
}

// TreeReport summarises one tenant's tree.
type TreeReport struct {
	TenantID    string    `json:"tenantId"`
	Leaves      int64     `json:"leaves"`      // positions checked
	Purged      int64     `json:"purged"`      // of which bodies removed by retention
	Pending     int64     `json:"pending"`     // events stored but not yet sequenced
	Checkpoints int       `json:"checkpoints"` // signed checkpoints checked
	Root        tlog.Hash `json:"root"`        // recomputed root over all leaves
}

// Report is the result of Verify: OK when Damage is empty.
type Report struct {
	Trees     []TreeReport `json:"trees"`
	Events    int64        `json:"events"`
	Damage    []Damage     `json:"damage"`
	Truncated int          `json:"truncated"` // findings left out beyond maxDamage
}

// OK reports whether nothing was found wrong.
func (r Report) OK() bool { return len(r.Damage) == 0 && r.Truncated == 0 }

const (
	maxDamage   = 10000
	verifyChunk = 1 << 16 // leaves per query; a multiple of groupSize
	// purgeFloor is how old (by the checkpoint that first covered it) an
	// event must at least be before Verify accepts it as purged. It is just
	// under the shortest retention any log kind may have.
	purgeFloor = MinTechnicalRetention - 2*24*time.Hour
)

// Verify recomputes every tenant's tree from the stored events and checks
// every stored checkpoint's signature (against verifiers) and root, every
// stored tree hash, and every indexed column against its event's body. It
// names each edited, deleted, reordered or inserted event (LOG-2). progress,
// when not nil, is called after each block of events with the number of
// leaves done and the total.
//
// Verify reads one consistent snapshot, so it can run beside a live server.
// An error means Verify could not finish; damage is in the Report.
func (l *Log) Verify(ctx context.Context, verifiers note.Verifiers, progress func(done, total int)) (Report, error) {
	snap, err := l.db.Snapshot(ctx)
	if err != nil {
		return Report{}, err
	}
	defer snap.Close()
	v := &verifyRun{ctx: ctx, snap: snap, verifiers: verifiers, now: l.clock.Now(), progress: progress}
	tenants, err := v.tenants()
	if err != nil {
		return Report{}, err
	}
	var total int64
	if err := snap.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_leaves`).Scan(&total); err != nil {
		return Report{}, fmt.Errorf("count leaves: %w", err)
	}
	v.total = int(total)
	for _, t := range tenants {
		tr, err := v.tree(t)
		if err != nil {
			return v.report, fmt.Errorf("verify tree %q: %w", t, err)
		}
		v.report.Trees = append(v.report.Trees, tr)
		v.report.Events += tr.Leaves
	}
	return v.report, nil
}

type verifyRun struct {
	ctx       context.Context
	snap      *store.Snapshot
	verifiers note.Verifiers
	now       time.Time
	progress  func(done, total int)
	done      int
	total     int
	report    Report
	buf       [1 + 2*tlog.HashSize]byte
}

func (v *verifyRun) damage(d Damage) {
	if len(v.report.Damage) >= maxDamage {
		v.report.Truncated++
		return
	}
	v.report.Damage = append(v.report.Damage, d)
}

// tenants lists every tenant that has events, leaves, checkpoints or queued
// events. The recursive query walks the tenant index one distinct value at a
// time instead of reading every row.
func (v *verifyRun) tenants() ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, table := range []string{"audit_events", "audit_leaves", "audit_checkpoints", "audit_pending"} {
		rows, err := v.snap.QueryContext(v.ctx, `WITH RECURSIVE t(id) AS (
			SELECT MIN(tenant_id) FROM `+table+`
			UNION ALL
			SELECT (SELECT MIN(x.tenant_id) FROM `+table+` x WHERE x.tenant_id > t.id) FROM t WHERE t.id IS NOT NULL
		) SELECT id FROM t WHERE id IS NOT NULL`)
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		for rows.Next() {
			var t string
			if err := rows.Scan(&t); err != nil {
				rows.Close()
				return nil, fmt.Errorf("list tenants: %w", err)
			}
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
	}
	slices.Sort(out)
	return out, nil
}

type checkedCheckpoint struct {
	size   int64
	root   tlog.Hash
	time   time.Time
	failed bool // recomputed root differs
}

// treeRun is the state of verifying one tenant's tree.
type treeRun struct {
	*verifyRun
	tenant string
	cps    []checkedCheckpoint // valid signed checkpoints, by size
	next   int                 // first checkpoint not yet reached

	// The tree so far as a stack of perfect subtrees, largest first.
	stack  []tlog.Hash
	levels []int
	n      int64

	stored       map[groupKey][]byte // stored hashes of the current chunk
	mismatches   []mismatch
	badNodes     int // interior stored hashes that differ
	firstBadNode string
	present      int64 // leaves whose event row exists in this tenant
}

type mismatch struct {
	pos        int64
	eventID    string
	got, store tlog.Hash
}

func (v *verifyRun) tree(tenant string) (TreeReport, error) {
	t := &treeRun{verifyRun: v, tenant: tenant}
	tr := TreeReport{TenantID: tenant}
	if err := t.loadCheckpoints(); err != nil {
		return tr, err
	}
	tr.Checkpoints = len(t.cps)
	// One goroutine reads the next chunk from the snapshot while this one
	// hashes the current chunk (in parallel) and builds the tree.
	ctx, cancel := context.WithCancel(t.ctx)
	chunks, free := make(chan *chunk), make(chan *chunk, 2)
	free <- newChunk()
	free <- newChunk()
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(chunks)
		t.readChunks(ctx, chunks, free)
	}()
	stop := func() { cancel(); <-readDone }
	var purged []int64
	for c := range chunks {
		if c.err != nil {
			stop()
			return tr, c.err
		}
		t.stored = c.stored
		c.hash()
		p, err := t.leaves(c)
		purged = append(purged, p...)
		k := len(c.leaves)
		free <- c
		if err != nil {
			stop()
			return tr, err
		}
		v.done += k
		if v.progress != nil && k > 0 {
			v.progress(v.done, v.total)
		}
	}
	stop()
	tr.Leaves, tr.Purged, tr.Root = t.n, int64(len(purged)), t.root()
	t.classifyMismatches()
	if t.badNodes > 0 && len(t.mismatches) == 0 {
		// The leaves are intact, so the stored interior hashes were changed:
		// proofs served from them would not check.
		t.damage(Damage{Kind: DamageHashes, TenantID: tenant, Position: -1,
			Detail: fmt.Sprintf("%d stored interior hashes differ from the recomputed tree, the first at node %s", t.badNodes, t.firstBadNode)})
	}
	t.checkPurged(purged)
	// Checkpoints that claim more leaves than exist: leaves were removed
	// from the end.
	for ; t.next < len(t.cps); t.next++ {
		t.damage(Damage{Kind: DamageCheckpoint, TenantID: tenant, Position: -1,
			Detail: fmt.Sprintf("checkpoint of size %d, but the tree has only %d leaves", t.cps[t.next].size, t.n)})
	}
	if len(t.cps) > 0 && t.n > t.cps[len(t.cps)-1].size {
		newest := t.cps[len(t.cps)-1].size
		t.damage(Damage{Kind: DamageUncovered, TenantID: tenant, Position: newest,
			Detail: fmt.Sprintf("%d leaves beyond the newest checkpoint (size %d)", t.n-newest, newest)})
	} else if len(t.cps) == 0 && t.n > 0 {
		t.damage(Damage{Kind: DamageUncovered, TenantID: tenant, Position: 0,
			Detail: fmt.Sprintf("%d leaves and no valid checkpoint", t.n)})
	}
	pending, err := t.checkUnsequenced()
	tr.Pending = pending
	return tr, err
}

func (t *treeRun) loadCheckpoints() error {
	rows, err := t.snap.QueryContext(t.ctx, `SELECT size, root, note FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY size`, t.tenant)
	if err != nil {
		return fmt.Errorf("read checkpoints: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var size int64
		var root []byte
		var msg string
		if err := rows.Scan(&size, &root, &msg); err != nil {
			return fmt.Errorf("read checkpoints: %w", err)
		}
		bad := func(format string, args ...any) {
			t.damage(Damage{Kind: DamageCheckpoint, TenantID: t.tenant, Position: -1,
				Detail: fmt.Sprintf("checkpoint of size %d: ", size) + fmt.Sprintf(format, args...)})
		}
		n, err := note.Open([]byte(msg), t.verifiers)
		if err != nil {
			bad("signature does not verify: %v", err)
			continue
		}
		c, err := ParseCheckpoint(n.Text)
		if err != nil {
			bad("%v", err)
			continue
		}
		if want := Origin(n.Sigs[0].Name, t.tenant); c.Origin != want {
			bad("origin %q, want %q (a checkpoint of another tree)", c.Origin, want)
			continue
		}
		if c.Size != size || !bytes.Equal(c.Root[:], root) {
			bad("signed text says size %d root %s; the row says size %d", c.Size, c.Root, size)
			continue
		}
		t.cps = append(t.cps, checkedCheckpoint{size: c.Size, root: c.Root, time: c.Time})
	}
	return rows.Err()
}

// loadStored reads the stored hashes of the nodes that leaves lo..hi-1
// complete: at level k, nodes ((lo+1)>>k)-1 .. (hi>>k)-1.
func (t *treeRun) loadStored(ctx context.Context, stored map[groupKey][]byte, lo, hi int64) error {
	var where []string
	args := []any{t.tenant}
	for k := 0; hi>>uint(k) > 0; k++ {
		first := max((lo+1)>>uint(k)-1, 0) / groupSize
		last := max(hi>>uint(k)-1, 0) / groupSize
		args = append(args, int64(k), first, last)
		n := len(args)
		where = append(where, fmt.Sprintf("(level = $%d AND idx >= $%d AND idx <= $%d)", n-2, n-1, n))
	}
	if len(where) == 0 {
		return nil
	}
	rows, err := t.snap.QueryContext(ctx, `SELECT level, idx, hashes FROM audit_hashes WHERE tenant_id = $1 AND (`+strings.Join(where, " OR ")+`)`, args...)
	if err != nil {
		return fmt.Errorf("read stored hashes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var level, idx int64
		var h []byte
		if err := rows.Scan(&level, &idx, &h); err != nil {
			return fmt.Errorf("read stored hashes: %w", err)
		}
		stored[groupKey{int(level), idx}] = h
	}
	return rows.Err()
}

func (t *treeRun) storedHash(level int, n int64) (tlog.Hash, bool) {
	g := t.stored[groupKey{level, n / groupSize}]
	off := int(n%groupSize) * tlog.HashSize
	if off+tlog.HashSize > len(g) {
		return tlog.Hash{}, false
	}
	return tlog.Hash(g[off : off+tlog.HashSize]), true
}

// leaves checks the positions of chunk c, whose leaves are hashed, and
// returns the purged positions.
func (t *treeRun) leaves(c *chunk) ([]int64, error) {
	var purged []int64
	for i := range c.leaves {
		l := &c.leaves[i]
		idx := l.idx
		for t.n < idx { // positions without a leaf row
			h, ok := t.storedHash(0, t.n)
			t.damage(Damage{Kind: DamagePosition, TenantID: t.tenant, Position: t.n,
				Detail: "no leaf row at this position (deleted from audit_leaves)"})
			if !ok {
				h = tlog.Hash{}
			}
			t.push(h)
		}
		if idx < t.n {
			return purged, fmt.Errorf("leaf rows out of order at %d", idx)
		}
		stored, haveStored := t.storedHash(0, idx)
		var h tlog.Hash
		switch {
		case l.ev < 0 && l.purged:
			purged = append(purged, idx)
			h = stored
			if !haveStored {
				t.damage(Damage{Kind: DamageHashes, TenantID: t.tenant, EventID: l.id, Position: idx,
					Detail: "purged event without a stored leaf hash"})
			}
		case l.ev < 0:
			t.damage(Damage{Kind: DamageDeleted, TenantID: t.tenant, EventID: l.id, Position: idx,
				Detail: "the event's row is gone from audit_events"})
			h = stored
		default:
			h = l.h
			if !haveStored || h != stored {
				t.mismatches = append(t.mismatches, mismatch{pos: idx, eventID: l.id, got: h, store: stored})
			}
			if string(c.events[l.ev].tenant) == t.tenant {
				t.present++
			}
			if l.fieldErr != nil {
				t.damage(Damage{Kind: DamageEdited, TenantID: t.tenant, EventID: l.id, Position: idx, Detail: l.fieldErr.Error()})
			} else if l.cols != "" {
				t.damage(Damage{Kind: DamageColumn, TenantID: t.tenant, EventID: l.id, Position: idx,
					Detail: "column(s) " + l.cols + " differ from the event body"})
			}
		}
		t.push(h)
	}
	return purged, nil
}

func (t *treeRun) nodeHash(left, right tlog.Hash) tlog.Hash {
	t.buf[0] = 1
	copy(t.buf[1:], left[:])
	copy(t.buf[1+tlog.HashSize:], right[:])
	return sha256.Sum256(t.buf[:])
}

// push adds leaf hash h at position t.n, checks the stored hashes of the
// subtrees it completes, and checks every checkpoint of the new size.
func (t *treeRun) push(h tlog.Hash) {
	level := 0
	for len(t.levels) > 0 && t.levels[len(t.levels)-1] == level {
		h = t.nodeHash(t.stack[len(t.stack)-1], h)
		t.stack, t.levels = t.stack[:len(t.stack)-1], t.levels[:len(t.levels)-1]
		level++
		idx := (t.n + 1) >> uint(level)
		if s, ok := t.storedHash(level, idx-1); !ok || s != h {
			if t.badNodes == 0 {
				t.firstBadNode = fmt.Sprintf("(level %d, %d)", level, idx-1)
			}
			t.badNodes++
		}
	}
	t.stack, t.levels = append(t.stack, h), append(t.levels, level)
	t.n++
	for t.next < len(t.cps) && t.cps[t.next].size <= t.n {
		c := &t.cps[t.next]
		if c.size == t.n && t.root() != c.root {
			c.failed = true
			t.damage(Damage{Kind: DamageCheckpoint, TenantID: t.tenant, Position: c.size - 1,
				Detail: fmt.Sprintf("signed root of size %d (%s) differs from the recomputed root: the first %d events are not what was signed", c.size, c.time.Format(time.RFC3339), c.size)})
		}
		t.next++
	}
}

// root folds the stack right to left: RFC 6962's MTH splits at the largest
// power of two, which is exactly the stack's largest-first order.
func (t *treeRun) root() tlog.Hash {
	if len(t.stack) == 0 {
		return sha256.Sum256(nil) // RFC 6962: the hash of an empty tree
	}
	h := t.stack[len(t.stack)-1]
	for i := len(t.stack) - 2; i >= 0; i-- {
		h = t.nodeHash(t.stack[i], h)
	}
	return h
}

// eventColumns are the columns of an event row, raw.
type eventColumns struct {
	id, tenant, time, action, outcome, user, patient, emergency, kind, body sql.RawBytes
}

// differences names the columns whose value differs from the body's.
func (c *eventColumns) differences(f *bodyFields, tenant string) string {
	var bad []string
	str := func(name string, col []byte, raw []byte) {
		s, ok := jsonString(raw)
		if !ok || !bytes.Equal(s, col) {
			bad = append(bad, name)
		}
	}
	str("id", c.id, f.id)
	str("tenant_id", c.tenant, f.tenant)
	if string(c.tenant) != tenant {
		bad = append(bad, "tenant_id (tree)")
	}
	str("action", c.action, f.action)
	str("outcome", c.outcome, f.outcome)
	str("user_id", c.user, f.user)
	str("patient_id", c.patient, f.patient)
	if f.kind != nil {
		str("kind", c.kind, f.kind)
	} else if a, ok := jsonString(f.action); !ok || string(c.kind) != string(KindOf(Action(a))) {
		bad = append(bad, "kind")
	}
	if ts, ok := jsonString(f.time); !ok || !sameMicros(c.time, ts) {
		bad = append(bad, "time")
	}
	if colTrue(c.emergency) != (string(f.emergency) == "true") || (f.emergency != nil && string(f.emergency) != "true" && string(f.emergency) != "false") {
		bad = append(bad, "emergency")
	}
	return strings.Join(bad, ", ")
}

func sameMicros(col []byte, text []byte) bool {
	us, err := strconv.ParseInt(string(col), 10, 64)
	if err != nil {
		return false
	}
	t, err := time.Parse(time.RFC3339Nano, string(text))
	return err == nil && t.UnixMicro() == us && t.Equal(clock.FromMicros(us))
}

// colTrue reads a BOOLEAN column: SQLite gives 1/0, PostgreSQL true/false.
func colTrue(b []byte) bool {
	switch string(b) {
	case "1", "true", "t", "TRUE":
		return true
	}
	return false
}

// classifyMismatches turns leaves whose recomputed hash differs from the
// stored leaf hash into findings: reordered when the content matches what
// was sequenced at another position, edited when a signed root covering it
// fails, and a damaged hash table when the signed roots still hold.
func (t *treeRun) classifyMismatches() {
	at := make(map[tlog.Hash]int64, len(t.mismatches))
	for _, m := range t.mismatches {
		at[m.store] = m.pos
	}
	for _, m := range t.mismatches {
		if p, ok := at[m.got]; ok && p != m.pos {
			t.damage(Damage{Kind: DamageReordered, TenantID: t.tenant, EventID: m.eventID, Position: m.pos,
				Detail: fmt.Sprintf("holds the content that was sequenced at position %d", p)})
			continue
		}
		if t.coveredByGoodCheckpoint(m.pos) {
			t.damage(Damage{Kind: DamageHashes, TenantID: t.tenant, EventID: m.eventID, Position: m.pos,
				Detail: "stored leaf hash differs from the event, whose content the signed checkpoints confirm"})
			continue
		}
		t.damage(Damage{Kind: DamageEdited, TenantID: t.tenant, EventID: m.eventID, Position: m.pos,
			Detail: "the event body differs from what was sequenced and signed"})
	}
}

// coveredByGoodCheckpoint reports whether the first checkpoint covering
// position pos exists and matched the recomputed tree.
func (t *treeRun) coveredByGoodCheckpoint(pos int64) bool {
	i, _ := slices.BinarySearchFunc(t.cps, pos+1, func(c checkedCheckpoint, size int64) int {
		return int(c.size - size)
	})
	return i < len(t.cps) && t.cps[i].size <= t.n && !t.cps[i].failed
}

// checkPurged accepts a purged position only when the checkpoint that first
// covered it is older than the shortest retention there is.
func (t *treeRun) checkPurged(purged []int64) {
	for _, pos := range purged {
		i, _ := slices.BinarySearchFunc(t.cps, pos+1, func(c checkedCheckpoint, size int64) int {
			return int(c.size - size)
		})
		if i < len(t.cps) && t.now.Sub(t.cps[i].time) >= purgeFloor {
			continue
		}
		t.damage(Damage{Kind: DamagePurge, TenantID: t.tenant, Position: pos,
			Detail: "marked purged, but no checkpoint shows it old enough to have expired"})
	}
}

// checkUnsequenced finds event rows of the tenant that are neither leaves
// of its tree nor queued for it (inserted behind the log's back), and queue
// entries without an event. It counts first and searches only when the
// counts disagree, so an intact log costs two index counts.
func (t *treeRun) checkUnsequenced() (int64, error) {
	var events, queued, orphans int64
	err := t.snap.QueryRowContext(t.ctx, `SELECT
		(SELECT COUNT(*) FROM audit_events WHERE tenant_id = $1),
		(SELECT COUNT(*) FROM audit_pending p JOIN audit_events e ON e.id = p.event_id AND e.tenant_id = p.tenant_id WHERE p.tenant_id = $1),
		(SELECT COUNT(*) FROM audit_pending p WHERE p.tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.id = p.event_id))`,
		t.tenant).Scan(&events, &queued, &orphans)
	if err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	if orphans > 0 {
		if err := t.list(`SELECT p.event_id FROM audit_pending p WHERE p.tenant_id = $1
			AND NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.id = p.event_id) ORDER BY p.event_id`,
			DamageQueue, "queued for sequencing, but its row is gone from audit_events"); err != nil {
			return queued, err
		}
	}
	if events == t.present+queued {
		return queued, nil
	}
	return queued, t.list(`SELECT e.id FROM audit_events e WHERE e.tenant_id = $1
		AND NOT EXISTS (SELECT 1 FROM audit_leaves l WHERE l.event_id = e.id AND l.tenant_id = e.tenant_id)
		AND NOT EXISTS (SELECT 1 FROM audit_pending p WHERE p.event_id = e.id AND p.tenant_id = e.tenant_id)
		ORDER BY e.id`, DamageInserted, "in audit_events but neither in this tenant's tree nor queued for it")
}

func (t *treeRun) list(query string, kind DamageKind, detail string) error {
	rows, err := t.snap.QueryContext(t.ctx, query, t.tenant)
	if err != nil {
		return fmt.Errorf("find %s events: %w", kind, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("find %s events: %w", kind, err)
		}
		t.damage(Damage{Kind: kind, TenantID: t.tenant, EventID: id, Position: -1, Detail: detail})
	}
	return rows.Err()
}

// chunk is one block of up to verifyChunk leaves with their event rows and
// the stored hashes they complete. Its buffers are reused from chunk to
// chunk, so reading allocates little per event.
type chunk struct {
	tenant string // the tree's
	stored map[groupKey][]byte
	leaves []chunkLeaf
	events []eventColumns
	arena  []byte           // the current block of the event columns' bytes
	blocks [][]byte         // every block, reused from chunk to chunk
	block  int              // next block of blocks to use
	ids    []byte           // the leaves' event ids, concatenated
	byID   map[string]int32 // event id -> first leaf of the chunk naming it
	want   []string         // event ids not found by range scans
	err    error
}

// chunkLeaf is a leaf row and, once hashed, the results for its event.
type chunkLeaf struct {
	idx      int64
	id       string // the event id, a substring of one string per chunk
	purged   bool
	ev       int32 // index into chunk.events, -1 while the row is not found
	same     int32 // next leaf of the chunk naming the same event, or -1
	h        tlog.Hash
	fieldErr error
	cols     string
}

func newChunk() *chunk {
	return &chunk{stored: map[groupKey][]byte{}, byID: map[string]int32{}}
}

func (c *chunk) reset() {
	clear(c.stored)
	clear(c.byID)
	c.leaves, c.events, c.arena, c.block, c.ids, c.want, c.err = c.leaves[:0], c.events[:0], nil, 0, c.ids[:0], c.want[:0], nil
}

// readChunks reads the tenant's leaves chunk by chunk into buffers taken
// from free and sends them on out, the last one shorter than verifyChunk.
func (t *treeRun) readChunks(ctx context.Context, out chan<- *chunk, free <-chan *chunk) {
	for lo := int64(0); ; lo += verifyChunk {
		var c *chunk
		select {
		case c = <-free:
		case <-ctx.Done():
			return
		}
		c.reset()
		c.tenant = t.tenant
		c.err = t.readChunk(ctx, c, lo, lo+verifyChunk)
		select {
		case out <- c:
		case <-ctx.Done():
			return
		}
		if c.err != nil || len(c.leaves) < verifyChunk {
			return
		}
	}
}

// readChunk reads the leaves at positions lo..hi-1 (in order) and then
// their events in a few ordered range scans of the event table's primary
// key instead of one index lookup per leaf, and the stored hashes.
func (t *treeRun) readChunk(ctx context.Context, c *chunk, lo, hi int64) error {
	if err := t.loadStored(ctx, c.stored, lo, hi); err != nil {
		return err
	}
	var ends []int
	err := t.snap.RawRows(ctx, `SELECT `+t.snap.Text("l.idx", "pos")+`, l.event_id, `+t.snap.Text("l.purged", "gone")+` FROM audit_leaves l
		WHERE l.tenant_id = $1 AND l.idx >= $2 AND l.idx < $3 ORDER BY l.idx`, []any{t.tenant, lo, hi}, func(cols [][]byte) error {
		idx, err := strconv.ParseInt(string(cols[0]), 10, 64)
		if err != nil {
			return fmt.Errorf("leaf position %q: %w", cols[0], err)
		}
		c.ids = append(c.ids, cols[1]...)
		ends = append(ends, len(c.ids))
		c.leaves = append(c.leaves, chunkLeaf{idx: idx, purged: colTrue(cols[2]), ev: -1, same: -1})
		return nil
	})
	if err != nil {
		return fmt.Errorf("read leaves: %w", err)
	}
	if len(c.leaves) == 0 {
		return nil
	}
	all := string(c.ids) // one allocation for every id of the chunk
	minID, maxID := "", ""
	start := 0
	for i := range c.leaves {
		l := &c.leaves[i]
		l.id = all[start:ends[i]]
		start = ends[i]
		if first, ok := c.byID[l.id]; ok {
			// The same event at two positions (the unique index was
			// dropped): chain it so both are checked.
			l.same, c.leaves[first].same = c.leaves[first].same, int32(i)
			continue
		}
		c.byID[l.id] = int32(i)
		if i == 0 || l.id < minID {
			minID = l.id
		}
		if i == 0 || l.id > maxID {
			maxID = l.id
		}
	}
	if err := t.scanEvents(ctx, c, minID, maxID); err != nil {
		return err
	}
	// Events the range scans did not meet (ids outside the range in the
	// database's collation, or a range too sparse to scan): look them up.
	for i := range c.leaves {
		if l := &c.leaves[i]; l.ev < 0 && c.byID[l.id] == int32(i) {
			c.want = append(c.want, l.id)
		}
	}
	for len(c.want) > 0 {
		n := min(len(c.want), 256)
		if err := t.lookupEvents(ctx, c, c.want[:n]); err != nil {
			return err
		}
		c.want = c.want[n:]
	}
	return nil
}

// eventColumnList returns the columns of an event row, as text.
func eventColumnList(s *store.Snapshot) string {
	return `id, tenant_id, ` + s.Text("time", "t") + `, action, outcome, user_id, patient_id, ` + s.Text("emergency", "em") + `, kind, body`
}

// scanEvents reads the events with ids minID..maxID in primary-key order,
// keeping those the chunk's leaves name. Ids are time-ordered and leaves
// are sequenced in id order, so the range usually holds little else; when a
// batch turns out mostly foreign (a small tenant among large ones), it stops
// and leaves the rest to point lookups.
func (t *treeRun) scanEvents(ctx context.Context, c *chunk, minID, maxID string) error {
	if cap(c.events) < len(c.byID) {
		c.events = make([]eventColumns, 0, len(c.byID))
	}
	limit := 2*len(c.byID) + 256
	from, op := minID, ">="
	for {
		read, kept, last := 0, 0, ""
		err := t.snap.RawRows(ctx, `SELECT `+eventColumnList(t.snap)+` FROM audit_events
			WHERE id `+op+` $1 AND id <= $2 ORDER BY id LIMIT $3`, []any{from, maxID, limit}, func(cols [][]byte) error {
			read++
			if c.keep(cols) {
				kept++
			}
			if read == limit {
				last = string(cols[0])
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		if read < limit || kept*4 < read {
			return nil
		}
		from, op = last, ">"
	}
}

func (t *treeRun) lookupEvents(ctx context.Context, c *chunk, ids []string) error {
	in, args := store.InList(t.snap, ids, 1)
	err := t.snap.RawRows(ctx, `SELECT `+eventColumnList(t.snap)+` FROM audit_events WHERE id IN (`+in+`)`, args, func(cols [][]byte) error {
		c.keep(cols)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	return nil
}

// keep copies an event row into the chunk's arena when the chunk's leaves
// name it and it was not kept before, and reports whether it did.
func (c *chunk) keep(cols [][]byte) bool {
	first, ok := c.byID[string(cols[0])]
	if !ok || c.leaves[first].ev >= 0 {
		return false
	}
	ev := int32(len(c.events))
	c.events = append(c.events, c.copyColumns(cols))
	for i := first; i >= 0; i = c.leaves[i].same {
		c.leaves[i].ev = ev
	}
	return true
}

// copyColumns copies r's columns into the arena, a list of fixed blocks
// reused from chunk to chunk, so that growing it never moves what it holds.
func (c *chunk) copyColumns(cols [][]byte) eventColumns {
	need := 0
	for _, b := range cols {
		need += len(b)
	}
	if len(c.arena)+need > cap(c.arena) {
		if c.block < len(c.blocks) && need <= cap(c.blocks[c.block]) {
			c.arena = c.blocks[c.block][:0]
		} else {
			c.arena = make([]byte, 0, max(need, arenaBlock))
			c.blocks = append(c.blocks, c.arena)
			c.block = len(c.blocks) - 1
		}
		c.block++
	}
	put := func(b []byte) sql.RawBytes {
		start := len(c.arena)
		c.arena = append(c.arena, b...)
		return c.arena[start:len(c.arena):len(c.arena)]
	}
	return eventColumns{id: put(cols[0]), tenant: put(cols[1]), time: put(cols[2]), action: put(cols[3]), outcome: put(cols[4]),
		user: put(cols[5]), patient: put(cols[6]), emergency: put(cols[7]), kind: put(cols[8]), body: put(cols[9])}
}

const arenaBlock = 1 << 20

// hash computes, for every leaf whose event was found, the leaf hash and
// the check of the columns against the body, spread over GOMAXPROCS
// goroutines; the tree is then built in order from the results.
// leafHash sets out to the RFC 6962 leaf hash of body, reusing sha (one
// per goroutine) to avoid an allocation per event.
func leafHash(sha hash.Hash, body []byte, out *tlog.Hash) {
	sha.Reset()
	sha.Write([]byte{0})
	sha.Write(body)
	sha.Sum(out[:0])
}

func (c *chunk) hash() {
	workers := min(runtime.GOMAXPROCS(0), max(len(c.leaves)/1024, 1))
	var wg sync.WaitGroup
	per := (len(c.leaves) + workers - 1) / workers
	for w := range workers {
		part := c.leaves[min(w*per, len(c.leaves)):min((w+1)*per, len(c.leaves))]
		wg.Go(func() {
			sha := sha256.New()
			var f bodyFields
			for i := range part {
				l := &part[i]
				if l.ev < 0 {
					continue
				}
				e := &c.events[l.ev]
				leafHash(sha, e.body, &l.h)
				l.fieldErr, l.cols = nil, ""
				if err := scanFields(e.body, &f); err != nil {
					l.fieldErr = err
				} else {
					l.cols = e.differences(&f, c.tenant)
				}
			}
		})
	}
	wg.Wait()
}
