package regression

import (
	"errors"
	"math"
	"testing"
)

func TestOLS(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		X    [][]float64
		y    []float64
		want []float64
		tol  float64 // max relative difference per coefficient
	}{
		{"exact line", [][]float64{{0}, {1}, {2}, {3}}, []float64{1, 3, 5, 7}, []float64{1, 2}, 1e-14},
		// x̄ = 2, ȳ = 5/3, Sxy = 1, Sxx = 2: slope 1/2, intercept 5/3 − 1 = 2/3.
		{"hand least squares", [][]float64{{1}, {2}, {3}}, []float64{1, 2, 2}, []float64{2.0 / 3, 0.5}, 1e-14},
		{"intercept only", [][]float64{{}, {}, {}}, []float64{1, 2, 6}, []float64{3}, 1e-15},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := OLS(c.X, c.y)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxRelDiff(got, c.want); d > c.tol {
				t.Errorf("OLS = %v, want %v (rel diff %g)", got, c.want, d)
			}
		})
	}
	t.Run("noiseless mixed scales recovered", func(t *testing.T) {
		t.Parallel()
		coef := []float64{40, 0.02, -0.015, 30, -12}
		X, y := synth(9, 500, coef, []float64{1500, 800, 0.3, 0.6}, []float64{400, 300, 0.1, 0.15}, 0)
		got, err := OLS(X, y)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxRelDiff(got, coef); d > 1e-10 {
			t.Errorf("OLS = %v, want %v (rel diff %g)", got, coef, d)
		}
	})
}

func TestOLSErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		X    [][]float64
		y    []float64
		want error
	}{
		{"no rows", nil, nil, ErrDimension},
		{"length mismatch", [][]float64{{1}, {2}}, []float64{1}, ErrDimension},
		{"ragged", [][]float64{{1, 2}, {2}, {3, 4}, {5, 6}}, []float64{1, 2, 3, 4}, ErrDimension},
		{"NaN feature", [][]float64{{1}, {math.NaN()}, {3}}, []float64{1, 2, 3}, ErrNonFinite},
		{"Inf target", [][]float64{{1}, {2}, {3}}, []float64{1, math.Inf(-1), 3}, ErrNonFinite},
		{"too few rows", [][]float64{{1, 2}, {2, 1}}, []float64{1, 2}, ErrIllConditioned},
		{"collinear", [][]float64{{1, 2}, {2, 4}, {3, 6}, {4, 8}}, []float64{1, 2, 3, 5}, ErrIllConditioned},
		{"constant feature", [][]float64{{5}, {5}, {5}}, []float64{1, 2, 3}, ErrIllConditioned},
		{"zero feature", [][]float64{{0}, {0}, {0}}, []float64{1, 2, 3}, ErrIllConditioned},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if _, err := OLS(c.X, c.y); !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestRidge(t *testing.T) {
	t.Parallel()
	X, y := synth(8, 300, []float64{1.5, 2, -1, 0.5}, []float64{3, -2, 1}, fill(3, 1), 0.5)
	t.Run("alpha zero is OLS", func(t *testing.T) {
		t.Parallel()
		r, err := Ridge(X, y, 0)
		if err != nil {
			t.Fatal(err)
		}
		o, err := OLS(X, y)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxRelDiff(r, o); d > 1e-10 {
			t.Errorf("ridge %v, ols %v", r, o)
		}
	})
	t.Run("one feature closed form", func(t *testing.T) {
		t.Parallel()
		// x = 1,2,3; y = 1,2,2: Sxy = 1, Sxx = 2, alpha = 2 → β = 1/4,
		// β0 = ȳ − β·x̄ = 5/3 − 1/2 = 7/6.
		got, err := Ridge([][]float64{{1}, {2}, {3}}, []float64{1, 2, 2}, 2)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxRelDiff(got, []float64{7.0 / 6, 0.25}); d > 1e-14 {
			t.Errorf("Ridge = %v, want [7/6 1/4]", got)
		}
	})
	t.Run("intercept not penalised", func(t *testing.T) {
		t.Parallel()
		got, err := Ridge(X, y, 1e14)
		if err != nil {
			t.Fatal(err)
		}
		var ymean float64
		for _, v := range y {
			ymean += v
		}
		ymean /= float64(len(y))
		if math.Abs(got[0]-ymean) > 1e-6*math.Abs(ymean) {
			t.Errorf("intercept %g under huge alpha, want mean %g", got[0], ymean)
		}
		for j, v := range got[1:] {
			if math.Abs(v) > 1e-9 {
				t.Errorf("coefficient %d = %g under huge alpha, want ≈ 0", j+1, v)
			}
		}
	})
	t.Run("underdetermined with alpha", func(t *testing.T) {
		t.Parallel()
		if _, err := Ridge([][]float64{{1, 2, 3}}, []float64{1}, 1); err != nil {
			t.Errorf("err = %v", err)
		}
	})
	for _, alpha := range []float64{-1, math.NaN(), math.Inf(1)} {
		if _, err := Ridge(X, y, alpha); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Ridge(alpha %g) err = %v, want ErrInvalidConfig", alpha, err)
		}
	}
}

func TestMSE(t *testing.T) {
	t.Parallel()
	// Residuals of y = 1 + x on (1,2), (2,2), (3,5): 0, −1, 1 → MSE 2/3.
	got, err := MSE([][]float64{{1}, {2}, {3}}, []float64{2, 2, 5}, []float64{1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-2.0/3) > 1e-15 {
		t.Errorf("MSE = %g, want 2/3", got)
	}
	if _, err := MSE([][]float64{{1}}, []float64{1}, []float64{1}); !errors.Is(err, ErrDimension) {
		t.Errorf("short coef err = %v", err)
	}
	if _, err := MSE([][]float64{{1}}, []float64{1}, []float64{1, math.NaN()}); !errors.Is(err, ErrNonFinite) {
		t.Errorf("NaN coef err = %v", err)
	}
}
