package backup

import (
	"context"
	"time"
)

// Policy is how long backups are kept and how they are thinned: every
// backup of the last All, then the newest of each day up to Daily, then the
// newest of each ISO week up to Keep; nothing older.
type Policy struct {
	All, Daily, Keep time.Duration
}

// DefaultPolicy keeps 18 months: all of the last 7 days, one a day for 3
// months, one a week after that.
var DefaultPolicy = Policy{All: 7 * 24 * time.Hour, Daily: 92 * 24 * time.Hour, Keep: 548 * 24 * time.Hour}

// Thin returns the backups (by manifest, any order) that p no longer keeps
// at now.
func (p Policy) Thin(ms []Manifest, now time.Time) []Manifest {
	newest := map[string]Manifest{} // bucket -> newest backup in it
	bucket := func(m Manifest) (string, bool) {
		age := now.Sub(m.Created)
		switch {
		case age < p.All:
			return "all/" + m.Name, true
		case age < p.Daily:
			return "day/" + m.Created.UTC().Format("2006-01-02"), true
		case age < p.Keep:
			y, w := m.Created.UTC().ISOWeek()
			return "week/" + time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC).Format("2006") + "-" + string(rune('a'+w/26)) + string(rune('a'+w%26)), true
		}
		return "", false
	}
	for _, m := range ms {
		b, ok := bucket(m)
		if !ok {
			continue
		}
		if cur, seen := newest[b]; !seen || m.Created.After(cur.Created) {
			newest[b] = m
		}
	}
	var drop []Manifest
	for _, m := range ms {
		b, ok := bucket(m)
		if !ok || newest[b].Name != m.Name {
			drop = append(drop, m)
		}
	}
	return drop
}

// Prune removes from st the backups p no longer keeps and returns them.
func Prune(ctx context.Context, st Store, p Policy, now time.Time) ([]Manifest, error) {
	ms, err := List(ctx, st)
	if err != nil {
		return nil, err
	}
	drop := p.Thin(ms, now)
	for _, m := range drop {
		// The manifest goes last: a backup without one is not listed.
		if err := st.Remove(ctx, m.Name); err != nil {
			return nil, err
		}
		if err := st.Remove(ctx, m.Name+ManifestSuffix); err != nil {
			return nil, err
		}
	}
	return drop, nil
}
