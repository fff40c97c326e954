package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/sumo"
)

// The files WriteFiles writes.
const (
	FileJSON     = "results.json"
	FileMarkdown = "results.md"
	FilePlot     = "time-loss.svg"
)

// Bench is one bench: where and when it ran, the SUMO seeds every controller ran with, each scenario and
// controller's result averaged over the seeds (Results, scenario by scenario, the controllers of each in
// sumo.Controllers order) and every single run (Runs).
type Bench struct {
	Commit      string        `json:"commit"`
	Date        string        `json:"date"`
	SUMOVersion string        `json:"sumo_version"`
	Seeds       []int         `json:"seeds,omitempty"`
	Results     []sumo.Result `json:"results"`
	Runs        []Run         `json:"runs,omitempty"`
}

// Run is one run of a controller on a scenario with one seed.
type Run struct {
	Seed int `json:"seed"`
	sumo.Result
}

// Mean averages runs of one scenario and controller: the means per vehicle over the runs, the vehicles summed.
func Mean(runs []Run) sumo.Result {
	var m sumo.Result
	if len(runs) == 0 {
		return m
	}
	m.Scenario, m.Controller = runs[0].Scenario, runs[0].Controller
	n := float64(len(runs))
	for _, r := range runs {
		m.TimeLossS += r.TimeLossS / n
		m.WaitingTimeS += r.WaitingTimeS / n
		m.DurationS += r.DurationS / n
		m.Stops += r.Stops / n
		m.FuelML += r.FuelML / n
		m.CO2G += r.CO2G / n
		m.Completed += r.Completed
		m.Inserted += r.Inserted
	}
	return m
}

// timeLossRange is the lowest and highest time loss of the scenario and controller's runs ("—" with fewer than two).
func (b Bench) timeLossRange(scenario, controller string) string {
	lo, hi, n := math.Inf(1), math.Inf(-1), 0
	for _, r := range b.Runs {
		if r.Scenario == scenario && r.Controller == controller {
			lo, hi, n = min(lo, r.TimeLossS), max(hi, r.TimeLossS), n+1
		}
	}
	if n < 2 {
		return "—"
	}
	return fmt.Sprintf("%.1f–%.1f", lo, hi)
}

// WriteFiles writes results.json, results.md and time-loss.svg into dir, creating it.
func (b Bench) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{{FileJSON, b.WriteJSON}, {FileMarkdown, b.WriteMarkdown}, {FilePlot, b.WritePlot}} {
		var buf bytes.Buffer
		if err := f.write(&buf); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
	}
	return nil
}

// WriteJSON writes the bench as one indented JSON object.
func (b Bench) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(b)
}

// scenarios lists the scenarios in the order of their first result.
func (b Bench) scenarios() []string {
	var out []string
	for _, r := range b.Results {
		if !slices.Contains(out, r.Scenario) {
			out = append(out, r.Scenario)
		}
	}
	return out
}

// controllers lists the controllers in sumo.Controllers order, then any others in the order of their first
// result.
func (b Bench) controllers() []string {
	var out []string
	for _, c := range sumo.Controllers {
		if slices.ContainsFunc(b.Results, func(r sumo.Result) bool { return r.Controller == c }) {
			out = append(out, c)
		}
	}
	for _, r := range b.Results {
		if !slices.Contains(out, r.Controller) {
			out = append(out, r.Controller)
		}
	}
	return out
}

// timeLoss is the time loss of the controller on the scenario; ok is false without such a result.
func (b Bench) timeLoss(scenario, controller string) (float64, bool) {
	i := slices.IndexFunc(b.Results, func(r sumo.Result) bool { return r.Scenario == scenario && r.Controller == controller })
	if i < 0 {
		return 0, false
	}
	return b.Results[i].TimeLossS, true
}

// vsStatic is the change of r's time loss against static on the same scenario, in percent ("—" for static
// itself, "n/a" without a static run or with a static time loss of zero).
func (b Bench) vsStatic(r sumo.Result) string {
	if r.Controller == sumo.Static {
		return "—"
	}
	base, ok := b.timeLoss(r.Scenario, sumo.Static)
	if !ok || base == 0 {
		return "n/a"
	}
	pct := (r.TimeLossS - base) / base * 100
	if math.Abs(pct) < 0.05 {
		return "0.0 %"
	}
	return fmt.Sprintf("%+.1f %%", pct)
}

