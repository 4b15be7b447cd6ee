package dashboard

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// Charts are SVG written here, with axes, tick labels and a <title> on
// every mark (the browser shows it on hover), so a page shows them with
// no script. Text is escaped with template.HTMLEscapeString; every number
// is formatted by this file.

// niceMax rounds n up to a tick-friendly maximum and returns the step
// between ticks: at most five steps of 1, 2 or 5 times a power of ten.
func niceMax(n int) (top, step int) {
	if n <= 0 {
		return 1, 1
	}
	for mag := 1; ; mag *= 10 {
		for _, m := range []int{1, 2, 5} {
			s := m * mag
			if (n+s-1)/s <= 5 {
				return (n + s - 1) / s * s, s
			}
		}
	}
}

// bar is one bar of a bar chart: Value, of which Part is drawn darker.
type bar struct {
	Label, Title, Href string
	Value, Part        int
}

// barChart is a horizontal bar chart, one bar per rule.
type barChart struct {
	SVG  template.HTML
	Bars []bar
	Max  int
}

// barSVG draws the devices failing each rule, overdue in the darker part.
func barSVG(bars []bar) barChart {
	const (
		w, left, right, row, top = 640, 170, 56, 24, 8
	)
	c := barChart{Bars: bars}
	for _, b := range bars {
		c.Max = max(c.Max, b.Value)
	}
	topV, step := niceMax(c.Max)
	pw := w - left - right
	h := top + row*len(bars) + 34
	x := func(v int) float64 { return float64(left) + float64(v)*float64(pw)/float64(topV) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart bars" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="devices failing each rule, overdue darker">`, w, h, w, h)
	axisY := top + row*len(bars)
	for v := 0; v <= topV; v += step {
		fmt.Fprintf(&b, `<line class="grid" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>`, x(v), top, x(v), axisY)
		fmt.Fprintf(&b, `<text class="tick x-tick" x="%.1f" y="%d" text-anchor="middle">%d</text>`, x(v), axisY+14, v)
	}
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, left, axisY, w-right, axisY)
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, left, top, left, axisY)
	fmt.Fprintf(&b, `<text class="axis-label" x="%d" y="%d" text-anchor="middle">devices failing (darker: past the deadline)</text>`, left+pw/2, axisY+30)
	for i, br := range bars {
		y := top + i*row
		esc := template.HTMLEscapeString
		fmt.Fprintf(&b, `<g class="bar" data-rule="%s">`, esc(br.Label))
		fmt.Fprintf(&b, `<title>%s: %d failing, %d overdue</title>`, esc(br.Label+" ("+br.Title+")"), br.Value, br.Part)
		fmt.Fprintf(&b, `<a href="%s"><text class="bar-label" x="%d" y="%d" text-anchor="end">%s</text></a>`, esc(br.Href), left-6, y+row/2+4, esc(br.Label))
		if br.Value > 0 {
			fmt.Fprintf(&b, `<rect class="b-failing" x="%d" y="%d" width="%.1f" height="%d"/>`, left, y+4, x(br.Value)-float64(left), row-8)
		}
		if br.Part > 0 {
			fmt.Fprintf(&b, `<rect class="b-overdue" x="%d" y="%d" width="%.1f" height="%d"/>`, left, y+4, x(br.Part)-float64(left), row-8)
		}
		fmt.Fprintf(&b, `<text class="bar-value" x="%.1f" y="%d">%d</text>`, x(br.Value)+4, y+row/2+4, br.Value)
		b.WriteString(`</g>`)
	}
	b.WriteString(`</svg>`)
	c.SVG = template.HTML(b.String())
	return c
}

// trendChart is the fleet over time: lines per status and the total.
type trendChart struct {
	SVG template.HTML
	// Points are the days drawn: those since the first day with data.
	Points []store.TrendPoint
	// Trimmed: the window started before the first data; the chart
	// starts at the first day with data instead of drawing zeros (on a
	// new collector, a flat line at 0 and a spike at the end).
	Trimmed     bool
	First, Last time.Time
	Max         int
	Stale       int
}

