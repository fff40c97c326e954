// Command genprofile derives the simulator's weekly demand profile and weather demand factors from the UCI
// "Metro Interstate Traffic Volume" data set and writes them as Go source (pkg/sim/profile_table.go).
//
// Usage (from the repository root):
//
//	go run ./pkg/sim/internal/genprofile \
//	    -in ../shared/data/metro_interstate_i94/Metro_Interstate_Traffic_Volume.csv \
//	    -out pkg/sim/profile_table.go
//
// or `go generate ./sim/...` from pkg/. The input has CRLF line endings and repeats an hour once per weather
// description that applied; each hour is counted once. Days whose 00:00 row names a holiday are left out, so
// the profile describes an ordinary week. Weather classes per hour (any row of the hour decides):
// snow if any row says Snow; rain if any row says Rain, Drizzle or Thunderstorm (heavy rain if its description
// says "heavy"); dry if every row says Clear or Clouds; anything else (mist, fog, haze...) is left out of the
// factors. A factor is the ratio of total volume in that weather to the total dry-weather mean volume of the
// same hours of the week, i.e. sum(v) / sum(dryMean[hour of week]).
package main

import (
	"bytes"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"io"
	"log"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

const hoursPerWeek = 168

func main() {
	log.SetFlags(0)
	log.SetPrefix("genprofile: ")
	in := flag.String("in", "", "path of Metro_Interstate_Traffic_Volume.csv")
	out := flag.String("out", "profile_table.go", "Go file to write")
	flag.Parse()
	if *in == "" {
		log.Fatal("-in is required")
	}
	if err := run(*in, *out); err != nil {
		log.Fatal(err)
	}
}

func run(inPath, outPath string) error {
	f, err := os.Open(inPath)
	if err != nil {
		return fmt.Errorf("open input: %w", err)
	}
	defer f.Close()
	hours, dropped, err := readHours(f)
	if err != nil {
		return fmt.Errorf("read %s: %w", inPath, err)
	}
	if len(hours) == 0 {
		return fmt.Errorf("read %s: no data rows", inPath)
	}
	res := derive(hours)
	res.holidayHours = dropped
	if res.minN == 0 {
		return fmt.Errorf("read %s: some hours of the week have no data", inPath)
	}
	if math.IsNaN(res.rain) || math.IsNaN(res.heavyRain) || math.IsNaN(res.snow) {
		return fmt.Errorf("read %s: no rain, heavy rain or snow hours to derive demand factors from", inPath)
	}
	src, err := render(res)
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	if err := os.WriteFile(outPath, src, 0o644); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	log.Printf("%d distinct hours (%d on holidays left out); Tue 08:00 / Tue 03:00 = %.2f; rain %.4f, heavy rain %.4f, snow %.4f",
		res.hours, res.holidayHours, res.profile[24+8]/res.profile[24+3], res.rain, res.heavyRain, res.snow)
	return nil
}

type weather int

const (
	other weather = iota
	dry
	rain
	heavyRain
	snow
)

// hour is one distinct hour of the data set.
type hour struct {
	at     time.Time
	volume float64
	// Flags over all rows of the hour.
	anySnow, anyRain, anyHeavy, allDry bool
}

func (h hour) weather() weather {
	switch {
	case h.anySnow:
		return snow
	case h.anyHeavy:
		return heavyRain
	case h.anyRain:
		return rain
	case h.allDry:
		return dry
	}
	return other
}

// readHours parses the CSV into distinct hours in first-seen order and drops holiday days, returning how many
// hours it dropped.
func readHours(r io.Reader) ([]hour, int, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, 0, fmt.Errorf("header: %w", err)
	}
	col := map[string]int{}
	for i, name := range head {
		col[strings.TrimSpace(name)] = i
	}
	for _, name := range []string{"holiday", "weather_main", "weather_description", "date_time", "traffic_volume"} {
		if _, ok := col[name]; !ok {
			return nil, 0, fmt.Errorf("header: missing column %q", name)
		}
	}
	var hours []hour
	index := map[string]int{}
	holidays := map[string]bool{}
	line := 1
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line++
		if err != nil {
			return nil, 0, fmt.Errorf("line %d: %w", line, err)
		}
		ts := strings.TrimSpace(rec[col["date_time"]])
		at, err := time.Parse(time.DateTime, ts)
		if err != nil {
			return nil, 0, fmt.Errorf("line %d: date_time: %w", line, err)
		}
		vol, err := strconv.ParseFloat(strings.TrimSpace(rec[col["traffic_volume"]]), 64)
		if err != nil {
			return nil, 0, fmt.Errorf("line %d: traffic_volume: %w", line, err)
		}
		if hol := strings.TrimSpace(rec[col["holiday"]]); hol != "" && hol != "None" {
			holidays[at.Format(time.DateOnly)] = true
		}
		main := strings.TrimSpace(rec[col["weather_main"]])
		desc := strings.TrimSpace(rec[col["weather_description"]])
		isRain := main == "Rain" || main == "Drizzle" || main == "Thunderstorm"
		i, seen := index[ts]
		if !seen {
			i = len(hours)
			index[ts] = i
			hours = append(hours, hour{at: at, volume: vol, allDry: true})
		}
		h := &hours[i]
		h.anySnow = h.anySnow || main == "Snow"
		h.anyRain = h.anyRain || isRain
		h.anyHeavy = h.anyHeavy || (isRain && strings.Contains(desc, "heavy"))
		h.allDry = h.allDry && (main == "Clear" || main == "Clouds")
	}
	kept := hours[:0]
	for _, h := range hours {
		if !holidays[h.at.Format(time.DateOnly)] {
			kept = append(kept, h)
		}
	}
	return kept, len(hours) - len(kept), nil
}

