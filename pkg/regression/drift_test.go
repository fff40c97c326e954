package regression

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

// absNoise returns |N(0,1)| samples (mean ≈ 0.80), like absolute errors of a
// well-specified model, shifted by shift from sample at onwards.
func absNoise(seed uint64, n, at int, shift float64) []float64 {
	rng := newRand(seed)
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Abs(rng.NormFloat64())
		if i >= at {
			out[i] += shift
		}
	}
	return out
}

func TestPageHinkley(t *testing.T) {
	t.Parallel()
	cfg := PageHinkleyConfig{Delta: 0.05, Threshold: 50, MinSamples: 30}
	down := cfg
	down.Direction = DetectDecrease
	both := cfg
	both.Direction = DetectBoth
	const T = 5000
	cases := []struct {
		name     string
		cfg      PageHinkleyConfig
		shift    float64
		wantBy   int // alarm at T+wantBy at the latest; −1: no alarm at all
		maxAlarm int
	}{
		// Expected delay Threshold/(shift − Delta) ≈ 53 samples.
		{"stationary noise", cfg, 0, -1, 0},
		{"mean increase", cfg, 1, 100, 1},
		{"decrease ignored by increase detector", cfg, -0.6, -1, 0},
		{"decrease detector", down, -0.6, 150, 1},
		{"both directions, increase", both, 1, 100, 1},
		{"both directions, decrease", both, -0.6, 150, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for seed := uint64(1); seed <= 5; seed++ {
				at := T
				if c.shift == 0 {
					at = math.MaxInt
				}
				xs := absNoise(seed, 20_000, at, c.shift)
				p, err := NewPageHinkley(c.cfg)
				if err != nil {
					t.Fatal(err)
				}
				first := -1
				for i, x := range xs {
					drift, err := p.Add(x)
					if err != nil {
						t.Fatal(err)
					}
					if drift && first < 0 {
						first = i
					}
					if i == T+1000 { // judge the first change only
						break
					}
				}
				switch {
				case c.wantBy < 0 && first >= 0:
					t.Errorf("seed %d: false alarm at %d", seed, first)
				case c.wantBy >= 0 && (first < T || first > T+c.wantBy):
					t.Errorf("seed %d: alarm at %d, want in [%d, %d]", seed, first, T, T+c.wantBy)
				}
				if p.Drifts() > uint64(c.maxAlarm) {
					t.Errorf("seed %d: %d alarms, want ≤ %d", seed, p.Drifts(), c.maxAlarm)
				}
			}
		})
	}
}

func TestPageHinkleyMinSamplesAndReset(t *testing.T) {
	t.Parallel()
	p, err := NewPageHinkley(PageHinkleyConfig{Threshold: 1, MinSamples: 10})
	if err != nil {
		t.Fatal(err)
	}
	// 0,0,0,10,10,...: the statistic exceeds 1 at sample 4 but MinSamples holds
	// the alarm until sample 10.
	for i := 1; i <= 10; i++ {
		x := 0.0
		if i > 3 {
			x = 10
		}
		drift, err := p.Add(x)
		if err != nil {
			t.Fatal(err)
		}
		if drift != (i == 10) {
			t.Fatalf("sample %d: drift %v", i, drift)
		}
	}
	if p.N() != 0 || p.Statistic() != 0 || p.Drifts() != 1 {
		t.Errorf("after alarm N %d statistic %g drifts %d, want reset with 1 drift", p.N(), p.Statistic(), p.Drifts())
	}
}

func TestPageHinkleyValidationAndState(t *testing.T) {
	t.Parallel()
	bad := []struct {
		name string
		cfg  PageHinkleyConfig
	}{
		{"zero threshold", PageHinkleyConfig{}},
		{"negative delta", PageHinkleyConfig{Delta: -1, Threshold: 1}},
		{"NaN threshold", PageHinkleyConfig{Threshold: math.NaN()}},
		{"Inf threshold", PageHinkleyConfig{Threshold: math.Inf(1)}},
		{"unknown direction", PageHinkleyConfig{Threshold: 1, Direction: 7}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewPageHinkley(c.cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
	t.Run("round trip", func(t *testing.T) {
		t.Parallel()
		p, _ := NewPageHinkley(PageHinkleyConfig{Delta: 0.05, Threshold: 20, Direction: DetectBoth})
		xs := absNoise(9, 4000, 2000, 0.7)
		for _, x := range xs[:1000] {
			_, _ = p.Add(x)
		}
		q, err := PageHinkleyFromState(p.State())
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range xs[1000:] {
			d1, _ := p.Add(x)
			d2, _ := q.Add(x)
			if d1 != d2 || !reflect.DeepEqual(p.State(), q.State()) {
				t.Fatalf("sample %d: restored detector diverged", 1000+i)
			}
		}
		if p.Drifts() == 0 {
			t.Error("no drift detected in the round-trip stream")
		}
		if _, err := p.Add(math.NaN()); !errors.Is(err, ErrNonFinite) {
			t.Errorf("Add(NaN) err = %v", err)
		}
		st := p.State()
		st.MinUp = 1
		if _, err := PageHinkleyFromState(st); !errors.Is(err, ErrInvalidState) {
			t.Errorf("inconsistent state err = %v", err)
		}
		st = p.State()
		st.Mean = math.Inf(1)
		if _, err := PageHinkleyFromState(st); !errors.Is(err, ErrInvalidState) {
			t.Errorf("Inf mean err = %v", err)
		}
	})
}
