package regression

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func mustRLS(t testing.TB, n int, cfg RLSConfig) *RLS {
	t.Helper()
	r, err := NewRLS(n, cfg)
	if err != nil {
		t.Fatalf("NewRLS(%d, %+v): %v", n, cfg, err)
	}
	return r
}

// checkCovariance asserts the invariants of P: finite, exactly symmetric,
// positive diagonal, trace within the bound.
func checkCovariance(t testing.TB, r *RLS) {
	t.Helper()
	n := r.Features() + 1
	p := r.Covariance()
	for i := 0; i < n; i++ {
		if !(p[i*n+i] > 0) {
			t.Fatalf("P[%d,%d] = %g, want > 0", i, i, p[i*n+i])
		}
		for j := 0; j < n; j++ {
			if v := p[i*n+j]; math.IsNaN(v) || math.IsInf(v, 0) || v != p[j*n+i] {
				t.Fatalf("P[%d,%d] = %g, P[%d,%d] = %g: want finite and equal", i, j, v, j, i, p[j*n+i])
			}
		}
	}
	if tr, mt := r.Trace(), r.Config().MaxTrace; tr > mt*(1+1e-12) {
		t.Fatalf("trace(P) = %g exceeds max trace %g", tr, mt)
	}
}

func TestNewRLSValidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		features int
		cfg      RLSConfig
		wantErr  bool
	}{
		{"default", 16, DefaultRLSConfig(), false},
		{"intercept only", 0, DefaultRLSConfig(), false},
		{"lambda one, guard off", 3, RLSConfig{Lambda: 1, Delta: 1, MaxTrace: math.Inf(1)}, false},
		{"explicit max trace", 3, RLSConfig{Lambda: 0.9, Delta: 1, MaxTrace: 4}, false},
		{"lambda zero", 3, RLSConfig{Lambda: 0, Delta: 1}, true},
		{"lambda above one", 3, RLSConfig{Lambda: 1.01, Delta: 1}, true},
		{"lambda NaN", 3, RLSConfig{Lambda: math.NaN(), Delta: 1}, true},
		{"delta zero", 3, RLSConfig{Lambda: 0.99}, true},
		{"delta negative", 3, RLSConfig{Lambda: 0.99, Delta: -1}, true},
		{"delta Inf", 3, RLSConfig{Lambda: 0.99, Delta: math.Inf(1)}, true},
		{"max trace negative", 3, RLSConfig{Lambda: 0.99, Delta: 1, MaxTrace: -1}, true},
		{"max trace NaN", 3, RLSConfig{Lambda: 0.99, Delta: 1, MaxTrace: math.NaN()}, true},
		{"max trace below prior", 3, RLSConfig{Lambda: 0.99, Delta: 1, MaxTrace: 3.9}, true},
		{"negative features", -1, DefaultRLSConfig(), true},
		{"too many features", MaxFeatures + 1, DefaultRLSConfig(), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r, err := NewRLS(c.features, c.cfg)
			if c.wantErr {
				if !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("err = %v, want ErrInvalidConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := r.Trace(), c.cfg.Delta*float64(c.features+1); got != want {
				t.Errorf("initial trace %g, want %g", got, want)
			}
			if r.Config().MaxTrace <= 0 {
				t.Errorf("max trace not resolved: %g", r.Config().MaxTrace)
			}
		})
	}
}

