package audit

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"time"
)

// The HTML report is one self-contained page: inline CSS and SVG, no
// script, no external asset, so it can be mailed to an auditor and opened
// anywhere. Every number in it carries a data- attribute (tests compare
// them with the JSON report).

//go:embed report.html.tmpl
var reportHTML string

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"day":  func(t time.Time) string { return t.UTC().Format(time.DateOnly) },
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
}).Parse(reportHTML))

// outcomeColors are the chart's colours; any other outcome is grey-blue.
var outcomeColors = map[string]string{
	"delivered": "#2e7d32", "partial": "#f9a825", "unknown": "#ef6c00", "refused": "#c62828", OutcomeSandbox: "#9e9e9e",
}

// outcomeOrder stacks the bars: delivered at the bottom.
var outcomeOrder = []string{"delivered", "partial", "unknown", "refused", OutcomeSandbox}

type bar struct {
	Day, Outcome, Color string
	Count               int
	X, Y, W, H          float64
}

type chart struct {
	Width, Height float64
	Bars          []bar
	Labels        []struct {
		X    float64
		Text string
	}
	Max    int
	Legend []struct{ Outcome, Color string }
}

const (
	chartHeight = 220.0
	chartTop    = 10.0
	chartBottom = 30.0 // room for date labels
	chartLeft   = 40.0
)

func (r *Report) chart() chart {
	c := chart{Height: chartHeight}
	outcomes := slices.Clone(outcomeOrder)
	seen := map[string]bool{}
	for _, d := range r.Days {
		for o := range d.ByOutcome {
			seen[o] = true
		}
		c.Max = max(c.Max, d.Total)
	}
	for _, o := range slices.Sorted(maps.Keys(seen)) {
		if !slices.Contains(outcomes, o) {
			outcomes = append(outcomes, o)
		}
	}
	step := 28.0
	if n := len(r.Days); n > 30 {
		step = max(4, 840/float64(n))
	}
	c.Width = chartLeft + step*float64(max(len(r.Days), 1)) + 10
	plot := chartHeight - chartTop - chartBottom
	labelEvery := max(1, int(60/step))
	for i, d := range r.Days {
		x := chartLeft + step*float64(i)
		y := chartHeight - chartBottom
		for _, o := range outcomes {
			n := d.ByOutcome[o]
			if n == 0 {
				continue
			}
			h := plot * float64(n) / float64(max(c.Max, 1))
			y -= h
			c.Bars = append(c.Bars, bar{Day: d.Date, Outcome: o, Count: n, Color: colorOf(o), X: x + 1, Y: y, W: step - 2, H: h})
		}
		if i%labelEvery == 0 {
			c.Labels = append(c.Labels, struct {
				X    float64
				Text string
			}{x, d.Date[5:]})
		}
	}
	for _, o := range outcomes {
		if seen[o] {
			c.Legend = append(c.Legend, struct{ Outcome, Color string }{o, colorOf(o)})
		}
	}
	return c
}

func colorOf(outcome string) string {
	if c, ok := outcomeColors[outcome]; ok {
		return c
	}
	return "#546e7a"
}

type countRow struct {
	Key   string
	Count int
}

func sortedCounts(m map[string]int) []countRow {
	keys := slices.Sorted(maps.Keys(m))
	slices.SortStableFunc(keys, func(x, y string) int { return m[y] - m[x] })
	out := make([]countRow, len(keys))
	for i, k := range keys {
		out[i] = countRow{k, m[k]}
	}
	return out
}

// HTML writes the report as one self-contained HTML page.
func (r *Report) HTML(w io.Writer) error {
	if r.Chain == nil { // a report built without verification (BuildReport)
		c := *r
		c.Chain = &Verification{Files: []string{}, Problems: []Problem{}, Checked: "the chain was not verified"}
		r = &c
	}
	data := struct {
		*Report
		Chart     chart
		Outcomes  []countRow
		RefusalsS []countRow
		Providers []countRow
		Generated string
	}{r, r.chart(), sortedCounts(r.ByOutcome), sortedCounts(r.Refusals), sortedCounts(r.ByProvider), time.Now().UTC().Format(time.RFC3339)}
	if err := reportTmpl.Execute(w, data); err != nil {
		return fmt.Errorf("writing the HTML report: %w", err)
	}
	return nil
}
