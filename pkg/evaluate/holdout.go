package evaluate

import (
	"fmt"
	"math"
	"sort"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/regression"
)

// holdoutRow is one (input at t, label at t+h₁) pair of the hold-out OLS reference.
type holdoutRow struct {
	t        int64 // input window start, Unix s
	in, ap   int   // topology positions, for a deterministic order of rows with the same t
	x        []float64
	y, scale float64 // label in natural units and the learner's fixed scale of it
	// fc are the online forecasters' forecasts of the label; counted is true when the label is past the
	// warm-up (the pair then counts under the same-pairs rule when every online forecaster has a forecast).
	fc      forecastSet
	counted bool
}

// collinearTol is the share of a centred column's norm that must remain after projecting out the columns
// kept before it; below it the column adds nothing the intercept and those columns do not already carry.
const collinearTol = 1e-9

// holdoutLabel completes the hold-out row waiting for the label window at t, and forgets rows whose label
// window has passed.
func holdoutLabel(r *run, s *series, v features.Vector, t int64, y float64, obs, counted bool) {
	h1 := int64(r.tc.Horizons[0].Seconds())
	if p, ok := s.rows[t]; ok && obs {
		ai := 0
		for i := range r.series {
			if r.series[i] == s {
				ai = i
			}
		}
		r.out.holdout = append(r.out.holdout, holdoutRow{t: t - h1, in: r.idx, ap: ai, x: p.x, y: y, scale: scaleOf(r.tc.Target, v),
			fc: p.fc, counted: counted})
	}
	for k := range s.rows {
		if k <= t {
			delete(s.rows, k)
		}
	}
}

// holdoutOLS fits OLS on the first TrainRows(n) rows in time order and scores, with the online forecasters, the
// test rows that count under the same-pairs rule (see the package documentation). names are the columns of x.
func holdoutOLS(rows []holdoutRow, names []string) HoldoutReport {
	nan := math.NaN()
	rep := HoldoutReport{MAE: nan, MSE: nan, Model: errSums{}.metrics(), Baselines: map[string]Metrics{}, Missing: map[string]int{},
		Inputs: names}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.t != b.t {
			return a.t < b.t
		}
		if a.in != b.in {
			return a.in < b.in
		}
		return a.ap < b.ap
	})
	k := TrainRows(len(rows))
	if k < 2 || len(rows)-k < 1 {
		rep.Err = fmt.Sprintf("%d labelled rows: too few for an 80/20 split", len(rows))
		return rep
	}
	for _, r := range rows {
		// Every row is a learner's full input (train.Learner.Inputs); a shorter one would be a bug here.
		if len(r.x) != len(names) {
			rep.Err = fmt.Sprintf("a row has %d inputs, the model %d", len(r.x), len(names))
			return rep
		}
	}
	keep := independentColumns(rows[:k])
	for j := range rows[0].x {
		if !keep[j] {
			rep.DroppedColumns = append(rep.DroppedColumns, names[j])
		}
	}
	pick := func(x []float64) []float64 {
		out := make([]float64, 0, len(x))
		for j, v := range x {
			if keep[j] {
				out = append(out, v)
			}
		}
		return out
	}
	X := make([][]float64, k)
	y := make([]float64, k)
	for i, r := range rows[:k] {
		X[i], y[i] = pick(r.x), r.y/r.scale
	}
	coef, err := regression.OLS(X, y)
	if err != nil {
		rep.Err = err.Error()
		return rep
	}
	var ols errSums
	var online pairScore
	for _, r := range rows[k:] {
		if !r.counted {
			rep.BeforeWarmup++
			continue
		}
		// OLS forecasts every row, so the online forecasters decide which pairs count.
		if !online.pair(r.y, &r.fc) {
			continue
		}
		p := coef[0]
		for j, v := range pick(r.x) {
			p += coef[j+1] * v
		}
		ols.pair(r.y, p*r.scale)
	}
	m := ols.metrics()
	rep.MAE, rep.MSE, rep.N, rep.Train, rep.Test = m.MAE, m.RMSE*m.RMSE, m.N, k, len(rows)-k
	rep.DroppedPairs, rep.Missing = online.dropped, online.missingMap()
	rep.Model = online.sums[fModel].metrics()
	for i := fModel + 1; i < numForecasters; i++ {
		rep.Baselines[forecasterNames[i]] = online.sums[i].metrics()
	}
	rep.Baselines[BaselineOLS] = m
	return rep
}

// independentColumns chooses, in column order, the columns of the rows' inputs that are not constant and not
// (numerically) a linear combination of the intercept and the columns chosen before them: modified
// Gram–Schmidt on the centred columns.
func independentColumns(rows []holdoutRow) []bool {
	p := len(rows[0].x)
	keep := make([]bool, p)
	var basis [][]float64
	for j := 0; j < p; j++ {
		c := make([]float64, len(rows))
		mean := 0.0
		for i, r := range rows {
			c[i] = r.x[j]
			mean += c[i]
		}
		mean /= float64(len(rows))
		for i := range c {
			c[i] -= mean
		}
		norm0 := norm(c)
		if norm0 == 0 || math.IsNaN(norm0) || math.IsInf(norm0, 0) {
			continue
		}
		for _, q := range basis {
			d := dot(q, c)
			for i := range c {
				c[i] -= d * q[i]
			}
		}
		n := norm(c)
		if n <= collinearTol*norm0 {
			continue
		}
		for i := range c {
			c[i] /= n
		}
		basis = append(basis, c)
		keep[j] = true
	}
	return keep
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func norm(a []float64) float64 { return math.Sqrt(dot(a, a)) }