func TestRLSRejectsBadInputUntouched(t *testing.T) {
	t.Parallel()
	nan, inf := math.NaN(), math.Inf(1)
	cases := []struct {
		name string
		x    []float64
		y    float64
		want error
		xBad bool // Predict must reject x too
	}{
		{"NaN feature", []float64{1, nan, 2}, 1, ErrNonFinite, true},
		{"+Inf feature", []float64{inf, 0, 2}, 1, ErrNonFinite, true},
		{"-Inf feature", []float64{0, 0, -inf}, 1, ErrNonFinite, true},
		{"NaN target", []float64{1, 1, 1}, nan, ErrNonFinite, false},
		{"-Inf target", []float64{1, 1, 1}, -inf, ErrNonFinite, false},
		{"short x", []float64{1, 2}, 1, ErrDimension, true},
		{"long x", []float64{1, 2, 3, 4}, 1, ErrDimension, true},
		{"nil x", nil, 1, ErrDimension, true},
		{"overflowing x", []float64{1e200, 0, 1}, 1, ErrNumerical, false},
		{"overflowing y", []float64{1, 1, 1}, math.MaxFloat64, ErrNumerical, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := mustRLS(t, 3, DefaultRLSConfig())
			X, y := synth(3, 50, []float64{1, 2, 3, 4}, fill(3, 0), fill(3, 1), 0.1)
			for i := range X {
				if err := r.Update(X[i], y[i]); err != nil {
					t.Fatal(err)
				}
			}
			before := r.State()
			err := r.Update(c.x, c.y)
			if !errors.Is(err, c.want) {
				t.Fatalf("Update err = %v, want %v", err, c.want)
			}
			if after := r.State(); !reflect.DeepEqual(before, after) {
				t.Fatalf("state changed by rejected update:\nbefore %+v\nafter  %+v", before, after)
			}
			if c.xBad {
				if _, err := r.Predict(c.x); !errors.Is(err, c.want) {
					t.Errorf("Predict err = %v, want %v", err, c.want)
				}
				if _, err := r.PredictiveVariance(c.x); !errors.Is(err, c.want) {
					t.Errorf("PredictiveVariance err = %v, want %v", err, c.want)
				}
			}
		})
	}
}

// TestRLSAgreesWithOLS runs RLS with λ = 1 over the rows once and compares with
// batch OLS coefficient by coefficient: |β_rls − β_ols| ≤ 1e-6·|β_ols|.
//
// With λ = 1, RLS from P0 = δI, β0 = 0 solves ridge regression with penalty
// ‖β‖²/δ exactly, so the difference is a bias of order 1/(δ·λmin(XᵀX)) plus
// rounding that grows like δ·‖x‖²·ε in the first updates. For O(1) features
// (the scaling assumption of the package) δ = 1e8 balances the two at about
// 1e-10. For raw features in the thousands the rounding term dominates at
// δ = 1e8 (2.5e-6 measured); there δ = 1e6 is needed, or the fixed
// capacity scaling shown in the "scaled" case, which recovers δ = 1e8.
func TestRLSAgreesWithOLS(t *testing.T) {
	t.Parallel()
	const tol = 1e-6
	// Raw traffic-like features: two flows (veh/h, ~1e3), occupancy and a
	// speed ratio (~0.5), intercept 40.
	rawCoef := []float64{40, 0.02, -0.015, 30, -12}
	rawOff := []float64{1500, 800, 0.3, 0.6}
	rawScale := []float64{400, 300, 0.1, 0.15}
	capacity := []float64{1800, 1800, 1, 1} // fixed scaling rule: flow / saturation flow
	cases := []struct {
		name    string
		coef    []float64
		off, sc []float64
		divide  []float64 // fixed feature scaling applied before RLS, nil for none
		delta   float64
	}{
		{"well conditioned, delta 1e8", []float64{1.5, 2, -1, 0.5, 3}, fill(4, 0), fill(4, 1), nil, 1e8},
		{"raw mixed scales, delta 1e6", rawCoef, rawOff, rawScale, nil, 1e6},
		{"capacity-scaled mixed scales, delta 1e8", rawCoef, rawOff, rawScale, capacity, 1e8},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			X, y := synth(11, 2000, c.coef, c.off, c.sc, 0.5)
			ols, err := OLS(X, y)
			if err != nil {
				t.Fatal(err)
			}
			r := mustRLS(t, len(c.off), RLSConfig{Lambda: 1, Delta: c.delta})
			xs := make([]float64, len(c.off))
			for i := range X {
				copy(xs, X[i])
				for j := range c.divide {
					xs[j] /= c.divide[j]
				}
				if err := r.Update(xs, y[i]); err != nil {
					t.Fatal(err)
				}
			}
			got := r.Coefficients()
			for j := range c.divide {
				got[j+1] /= c.divide[j]
			}
			if d := maxRelDiff(got, ols); d > tol {
				t.Errorf("max relative difference %g > %g\nrls %v\nols %v", d, tol, got, ols)
			}
			if r.CovarianceResets() != 0 {
				t.Errorf("%d covariance resets", r.CovarianceResets())
			}
			checkCovariance(t, r)
		})
	}
}

