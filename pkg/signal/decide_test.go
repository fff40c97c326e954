package signal_test

import (
	"fmt"
	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"math"
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	in := twoPhase()
	good := func() []signal.Forecast {
		var fs []signal.Forecast
		for _, a := range in.Approaches {
			fs = append(fs, signal.Forecast{ApproachID: a.ID, FlowVPH: 400, LowerVPH: 350, UpperVPH: 450})
		}
		return fs
	}
	tod := map[string]float64{}
	for _, a := range in.Approaches {
		tod[a.ID] = 300
	}
	tests := []struct {
		name       string
		mutate     func([]signal.Forecast) []signal.Forecast
		tod        map[string]float64
		wantReason signal.Reason
		wantDetail string
	}{
		{name: "trusted forecasts", mutate: func(f []signal.Forecast) []signal.Forecast { return f }, wantReason: signal.ReasonPredictive, wantDetail: "predictive"},
		{name: "stale falls back to time of day", mutate: func(f []signal.Forecast) []signal.Forecast { f[0].Stale = true; return f }, tod: tod, wantReason: signal.ReasonTimeOfDay, wantDetail: "model stale"},
		{name: "drift without history falls back to fixed time", mutate: func(f []signal.Forecast) []signal.Forecast { f[1].Drifting = true; return f }, wantReason: signal.ReasonFixedTime, wantDetail: "model in drift"},
		{name: "missing approach", mutate: func(f []signal.Forecast) []signal.Forecast { return f[1:] }, wantReason: signal.ReasonFixedTime, wantDetail: "no forecast"},
		{name: "wide interval", mutate: func(f []signal.Forecast) []signal.Forecast { f[0].UpperVPH = 5000; return f }, tod: tod, wantReason: signal.ReasonTimeOfDay, wantDetail: "too wide"},
		{name: "NaN forecast", mutate: func(f []signal.Forecast) []signal.Forecast { f[0].FlowVPH = math.NaN(); return f }, wantReason: signal.ReasonFixedTime, wantDetail: "not a valid flow"},
		{name: "baseline only", mutate: func(f []signal.Forecast) []signal.Forecast { f[0].Baseline = true; return f }, wantReason: signal.ReasonFixedTime, wantDetail: "no trained model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := signal.Decide(in, signal.DecideInput{Forecasts: tt.mutate(good()), TimeOfDayFlows: tt.tod})
			if err != nil {
				t.Fatalf("Decide() error = %v", err)
			}
			if err := signal.Validate(in, p); err != nil {
				t.Fatalf("Decide() returned an invalid plan: %v", err)
			}
			if p.Reason != tt.wantReason {
				t.Errorf("reason = %v, want %v (detail %q)", p.Reason, tt.wantReason, p.Detail)
			}
			if !strings.Contains(p.Detail, tt.wantDetail) {
				t.Errorf("detail %q does not mention %q", p.Detail, tt.wantDetail)
			}
		})
	}
}

