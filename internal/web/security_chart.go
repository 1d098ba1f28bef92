package web

import (
	"net/http"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
)

// activityDays is how far back the security officer's start page counts.
const activityDays = 30

// maxActivityEvents bounds each count: beyond it the page says the chart
// is incomplete rather than reading without end.
const maxActivityEvents = 5000

// activityKind is one line of the officer's chart and how the log is
// searched for it.
type activityKind struct {
	key    string // message key of its name
	search audit.Search
}

var activityKinds = []activityKind{
	{"sec.chart.emergency", audit.Search{Kind: audit.KindAccess, Action: audit.ActionEmergency}},
	{"sec.chart.denied", audit.Search{Outcome: audit.OutcomeDenied}},
	{"sec.chart.logon", audit.Search{Action: audit.ActionLogon, Outcome: audit.OutcomeFailed}},
}

// activityDay is one row of the table below the chart.
type activityDay struct {
	Day    time.Time
	Counts []int // in the order of activityKinds
}

type activityData struct {
	Chart chartSpec
	Days  []activityDay // the days with any event, newest first
	More  bool          // a count reached maxActivityEvents
}

// securityActivity counts, per day of the last 30, the emergency accesses,
// the denials and the failed log-ons of the officer's tenant. It reads the
// log as every officer's page does: access decides (DecideLogRead) and
// audit logs each reading before it releases an event (LOG-3).
func (s *server) securityActivity(r *http.Request, c *sessionCtx) (*activityData, error) {
	p, err := s.d.Access.DecideLogRead(r.Context(), c.subject, access.LogScope{})
	if err != nil {
		return nil, err
	}
	now := s.d.Clock.Now().In(clock.Amsterdam())
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, clock.Amsterdam())
	from, end := today.AddDate(0, 0, -(activityDays-1)), today.AddDate(0, 0, 1)
	d := &activityData{Chart: chartSpec{LabelKey: "sec.chart.title", Counts: true, From: from, To: today}}
	counts := make([][activityDays]int, len(activityKinds))
	for k, kind := range activityKinds {
		q := kind.search
		q.From, q.To, q.Limit = from, end, maxActivityEvents
		rd, err := s.d.Audit.Read(r.Context(), p, q, r.URL.Path+"#chart="+kind.key)
		if err != nil {
			return nil, err
		}
		n, err := rd.Each(r.Context(), func(e audit.Event) error {
			t := e.Time.In(clock.Amsterdam())
			day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, clock.Amsterdam())
			// Days are counted in Amsterdam time; AddDate keeps the
			// count right across the change to and from summer time.
			for i := 0; i < activityDays; i++ {
				if from.AddDate(0, 0, i).Equal(day) {
					counts[k][i]++
					break
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		d.More = d.More || n >= maxActivityEvents
		series := chartSeries{NameKey: kind.key}
		for i := 0; i < activityDays; i++ {
			series.Points = append(series.Points, chartPoint{At: from.AddDate(0, 0, i), Value: float64(counts[k][i])})
		}
		d.Chart.Series = append(d.Chart.Series, series)
	}
	for i := activityDays - 1; i >= 0; i-- {
		row := activityDay{Day: from.AddDate(0, 0, i)}
		busy := false
		for k := range activityKinds {
			row.Counts = append(row.Counts, counts[k][i])
			busy = busy || counts[k][i] > 0
		}
		if busy {
			d.Days = append(d.Days, row)
		}
	}
	return d, nil
}