// TestRLSNoiseVarianceAndInterval checks the noise estimator against the
// classical RSS/(N−p) of the batch fit and the coverage of the prediction
// interval on fresh data.
func TestRLSNoiseVarianceAndInterval(t *testing.T) {
	t.Parallel()
	const sigma = 0.5
	coef := []float64{1, 2, -1, 0.5}
	X, y := synth(5, 4000, coef, fill(3, 0), fill(3, 1), sigma)
	r := mustRLS(t, 3, RLSConfig{Lambda: 1, Delta: 1e8})
	x0 := []float64{0.1, 0.2, 0.3}
	for i := range X {
		if i == 4 {
			if _, err := r.NoiseVariance(); !errors.Is(err, ErrNotReady) {
				t.Fatalf("NoiseVariance after 4 updates: err = %v, want ErrNotReady", err)
			}
			if _, _, err := r.Interval(x0, 0.9); !errors.Is(err, ErrNotReady) {
				t.Fatalf("Interval after 4 updates: err = %v, want ErrNotReady", err)
			}
		}
		if err := r.Update(X[i], y[i]); err != nil {
			t.Fatal(err)
		}
	}
	ols, err := OLS(X, y)
	if err != nil {
		t.Fatal(err)
	}
	mse, err := MSE(X, y, ols)
	if err != nil {
		t.Fatal(err)
	}
	classical := mse * float64(len(X)) / float64(len(X)-len(coef))
	s2, err := r.NoiseVariance()
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(s2-classical) / classical; d > 1e-6 {
		t.Errorf("noise variance %g, RSS/(N-p) %g: relative difference %g", s2, classical, d)
	}
	if d := math.Abs(s2-sigma*sigma) / (sigma * sigma); d > 0.1 {
		t.Errorf("noise variance %g, true %g", s2, sigma*sigma)
	}

	for _, conf := range []float64{0.5, 0.9, 0.99} {
		Xt, yt := synth(6, 4000, coef, fill(3, 0), fill(3, 1), sigma)
		inside := 0
		for i := range Xt {
			lo, hi, err := r.Interval(Xt[i], conf)
			if err != nil {
				t.Fatal(err)
			}
			if lo <= yt[i] && yt[i] <= hi {
				inside++
			}
		}
		// Binomial standard error at n = 4000 is at most 0.008.
		if got := float64(inside) / float64(len(Xt)); math.Abs(got-conf) > 0.025 {
			t.Errorf("coverage of %g interval = %g", conf, got)
		}
	}
	for _, conf := range []float64{0, 1, -0.5, math.NaN()} {
		if _, _, err := r.Interval(x0, conf); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Interval(confidence %g) err = %v, want ErrInvalidConfig", conf, err)
		}
	}
}

