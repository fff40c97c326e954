package evaluate

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/train"
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

// samePairs is the same-pairs rule computed by hand for the test data (hourly windows, UTC, both approaches
// measured every hour except N's missing hours): the labels T at or after the warm-up boundary, measured, whose
// persistence window T−h is measured and whose seasonal-naive window T−168 h exists and is measured (the
// historical average and the profile of T's hour of week then have that sample too; the model always forecasts).
func samePairs(hours, warmupH, h int, missing map[int]bool) int {
	n := 0
	for _, ap := range []string{"N", "E"} {
		meas := func(k int) bool { return k >= 0 && k < hours && !(ap == "N" && missing[k]) }
		for T := max(warmupH, h); T < hours; T++ {
			if meas(T) && meas(T-h) && meas(T-168) {
				n++
			}
		}
	}
	return n
}

// labelledPairs counts the labels the same-pairs rule considers in the test data: measured, at or after the
// warm-up boundary, with a forecast made h hours earlier (the learner forecasts from every window).
func labelledPairs(hours, warmupH, h int, missing map[int]bool) int {
	n := 0
	for _, ap := range []string{"N", "E"} {
		for T := max(warmupH, h); T < hours; T++ {
			if !(ap == "N" && missing[T]) {
				n++
			}
		}
	}
	return n
}

