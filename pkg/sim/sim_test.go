package sim

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/ingest"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// testTopology has two intersections sharing nothing: A with weather station WX-1 and an approach whose two
// detectors each cover one lane, B without a station.
const testTopology = `
version: 1
revision: sim-test
intersections:
  - id: A
    weather_station: WX-1
    approaches:
      - {id: N, lanes: 2, saturation_flow_vph_per_lane: 1800, detectors: [A-N1, A-N2]}
      - {id: S, lanes: 2, saturation_flow_vph_per_lane: 1800, detectors: [A-S1]}
      - {id: E, lanes: 1, saturation_flow_vph_per_lane: 1700, detectors: [A-E1]}
      - {id: W, lanes: 1, saturation_flow_vph_per_lane: 1700, detectors: [A-W1]}
    phases:
      - {id: NS, approaches: [N, S], min_green_s: 10, max_green_s: 60, yellow_s: 4, all_red_s: 2, lost_time_s: 4}
      - {id: EW, approaches: [E, W], min_green_s: 8, max_green_s: 50, yellow_s: 4, all_red_s: 2, lost_time_s: 4}
    timing: {min_cycle_s: 50, max_cycle_s: 150}
  - id: B
    approaches:
      - {id: N, lanes: 1, saturation_flow_vph_per_lane: 1800, detectors: [B-N1]}
      - {id: E, lanes: 3, saturation_flow_vph_per_lane: 1900, detectors: [B-E1, B-E2, B-E3]}
    phases:
      - {id: N, approaches: [N], min_green_s: 10, max_green_s: 60, yellow_s: 4, all_red_s: 2, lost_time_s: 4}
      - {id: E, approaches: [E], min_green_s: 8, max_green_s: 50, yellow_s: 4, all_red_s: 2, lost_time_s: 4}
    timing: {min_cycle_s: 50, max_cycle_s: 150}
`

func mustTopology(tb testing.TB) topology.Topology {
	tb.Helper()
	topo, err := topology.Parse([]byte(testTopology))
	if err != nil {
		tb.Fatal(err)
	}
	return topo
}