// TestRLSStateRoundTrip snapshots a model mid-stream, restores it and checks
// that both continue with bit-identical results (==), including through the
// wind-up guard (feature 2 is silenced around the snapshot, so variances are
// being clamped when it is taken).
func TestRLSStateRoundTrip(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  RLSConfig
	}{
		{"default", DefaultRLSConfig()},
		{"lambda one", RLSConfig{Lambda: 1, Delta: 1e4}},
		{"guard off", RLSConfig{Lambda: 0.98, Delta: 10, MaxTrace: math.Inf(1)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			X, y := synth(21, 3000, []float64{3, 1, -2, 0.5, 4, -1}, fill(5, 0), fill(5, 1), 0.3)
			// Silence feature 2 for a stretch so the guard clamps.
			for i := 800; i < 1600; i++ {
				X[i][2] = 0
			}
			a := mustRLS(t, 5, c.cfg)
			for i := 0; i < 1200; i++ {
				if err := a.Update(X[i], y[i]); err != nil {
					t.Fatal(err)
				}
			}
			st := a.State()
			b, err := FromState(st)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(b.State(), st) {
				t.Fatalf("restored state differs:\n%+v\n%+v", b.State(), st)
			}
			st.Coefficients[0] = 12345 // the snapshot must not alias the model
			for i := 1200; i < len(X); i++ {
				if err := a.Update(X[i], y[i]); err != nil {
					t.Fatal(err)
				}
				if err := b.Update(X[i], y[i]); err != nil {
					t.Fatal(err)
				}
				pa, _ := a.Predict(X[i])
				pb, _ := b.Predict(X[i])
				if pa != pb {
					t.Fatalf("step %d: predictions %v != %v", i, pa, pb)
				}
			}
			ca, cb := a.Coefficients(), b.Coefficients()
			for j := range ca {
				if ca[j] != cb[j] {
					t.Errorf("coefficient %d: %v != %v", j, ca[j], cb[j])
				}
			}
			if !reflect.DeepEqual(a.State(), b.State()) {
				t.Errorf("final states differ")
			}
		})
	}
}

