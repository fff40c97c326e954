package evaluate

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// testTopology is one intersection with two one-detector approaches and hourly windows.
func testTopology() topology.Topology {
	ph := func(id, a string) topology.Phase {
		return topology.Phase{ID: id, Approaches: []string{a}, MinGreenS: 10, MaxGreenS: 60, YellowS: 4, AllRedS: 2, LostTimeS: 4}
	}
	return topology.Topology{Version: topology.SchemaVersion, Intersections: []topology.Intersection{{
		ID: "X", WindowS: 3600,
		Approaches: []topology.Approach{
			{ID: "N", Lanes: 1, SaturationFlowVPHPerLane: 1800, Detectors: []string{"X-N"}},
			{ID: "E", Lanes: 1, SaturationFlowVPHPerLane: 1800, Detectors: []string{"X-E"}},
		},
		Phases: []topology.Phase{ph("NS", "N"), ph("EW", "E")},
		Timing: topology.Timing{MinCycleS: 40, MaxCycleS: 120},
	}}}
}

var t0 = time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC) // a Monday

// flowAt is a deterministic daily pattern that never repeats a count twelve times in a row.
func flowAt(h int, det string) float64 {
	base := 300 + 200*math.Sin(2*math.Pi*float64(h%24)/24) + float64(h%7)*3
	if det == "X-E" {
		base /= 2
	}
	return math.Round(base)
}