// TestSamePairsRule: the model and every baseline are scored on exactly the same pairs — a pair counts only
// when every forecaster has a forecast — so n is equal across rows, and the pairs a baseline lacks (seasonal
// naive without a week of history, persistence after an unmeasured window) are counted in Missing.
func TestSamePairsRule(t *testing.T) {
	t.Parallel()
	const hours = 24 * 10
	tests := []struct {
		name    string
		warmupH int
		missing map[int]bool
		// wantMissing is Missing at 1 h.
		wantMissing map[string]int
	}{
		// Seasonal naive lacks a week of history for the first 167 labels of each approach; the historical
		// average and the profile lack their hour of week for the same ones.
		{"no warm-up", 0, nil, map[string]int{"seasonal_naive": 2 * 167, "historical_average": 2 * 167, "seasonal_profile": 2 * 167}},
		{"warm-up past the first week", 170, nil, map[string]int{}},
		// N's hours 180 and 181 are unmeasured: label 180 and 181 are not pairs, label 182 lacks persistence;
		// hour 10 unmeasured takes away label 178's seasonal naive, and its hour of week's only earlier sample.
		{"unmeasured windows", 170, map[int]bool{10: true, 180: true, 181: true},
			map[string]int{"persistence": 1, "seasonal_naive": 1, "historical_average": 1, "seasonal_profile": 1}},
		{"warm-up longer than the data", 24 * 30, nil, map[string]int{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			cfg.Train.Horizons = []time.Duration{time.Hour, 2 * time.Hour}
			cfg.Warmup = time.Duration(tc.warmupH) * time.Hour
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
			for hi, h := range []int{1, 2} {
				hr := rep.Horizons[hi]
				want := samePairs(hours, tc.warmupH, h, tc.missing)
				if hr.Model.N != want {
					t.Errorf("%dh: model n %d, want %d", h, hr.Model.N, want)
				}
				if wantDropped := labelledPairs(hours, tc.warmupH, h, tc.missing) - want; hr.DroppedPairs != wantDropped {
					t.Errorf("%dh: %d pairs dropped, want %d (labelled pairs past the warm-up − n)", h, hr.DroppedPairs, wantDropped)
				}
				// The model forecasts every window here, so it is scored on every labelled pair in ModelAll.
				if all := labelledPairs(hours, tc.warmupH, h, tc.missing); hr.ModelAll.N != all {
					t.Errorf("%dh: model on all pairs n %d, want %d", h, hr.ModelAll.N, all)
				}
				if len(hr.Baselines) != len(OnlineBaselines) {
					t.Errorf("%dh: baselines %v, want %v", h, hr.Baselines, OnlineBaselines)
				}
				for _, name := range OnlineBaselines {
					if got := hr.Baselines[name].N; got != hr.Model.N {
						t.Errorf("%dh: %s n %d, model n %d: rows not on the same pairs", h, name, got, hr.Model.N)
					}
				}
			}
			if got := rep.Horizons[0].Missing; !reflect.DeepEqual(got, tc.wantMissing) {
				t.Errorf("missing at 1h %v, want %v", got, tc.wantMissing)
			}
			boundary := t0.Add(time.Duration(tc.warmupH) * time.Hour)
			for _, p := range rep.Trace {
				if p.Target.Before(boundary) {
					t.Fatalf("scored label at %v before the warm-up boundary %v", p.Target, boundary)
				}
				if h := int(p.Target.Sub(t0) / time.Hour); p.ApproachID == "N" && tc.missing[h] {
					t.Fatalf("scored the imputed target at hour %d", h)
				}
			}
			if len(rep.Trace) != rep.Horizons[0].Model.N {
				t.Errorf("trace has %d points, model n %d", len(rep.Trace), rep.Horizons[0].Model.N)
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

// TestBaselinesByHand: persistence and seasonal naive at 1 h, recomputed by hand over the same pairs, equal the
// report's.
func TestBaselinesByHand(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Train.Horizons = []time.Duration{time.Hour}
	cfg.Warmup = 72 * time.Hour
	e, err := New(testTopology(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	const hours = 24 * 9
	feed(t, e, hours, nil)
	rep, err := e.Finish()
	if err != nil {
		t.Fatal(err)
	}
	var pers, sn errSums
	for h := 168; h < hours; h++ {
		for _, det := range []string{"X-N", "X-E"} {
			pers.pair(flowAt(h, det), flowAt(h-1, det))
			sn.pair(flowAt(h, det), flowAt(h-168, det))
		}
	}
	for name, want := range map[string]Metrics{BaselinePersistence: pers.metrics(), BaselineSeasonalNaive: sn.metrics()} {
		got := rep.Horizons[0].Baselines[name]
		if got.N != want.N || math.Abs(got.MAE-want.MAE) > 1e-9*want.MAE || math.Abs(got.RMSE-want.RMSE) > 1e-9*want.RMSE {
			t.Errorf("%s %+v, want %+v", name, got, want)
		}
	}
}

// TestHistoricalAverageLocalTime: the historical average buckets the LOCAL time of week of the topology's
// time_zone, exactly as the model's seasonal profile does (which reads it from the dow_sin/dow_cos calendar
// features), across daylight-saving changes in both directions and hemispheres. On traffic that follows the
// local hour of week exactly, once every hour of week has a sample, it forecasts without error; UTC buckets
// would mix adjacent local hours after the change. Seasonal naive takes the same local hour a week before, so
// it is exact too (the same UTC instant would be an hour off for the week after the change).
func TestHistoricalAverageLocalTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, zone string
		// start is two weeks before the change, local midnight; the fixture runs three weeks.
		year, month, day int
	}{
		{"Chicago, spring forward 2024-03-10", "America/Chicago", 2024, 2, 25},
		{"Chicago, fall back 2024-11-03", "America/Chicago", 2024, 10, 20},
		{"Melbourne, fall back 2024-04-07", "Australia/Melbourne", 2024, 3, 24},
		{"Melbourne, spring forward 2024-10-06", "Australia/Melbourne", 2024, 9, 22},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			loc, err := time.LoadLocation(tc.zone)
			if err != nil {
				t.Skipf("no time zone database: %v", err)
			}
			topo := testTopology()
			topo.TimeZone = tc.zone
			cfg := DefaultConfig()
			cfg.Train.Horizons = []time.Duration{time.Hour}
			cfg.Warmup = 8 * 24 * time.Hour
			var e *Evaluator
			// The bucket of every window, as the model's profile reads it from the calendar features, must be
			// the historical average's.
			var checked, differ int
			cfg.Observe = func(f features.Frame, v features.Vector, _ *train.Learner, _ train.Update) {
				si, ci := slices.Index(f.Names, "dow_sin"), slices.Index(f.Names, "dow_cos")
				if si < 0 || ci < 0 {
					t.Fatalf("no dow_sin/dow_cos in %v", f.Names)
				}
				turn := math.Atan2(v.Values[si], v.Values[ci]) / (2 * math.Pi)
				tow := (int64(math.Round(turn*weekS)) + weekS) % weekS
				h := e.runs["X"].series[0].hist
				checked++
				if int(tow/h.bucketS) != h.bucket(f.WindowStart.Unix()) {
					differ++
				}
			}
			e, err = New(topo, cfg)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Date(tc.year, time.Month(tc.month), tc.day, 0, 0, 0, 0, loc).UTC()
			local := func(at time.Time) float64 {
				lt := at.In(loc)
				return float64(100 + 10*lt.Hour() + int(lt.Weekday()))
			}
			for k := 0; k < 24*21; k++ {
				at := start.Add(time.Duration(k) * time.Hour)
				for _, det := range []string{"X-N", "X-E"} {
					if err := e.Reading(clean.Reading{IntersectionID: "X", DetectorID: det, Start: at, IntervalS: 3600, Count: local(at)}); err != nil {
						t.Fatal(err)
					}
				}
			}
			rep, err := e.Finish()
			if err != nil {
				t.Fatal(err)
			}
			if checked == 0 || differ > 0 {
				t.Errorf("%d of %d windows in another historical-average bucket than the profile's local one", differ, checked)
			}
			hr := rep.Horizons[0]
			if ha := hr.Baselines[BaselineHistoricalAverage]; ha.N == 0 || ha.MAE != 0 {
				t.Errorf("historical average %+v, want MAE 0 on local-time traffic (UTC buckets?)", ha)
			}
			if sn := hr.Baselines[BaselineSeasonalNaive]; sn.N == 0 || sn.MAE != 0 {
				t.Errorf("seasonal naive %+v, want MAE 0 on local-time traffic (the same UTC instant a week before?)", sn)
			}
			if _, off0 := start.In(loc).Zone(); func() bool { _, off1 := start.Add(21 * 24 * time.Hour).In(loc).Zone(); return off0 == off1 }() {
				t.Fatal("the fixture does not cross a daylight-saving change")
			}
			// The profile looks up t's local time of week plus h, another bucket than t+h's only for the
			// forecast across the change: its error is a few pairs' worth.
			if p := hr.Baselines[BaselineSeasonalProfile]; !(p.MAE < 1) {
				t.Errorf("seasonal profile %+v, want almost no error", p)
			}
		})
	}
}

// TestHoldoutOLSGetsTheModelsInputs: the batch OLS reference is given every regression input of the model —
// the frame's features without bias and the seasonal inputs, as many as the promoted candidate has
// coefficients besides the intercept — for every target and horizon set.
func TestHoldoutOLSGetsTheModelsInputs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		target   string
		horizons []time.Duration
	}{
		{"flow, 1 h", train.TargetFlow, []time.Duration{time.Hour}},
		{"flow, 2 h and 3 h", train.TargetFlow, []time.Duration{2 * time.Hour, 3 * time.Hour}},
		{"occupancy, 1 h", train.TargetOccupancy, []time.Duration{time.Hour}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			cfg.Train.Target = tc.target
			cfg.Train.Horizons = tc.horizons
			cfg.Warmup = 48 * time.Hour
			var coefs int
			cfg.Observe = func(_ features.Frame, _ features.Vector, l *train.Learner, _ train.Update) {
				s := l.Snapshots()[0]
				for _, c := range s.Candidates {
					if c.Name == s.Promoted {
						coefs = len(c.State.Coefficients)
					}
				}
			}
			e, err := New(testTopology(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			// Occupancy needs a measured occupancy: give every reading one.
			for h := 0; h < 24*10; h++ {
				for _, det := range []string{"X-N", "X-E"} {
					rd := clean.Reading{IntersectionID: "X", DetectorID: det, Start: t0.Add(time.Duration(h) * time.Hour), IntervalS: 3600,
						Count: flowAt(h, det), Occupancy: flowAt(h, det) / 2000, HasOccupancy: true}
					if err := e.Reading(rd); err != nil {
						t.Fatal(err)
					}
				}
			}
			rep, err := e.Finish()
			if err != nil {
				t.Fatal(err)
			}
			ho := rep.Holdout
			if ho.Err != "" {
				t.Fatal(ho.Err)
			}
			if coefs == 0 || len(ho.Inputs) != coefs-1 {
				t.Fatalf("OLS given %d inputs %v, the model has %d besides the intercept", len(ho.Inputs), ho.Inputs, coefs-1)
			}
			for _, name := range []string{"flow_ratio", "ha_target", "sn_target", "profile_target", "profile_ramp"} {
				if !slices.Contains(ho.Inputs, name) {
					t.Errorf("OLS inputs %v lack the model's %s", ho.Inputs, name)
				}
			}
			_, holdout := e.merge()
			for _, r := range holdout {
				if len(r.x) != len(ho.Inputs) {
					t.Fatalf("a hold-out row has %d inputs, want %d", len(r.x), len(ho.Inputs))
				}
			}
			if ho.N == 0 || ho.Baselines[BaselineOLS].N != ho.N || ho.Model.N != ho.N {
				t.Errorf("OLS n %d, model n %d, scored %d: want equal and non-zero", ho.Baselines[BaselineOLS].N, ho.Model.N, ho.N)
			}
		})
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
		// The online forecasters forecast y exactly, except the model, 1 off.
		fc := forecastSet{y*100 + 1, y * 100, y * 100, y * 100, y * 100}
		if i == 95 {
			fc[fPersistence] = math.NaN() // not a pair for anyone under the same-pairs rule
		}
		rows = append(rows, holdoutRow{t: int64(i) * 3600, x: []float64{x, 7, 2 * x}, y: y * 100, scale: 100, fc: fc, counted: i != 97})
	}
	rep := holdoutOLS(rows, []string{"a", "const", "twice_a"})
	if rep.Err != "" {
		t.Fatal(rep.Err)
	}
	// Row 97 is before the warm-up and row 95 lacks persistence: 18 test pairs are scored, by every forecaster.
	if rep.Train != 80 || rep.Test != 20 || rep.N != 18 || rep.BeforeWarmup != 1 || rep.DroppedPairs != 1 {
		t.Fatalf("train %d test %d scored %d before warm-up %d dropped %d, want 80, 20, 18, 1 and 1",
			rep.Train, rep.Test, rep.N, rep.BeforeWarmup, rep.DroppedPairs)
	}
	if want := map[string]int{BaselinePersistence: 1}; !reflect.DeepEqual(rep.Missing, want) {
		t.Fatalf("missing %v, want %v", rep.Missing, want)
	}
	if rep.Model.N != 18 || rep.Model.MAE != 1 {
		t.Fatalf("model %+v, want MAE 1 over 18 pairs", rep.Model)
	}
	for _, name := range append(slices.Clone(OnlineBaselines), BaselineOLS) {
		if rep.Baselines[name].N != 18 {
			t.Fatalf("%s n %d, want 18", name, rep.Baselines[name].N)
		}
	}
	if !reflect.DeepEqual(rep.Inputs, []string{"a", "const", "twice_a"}) || !reflect.DeepEqual(rep.DroppedColumns, []string{"const", "twice_a"}) {
		t.Fatalf("inputs %v, dropped %v", rep.Inputs, rep.DroppedColumns)
	}
	if math.Abs(rep.MAE-1000) > 1e-6 || math.Abs(rep.MSE-1e6) > 1e-3 {
		t.Fatalf("MAE %g MSE %g, want 1000 and 1e6 (natural units: scale 100)", rep.MAE, rep.MSE)
	}
	if r := holdoutOLS(rows[:2], nil); r.Err == "" {
		t.Fatal("2 rows: want an error")
	}
	if r := holdoutOLS(rows, []string{"a", "const", "twice_a", "more"}); r.Err == "" {
		t.Fatal("rows with fewer inputs than the model: want an error")
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
// only after the warm-up and once the time-of-day plan book has the window's hour of week, and every reference
// is scored on those windows. The data repeat every week exactly, so the plan book's flows are the flows that
// came and the time-of-day plan equals the oracle's.
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
	feed(t, e, 24*9, nil)
	rep, err := e.Finish()
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Signals
	// Windows from hour 48 (warm-up) are planned; those before hour 168 have no earlier week for the plan book.
	if s.Intersections != 1 || s.Windows != 24*9-168 || s.MissingTimeOfDay != 168-48 {
		t.Fatalf("signals %+v, want 1 intersection, 48 scored windows and 120 without a time-of-day plan", s)
	}
	if !(s.FixedTimeDelayS > 0) || !(s.GreenwaveDelayS > 0) || math.Abs(s.Reduction-(1-s.GreenwaveDelayS/s.FixedTimeDelayS)) > 1e-12 {
		t.Fatalf("delays %+v", s)
	}
	if !(s.OracleDelayS > 0) || math.Abs(s.TimeOfDayDelayS-s.OracleDelayS) > 1e-9*s.OracleDelayS {
		t.Fatalf("time of day %g, oracle %g: want equal on weekly-periodic flows", s.TimeOfDayDelayS, s.OracleDelayS)
	}
	if id := s.PerIntersection[0]; id.TimeOfDayS != s.TimeOfDayDelayS || id.OracleDelayS != s.OracleDelayS {
		t.Fatalf("per intersection %+v disagrees with the totals %+v", id, s)
	}
	total := 0
	for _, n := range s.PlanReasons {
		total += n
	}
	if total != s.Windows {
		t.Fatalf("plan reasons %v do not add up to %d windows", s.PlanReasons, s.Windows)
	}
}
