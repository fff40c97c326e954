package regression

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

// FuzzRLSUpdate feeds arbitrary (finite or not) rows to a model: Update never
// panics, a rejected row leaves the state untouched, an accepted one keeps P
// finite, exactly symmetric, with a positive diagonal and within the trace
// bound, and a snapshot always restores.
func FuzzRLSUpdate(f *testing.F) {
	nan, inf := math.NaN(), math.Inf(1)
	f.Add(1.0, 2.0, 3.0, 4.0, 0.99, uint8(3))
	f.Add(0.0, 0.0, 0.0, 0.0, 0.5, uint8(50))
	f.Add(nan, 1.0, 1.0, 1.0, 1.0, uint8(1))
	f.Add(1.0, inf, 1.0, -inf, 0.9, uint8(2))
	f.Add(1e200, -1e200, 1e-300, math.MaxFloat64, 0.999, uint8(7))
	f.Add(1e150, 1e150, 1e150, 1e150, 1.0, uint8(9))
	f.Add(-5e-324, 5e-324, 1.0, 3.0, 0.01, uint8(255))
	f.Fuzz(func(t *testing.T, x0, x1, x2, y, lambda float64, reps uint8) {
		if !(lambda > 0 && lambda <= 1) {
			lambda = 0.99
		}
		r, err := NewRLS(3, RLSConfig{Lambda: lambda, Delta: 100})
		if err != nil {
			t.Fatal(err)
		}
		rows := [][]float64{{x0, x1, x2}, {x1, x2, x0}, {x2, x0, x1}, {1, x0, -x1}, {0, 0, 0}}
		targets := []float64{y, x0, -y, 1, y}
		for k := 0; k < int(reps); k++ {
			i := k % len(rows)
			before := r.State()
			err := r.Update(rows[i], targets[i])
			if err != nil {
				if !errors.Is(err, ErrNonFinite) && !errors.Is(err, ErrNumerical) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				if !reflect.DeepEqual(before, r.State()) {
					t.Fatalf("rejected update changed the state: %v", err)
				}
			}
			checkCovariance(t, r)
			_, _ = r.Predict(rows[i])
			_, _ = r.PredictiveVariance(rows[i])
			_, _, _ = r.Interval(rows[i], 0.9)
		}
		if _, err := FromState(r.State()); err != nil {
			t.Fatalf("snapshot does not restore: %v", err)
		}
	})
}