// monday is a Monday at midnight UTC.
var monday = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func mustSim(tb testing.TB, cfg Config) *Simulator {
	tb.Helper()
	if cfg.Start.IsZero() {
		cfg.Start = monday
	}
	s, err := New(mustTopology(tb), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func run(s *Simulator, n int) []Tick {
	ticks := make([]Tick, n)
	for i := range ticks {
		ticks[i] = s.Next()
	}
	return ticks
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	cfg := Config{Seed: 42, Start: monday.Add(7*time.Hour + 13*time.Second), DuplicateRate: 0.01}
	a, b := run(mustSim(t, cfg), 600), run(mustSim(t, cfg), 600)
	for i := range a {
		if !a[i].At.Equal(b[i].At) || !sameReadings(a[i], b[i]) {
			t.Fatalf("tick %d differs between two simulators with the same config", i)
		}
	}
	cfg.Seed = 43
	c := run(mustSim(t, cfg), 600)
	differ := 0
	for i := range a {
		if !sameReadings(a[i], c[i]) {
			differ++
		}
	}
	if differ < len(a)/2 {
		t.Errorf("seeds 42 and 43 gave identical data in %d of %d ticks", len(a)-differ, len(a))
	}
}

func sameReadings(a, b Tick) bool {
	return slices.Equal(a.Readings, b.Readings) && slices.Equal(a.Weather, b.Weather)
}

func TestEveryDetectorEveryTick(t *testing.T) {
	t.Parallel()
	topo := mustTopology(t)
	ix := topology.NewIndex(topo)
	var want []string
	for _, in := range topo.Intersections {
		for _, a := range in.Approaches {
			want = append(want, a.Detectors...)
		}
	}
	start := monday.Add(10*time.Hour + 37*time.Second)
	s := mustSim(t, Config{Seed: 1, Start: start, DuplicateRate: 0.02})
	wantAt := monday.Add(10 * time.Hour)
	for i, tick := range run(s, 240) {
		if !tick.At.Equal(wantAt) {
			t.Fatalf("tick %d: At %v, want %v", i, tick.At, wantAt)
		}
		var got []string
		for _, r := range tick.Readings {
			ref, ok := ix.Detector(r.DetectorID)
			switch {
			case !ok:
				t.Fatalf("tick %d: unknown detector %q", i, r.DetectorID)
			case ref.Intersection != r.IntersectionID || ref.Approach != r.ApproachID:
				t.Fatalf("tick %d: %s in %s/%s, topology says %s/%s", i, r.DetectorID, r.IntersectionID, r.ApproachID, ref.Intersection, ref.Approach)
			case r.IntervalS != 60:
				t.Fatalf("tick %d: %s interval_s %d", i, r.DetectorID, r.IntervalS)
			case r.ReadingID != r.DetectorID+"@"+strconv.FormatInt(r.ObservedAt.Time.Unix(), 10):
				t.Fatalf("tick %d: reading_id %q", i, r.ReadingID)
			}
			if r.ObservedAt.Time.Equal(tick.At) {
				got = append(got, r.DetectorID)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("tick %d: detectors %v, want %v", i, got, want)
		}
		wantAt = wantAt.Add(time.Minute)
	}
}

func TestWeatherSchedule(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                string
		intervalS, weatherS int
	}{
		{"minute counts, 5-minute weather", 60, 300},
		{"minute counts, 10-minute weather", 60, 600},
		{"15-minute counts, 5-minute weather", 900, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := mustSim(t, Config{Seed: 3, Start: monday.Add(90 * time.Second), IntervalS: tc.intervalS, WeatherIntervalS: tc.weatherS})
			var times []time.Time
			for _, tick := range run(s, 2*86400/tc.intervalS) {
				end := tick.At.Add(time.Duration(tc.intervalS) * time.Second)
				for _, w := range tick.Weather {
					at := w.ObservedAt.Time
					if w.StationID != "WX-1" || at.Before(tick.At) || !at.Before(end) || at.Unix()%int64(tc.weatherS) != 0 {
						t.Fatalf("weather %s at %v in tick %v", w.StationID, at, tick.At)
					}
					if w.ReadingID != "WX-1@"+strconv.FormatInt(at.Unix(), 10) {
						t.Fatalf("weather reading_id %q", w.ReadingID)
					}
					times = append(times, at)
				}
			}
			for i := 1; i < len(times); i++ {
				if d := times[i].Sub(times[i-1]); d != time.Duration(tc.weatherS)*time.Second {
					t.Fatalf("weather at %v then %v", times[i-1], times[i])
				}
			}
			if first := monday.Add(time.Duration(tc.weatherS) * time.Second); tc.intervalS == 60 && !times[0].Equal(first) {
				t.Errorf("first weather at %v, want %v", times[0], first)
			}
		})
	}
}

func TestProfileShape(t *testing.T) {
	t.Parallel()
	if got := slices.Max(weeklyProfile[:]); got != 1 {
		t.Errorf("profile maximum %g, want 1", got)
	}
	if got := slices.Min(weeklyProfile[:]); got <= 0 {
		t.Errorf("profile minimum %g, want > 0", got)
	}
	at := func(day, hour int) time.Time { return monday.AddDate(0, 0, day).Add(time.Duration(hour) * time.Hour) }
	for day := range 5 {
		night := Profile(at(day, 3))
		for _, hour := range []int{8, 17} {
			if peak := Profile(at(day, hour)); !(peak > 3*night) {
				t.Errorf("%v: %d:00 demand %.3f not above 3 × 03:00 demand %.3f", at(day, 0).Weekday(), hour, peak, night)
			}
		}
		if weekend := Profile(at(5, 8)); !(Profile(at(day, 8)) > 1.5*weekend) {
			t.Errorf("%v 08:00 not well above Saturday 08:00", at(day, 0).Weekday())
		}
	}
	// Hour means sit at the half hour, and the week wraps smoothly.
	if got, want := Profile(at(1, 8).Add(30*time.Minute)), weeklyProfile[24+8]; math.Abs(got-want) > 1e-12 {
		t.Errorf("Tue 08:30 profile %g, want table value %g", got, want)
	}
	if a, b := Profile(monday.Add(-time.Second)), Profile(monday); math.Abs(a-b) > 1e-3 {
		t.Errorf("profile jumps at the week boundary: %g then %g", a, b)
	}
	// The location of the time decides the local hour.
	tz := time.FixedZone("UTC-6", -6*3600)
	if got, want := Profile(at(1, 8).Add(6*time.Hour).In(tz)), Profile(at(1, 8)); got != want {
		t.Errorf("profile in UTC-6 at local 08:00 %g, want %g", got, want)
	}
}

func TestDemandFactors(t *testing.T) {
	t.Parallel()
	for name, f := range map[string]float64{"rain": RainDemandFactor, "heavy rain": HeavyRainDemandFactor, "snow": SnowDemandFactor} {
		if !(f > 0.7 && f <= 1) {
			t.Errorf("%s demand factor %g outside (0.7, 1]", name, f)
		}
	}
	if !(HeavyRainDemandFactor < RainDemandFactor) {
		t.Errorf("heavy rain factor %g not below rain factor %g", HeavyRainDemandFactor, RainDemandFactor)
	}
	st := &station{}
	for _, tc := range []struct {
		p       precip
		snowing bool
		want    float64
	}{
		{precipNone, false, 1},
		{precipLight, false, RainDemandFactor},
		{precipHeavy, false, HeavyRainDemandFactor},
		{precipLight, true, SnowDemandFactor},
		{precipHeavy, true, SnowDemandFactor},
	} {
		st.precip, st.snowing = tc.p, tc.snowing
		if got := st.demandFactor(); got != tc.want {
			t.Errorf("precip %d snowing %v: factor %g, want %g", tc.p, tc.snowing, got, tc.want)
		}
	}
}

func TestDemandFollowsProfile(t *testing.T) {
	t.Parallel()
	s := mustSim(t, Config{Seed: 5, Start: monday.AddDate(0, 0, 1), FaultyDetectors: -1, DuplicateRate: -1})
	var night, morning float64
	for _, tick := range run(s, 24*60) {
		var sum float64
		for _, r := range tick.Readings {
			sum += r.FlowVPH
		}
		switch h := tick.At.Hour(); {
		case h >= 2 && h < 4:
			night += sum
		case h >= 7 && h < 9:
			morning += sum
		}
	}
	if !(morning > 5*night) {
		t.Errorf("Tuesday 07-09 flow %g not above 5 × 02-04 flow %g", morning, night)
	}
}

// faultRuns returns, per detector, the longest run of identical non-zero readings and of zero readings.
func faultRuns(ticks []Tick) (stuck, dead map[string]int) {
	stuck, dead = map[string]int{}, map[string]int{}
	prev := map[string]*ingest.TrafficReading{}
	runS, runD := map[string]int{}, map[string]int{}
	for _, tick := range ticks {
		for _, r := range tick.Readings {
			if !r.ObservedAt.Time.Equal(tick.At) {
				continue // a duplicate
			}
			id := r.DetectorID
			p := prev[id]
			same := p != nil && r.Count > 0 && p.Count == r.Count && p.OccupancyRatio == r.OccupancyRatio &&
				p.SpeedKMH == r.SpeedKMH
			if same {
				runS[id]++
			} else {
				runS[id] = 1
			}
			if r.Count == 0 && r.OccupancyRatio == 0 {
				runD[id]++
			} else {
				runD[id] = 0
			}
			stuck[id], dead[id] = max(stuck[id], runS[id]), max(dead[id], runD[id])
			prev[id] = &r
		}
	}
	return stuck, dead
}

func TestFaults(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			// A weekday daytime run, so healthy detectors rarely count zero for long.
			s := mustSim(t, Config{Seed: seed, Start: monday.Add(7 * time.Hour), DuplicateRate: -1})
			faults := s.Faults()
			kind := map[string]FaultKind{}
			var kinds []FaultKind
			for _, f := range faults {
				kind[f.DetectorID] = f.Kind
				kinds = append(kinds, f.Kind)
			}
			slices.Sort(kinds)
			if want := []FaultKind{FaultStuck, FaultDead, FaultSpiky}; !slices.Equal(kinds, want) {
				t.Fatalf("fault kinds %v, want %v", kinds, want)
			}
			ticks := run(s, 12*60)
			stuck, dead := faultRuns(ticks)
			for id, n := range stuck {
				if kind[id] == FaultStuck && n < int(minSpell/time.Minute) {
					t.Errorf("stuck detector %s repeated a reading at most %d times in a row", id, n)
				}
				if kind[id] != FaultStuck && n > 3 {
					t.Errorf("%s detector %s repeated a reading %d times in a row", kind[id], id, n)
				}
			}
			for id, n := range dead {
				if kind[id] == FaultDead && n < int(minSpell/time.Minute) {
					t.Errorf("dead detector %s reported zero at most %d times in a row", id, n)
				}
				if kind[id] != FaultDead && n > 5 {
					t.Errorf("%s detector %s reported zero %d times in a row in daytime", kind[id], id, n)
				}
			}
			// The spiky detector sends impossible values and spikes well above its local median.
			spikes, impossible := map[string]int{}, map[string]int{}
			counts := map[string][]float64{}
			for _, tick := range ticks {
				for _, r := range tick.Readings {
					counts[r.DetectorID] = append(counts[r.DetectorID], r.Count)
					if occ := r.OccupancyRatio; occ < 0 || occ > 1 || r.SpeedKMH < 0 {
						impossible[r.DetectorID]++
					}
				}
			}
			for id, c := range counts {
				for i := 5; i < len(c)-5; i++ {
					window := slices.Clone(c[i-5 : i+6])
					slices.Sort(window)
					if med := window[5]; med >= 4 && c[i] >= 3*med {
						spikes[id]++
					}
				}
			}
			for id := range counts {
				if kind[id] == FaultSpiky {
					if spikes[id] < 5 || impossible[id] < 2 {
						t.Errorf("spiky detector %s: %d spikes, %d impossible values in 12 h", id, spikes[id], impossible[id])
					}
					continue
				}
				if spikes[id] > 2 || impossible[id] > 0 {
					t.Errorf("%s detector %s: %d spikes, %d impossible values", kind[id], id, spikes[id], impossible[id])
				}
			}
		})
	}
}

func TestFaultyDetectorsConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n, want int
	}{{0, DefaultFaultyDetectors}, {-1, 0}, {1, 1}, {100, 9}} {
		if got := len(mustSim(t, Config{FaultyDetectors: tc.n}).Faults()); got != tc.want {
			t.Errorf("FaultyDetectors %d: %d faults, want %d", tc.n, got, tc.want)
		}
	}
}

func TestPhysicalBounds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		start time.Time
	}{
		{"winter", time.Date(2026, 1, 12, 0, 0, 0, 0, time.UTC)},
		{"summer", time.Date(2026, 7, 13, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topo := mustTopology(t)
			s := mustSim(t, Config{Seed: 11, Start: tc.start, IntervalS: 300})
			spiky := map[string]bool{}
			for _, f := range s.Faults() {
				spiky[f.DetectorID] = f.Kind == FaultSpiky
			}
			lanes := map[string]float64{}
			for _, in := range topo.Intersections {
				for _, a := range in.Approaches {
					for _, d := range a.Detectors {
						lanes[d] = float64(a.Lanes) / float64(len(a.Detectors))
					}
				}
			}
			conditions := map[string]int{}
			for _, tick := range run(s, 21*288) {
				for _, r := range tick.Readings {
					if r.FlowVPH != r.Count*3600/300 {
						t.Fatalf("%s: flow %g for count %g", r.ReadingID, r.FlowVPH, r.Count)
					}
					if spiky[r.DetectorID] {
						continue
					}
					occ := r.OccupancyRatio
					switch {
					case r.Count < 0 || r.Count != math.Trunc(r.Count):
						t.Fatalf("%s: count %g", r.ReadingID, r.Count)
					case r.FlowVPH/lanes[r.DetectorID] > 2400:
						t.Fatalf("%s: %g veh/h per lane", r.ReadingID, r.FlowVPH/lanes[r.DetectorID])
					case !r.HasOccupancy || occ < 0 || occ > 1:
						t.Fatalf("%s: occupancy %v", r.ReadingID, r.OccupancyRatio)
					case r.Count == 0 && (occ != 0 || r.HasSpeed):
						t.Fatalf("%s: no vehicles but occupancy %g, speed %v", r.ReadingID, occ, r.SpeedKMH)
					case r.Count > 0 && (!r.HasSpeed || r.SpeedKMH <= 0 || r.SpeedKMH > 90):
						t.Fatalf("%s: speed %v", r.ReadingID, r.SpeedKMH)
					}
				}
				for _, w := range tick.Weather {
					temp, rate, snow := w.TemperatureC, w.PrecipitationMMH, w.SnowMMH
					conditions[w.Condition]++
					switch {
					case temp < -45 || temp > 45:
						t.Fatalf("%s: temperature %g", w.ReadingID, temp)
					case rate < 0 || rate > 50 || snow < 0 || snow > rate:
						t.Fatalf("%s: precipitation %g, snow %g", w.ReadingID, rate, snow)
					case w.CloudCoverRatio < 0 || w.CloudCoverRatio > 1:
						t.Fatalf("%s: cloud cover %g", w.ReadingID, w.CloudCoverRatio)
					case w.VisibilityM <= 0 || w.VisibilityM > 10000:
						t.Fatalf("%s: visibility %g", w.ReadingID, w.VisibilityM)
					}
					switch w.Condition {
					case "Clear", "Clouds":
						if rate != 0 {
							t.Fatalf("%s: %s with precipitation %g", w.ReadingID, w.Condition, rate)
						}
					case "Rain":
						if rate <= 0 || snow != 0 || temp < 0 {
							t.Fatalf("%s: rain at %g mm/h, snow %g, %g °C", w.ReadingID, rate, snow, temp)
						}
					case "Snow":
						if snow <= 0 || temp >= 0 {
							t.Fatalf("%s: snow at %g mm/h, %g °C", w.ReadingID, snow, temp)
						}
					default:
						t.Fatalf("%s: condition %q", w.ReadingID, w.Condition)
					}
				}
			}
			t.Logf("conditions over 3 weeks: %v", conditions)
			wet := "Rain"
			if tc.name == "winter" {
				wet = "Snow"
			}
			if conditions[wet] == 0 || conditions["Clear"] == 0 || conditions["Clouds"] == 0 {
				t.Errorf("conditions over 3 weeks of %s: %v", tc.name, conditions)
			}
		})
	}
}

