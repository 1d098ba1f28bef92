package web

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
)

// Dates, times and numbers on the pages in the form Dutch readers expect:
// dd-mm-jjjj, HH:MM (Amsterdam time) and a decimal comma; English pages
// keep the day-first date and use a decimal point.

const (
	layoutDay  = "02-01-2006"
	layoutTime = "15:04"
)

// parseDay reads a day from a form: dd-mm-jjjj as the pages ask for it, or
// jjjj-mm-dd as a browser's date field and older links send it. The day
// starts at midnight in Amsterdam.
func parseDay(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{layoutDay, "2-1-2006", time.DateOnly} {
		if t, err := time.ParseInLocation(layout, s, clock.Amsterdam()); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// decimal shows a decimal number as recorded ("68.4") with a decimal comma
// on Dutch pages ("68,4"); the digits are left as they are.
func decimal(lang, n string) string {
	if lang == "en" {
		return n
	}
	return strings.Replace(n, ".", ",", 1)
}

// mergedWhen says when the events of one merged access-log line happened:
// "2× op 01-12-2026 om 17:58", or "3× op 01-12-2026 tussen 08:00 en 10:15"
// when they span more than a minute. Lines are merged per day, so one date
// is enough. The line may break between words, never inside a date or a
// time; the translator's text is escaped, only the spans are markup.
func mergedWhen(lang string, n int, first, last time.Time) template.HTML {
	f, l := first.In(clock.Amsterdam()), last.In(clock.Amsterdam())
	span := func(t time.Time, layout string) any { return `<span class="nowrap">` + t.Format(layout) + `</span>` }
	if f.Format(layoutDay) != l.Format(layoutDay) {
		return template.HTML(fmt.Sprintf("%d× %s – %s", n, span(f, layoutDay+" "+layoutTime), span(l, layoutDay+" "+layoutTime)))
	}
	if f.Format(layoutTime) == l.Format(layoutTime) {
		return template.HTML(fmt.Sprintf(template.HTMLEscapeString(msg(lang, "log.merged.at")), n, span(f, layoutDay), span(f, layoutTime)))
	}
	return template.HTML(fmt.Sprintf(template.HTMLEscapeString(msg(lang, "log.merged.between")), n, span(f, layoutDay), span(f, layoutTime), span(l, layoutTime)))
}

// ucumDisplay are UCUM unit codes as people write them. Codes not listed
// are shown as recorded, after unitDisplay's general rules.
var ucumDisplay = map[string]string{
	"mm[Hg]":        "mmHg",
	"mmol/L":        "mmol/l",
	"umol/L":        "µmol/l",
	"mg/dL":         "mg/dl",
	"g/dL":          "g/dl",
	"g/L":           "g/l",
	"mg/L":          "mg/l",
	"U/L":           "U/l",
	"mL/min":        "ml/min",
	"mL":            "ml",
	"L":             "l",
	"Cel":           "°C",
	"[degF]":        "°F",
	"kg/m2":         "kg/m²",
	"/min":          "/min",
	"{beats}/min":   "/min",
	"{breaths}/min": "/min",
	"10*9/L":        "×10⁹/l",
	"10*12/L":       "×10¹²/l",
	"[in_i]":        "inch",
	"[lb_av]":       "lb",
}

// unitDisplay shows a quantity's unit as people write it: a known UCUM code
// from the table, else the unit without UCUM's annotations ({...}) and
// brackets.
func unitDisplay(u string) string {
	if d, ok := ucumDisplay[u]; ok {
		return d
	}
	var b strings.Builder
	depth := 0
	for _, r := range u {
		switch {
		case r == '{':
			depth++
		case r == '}' && depth > 0:
			depth--
		case depth > 0, r == '[', r == ']':
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
