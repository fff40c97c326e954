package regression

import (
	"fmt"
	"math"
)

// ErrorSummary holds the prequential error metrics of a stream of
// (actual, predicted) pairs. Undefined metrics are NaN: all of them when N is
// zero, MAPE when no actual was non-zero, R2 when the actuals have zero
// variance.
type ErrorSummary struct {
	N    uint64  // number of pairs
	MAE  float64 // mean absolute error, in the units of the target
	RMSE float64 // root mean squared error, in the units of the target
	// MAPE is the mean absolute percentage error in percent (5 means 5 %) over
	// the pairs whose actual is non-zero; pairs with a zero actual are skipped.
	MAPE float64
	// R2 is 1 − SSE/SST with SST the sum of squared deviations of the actuals
	// from their mean over the same pairs. It is negative when the predictions
	// are worse than that mean.
	R2 float64
}

func checkPair(actual, predicted float64) error {
	if math.IsNaN(actual) || math.IsInf(actual, 0) {
		return fmt.Errorf("actual is %g: %w", actual, ErrNonFinite)
	}
	if math.IsNaN(predicted) || math.IsInf(predicted, 0) {
		return fmt.Errorf("predicted is %g: %w", predicted, ErrNonFinite)
	}
	return nil
}

// ErrorStats accumulates prequential (test-then-train) error metrics over a
// whole stream in O(1) memory. The zero value is ready to use.
//
// It keeps n, Σ|e|, Σe², Σ|e/actual| with its own count (zero actuals are
// skipped), and for R² the running mean and sum of squared deviations of the
// actuals (Welford's update) rather than Σactual and Σactual², whose
// difference SST = Σy² − (Σy)²/n cancels catastrophically for flows in the
// thousands with small variance.
type ErrorStats struct {
	s ErrorStatsState
}

// ErrorStatsState is the complete state of an [ErrorStats] as plain data.
type ErrorStatsState struct {
	N               uint64
	SumAbsError     float64
	SumSquaredError float64
	// SumAbsRelError is Σ|actual − predicted|/|actual| over the PercentN pairs
	// with a non-zero actual.
	SumAbsRelError float64
	PercentN       uint64
	// MeanActual and M2Actual are Welford's running mean and sum of squared
	// deviations of the actuals.
	MeanActual float64
	M2Actual   float64
}

// Add records one pair. A non-finite value is rejected with ErrNonFinite and
// leaves the accumulator untouched.
func (s *ErrorStats) Add(actual, predicted float64) error {
	if err := checkPair(actual, predicted); err != nil {
		return fmt.Errorf("error stats add: %w", err)
	}
	e := actual - predicted
	st := &s.s
	st.N++
	st.SumAbsError += math.Abs(e)
	st.SumSquaredError += e * e
	if actual != 0 {
		st.SumAbsRelError += math.Abs(e / actual)
		st.PercentN++
	}
	d := actual - st.MeanActual
	st.MeanActual += d / float64(st.N)
	st.M2Actual += d * (actual - st.MeanActual)
	return nil
}

// N returns the number of pairs added.
func (s *ErrorStats) N() uint64 { return s.s.N }

// MAE returns the mean absolute error (NaN when empty).
func (s *ErrorStats) MAE() float64 { return s.Summary().MAE }

// RMSE returns the root mean squared error (NaN when empty).
func (s *ErrorStats) RMSE() float64 { return s.Summary().RMSE }

// MAPE returns the mean absolute percentage error in percent over non-zero
// actuals (NaN when there are none).
func (s *ErrorStats) MAPE() float64 { return s.Summary().MAPE }

// R2 returns the coefficient of determination (NaN when empty or when the
// actuals are constant).
func (s *ErrorStats) R2() float64 { return s.Summary().R2 }