// feed gives hours [0, hours) of both detectors to e, except the hours in missing (detector N only).
func feed(t *testing.T, e *Evaluator, hours int, missing map[int]bool) {
	t.Helper()
	for h := 0; h < hours; h++ {
		for _, det := range []string{"X-N", "X-E"} {
			if det == "X-N" && missing[h] {
				continue
			}
			rd := clean.Reading{IntersectionID: "X", DetectorID: det, Start: t0.Add(time.Duration(h) * time.Hour), IntervalS: 3600, Count: flowAt(h, det)}
			if err := e.Reading(rd); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestScoringRules(t *testing.T) {
	t.Parallel()
	const hours = 24 * 10
	tests := []struct {
		name    string
		warmup  time.Duration
		missing map[int]bool
		// wantN is the model's scored pairs at 1 h over both approaches: every measured label window at or after
		// the warm-up boundary (every window has a forecast from the window before it).
		wantN int
	}{
		{"no warm-up", 0, nil, 2 * (hours - 1)},
		{"two-day warm-up", 48 * time.Hour, nil, 2 * (hours - 48)},
		{"imputed targets skipped", 48 * time.Hour, map[int]bool{10: true, 100: true, 101: true, 200: true}, 2*(hours-48) - 3},
		{"warm-up longer than the data", 24 * 30 * time.Hour, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			cfg.Train.Horizons = []time.Duration{time.Hour, 2 * time.Hour}
			cfg.Warmup = tc.warmup
			cfg.Trace = true
			e, err := New(testTopology(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			feed(t, e, hours, tc.missing)
			rep, err := e.Finish()
			if err != nil {
				t.Fatal(err)
			}
			if got := rep.Horizons[0].Model.N; got != tc.wantN {
				t.Errorf("model n at 1h = %d, want %d", got, tc.wantN)
			}
			if got := rep.Horizons[1].Model.N; tc.wantN > 0 && got != tc.wantN {
				// Every window also has a forecast from two windows before it, except the very first label.
				if tc.warmup != 0 || got != tc.wantN-2 {
					t.Errorf("model n at 2h = %d, want %d", got, tc.wantN)
				}
			}
			boundary := t0.Add(tc.warmup)
			for _, p := range rep.Trace {
				if p.Target.Before(boundary) {
					t.Fatalf("scored label at %v before the warm-up boundary %v", p.Target, boundary)
				}
				if h := int(p.Target.Sub(t0) / time.Hour); p.ApproachID == "N" && tc.missing[h] {
					t.Fatalf("scored the imputed target at hour %d", h)
				}
			}
			// Persistence needs the window at t measured too, so it never scores more than the model.
			if p := rep.Horizons[0].Baselines["persistence"]; p.N > tc.wantN {
				t.Errorf("persistence n %d > model n %d", p.N, tc.wantN)
			}
			if c := rep.Cleaning; c.Readings != 2*hours-len(tc.missing) || c.Imputed != len(tc.missing) {
				t.Errorf("cleaning %+v, want %d readings and %d imputed", c, 2*hours-len(tc.missing), len(tc.missing))
			}
			if rep.Vectors != 2*hours {
				t.Errorf("vectors %d, want %d", rep.Vectors, 2*hours)
			}
		})
	}
}

// TestBaselinesMatchLearnerAfterWarmup: persistence at 1 h, recomputed by hand over the labels after the
// warm-up, equals what the learner's own evaluation gives after subtracting the boundary snapshot.
func TestBaselinesMatchLearnerAfterWarmup(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Train.Horizons = []time.Duration{time.Hour}
	cfg.Warmup = 72 * time.Hour
	e, err := New(testTopology(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	const hours = 24 * 8
	feed(t, e, hours, nil)
	rep, err := e.Finish()
	if err != nil {
		t.Fatal(err)
	}
	var s errSums
	for h := 72; h < hours; h++ {
		for _, det := range []string{"X-N", "X-E"} {
			s.pair(flowAt(h, det), flowAt(h-1, det))
		}
	}
	want, got := s.metrics(), rep.Horizons[0].Baselines["persistence"]
	if got.N != want.N || math.Abs(got.MAE-want.MAE) > 1e-9*want.MAE || math.Abs(got.RMSE-want.RMSE) > 1e-9*want.RMSE {
		t.Fatalf("persistence %+v, want %+v", got, want)
	}
}

func TestUnknownIntersectionCounted(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Train.Horizons = []time.Duration{time.Hour}
	e, err := New(testTopology(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, rd := range []clean.Reading{
		{IntersectionID: "nope", DetectorID: "X-N", Start: t0, IntervalS: 3600, Count: 1},
		{DetectorID: "ghost", Start: t0, IntervalS: 3600, Count: 1},
		{DetectorID: "X-N", Start: t0, IntervalS: 3600, Count: 1}, // routed by the detector index
	} {
		if err := e.Reading(rd); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := e.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Cleaning.Rejected["unknown_detector"]; got != 2 {
		t.Fatalf("unknown_detector %d, want 2 (%v)", got, rep.Cleaning.Rejected)
	}
	if rep.Vectors != 2 {
		t.Fatalf("vectors %d, want the routed reading's window for both approaches", rep.Vectors)
	}
}

func TestNewReportsBadHorizon(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Train.Horizons = []time.Duration{15 * time.Minute}
	_, err := New(testTopology(), cfg)
	if err == nil || !strings.Contains(err.Error(), "intersection X (window 3600 s)") || !strings.Contains(err.Error(), "15m0s") {
		t.Fatalf("err %v, want one naming the intersection, its window and the horizon", err)
	}
}

func TestHoldoutOLS(t *testing.T) {
	t.Parallel()
	// 100 rows given newest first; y = 2 + 3·x0 for the oldest 80 and +10 for the newest 20, so the test MAE is
	// 10 exactly when (and only when) the split follows time. Column 1 is constant and column 2 repeats column
	// 0: both must be dropped.
	var rows []holdoutRow
	for i := 99; i >= 0; i-- {
		x := float64(i%13) + 0.5*float64(i%5)
		y := 2 + 3*x
		if i >= 80 {
			y += 10
		}
		rows = append(rows, holdoutRow{t: int64(i) * 3600, x: []float64{x, 7, 2 * x}, y: y * 100, scale: 100})
	}
	rep := holdoutOLS(rows, []string{"a", "const", "twice_a"})
	if rep.Err != "" {
		t.Fatal(rep.Err)
	}
	if rep.Train != 80 || rep.N != 20 {
		t.Fatalf("train %d test %d, want 80 and 20", rep.Train, rep.N)
	}
	if !reflect.DeepEqual(rep.Dropped, []string{"const", "twice_a"}) {
		t.Fatalf("dropped %v", rep.Dropped)
	}
	if math.Abs(rep.MAE-1000) > 1e-6 || math.Abs(rep.MSE-1e6) > 1e-3 {
		t.Fatalf("MAE %g MSE %g, want 1000 and 1e6 (natural units: scale 100)", rep.MAE, rep.MSE)
	}
	if r := holdoutOLS(rows[:2], nil); r.Err == "" {
		t.Fatal("2 rows: want an error")
	}
}

func TestSplitRows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		n           int
		method      string
		seed        uint64
		train, test []int
	}{
		{"tail", 10, SplitTail, 0, []int{0, 1, 2, 3, 4, 5, 6, 7}, []int{8, 9}},
		{"tail floor", 7, SplitTail, 0, []int{0, 1, 2, 3, 4}, []int{5, 6}},
		{"empty", 0, SplitRandom, 1, []int{}, []int{}},
		// Reproduced by cmd/greenwave/testdata/fit/gen.py's split(10, "random", 7).
		{"random seed 7", 10, SplitRandom, 7, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr, te, err := SplitRows(tc.n, tc.method, tc.seed)
			if err != nil {
				t.Fatal(err)
			}
			if len(tr) != TrainRows(tc.n) || len(tr)+len(te) != tc.n {
				t.Fatalf("train %v test %v", tr, te)
			}
			seen := map[int]bool{}
			for _, i := range append(append([]int{}, tr...), te...) {
				if seen[i] || i < 0 || i >= tc.n {
					t.Fatalf("index %d repeated or out of range: %v %v", i, tr, te)
				}
				seen[i] = true
			}
			if tc.train != nil && (!reflect.DeepEqual(tr, tc.train) || !reflect.DeepEqual(te, tc.test)) {
				t.Fatalf("train %v test %v, want %v %v", tr, te, tc.train, tc.test)
			}
			tr2, _, _ := SplitRows(tc.n, tc.method, tc.seed)
			if !reflect.DeepEqual(tr, tr2) {
				t.Fatal("split not deterministic")
			}
		})
	}
	if _, _, err := SplitRows(3, "middle", 0); err == nil {
		t.Fatal("unknown method accepted")
	}
}

// TestFixedPlanPeakHour: the fixed-time reference is Webster on the weekday hour with the highest MEAN total
// flow, not the highest sum (an hour seen more often must not win on count alone).
func TestFixedPlanPeakHour(t *testing.T) {
	t.Parallel()
	in := testTopology().Intersections[0]
	tests := []struct {
		name     string
		sums     map[int][2]float64
		counts   map[int]int
		wantHour int
		ok       bool
	}{
		{"highest mean wins over highest sum", map[int][2]float64{8: {800, 400}, 17: {2000, 2000}}, map[int]int{8: 1, 17: 5}, 8, true},
		{"evening peak", map[int][2]float64{8: {500, 100}, 17: {900, 300}}, map[int]int{8: 1, 17: 1}, 17, true},
		{"no weekday data", nil, nil, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := newSignalRun(in, DefaultSignalConfig(), []time.Duration{time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			for h, v := range tc.sums {
				s.peakSum[h][0], s.peakSum[h][1] = v[0], v[1]
				s.peakN[h] = tc.counts[h]
			}
			plan, hour, ok := s.fixedPlan()
			if ok != tc.ok || hour != tc.wantHour {
				t.Fatalf("hour %d ok %v, want %d %v", hour, ok, tc.wantHour, tc.ok)
			}
			if !ok {
				return
			}
			n := float64(tc.counts[hour])
			want, err := signal.Webster(in, map[string]float64{"N": tc.sums[hour][0] / n, "E": tc.sums[hour][1] / n}, signal.Options{Reason: signal.ReasonFixedTime})
			if err != nil {
				t.Fatal(err)
			}
			if plan.CycleS != want.CycleS || !reflect.DeepEqual(plan.Phases, want.Phases) {
				t.Fatalf("plan %+v, want Webster on the peak-hour means %+v", plan, want)
			}
			if err := signal.Validate(in, plan); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSignalsReplay runs the whole replay on a small, regular data set: every plan is valid, plans are scored
// only after the warm-up, and Greenwave's adaptive plans beat the fixed plan less than never (a sanity bound).
func TestSignalsReplay(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Train.Horizons = []time.Duration{time.Hour}
	sc := DefaultSignalConfig()
	sc.Warmup = 48 * time.Hour
	cfg.Signals = &sc
	e, err := New(testTopology(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, e, 24*5, nil)
	rep, err := e.Finish()
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Signals
	if s.Intersections != 1 || s.Windows != 24*3 {
		t.Fatalf("signals %+v, want 1 intersection and 72 scored windows", s)
	}
	if !(s.FixedTimeDelayS > 0) || !(s.GreenwaveDelayS > 0) || math.Abs(s.Reduction-(1-s.GreenwaveDelayS/s.FixedTimeDelayS)) > 1e-12 {
		t.Fatalf("delays %+v", s)
	}
	total := 0
	for _, n := range s.PlanReasons {
		total += n
	}
	if total != s.Windows {
		t.Fatalf("plan reasons %v do not add up to %d windows", s.PlanReasons, s.Windows)
	}
}
