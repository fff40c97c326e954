package evaluate

import (
	"math"
)

// errSums accumulates errors in the fields of the v1 ErrorStats message (count, Σ|e|, Σe², and Σ|e/actual|
// with its own count), so that sums over series add up exactly.
type errSums struct {
	n, nPct               uint64
	sumAbs, sumSq, sumPct float64
}

// pair records one (actual, forecast) pair with the rule of package train: MAPE skips zero actuals.
func (s *errSums) pair(actual, forecast float64) {
	e := actual - forecast
	s.n++
	s.sumAbs += math.Abs(e)
	s.sumSq += e * e
	if actual != 0 {
		s.nPct++
		s.sumPct += 100 * math.Abs(e/actual)
	}
}

func (s *errSums) add(o errSums) {
	s.n += o.n
	s.nPct += o.nPct
	s.sumAbs += o.sumAbs
	s.sumSq += o.sumSq
	s.sumPct += o.sumPct
}

func (s errSums) metrics() Metrics {
	m := Metrics{MAE: math.NaN(), RMSE: math.NaN(), MAPE: math.NaN(), N: int(s.n)}
	if s.n == 0 {
		return m
	}
	n := float64(s.n)
	m.MAE, m.RMSE = s.sumAbs/n, math.Sqrt(s.sumSq/n)
	if s.nPct > 0 {
		m.MAPE = s.sumPct / float64(s.nPct)
	}
	return m
}
