package web

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zorgkluis/zorgkluis/internal/access"
	"github.com/zorgkluis/zorgkluis/internal/audit"
	"github.com/zorgkluis/zorgkluis/internal/clock"
	"github.com/zorgkluis/zorgkluis/internal/fhir"
	"github.com/zorgkluis/zorgkluis/internal/identity"
	"github.com/zorgkluis/zorgkluis/internal/record"
)

var (
	circleRE = regexp.MustCompile(`<circle cx="([0-9.]+)" cy="([0-9.]+)" r="6"><title>([^<]*)</title>`)
	yLabelRE = regexp.MustCompile(`<g class="chart-ylabels"[^>]*>(.*?)</g>`)
	xLabelRE = regexp.MustCompile(`<g class="chart-xlabels"[^>]*>(.*?)</g>`)
	textRE   = regexp.MustCompile(`<text[^>]*>([^<]*)</text>`)
)

func texts(re *regexp.Regexp, svg string) []string {
	m := re.FindStringSubmatch(svg)
	if m == nil {
		return nil
	}
	var out []string
	for _, t := range textRE.FindAllStringSubmatch(m[1], -1) {
		out = append(out, t[1])
	}
	return out
}

func amsterdam(y int, m time.Month, d, h int) time.Time {
	return time.Date(y, m, d, h, 0, 0, 0, clock.Amsterdam())
}

// A chart of weights places the first measurement at the left edge, the
// last at the right, the heaviest highest, and names every point, the axes
// and the chart in Dutch form (dd-mm-jjjj, decimal comma); in English the
// decimal point. The SVG is an image with a label, not a script.
// REQ: DP-7
func TestChartPlacesPoints(t *testing.T) {
	spec := chartSpec{Label: "Lichaamsgewicht", Unit: "kg", Series: []chartSeries{{Name: "Lichaamsgewicht", Points: []chartPoint{
		{amsterdam(2026, 11, 3, 9), 67.9}, // given out of order: the chart sorts by time
		{amsterdam(2026, 9, 4, 9), 68.4},
		{amsterdam(2026, 10, 4, 9), 68.1},
	}}}}
	svg := string(renderChart("nl", spec))
	dots := circleRE.FindAllStringSubmatch(svg, -1)
	if len(dots) != 3 {
		t.Fatalf("%d points drawn, want 3:\n%s", len(dots), svg)
	}
	f := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	x0, x1, x2 := f(dots[0][1]), f(dots[1][1]), f(dots[2][1])
	y0, y1, y2 := f(dots[0][2]), f(dots[1][2]), f(dots[2][2])
	plotR := chartNarrow - plotMarginR
	if x0 != plotL || x2 != plotR || !(x0 < x1 && x1 < x2) {
		t.Errorf("points not placed in time order across the plot: x %v %v %v", x0, x1, x2)
	}
	// The middle point is 30 of 60 days in (one day off for the hour that
	// summer time ends): half-way, to a pixel.
	if mid := (plotL + plotR) / 2; x1 < mid-10 || x1 > mid {
		t.Errorf("middle point at x %v, want about %v", x1, mid)
	}
	if !(y0 < y1 && y1 < y2) || y0 < plotT || y2 > plotB {
		t.Errorf("heavier is not higher within the plot: y %v %v %v", y0, y1, y2)
	}
	if dots[0][3] != "04-09-2026: 68,4 kg" || dots[2][3] != "03-11-2026: 67,9 kg" {
		t.Errorf("point titles %q, %q", dots[0][3], dots[2][3])
	}
	ys := texts(yLabelRE, svg)
	if len(ys) < 3 || !slices.ContainsFunc(ys, func(s string) bool { return strings.Contains(s, ",") }) {
		t.Errorf("y axis labels %q: want decimal commas", ys)
	}
	for _, s := range ys {
		if strings.Contains(s, ".") {
			t.Errorf("y axis label %q has a decimal point on a Dutch page", s)
		}
	}
	if xs := texts(xLabelRE, svg); len(xs) != 3 || xs[0] != "04-09-2026" || xs[2] != "03-11-2026" {
		t.Errorf("x axis labels %q, want dd-mm-jjjj from first to last", xs)
	}
	for _, want := range []string{`role="img"`, `<figcaption class="chart-title">Lichaamsgewicht (kg)</figcaption>`, `aria-label="Lichaamsgewicht: 3 metingen van 04-09-2026 tot 03-11-2026, laatste 67,9 kg"`, `<title>Lichaamsgewicht: 3 metingen`, `<polyline points="`} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %s:\n%s", want, svg)
		}
	}
	for _, bad := range []string{"<script", "style=", " on"} {
		if strings.Contains(strings.ToLower(svg), bad) {
			t.Errorf("chart has %q, which the CSP forbids", bad)
		}
	}
	en := string(renderChart("en", spec))
	if !strings.Contains(en, "04-09-2026: 68.4 kg") || !strings.Contains(en, "3 measurements from 04-09-2026") {
		t.Errorf("English chart not in English form:\n%s", en)
	}
}

