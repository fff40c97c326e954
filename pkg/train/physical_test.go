package train

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/regression"
)

// inRange reports whether v is a value of the target's physical range (NaN: no forecast, allowed).
func inRange(tgt string, v float64) bool {
	if math.IsNaN(v) {
		return true
	}
	return v >= 0 && !math.Signbit(v) && (tgt != TargetOccupancy || v <= 1)
}

// adversarial returns c with random coefficients of up to ±1e4 (often a large negative intercept), a random
// positive diagonal covariance and a random noise estimate: a model that extrapolates far outside the range.
func adversarial(t *testing.T, rng *rand.Rand, c *regression.RLS) *regression.RLS {
	t.Helper()
	st := c.State()
	n := st.Features + 1
	for i := range st.Coefficients {
		st.Coefficients[i] = (rng.Float64()*2 - 1) * math.Pow(10, rng.Float64()*4)
	}
	if rng.IntN(2) == 0 {
		st.Coefficients[0] = -math.Pow(10, rng.Float64()*4)
	}
	clear(st.Covariance)
	tr := 0.0
	for i := range n {
		st.Covariance[i*n+i] = math.Pow(10, rng.Float64()*6-3)
		tr += st.Covariance[i*n+i]
	}
	st.MaxTrace = math.Max(st.MaxTrace, tr*2)
	st.NoiseSum, st.NoiseWeight = math.Pow(10, rng.Float64()*4-2), 1
	r, err := regression.FromState(st)
	if err != nil {
		t.Fatalf("adversarial state: %v", err)
	}
	return r
}

// physicalFrame is window i with random inputs and a random, physically possible, observation of every target.
func physicalFrame(rng *rand.Rand, i int) (features.Frame, features.Vector) {
	x := []float64{rng.NormFloat64() * 3, rng.Float64()}
	o := obs{flow: rng.Float64() * 2000, gap: rng.IntN(10) == 0}
	f, v := frame(300, i, tinyNames, x, o, 1000)
	v.Observed.Occupancy, v.Observed.HasOccupancy = rng.Float64(), true
	v.Observed.SpeedKMH, v.Observed.HasSpeed = rng.Float64()*120, true
	f.Approaches[0] = v
	return f, v
}

// TestForecastsArePhysical is the property test of physical forecasts: over seeded random inputs, observations
// and adversarial coefficients, no forecast or interval bound of flow, occupancy or speed is negative and no
// occupancy exceeds 1 — neither what Predict serves nor what the learner scores (its test-then-train forecasts
// of every forecaster, the interval it scores coverage against, Update.Forecast). Lower ≤ Value ≤ Upper holds,
// and Value equals the linear value whenever that is in range.
func TestForecastsArePhysical(t *testing.T) {
	t.Parallel()
	targets := []string{TargetFlow, TargetOccupancy, TargetSpeed}
	checked, clamped := 0, 0
	for seed := range uint64(60) {
		rng := newRand(seed)
		tgt := targets[seed%3]
		cfg := tinyConfig(5*time.Minute, 15*time.Minute)
		cfg.Target = tgt
		l := mustLearner(t, tinyNames, cfg)
		for i := range 30 {
			if i >= 12 && rng.IntN(4) == 0 {
				for _, m := range l.models {
					for k := range m.cands {
						m.cands[k] = adversarial(t, rng, m.cands[k])
					}
				}
			}
			f, v := physicalFrame(rng, i)
			u := mustApply(t, l, f, v)
			for _, hu := range u.Horizons {
				if !inRange(tgt, hu.Forecast) {
					t.Fatalf("seed %d %s window %d: Update.Forecast %g", seed, tgt, i, hu.Forecast)
				}
			}
			for _, m := range l.models {
				for _, p := range m.pending {
					for k, fc := range p.forecasts {
						if !inRange(tgt, fc) {
							t.Fatalf("seed %d %s window %d: forecaster %d forecast %g", seed, tgt, i, k, fc)
						}
					}
					if !inRange(tgt, p.lo) || !inRange(tgt, p.hi) || p.lo > p.hi {
						t.Fatalf("seed %d %s window %d: scored interval [%g, %g]", seed, tgt, i, p.lo, p.hi)
					}
				}
			}
			if i < 12 || i%2 == 1 {
				continue
			}
			// What the predictor serves for the next window, from the snapshot.
			nf, nv := physicalFrame(rng, i+1)
			for _, snap := range l.Snapshots() {
				fc, err := Predict(snap, nf, nv, 0.5+rng.Float64()*0.49)
				if err != nil {
					continue // not ready, or an adversarial model beyond the sane magnitude: no forecast at all
				}
				checked++
				if fc.Value != fc.Linear {
					clamped++
				}
				if !inRange(tgt, fc.Value) || !inRange(tgt, fc.Lower) || !inRange(tgt, fc.Upper) ||
					!(fc.Lower <= fc.Value && fc.Value <= fc.Upper) || (inRange(tgt, fc.Linear) && fc.Value != fc.Linear) {
					t.Fatalf("seed %d %s window %d: served %+v", seed, tgt, i, fc)
				}
			}
		}
	}
	// The property must have been exercised: many forecasts served, a good share of them clamped.
	t.Logf("%d forecasts served, %d clamped", checked, clamped)
	if checked < 500 || clamped < checked/10 {
		t.Fatalf("%d forecasts served, %d clamped: the inputs do not exercise the property", checked, clamped)
	}
}

