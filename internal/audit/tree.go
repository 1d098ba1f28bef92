package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

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

// flush writes the changed groups.
func (s *hashStore) flush() error {
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
	for _, k := range keys {
		_, err := s.q.ExecContext(s.ctx, `INSERT INTO audit_hashes (tenant_id, level, idx, hashes) VALUES ($1, $2, $3, $4)
			ON CONFLICT (tenant_id, level, idx) DO UPDATE SET hashes = excluded.hashes`,
			s.tenant, int64(k.level), k.idx, s.groups[k])
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
