package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/zorgkluis/zorgkluis/internal/store"
)

// groupSize is how many hashes of one tree level share a row of
// audit_hashes. Grouping cuts the rows the sequencer writes per event from
// about two to about 1/128, while a group still fits in one page.
const groupSize = 256

type groupKey struct {
	level int
	idx   int64
}

// hashStore is one tenant's stored hashes (tlog's stored-hash layout) inside
// a transaction. It implements tlog.HashReader; groups are read once and
// cached, and put collects new hashes until flush writes the changed groups.
type hashStore struct {
	ctx    context.Context
	q      store.Querier
	tenant string
	groups map[groupKey][]byte
	dirty  map[groupKey]bool
	// edge, when set, says groups holds the tail group of every level of
	// a tree of edge leaves (the sequencer's frontier), so a group beyond
	// a level's tail is known to be empty and is not read.
	edge int64
}

func newHashStore(ctx context.Context, q store.Querier, tenant string) *hashStore {
	return &hashStore{ctx: ctx, q: q, tenant: tenant, groups: map[groupKey][]byte{}, dirty: map[groupKey]bool{}}
}

// ReadHashes implements tlog.HashReader.
func (s *hashStore) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		level, n := tlog.SplitStoredHashIndex(x)
		h, err := s.get(level, n)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

func (s *hashStore) group(k groupKey) ([]byte, error) {
	if g, ok := s.groups[k]; ok {
		return g, nil
	}
	if s.edge > 0 && k.idx > tailGroup(s.edge, k.level) {
		return nil, nil // beyond the frontier: not written yet
	}
	var g []byte
	err := s.q.QueryRowContext(s.ctx, `SELECT hashes FROM audit_hashes WHERE tenant_id = $1 AND level = $2 AND idx = $3`,
		s.tenant, int64(k.level), k.idx).Scan(&g)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read tree hashes: %w", err)
	}
	s.groups[k] = g
	return g, nil
}

func (s *hashStore) get(level int, n int64) (tlog.Hash, error) {
	g, err := s.group(groupKey{level, n / groupSize})
	if err != nil {
		return tlog.Hash{}, err
	}
	off := int(n%groupSize) * tlog.HashSize
	if off+tlog.HashSize > len(g) {
		return tlog.Hash{}, fmt.Errorf("tree of tenant %q: hash (level %d, %d) is missing", s.tenant, level, n)
	}
	return tlog.Hash(g[off : off+tlog.HashSize]), nil
}

// put records the hash of node (level, n). Nodes of a level are written in
// order, so a group only ever grows at its end.
func (s *hashStore) put(level int, n int64, h tlog.Hash) error {
	k := groupKey{level, n / groupSize}
	g, err := s.group(k)
	if err != nil {
		return err
	}
	off := int(n%groupSize) * tlog.HashSize
	switch {
	case off == len(g):
		g = append(g, h[:]...)
	case off+tlog.HashSize <= len(g):
		if tlog.Hash(g[off:off+tlog.HashSize]) != h {
			return fmt.Errorf("tree of tenant %q: hash (level %d, %d) would change", s.tenant, level, n)
		}
		return nil
	default:
		return fmt.Errorf("tree of tenant %q: hash (level %d, %d) written out of order", s.tenant, level, n)
	}
	s.groups[k] = g
	s.dirty[k] = true
	return nil
}

// flush writes the changed groups, in one statement.
func (s *hashStore) flush() error {
	if len(s.dirty) == 0 {
		return nil
	}
	keys := make([]groupKey, 0, len(s.dirty))
	for k := range s.dirty {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b groupKey) int {
		if a.level != b.level {
			return a.level - b.level
		}
		return int(a.idx - b.idx)
	})
	const perStmt = 200 // 800 parameters: far inside both engines' limits
	for start := 0; start < len(keys); start += perStmt {
		part := keys[start:min(start+perStmt, len(keys))]
		args := make([]any, 0, 4*len(part))
		for _, k := range part {
			args = append(args, s.tenant, int64(k.level), k.idx, s.groups[k])
		}
		_, err := s.q.ExecContext(s.ctx, `INSERT INTO audit_hashes (tenant_id, level, idx, hashes) VALUES `+store.Values(s.q, len(part), 4)+`
			ON CONFLICT (tenant_id, level, idx) DO UPDATE SET hashes = excluded.hashes`, args...)
		if err != nil {
			return fmt.Errorf("write tree hashes: %w", err)
		}
	}
	clear(s.dirty)
	return nil
}

