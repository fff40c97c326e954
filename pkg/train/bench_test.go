package train

import (
	"testing"
	"time"
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