// WriteMarkdown writes the table of every result, means per completed vehicle, with each row's time loss
// against static's on the same scenario.
func (b Bench) WriteMarkdown(w io.Writer) error {
	var s strings.Builder
	seeds := "the scenario's seed"
	if len(b.Seeds) > 0 {
		seeds = fmt.Sprintf("SUMO seeds %s, averaged", strings.Trim(strings.Join(strings.Fields(fmt.Sprint(b.Seeds)), ", "), "[]"))
	}
	fmt.Fprintf(&s, "# `make sumo-bench`\n\nCommit `%s`, %s, SUMO %s, %s. Means per completed vehicle; the range is the lowest and\n"+
		"highest time loss over the seeds; the last column is the change of time loss against SUMO's static program on\n"+
		"the same scenario (negative: less time lost). How the runs work: [docs/sumo.md](../sumo.md).\n\n", b.Commit, b.Date, b.SUMOVersion, seeds)
	s.WriteString("| scenario | controller | time loss s | range s | waiting s | trip s | stops | fuel ml | CO₂ g | completed/inserted | time loss vs static |\n")
	s.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range b.Results {
		fmt.Fprintf(&s, "| %s | %s | %.1f | %s | %.1f | %.1f | %.2f | %.1f | %.1f | %d/%d | %s |\n", r.Scenario, r.Controller,
			r.TimeLossS, b.timeLossRange(r.Scenario, r.Controller), r.WaitingTimeS, r.DurationS, r.Stops, r.FuelML, r.CO2G,
			r.Completed, r.Inserted, b.vsStatic(r))
	}
	s.WriteString("\n![Mean time loss per vehicle by controller and scenario](time-loss.svg)\n")
	_, err := io.WriteString(w, s.String())
	return err
}

// Plot size: wide enough for three groups of four bars and their labels on a GitHub page.
const (
	plotWidth  = 18 * vg.Centimeter
	plotHeight = 10 * vg.Centimeter
)

// WritePlot draws a grouped bar chart: per scenario, one bar per controller of its mean time loss per vehicle.
// Fonts are not embedded (the file stays small; the browser's sans-serif stands in).
func (b Bench) WritePlot(w io.Writer) error {
	p, err := b.plot()
	if err != nil {
		return err
	}
	c := vgsvg.NewWith(vgsvg.UseWH(plotWidth, plotHeight))
	p.Draw(draw.New(c))
	_, err = c.WriteTo(w)
	return err
}

// plot is the bar chart WritePlot draws.
func (b Bench) plot() (*plot.Plot, error) {
	scenarios, controllers := b.scenarios(), b.controllers()
	if len(scenarios) == 0 {
		return nil, fmt.Errorf("no results to plot")
	}
	plot.DefaultFont.Variant = "Sans" // sumobench's own plots only: this is a program of its own
	p := plot.New()
	p.Title.Text = "Mean time loss per vehicle (SUMO " + b.SUMOVersion + ")"
	p.X.Label.Text = "scenario"
	p.Y.Label.Text = "time loss per vehicle (s)"
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = false
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil // lines between groups only distract
	p.Add(grid)
	p.NominalX(scenarios...)
	p.X.Min, p.X.Max = -0.5, float64(len(scenarios))-0.5
	barWidth := vg.Length(float64(plotWidth) * 0.75 / (float64(len(scenarios)) * (float64(len(controllers)) + 1.5)))
	for i, c := range controllers {
		vals := make(plotter.Values, len(scenarios))
		for j, sc := range scenarios {
			vals[j], _ = b.timeLoss(sc, c) // a missing run draws no bar
		}
		bars, err := plotter.NewBarChart(vals, barWidth)
		if err != nil {
			return nil, err
		}
		bars.LineStyle.Width = 0
		bars.Color = barColor(i)
		bars.Offset = vg.Length(float64(i)-float64(len(controllers)-1)/2) * barWidth
		p.Add(bars)
		p.Legend.Add(c, bars)
	}
	// Room above the tallest bar for the legend, one line per controller.
	top := 0.0
	for _, r := range b.Results {
		top = max(top, r.TimeLossS)
	}
	p.Y.Max = top * (1.15 + 0.08*float64(len(controllers)))
	return p, nil
}

// barColor is the i-th colour of a palette that stays apart for colour-blind readers (Okabe-Ito), then
// plotutil's.
func barColor(i int) color.Color {
	palette := []color.Color{
		color.RGBA{0x99, 0x99, 0x99, 0xff}, // grey: static, the baseline
		color.RGBA{0x00, 0x72, 0xb2, 0xff}, // blue
		color.RGBA{0xe6, 0x9f, 0x00, 0xff}, // orange
		color.RGBA{0x00, 0x9e, 0x73, 0xff}, // green: greenwave
		color.RGBA{0xcc, 0x79, 0xa7, 0xff}, // purple
		color.RGBA{0xd5, 0x5e, 0x00, 0xff}, // vermilion
	}
	if i < len(palette) {
		return palette[i]
	}
	return plotutil.Color(i)
}