// trendSVG draws points, leading days without data left out, with the
// stale band: the devices stale now, which the lines still count with
// their last verdicts (history does not know staleness).
func trendSVG(points []store.TrendPoint, staleNow int) trendChart {
	c := trendChart{Stale: staleNow}
	total := func(p store.TrendPoint) int { return p.Compliant + p.Failing + p.Unknown }
	first := 0
	for first < len(points) && total(points[first]) == 0 {
		first++
	}
	c.Trimmed = first > 0
	c.Points = points[first:]
	if len(c.Points) == 0 {
		return c
	}
	c.First, c.Last = c.Points[0].Day, c.Points[len(c.Points)-1].Day
	for _, p := range c.Points {
		c.Max = max(c.Max, total(p))
	}
	const (
		w, h, left, right, top, bottom = 640, 240, 44, 16, 12, 44
	)
	pw, ph := w-left-right, h-top-bottom
	topV, step := niceMax(max(c.Max, staleNow))
	n := len(c.Points)
	x := func(i int) float64 {
		if n == 1 {
			return float64(left) + float64(pw)/2
		}
		return float64(left) + float64(i)*float64(pw)/float64(n-1)
	}
	y := func(v int) float64 { return float64(top) + float64(ph) - float64(v)*float64(ph)/float64(topV) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart trend" id="trend" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="devices compliant, failing and unknown at the end of each day, %s to %s">`,
		w, h, w, h, c.First.Format("2006-01-02"), c.Last.Format("2006-01-02"))
	// The stale band: today's column, up to the devices stale now.
	if staleNow > 0 {
		bw := float64(pw) / float64(max(n-1, 1)) / 2
		bw = min(max(bw, 10), 40)
		fmt.Fprintf(&b, `<rect class="stale-band" id="stale-band" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>stale now: %d devices, counted in the lines with their last verdicts</title></rect>`,
			min(x(n-1)-bw/2, float64(w-right)-bw), y(staleNow), bw, y(0)-y(staleNow), staleNow)
	}
	for v := 0; v <= topV; v += step {
		fmt.Fprintf(&b, `<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, left, y(v), w-right, y(v))
		fmt.Fprintf(&b, `<text class="tick y-tick" x="%d" y="%.1f" text-anchor="end">%d</text>`, left-6, y(v)+4, v)
	}
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, left, top, left, top+ph)
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, left, top+ph, w-right, top+ph)
	// Date ticks: at most six, the first and the last always.
	ticks := []int{0}
	if n > 1 {
		every := max(1, (n-1+4)/5)
		for i := every; i < n-1; i += every {
			if n-1-i >= every/2+1 {
				ticks = append(ticks, i)
			}
		}
		ticks = append(ticks, n-1)
	}
	for _, i := range ticks {
		d := c.Points[i].Day
		fmt.Fprintf(&b, `<line class="axis" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>`, x(i), top+ph, x(i), top+ph+4)
		fmt.Fprintf(&b, `<g><title>%s</title><text class="tick x-tick" x="%.1f" y="%d" text-anchor="middle">%s</text></g>`, d.Format("2006-01-02"), x(i), top+ph+16, d.Format("2 Jan"))
	}
	fmt.Fprintf(&b, `<text class="axis-label" x="%d" y="%d" text-anchor="middle">day (UTC), devices at its end</text>`, left+pw/2, h-6)
	series := []struct {
		class string
		v     func(store.TrendPoint) int
	}{
		{"l-total", total},
		{"l-compliant", func(p store.TrendPoint) int { return p.Compliant }},
		{"l-unknown", func(p store.TrendPoint) int { return p.Unknown }},
		{"l-failing", func(p store.TrendPoint) int { return p.Failing }},
	}
	for _, s := range series {
		if n > 1 {
			fmt.Fprintf(&b, `<polyline class="%s" points="`, s.class)
			for i, p := range c.Points {
				fmt.Fprintf(&b, "%.1f,%.1f ", x(i), y(s.v(p)))
			}
			b.WriteString(`"/>`)
		}
	}
	for i, p := range c.Points {
		fmt.Fprintf(&b, `<g class="day" data-day="%s"><title>%s: %d compliant, %d failing, %d unknown</title>`, p.Day.Format("2006-01-02"), p.Day.Format("2006-01-02"), p.Compliant, p.Failing, p.Unknown)
		for _, s := range series[1:] {
			fmt.Fprintf(&b, `<circle class="%s" cx="%.1f" cy="%.1f" r="3"/>`, s.class, x(i), y(s.v(p)))
		}
		b.WriteString(`</g>`)
	}
	b.WriteString(`</svg>`)
	c.SVG = template.HTML(b.String())
	return c
}
