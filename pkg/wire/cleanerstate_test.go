package wire

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func stateTopo() topology.Intersection {
	return topology.Intersection{
		ID: "I-1", WeatherStation: "STN-1", WindowS: 300,
		Approaches: []topology.Approach{
			{ID: "N", Lanes: 2, SaturationFlowVPHPerLane: 1800, Detectors: []string{"N1", "N2"}, Upstream: []string{"I-1/E", "I-2/N"}},
			{ID: "E", Lanes: 1, SaturationFlowVPHPerLane: 1800, Detectors: []string{"E1"}},
		},
	}
}

// stateFixture is an intersection fed two days of one-minute readings with a daily cycle, some with their own
// ids, a stuck detector, and a reading held by the clock-jump rule: every part of the state is populated.
func stateFixture(t testing.TB) *clean.Intersection {
	t.Helper()
	s, err := clean.NewIntersection(stateTopo(), clean.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	dets := map[string]string{"N1": "N", "N2": "N", "E1": "E"}
	order := []string{"N1", "N2", "E1"}
	const minutes = 2 * 24 * 60
	for m := range minutes {
		at := t0.Add(time.Duration(m) * time.Minute)
		s.SetPosition(int64(m + 1))
		for i, d := range order {
			count := math.Round(10 + 8*math.Sin(2*math.Pi*float64(m)/1440+float64(i)))
			if d == "E1" && m > minutes-40 {
				count = 7 // stuck
			}
			r := clean.Reading{ID: fmt.Sprintf("%s@%d", d, at.Unix()), IntersectionID: "I-1", ApproachID: dets[d], DetectorID: d,
				Start: at, IntervalS: 60, Count: count, FlowVPH: count * 60}
			if m%7 == 0 {
				r.ID = fmt.Sprintf("gw-%s-%d", d, m)
			}
			if d != "E1" {
				r.Occupancy, r.HasOccupancy = math.Round(count*100/60)/100, true
				r.SpeedKMH, r.HasSpeed = 50-count, true
			}
			s.Add(r, nil)
		}
	}
	s.ForgetEmissionsThrough(minutes - 60)
	far := t0.Add(minutes*time.Minute + 48*time.Hour)
	s.Add(clean.Reading{ID: "N1@far", IntersectionID: "I-1", ApproachID: "N", DetectorID: "N1", Start: far, IntervalS: 60, Count: 3, FlowVPH: 180}, nil)
	return s
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the golden %d bytes", name, len(got), len(want))
	}
}

// TestCleanerStateGolden: the encoding of a cleaner state is byte-identical to the one captured before the
// state moved out of pkg/clean (and the migration of a JSON format 3 state gives the same format 4 bytes).
func TestCleanerStateGolden(t *testing.T) {
	t.Parallel()
	b, err := MarshalCleaner(stateFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "cleaner-state.golden", b)

	legacy, err := os.ReadFile("testdata/state-format3.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := RestoreCleaner(stateTopo(), clean.DefaultConfig(), legacy)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = MarshalCleaner(s); err != nil {
		t.Fatal(err)
	}
	golden(t, "cleaner-state-format3.golden", b)
}
