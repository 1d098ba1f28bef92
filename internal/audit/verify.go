package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"
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
	snap, err := beginSnapshot(ctx, l.db)
	if err != nil {
		return Report{}, err
	}
	defer snap.Close()
	v := &verifyRun{ctx: ctx, q: snap, verifiers: verifiers, now: l.clock.Now(), progress: progress, sha: sha256.New()}
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
	q         store.Querier
	verifiers note.Verifiers
	now       time.Time
	progress  func(done, total int)
	done      int
	total     int
	report    Report
	sha       hash.Hash
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
		rows, err := v.q.QueryContext(v.ctx, `WITH RECURSIVE t(id) AS (
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
	var purged []int64
	for {
		lo := t.n
		hi := lo + verifyChunk
		if err := t.loadStored(lo, hi); err != nil {
			return tr, err
		}
		k, p, err := t.leaves(lo, hi)
		if err != nil {
			return tr, err
		}
		purged = append(purged, p...)
		v.done += k
		if v.progress != nil && k > 0 {
			v.progress(v.done, v.total)
		}
		if k < verifyChunk {
			break
		}
	}
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
	rows, err := t.q.QueryContext(t.ctx, `SELECT size, root, note FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY size`, t.tenant)
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
func (t *treeRun) loadStored(lo, hi int64) error {
	t.stored = map[groupKey][]byte{}
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
	rows, err := t.q.QueryContext(t.ctx, `SELECT level, idx, hashes FROM audit_hashes WHERE tenant_id = $1 AND (`+strings.Join(where, " OR ")+`)`, args...)
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
		t.stored[groupKey{int(level), idx}] = h
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

// leaves checks positions lo..hi-1 and returns how many leaf rows it read
// and the purged positions.
func (t *treeRun) leaves(lo, hi int64) (int, []int64, error) {
	rows, err := t.q.QueryContext(t.ctx, `SELECT l.idx, l.event_id, l.purged,
			e.id, e.tenant_id, e.time, e.action, e.outcome, e.user_id, e.patient_id, e.emergency, e.kind, e.body
		FROM audit_leaves l LEFT JOIN audit_events e ON e.id = l.event_id
		WHERE l.tenant_id = $1 AND l.idx >= $2 AND l.idx < $3 ORDER BY l.idx`, t.tenant, lo, hi)
	if err != nil {
		return 0, nil, fmt.Errorf("read leaves: %w", err)
	}
	defer rows.Close()
	var (
		count   int
		purged  []int64
		idx     int64
		eventID string
		isPurge bool
		c       eventColumns
		f       bodyFields
	)
	for rows.Next() {
		if err := rows.Scan(&idx, &eventID, &isPurge, &c.id, &c.tenant, &c.time, &c.action, &c.outcome, &c.user, &c.patient, &c.emergency, &c.kind, &c.body); err != nil {
			return count, purged, fmt.Errorf("read leaves: %w", err)
		}
		count++
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
			return count, purged, fmt.Errorf("leaf rows out of order at %d", idx)
		}
		stored, haveStored := t.storedHash(0, idx)
		var h tlog.Hash
		switch {
		case c.id == nil && isPurge:
			purged = append(purged, idx)
			h = stored
			if !haveStored {
				t.damage(Damage{Kind: DamageHashes, TenantID: t.tenant, EventID: eventID, Position: idx,
					Detail: "purged event without a stored leaf hash"})
			}
		case c.id == nil:
			t.damage(Damage{Kind: DamageDeleted, TenantID: t.tenant, EventID: eventID, Position: idx,
				Detail: "the event's row is gone from audit_events"})
			h = stored
		default:
			h = t.leafHash(c.body)
			if !haveStored || h != stored {
				t.mismatches = append(t.mismatches, mismatch{pos: idx, eventID: eventID, got: h, store: stored})
			}
			if string(c.tenant) == t.tenant {
				t.present++
			}
			if err := scanFields(c.body, &f); err != nil {
				t.damage(Damage{Kind: DamageEdited, TenantID: t.tenant, EventID: eventID, Position: idx, Detail: err.Error()})
			} else if cols := c.differences(&f, t.tenant); cols != "" {
				t.damage(Damage{Kind: DamageColumn, TenantID: t.tenant, EventID: eventID, Position: idx,
					Detail: "column(s) " + cols + " differ from the event body"})
			}
		}
		t.push(h)
	}
	return count, purged, rows.Err()
}

func (t *treeRun) leafHash(body []byte) tlog.Hash {
	t.sha.Reset()
	t.sha.Write([]byte{0})
	t.sha.Write(body)
	var h tlog.Hash
	t.sha.Sum(h[:0])
	return h
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
	err := t.q.QueryRowContext(t.ctx, `SELECT
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
	rows, err := t.q.QueryContext(t.ctx, query, t.tenant)
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
