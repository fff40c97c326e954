package regression

import (
	"math"
	"math/rand/v2"
)

// synth returns m rows of features xj = offset[j] + scale[j]·N(0,1) and
// y = coef·(1, x) + noise·N(0,1), from a fixed seed.
func synth(seed uint64, m int, coef, offset, scale []float64, noise float64) ([][]float64, []float64) {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	X := make([][]float64, m)
	y := make([]float64, m)
	for i := range X {
		row := make([]float64, len(coef)-1)
		v := coef[0]
		for j := range row {
			row[j] = offset[j] + scale[j]*rng.NormFloat64()
			v += coef[j+1] * row[j]
		}
		X[i] = row
		y[i] = v + noise*rng.NormFloat64()
	}
	return X, y
}

// maxRelDiff returns max_i |a_i − b_i| / |b_i|.
func maxRelDiff(a, b []float64) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i])/math.Abs(b[i]))
	}
	return m
}

func fill(n int, v float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x2545f4914f6cdd1d)) }