// No points, no chart: an empty series is left out of the drawing and its
// legend, and a chart of only empty series is not drawn at all (the table
// or "Niets vastgelegd" says so in words). One point is drawn in the middle.
func TestChartEmptySeries(t *testing.T) {
	if got := renderChart("nl", chartSpec{Label: "Glucose", Series: []chartSeries{{Name: "Glucose"}}}); got != "" {
		t.Fatalf("a chart without points: %s", got)
	}
	if got := renderChart("nl", chartSpec{Label: "Glucose"}); got != "" {
		t.Fatalf("a chart without series: %s", got)
	}
	svg := string(renderChart("nl", chartSpec{Label: "Glucose", Unit: "mmol/l", Series: []chartSeries{
		{Name: "Nuchter"}, {Name: "Na de maaltijd", Points: []chartPoint{{amsterdam(2026, 12, 1, 8), 5.8}}}}}))
	dots := circleRE.FindAllStringSubmatch(svg, -1)
	if len(dots) != 1 || dots[0][1] != coord((plotL+chartNarrow-plotMarginR)/2) || strings.Contains(svg, "Nuchter") || strings.Contains(svg, "<polyline") {
		t.Fatalf("the one series with a point is not drawn alone, in the middle:\n%s", svg)
	}
	if !strings.Contains(svg, `aria-label="Glucose: Na de maaltijd gemeten op 01-12-2026: 5,8 mmol/l"`) {
		t.Errorf("summary of one point:\n%s", svg)
	}
}

// The officer's chart of counts starts its y axis at zero with whole
// numbers, names a day a week on the x axis as dd-mm, marks only the days
// with events, tells the series apart by shape and legend, and sums them up.
func TestChartCounts(t *testing.T) {
	from := amsterdam(2026, 11, 4, 0)
	var em, den []chartPoint
	for i := range 30 {
		em = append(em, chartPoint{from.AddDate(0, 0, i), 0})
		den = append(den, chartPoint{from.AddDate(0, 0, i), 0})
	}
	em[29].Value, den[3].Value, den[10].Value = 1, 2, 5
	spec := chartSpec{LabelKey: "sec.chart.title", Counts: true, From: from, To: from.AddDate(0, 0, 29),
		Series: []chartSeries{{NameKey: "sec.chart.emergency", Points: em}, {NameKey: "sec.chart.denied", Points: den}}}
	svg := string(renderChart("nl", spec))
	if ys := texts(yLabelRE, svg); len(ys) < 2 || ys[0] != "0" || slices.ContainsFunc(ys, func(s string) bool { return strings.ContainsAny(s, ",.") }) {
		t.Errorf("y axis of counts %q: want whole numbers from 0", ys)
	}
	xs := texts(xLabelRE, svg)
	if len(xs) != 5 || xs[len(xs)-1] != "03-12" || xs[0] != "05-11" {
		t.Errorf("x axis of days %q: want a dd-mm label a week back from 03-12", xs)
	}
	if n := len(circleRE.FindAllString(svg, -1)); n != 1 {
		t.Errorf("%d circles, want the one day with an emergency access", n)
	}
	if n := strings.Count(svg, "<rect "); n != 2 {
		t.Errorf("%d squares, want the two days with denials", n)
	}
	for _, want := range []string{`aria-label="De laatste 30 dagen, 04-11-2026 tot en met 03-12-2026: 1 noodtoegangen, 7 weigeringen"`,
		`class="swatch series-0 circle"`, `class="swatch series-1 square"`, "Weigeringen</li>"} {
		if !strings.Contains(svg, want) {
			t.Errorf("counts chart lacks %s:\n%s", want, svg)
		}
	}
}

