package train

import (
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/features"
)

// TestForecastLikeModel checks Learner.Forecast against Learner.Model followed by Model.Predict: the same
// forecast bit for bit (Contributions aside), the same error message, drifting and ok, after every window of a
// series with imputed windows, gaps and a level shift that makes the models drift, at several confidences, for
// the last applied frame (computed from the live learner) and for older and newer frames (compiled).
func TestForecastLikeModel(t *testing.T) {
	t.Parallel()
	s := newTrafficSeries(5, 11)
	frames := make([]features.Frame, len(s.frames))
	for i, f := range s.frames {
		v := f.Approaches[0]
		switch {
		case i%97 == 13:
			v.Observed.Imputed = true
		case i%211 == 50:
			v.Gap, v.Observed.Imputed = true, true
		}
		if i >= len(s.frames)*3/5 {
			v.Observed.FlowVPH *= 2.5 // a level shift the models have not seen: drift
		}
		f.Approaches = []features.Vector{v}
		frames[i] = f
	}
	cfg := DefaultConfig()
	cfg.Horizons = []time.Duration{15 * time.Minute, time.Hour}
	cfg.MaxPending = 300
	l := mustLearner(t, s.names, cfg)
	var fast, drifted, notReady int
	check := func(i int, f features.Frame, confidence float64) {
		t.Helper()
		for _, h := range cfg.Horizons {
			var want Forecast
			m, wdrift, wok, werr := l.Model(h)
			if wok && werr == nil {
				want, werr = m.Predict(f, f.Approaches[0], confidence)
				want.Contributions = nil
			}
			got, gdrift, gok, gerr := l.Forecast(h, f, f.Approaches[0], confidence)
			if gok != wok || gdrift != wdrift || (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) ||
				!sameForecast(want, got) {
				t.Fatalf("after frame %d, horizon %v, confidence %g, frame %v: Forecast = %+v, %v, %v, %v; Model.Predict = %+v, %v, %v, %v",
					i, h, confidence, f.WindowStart, got, gdrift, gok, gerr, want, wdrift, wok, werr)
			}
			if wdrift {
				drifted++
			}
			if werr != nil {
				notReady++
			}
		}
	}
	for i, f := range frames {
		mustApply(t, l, f, f.Approaches[0])
		for _, c := range []float64{0.5, 0.9} {
			check(i, f, c)
		}
		fast++
		if i%50 == 0 {
			check(i, f, 0.99)
			check(i, f, 1.5) // refused by both
			g := f
			g.FeatureSetVersion = 2 // not the learner's feature set: refused by both
			check(i, g, 0.9)
			check(i, frames[max(i-3, 0)], 0.9)             // older: compiled, the history as the snapshot has it
			check(i, frames[min(i+1, len(frames)-1)], 0.9) // newer: compiled, recorded into a copy
		}
	}
	if _, _, ok, _ := l.Forecast(2*time.Minute, frames[0], frames[0].Approaches[0], 0.9); ok {
		t.Fatal("Forecast of a horizon the learner does not have")
	}
	if drifted == 0 || notReady == 0 || fast == 0 {
		t.Fatalf("the series did not cover every case: %d drifting, %d refused, %d fast forecasts", drifted, notReady, fast)
	}
}
