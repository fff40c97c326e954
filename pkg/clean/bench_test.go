package clean

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/features"
)

// BenchmarkCleanReadings measures the whole per-reading path (checks, dedup, windows, outlier filter, gap
// filling, features, weather join, upstream lookups) on one-minute readings of three detectors, and reports
// readings/s.
func BenchmarkCleanReadings(b *testing.B) {
	const minutes = 7 * 24 * 60
	rs := fixture(minutes, 9)
	wl := testWeather()
	cfg := DefaultConfig()
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	newState := func() *Intersection {
		s, _ := NewIntersection(testTopo(), cfg)
		s.SetUpstream(States{s.in.ID: s}) // the test topology names upstream approaches of its own and of an absent intersection
		return s
	}
	s := newState()
	for b.Loop() {
		if n%len(rs) == 0 && n > 0 {
			b.StopTimer()
			s = newState()
			b.StartTimer()
		}
		s.Add(rs[n%len(rs)], wl)
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
}

// BenchmarkState measures taking the state of an intersection with a full week of history (pkg/wire measures
// its encoding).
func BenchmarkState(b *testing.B) {
	s, _ := NewIntersection(testTopo(), DefaultConfig())
	for _, r := range fixture(7*24*60, 9) {
		s.Add(r, nil)
	}
	for b.Loop() {
		_ = s.State()
	}
}

// cityIntersections is the size of the city BenchmarkCleanCity cleans: a city has thousands of intersections, so
// the per-intersection state the cleaner holds no longer fits the CPU caches, as it does with one intersection.
const cityIntersections = 1000

// BenchmarkCleanCity measures the per-reading path like BenchmarkCleanReadings, but on cityIntersections
// intersections fed in event-time order (every intersection's readings of one minute, then the next minute; one
// reading per op), with
// weather present for the whole week (one station, hourly) and upstream features on: intersection k's approach N
// lists approach E of intersection k-1 upstream, all of them members of one States. The first day is fed before
// the clock starts. It reports readings/s and the shares of frames with weather and upstream features.
func BenchmarkCleanCity(b *testing.B) {
	const minutes = 7 * 24 * 60
	base := fixture(minutes, 9)
	// blocks[m] are the base readings of minute m (fixture is in event-time order).
	var blocks [][]Reading
	for i := 0; i < len(base); {
		j := i + 1
		for j < len(base) && base[j].Start.Equal(base[i].Start) {
			j++
		}
		blocks = append(blocks, base[i:j])
		i = j
	}
	wt := NewWeatherTable(DefaultConfig())
	for h := -1; h < minutes/60+2; h++ {
		wt.Add(Weather{ID: fmt.Sprint(h), StationID: "STN-1", ObservedAt: t0.Add(time.Duration(h) * time.Hour),
			TemperatureC: 5 + float64(h%10), HasTemperature: true, PrecipitationMMH: float64(h % 3), HasPrecipitation: true})
	}
	ids := make([]string, cityIntersections)
	for k := range ids {
		ids[k] = fmt.Sprint("I-", k)
	}
	newCity := func() States {
		st := make(States, cityIntersections)
		for k, id := range ids {
			topo := testTopo()
			topo.ID = id
			topo.Approaches[0].Upstream = []string{ids[(k+cityIntersections-1)%cityIntersections] + "/E"}
			s, err := NewIntersection(topo, DefaultConfig())
			if err != nil {
				b.Fatal(err)
			}
			st[id] = s
		}
		for _, s := range st {
			s.SetUpstream(st)
		}
		return st
	}
	city := newCity()
	members := make([]*Intersection, cityIntersections)
	for k, id := range ids {
		members[k] = city[id]
	}
	// Warm up for a day, off the clock: the per-reading cost grows while the lag and yesterday features fill
	// the histories, and a city cleaner runs with full ones.
	const warmUpMinutes = 24 * 60
	for minute := range warmUpMinutes {
		for k, s := range members {
			for _, r := range blocks[minute] {
				r.IntersectionID = ids[k]
				s.Add(r, wt)
			}
		}
	}
	names := features.Names()
	weatherMissing, upstreamPresent := slices.Index(names, "weather_missing"), slices.Index(names, "upstream_lag1_present")
	var vectors, withWeather, withUpstream int
	b.ReportAllocs()
	b.ResetTimer()
	minute, k, j := warmUpMinutes, 0, 0
	for b.Loop() {
		r := blocks[minute][j]
		r.IntersectionID = ids[k]
		res := members[k].Add(r, wt)
		for _, f := range res.Frames { // counting what the frames hold proves the benchmark is what it says
			for _, v := range f.Approaches {
				vectors++
				if v.Values[weatherMissing] == 0 {
					withWeather++
				}
				if v.ApproachID == "N" && v.Values[upstreamPresent] == 1 {
					withUpstream++
				}
			}
		}
		if j++; j < len(blocks[minute]) {
			continue
		}
		if j, k = 0, k+1; k < cityIntersections {
			continue
		}
		if k, minute = 0, minute+1; minute == len(blocks) { // the week done: start again from empty states, off the clock
			b.StopTimer()
			minute, city = 0, newCity()
			for i, id := range ids {
				members[i] = city[id]
			}
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "readings/s")
	if vectors > 0 {
		// Shares of the emitted vectors with weather joined, and of approach N's (the one with an upstream
		// approach) with the upstream feature present: both near 1 once the first windows have closed.
		b.ReportMetric(float64(withWeather)/float64(vectors), "weather-share")
		b.ReportMetric(2*float64(withUpstream)/float64(vectors), "upstream-share")
	}
}