// hourOfWeek maps a time to 0..167 with Monday 00:00 = 0.
func hourOfWeek(t time.Time) int {
	return (int(t.Weekday())+6)%7*24 + t.Hour()
}

type result struct {
	profile              [hoursPerWeek]float64
	minN, maxN           int
	peakMean             float64
	hours, holidayHours  int
	rain, heavyRain      float64
	snow                 float64
	nRain, nHeavy, nSnow int
	from, to             time.Time
}

func derive(hours []hour) result {
	var res result
	var sum, drySum [hoursPerWeek]float64
	var n, dryN [hoursPerWeek]int
	res.from, res.to = hours[0].at, hours[0].at
	for _, h := range hours {
		k := hourOfWeek(h.at)
		sum[k] += h.volume
		n[k]++
		if h.weather() == dry {
			drySum[k] += h.volume
			dryN[k]++
		}
		if h.at.Before(res.from) {
			res.from = h.at
		}
		if h.at.After(res.to) {
			res.to = h.at
		}
	}
	res.hours = len(hours)
	res.minN, res.maxN = n[0], n[0]
	for k := range hoursPerWeek {
		if n[k] > 0 {
			res.profile[k] = sum[k] / float64(n[k])
		}
		res.peakMean = max(res.peakMean, res.profile[k])
		res.minN, res.maxN = min(res.minN, n[k]), max(res.maxN, n[k])
	}
	for k := range hoursPerWeek {
		res.profile[k] /= res.peakMean
	}
	factor := func(in func(weather) bool) (float64, int) {
		var v, ref float64
		var cnt int
		for _, h := range hours {
			k := hourOfWeek(h.at)
			if !in(h.weather()) || dryN[k] == 0 {
				continue
			}
			v += h.volume
			ref += drySum[k] / float64(dryN[k])
			cnt++
		}
		return v / ref, cnt
	}
	res.rain, res.nRain = factor(func(w weather) bool { return w == rain || w == heavyRain })
	res.heavyRain, res.nHeavy = factor(func(w weather) bool { return w == heavyRain })
	res.snow, res.nSnow = factor(func(w weather) bool { return w == snow })
	return res
}

func render(res result) ([]byte, error) {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("// Code generated by genprofile; DO NOT EDIT.\n\n")
	p("// Derived from the UCI Machine Learning Repository 'Metro Interstate Traffic Volume' data set (id 492),\n")
	p("// MnDOT ATR station 301 westbound I-94 with OpenWeatherMap weather, CC BY 4.0\n")
	p("// (https://archive.ics.uci.edu/dataset/492/metro+interstate+traffic+volume).\n")
	p("// Source span %s to %s: %d distinct hours on non-holiday days (%d holiday hours left out),\n",
		res.from.Format(time.DateOnly), res.to.Format(time.DateOnly), res.hours, res.holidayHours)
	p("// %d to %d hours per hour of week.\n", res.minN, res.maxN)
	p("//\n// Regenerate from the repository root with\n//\n")
	p("//\tgo run ./pkg/sim/internal/genprofile -in ../shared/data/metro_interstate_i94/Metro_Interstate_Traffic_Volume.csv -out pkg/sim/profile_table.go\n")
	p("//\n// or run `go generate ./sim/...` in pkg/.\n\n")
	p("//go:generate go run ./internal/genprofile -in ../../../shared/data/metro_interstate_i94/Metro_Interstate_Traffic_Volume.csv -out profile_table.go\n\n")
	p("package sim\n\n")
	p("// weeklyProfile is the mean hourly traffic volume per hour of the week (Monday 00:00 = 0), normalised so its\n")
	p("// maximum is 1 (the maximum mean was %.0f vehicles/hour).\n", res.peakMean)
	p("var weeklyProfile = [168]float64{\n")
	days := []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
	for d, name := range days {
		p("\t// %s\n\t", name)
		for h := range 24 {
			p("%.4f,", res.profile[d*24+h])
			if h == 11 {
				p("\n\t")
			} else if h != 23 {
				p(" ")
			}
		}
		p("\n")
	}
	p("}\n\n")
	p("// The demand factors below are the ratio of traffic volume in that weather to the dry-weather (clear or\n")
	p("// cloudy) mean volume at the same hour of the week, from the same data set and attribution as weeklyProfile.\n\n")
	p("// RainDemandFactor scales demand during rain, drizzle or thunderstorms (%d hours).\n", res.nRain)
	p("const RainDemandFactor = %.4f\n\n", res.rain)
	p("// HeavyRainDemandFactor scales demand during heavy rain (%d hours).\n", res.nHeavy)
	p("const HeavyRainDemandFactor = %.4f\n\n", res.heavyRain)
	p("// SnowDemandFactor scales demand during snowfall (%d hours).\n", res.nSnow)
	p("const SnowDemandFactor = %.4f\n", res.snow)
	return format.Source(b.Bytes())
}
