package regression

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestPredictIntervalMatchesThreeCalls: PredictInterval returns exactly what Predict, PredictiveVariance and
// Interval return (bit for bit), and the error the first failing one of them returns, before the noise estimate
// exists, once it does, after a covariance restart and for bad inputs and confidences.
func TestPredictIntervalMatchesThreeCalls(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 5))
	const features = 6
	r := mustRLS(t, features, DefaultRLSConfig())
	x := func() []float64 {
		v := make([]float64, features)
		for i := range v {
			v[i] = rng.NormFloat64() * 3
		}
		return v
	}
	bits := func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }
	check := func(step int, xs []float64, confidence float64) {
		t.Helper()
		var want [4]float64
		var werr error
		if want[0], werr = r.Predict(xs); werr == nil {
			if want[1], werr = r.PredictiveVariance(xs); werr == nil {
				want[2], want[3], werr = r.Interval(xs, confidence)
			}
		}
		y, v, lo, hi, err := r.PredictInterval(xs, confidence)
		if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
			t.Fatalf("step %d, confidence %g: error %v, want %v", step, confidence, err, werr)
		}
		if err == nil && !(bits(y, want[0]) && bits(v, want[1]) && bits(lo, want[2]) && bits(hi, want[3])) {
			t.Fatalf("step %d, confidence %g: %v %v %v %v, want %v", step, confidence, y, v, lo, hi, want)
		}
	}
	for step := range 60 {
		if step == 40 {
			r.Reset() // no noise estimate again
		}
		for _, c := range []float64{0.5, 0.9, 0.999, 0, 1, math.NaN()} {
			check(step, x(), c)
		}
		check(step, []float64{1, 2}, 0.9)                                   // wrong length
		check(step, []float64{1, 2, math.Inf(1), 4, 5, 6}, 0.9)             // not finite
		check(step, []float64{1e200, -1e200, 1e200, -1e200, 1e200, 1}, 0.9) // extreme but finite
		if err := r.Update(x(), rng.NormFloat64()); err != nil {
			t.Fatal(err)
		}
	}
}
