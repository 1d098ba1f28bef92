package fhir

import (
	"errors"
	"regexp"
	"time"
)

// The FHIR R4 regular expressions for the date and time primitives
// (https://hl7.org/fhir/R4/datatypes.html), anchored. They check the shape;
// the calendar (no 30 February) is checked by time.Parse afterwards.
const (
	reYear     = `([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)`
	reMonth    = `(0[1-9]|1[0-2])`
	reDay      = `(0[1-9]|[1-2][0-9]|3[0-1])`
	reTime     = `([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?`
	reTimeZone = `(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))`
)

var (
	dateRE     = regexp.MustCompile(`^` + reYear + `(-` + reMonth + `(-` + reDay + `)?)?$`)
	dateTimeRE = regexp.MustCompile(`^` + reYear + `(-` + reMonth + `(-` + reDay + `(T` + reTime + reTimeZone + `)?)?)?$`)
	instantRE  = regexp.MustCompile(`^` + reYear + `-` + reMonth + `-` + reDay + `T` + reTime + reTimeZone + `$`)
	timeRE     = regexp.MustCompile(`^` + reTime + `$`)
	idRE       = regexp.MustCompile(`^[A-Za-z0-9\-\.]{1,64}$`)
)

// DateRange is the span of time a FHIR date, dateTime, instant or Period
// covers. FHIR date search treats every value as such an implicit range: the
// date 2024-03 stands for all of March 2024.
type DateRange struct {
	Start time.Time // inclusive; the zero Time means unbounded below
	End   time.Time // exclusive; the zero Time means unbounded above
}

// Contains reports whether t lies in the range.
func (r DateRange) Contains(t time.Time) bool {
	return (r.Start.IsZero() || !t.Before(r.Start)) && (r.End.IsZero() || t.Before(r.End))
}

var errDate = errors.New("not a valid FHIR dateTime")

// ParseDateTime parses a FHIR R4 dateTime (which includes the partial forms
// YYYY, YYYY-MM and YYYY-MM-DD) into the range it covers. Values without a
// time are taken in UTC: FHIR leaves their time zone unspecified and the
// server has to pick one. A leap second (:60) is read as second :59. The
// API can use ParseDateTime for the value of a date search parameter.
func ParseDateTime(s string) (DateRange, error) {
	return ParseDateTimeIn(s, time.UTC)
}

// ParseDateTimeIn is ParseDateTime with values without a time taken in loc:
// for a reader in the Netherlands, "2026-12-02" is that day in Amsterdam.
func ParseDateTimeIn(s string, loc *time.Location) (DateRange, error) {
	if !dateTimeRE.MatchString(s) {
		return DateRange{}, errDate
	}
	return dateRangeIn(s, loc)
}

// validDate, validDateTime and validInstant check the FHIR primitives,
// including the calendar.
func validDate(s string) bool {
	if !dateRE.MatchString(s) {
		return false
	}
	_, err := dateRange(s)
	return err == nil
}

func validDateTime(s string) bool {
	_, err := ParseDateTime(s)
	return err == nil
}

func validInstant(s string) bool {
	if !instantRE.MatchString(s) {
		return false
	}
	_, err := dateRange(s)
	return err == nil
}

// dateRange turns a value that already matched one of the regular
// expressions into its range.
func dateRange(s string) (DateRange, error) { return dateRangeIn(s, time.UTC) }

// dateRangeIn is dateRange with the partial forms (no time) taken in loc;
// the range's ends are in UTC.
func dateRangeIn(s string, loc *time.Location) (DateRange, error) {
	switch len(s) {
	case 4:
		t, err := time.ParseInLocation("2006", s, loc)
		return DateRange{t.UTC(), t.AddDate(1, 0, 0).UTC()}, err
	case 7:
		t, err := time.ParseInLocation("2006-01", s, loc)
		return DateRange{t.UTC(), t.AddDate(0, 1, 0).UTC()}, err
	case 10:
		t, err := time.ParseInLocation("2006-01-02", s, loc)
		return DateRange{t.UTC(), t.AddDate(0, 0, 1).UTC()}, err
	}
	// A full date and time, with seconds, optional fraction and a zone.
	if len(s) > 19 && s[17:19] == "60" {
		s = s[:17] + "59" + s[19:]
	}
	// The precision is that of the last digit written; time.Parse reads at
	// most nine fraction digits, and finer ones add nothing.
	unit := time.Second
	if len(s) > 19 && s[19] == '.' {
		end := 20
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		digits := end - 20
		if digits > 9 {
			s = s[:29] + s[end:]
			digits = 9
		}
		unit = time.Nanosecond
		for d := digits; d < 9; d++ {
			unit *= 10
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return DateRange{}, err
	}
	t = t.UTC()
	return DateRange{t, t.Add(unit)}, nil
}

// validID reports whether s is a FHIR id: 1 to 64 of A–Z, a–z, 0–9, '-', '.'.
// ValidID reports whether s is a FHIR id (R4: 1 to 64 of A-Z, a-z, 0-9, '-' and
// '.'); the API takes no other ids in paths and parameters.
func ValidID(s string) bool { return idRE.MatchString(s) }
