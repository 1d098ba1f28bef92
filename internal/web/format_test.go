package web

import (
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
)

// Dates, times and numbers on the pages are in the Dutch form: dd-mm-jjjj,
// HH:MM, a decimal comma; units as people write them; a merged log line
// says how often and when in words.
// REQ: LOG-4
func TestDutchForms(t *testing.T) {
	for in, want := range map[string]string{
		"1984-03-12":                "12-03-1984",
		"2026-12-01T16:58:00Z":      "01-12-2026 17:58",
		"2026-06-01T08:05:00+02:00": "01-06-2026 08:05",
		"2026-06":                   "06-2026",
	} {
		if got := displayDate(in); got != want {
			t.Errorf("displayDate(%q) = %q; want %q", in, got, want)
		}
	}
	for _, in := range []string{"01-12-2026", "1-12-2026", "2026-12-01"} {
		d, ok := parseDay(in)
		if !ok || d.Format(layoutDay) != "01-12-2026" || d.Location() != clock.Amsterdam() || d.Hour() != 0 {
			t.Errorf("parseDay(%q) = %v, %v", in, d, ok)
		}
	}
	for _, in := range []string{"12/01/2026", "31-02-2026", "", "2026-13-01"} {
		if _, ok := parseDay(in); ok {
			t.Errorf("parseDay(%q) accepted", in)
		}
	}
	if got := decimal("nl", "68.4"); got != "68,4" {
		t.Errorf("decimal nl: %q", got)
	}
	if got := decimal("en", "68.4"); got != "68.4" {
		t.Errorf("decimal en: %q", got)
	}
	for in, want := range map[string]string{"mm[Hg]": "mmHg", "kg": "kg", "mmol/L": "mmol/l", "%": "%", "mmol/mol": "mmol/mol",
		"Cel": "°C", "{beats}/min": "/min", "{score}": "", "kg/m2": "kg/m²"} {
		if got := unitDisplay(in); got != want {
			t.Errorf("unitDisplay(%q) = %q; want %q", in, got, want)
		}
	}
	at := time.Date(2026, 12, 1, 16, 58, 0, 0, time.UTC)
	for _, c := range []struct {
		lang        string
		first, last time.Time
		want        string
	}{
		{"nl", at, at.Add(20 * time.Second), "2× op 01-12-2026 om 17:58"},
		{"en", at, at, "2× on 01-12-2026 at 17:58"},
		{"nl", at.Add(-2 * time.Hour), at, "2× op 01-12-2026 tussen 15:58 en 17:58"},
		{"en", at.Add(-2 * time.Hour), at, "2× on 01-12-2026 between 15:58 and 17:58"},
	} {
		if got := visibleWords(string(mergedWhen(c.lang, 2, c.first, c.last))); got != c.want {
			t.Errorf("mergedWhen(%s) = %q; want %q", c.lang, got, c.want)
		}
	}
}

// visibleWords is text without its markup.
func visibleWords(html string) string {
	return strings.Join(strings.Fields(tagRE.ReplaceAllString(html, "")), " ")
}

// The record's measurements show a decimal comma and readable units in
// Dutch; the log's date filter says which form it expects.
// REQ: LOG-4
func TestPagesInDutchForm(t *testing.T) {
	rv := recordView{Current: "measurements", Sections: []string{"measurements"}, Rows: []row{
		{Date: "01-12-2026 17:58", What: "Lichaamsgewicht", Number: "68.4", Unit: unitDisplay("kg")},
		{Date: "01-12-2026 17:58", What: "Systolische bloeddruk", Number: "128", Unit: unitDisplay("mm[Hg]")}}}
	html := renderPage(t, "record", &proRecordData{Record: rv})
	for _, want := range []string{"68,4 kg", "128 mmHg"} {
		if !strings.Contains(html, want) {
			t.Errorf("record page lacks %q", want)
		}
	}
	if strings.Contains(html, "68.4") || strings.Contains(html, "mm[Hg]") {
		t.Error("record page shows a decimal point or a UCUM code")
	}
	for _, page := range []string{"melog", "audit"} {
		var data any = &logData{}
		if page == "audit" {
			data = &auditData{}
		}
		html := renderPage(t, page, data)
		if strings.Contains(html, `type="date"`) || strings.Count(html, "(dd-mm-jjjj)") != 2 {
			t.Errorf("%s: date fields not labelled with dd-mm-jjjj", page)
		}
	}
}
