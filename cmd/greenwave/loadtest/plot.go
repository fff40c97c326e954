package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
)

// palette gives each series a fixed colour.
var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
}

// writePlots draws the lag of every group (loadtest-lag.svg) and the RSS of every service (loadtest-rss.svg)
// against seconds since the feed started; a dashed line marks the end of the feed.
func writePlots(dir string, samples []sample, feedStart, feedEnd time.Time) error {
	groups := []string{"cleaner", "trainer", "predictor", "signalcontrol"}
	lag := make([]plotter.XYs, len(groups))
	rss := make([]plotter.XYs, len(stack.Services))
	var maxLag, maxRSS float64
	for _, s := range samples {
		x := s.at.Sub(feedStart).Seconds()
		for i, g := range groups {
			lag[i] = append(lag[i], plotter.XY{X: x, Y: float64(s.lag[g])})
			maxLag = max(maxLag, float64(s.lag[g]))
		}
		for i, svc := range stack.Services {
			rss[i] = append(rss[i], plotter.XY{X: x, Y: s.rssMB[svc]})
			maxRSS = max(maxRSS, s.rssMB[svc])
		}
	}
	end := feedEnd.Sub(feedStart).Seconds()
	if err := drawLines(filepath.Join(dir, "loadtest-lag.svg"), "Consumer lag by group (committed, sampled every second)", "records", groups, lag, end, maxLag); err != nil {
		return err
	}
	return drawLines(filepath.Join(dir, "loadtest-rss.svg"), "Resident memory by service (VmRSS, sampled every second)", "MB", stack.Services, rss, end, maxRSS)
}

func drawLines(path, title, yLabel string, names []string, series []plotter.XYs, feedEnd, yMax float64) error {
	plot.DefaultFont.Variant = "Sans" // loadtest's own plots only: this is a program of its own
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = fmt.Sprintf("seconds since the feed started (dashed: feed ended, %.0f s)", feedEnd)
	p.Y.Label.Text = yLabel
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	for i, xy := range series {
		if len(xy) == 0 {
			continue
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return fmt.Errorf("plot %s: %w", names[i], err)
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(names[i], l)
	}
	mark, err := plotter.NewLine(plotter.XYs{{X: feedEnd, Y: 0}, {X: feedEnd, Y: max(yMax, 1)}})
	if err != nil {
		return err
	}
	mark.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	mark.Color = color.Gray{Y: 0x60}
	p.Add(mark)
	p.Legend.Top = true
	c := vgsvg.NewWith(vgsvg.UseWH(18*vg.Centimeter, 9*vg.Centimeter))
	p.Draw(draw.New(c))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