func TestDecideCausesAndModes(t *testing.T) {
	t.Parallel()
	in := twoPhase()
	fc := func(mut func(*signal.Forecast)) []signal.Forecast {
		var fs []signal.Forecast
		for _, a := range in.Approaches {
			f := signal.Forecast{ApproachID: a.ID, FlowVPH: 400, LowerVPH: 350, UpperVPH: 450}
			mut(&f)
			fs = append(fs, f)
		}
		return fs
	}
	tod := map[string]float64{}
	for _, a := range in.Approaches {
		tod[a.ID] = 300
	}
	tests := []struct {
		name       string
		in         signal.DecideInput
		wantReason signal.Reason
		wantCauses []signal.Cause
	}{
		{"trusted", signal.DecideInput{Forecasts: fc(func(*signal.Forecast) {})}, signal.ReasonPredictive, nil},
		{"stale → time of day", signal.DecideInput{Forecasts: fc(func(f *signal.Forecast) { f.Stale = true }), TimeOfDayFlows: tod},
			signal.ReasonTimeOfDay, []signal.Cause{signal.CauseStale}},
		{"drift → fixed", signal.DecideInput{Forecasts: fc(func(f *signal.Forecast) { f.Drifting = true })},
			signal.ReasonFixedTime, []signal.Cause{signal.CauseDrift, signal.CauseNoHistory}},
		{"wide", signal.DecideInput{Forecasts: fc(func(f *signal.Forecast) { f.UpperVPH = 1e6 }), TimeOfDayFlows: tod},
			signal.ReasonTimeOfDay, []signal.Cause{signal.CauseWideInterval}},
		{"inverted interval", signal.DecideInput{Forecasts: fc(func(f *signal.Forecast) { f.LowerVPH, f.UpperVPH = 500, 300 })},
			signal.ReasonFixedTime, []signal.Cause{signal.CauseInvalid, signal.CauseNoHistory}},
		{"no model", signal.DecideInput{Forecasts: fc(func(f *signal.Forecast) { f.Baseline = true })},
			signal.ReasonFixedTime, []signal.Cause{signal.CauseNoHistory, signal.CauseNoModel}},
		{"missing", signal.DecideInput{TimeOfDayFlows: tod}, signal.ReasonTimeOfDay, []signal.Cause{signal.CauseNoForecast}},
		{"pinned fixed", signal.DecideInput{Mode: signal.ModeFixedTime, Forecasts: fc(func(*signal.Forecast) {}), TimeOfDayFlows: tod},
			signal.ReasonFixedTime, []signal.Cause{signal.CauseOperatorPinned}},
		{"pinned time of day", signal.DecideInput{Mode: signal.ModeTimeOfDay, Forecasts: fc(func(*signal.Forecast) {}), TimeOfDayFlows: tod},
			signal.ReasonTimeOfDay, []signal.Cause{signal.CauseOperatorPinned}},
		{"pinned time of day without history", signal.DecideInput{Mode: signal.ModeTimeOfDay},
			signal.ReasonFixedTime, []signal.Cause{signal.CauseNoHistory, signal.CauseOperatorPinned}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := signal.Decide(in, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if p.Reason != tc.wantReason || fmt.Sprint(p.FallbackCauses) != fmt.Sprint(tc.wantCauses) {
				t.Errorf("reason %s causes %v, want %s %v (%s)", p.Reason, p.FallbackCauses, tc.wantReason, tc.wantCauses, p.Detail)
			}
		})
	}
}

func TestDecideCorridorCycle(t *testing.T) {
	t.Parallel()
	in := twoPhase()
	var fs []signal.Forecast
	for _, a := range in.Approaches {
		fs = append(fs, signal.Forecast{ApproachID: a.ID, FlowVPH: 100, LowerVPH: 90, UpperVPH: 110})
	}
	p, err := signal.Decide(in, signal.DecideInput{Forecasts: fs, CycleS: 90, OffsetS: 100})
	if err != nil {
		t.Fatal(err)
	}
	if p.CycleS != 90 || p.OffsetS != 10 {
		t.Errorf("cycle %g offset %g, want 90 and 10", p.CycleS, p.OffsetS)
	}
}

func TestProfile(t *testing.T) {
	t.Parallel()
	in := twoPhase()
	var p signal.Profile
	bucket := signal.ProfileBucket(time.Date(2026, 11, 30, 8, 30, 0, 0, time.UTC)) // a Monday
	if bucket != 8 {
		t.Fatalf("bucket %d, want 8", bucket)
	}
	if signal.ProfileBucket(time.Date(2026, 12, 6, 23, 59, 0, 0, time.UTC)) != 167 {
		t.Fatal("Sunday 23:59 should be the last bucket")
	}
	for _, bad := range []float64{math.NaN(), -1, math.Inf(1)} {
		if p.Observe("N", bucket, bad, 0.2) {
			t.Errorf("Observe accepted %g", bad)
		}
	}
	if p.Observe("N", signal.ProfileBuckets, 1, 0.2) || p.Observe("N", 0, 1, 0) {
		t.Error("Observe accepted a bad bucket or alpha")
	}
	tests := []struct {
		name      string
		flows     []float64
		wantMean  float64
		wantReady bool
	}{
		{"one sample is not enough", []float64{100}, 100, false},
		{"arithmetic start", []float64{100, 200, 300}, 200, true},
		// n=1..5: weights 1, 1/2, 1/3, then alpha 0.25 (> 1/4, > 1/5).
		{"exponential after", []float64{100, 200, 300, 400, 400}, 200 + 0.25*200 + 0.25*(400-250), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p signal.Profile
			for _, q := range tc.flows {
				for _, a := range in.Approaches {
					p.Observe(a.ID, bucket, q, 0.25)
				}
			}
			got := p.Flows(in, bucket, 3)
			if (got != nil) != tc.wantReady {
				t.Fatalf("Flows = %v, ready want %v", got, tc.wantReady)
			}
			if c := p.Cells[in.Approaches[0].ID][bucket]; math.Abs(c.MeanVPH-tc.wantMean) > 1e-9 {
				t.Errorf("mean %g, want %g", c.MeanVPH, tc.wantMean)
			}
			if p.Flows(in, bucket+1, 1) != nil {
				t.Error("another bucket has no history")
			}
		})
	}
}

