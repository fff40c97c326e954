package train

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/regression"
)

const weekDur = week * time.Second

// BenchmarkLearnerApply measures one Apply with the default configuration: 3 horizons × 8 candidates × the
// inputs (features.Names without "bias", then the seasonal inputs), on the synthetic traffic series.
func BenchmarkLearnerApply(b *testing.B) {
	s := newTrafficSeries(7, 1)
	cfg := DefaultConfig()
	l, err := NewLearner(testIntersection, testApproach, s.names, 1, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if n, want := len(l.FeatureNames()), len(s.names)-1+numSeasonal; n != want {
		b.Fatalf("%d features, want %d", n, want)
	}
	// Warm up past the horizons so that every Apply labels, trains and forecasts.
	for _, f := range s.frames[:24] {
		if _, err := l.Apply(f, f.Approaches[0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		f := s.frames[24+i%(len(s.frames)-24)]
		// Shift past the series each lap so that windows stay newer than the last applied one.
		lap := i / (len(s.frames) - 24)
		f.WindowStart = f.WindowStart.Add(weekDur * time.Duration(lap))
		f.WindowEnd = f.WindowEnd.Add(weekDur * time.Duration(lap))
		if _, err := l.Apply(f, f.Approaches[0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkRLSUpdateDeployed measures regression.RLS.Update at the input count a deployed model has: the
// learner's inputs for the real feature layout (features.Names without "bias", then the seasonal inputs), with
// the default RLS configuration as regression's BenchmarkRLSUpdate16 and 32, on random rows of unit scale. It
// reports updates/s and the input count (inputs).
func BenchmarkRLSUpdateDeployed(b *testing.B) {
	l, err := NewLearner(testIntersection, testApproach, features.Names(), features.SetVersion, DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	n := len(l.FeatureNames())
	r, err := regression.NewRLS(n, regression.DefaultRLSConfig())
	if err != nil {
		b.Fatal(err)
	}
	const rows = 1024 // cycled, so data generation is outside the loop
	rng := rand.New(rand.NewPCG(1, 2))
	X, y := make([][]float64, rows), make([]float64, rows)
	for i := range X {
		X[i] = make([]float64, n)
		for j := range X[i] {
			X[i][j] = rng.NormFloat64()
			y[i] += float64(j%5-2) * X[i][j]
		}
		y[i] += 0.1 * rng.NormFloat64()
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := r.Update(X[i], y[i]); err != nil {
			b.Fatal(err)
		}
		i = (i + 1) % rows
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
	b.ReportMetric(float64(n), "inputs")
}

// BenchmarkLearnerMemory measures the live heap one approach's learner holds: it builds learners for the
// deployed feature layout (features.Names, default configuration: 3 horizons × 8 candidates), applies a day of
// synthetic windows to each, so that the pending inputs, recent windows and history hold what a running learner
// holds, and reports the heap in use after a GC (runtime.MemStats.HeapAlloc) divided by the learners. The
// trainer's live heap is about this times its approaches (docs/performance.md, Trainer memory).
func BenchmarkLearnerMemory(b *testing.B) {
	const learners = 64
	s := newTrafficSeries(1, 3)
	names := features.Names()
	frames := make([]features.Frame, len(s.frames))
	for i, f := range s.frames {
		// The deployed layout: features.Names with its version, the series' values are built by features.Build.
		f.Names, f.FeatureSetVersion = names, features.SetVersion
		frames[i] = f
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for b.Loop() {
		before := heap()
		ls := make([]*Learner, learners)
		for i := range ls {
			l, err := NewLearner(testIntersection, testApproach, names, features.SetVersion, DefaultConfig())
			if err != nil {
				b.Fatal(err)
			}
			for _, f := range frames {
				if _, err := l.Apply(f, f.Approaches[0]); err != nil {
					b.Fatal(err)
				}
			}
			ls[i] = l
		}
		used := float64(heap() - before)
		runtime.KeepAlive(ls)
		b.ReportMetric(used/learners, "heap-bytes/approach")
	}
	b.ReportMetric(0, "ns/op")
}