func TestFromStateRejects(t *testing.T) {
	t.Parallel()
	r := mustRLS(t, 2, DefaultRLSConfig())
	X, y := synth(1, 100, []float64{1, 2, 3}, fill(2, 0), fill(2, 1), 0.1)
	for i := range X {
		if err := r.Update(X[i], y[i]); err != nil {
			t.Fatal(err)
		}
	}
	good := r.State()
	if _, err := FromState(good); err != nil {
		t.Fatalf("valid state rejected: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(s *RLSState)
	}{
		{"negative features", func(s *RLSState) { s.Features = -1 }},
		{"features mismatch", func(s *RLSState) { s.Features = 3 }},
		{"short coefficients", func(s *RLSState) { s.Coefficients = s.Coefficients[:2] }},
		{"short covariance", func(s *RLSState) { s.Covariance = s.Covariance[:8] }},
		{"NaN coefficient", func(s *RLSState) { s.Coefficients[1] = math.NaN() }},
		{"Inf covariance", func(s *RLSState) { s.Covariance[0] = math.Inf(1) }},
		{"asymmetric covariance", func(s *RLSState) { s.Covariance[1] += 1e-9 }},
		{"zero diagonal", func(s *RLSState) { s.Covariance[4] = 0 }},
		{"trace above bound", func(s *RLSState) { s.MaxTrace = s.Delta * 3; s.Covariance[0] = s.Delta * 3 }},
		{"lambda out of range", func(s *RLSState) { s.Lambda = 0 }},
		{"unresolved max trace", func(s *RLSState) { s.MaxTrace = 0 }},
		{"negative noise sum", func(s *RLSState) { s.NoiseSum = -1 }},
		{"noise sum without weight", func(s *RLSState) { s.NoiseSum, s.NoiseWeight = 1, 0 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := r.State()
			c.mutate(&s)
			if _, err := FromState(s); !errors.Is(err, ErrInvalidState) {
				t.Fatalf("err = %v, want ErrInvalidState", err)
			}
		})
	}
}

// TestRLSWindUpGuard runs a long stretch of zero features (a dead detector at
// night): with the guard trace(P) stays at or below MaxTrace and the model
// recovers once the features return, without it P explodes. With normal
// excitation the guard never changes a bit.
func TestRLSWindUpGuard(t *testing.T) {
	t.Parallel()
	coef := []float64{2, 1, -1, 0.5}
	cfg := RLSConfig{Lambda: 0.99, Delta: 100}
	unguarded := cfg
	unguarded.MaxTrace = math.Inf(1)

	t.Run("bounded under zero input", func(t *testing.T) {
		t.Parallel()
		g, u := mustRLS(t, 3, cfg), mustRLS(t, 3, unguarded)
		X, y := synth(2, 500, coef, fill(3, 0), fill(3, 1), 0.1)
		for i := range X {
			_ = g.Update(X[i], y[i])
			_ = u.Update(X[i], y[i])
		}
		zero := make([]float64, 3)
		rng := newRand(3)
		const night, unguardedSteps = 100_000, 20_000
		for i := 0; i < night; i++ {
			yi := coef[0] + 0.1*rng.NormFloat64()
			if err := g.Update(zero, yi); err != nil {
				t.Fatalf("guarded update %d: %v", i, err)
			}
			if i < unguardedSteps {
				if err := u.Update(zero, yi); err != nil {
					t.Fatalf("unguarded update %d: %v", i, err)
				}
			}
			if i%1000 == 0 {
				checkCovariance(t, g)
			}
		}
		checkCovariance(t, g)
		if tr, mt := g.Trace(), g.Config().MaxTrace; tr > mt*(1+1e-12) || mt != 400 {
			t.Errorf("guarded trace %g > max trace %g (want default 4·delta = 400)", tr, mt)
		}
		// Without the guard P grows like 0.99^-k: e^201 after 20 000 steps,
		// and it overflows long before 100 000.
		if tr := u.Trace(); !(tr > 1e80) {
			t.Errorf("unguarded trace %g after %d zero rows did not wind up", tr, unguardedSteps)
		}
		// Morning: excitation returns; the guarded model tracks again.
		X, y = synth(4, 1000, coef, fill(3, 0), fill(3, 1), 0.1)
		for i := range X {
			if err := g.Update(X[i], y[i]); err != nil {
				t.Fatal(err)
			}
		}
		if d := maxRelDiff(g.Coefficients(), coef); d > 0.05 {
			t.Errorf("after recovery coefficients %v, want %v", g.Coefficients(), coef)
		}
		checkCovariance(t, g)
	})

	t.Run("normal run unaffected", func(t *testing.T) {
		t.Parallel()
		// From P = Delta·I the directions not yet seen exceed the clamp
		// target for the first updates; once all are excited no variance is
		// above it and the guard changes nothing, so the run agrees with the
		// unguarded one up to the decayed effect of those first clamps.
		g, u := mustRLS(t, 3, cfg), mustRLS(t, 3, unguarded)
		X, y := synth(5, 5000, coef, fill(3, 0), fill(3, 1), 0.1)
		tau := clampTarget(g.Config(), 4)
		for i := range X {
			if err := g.Update(X[i], y[i]); err != nil {
				t.Fatal(err)
			}
			if err := u.Update(X[i], y[i]); err != nil {
				t.Fatal(err)
			}
			if p := maxDiag(g); i >= 4 && p > tau {
				t.Fatalf("update %d: excited model has variance %g above the clamp target %g", i, p, tau)
			}
		}
		if d := maxRelDiff(g.Coefficients(), u.Coefficients()); d > 1e-12 {
			t.Errorf("guard changed the coefficients of an excited run by %g:\n%v\n%v", d, g.Coefficients(), u.Coefficients())
		}
		if d := maxRelDiff(g.Covariance(), u.Covariance()); d > 1e-9 {
			t.Errorf("guard changed the covariance of an excited run by %g", d)
		}
	})
}

// maxDiag returns the largest coefficient variance max_i P_ii.
func maxDiag(r *RLS) float64 {
	n := r.Features() + 1
	p := r.Covariance()
	m := p[0]
	for i := 1; i < n; i++ {
		m = math.Max(m, p[i*n+i])
	}
	return m
}

// TestRLSWindUpGuardDirections runs long stretches in which part of feature
// space is never excited — coordinate directions (inputs stuck at 0) and
// oblique ones (an input equal to the intercept, two identical inputs) — and
// checks the guard's bounds: every variance at most C = MaxTrace/n, trace(P)
// at most C·(1−λⁿ)/(1−λ) once the first n updates are past, no covariance
// restart, and predictions on the excited part at the noise level.
func TestRLSWindUpGuardDirections(t *testing.T) {
	t.Parallel()
	const (
		features = 6
		steps    = 20_000
		sigma    = 0.1
	)
	cases := []struct {
		name   string
		lambda float64
		row    func(rng *rand.Rand, x []float64) // fills x
	}{
		{"all stuck at 0", 0.99, func(_ *rand.Rand, x []float64) { clear(x) }},
		{"half stuck at 0", 0.99, func(rng *rand.Rand, x []float64) {
			for j := range x {
				x[j] = 0
				if j%2 == 0 {
					x[j] = rng.NormFloat64()
				}
			}
		}},
		{"input equal to the intercept", 0.99, func(rng *rand.Rand, x []float64) {
			for j := range x {
				x[j] = rng.NormFloat64()
			}
			x[0] = 1
		}},
		{"two identical inputs", 0.99, func(rng *rand.Rand, x []float64) {
			for j := range x {
				x[j] = rng.NormFloat64()
			}
			x[1] = x[0]
		}},
		{"half stuck, short memory", 0.9, func(rng *rand.Rand, x []float64) {
			for j := range x {
				x[j] = 0
				if j%2 == 0 {
					x[j] = rng.NormFloat64()
				}
			}
		}},
		{"half stuck, long memory", 0.999, func(rng *rand.Rand, x []float64) {
			for j := range x {
				x[j] = 0
				if j%2 == 1 {
					x[j] = rng.NormFloat64()
				}
			}
		}},
	}
	coef := []float64{2, 1, -1, 0.5, 0.3, -0.2, 0.7}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := mustRLS(t, features, RLSConfig{Lambda: c.lambda, Delta: 100})
			n := features + 1
			capC := r.Config().MaxTrace / float64(n)
			trBound := capC * (1 - math.Pow(c.lambda, float64(n))) / (1 - c.lambda)
			rng := newRand(11)
			x := make([]float64, features)
			var sse float64
			for s := 0; s < steps; s++ {
				c.row(rng, x)
				y := coef[0] + sigma*rng.NormFloat64()
				for j, v := range x {
					y += coef[j+1] * v
				}
				if s >= steps-1000 {
					p, _ := r.Predict(x)
					sse += (y - p) * (y - p)
				}
				if err := r.Update(x, y); err != nil {
					t.Fatalf("update %d: %v", s, err)
				}
				if s%97 == 0 {
					checkCovariance(t, r)
				}
				if s < n {
					continue
				}
				if p := maxDiag(r); p > capC*(1+1e-12) {
					t.Fatalf("update %d: variance %g above the cap %g", s, p, capC)
				}
				if tr := r.Trace(); tr > trBound*(1+1e-12) {
					t.Fatalf("update %d: trace %g above C(1-λⁿ)/(1-λ) = %g", s, tr, trBound)
				}
			}
			if r.CovarianceResets() != 0 {
				t.Errorf("%d covariance restarts", r.CovarianceResets())
			}
			if rmse := math.Sqrt(sse / 1000); rmse > 1.2*sigma {
				t.Errorf("RMSE over the last 1000 updates %g, noise %g", rmse, sigma)
			}
		})
	}
}

