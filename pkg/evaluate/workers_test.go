package evaluate

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/train"
)

// workersTopology is three signalised intersections and a detector station, hourly windows: A and C with two
// approaches, B with three, one of them fed by A's north approach (an upstream feature read across
// intersections by the cleaners), and S forecast only.
func workersTopology() topology.Topology {
	ph := func(id string, a ...string) topology.Phase {
		return topology.Phase{ID: id, Approaches: a, MinGreenS: 10, MaxGreenS: 60, YellowS: 4, AllRedS: 2, LostTimeS: 4}
	}
	ap := func(in, id string, upstream ...string) topology.Approach {
		return topology.Approach{ID: id, Lanes: 1, SaturationFlowVPHPerLane: 1800, Detectors: []string{in + "-" + id}, Upstream: upstream}
	}
	timing := topology.Timing{MinCycleS: 40, MaxCycleS: 120}
	return topology.Topology{Version: topology.SchemaVersion, Intersections: []topology.Intersection{
		{ID: "A", WindowS: 3600, Approaches: []topology.Approach{ap("A", "N"), ap("A", "E")},
			Phases: []topology.Phase{ph("NS", "N"), ph("EW", "E")}, Timing: timing},
		{ID: "B", WindowS: 3600, Approaches: []topology.Approach{ap("B", "N", "A/N"), ap("B", "E"), ap("B", "W")},
			Phases: []topology.Phase{ph("NS", "N"), ph("EW", "E", "W")}, Timing: timing},
		{ID: "S", WindowS: 3600, ForecastOnly: true, Approaches: []topology.Approach{ap("S", "X")}},
		{ID: "C", WindowS: 3600, Approaches: []topology.Approach{ap("C", "N"), ap("C", "E")},
			Phases: []topology.Phase{ph("NS", "N"), ph("EW", "E")}, Timing: timing},
	}}
}

// workersReadings is 10 days of hourly readings of every detector of workersTopology, in time order, with what
// makes every part of the report differ between intersections: per-detector levels, missing readings (gaps),
// spikes (outlier flags, in the same windows everywhere), negative counts (rejections) and readings of an
// unknown detector. Each hour lists the intersections in the reverse of the topology's order, so that the
// input's order is not the runs'.
func workersReadings() []clean.Reading {
	var out []clean.Reading
	ins := workersTopology().Intersections
	slices.Reverse(ins)
	for h := 0; h < 10*24; h++ {
		for _, in := range ins {
			for ai, a := range in.Approaches {
				det := a.Detectors[0]
				k := len(in.ID)*7 + int(in.ID[0]) + ai*13 // a different pattern per detector
				if (h+k)%97 == 0 {
					continue // a missing reading
				}
				c := math.Round(200 + float64(k%50) + 150*math.Sin(2*math.Pi*float64((h+k)%24)/24) + float64((h*k)%11))
				switch {
				case h%60 == 37:
					c *= 6 // a spike
				case (h+k)%211 == 0:
					c = -5 // rejected
				}
				out = append(out, clean.Reading{IntersectionID: in.ID, DetectorID: det, Start: t0.Add(time.Duration(h) * time.Hour),
					IntervalS: 3600, Count: c})
			}
		}
		if h%50 == 0 {
			out = append(out, clean.Reading{IntersectionID: "Z", DetectorID: "Z-1", Start: t0.Add(time.Duration(h) * time.Hour), IntervalS: 3600, Count: 1})
		}
	}
	return out
}

// TestWorkersSameReport: applying the intersections' frames on several goroutines gives the report one
// goroutine gives, every field of it: scores, hold-out, cleaning counts, the trace and the flags in the same
// order, and the signal replay. One goroutine's trace and flags are in the order it applied the vectors
// (Config.Observe's), as before the workers: not grouped by intersection.
func TestWorkersSameReport(t *testing.T) {
	t.Parallel()
	// applied numbers the vectors in the order one goroutine applies them, by intersection, approach and window.
	type vec struct {
		in, ap string
		at     time.Time
	}
	applied := map[vec]int{}
	report := func(workers int, signalsOnly bool) *Report {
		t.Helper()
		cfg := DefaultConfig()
		cfg.SignalsOnly = signalsOnly
		cfg.Train.Horizons = []time.Duration{time.Hour, 2 * time.Hour}
		cfg.Warmup = 48 * time.Hour
		cfg.Trace, cfg.Flags, cfg.Workers = true, true, workers
		sc := DefaultSignalConfig()
		sc.Warmup = 48 * time.Hour
		cfg.Signals = &sc
		if workers == 1 {
			cfg.Observe = func(f features.Frame, v features.Vector, _ *train.Learner, _ train.Update) {
				applied[vec{f.IntersectionID, v.ApproachID, f.WindowStart}] = len(applied)
			}
		}
		e, err := New(workersTopology(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, rd := range workersReadings() {
			if err := e.Reading(rd); err != nil {
				t.Fatal(err)
			}
		}
		rep, err := e.Finish()
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	// show prints every field, NaNs and map keys in a fixed way (%v sorts maps), the signal report in place of
	// its pointer.
	show := func(r *Report) string {
		c := *r
		c.Signals = nil
		return fmt.Sprintf("%+v\nsignals %+v", c, *r.Signals)
	}
	seq := report(1, false)
	if len(seq.Trace) == 0 || seq.Cleaning.Flagged == 0 || seq.Cleaning.Rejected[string(clean.ReasonUnknownDetector)] == 0 ||
		len(seq.Flags) == 0 || seq.Holdout.Err != "" || seq.Signals.Windows == 0 || seq.Signals.Intersections != 3 {
		t.Fatalf("the fixture does not exercise the report: %d trace points, %d flagged, rejected %v, %d flags, hold-out %q, signals %+v",
			len(seq.Trace), seq.Cleaning.Flagged, seq.Cleaning.Rejected, len(seq.Flags), seq.Holdout.Err, *seq.Signals)
	}
	last := -1
	for _, p := range seq.Trace {
		i, ok := applied[vec{p.IntersectionID, p.ApproachID, p.Target}]
		if !ok || i <= last {
			t.Fatalf("trace point %+v is not in the order the vectors were applied", p)
		}
		last = i
	}
	ties := 0
	for k := 1; k < len(seq.Flags); k++ {
		a, b := seq.Flags[k-1], seq.Flags[k]
		if a.Reason != string(clean.ReasonOutlier) || b.Reason != a.Reason || !a.Time.Equal(b.Time) {
			continue
		}
		ties++
		if applied[vec{a.IntersectionID, a.ApproachID, a.Time}] > applied[vec{b.IntersectionID, b.ApproachID, b.Time}] {
			t.Fatalf("outlier flags %+v and %+v of one window are not in the order the vectors were applied", a, b)
		}
	}
	if ties == 0 {
		t.Fatal("the fixture has no two outlier flags of one window")
	}
	want := show(seq)
	// 8: more workers than intersections.
	for _, workers := range []int{2, 8} {
		if got := show(report(workers, false)); got != want {
			t.Errorf("Workers %d: the report differs from one goroutine's:\ngot  %.2000s\nwant %.2000s", workers, got, want)
		}
	}
	// SignalsOnly leaves out the forecast scores, the hold-out and the trace, and nothing else.
	seq.Horizons, seq.Holdout, seq.Trace = nil, HoldoutReport{}, nil
	want = show(seq)
	for _, workers := range []int{2} {
		if got := show(report(workers, true)); got != want {
			t.Errorf("SignalsOnly, Workers %d: the report differs from the full one's:\ngot  %.2000s\nwant %.2000s", workers, got, want)
		}
	}
}
