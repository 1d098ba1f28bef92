package backup

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestShredRecords: a shred is recorded beside the backups, once per
// patient, and a damaged record is an error, never silently skipped.
// REQ: DP-5
func TestShredRecords(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := Dir(dir)
	a, b := Person{TenantID: "t1", PatientID: "p1"}, Person{TenantID: "t1", PatientID: "p2"}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, p := range []Person{a, b, a} {
		if err := RecordShred(ctx, st, p, now); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Shreds(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !slices.Contains(got, a) || !slices.Contains(got, b) {
		t.Fatalf("shreds = %v, want %v and %v once each", got, a, b)
	}
	if ms, err := List(ctx, st); err != nil || len(ms) != 0 {
		t.Fatalf("shred records are listed as backups: %v %v", ms, err)
	}
	names, _ := st.List(ctx)
	for _, n := range names {
		if strings.Contains(n, "p1") || strings.Contains(n, "t1") {
			t.Fatalf("a record's name carries an id: %s", n)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, names[0]), []byte("{broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Shreds(ctx, st); err == nil {
		t.Fatal("a damaged shred record was skipped")
	}
}