// TestRLSForgettingRecovers: the coefficients of a synthetic series switch at
// step T. With λ = 0.99 the RMSE of the a priori errors over the last 25
// steps is back below 2σ within 400 steps of the switch (315 in this run; the
// old regime's weight decays like λ^k, so recovery takes about
// ln(σ/‖Δβ‖)/ln λ ≈ 330 steps); with λ = 1 it is still above 10σ at T+400.
func TestRLSForgettingRecovers(t *testing.T) {
	t.Parallel()
	const (
		T        = 1000
		sigma    = 0.1
		window   = 25
		maxSteps = 400
	)
	before, after := []float64{1, 2, -1}, []float64{3, -1, 2}
	run := func(lambda float64) (recoveredAt int, rmseAtBound float64) {
		r := mustRLS(t, 2, RLSConfig{Lambda: lambda, Delta: 1000})
		w, err := NewWindowStats(window)
		if err != nil {
			t.Fatal(err)
		}
		rng := newRand(7)
		recoveredAt = -1
		for s := 0; s <= T+maxSteps; s++ {
			b := before
			if s >= T {
				b = after
			}
			x := []float64{rng.NormFloat64(), rng.NormFloat64()}
			y := b[0] + b[1]*x[0] + b[2]*x[1] + sigma*rng.NormFloat64()
			p, err := r.Predict(x)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Add(y, p); err != nil {
				t.Fatal(err)
			}
			if err := r.Update(x, y); err != nil {
				t.Fatal(err)
			}
			if s >= T+window && recoveredAt < 0 && w.RMSE() < 2*sigma {
				recoveredAt = s - T
			}
		}
		return recoveredAt, w.RMSE()
	}
	t.Run("lambda 0.99 recovers", func(t *testing.T) {
		t.Parallel()
		at, _ := run(0.99)
		if at < 0 || at > maxSteps {
			t.Fatalf("recovered after %d steps, want ≤ %d", at, maxSteps)
		}
		t.Logf("recovered %d steps after the switch", at)
	})
	t.Run("lambda 1 stays off", func(t *testing.T) {
		t.Parallel()
		at, rmse := run(1)
		if at >= 0 || rmse < 10*sigma {
			t.Fatalf("λ=1 recovered at %d, RMSE %g at T+%d", at, rmse, maxSteps)
		}
	})
}

