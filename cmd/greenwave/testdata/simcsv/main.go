// Command simcsv writes the built-in gateway simulator's output (pkg/sim, the data of greenwave dev) for a
// topology as a canonical readings CSV and a canonical weather CSV, so that greenwave eval can score the example
// topology offline (docs/evaluation.md, "Neighbour features"). It lives under testdata so that it is no part of
// the CLI, its tests or its lint: run it with
//
//	go run ./cmd/greenwave/testdata/simcsv -topology config/topology.yaml -days 21 -readings R.csv -weather W.csv
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/greenwave-city/greenwave/pkg/sim"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

func main() {
	topoFile := flag.String("topology", "config/topology.yaml", "topology `FILE`")
	days := flag.Int("days", 21, "days simulated")
	seed := flag.Uint64("seed", 1, "simulator seed")
	start := flag.String("start", "2026-11-02T00:00:00Z", "first interval (RFC 3339)")
	readings := flag.String("readings", "readings.csv", "readings CSV `FILE` written")
	weather := flag.String("weather", "weather.csv", "weather CSV `FILE` written")
	flag.Parse()
	if err := run(*topoFile, *days, *seed, *start, *readings, *weather); err != nil {
		fmt.Fprintln(os.Stderr, "simcsv:", err)
		os.Exit(1)
	}
}

func run(topoFile string, days int, seed uint64, startS, readingsFile, weatherFile string) error {
	topo, err := topology.Load(topoFile)
	if err != nil {
		return err
	}
	start, err := time.Parse(time.RFC3339, startS)
	if err != nil {
		return fmt.Errorf("-start: %w", err)
	}
	s, err := sim.New(topo, sim.Config{Seed: seed, Start: start, IntervalS: 60})
	if err != nil {
		return err
	}
	rf, err := os.Create(readingsFile)
	if err != nil {
		return err
	}
	defer rf.Close()
	wf, err := os.Create(weatherFile)
	if err != nil {
		return err
	}
	defer wf.Close()
	rw, ww := bufio.NewWriter(rf), bufio.NewWriter(wf)
	fmt.Fprintln(rw, "observed_at,intersection_id,approach_id,detector_id,interval_s,count,occupancy_ratio,speed_kmh")
	fmt.Fprintln(ww, "observed_at,station_id,temperature_c,precipitation_mm_h,snow_mm_h,cloud_cover_ratio,visibility_m,condition")
	opt := func(ok bool, v float64) string {
		if !ok {
			return ""
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	end := start.Add(time.Duration(days) * 24 * time.Hour)
	for {
		t := s.Next()
		if !t.At.Before(end) {
			break
		}
		for _, r := range t.Readings {
			fmt.Fprintf(rw, "%s,%s,%s,%s,%d,%s,%s,%s\n", r.ObservedAt.Time.Format(time.RFC3339), r.IntersectionID, r.ApproachID,
				r.DetectorID, r.IntervalS, opt(!r.NoCount, r.Count), opt(r.HasOccupancy, r.OccupancyRatio), opt(r.HasSpeed, r.SpeedKMH))
		}
		for _, w := range t.Weather {
			fmt.Fprintf(ww, "%s,%s,%s,%s,%s,%s,%s,%s\n", w.ObservedAt.Time.Format(time.RFC3339), w.StationID, opt(w.HasTemperature, w.TemperatureC),
				opt(w.HasPrecipitation, w.PrecipitationMMH), opt(w.HasSnow, w.SnowMMH), opt(w.HasCloudCover, w.CloudCoverRatio),
				opt(w.HasVisibility, w.VisibilityM), w.Condition)
		}
	}
	if err := rw.Flush(); err != nil {
		return err
	}
	return ww.Flush()
}
