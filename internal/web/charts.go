package web

import (
	"fmt"
	"html/template"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/clock"
)

// Charts are drawn on the server as inline SVG: no script, no style
// attribute (the CSP allows neither), colours from the classes in app.css.
// A chart is a picture of a table the page also shows, so it carries a
// summary for screen readers (role="img" and its label) and nothing a
// reader would miss without it.

// chartSpec is what a chart shows: one or more series over time.
type chartSpec struct {
	// Label names what is measured ("Lichaamsgewicht"), or LabelKey a
	// message that does; Unit is the values' unit as people write it.
	Label, LabelKey, Unit string
	Series                []chartSeries
	// Counts are whole numbers of events per day: the y axis starts at
	// zero, its ticks are integers and the x axis has a tick per week.
	Counts bool
	// From and To fix the time axis (the officer's 30 days); zero: the
	// span of the points.
	From, To time.Time
}

// chartSeries is one line; Name is its legend, or NameKey a message.
type chartSeries struct {
	Name, NameKey string
	Points        []chartPoint
}

type chartPoint struct {
	At    time.Time
	Value float64
}

// The drawing area in the SVG's own units; the SVG scales to its box, which
// the CSS keeps near these sizes so that its text stays readable. A chart of
// measurements is narrow (two fit side by side), the officer's 30 days wide.
const (
	chartH, chartNarrow, chartWide = 220, 440, 720
	plotL, plotT, plotB            = 56.0, 14.0, 180.0
	plotMarginR                    = 36.0 // room for the last date's label
	chartXLabelY, chartMaxSeries   = 202.0, 3
)

type svgTick struct {
	Pos, Label string
	Anchor     string // x labels: a date at an edge of the plot stays inside the SVG
}

type svgDot struct {
	X, Y  string
	Title string
}

type svgLine struct {
	Class  string
	Shape  string // circle, square, triangle: the series differ in more than colour
	Points string
	Dots   []svgDot
}

type svgLegend struct {
	Class, Shape, Name string
}

type svgChart struct {
	Title, Summary        string
	Class                 string
	Width, Height         int
	Left, Right, Top, Bot string
	XLabelY, YLabelX      string
	YTicks, XTicks        []svgTick
	Lines                 []svgLine
	Legend                []svgLegend
}

var chartTemplate = template.Must(template.New("chart").Parse(`<figure class="chart {{.Class}}">
{{with .Title}}<figcaption class="chart-title">{{.}}</figcaption>{{end}}
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="{{.Summary}}" focusable="false" class="chart-svg">
<title>{{.Summary}}</title>
<g class="chart-grid">{{range .YTicks}}<line x1="{{$.Left}}" x2="{{$.Right}}" y1="{{.Pos}}" y2="{{.Pos}}"/>{{end}}</g>
<g class="chart-axis"><line x1="{{.Left}}" x2="{{.Left}}" y1="{{.Top}}" y2="{{.Bot}}"/><line x1="{{.Left}}" x2="{{.Right}}" y1="{{.Bot}}" y2="{{.Bot}}"/></g>
<g class="chart-ylabels" text-anchor="end">{{range .YTicks}}<text x="{{$.YLabelX}}" y="{{.Pos}}" dy="0.35em">{{.Label}}</text>{{end}}</g>
<g class="chart-xlabels" text-anchor="middle">{{range .XTicks}}<text x="{{.Pos}}" y="{{$.XLabelY}}"{{with .Anchor}} text-anchor="{{.}}"{{end}}>{{.Label}}</text>{{end}}</g>
{{range .Lines}}<g class="chart-series {{.Class}}">{{if .Points}}<polyline points="{{.Points}}"/>{{end}}
{{$shape := .Shape}}{{range .Dots}}{{if eq $shape "square"}}<rect x="{{.X}}" y="{{.Y}}" width="8" height="8" transform="translate(-4 -4)"><title>{{.Title}}</title></rect>{{else if eq $shape "triangle"}}<polygon points="0,-5 5,4 -5,4" transform="translate({{.X}} {{.Y}})"><title>{{.Title}}</title></polygon>{{else}}<circle cx="{{.X}}" cy="{{.Y}}" r="6"><title>{{.Title}}</title></circle>{{end}}{{end}}</g>
{{end}}</svg>
{{if .Legend}}<ul class="chart-legend">{{range .Legend}}<li><span class="swatch {{.Class}} {{.Shape}}" aria-hidden="true"></span> {{.Name}}</li>{{end}}</ul>{{end}}
</figure>`))

var chartShapes = [chartMaxSeries]string{"circle", "square", "triangle"}

