package fhir

import (
	"testing"
	"time"
)

func TestDatePrimitives(t *testing.T) {
	tests := []struct {
		in                      string
		date, dateTime, instant bool
	}{
		{"2024", true, true, false},
		{"2024-03", true, true, false},
		{"2024-03-01", true, true, false},
		{"2024-02-29", true, true, false},
		{"2024-03-01T10:00:00Z", false, true, true},
		{"2024-03-01T10:00:00.5+01:00", false, true, true},
		{"2024-03-01T10:00:00-14:00", false, true, true},
		{"2024-03-01T10:00:00+14:01", false, false, false},
		{"2024-03-01T10:00:00+15:00", false, false, false},
		{"2024-03-01T10:00:00+14:00", false, true, true},
		{"2024-03-01T10:00:00+13:59", false, true, true},
		{"2016-12-31T23:59:60Z", false, true, true},
		{"0001", true, true, false},
		{"0000", false, false, false},
		{"2023-02-29", false, false, false},
		{"2024-02-30", false, false, false},
		{"2024-04-31", false, false, false},
		{"2024-13-01", false, false, false},
		{"2024-00", false, false, false},
		{"2024-1-01", false, false, false},
		{"24", false, false, false},
		{"20240301", false, false, false},
		{"yesterday", false, false, false},
		{"", false, false, false},
		{"2024-03-01T", false, false, false},
		{"2024-03-01T10:00Z", false, false, false},
		{"2024-03-01T10:00:00", false, false, false},
		{"2024-03-01T24:00:00Z", false, false, false},
		{"2024-03-01T10:60:00Z", false, false, false},
		{"2024-03-01 10:00:00Z", false, false, false},
		{"2024-03-01T10:00:00z", false, false, false},
		{"2024-03-01T10:00:00.Z", false, false, false},
		{" 2024", false, false, false},
		{"2024-03-01T10:00:00+0100", false, false, false},
	}
	for _, tt := range tests {
		if got := validDate(tt.in); got != tt.date {
			t.Errorf("validDate(%q) = %v", tt.in, got)
		}
		if got := validDateTime(tt.in); got != tt.dateTime {
			t.Errorf("validDateTime(%q) = %v", tt.in, got)
		}
		if got := validInstant(tt.in); got != tt.instant {
			t.Errorf("validInstant(%q) = %v", tt.in, got)
		}
	}
}

func TestTimeAndID(t *testing.T) {
	for s, want := range map[string]bool{"00:00:00": true, "23:59:60": true, "12:30:15.25": true, "24:00:00": false, "12:30": false, "1:00:00": false} {
		if got := timeRE.MatchString(s); got != want {
			t.Errorf("time %q = %v", s, got)
		}
	}
	for s, want := range map[string]bool{"a": true, "A-b.9": true, "": false, "a_b": false, "a b": false, "é": false,
		"0123456789012345678901234567890123456789012345678901234567890123":  true,
		"01234567890123456789012345678901234567890123456789012345678901234": false} {
		if got := ValidID(s); got != want {
			t.Errorf("id %q = %v", s, got)
		}
	}
}

func TestParseDateTimeRange(t *testing.T) {
	d := func(y int, m time.Month, day, h, min, s, ns int) time.Time {
		return time.Date(y, m, day, h, min, s, ns, time.UTC)
	}
	tests := []struct {
		in         string
		start, end time.Time
	}{
		{"2024", d(2024, 1, 1, 0, 0, 0, 0), d(2025, 1, 1, 0, 0, 0, 0)},
		{"2024-02", d(2024, 2, 1, 0, 0, 0, 0), d(2024, 3, 1, 0, 0, 0, 0)},
		{"2024-12", d(2024, 12, 1, 0, 0, 0, 0), d(2025, 1, 1, 0, 0, 0, 0)},
		{"2024-02-29", d(2024, 2, 29, 0, 0, 0, 0), d(2024, 3, 1, 0, 0, 0, 0)},
		{"2024-03-01T10:00:00+01:00", d(2024, 3, 1, 9, 0, 0, 0), d(2024, 3, 1, 9, 0, 1, 0)},
		{"2024-03-01T10:00:00.25Z", d(2024, 3, 1, 10, 0, 0, 250e6), d(2024, 3, 1, 10, 0, 0, 260e6)},
		{"2024-03-01T10:00:00.123456789123Z", d(2024, 3, 1, 10, 0, 0, 123456789), d(2024, 3, 1, 10, 0, 0, 123456790)},
		{"2016-12-31T23:59:60Z", d(2016, 12, 31, 23, 59, 59, 0), d(2017, 1, 1, 0, 0, 0, 0)},
	}
	for _, tt := range tests {
		r, err := ParseDateTime(tt.in)
		if err != nil {
			t.Errorf("ParseDateTime(%q): %v", tt.in, err)
			continue
		}
		if !r.Start.Equal(tt.start) || !r.End.Equal(tt.end) {
			t.Errorf("ParseDateTime(%q) = %v – %v, want %v – %v", tt.in, r.Start, r.End, tt.start, tt.end)
		}
		if !r.Contains(tt.start) || r.Contains(tt.end) {
			t.Errorf("range of %q does not contain its start or contains its end", tt.in)
		}
	}
	if _, err := ParseDateTime("2024-02-30"); err == nil {
		t.Error("ParseDateTime accepted 30 February")
	}
	open := DateRange{Start: d(2024, 1, 1, 0, 0, 0, 0)}
	if !open.Contains(d(3000, 1, 1, 0, 0, 0, 0)) || open.Contains(d(2023, 12, 31, 0, 0, 0, 0)) {
		t.Error("an open-ended range is wrong")
	}
}

// A date without a time is a day where its reader lives: 2 December in
// Amsterdam runs from 23:00 UTC on 1 December (winter time) to 23:00 UTC on
// 2 December, so an event at 23:10 UTC on 2 December is on the 3rd.
func TestParseDateTimeIn(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	dr, err := ParseDateTimeIn("2026-12-02", ams)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC); !dr.Start.Equal(want) || !dr.End.Equal(want.AddDate(0, 0, 1)) {
		t.Fatalf("2026-12-02 in Amsterdam = %v – %v", dr.Start, dr.End)
	}
	if dr.Contains(time.Date(2026, 12, 2, 23, 10, 0, 0, time.UTC)) {
		t.Fatal("23:10 UTC on 2 December is in Amsterdam's 2 December")
	}
	if u, _ := ParseDateTime("2026-12-02"); !u.Start.Equal(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("ParseDateTime is no longer UTC: %v", u.Start)
	}
	// A value with a time and zone is the same instant whatever loc is.
	a, _ := ParseDateTimeIn("2026-12-02T10:00:00+01:00", ams)
	b, _ := ParseDateTime("2026-12-02T10:00:00+01:00")
	if !a.Start.Equal(b.Start) {
		t.Fatalf("zoned value moved: %v %v", a.Start, b.Start)
	}
}