func TestDuplicates(t *testing.T) {
	t.Parallel()
	s := mustSim(t, Config{Seed: 9, DuplicateRate: 0.05})
	ticks := run(s, 300)
	dups := 0
	for i, tick := range ticks {
		for _, r := range tick.Readings {
			if r.ObservedAt.Time.Equal(tick.At) {
				continue
			}
			dups++
			if i == 0 || !slices.ContainsFunc(ticks[i-1].Readings, func(p ingest.TrafficReading) bool { return p == r }) {
				t.Fatalf("tick %d: duplicate %s is not a reading of the previous tick", i, r.ReadingID)
			}
		}
	}
	if dups == 0 {
		t.Fatal("no duplicates at DuplicateRate 0.05")
	}
	for _, tick := range run(mustSim(t, Config{Seed: 9, DuplicateRate: -1}), 300) {
		if len(tick.Readings) != 9 {
			t.Fatalf("DuplicateRate -1: %d readings in a tick", len(tick.Readings))
		}
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	topo := mustTopology(t)
	bad := topo
	bad.Version = 2
	for _, tc := range []struct {
		name string
		topo topology.Topology
		cfg  Config
		want string
	}{
		{"no start", topo, Config{}, "Start is required"},
		{"interval not dividing a day", topo, Config{Start: monday, IntervalS: 7}, "IntervalS 7"},
		{"negative weather interval", topo, Config{Start: monday, WeatherIntervalS: -5}, "WeatherIntervalS -5"},
		{"peak ratio too high", topo, Config{Start: monday, PeakDemandRatio: 0.9}, "PeakDemandRatio"},
		{"duplicate rate above 1", topo, Config{Start: monday, DuplicateRate: 2}, "DuplicateRate"},
		{"invalid topology", bad, Config{Start: monday}, "version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tc.topo, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestPoissonMean(t *testing.T) {
	t.Parallel()
	rng := newRNG(1, "poisson")
	for _, mean := range []float64{0.3, 4, 25, 80} {
		var sum float64
		const n = 20000
		for range n {
			sum += poisson(rng, mean)
		}
		if got := sum / n; math.Abs(got-mean) > 4*math.Sqrt(mean/n) {
			t.Errorf("poisson mean %g: sample mean %g", mean, got)
		}
	}
}

func BenchmarkNext(b *testing.B) {
	s := mustSim(b, Config{Seed: 1})
	b.ReportAllocs()
	for b.Loop() {
		s.Next()
	}
}