// renderChart draws spec in lang; a chart without any point draws nothing
// (the page's table, or its "Niets vastgelegd", says so in words).
func renderChart(lang string, spec chartSpec) template.HTML {
	var series []chartSeries
	for _, s := range spec.Series {
		if len(s.Points) > 0 && len(series) < chartMaxSeries {
			pts := append([]chartPoint(nil), s.Points...)
			sort.SliceStable(pts, func(i, j int) bool { return pts[i].At.Before(pts[j].At) })
			s.Points = pts
			if s.NameKey != "" {
				s.Name = msg(lang, s.NameKey)
			}
			series = append(series, s)
		}
	}
	if len(series) == 0 {
		return ""
	}
	label := spec.Label
	if spec.LabelKey != "" {
		label = msg(lang, spec.LabelKey)
	}
	from, to := spec.From, spec.To
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, p := range s.Points {
			lo, hi = math.Min(lo, p.Value), math.Max(hi, p.Value)
			if spec.From.IsZero() && (from.IsZero() || p.At.Before(from)) {
				from = p.At
			}
			if spec.To.IsZero() && (to.IsZero() || p.At.After(to)) {
				to = p.At
			}
		}
	}
	yTicks, step := niceTicks(lo, hi, spec.Counts)
	yMin, yMax := yTicks[0], yTicks[len(yTicks)-1]
	decimals := 0
	if !spec.Counts && step < 1 {
		decimals = int(math.Ceil(-math.Log10(step) - 1e-9))
	}
	width, class := chartNarrow, "chart-narrow"
	if spec.Counts {
		width, class = chartWide, "chart-wide"
	}
	plotR := float64(width) - plotMarginR
	x := func(t time.Time) float64 {
		if !to.After(from) {
			return (plotL + plotR) / 2
		}
		return plotL + float64(t.Sub(from))/float64(to.Sub(from))*(plotR-plotL)
	}
	y := func(v float64) float64 { return plotB - (v-yMin)/(yMax-yMin)*(plotB-plotT) }
	c := svgChart{Width: width, Height: chartH, Left: coord(plotL), Right: coord(plotR), Top: coord(plotT), Bot: coord(plotB),
		XLabelY: coord(chartXLabelY), YLabelX: coord(plotL - 8), Class: class}
	if !spec.Counts {
		// The officer's chart has the section's heading; a measurement's
		// chart says what it shows itself.
		c.Title = label
		if spec.Unit != "" {
			c.Title += " (" + spec.Unit + ")"
		}
	}
	for _, v := range yTicks {
		c.YTicks = append(c.YTicks, svgTick{Pos: coord(y(v)), Label: chartNumber(lang, v, decimals)})
	}
	ticks := timeTicks(from, to, spec.Counts)
	for i, t := range ticks {
		tick := svgTick{Pos: coord(x(t)), Label: t.In(clock.Amsterdam()).Format(layoutDay)}
		switch {
		case spec.Counts:
			tick.Label = t.In(clock.Amsterdam()).Format("02-01")
		case len(ticks) > 1 && i == 0:
			tick.Anchor = "start"
		case len(ticks) > 1 && i == len(ticks)-1:
			tick.Anchor = "end"
		}
		c.XTicks = append(c.XTicks, tick)
	}
	var parts []string
	for i, s := range series {
		l := svgLine{Class: "series-" + strconv.Itoa(i), Shape: chartShapes[i]}
		var pts []string
		for _, p := range s.Points {
			px, py := coord(x(p.At)), coord(y(p.Value))
			pts = append(pts, px+","+py)
			if !spec.Counts || p.Value != 0 {
				// Days without events need no marker; the line shows them.
				l.Dots = append(l.Dots, svgDot{X: px, Y: py, Title: pointTitle(lang, spec, s, p, decimals)})
			}
		}
		if len(pts) > 1 {
			l.Points = strings.Join(pts, " ")
		}
		c.Lines = append(c.Lines, l)
		if len(series) > 1 {
			c.Legend = append(c.Legend, svgLegend{Class: l.Class, Shape: l.Shape, Name: s.Name})
		}
		parts = append(parts, seriesSummary(lang, spec, s, decimals))
	}
	c.Summary = label + ": " + strings.Join(parts, "; ")
	if spec.Counts {
		c.Summary = fmt.Sprintf(msg(lang, "chart.counts.summary"), label, from.In(clock.Amsterdam()).Format(layoutDay),
			to.In(clock.Amsterdam()).Format(layoutDay), strings.Join(parts, ", "))
	}
	var b strings.Builder
	if err := chartTemplate.Execute(&b, c); err != nil {
		// The template is fixed and its data plain values: this is a bug.
		panic("web: chart template: " + err.Error())
	}
	return template.HTML(b.String()) // html/template escaped every value
}

