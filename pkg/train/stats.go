package train

import (
	"fmt"
	"math"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"

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

// toProto returns the message with the derived metrics filled in; an undefined metric is NaN (all of them when
// n is 0, MAPE when no actual was non-zero, R² when the actuals are constant).
func (a errAcc) toProto() *greenwavev1.ErrorStats {
	nan := math.NaN()
	out := &greenwavev1.ErrorStats{
		N: a.n, SumAbsError: a.sumAbs, SumSquaredError: a.sumSq, NPct: a.nPct, SumAbsPctError: a.sumPct,
		SumActual: a.sumAct, SumActualSquared: a.sumAct2, Mae: nan, Rmse: nan, Mape: nan, R2: nan,
	}
	if a.n == 0 {
		return out
	}
	n := float64(a.n)
	out.Mae = a.sumAbs / n
	out.Rmse = math.Sqrt(a.sumSq / n)
	if a.nPct > 0 {
		out.Mape = a.sumPct / float64(a.nPct)
	}
	if sst := a.sumAct2 - a.sumAct*a.sumAct/n; sst > 0 {
		out.R2 = 1 - a.sumSq/sst
	}
	return out
}

func errAccFromProto(s *greenwavev1.ErrorStats) (errAcc, error) {
	if s == nil {
		return errAcc{}, nil
	}
	for _, v := range []float64{s.GetSumAbsError(), s.GetSumSquaredError(), s.GetSumAbsPctError(), s.GetSumActualSquared()} {
		if !(v >= 0) || math.IsInf(v, 1) {
			return errAcc{}, fmt.Errorf("error stats sum %g not finite and ≥ 0: %w", v, ErrInvalidSnapshot)
		}
	}
	if v := s.GetSumActual(); math.IsNaN(v) || math.IsInf(v, 0) {
		return errAcc{}, fmt.Errorf("error stats sum of actuals %g: %w", v, ErrInvalidSnapshot)
	}
	if s.GetNPct() > s.GetN() {
		return errAcc{}, fmt.Errorf("error stats percent count %d > count %d: %w", s.GetNPct(), s.GetN(), ErrInvalidSnapshot)
	}
	return errAcc{
		n: s.GetN(), nPct: s.GetNPct(), sumAbs: s.GetSumAbsError(), sumSq: s.GetSumSquaredError(),
		sumPct: s.GetSumAbsPctError(), sumAct: s.GetSumActual(), sumAct2: s.GetSumActualSquared(),
	}, nil
}

// windowProto returns the recent-window metrics as an ErrorStats message: sums over the retained pairs (oldest
// first) and the derived metrics of regression.WindowStats.
func windowProto(w *regression.WindowStats) *greenwavev1.ErrorStats {
	st := w.State()
	var a errAcc
	for i := range st.Actual {
		a.add(st.Actual[i], st.Predicted[i])
	}
	out := a.toProto()
	s := w.Summary()
	out.Mae, out.Rmse, out.Mape, out.R2 = s.MAE, s.RMSE, s.MAPE, s.R2
	return out
}