func TestNiceTicks(t *testing.T) {
	for _, c := range []struct {
		lo, hi float64
		counts bool
		want   []float64
	}{
		{67.9, 68.4, false, []float64{67.8, 68, 68.2, 68.4}},
		{44, 44, false, []float64{35, 40, 45, 50}},
		{0, 0, true, []float64{0, 1}},
		{0, 7, true, []float64{0, 2, 4, 6, 8}},
		{120, 145, false, []float64{120, 130, 140, 150}},
	} {
		got, _ := niceTicks(c.lo, c.hi, c.counts)
		if !slices.Equal(got, c.want) {
			t.Errorf("niceTicks(%v, %v, %v) = %v, want %v", c.lo, c.hi, c.counts, got, c.want)
		}
	}
}

// The measurements section shows a chart per measured code above the
// table, for the professional and for the person alike; only numbers with a
// date are drawn, and every value stays in the table.
// REQ: DP-7
func TestMeasurementPagesShowTrends(t *testing.T) {
	e := newPageEnv(t)
	tenant := e.tenant("Praktijk A")
	gp := e.login(tenant, identity.KindProfessional, access.RoleProfessional)
	person := e.login(tenant, identity.KindPerson, access.RolePerson)
	pid := e.registerPatient(gp, "Sanne de Vries", "female", "1984-03-12", "123456782")
	if _, err := e.dec.AddRelationship(e.ctx, access.Relationship{TenantID: tenant, ProfessionalID: gp.subj.AccountID(), PatientID: pid,
		Kind: "gp", Start: e.clock.Now().Add(-time.Hour), RecordedBy: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := e.ids.LinkPerson(e.ctx, person.subj.AccountID(), pid); err != nil {
		t.Fatal(err)
	}
	obs := func(what string, v any, unit string, daysAgo int) map[string]any {
		return map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": what},
			"effectiveDateTime": e.clock.Now().AddDate(0, 0, -daysAgo).Format(time.RFC3339),
			"valueQuantity":     map[string]any{"value": v, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}
	}
	text := map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "Rookgedrag"},
		"effectiveDateTime": e.clock.Now().Format(time.RFC3339), "valueString": "niet-roker"}
	for _, r := range []map[string]any{obs("Lichaamsgewicht", 68.4, "kg", 90), obs("Lichaamsgewicht", 67.9, "kg", 30),
		obs("HbA1c", 44, "mmol/mol", 14), text} {
		g, err := e.dec.Decide(e.ctx, gp.subj, access.Request{PatientID: pid, Action: access.Create, Categories: []string{fhir.CategoryClinical}, Purpose: purposeTreatment})
		if err != nil {
			t.Fatal(err)
		}
		id, _ := e.ids.NewID("o-")
		r["id"], r["subject"] = id, map[string]any{"reference": "Patient/" + pid}
		body, _ := json.Marshal(r)
		if _, err := e.kit.Records.Insert(e.ctx, g, record.Resource{Type: "Observation", ID: id, PatientID: pid, Categories: []string{fhir.CategoryClinical}, Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []struct {
		u    pageUser
		path string
	}{{gp, "/patients/" + pid + "?section=measurements"}, {person, "/me/record?section=measurements"}} {
		code, html := e.page(p.u, p.path, nil, false)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", p.path, code)
		}
		trends, table, ok := strings.Cut(html, `id="record-rows"`)
		if !ok || !strings.Contains(trends, `id="trends"`) {
			t.Fatalf("%s: no trends above the table:\n%s", p.path, html)
		}
		if n := strings.Count(trends, `<svg `); n != 2 {
			t.Errorf("%s: %d charts, want weight and HbA1c", p.path, n)
		}
		for _, want := range []string{`aria-label="Lichaamsgewicht: 2 metingen van`, `laatste 67,9 kg"`, `aria-label="HbA1c: gemeten op`} {
			if !strings.Contains(trends, want) {
				t.Errorf("%s: trends lack %s", p.path, want)
			}
		}
		if strings.Contains(trends, "Rookgedrag") || !strings.Contains(table, "niet-roker") || !strings.Contains(table, "68,4 kg") {
			t.Errorf("%s: a text value drawn, or a value missing from the table", p.path)
		}
	}
	// Another section has no chart.
	if _, html := e.page(gp, "/patients/"+pid+"?section=problems", nil, false); strings.Contains(html, "<svg") {
		t.Error("a chart outside the measurements")
	}
}

// The security officer's start page charts the last 30 days of emergency
// accesses, denials and failed log-ons per day, counted from the access log
// through the officer's permit: each count is a logged reading of the log,
// another tenant's events are not counted, and the table below the chart
// gives the same numbers.
// REQ: LOG-4
func TestOfficerStartPageChart(t *testing.T) {
	e := newPageEnv(t)
	tenant, other := e.tenant("Praktijk A"), e.tenant("Ziekenhuis B")
	officer := e.login(tenant, identity.KindAdmin, access.RoleSecurityOfficer)
	now := e.clock.Now()
	add := func(tid string, ago time.Duration, action audit.Action, outcome audit.Outcome, kind audit.Kind) {
		t.Helper()
		if _, err := e.log.Append(e.ctx, audit.Event{TenantID: tid, Time: now.Add(-ago), Action: action, Outcome: outcome, Kind: kind,
			UserID: "u-test", UserName: "Dr. Test", Role: "professional", PatientID: "p-test", Emergency: action == audit.ActionEmergency}); err != nil {
			t.Fatal(err)
		}
	}
	day := 24 * time.Hour
	add(tenant, 2*day, audit.ActionEmergency, audit.OutcomeSuccess, audit.KindAccess)
	add(tenant, 2*day, audit.ActionRead, audit.OutcomeDenied, audit.KindAccess)
	add(tenant, 2*day, audit.ActionRead, audit.OutcomeDenied, audit.KindAccess)
	add(tenant, 5*day, audit.ActionLogon, audit.OutcomeFailed, audit.KindTechnical)
	add(tenant, 40*day, audit.ActionRead, audit.OutcomeDenied, audit.KindAccess) // before the 30 days
	add(tenant, day, audit.ActionRead, audit.OutcomeSuccess, audit.KindAccess)   // not counted
	add(other, day, audit.ActionEmergency, audit.OutcomeSuccess, audit.KindAccess)

	code, html := e.page(officer, "/security/emergencies", nil, false)
	if code != http.StatusOK {
		t.Fatalf("start page: %d", code)
	}
	_, section, ok := strings.Cut(html, `id="activity"`)
	if !ok || !strings.Contains(section, `<svg `) {
		t.Fatalf("no chart on the officer's start page:\n%s", html)
	}
	if !strings.Contains(section, ": 1 noodtoegangen, 2 weigeringen, 1 mislukte aanmeldingen\"") {
		t.Errorf("chart's summary does not count 1, 2 and 1:\n%s", section)
	}
	rows := regexp.MustCompile(`(?s)<tr><td data-label="Dag">([^<]*)</td>(.*?)</tr>`).FindAllStringSubmatch(section, -1)
	cells := regexp.MustCompile(`>(\d+)</td>`)
	var got []string
	for _, r := range rows {
		var ns []string
		for _, c := range cells.FindAllStringSubmatch(r[2], -1) {
			ns = append(ns, c[1])
		}
		got = append(got, r[1]+" "+strings.Join(ns, "/"))
	}
	ams := func(ago time.Duration) string { return now.Add(-ago).In(clock.Amsterdam()).Format(layoutDay) }
	if want := []string{ams(2*day) + " 1/2/0", ams(5*day) + " 0/0/1"}; !slices.Equal(got, want) {
		t.Errorf("table below the chart: %q, want %q", got, want)
	}
	// Each count is a logged reading of the log, by the officer.
	evs, err := e.log.Query(e.ctx, audit.Filter{TenantID: tenant, UserID: officer.subj.AccountID(), Action: audit.ActionLogRead})
	if err != nil {
		t.Fatal(err)
	}
	reads := 0
	for _, ev := range evs {
		if strings.HasPrefix(ev.Query, "/security/emergencies#chart=") {
			reads++
		}
	}
	if reads != len(activityKinds) {
		t.Errorf("%d logged readings for the chart, want %d", reads, len(activityKinds))
	}
}