func TestRLSReset(t *testing.T) {
	t.Parallel()
	r := mustRLS(t, 2, DefaultRLSConfig())
	fresh := r.State()
	X, y := synth(1, 50, []float64{1, 2, 3}, fill(2, 0), fill(2, 1), 0.1)
	for i := range X {
		if err := r.Update(X[i], y[i]); err != nil {
			t.Fatal(err)
		}
	}
	if r.Updates() != 50 {
		t.Fatalf("Updates = %d", r.Updates())
	}
	r.Reset()
	got := r.State()
	if got.Resets != 1 {
		t.Errorf("Resets = %d, want 1", got.Resets)
	}
	got.Resets = 0
	if !reflect.DeepEqual(got, fresh) {
		t.Errorf("after Reset %+v, want %+v", got, fresh)
	}
}

func TestRLSCovarianceResetOnIndefinite(t *testing.T) {
	t.Parallel()
	// Hand a model a covariance that passes validation but is so close to
	// singular that an update along its null direction goes indefinite is hard
	// to construct portably; instead check the path directly on a state whose
	// P has been made indefinite behind FromState's back.
	r := mustRLS(t, 1, RLSConfig{Lambda: 0.99, Delta: 10})
	r.p[0], r.p[1], r.p[2] = 1, 2, 1 // packed upper triangle of [[1 2] [2 1]]: eigenvalues 3 and -1
	x := []float64{-1}               // φ = (1, -1): φᵀPφ = -2
	if err := r.Update(x, 1); err != nil {
		t.Fatal(err)
	}
	if r.CovarianceResets() != 1 {
		t.Errorf("CovarianceResets = %d, want 1", r.CovarianceResets())
	}
	checkCovariance(t, r)
}

// TestRLSEqualsPriorRegularisedLS checks the identity behind the δ choice: with
// λ = 1 and P0 = δI, RLS minimises Σ(y − βᵀφ)² + ‖β‖²/δ (intercept included),
// whose solution (ΦᵀΦ + I/δ)⁻¹Φᵀy is computed here by Cholesky. A small δ
// makes the prior matter, so this checks the recursion, not just convergence.
func TestRLSEqualsPriorRegularisedLS(t *testing.T) {
	t.Parallel()
	for _, delta := range []float64{0.01, 1, 100} {
		t.Run(fmt.Sprintf("delta %g", delta), func(t *testing.T) {
			t.Parallel()
			X, y := synth(8, 300, []float64{1.5, 2, -1, 0.5}, []float64{3, -2, 1}, fill(3, 1), 0.5)
			r := mustRLS(t, 3, RLSConfig{Lambda: 1, Delta: delta})
			n := 4
			a := mat.NewSymDense(n, nil)
			b := mat.NewVecDense(n, nil)
			for i := 0; i < n; i++ {
				a.SetSym(i, i, 1/delta)
			}
			for i := range X {
				if err := r.Update(X[i], y[i]); err != nil {
					t.Fatal(err)
				}
				phi := append([]float64{1}, X[i]...)
				for j := 0; j < n; j++ {
					b.SetVec(j, b.AtVec(j)+phi[j]*y[i])
					for k := j; k < n; k++ {
						a.SetSym(j, k, a.At(j, k)+phi[j]*phi[k])
					}
				}
			}
			var ch mat.Cholesky
			if !ch.Factorize(a) {
				t.Fatal("normal matrix not positive definite")
			}
			var want mat.VecDense
			if err := ch.SolveVecTo(&want, b); err != nil {
				t.Fatal(err)
			}
			if d := maxRelDiff(r.Coefficients(), want.RawVector().Data); d > 1e-9 {
				t.Errorf("rls %v, regularised LS %v (rel diff %g)", r.Coefficients(), want.RawVector().Data, d)
			}
		})
	}
}

