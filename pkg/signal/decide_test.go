package signal_test

import (
	"github.com/greenwave-city/greenwave/pkg/signal"
	"math"
	"strings"
	"testing"
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
