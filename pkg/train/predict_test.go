package train

import (
	"errors"
	"math"
	"testing"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
	"google.golang.org/protobuf/proto"
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

	// Hand-made promoted state: y/capacity = 0.1 + 0.5a − 0.2b, P = diag(1, 2, 3), σ² = 0.01.
	st := candidate(snap, snap.GetPromoted()).GetState()
	st.Coefficients = []float64{0.1, 0.5, -0.2}
	st.Covariance = []float64{1, 0, 0, 0, 2, 0, 0, 0, 3}
	st.NoiseVariance = 0.01
	st.Updates = 100
	const capacity = 1000
	value := (0.1 + 0.5*0.4 - 0.2*0.5) * capacity      // 200
	variance := 0.01 * (1 + 1 + 2*0.4*0.4 + 3*0.5*0.5) // 0.0307
	z := distuv.UnitNormal.Quantile(0.95)              // 90 % two-sided
	half := z * math.Sqrt(variance) * capacity         // ≈ 288
	got, err := Predict(snap, f, v, 0.9)
	if err != nil {
		t.Fatalf("Predict: %v", err)
	}
	if !near(got.Value, value, 1e-12) || !near(got.StdErr, math.Sqrt(variance)*capacity, 1e-12) ||
		!near(got.Lower, value-half, 1e-12) || !near(got.Upper, value+half, 1e-12) {
		t.Fatalf("forecast %+v, want %g ± %g", got, value, half)
	}
	wantC := []Contribution{{"a", 200}, {InterceptName, 100}, {"b", -100}}
	if len(got.Contributions) != len(wantC) {
		t.Fatalf("contributions %v, want %v", got.Contributions, wantC)
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
			if _, err := Predict(proto.Clone(snap).(*snapT), f, v, conf); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := Predict(nil, f, v, 0.9); !errors.Is(err, ErrInvalidSnapshot) {
		t.Fatalf("nil snapshot: %v", err)
	}
	_ = time.Second
}