// metroLike is a two-phase intersection like the Metro topology: MAIN has one measured approach, CROSS is the
// nominal cross street whose detector never reports.
func metroLike() topology.Intersection {
	return topology.Intersection{
		ID:         "M",
		Approaches: approaches("WB", "CROSS"),
		Phases: []topology.Phase{
			phase("MAIN", []string{"WB"}, 10, 90, 4, 1, 5),
			phase("SIDE", []string{"CROSS"}, 7, 60, 4, 1, 5),
		},
		Timing: topology.Timing{MinCycleS: 30, MaxCycleS: 150},
	}
}

// TestDecideDetectorRecall is the failed-detector practice: an approach whose detectors report nothing
// (Forecast.NoData) is held at the recall demand, the others are planned on their forecasts.
func TestDecideDetectorRecall(t *testing.T) {
	t.Parallel()
	ok := func(id string, q float64) signal.Forecast {
		return signal.Forecast{ApproachID: id, FlowVPH: q, LowerVPH: q - 50, UpperVPH: q + 50}
	}
	dead := func(id string) signal.Forecast {
		// What the predictor sends for a detector that never reported: a baseline of nothing, flagged no_data.
		return signal.Forecast{ApproachID: id, FlowVPH: 0, LowerVPH: 0, UpperVPH: 1800, Baseline: true, NoData: true}
	}
	tests := []struct {
		name       string
		in         topology.Intersection
		d          signal.DecideInput
		wantReason signal.Reason
		wantCauses []signal.Cause
		wantDetail []string
		// wantMinGreen names phases that must run exactly their minimum green.
		wantMinGreen []string
	}{
		{name: "one approach failed: predictive, held at minimum green", in: metroLike(),
			d:          signal.DecideInput{Forecasts: []signal.Forecast{ok("WB", 900), dead("CROSS")}},
			wantReason: signal.ReasonPredictive, wantCauses: []signal.Cause{signal.CauseDetectorRecall},
			wantDetail:   []string{"predictive Webster plan", "CROSS: detector reports nothing, held at minimum green (recall)"},
			wantMinGreen: []string{"SIDE"}},
		{name: "configured recall demand", in: metroLike(),
			d:          signal.DecideInput{Forecasts: []signal.Forecast{ok("WB", 900), dead("CROSS")}, Gate: signal.Gate{RecallVPH: 300}},
			wantReason: signal.ReasonPredictive, wantCauses: []signal.Cause{signal.CauseDetectorRecall},
			wantDetail: []string{"CROSS: detector reports nothing, held at recall demand 300 veh/h"}},
		{name: "all failed: not predictive", in: metroLike(),
			d:          signal.DecideInput{Forecasts: []signal.Forecast{dead("WB"), dead("CROSS")}},
			wantReason: signal.ReasonFixedTime, wantCauses: []signal.Cause{signal.CauseNoDetectorData, signal.CauseNoHistory},
			wantDetail: []string{"no approach has detector data"}},
		{name: "all failed, history of all: time of day", in: metroLike(),
			d: signal.DecideInput{Forecasts: []signal.Forecast{dead("WB"), dead("CROSS")},
				TimeOfDayFlows: map[string]float64{"WB": 800, "CROSS": 100}},
			wantReason: signal.ReasonTimeOfDay, wantCauses: []signal.Cause{signal.CauseNoDetectorData},
			wantDetail: []string{"time-of-day plan"}},
		{name: "failed approach sharing a phase with a healthy one", in: twoPhase(),
			d:          signal.DecideInput{Forecasts: []signal.Forecast{ok("N", 600), dead("S"), ok("E", 300), ok("W", 300)}},
			wantReason: signal.ReasonPredictive, wantCauses: []signal.Cause{signal.CauseDetectorRecall},
			wantDetail: []string{"S: detector reports nothing, held at minimum recall (0 veh/h); its phase is timed by N"}},
		{name: "baseline with data still refuses", in: metroLike(),
			d: signal.DecideInput{Forecasts: []signal.Forecast{ok("WB", 900),
				{ApproachID: "CROSS", FlowVPH: 100, LowerVPH: 0, UpperVPH: 1800, Baseline: true}}},
			wantReason: signal.ReasonFixedTime, wantCauses: []signal.Cause{signal.CauseNoHistory, signal.CauseNoModel},
			wantDetail: []string{"CROSS: no trained model yet"}},
		{name: "failed approach plus a stale one: time of day holds the failed one at recall", in: twoPhase(),
			d: signal.DecideInput{Forecasts: []signal.Forecast{{ApproachID: "N", FlowVPH: 600, LowerVPH: 550, UpperVPH: 650, Stale: true},
				dead("S"), ok("E", 300), ok("W", 300)},
				TimeOfDayFlows: map[string]float64{"N": 500, "E": 200, "W": 200}},
			wantReason: signal.ReasonTimeOfDay, wantCauses: []signal.Cause{signal.CauseDetectorRecall, signal.CauseStale},
			wantDetail: []string{"N: model stale", "S: detector reports nothing, held at minimum recall"}},
		{name: "time-of-day history missing for a healthy approach still fails", in: twoPhase(),
			d: signal.DecideInput{Forecasts: []signal.Forecast{{ApproachID: "N", FlowVPH: 600, LowerVPH: 550, UpperVPH: 650, Stale: true},
				dead("S"), ok("E", 300), ok("W", 300)},
				TimeOfDayFlows: map[string]float64{"N": 500, "E": 200}},
			wantReason: signal.ReasonFixedTime, wantCauses: []signal.Cause{signal.CauseNoHistory, signal.CauseStale}},
		{name: "operator-pinned time of day holds a failed detector at recall", in: metroLike(),
			d: signal.DecideInput{Mode: signal.ModeTimeOfDay, Forecasts: []signal.Forecast{ok("WB", 900), dead("CROSS")},
				TimeOfDayFlows: map[string]float64{"WB": 800}},
			wantReason: signal.ReasonTimeOfDay, wantCauses: []signal.Cause{signal.CauseDetectorRecall, signal.CauseOperatorPinned},
			wantMinGreen: []string{"SIDE"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := signal.Decide(tc.in, tc.d)
			if err != nil {
				t.Fatal(err)
			}
			if err := signal.Validate(tc.in, p); err != nil {
				t.Fatalf("invalid plan: %v", err)
			}
			if p.Reason != tc.wantReason || fmt.Sprint(p.FallbackCauses) != fmt.Sprint(tc.wantCauses) {
				t.Errorf("reason %s causes %v, want %s %v (%s)", p.Reason, p.FallbackCauses, tc.wantReason, tc.wantCauses, p.Detail)
			}
			for _, w := range tc.wantDetail {
				if !strings.Contains(p.Detail, w) {
					t.Errorf("detail %q does not mention %q", p.Detail, w)
				}
			}
			for _, id := range tc.wantMinGreen {
				for i, pt := range p.Phases {
					if pt.PhaseID == id && pt.GreenS != tc.in.Phases[i].EffectiveMinGreenS() {
						t.Errorf("phase %s green %g, want its minimum %g (%s)", id, pt.GreenS, tc.in.Phases[i].EffectiveMinGreenS(), p.Detail)
					}
				}
			}
		})
	}
}

// TestProfileFlowsPartial: Flows returns the approaches with enough history and leaves out the others (Decide
// decides whether a partial profile is usable), nil when none has.
func TestProfileFlowsPartial(t *testing.T) {
	t.Parallel()
	in := metroLike()
	var p signal.Profile
	if p.Flows(in, 0, 1) != nil {
		t.Fatal("empty profile has flows")
	}
	p.Observe("WB", 0, 700, 0.1)
	got := p.Flows(in, 0, 1)
	if len(got) != 1 || got["WB"] != 700 {
		t.Errorf("Flows = %v, want only WB 700", got)
	}
}
