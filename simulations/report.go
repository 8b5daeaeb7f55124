package simulations

import (
	"fmt"
	"html"
	"io"
	"sort"
	"strings"
)

// Summary totals a sweep's results, per scenario and overall.
type Summary struct {
	Scenario   string
	Runs       int
	Failed     int
	Writes     int
	Lost       int // write units lost in leader changes before apply (never acknowledged)
	Faults     int
	Messages   uint64
	Dropped    uint64
	Duplicated uint64
	Reordered  uint64
	Anomalies  map[string]int
	Converge   []int64 // ms from the final heal to settled, per run
	Lag        []int64 // replication lag samples, ms
}

// Summarize groups results by scenario, in order of first appearance, and
// adds an "all" row when there is more than one scenario.
func Summarize(results []Result) []Summary {
	var order []string
	by := map[string]*Summary{}
	add := func(name string, r Result) {
		s := by[name]
		if s == nil {
			s = &Summary{Scenario: name, Anomalies: map[string]int{}}
			by[name] = s
			order = append(order, name)
		}
		s.Runs++
		if r.Failed {
			s.Failed++
		}
		s.Writes += r.Writes
		s.Lost += r.Lost
		s.Faults += r.Faults
		s.Messages += r.Messages
		s.Dropped += r.Dropped
		s.Duplicated += r.Duplicated
		s.Reordered += r.Reordered
		for k, n := range r.Anomalies {
			s.Anomalies[k] += n
		}
		if !r.Failed {
			s.Converge = append(s.Converge, r.ConvergeMs)
		}
		s.Lag = append(s.Lag, r.LagSamples...)
	}
	for _, r := range results {
		add(r.Options.Scenario, r)
	}
	if len(order) > 1 {
		for _, r := range results {
			add("all", r)
		}
	}
	out := make([]Summary, len(order))
	for i, name := range order {
		out[i] = *by[name]
	}
	return out
}

func anomalyText(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// WriteText writes the report as plain text: a table per scenario, then
// every failure with its replay command and its history on the first key
// it is about.
func WriteText(w io.Writer, results []Result) {
	fmt.Fprintf(w, "%-15s %5s %6s %8s %6s %7s %9s %8s %8s  %-22s  %s\n", "scenario", "runs", "failed", "writes", "faults",
		"lost*", "messages", "dropped", "dup", "converge p50/p99/max", "anomalies")
	for _, s := range Summarize(results) {
		fmt.Fprintf(w, "%-15s %5d %6d %8d %6d %7d %9d %8d %8d  %-22s  %s\n", s.Scenario, s.Runs, s.Failed, s.Writes, s.Faults,
			s.Lost, s.Messages, s.Dropped, s.Duplicated,
			fmt.Sprintf("%d/%d/%d ms", quantile(s.Converge, 0.5), quantile(s.Converge, 0.99), quantile(s.Converge, 1)),
			anomalyText(s.Anomalies))
	}
	fmt.Fprintln(w, "* lost: write units lost with a deposed leader before they were applied; never acknowledged, so not anomalies")
	for _, r := range results {
		if !r.Failed {
			continue
		}
		fmt.Fprintf(w, "\nFAILED %s seed %d (%d writes): %s\nreplay: %s\n", r.Options.Scenario, r.Options.Seed, r.Writes,
			anomalyText(r.Anomalies), r.Options.Replay())
		if len(r.Keys) > 0 {
			fmt.Fprintf(w, "keys: %s\nhistory of %s (and every fault):\n  %s\n", strings.Join(r.Keys, " "), r.Keys[0],
				strings.Join(r.KeyHistory, "\n  "))
		}
		fmt.Fprintf(w, "%s\n", r.Failure)
	}
}

// WriteHTML writes the report as one self-contained HTML page: the summary
// table, a plot of convergence time after heal per run, the distribution
// of replication lag, and the failures.
func WriteHTML(w io.Writer, title string, results []Result) {
	fmt.Fprintf(w, "<!doctype html><meta charset=utf-8><title>%s</title>\n", html.EscapeString(title))
	fmt.Fprint(w, `<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}td:first-child{text-align:left}pre{background:#f6f6f6;padding:1em;overflow:auto}.bad{color:#b00}</style>`)
	fmt.Fprintf(w, "<h1>%s</h1>\n<table><tr><th>scenario<th>runs<th>failed<th>writes<th>faults<th>lost (unacked)<th>messages<th>dropped<th>duplicated<th>reordered<th>converge p50 / p99 / max<th>anomalies</tr>\n",
		html.EscapeString(title))
	sums := Summarize(results)
	for _, s := range sums {
		cls := ""
		if s.Failed > 0 {
			cls = ` class=bad`
		}
		fmt.Fprintf(w, "<tr%s><td>%s<td>%d<td>%d<td>%d<td>%d<td>%d<td>%d<td>%d<td>%d<td>%d<td>%d / %d / %d ms<td>%s</tr>\n", cls,
			html.EscapeString(s.Scenario), s.Runs, s.Failed, s.Writes, s.Faults, s.Lost, s.Messages, s.Dropped, s.Duplicated, s.Reordered,
			quantile(s.Converge, 0.5), quantile(s.Converge, 0.99), quantile(s.Converge, 1), html.EscapeString(anomalyText(s.Anomalies)))
	}
	fmt.Fprint(w, "</table>\n<h2>Convergence time after the final heal, per run</h2>\n")
	writeConvergePlot(w, results)
	fmt.Fprint(w, "<h2>Replication lag (apply at the origin to apply in another region), per scenario</h2>\n")
	writeLagPlot(w, sums)
	for _, r := range results {
		if !r.Failed {
			continue
		}
		fmt.Fprintf(w, "<h2 class=bad>FAILED %s seed %d</h2><p>replay: <code>%s</code></p>", html.EscapeString(r.Options.Scenario),
			r.Options.Seed, html.EscapeString(r.Options.Replay()))
		if len(r.Keys) > 0 {
			fmt.Fprintf(w, "<p>keys: %s</p><pre>%s</pre>", html.EscapeString(strings.Join(r.Keys, " ")),
				html.EscapeString(strings.Join(r.KeyHistory, "\n")))
		}
		fmt.Fprintf(w, "<pre>%s</pre>\n", html.EscapeString(r.Failure))
	}
}

// writeConvergePlot draws one dot per passing run: x the run, y its
// convergence time, coloured by scenario.
func writeConvergePlot(w io.Writer, results []Result) {
	const W, H, pad = 900, 260, 40
	var maxY int64 = 1
	for _, r := range results {
		if r.ConvergeMs > maxY {
			maxY = r.ConvergeMs
		}
	}
	colors := []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}
	scen := map[string]int{}
	fmt.Fprintf(w, `<svg width=%d height=%d xmlns="http://www.w3.org/2000/svg">`, W, H+pad)
	fmt.Fprintf(w, `<line x1=%d y1=%d x2=%d y2=%d stroke=black /><line x1=%d y1=0 x2=%d y2=%d stroke=black />`, pad, H, W, H, pad, pad, H)
	fmt.Fprintf(w, `<text x=2 y=12 font-size=11>%d ms</text><text x=2 y=%d font-size=11>0</text>`, maxY, H)
	n := len(results)
	for i, r := range results {
		c, ok := scen[r.Options.Scenario]
		if !ok {
			c = len(scen)
			scen[r.Options.Scenario] = c
		}
		x := pad + (W-pad-10)*i/max(1, n-1)
		y := H - int(int64(H-10)*r.ConvergeMs/maxY)
		fill := colors[c%len(colors)]
		if r.Failed {
			fill = "black"
		}
		fmt.Fprintf(w, `<circle cx=%d cy=%d r=2.5 fill="%s"><title>%s seed %d: %d ms</title></circle>`, x, y, fill,
			html.EscapeString(r.Options.Scenario), r.Options.Seed, r.ConvergeMs)
	}
	names := make([]string, 0, len(scen))
	for k := range scen {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return scen[names[i]] < scen[names[j]] })
	for i, name := range names {
		fmt.Fprintf(w, `<text x=%d y=%d font-size=12 fill="%s">%s</text>`, pad+i*110, H+25, colors[scen[name]%len(colors)], html.EscapeString(name))
	}
	fmt.Fprint(w, "</svg>\n")
}

