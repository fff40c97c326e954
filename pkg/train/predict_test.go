package train

import (
	"errors"
	"math"
	"testing"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

func TestPredict(t *testing.T) {
	t.Parallel()
	l := mustLearner(t, tinyNames, tinyConfig())
	x := []float64{0.4, 0.5}
	f, v := tc2(0, x, obs{flow: 100})
	mustApply(t, l, f, v)
	snap := l.Snapshots()[0]

	// Not ready: a fresh model has no noise estimate.
	if _, err := Predict(snap, f, v, 0.9); !errors.Is(err, ErrNotReady) {
		t.Fatalf("fresh model: error %v, want ErrNotReady", err)
	}

	// Hand-made promoted state: y/capacity = 0.1 + 0.5a − 0.2b + 0·(seasonal inputs), P = diag(1, 2, 3, 1…1),
	// σ² = 0.01. The snapshot has applied window 0 (flow 100 of capacity 1000), so the seasonal inputs of its
	// 5-minute-ahead forecast are: ha_target 0.1 (present), ramp 0, no seasonal naive, profile 0.1 (present),
	// ramp 0; with P 1 on their diagonal they add Σx² = 2.02 to φᵀPφ.
	st := candidate(snap, snap.Promoted).State
	nf := len(snap.FeatureNames)
	if nf != 2+numSeasonal {
		t.Fatalf("feature names %v", snap.FeatureNames)
	}
	st.Coefficients = make([]float64, nf+1)
	copy(st.Coefficients, []float64{0.1, 0.5, -0.2})
	st.CovarianceUpper = nil // a full P, as schema 1 wrote it, serves as well
	st.Covariance = make([]float64, (nf+1)*(nf+1))
	for i := range nf + 1 {
		st.Covariance[i*(nf+1)+i] = 1
	}
	st.Covariance[1*(nf+1)+1], st.Covariance[2*(nf+1)+2] = 2, 3
	st.NoiseVariance = 0.01
	st.Updates = 100
	const capacity = 1000
	value := (0.1 + 0.5*0.4 - 0.2*0.5) * capacity             // 200
	variance := 0.01 * (1 + 1 + 2*0.4*0.4 + 3*0.5*0.5 + 2.02) // 0.0509
	z := distuv.UnitNormal.Quantile(0.95)                     // 90 % two-sided
	half := z * math.Sqrt(variance) * capacity
	got, err := Predict(snap, f, v, 0.9)
	if err != nil {
		t.Fatalf("Predict: %v", err)
	}
	// The interval's lower end, 200 − 371 veh/h, is truncated at 0: a flow is never negative.
	if !near(got.Value, value, 1e-12) || !near(got.StdErr, math.Sqrt(variance)*capacity, 1e-12) || got.Linear != got.Value ||
		got.Lower != 0 || value-half >= 0 || !near(got.Upper, value+half, 1e-12) {
		t.Fatalf("forecast %+v, want %g ± %g truncated at 0", got, value, half)
	}
	wantC := []Contribution{{"a", 200}, {InterceptName, 100}, {"b", -100}}
	if len(got.Contributions) != nf+1 {
		t.Fatalf("contributions %v, want %v then the zero seasonal terms", got.Contributions, wantC)
	}
	for i, c := range wantC {
		if got.Contributions[i].Feature != c.Feature || !near(got.Contributions[i].Value, c.Value, 1e-12) {
			t.Fatalf("contributions %v, want %v", got.Contributions, wantC)
		}
	}

	tests := []struct {
		name   string
		mutate func(f *frameT, v *vectorT, conf *float64)
		want   error
	}{
		{"feature set version", func(f *frameT, _ *vectorT, _ *float64) { f.FeatureSetVersion = 2 }, ErrFeatureMismatch},
		{"feature names", func(f *frameT, _ *vectorT, _ *float64) { f.Names = []string{"bias", "b", "a"} }, ErrFeatureMismatch},
		{"NaN feature", func(_ *frameT, v *vectorT, _ *float64) { v.Values = []float64{1, math.NaN(), 0} }, ErrInvalidInput},
		{"capacity", func(_ *frameT, v *vectorT, _ *float64) { v.CapacityVPH = -1 }, ErrInvalidInput},
		{"confidence", func(_ *frameT, _ *vectorT, c *float64) { *c = 1 }, ErrInvalidInput},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, v := tc2(0, x, obs{flow: 100})
			conf := 0.9
			tc.mutate(&f, &v, &conf)
			if _, err := Predict(roundTrip(t, []*snapT{snap})[0], f, v, conf); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := Predict(nil, f, v, 0.9); !errors.Is(err, ErrInvalidSnapshot) {
		t.Fatalf("nil snapshot: %v", err)
	}
	_ = time.Second
}
