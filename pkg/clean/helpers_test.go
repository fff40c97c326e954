package clean

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// t0 is a Monday 00:00 UTC, aligned to every window size.
var t0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

func testTopo() topology.Intersection {
	return topology.Intersection{
		ID:             "I-1",
		WeatherStation: "STN-1",
		WindowS:        300,
		Approaches: []topology.Approach{
			// The upstream entries only matter where a test attaches a lookup (SetUpstream): I-2 is never held.
			{ID: "N", Lanes: 2, SaturationFlowVPHPerLane: 1800, Detectors: []string{"N1", "N2"}, Upstream: []string{"I-1/E", "I-2/N"}},
			{ID: "E", Lanes: 1, SaturationFlowVPHPerLane: 1800, Detectors: []string{"E1"}},
		},
	}
}

func approachOf(det string) string {
	if det == "" {
		return ""
	}
	return det[:1]
}

// rd is a reading of det starting at offset off from t0 with count vehicles in interval seconds.
func rd(det string, off time.Duration, interval int, count float64) Reading {
	return Reading{
		ID:             fmt.Sprintf("%s@%d", det, int64(off/time.Second)),
		IntersectionID: "I-1", ApproachID: approachOf(det), DetectorID: det,
		Start: t0.Add(off), IntervalS: interval, Count: count,
	}
}

func withOccSpeed(r Reading, occ, speed float64) Reading {
	r.Occupancy, r.HasOccupancy, r.SpeedKMH, r.HasSpeed = occ, true, speed, true
	return r
}

func newTestIntersection(t testing.TB, cfg Config) *Intersection {
	t.Helper()
	s, err := NewIntersection(testTopo(), cfg)
	if err != nil {
		t.Fatalf("NewIntersection: %v", err)
	}
	return s
}

// fixture returns minutes of one-minute readings for every detector, in event-time order, with a daily-ish
// pattern, some noise, an outlier, and a few missing readings (gaps).
func fixture(minutes int, seed uint64) []Reading {
	rng := rand.New(rand.NewPCG(seed, 7))
	var out []Reading
	for m := 0; m < minutes; m++ {
		for _, det := range []string{"N1", "N2", "E1"} {
			if (det == "E1" && m >= 20 && m < 32) || (det == "N2" && m%17 == 5) {
				continue // gaps: a 12-minute outage of E1, scattered missing N2 minutes
			}
			base := 8 + 4*math.Sin(float64(m)/30)
			c := math.Round(base + rng.Float64()*4)
			if det == "N1" && m == 40 {
				c = 29 // an outlier (1740 veh/h), still under capacity × 1.5
			}
			r := rd(det, time.Duration(m)*time.Minute, 60, c)
			if det != "E1" {
				r = withOccSpeed(r, math.Round(100*(0.05+c/200))/100, 40+float64(int(c)%7))
			}
			out = append(out, r)
		}
	}
	return out
}

// stubWeather is a WeatherLookup with one fixed observation.
type stubWeather struct{ w Weather }

func (s stubWeather) Lookup(station string, at time.Time) (Weather, bool) {
	if station != s.w.StationID || s.w.ObservedAt.After(at) {
		return Weather{}, false
	}
	return s.w, true
}

func testWeather() *WeatherTable {
	wt := NewWeatherTable(DefaultConfig())
	for h := -1; h < 48; h++ {
		wt.Add(Weather{ID: fmt.Sprint(h), StationID: "STN-1", ObservedAt: t0.Add(time.Duration(h) * time.Hour),
			TemperatureC: 5 + float64(h%10), HasTemperature: true, PrecipitationMMH: float64(h % 3), HasPrecipitation: true})
	}
	return wt
}

// run feeds readings and returns every frame and rejection.
func run(s *Intersection, rs []Reading, wl WeatherLookup) ([]features.Frame, []Rejection, int) {
	var frames []features.Frame
	var rej []Rejection
	dropped := 0
	for _, r := range rs {
		res := s.Add(r, wl)
		frames = append(frames, res.Frames...)
		rej = append(rej, res.Rejected...)
		dropped += res.Dropped
	}
	return frames, rej, dropped
}

func checkFinite(t testing.TB, frames []features.Frame) {
	t.Helper()
	for _, f := range frames {
		for _, v := range f.Approaches {
			if len(v.Values) != features.NumFeatures {
				t.Fatalf("frame %s approach %s: %d values, want %d", f.WindowStart, v.ApproachID, len(v.Values), features.NumFeatures)
			}
			for i, x := range v.Values {
				if math.IsNaN(x) || math.IsInf(x, 0) {
					t.Fatalf("frame %s approach %s feature %s = %v", f.WindowStart, v.ApproachID, f.Names[i], x)
				}
			}
			if !(v.ImputedFraction >= 0 && v.ImputedFraction <= 1) || math.IsNaN(v.Observed.FlowVPH) {
				t.Fatalf("frame %s approach %s: imputed fraction %v flow %v", f.WindowStart, v.ApproachID, v.ImputedFraction, v.Observed.FlowVPH)
			}
		}
	}
}

func featureIndex(name string) int {
	for i, n := range features.Names() {
		if n == name {
			return i
		}
	}
	panic("no feature " + name)
}