// Summary returns all metrics.
func (s *ErrorStats) Summary() ErrorSummary {
	st := s.s
	out := ErrorSummary{N: st.N, MAE: math.NaN(), RMSE: math.NaN(), MAPE: math.NaN(), R2: math.NaN()}
	if st.N == 0 {
		return out
	}
	n := float64(st.N)
	out.MAE = st.SumAbsError / n
	out.RMSE = math.Sqrt(st.SumSquaredError / n)
	if st.PercentN > 0 {
		out.MAPE = 100 * st.SumAbsRelError / float64(st.PercentN)
	}
	if st.M2Actual > 0 {
		out.R2 = 1 - st.SumSquaredError/st.M2Actual
	}
	return out
}

// Reset clears the accumulator.
func (s *ErrorStats) Reset() { s.s = ErrorStatsState{} }

// State returns the accumulator state.
func (s *ErrorStats) State() ErrorStatsState { return s.s }

// ErrorStatsFromState restores an accumulator; the round trip is bit-exact. It
// rejects negative or non-finite sums and inconsistent counts.
func ErrorStatsFromState(st ErrorStatsState) (*ErrorStats, error) {
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"sum abs error", st.SumAbsError}, {"sum squared error", st.SumSquaredError},
		{"sum abs rel error", st.SumAbsRelError}, {"m2 actual", st.M2Actual},
	} {
		if !(f.v >= 0) || math.IsInf(f.v, 1) {
			return nil, fmt.Errorf("error stats from state: %s is %g: %w", f.name, f.v, ErrInvalidState)
		}
	}
	if math.IsNaN(st.MeanActual) || math.IsInf(st.MeanActual, 0) {
		return nil, fmt.Errorf("error stats from state: mean actual is %g: %w", st.MeanActual, ErrInvalidState)
	}
	if st.PercentN > st.N {
		return nil, fmt.Errorf("error stats from state: percent count %d exceeds count %d: %w", st.PercentN, st.N, ErrInvalidState)
	}
	return &ErrorStats{s: st}, nil
}

// WindowStats computes the same metrics as [ErrorStats] over exactly the last
// Size pairs, kept in a ring buffer. Add is O(1) and allocation-free; the
// metrics are recomputed from the buffer in O(Size) when asked for (two passes,
// oldest to newest), so there is no drift from adding and subtracting running
// sums and the result depends only on the pairs in the window.
type WindowStats struct {
	actual    []float64
	predicted []float64
	head      int // index of the oldest pair
	count     int
}

// WindowStatsState is the complete state of a [WindowStats] as plain data:
// the window size and the retained pairs, oldest first.
type WindowStatsState struct {
	Size      int
	Actual    []float64
	Predicted []float64
}

// MaxWindow bounds the WindowStats size so that a corrupt configuration or
// snapshot yields an error instead of an allocation panic.
const MaxWindow = 1 << 24

// NewWindowStats returns an empty window of the given size (1..MaxWindow).
func NewWindowStats(size int) (*WindowStats, error) {
	if size < 1 || size > MaxWindow {
		return nil, fmt.Errorf("new window stats: size %d not in [1, %d]: %w", size, MaxWindow, ErrInvalidConfig)
	}
	return &WindowStats{actual: make([]float64, size), predicted: make([]float64, size)}, nil
}

// Size returns the window size.
func (w *WindowStats) Size() int { return len(w.actual) }

// Len returns the number of pairs currently in the window (≤ Size).
func (w *WindowStats) Len() int { return w.count }

// Add records one pair, evicting the oldest when the window is full. A
// non-finite value is rejected with ErrNonFinite and leaves the window
// untouched.
func (w *WindowStats) Add(actual, predicted float64) error {
	if err := checkPair(actual, predicted); err != nil {
		return fmt.Errorf("window stats add: %w", err)
	}
	size := len(w.actual)
	var i int
	if w.count < size {
		i = (w.head + w.count) % size
		w.count++
	} else {
		i = w.head
		w.head = (w.head + 1) % size
	}
	w.actual[i] = actual
	w.predicted[i] = predicted
	return nil
}

