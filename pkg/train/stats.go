package train

import (
	"fmt"
	"math"

	"github.com/greenwave-city/greenwave/pkg/regression"
)

// errAcc accumulates cumulative prequential errors in exactly the fields of the v1 ErrorStats message, so that
// the message restores it bit-exactly. (regression.ErrorStats keeps Welford's mean and M2 instead of Σy and Σy²,
// which v1 has no fields for.) R² uses SST = Σy² − (Σy)²/n; for traffic targets, whose coefficient of variation
// is far from zero, the cancellation in that difference costs only a few digits.
type errAcc struct {
	n, nPct                                uint64
	sumAbs, sumSq, sumPct, sumAct, sumAct2 float64
}

// add records one pair; both values are finite and at most maxAbsValue in magnitude.
func (a *errAcc) add(actual, forecast float64) {
	e := actual - forecast
	a.n++
	a.sumAbs += math.Abs(e)
	a.sumSq += e * e
	if actual != 0 {
		a.nPct++
		a.sumPct += 100 * math.Abs(e/actual)
	}
	a.sumAct += actual
	a.sumAct2 += actual * actual
}

// stats returns the stats with the derived metrics filled in; an undefined metric is NaN (all of them when
// n is 0, MAPE when no actual was non-zero, R² when the actuals are constant).
func (a errAcc) stats() *ErrorStats {
	nan := math.NaN()
	out := &ErrorStats{
		N: a.n, SumAbsError: a.sumAbs, SumSquaredError: a.sumSq, NPct: a.nPct, SumAbsPctError: a.sumPct,
		SumActual: a.sumAct, SumActualSquared: a.sumAct2, MAE: nan, RMSE: nan, MAPE: nan, R2: nan,
	}
	if a.n == 0 {
		return out
	}
	n := float64(a.n)
	out.MAE = a.sumAbs / n
	out.RMSE = math.Sqrt(a.sumSq / n)
	if a.nPct > 0 {
		out.MAPE = a.sumPct / float64(a.nPct)
	}
	if sst := a.sumAct2 - a.sumAct*a.sumAct/n; sst > 0 {
		out.R2 = 1 - a.sumSq/sst
	}
	return out
}

func errAccOf(s *ErrorStats) (errAcc, error) {
	if s == nil {
		return errAcc{}, nil
	}
	for _, v := range []float64{s.SumAbsError, s.SumSquaredError, s.SumAbsPctError, s.SumActualSquared} {
		if !(v >= 0) || math.IsInf(v, 1) {
			return errAcc{}, fmt.Errorf("error stats sum %g not finite and ≥ 0: %w", v, ErrInvalidSnapshot)
		}
	}
	if v := s.SumActual; math.IsNaN(v) || math.IsInf(v, 0) {
		return errAcc{}, fmt.Errorf("error stats sum of actuals %g: %w", v, ErrInvalidSnapshot)
	}
	if s.NPct > s.N {
		return errAcc{}, fmt.Errorf("error stats percent count %d > count %d: %w", s.NPct, s.N, ErrInvalidSnapshot)
	}
	return errAcc{
		n: s.N, nPct: s.NPct, sumAbs: s.SumAbsError, sumSq: s.SumSquaredError,
		sumPct: s.SumAbsPctError, sumAct: s.SumActual, sumAct2: s.SumActualSquared,
	}, nil
}

// windowStats returns the recent-window metrics as ErrorStats: sums over the retained pairs (oldest
// first) and the derived metrics of regression.WindowStats.
func windowStats(w *regression.WindowStats) *ErrorStats {
	st := w.State()
	var a errAcc
	for i := range st.Actual {
		a.add(st.Actual[i], st.Predicted[i])
	}
	out := a.stats()
	s := w.Summary()
	out.MAE, out.RMSE, out.MAPE, out.R2 = s.MAE, s.RMSE, s.MAPE, s.R2
	return out
}
