package regression

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// checkRows validates a design given as rows of features plus targets and
// returns the number of features. It requires at least minRows rows.
func checkRows(X [][]float64, y []float64, minRows func(features int) int) (int, error) {
	if len(X) != len(y) {
		return 0, fmt.Errorf("%d rows but %d targets: %w", len(X), len(y), ErrDimension)
	}
	if len(X) == 0 {
		return 0, fmt.Errorf("no rows: %w", ErrDimension)
	}
	p := len(X[0])
	if p > MaxFeatures {
		return 0, fmt.Errorf("%d features exceeds %d: %w", p, MaxFeatures, ErrDimension)
	}
	for i, row := range X {
		if len(row) != p {
			return 0, fmt.Errorf("row %d has %d features, row 0 has %d: %w", i, len(row), p, ErrDimension)
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, fmt.Errorf("row %d feature %d is %g: %w", i, j, v, ErrNonFinite)
			}
		}
		if math.IsNaN(y[i]) || math.IsInf(y[i], 0) {
			return 0, fmt.Errorf("target %d is %g: %w", i, y[i], ErrNonFinite)
		}
	}
	if m := minRows(p); len(X) < m {
		return 0, fmt.Errorf("%d rows for %d features, need at least %d: %w", len(X), p, m, ErrIllConditioned)
	}
	return p, nil
}

// solveQR solves min ‖A·b − rhs‖ by Householder QR and reports a rank
// deficient or ill-conditioned A (condition number above 1e16 in gonum's
// estimate) as ErrIllConditioned.
func solveQR(a *mat.Dense, rhs *mat.VecDense) ([]float64, error) {
	var qr mat.QR
	qr.Factorize(a)
	var sol mat.VecDense
	if err := qr.SolveVecTo(&sol, false, rhs); err != nil {
		var c mat.Condition
		if errors.As(err, &c) {
			return nil, fmt.Errorf("condition number %g: %w", float64(c), ErrIllConditioned)
		}
		return nil, fmt.Errorf("qr solve: %w: %w", ErrIllConditioned, err)
	}
	return append([]float64(nil), sol.RawVector().Data...), nil
}

// OLS fits y = β0 + Σ βj·xj by ordinary least squares and returns (β0, β1, …),
// intercept first. X holds one row of features per observation (without the
// leading 1) and is not modified.
//
// The solver is Householder QR (gonum mat.QR), never the normal equations, so
// accuracy degrades with cond(X) rather than cond(X)². Columns are first
// equilibrated by powers of two (exact in floating point) to unit-order
// norms, which makes the result insensitive to feature units such as flows in
// thousands next to ratios below one. It returns ErrIllConditioned for fewer
// rows than coefficients, a constant-zero feature, collinear features, or a
// condition number above 1e16.
func OLS(X [][]float64, y []float64) ([]float64, error) {
	p, err := checkRows(X, y, func(p int) int { return p + 1 })
	if err != nil {
		return nil, fmt.Errorf("ols: %w", err)
	}
	m, n := len(X), p+1
	a := mat.NewDense(m, n, nil)
	for i, row := range X {
		a.Set(i, 0, 1)
		for j, v := range row {
			a.Set(i, j+1, v)
		}
	}
	// Power-of-two column equilibration: column j is multiplied by
	// scale[j] = 2^-e with ‖col‖ = f·2^e, f ∈ [0.5, 1).
	scale := make([]float64, n)
	for j := 0; j < n; j++ {
		norm := mat.Norm(a.ColView(j), 2)
		if norm == 0 {
			return nil, fmt.Errorf("ols: feature %d is identically zero: %w", j-1, ErrIllConditioned)
		}
		_, e := math.Frexp(norm)
		scale[j] = math.Ldexp(1, -e)
		for i := 0; i < m; i++ {
			a.Set(i, j, a.At(i, j)*scale[j])
		}
	}
	coef, err := solveQR(a, mat.NewVecDense(m, append([]float64(nil), y...)))
	if err != nil {
		return nil, fmt.Errorf("ols on %d×%d: %w", m, p, err)
	}
	for j := range coef {
		coef[j] *= scale[j]
	}
	return coef, nil
}

// Ridge fits y = β0 + Σ βj·xj minimising ‖y − β0 − Xβ‖² + alpha·‖β‖², with the
// intercept β0 not penalised, and returns (β0, β1, …). alpha must be finite
// and ≥ 0; alpha = 0 is OLS.
//
// The intercept is eliminated by centring X and y, and the penalised problem is
// solved as the augmented least-squares problem [Xc; √alpha·I]·β ≈ [yc; 0] by
// Householder QR (no normal equations). The penalty acts on the coefficients
// in the units given, so features should be scaled to comparable ranges first
// (see the package documentation); Ridge does not rescale them.
func Ridge(X [][]float64, y []float64, alpha float64) ([]float64, error) {
	if !(alpha >= 0) || math.IsInf(alpha, 1) {
		return nil, fmt.Errorf("ridge: alpha %g not finite and ≥ 0: %w", alpha, ErrInvalidConfig)
	}
	minRows := func(p int) int {
		if alpha > 0 {
			return 1
		}
		return p + 1
	}
	p, err := checkRows(X, y, minRows)
	if err != nil {
		return nil, fmt.Errorf("ridge: %w", err)
	}
	m := len(X)
	mean := make([]float64, p)
	var ymean float64
	for i, row := range X {
		for j, v := range row {
			mean[j] += v
		}
		ymean += y[i]
	}
	for j := range mean {
		mean[j] /= float64(m)
	}
	ymean /= float64(m)
	if p == 0 {
		return []float64{ymean}, nil
	}
	rows := m
	if alpha > 0 {
		rows += p
	}
	a := mat.NewDense(rows, p, nil)
	b := mat.NewVecDense(rows, nil)
	for i, row := range X {
		for j, v := range row {
			a.Set(i, j, v-mean[j])
		}
		b.SetVec(i, y[i]-ymean)
	}
	if alpha > 0 {
		s := math.Sqrt(alpha)
		for j := 0; j < p; j++ {
			a.Set(m+j, j, s)
		}
	}
	beta, err := solveQR(a, b)
	if err != nil {
		return nil, fmt.Errorf("ridge on %d×%d, alpha %g: %w", m, p, alpha, err)
	}
	b0 := ymean
	for j, v := range beta {
		b0 -= mean[j] * v
	}
	return append([]float64{b0}, beta...), nil
}

// MSE returns the mean squared error of the coefficients coef (intercept
// first, as returned by OLS, Ridge or RLS.Coefficients) on the rows X, y.
func MSE(X [][]float64, y []float64, coef []float64) (float64, error) {
	p, err := checkRows(X, y, func(int) int { return 1 })
	if err != nil {
		return 0, fmt.Errorf("mse: %w", err)
	}
	if len(coef) != p+1 {
		return 0, fmt.Errorf("mse: %d coefficients for %d features: %w", len(coef), p, ErrDimension)
	}
	for j, v := range coef {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("mse: coefficient %d is %g: %w", j, v, ErrNonFinite)
		}
	}
	var s float64
	for i, row := range X {
		r := y[i] - coef[0]
		for j, v := range row {
			r -= coef[j+1] * v
		}
		s += r * r
	}
	return s / float64(len(X)), nil
}