// writeLagPlot draws each scenario's lag quantiles as a horizontal bar
// from p50 to p99, with p99.9 marked.
func writeLagPlot(w io.Writer, sums []Summary) {
	const W, row, pad = 900, 22, 130
	var maxX int64 = 1
	for _, s := range sums {
		if q := quantile(s.Lag, 0.999); q > maxX {
			maxX = q
		}
	}
	H := row*len(sums) + 30
	fmt.Fprintf(w, `<svg width=%d height=%d xmlns="http://www.w3.org/2000/svg">`, W, H)
	scale := func(v int64) int { return pad + int(int64(W-pad-60)*v/maxX) }
	for i, s := range sums {
		y := 10 + i*row
		p50, p99, p999 := quantile(s.Lag, 0.5), quantile(s.Lag, 0.99), quantile(s.Lag, 0.999)
		fmt.Fprintf(w, `<text x=0 y=%d font-size=12>%s</text>`, y+12, html.EscapeString(s.Scenario))
		fmt.Fprintf(w, `<rect x=%d y=%d width=%d height=14 fill="#9ecae1"><title>p50 %d ms, p99 %d ms</title></rect>`,
			scale(p50), y, max(1, scale(p99)-scale(p50)), p50, p99)
		fmt.Fprintf(w, `<line x1=%d y1=%d x2=%d y2=%d stroke="#08519c" stroke-width=2><title>p99.9 %d ms</title></line>`,
			scale(p999), y, scale(p999), y+14, p999)
		fmt.Fprintf(w, `<text x=%d y=%d font-size=11>p50 %d / p99 %d / p99.9 %d ms</text>`, scale(p999)+6, y+12, p50, p99, p999)
	}
	fmt.Fprintf(w, `<text x=%d y=%d font-size=11>0</text><text x=%d y=%d font-size=11>%d ms</text></svg>`, pad, H-4, W-60, H-4, maxX)
	fmt.Fprintln(w)
}
