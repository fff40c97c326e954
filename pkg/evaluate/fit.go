package evaluate

import (
	"fmt"
	"slices"

	"github.com/greenwave-city/greenwave/pkg/regression"
)

// Split methods of SplitRows.
const (
	// SplitTail trains on the first TrainRows(n) rows and tests on the rest: the honest split for time series.
	SplitTail = "tail"
	// SplitRandom draws the training rows with a seeded permutation (see SplitRows).
	SplitRandom = "random"
)

// TrainRows is the number of training rows of an 80/20 split of n rows: ⌊0.8·n⌋, computed exactly as n·4/5 in
// integers. The test rows are the other n − TrainRows(n).
func TrainRows(n int) int { return n * 4 / 5 }

// SplitRows returns the training and test row indices, each ascending, of an 80/20 split of n rows.
//
// SplitTail: training rows 0..TrainRows(n)−1, test rows the rest.
//
// SplitRandom: a Fisher–Yates shuffle of 0..n−1 driven by SplitMix64 seeded with seed: for i from n−1 down to 1,
// draw the next SplitMix64 output r and swap positions i and r mod (i+1). The first TrainRows(n) positions are
// the training rows. SplitMix64 (Steele, Lea and Flood 2014) is: state += 0x9E3779B97F4A7C15;
// z = state; z = (z ⊕ z≫30)·0xBF58476D1CE4E5B9; z = (z ⊕ z≫27)·0x94D049BB133111EB; output z ⊕ z≫31, all modulo
// 2^64. It is short enough to reproduce in any language (cmd/greenwave/testdata/fit/gen.py does, in Python).
func SplitRows(n int, method string, seed uint64) (train, test []int, err error) {
	if n < 0 {
		return nil, nil, fmt.Errorf("split %d rows: negative", n)
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	switch method {
	case SplitTail, "":
	case SplitRandom:
		sm := splitMix64{state: seed}
		for i := n - 1; i > 0; i-- {
			j := int(sm.next() % uint64(i+1))
			idx[i], idx[j] = idx[j], idx[i]
		}
	default:
		return nil, nil, fmt.Errorf("split method %q: want %q or %q", method, SplitTail, SplitRandom)
	}
	k := TrainRows(n)
	train, test = slices.Clone(idx[:k]), slices.Clone(idx[k:])
	slices.Sort(train)
	slices.Sort(test)
	return train, test, nil
}

// splitMix64 is the SplitMix64 generator; see SplitRows.
type splitMix64 struct{ state uint64 }

func (s *splitMix64) next() uint64 {
	s.state += 0x9E3779B97F4A7C15
	z := s.state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// FitResult is an ordinary-least-squares fit with intercept and its test error.
type FitResult struct {
	Intercept float64
	// Coef has one coefficient per column of X.
	Coef []float64
	// MSE is the mean squared error on the test rows.
	MSE           float64
	NTrain, NTest int
}

// Fit splits the rows of X and y 80/20 (SplitRows), fits y = β0 + Xβ on the training rows with
// regression.OLS (Householder QR) and scores the test rows. It needs at least columns+1 training rows, one test
// row, and a training design of full column rank; the error says which is missing.
func Fit(X [][]float64, y []float64, method string, seed uint64) (FitResult, error) {
	if len(X) != len(y) {
		return FitResult{}, fmt.Errorf("fit: X has %d rows but y has %d values", len(X), len(y))
	}
	tr, te, err := SplitRows(len(X), method, seed)
	if err != nil {
		return FitResult{}, fmt.Errorf("fit: %w", err)
	}
	if len(te) == 0 {
		return FitResult{}, fmt.Errorf("fit: %d rows leave no test row (need at least 5)", len(X))
	}
	pick := func(rows []int) ([][]float64, []float64) {
		xs, ys := make([][]float64, len(rows)), make([]float64, len(rows))
		for i, r := range rows {
			xs[i], ys[i] = X[r], y[r]
		}
		return xs, ys
	}
	xtr, ytr := pick(tr)
	xte, yte := pick(te)
	coef, err := regression.OLS(xtr, ytr)
	if err != nil {
		return FitResult{}, fmt.Errorf("fit on %d training rows: %w", len(tr), err)
	}
	mse, err := regression.MSE(xte, yte, coef)
	if err != nil {
		return FitResult{}, fmt.Errorf("fit: score %d test rows: %w", len(te), err)
	}
	return FitResult{Intercept: coef[0], Coef: coef[1:], MSE: mse, NTrain: len(tr), NTest: len(te)}, nil
}
