package train

import (
	"errors"
	"math"
	"testing"
)

// TestIntervalCoverageCounts checks, label by label, that the interval stored with a pending input is the one
// scored against its label, and that a well-specified model's coverage is close to the nominal confidence.
func TestIntervalCoverageCounts(t *testing.T) {
	t.Parallel()
	cfg := tinyConfig()
	cfg.RecentWindow = 50
	l := mustLearner(t, tinyNames, cfg)
	rng := newRand(11)
	var wantHits, wantN uint64
	var recent []bool
	var lo, hi *float64 // the interval issued with the previous window's forecast
	const windows = 3000
	for i := range windows {
		a, b := rng.Float64(), rng.Float64()
		y := 1000 * (0.3 + 0.2*a - 0.1*b + 0.02*rng.NormFloat64())
		applyAt(t, l, i, []float64{a, b}, obs{flow: y})
		if lo != nil {
			hit := *lo <= y && y <= *hi
			wantN++
			if hit {
				wantHits++
			}
			recent = append(recent, hit)
			if len(recent) > cfg.RecentWindow {
				recent = recent[1:]
			}
		}
		s := l.Snapshots()[0]
		cov := s.IntervalCoverage
		if cov.Confidence != 0.9 || cov.Hits != wantHits || cov.N != wantN || len(cov.Recent) != len(recent) {
			t.Fatalf("window %d: coverage %v, want %d of %d with %d recent", i, cov, wantHits, wantN, len(recent))
		}
		for k := range recent {
			if cov.Recent[k] != recent[k] {
				t.Fatalf("window %d: recent %v, want %v", i, cov.Recent, recent)
			}
		}
		p := s.Pending[len(s.Pending)-1]
		lo, hi = p.IntervalLower, p.IntervalUpper
		if (lo == nil) != (hi == nil) || (lo != nil && !(*lo < *hi)) {
			t.Fatalf("window %d: pending interval [%v, %v]", i, lo, hi)
		}
	}
	c, ok := CoverageOf(l.Snapshots()[0])
	if !ok || c.N < windows-20 { // the first labels come before the noise estimate (inputs + 2 updates)
		t.Fatalf("coverage %+v: too few labels scored", c)
	}
	if got := c.Cumulative(); math.Abs(got-0.9) > 0.03 {
		t.Errorf("cumulative coverage %.3f of a well-specified model, want 0.90 ± 0.03", got)
	}
	if c.RecentN != cfg.RecentWindow || math.IsNaN(c.Recent()) {
		t.Errorf("recent coverage %+v, want %d labels", c, cfg.RecentWindow)
	}
}

func TestIntervalCoverageRestore(t *testing.T) {
	t.Parallel()
	cfg, frames := restartFixture()
	l := mustLearner(t, tinyNames, cfg)
	for _, fv := range frames[:40] {
		mustApply(t, l, fv[0].(frameT), fv[1].(vectorT))
	}
	if l.Snapshots()[0].IntervalCoverage.N == 0 {
		t.Fatal("fixture scores no interval")
	}
	t.Run("other confidence starts over", func(t *testing.T) {
		t.Parallel()
		c := cfg
		c.IntervalConfidence = 0.8
		r, err := RestoreLearner(testIntersection, testApproach, roundTrip(t, l.Snapshots()), c)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		for _, s := range r.Snapshots() {
			if cov := s.IntervalCoverage; cov.Confidence != 0.8 || cov.N != 0 || len(cov.Recent) != 0 {
				t.Fatalf("%s: coverage %v, want empty at 0.8", s.ModelID, cov)
			}
			for i := range s.Pending {
				p := &s.Pending[i]
				if p.IntervalLower != nil {
					t.Fatalf("%s: pending interval at the old confidence kept", s.ModelID)
				}
			}
		}
	})
	t.Run("snapshot without coverage", func(t *testing.T) {
		t.Parallel()
		snaps := roundTrip(t, l.Snapshots())
		for _, s := range snaps {
			s.IntervalCoverage = nil
		}
		r, err := RestoreLearner(testIntersection, testApproach, snaps, cfg)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		if cov := r.Snapshots()[0].IntervalCoverage; cov.N != 0 {
			t.Fatalf("coverage %v, want empty", cov)
		}
	})
	bad := []struct {
		name   string
		mutate func(s []*snapT)
	}{
		{"hits exceed n", func(s []*snapT) { s[0].IntervalCoverage.Hits = s[0].IntervalCoverage.N + 1 }},
		{"recent exceeds window", func(s []*snapT) {
			s[0].IntervalCoverage.Recent = make([]bool, cfg.RecentWindow+1)
			s[0].IntervalCoverage.N += uint64(cfg.RecentWindow + 1)
		}},
		{"half an interval", func(s []*snapT) {
			for i := range s[0].Pending {
				p := &s[0].Pending[i]
				p.IntervalUpper = nil
			}
		}},
		{"inverted interval", func(s []*snapT) {
			for i := range s[0].Pending {
				p := &s[0].Pending[i]
				lo, hi := 2.0, 1.0
				p.IntervalLower, p.IntervalUpper = &lo, &hi
			}
		}},
		{"NaN bound", func(s []*snapT) {
			for i := range s[0].Pending {
				p := &s[0].Pending[i]
				lo, hi := math.NaN(), 1.0
				p.IntervalLower, p.IntervalUpper = &lo, &hi
			}
		}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			snaps := roundTrip(t, l.Snapshots())
			tc.mutate(snaps)
			if _, err := RestoreLearner(testIntersection, testApproach, snaps, cfg); !errors.Is(err, ErrInvalidSnapshot) {
				t.Fatalf("error %v, want ErrInvalidSnapshot", err)
			}
		})
	}
	if err := (func() error { c := cfg; c.IntervalConfidence = 1; return c.Validate() })(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("confidence 1 accepted: %v", err)
	}
}
