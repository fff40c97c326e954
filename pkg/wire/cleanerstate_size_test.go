package wire

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// eightApproaches is an intersection of eight approaches (four legs, through and turning movements), each with
// one detector, 300 s windows.
func eightApproaches() topology.Intersection {
	in := topology.Intersection{ID: "I-8", WeatherStation: "STN-1", WindowS: 300}
	for _, a := range []string{"N", "NL", "S", "SL", "E", "EL", "W", "WL"} {
		in.Approaches = append(in.Approaches, topology.Approach{ID: a, Lanes: 2, SaturationFlowVPHPerLane: 1800,
			Detectors: []string{"I-8-" + a + "1"}})
	}
	return in
}

// TestStateSize feeds an eight-approach intersection two weeks of one-minute readings with flow, occupancy and
// speed (a daily pattern, noise, missing readings, an outage) and checks that its encoded state stays within
// 64 KB all along: every history in it is bounded (see docs/cleaner.md "State").
func TestStateSize(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("two weeks of readings")
	}
	in := eightApproaches()
	s, err := clean.NewIntersection(in, clean.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // a Monday
	rng := rand.New(rand.NewPCG(11, 12))
	const limit = 64 << 10
	largest, frames := 0, 0
	for m := range 14 * 24 * 60 {
		at := t0.Add(time.Duration(m) * time.Minute)
		h := float64(at.Hour()) + float64(at.Minute())/60
		level := 0.2 + 0.8*math.Exp(-(h-8)*(h-8)/4) + 0.7*math.Exp(-(h-17)*(h-17)/6)
		for ai, a := range in.Approaches {
			if rng.Float64() < 0.01 || (ai == 3 && m >= 3000 && m < 3400) {
				continue // missing readings and a 400-minute outage
			}
			c := math.Round(level * (10 + 3*float64(ai%3)) * (0.8 + 0.4*rng.Float64()))
			r := clean.Reading{ID: fmt.Sprintf("%s@%d", a.Detectors[0], at.Unix()), IntersectionID: in.ID, DetectorID: a.Detectors[0],
				Start: at, IntervalS: 60, Count: c,
				Occupancy: math.Min(1, c/60), HasOccupancy: true, SpeedKMH: math.Max(5, 60-c), HasSpeed: true}
			res := s.Add(r, nil)
			frames += len(res.Frames)
		}
		s.SetPosition(int64(m))
		if m%997 == 0 || m == 14*24*60-1 {
			// The cleaner forgets settled emission positions at each checkpoint.
			s.ForgetEmissionsThrough(int64(m) - 1)
			b, err := MarshalCleaner(s)
			if err != nil {
				t.Fatal(err)
			}
			largest = max(largest, len(b))
		}
	}
	if frames < 14*24*12-2 {
		t.Fatalf("%d frames", frames)
	}
	t.Logf("largest state of an eight-approach intersection over two weeks: %d bytes", largest)
	if largest > limit {
		t.Fatalf("state %d bytes, want at most %d", largest, limit)
	}
}