// seriesSummary says a series in words for the chart's label: the number
// of measurements, their period and the last value; for counts, the total.
func seriesSummary(lang string, spec chartSpec, s chartSeries, decimals int) string {
	if spec.Counts {
		total := 0.0
		for _, p := range s.Points {
			total += p.Value
		}
		return fmt.Sprintf("%s %s", chartNumber(lang, total, 0), strings.ToLower(s.Name))
	}
	first, last := s.Points[0], s.Points[len(s.Points)-1]
	value := chartNumber(lang, last.Value, max(decimals, valueDecimals(last.Value)))
	if spec.Unit != "" {
		value += " " + spec.Unit
	}
	name := ""
	if len(spec.Series) > 1 {
		name = s.Name + " "
	}
	if len(s.Points) == 1 {
		return name + fmt.Sprintf(msg(lang, "chart.one"), measuredDay(first.At), value)
	}
	return name + fmt.Sprintf(msg(lang, "chart.many"), len(s.Points), measuredDay(first.At), measuredDay(last.At), value)
}

func pointTitle(lang string, spec chartSpec, s chartSeries, p chartPoint, decimals int) string {
	v := chartNumber(lang, p.Value, max(decimals, valueDecimals(p.Value)))
	if spec.Unit != "" {
		v += " " + spec.Unit
	}
	if len(spec.Series) > 1 {
		v = s.Name + " " + v
	}
	return measuredDay(p.At) + ": " + v
}

func measuredDay(t time.Time) string { return t.In(clock.Amsterdam()).Format(layoutDay) }

// valueDecimals is how many decimals a recorded value has (67.9: one), so
// that a summary does not round away what was measured.
func valueDecimals(v float64) int {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if _, frac, ok := strings.Cut(s, "."); ok {
		return min(len(frac), 4)
	}
	return 0
}

func chartNumber(lang string, v float64, decimals int) string {
	return decimal(lang, strconv.FormatFloat(v, 'f', decimals, 64))
}

func coord(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// niceTicks are four to six round values (1, 2 or 5 times a power of ten
// apart) that enclose lo..hi; counts start at zero and step by whole numbers.
func niceTicks(lo, hi float64, counts bool) ([]float64, float64) {
	if counts {
		lo, hi = 0, math.Max(hi, 1)
	}
	if hi == lo {
		pad := math.Max(math.Abs(hi)*0.1, 1)
		lo, hi = lo-pad, hi+pad
	}
	step := niceNumber((hi - lo) / 4)
	if counts && step < 1 {
		step = 1
	}
	start, end := math.Floor(lo/step)*step, math.Ceil(hi/step)*step
	if end == start {
		end = start + step
	}
	var ticks []float64
	for i := 0; start+float64(i)*step <= end+step/2; i++ {
		// Multiplying, not adding, keeps 0.1 steps free of drift.
		ticks = append(ticks, math.Round((start+float64(i)*step)/step)*step)
	}
	return ticks, step
}

func niceNumber(x float64) float64 {
	exp := math.Floor(math.Log10(x))
	f := x / math.Pow(10, exp)
	var nf float64
	switch {
	case f <= 1:
		nf = 1
	case f <= 2:
		nf = 2
	case f <= 5:
		nf = 5
	default:
		nf = 10
	}
	return nf * math.Pow(10, exp)
}

// timeTicks are the days the x axis names: the first and the last point
// (and the middle when they are far apart), or for a chart of days every
// seventh day back from the last.
func timeTicks(from, to time.Time, days bool) []time.Time {
	if days {
		var out []time.Time
		for t := to; !t.Before(from); t = t.AddDate(0, 0, -7) {
			out = append([]time.Time{t}, out...)
		}
		return out
	}
	switch span := to.Sub(from); {
	case span <= 0:
		return []time.Time{from}
	case span > 60*24*time.Hour:
		return []time.Time{from, from.Add(span / 2), to}
	}
	return []time.Time{from, to}
}

// measurementTrends draws a chart per measured code and unit from the rows
// of the measurements section (already decided, read and logged): the
// weights in one, the HbA1c values in another. Rows without a number or a
// date are in the table only.
func measurementTrends(lang string, rows []row) []template.HTML {
	var order []string
	specs := map[string]*chartSpec{}
	for _, r := range rows {
		if r.Type != "Observation" || r.Number == "" {
			continue
		}
		v, err := strconv.ParseFloat(r.Number, 64)
		at, ok := fhirTime(r.sortKey)
		if err != nil || !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		key := r.What + "\x00" + r.Unit
		sp, seen := specs[key]
		if !seen {
			sp = &chartSpec{Label: r.What, Unit: r.Unit, Series: []chartSeries{{Name: r.What}}}
			specs[key] = sp
			order = append(order, key)
		}
		sp.Series[0].Points = append(sp.Series[0].Points, chartPoint{At: at, Value: v})
	}
	var out []template.HTML
	for _, k := range order {
		if h := renderChart(lang, *specs[k]); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// fhirTime reads a FHIR dateTime or date (a day as midnight in Amsterdam).
func fhirTime(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, true
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, clock.Amsterdam()); err == nil {
		return t, true
	}
	return time.Time{}, false
}
