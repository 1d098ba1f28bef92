package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Amsterdam time on every host, also without a zoneinfo database

	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
)

// The texts the pages show live in one file per language beside the
// templates (locales/nl.json, locales/en.json), so that a translator needs
// no Go: a flat object from key to text, fmt verbs (%s, %d) where the page
// fills something in. Codes (statuses, resource types, actions...) have a
// key each under a prefix ("status.final"), which tk looks up.
//
//go:embed locales/*.json
var localeFS embed.FS

// languages are the pages' languages, Dutch first: a key missing in English
// falls back to Dutch; TestMessagesComplete keeps both complete.
var languages = []string{"nl", "en"}

// messages holds every text by language and key, read from the locale
// files when the package starts; a file that does not parse stops the
// binary at once rather than showing keys.
var messages = loadMessages()

func loadMessages() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, lang := range languages {
		b, err := localeFS.ReadFile("locales/" + lang + ".json")
		if err != nil {
			panic("web: locale " + lang + ": " + err.Error())
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			panic("web: locale " + lang + ": " + err.Error())
		}
		out[lang] = m
	}
	return out
}

// msg returns the text of key in lang.
func msg(lang, key string) string {
	if s, ok := messages[lang][key]; ok {
		return s
	}
	if s, ok := messages["nl"][key]; ok {
		return s
	}
	return key
}

// code translates a code the pages show (a status, a resource type, an
// action...) under its prefix. A code without a translation is shown as it
// is and logged, so that a translator hears of it; the tests fail on it.
func (s *server) code(lang, prefix, key string) string {
	if t, ok := messages[lang][prefix+key]; ok {
		return t
	}
	if t, ok := messages["nl"][prefix+key]; ok {
		return t
	}
	if key != "" {
		s.d.Log.Warn("web: untranslated code", "key", prefix+key, "lang", lang)
	}
	return key
}

// dataSummary names the kinds of data an access-log line touched in words:
// "persoonsgegevens, 3 metingen".
func (s *server) dataSummary(lang string, l audit.PatientLine) string {
	var parts []string
	for _, d := range l.Data() {
		if d.N == 1 {
			parts = append(parts, s.code(lang, "type.", d.Type))
		} else if _, ok := messages[lang]["type."+d.Type+".n"]; ok {
			parts = append(parts, fmt.Sprintf(msg(lang, "type."+d.Type+".n"), d.N))
		} else {
			parts = append(parts, s.code(lang, "type.", d.Type)+" ×"+strconv.Itoa(d.N))
		}
	}
	return strings.Join(parts, ", ")
}

func (s *server) funcs() template.FuncMap {
	return template.FuncMap{
		"t":  msg,
		"tf": func(lang, key string, args ...any) string { return fmt.Sprintf(msg(lang, key), args...) },
		"tk": s.code,
		// basis translates an access-log basis without its rule's id
		// ("care-relationship:r-1" is a "behandelrelatie").
		"basis": func(lang, b string) string {
			kind, _, _ := strings.Cut(b, ":")
			return s.code(lang, "basis.", kind)
		},
		"data":    s.dataSummary,
		"refusal": s.refusal,
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.In(clock.Amsterdam()).Format(layoutDay + " " + layoutTime)
		},
		"whenp": func(t *time.Time) string {
			if t == nil || t.IsZero() {
				return ""
			}
			return t.In(clock.Amsterdam()).Format(layoutDay + " " + layoutTime)
		},
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"dur": duration,
		"day": displayDate,
		// date is a time's day in Dutch form (dd-mm-jjjj), Amsterdam time.
		"date":    func(t time.Time) string { return t.In(clock.Amsterdam()).Format(layoutDay) },
		"decimal": decimal,
		"merged":  mergedWhen,
		"trends":  measurementTrends,
		"chart":   renderChart,
		"join":    strings.Join,
		"other": func(lang string) string {
			if lang == "en" {
				return "nl"
			}
			return "en"
		},
	}
}

// parse builds one template set per page: the layout plus the page.
func (s *server) parse() error {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".html")
		if base == "layout" || base == "partials" {
			continue
		}
		t, err := template.New(base).Funcs(s.funcs()).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", n)
		if err != nil {
			return fmt.Errorf("web: parse %s: %w", n, err)
		}
		s.pages[base] = t
	}
	return nil
}

// duration says a span of time as people do: "3 u 12 min", "45 min"
// ("3 h 12 min" in English), rounded down to the minute.
func duration(lang string, d time.Duration) string {
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	unit := "u"
	if lang == "en" {
		unit = "h"
	}
	switch {
	case h > 0 && m > 0:
		return fmt.Sprintf("%d %s %d min", h, unit, m)
	case h > 0:
		return fmt.Sprintf("%d %s", h, unit)
	}
	return fmt.Sprintf("%d min", m)
}