// TestRLSForgettingRecoversWithStuckInputs is the trainer's failure case: some
// inputs sit at 0 for a long stretch (seasonal-naive inputs in a model's first
// week, presence flags of absent weather), then the coefficients of the
// excited inputs change. The stuck directions must not slow the recovery:
// with λ = 0.99 it stays within the 400 steps of TestRLSForgettingRecovers,
// whatever the number of stuck inputs. Under the former whole-matrix trace
// rescaling the bound bit after about 70 steps, forgetting stopped in every
// direction and no case recovered. Afterwards the stuck inputs come alive with
// coefficients of their own, which the model must learn as quickly.
func TestRLSForgettingRecoversWithStuckInputs(t *testing.T) {
	t.Parallel()
	const (
		T        = 3000 // long enough for the unexcited variances to reach any bound
		sigma    = 0.1
		window   = 25
		maxSteps = 400
	)
	before, after := []float64{1, 2, -1}, []float64{3, -1, 2}
	for _, stuck := range []int{0, 1, 4, 14} {
		t.Run(fmt.Sprintf("%d stuck", stuck), func(t *testing.T) {
			t.Parallel()
			r := mustRLS(t, 2+stuck, RLSConfig{Lambda: 0.99, Delta: 1000})
			w, err := NewWindowStats(window)
			if err != nil {
				t.Fatal(err)
			}
			rng := newRand(7)
			x := make([]float64, 2+stuck)
			wake := make([]float64, stuck) // coefficients of the stuck inputs once they come alive
			for j := range wake {
				wake[j] = float64(j%3) - 1
			}
			// step feeds one row; awake selects whether the stuck inputs vary.
			step := func(b []float64, awake bool) {
				t.Helper()
				x[0], x[1] = rng.NormFloat64(), rng.NormFloat64()
				y := b[0] + b[1]*x[0] + b[2]*x[1] + sigma*rng.NormFloat64()
				for j := range wake {
					x[2+j] = 0
					if awake {
						x[2+j] = rng.NormFloat64()
						y += wake[j] * x[2+j]
					}
				}
				p, err := r.Predict(x)
				if err != nil {
					t.Fatal(err)
				}
				if err := w.Add(y, p); err != nil {
					t.Fatal(err)
				}
				if err := r.Update(x, y); err != nil {
					t.Fatal(err)
				}
			}
			// track runs maxSteps steps and returns the first step after
			// which the windowed RMSE is below 2σ, or -1.
			track := func(b []float64, awake bool) int {
				t.Helper()
				at := -1
				for s := 0; s < maxSteps; s++ {
					step(b, awake)
					if s >= window && at < 0 && w.RMSE() < 2*sigma {
						at = s
					}
				}
				return at
			}
			for s := 0; s < T; s++ {
				step(before, false)
			}
			checkCovariance(t, r)
			if at := track(after, false); at < 0 {
				t.Fatalf("regime change: not recovered within %d steps (RMSE %g)", maxSteps, w.RMSE())
			} else {
				t.Logf("regime change: recovered after %d steps", at)
			}
			if stuck == 0 {
				return
			}
			if at := track(after, true); at < 0 {
				t.Fatalf("stuck inputs waking up: not recovered within %d steps (RMSE %g)", maxSteps, w.RMSE())
			} else {
				t.Logf("stuck inputs waking up: recovered after %d steps", at)
			}
			checkCovariance(t, r)
		})
	}
}
