package evaluate

import (
	"math"

	"github.com/greenwave-city/greenwave/pkg/train"
)

// errSums accumulates errors in the fields of the v1 ErrorStats message (count, Σ|e|, Σe², and Σ|e/actual|
// with its own count), so that the learner's cumulative evaluations can be subtracted and added exactly like
// the model's own pairs.
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

// minus returns s − o: the pairs scored after o was taken, when o is an earlier state of the same accumulator.
func (s errSums) minus(o errSums) errSums {
	return errSums{n: s.n - o.n, nPct: s.nPct - o.nPct, sumAbs: s.sumAbs - o.sumAbs, sumSq: s.sumSq - o.sumSq, sumPct: s.sumPct - o.sumPct}
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

// baselineSums returns the learner's cumulative baseline evaluations, per horizon (Config order) and baseline.
func baselineSums(l *train.Learner) []map[string]errSums {
	snaps := l.Snapshots()
	out := make([]map[string]errSums, len(snaps))
	for i, s := range snaps {
		out[i] = map[string]errSums{}
		for name, ev := range s.Baselines {
			c := ev.Cumulative // a learner's snapshot always has it
			out[i][name] = errSums{n: c.N, nPct: c.NPct, sumAbs: c.SumAbsError, sumSq: c.SumSquaredError, sumPct: c.SumAbsPctError}
		}
	}
	return out
}
