package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
)

// REQ: DP-5
// Backups every 6 hours for two years, thinned as the clock moves: all of
// the last 7 days, one a day back to 3 months, one a week back to 18 months,
// nothing older.
func TestThinningWithAMovedClock(t *testing.T) {
	ctx := context.Background()
	st := Dir(t.TempDir())
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c := clock.NewFake(start)
	p := DefaultPolicy
	var all []Manifest
	for c.Now().Before(start.AddDate(2, 0, 0)) {
		all = append(all, Manifest{Name: "zorgkluis-" + c.Now().Format("20060102T150405.000Z") + Suffix, Created: c.Now()})
		drop := p.Thin(all, c.Now())
		all = slices.DeleteFunc(all, func(m Manifest) bool {
			return slices.ContainsFunc(drop, func(d Manifest) bool { return d.Name == m.Name })
		})
		c.Advance(6 * time.Hour)
	}
	now := c.Now().Add(-6 * time.Hour) // the last backup's time
	// Prune on a directory removes what Thin drops, backup and manifest.
	old := Manifest{Name: "zorgkluis-20240101T000000.000Z" + Suffix, Created: start.AddDate(-1, 0, 0)}
	for _, m := range append(slices.Clone(all), old) {
		if _, err := st.Put(ctx, m.Name, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
		putManifest(t, st, m)
	}
	gone, err := Prune(ctx, st, p, now)
	if err != nil || len(gone) != 1 || gone[0].Name != old.Name {
		t.Fatalf("prune: %v, %v", gone, err)
	}
	kept, err := List(ctx, st)
	if err != nil || len(kept) != len(all) {
		t.Fatalf("%d kept on disk, %d in the timeline: %v", len(kept), len(all), err)
	}
	if names, _ := st.List(ctx); slices.Contains(names, old.Name) || slices.Contains(names, old.Name+ManifestSuffix) {
		t.Fatal("the pruned backup is still there")
	}
	days, weeks := map[string]int{}, map[string]int{}
	for _, m := range kept {
		age := now.Sub(m.Created)
		switch {
		case age < p.All:
		case age < p.Daily:
			days[m.Created.Format("2006-01-02")]++
		case age < p.Keep:
			y, w := m.Created.ISOWeek()
			weeks[time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC).Format("2006")+"/"+string(rune(w))]++
		default:
			t.Fatalf("kept %s, older than 18 months", m.Name)
		}
	}
	recent := slices.IndexFunc(kept, func(m Manifest) bool { return now.Sub(m.Created) < p.All })
	if n := len(kept) - recent; n != 28 { // 7 days of 4 a day
		t.Fatalf("%d backups of the last 7 days kept, want 28", n)
	}
	for d, n := range days {
		if n != 1 {
			t.Fatalf("%d backups kept of day %s, want 1", n, d)
		}
	}
	// About 85 days between 7 days and 3 months, about 65 weeks after.
	if len(days) < 84 || len(days) > 86 || len(weeks) < 64 || len(weeks) > 67 {
		t.Fatalf("%d daily and %d weekly backups kept", len(days), len(weeks))
	}
	for w, n := range weeks {
		if n != 1 {
			t.Fatalf("%d backups kept of week %q, want 1", n, w)
		}
	}
	if kept[0].Created.Before(now.Add(-p.Keep)) {
		t.Fatalf("oldest kept %s", kept[0].Name)
	}
}

func putManifest(t *testing.T, st Store, m Manifest) {
	t.Helper()
	b, _ := json.Marshal(m)
	if _, err := st.Put(context.Background(), m.Name+ManifestSuffix, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}