// TestPhysical pins the rule: the range's bounds, NaN kept, negative zero and infinities mapped into the range.
func TestPhysical(t *testing.T) {
	t.Parallel()
	tests := []struct {
		target string
		in     float64
		want   float64
	}{
		{TargetFlow, -103.7, 0},
		{TargetFlow, math.Copysign(0, -1), 0},
		{TargetFlow, math.Inf(-1), 0},
		{TargetFlow, 1e9, 1e9},
		{TargetFlow, 12.5, 12.5},
		{TargetSpeed, -3, 0},
		{TargetSpeed, 250, 250},
		{TargetOccupancy, -0.2, 0},
		{TargetOccupancy, 0.4, 0.4},
		{TargetOccupancy, 1.3, 1},
		{TargetOccupancy, math.Inf(1), 1},
	}
	for _, tt := range tests {
		tg, err := targetOf(tt.target)
		if err != nil {
			t.Fatal(err)
		}
		if got := tg.physical(tt.in); got != tt.want || math.Signbit(got) {
			t.Errorf("%s physical(%g) = %g, want %g", tt.target, tt.in, got, tt.want)
		}
	}
	if got := (target{name: TargetFlow}).physical(math.NaN()); !math.IsNaN(got) {
		t.Errorf("physical(NaN) = %g, want NaN", got)
	}
}

// TestObserved: the target rule the predictor and `greenwave eval` share with the learner.
func TestObserved(t *testing.T) {
	t.Parallel()
	measured := features.Vector{Observed: features.Observed{FlowVPH: 600, Occupancy: 0.2, HasOccupancy: true}}
	tests := []struct {
		name   string
		target string
		v      features.Vector
		want   float64
		ok     bool
	}{
		{"flow", TargetFlow, measured, 600, true},
		{"default is flow", "", measured, 600, true},
		{"occupancy", TargetOccupancy, measured, 0.2, true},
		{"speed absent", TargetSpeed, measured, 0, false},
		{"imputed", TargetFlow, features.Vector{Observed: features.Observed{FlowVPH: 600, Imputed: true}}, 0, false},
		{"no flow", TargetFlow, features.Vector{Observed: features.Observed{NoFlow: true, SpeedKMH: 80, HasSpeed: true}}, 0, false},
		{"speed without flow", TargetSpeed, features.Vector{Observed: features.Observed{NoFlow: true, SpeedKMH: 80, HasSpeed: true}}, 80, true},
		{"gap", TargetFlow, features.Vector{Gap: true, Observed: features.Observed{FlowVPH: 600}}, 0, false},
		{"NaN", TargetFlow, features.Vector{Observed: features.Observed{FlowVPH: math.NaN()}}, 0, false},
		{"beyond the sane magnitude", TargetFlow, features.Vector{Observed: features.Observed{FlowVPH: 2 * maxAbsValue}}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got, ok := Observed(tc.target, tc.v); got != tc.want || ok != tc.ok {
				t.Errorf("Observed = %g, %v, want %g, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