// Summary returns the metrics over the pairs in the window.
func (w *WindowStats) Summary() ErrorSummary {
	out := ErrorSummary{N: uint64(w.count), MAE: math.NaN(), RMSE: math.NaN(), MAPE: math.NaN(), R2: math.NaN()}
	if w.count == 0 {
		return out
	}
	size := len(w.actual)
	var sumAbs, sumSq, sumRel, sumY float64
	var nRel int
	for k := 0; k < w.count; k++ {
		i := (w.head + k) % size
		a := w.actual[i]
		e := a - w.predicted[i]
		sumAbs += math.Abs(e)
		sumSq += e * e
		sumY += a
		if a != 0 {
			sumRel += math.Abs(e / a)
			nRel++
		}
	}
	n := float64(w.count)
	mean := sumY / n
	var sst float64
	for k := 0; k < w.count; k++ {
		d := w.actual[(w.head+k)%size] - mean
		sst += d * d
	}
	out.MAE = sumAbs / n
	out.RMSE = math.Sqrt(sumSq / n)
	if nRel > 0 {
		out.MAPE = 100 * sumRel / float64(nRel)
	}
	if sst > 0 {
		out.R2 = 1 - sumSq/sst
	}
	return out
}

// MAE returns the mean absolute error over the window (NaN when empty): Summary().MAE, bit for bit (the same
// sum in the same order), without Summary's other sums, since promotion asks for it after every label.
func (w *WindowStats) MAE() float64 {
	if w.count == 0 {
		return math.NaN()
	}
	// The ring's pairs oldest first, as two runs (head to the end, then from the start) rather than an index
	// modulo the size per pair: the same sum in the same order, without a division per pair.
	var sumAbs float64
	first := min(w.count, len(w.actual)-w.head)
	a, p := w.actual[w.head:w.head+first], w.predicted[w.head:w.head+first]
	for i, v := range a {
		sumAbs += math.Abs(v - p[i])
	}
	a, p = w.actual[:w.count-first], w.predicted[:w.count-first]
	for i, v := range a {
		sumAbs += math.Abs(v - p[i])
	}
	return sumAbs / float64(w.count)
}

// RMSE returns the root mean squared error over the window (NaN when empty).
func (w *WindowStats) RMSE() float64 { return w.Summary().RMSE }

// MAPE returns the mean absolute percentage error in percent over the non-zero
// actuals in the window (NaN when there are none).
func (w *WindowStats) MAPE() float64 { return w.Summary().MAPE }

// R2 returns the coefficient of determination over the window (NaN when empty
// or when the actuals are constant).
func (w *WindowStats) R2() float64 { return w.Summary().R2 }

// Reset empties the window, keeping its size.
func (w *WindowStats) Reset() { w.head, w.count = 0, 0 }

// State returns the window size and a copy of the retained pairs, oldest
// first.
func (w *WindowStats) State() WindowStatsState {
	st := WindowStatsState{
		Size:      len(w.actual),
		Actual:    make([]float64, w.count),
		Predicted: make([]float64, w.count),
	}
	for k := 0; k < w.count; k++ {
		i := (w.head + k) % len(w.actual)
		st.Actual[k] = w.actual[i]
		st.Predicted[k] = w.predicted[i]
	}
	return st
}

// WindowStatsFromState restores a window; metrics and all later behaviour are
// bit-identical to the original.
func WindowStatsFromState(st WindowStatsState) (*WindowStats, error) {
	w, err := NewWindowStats(st.Size)
	if err != nil {
		return nil, fmt.Errorf("window stats from state: %w: %w", ErrInvalidState, err)
	}
	if len(st.Actual) != len(st.Predicted) || len(st.Actual) > st.Size {
		return nil, fmt.Errorf("window stats from state: %d actuals, %d predictions for size %d: %w",
			len(st.Actual), len(st.Predicted), st.Size, ErrInvalidState)
	}
	for k := range st.Actual {
		if err := checkPair(st.Actual[k], st.Predicted[k]); err != nil {
			return nil, fmt.Errorf("window stats from state: pair %d: %w: %w", k, ErrInvalidState, err)
		}
	}
	copy(w.actual, st.Actual)
	copy(w.predicted, st.Predicted)
	w.count = len(st.Actual)
	return w, nil
}
