// Package clock is the one source of time for zorgkluis. Every package takes
// a Clock so tests can move time (idle timeouts, lock-outs, expiry, retention)
// without sleeping.
package clock

import (
	"sync"
	"time"
	_ "time/tzdata" // Dutch time on every host, also without a zoneinfo database
)

// Clock tells the time.
type Clock interface {
	Now() time.Time
}

// System is the real clock, always in UTC.
type System struct{}

// Now returns the current time in UTC.
func (System) Now() time.Time { return time.Now().UTC() }

// Fake is a clock for tests that only moves when told to.
type Fake struct {
	mu  sync.Mutex
	now time.Time
}

// NewFake returns a fake clock set to t.
func NewFake(t time.Time) *Fake { return &Fake{now: t.UTC()} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the fake time forward by d.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// Set moves the fake time to t.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	f.now = t.UTC()
	f.mu.Unlock()
}

// Micros is the storage representation of a time: Unix microseconds, UTC.
// Both SQLite and PostgreSQL store it as BIGINT, so times compare and sort the
// same way in both dialects.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// FromMicros is the inverse of Micros.
func FromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// amsterdam is loaded once; the embedded tzdata makes the load succeed on
// every host.
var amsterdam = func() *time.Location {
	l, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		panic("clock: Europe/Amsterdam: " + err.Error())
	}
	return l
}()

// Amsterdam is the time zone of Dutch dates: the days in queries and the
// times shown to people.
func Amsterdam() *time.Location { return amsterdam }
