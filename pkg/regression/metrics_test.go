package regression

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// Hand-computed example: actual 2, 4, 0, 5; predicted 1, 5, 1, 5.
// Errors 1, −1, −1, 0: MAE 3/4, RMSE √(3/4). MAPE over the non-zero actuals
// 2, 4, 5: (1/2 + 1/4 + 0)/3 = 25 %. Mean actual 11/4, SST = 0.75² + 1.25² +
// 2.75² + 2.25² = 14.75, R² = 1 − 3/14.75.
// The last three pairs (a window of 3): errors −1, −1, 0: MAE 2/3, RMSE √(2/3),
// MAPE (1/4 + 0)/2 = 12.5 %, mean 3, SST = 1 + 9 + 4 = 14, R² = 1 − 2/14.
var (
	handActual    = []float64{2, 4, 0, 5}
	handPredicted = []float64{1, 5, 1, 5}
	handAll       = ErrorSummary{N: 4, MAE: 0.75, RMSE: math.Sqrt(0.75), MAPE: 25, R2: 1 - 3/14.75}
	handLast3     = ErrorSummary{N: 3, MAE: 2.0 / 3, RMSE: math.Sqrt(2.0 / 3), MAPE: 12.5, R2: 1 - 2.0/14}
)

func closeSummary(t *testing.T, got, want ErrorSummary) {
	t.Helper()
	if got.N != want.N {
		t.Errorf("N = %d, want %d", got.N, want.N)
	}
	for _, f := range []struct {
		name      string
		got, want float64
	}{{"MAE", got.MAE, want.MAE}, {"RMSE", got.RMSE, want.RMSE}, {"MAPE", got.MAPE, want.MAPE}, {"R2", got.R2, want.R2}} {
		if math.IsNaN(f.want) {
			if !math.IsNaN(f.got) {
				t.Errorf("%s = %g, want NaN", f.name, f.got)
			}
			continue
		}
		if math.Abs(f.got-f.want) > 1e-14*math.Max(1, math.Abs(f.want)) {
			t.Errorf("%s = %.17g, want %.17g", f.name, f.got, f.want)
		}
	}
}

func TestErrorStatsHand(t *testing.T) {
	t.Parallel()
	var s ErrorStats
	nan := math.NaN()
	closeSummary(t, s.Summary(), ErrorSummary{MAE: nan, RMSE: nan, MAPE: nan, R2: nan})
	for i := range handActual {
		if err := s.Add(handActual[i], handPredicted[i]); err != nil {
			t.Fatal(err)
		}
	}
	closeSummary(t, s.Summary(), handAll)
	closeSummary(t, ErrorSummary{N: s.N(), MAE: s.MAE(), RMSE: s.RMSE(), MAPE: s.MAPE(), R2: s.R2()}, handAll)
}

func TestWindowStatsHand(t *testing.T) {
	t.Parallel()
	w, err := NewWindowStats(3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range handActual {
		if err := w.Add(handActual[i], handPredicted[i]); err != nil {
			t.Fatal(err)
		}
	}
	closeSummary(t, w.Summary(), handLast3)
	closeSummary(t, ErrorSummary{N: uint64(w.Len()), MAE: w.MAE(), RMSE: w.RMSE(), MAPE: w.MAPE(), R2: w.R2()}, handLast3)
	big, _ := NewWindowStats(10)
	for i := range handActual {
		_ = big.Add(handActual[i], handPredicted[i])
	}
	closeSummary(t, big.Summary(), handAll)
	w.Reset()
	if w.Len() != 0 || !math.IsNaN(w.MAE()) {
		t.Errorf("after Reset Len %d MAE %g", w.Len(), w.MAE())
	}
}

func TestMetricsEdgeCases(t *testing.T) {
	t.Parallel()
	nan := math.NaN()
	cases := []struct {
		name      string
		actual    []float64
		predicted []float64
		want      ErrorSummary
	}{
		{"all zero actuals: no MAPE", []float64{0, 0}, []float64{1, -1}, ErrorSummary{N: 2, MAE: 1, RMSE: 1, MAPE: nan, R2: nan}},
		{"constant actuals: no R2", []float64{3, 3}, []float64{3, 3}, ErrorSummary{N: 2, MAE: 0, RMSE: 0, MAPE: 0, R2: nan}},
		{"single pair", []float64{4}, []float64{2}, ErrorSummary{N: 1, MAE: 2, RMSE: 2, MAPE: 50, R2: nan}},
		{"worse than the mean", []float64{1, 2, 3}, []float64{3, 2, 1}, ErrorSummary{N: 3, MAE: 4.0 / 3, RMSE: math.Sqrt(8.0 / 3), MAPE: 100 * (2 + 0 + 2.0/3) / 3, R2: -3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var s ErrorStats
			w, _ := NewWindowStats(len(c.actual))
			for i := range c.actual {
				if err := s.Add(c.actual[i], c.predicted[i]); err != nil {
					t.Fatal(err)
				}
				if err := w.Add(c.actual[i], c.predicted[i]); err != nil {
					t.Fatal(err)
				}
			}
			closeSummary(t, s.Summary(), c.want)
			closeSummary(t, w.Summary(), c.want)
		})
	}
}

func TestMetricsRejectNonFinite(t *testing.T) {
	t.Parallel()
	var s ErrorStats
	w, _ := NewWindowStats(4)
	_ = s.Add(1, 2)
	_ = w.Add(1, 2)
	for _, p := range [][2]float64{{math.NaN(), 1}, {1, math.Inf(1)}, {math.Inf(-1), 0}} {
		bs, bw := s.State(), w.State()
		if err := s.Add(p[0], p[1]); !errors.Is(err, ErrNonFinite) {
			t.Errorf("ErrorStats.Add(%v) err = %v", p, err)
		}
		if err := w.Add(p[0], p[1]); !errors.Is(err, ErrNonFinite) {
			t.Errorf("WindowStats.Add(%v) err = %v", p, err)
		}
		if !reflect.DeepEqual(bs, s.State()) || !reflect.DeepEqual(bw, w.State()) {
			t.Errorf("rejected pair %v changed state", p)
		}
	}
	for _, size := range []int{0, -1, MaxWindow + 1} {
		if _, err := NewWindowStats(size); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewWindowStats(%d) err = %v", size, err)
		}
	}
}