// appendLeaf adds the leaf hash h at position n (the tree has n leaves
// before it) and the hashes of the subtrees it completes.
func (s *hashStore) appendLeaf(n int64, h tlog.Hash) error {
	hashes, err := tlog.StoredHashesForRecordHash(n, h, s)
	if err != nil {
		return err
	}
	for level, x := range hashes {
		if err := s.put(level, n>>uint(level), x); err != nil {
			return err
		}
	}
	return nil
}

// tailGroup is the group holding the last node of level in a tree of size
// leaves (-1 when the level has no node yet).
func tailGroup(size int64, level int) int64 {
	n := size >> uint(level)
	if n == 0 {
		return -1
	}
	return (n - 1) / groupSize
}

// frontier is the right edge of one tenant's tree as the sequencer last
// wrote it: for every level the group holding its last node, which holds
// every hash that appending leaves and computing the new root read. With
// it a sequencing batch reads no tree hashes from the database.
type frontier struct {
	size   int64
	root   tlog.Hash
	groups map[groupKey][]byte
}

// loadFrontier reads the tail groups of a tree of size leaves with root, in
// one statement, and checks that each holds exactly the level's nodes.
func loadFrontier(ctx context.Context, q store.Querier, tenant string, size int64, root tlog.Hash) (*frontier, error) {
	f := &frontier{size: size, root: root, groups: map[groupKey][]byte{}}
	if size == 0 {
		return f, nil
	}
	var where []string
	args := []any{tenant}
	for level := 0; size>>uint(level) > 0; level++ {
		args = append(args, int64(level), tailGroup(size, level))
		where = append(where, fmt.Sprintf("(level = $%d AND idx = $%d)", len(args)-1, len(args)))
	}
	rows, err := q.QueryContext(ctx, `SELECT level, idx, hashes FROM audit_hashes WHERE tenant_id = $1 AND (`+strings.Join(where, " OR ")+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("read tree frontier: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var level, idx int64
		var g []byte
		if err := rows.Scan(&level, &idx, &g); err != nil {
			return nil, fmt.Errorf("read tree frontier: %w", err)
		}
		f.groups[groupKey{int(level), idx}] = g
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read tree frontier: %w", err)
	}
	for level := 0; size>>uint(level) > 0; level++ {
		k := groupKey{level, tailGroup(size, level)}
		want := int((size>>uint(level))-k.idx*groupSize) * tlog.HashSize
		if len(f.groups[k]) != want {
			return nil, fmt.Errorf("tree of tenant %q: level %d holds %d bytes in group %d; want %d for %d leaves", tenant, level, len(f.groups[k]), k.idx, want, size)
		}
	}
	return f, nil
}

// hashStore returns a hashStore for appending to the tree, its reads served
// from the frontier.
func (f *frontier) hashStore(ctx context.Context, q store.Querier, tenant string) *hashStore {
	s := newHashStore(ctx, q, tenant)
	maps.Copy(s.groups, f.groups)
	s.edge = f.size
	return s
}

// advance returns the frontier of the tree s grew to: size leaves, root.
func advance(s *hashStore, size int64, root tlog.Hash) *frontier {
	f := &frontier{size: size, root: root, groups: map[groupKey][]byte{}}
	for level := 0; size>>uint(level) > 0; level++ {
		k := groupKey{level, tailGroup(size, level)}
		f.groups[k] = s.groups[k]
	}
	return f
}