// TestErrorStatsR2Stable: actuals of order 1e8 with unit variance. The
// Σy² − (Σy)²/n formula loses every digit here; Welford matches the two-pass
// window computation.
func TestErrorStatsR2Stable(t *testing.T) {
	t.Parallel()
	rng := newRand(4)
	var s ErrorStats
	w, _ := NewWindowStats(10_000)
	for i := 0; i < 10_000; i++ {
		a := 1e8 + rng.NormFloat64()
		p := a + 0.5*rng.NormFloat64()
		_ = s.Add(a, p)
		_ = w.Add(a, p)
	}
	got, want := s.R2(), w.R2()
	if math.Abs(got-want) > 1e-8 || math.Abs(want-0.75) > 0.02 {
		t.Errorf("R2 streaming %g, two-pass %g, expected ≈ 0.75", got, want)
	}
}

func TestMetricsStateRoundTrip(t *testing.T) {
	t.Parallel()
	rng := newRand(5)
	var s ErrorStats
	w, _ := NewWindowStats(37)
	pairs := make([][2]float64, 500)
	for i := range pairs {
		a := math.Round(100 * rng.Float64()) // includes zero actuals
		pairs[i] = [2]float64{a, a + rng.NormFloat64()}
	}
	for _, p := range pairs[:250] {
		_ = s.Add(p[0], p[1])
		_ = w.Add(p[0], p[1])
	}
	s2, err := ErrorStatsFromState(s.State())
	if err != nil {
		t.Fatal(err)
	}
	w2, err := WindowStatsFromState(w.State())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(w2.State(), w.State()) {
		t.Fatal("window state round trip differs")
	}
	for _, p := range pairs[250:] {
		_ = s.Add(p[0], p[1])
		_ = s2.Add(p[0], p[1])
		_ = w.Add(p[0], p[1])
		_ = w2.Add(p[0], p[1])
		if s.Summary() != s2.Summary() || w.Summary() != w2.Summary() {
			t.Fatalf("summaries diverged:\n%+v\n%+v\n%+v\n%+v", s.Summary(), s2.Summary(), w.Summary(), w2.Summary())
		}
	}
	bad := []struct {
		name string
		err  error
	}{
		{"negative sum", func() error { _, e := ErrorStatsFromState(ErrorStatsState{N: 1, SumAbsError: -1}); return e }()},
		{"NaN mean", func() error { _, e := ErrorStatsFromState(ErrorStatsState{MeanActual: math.NaN()}); return e }()},
		{"percent count", func() error { _, e := ErrorStatsFromState(ErrorStatsState{N: 1, PercentN: 2}); return e }()},
		{"window size", func() error { _, e := WindowStatsFromState(WindowStatsState{Size: 0}); return e }()},
		{"window overfull", func() error {
			_, e := WindowStatsFromState(WindowStatsState{Size: 1, Actual: []float64{1, 2}, Predicted: []float64{1, 2}})
			return e
		}()},
		{"window lengths", func() error {
			_, e := WindowStatsFromState(WindowStatsState{Size: 3, Actual: []float64{1, 2}, Predicted: []float64{1}})
			return e
		}()},
		{"window NaN", func() error {
			_, e := WindowStatsFromState(WindowStatsState{Size: 3, Actual: []float64{math.NaN()}, Predicted: []float64{1}})
			return e
		}()},
	}
	for _, b := range bad {
		if !errors.Is(b.err, ErrInvalidState) {
			t.Errorf("%s: err = %v, want ErrInvalidState", b.name, b.err)
		}
	}
}

// TestWindowStatsMAEMatchesSummary checks that the MAE shortcut equals Summary's, bit for bit, as the window
// fills, wraps around and is reset: promotion decisions must not depend on which one is called.
func TestWindowStatsMAEMatchesSummary(t *testing.T) {
	t.Parallel()
	w, err := NewWindowStats(7)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 40 {
		if i == 25 {
			w.Reset()
		}
		if got, want := w.MAE(), w.Summary().MAE; math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Fatalf("after %d adds: MAE %v, Summary().MAE %v", i, got, want)
		}
		if err := w.Add(rng.NormFloat64()*100, rng.NormFloat64()*100); err != nil {
			t.Fatal(err)
		}
	}
}
