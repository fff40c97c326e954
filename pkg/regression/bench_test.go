package regression

import (
	"fmt"
	"testing"
)

// benchmarkRLSUpdate measures Update on random rows whose last stuck features
// are always 0, so that with stuck > 0 the wind-up guard clamps a variance on
// every update (its worst steady state).
func benchmarkRLSUpdate(b *testing.B, features, stuck int) {
	r := mustRLS(b, features, DefaultRLSConfig())
	const rows = 1024 // cycled, so data generation is outside the loop
	coef := make([]float64, features+1)
	for i := range coef {
		coef[i] = float64(i%5) - 2
	}
	X, y := synth(1, rows, coef, fill(features, 0), fill(features, 1), 0.1)
	for _, row := range X {
		clear(row[features-stuck:])
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if err := r.Update(X[i], y[i]); err != nil {
			b.Fatal(err)
		}
		i = (i + 1) % rows
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
}

// BenchmarkRLSUpdate16 is the trainer's target: ≥ 1e6 updates/s on one core.
func BenchmarkRLSUpdate16(b *testing.B) { benchmarkRLSUpdate(b, 16, 0) }

// BenchmarkRLSUpdate16Stuck4 is the same target with 4 of the 16 features
// stuck at 0: the wind-up guard clamps on every update.
func BenchmarkRLSUpdate16Stuck4(b *testing.B) { benchmarkRLSUpdate(b, 16, 4) }

// BenchmarkRLSUpdate32 shows the O(n²) scaling.
func BenchmarkRLSUpdate32(b *testing.B) { benchmarkRLSUpdate(b, 32, 0) }

func BenchmarkRLSPredict(b *testing.B) {
	for _, features := range []int{16, 32} {
		b.Run(fmt.Sprintf("features=%d", features), func(b *testing.B) {
			r := mustRLS(b, features, DefaultRLSConfig())
			X, y := synth(1, 1024, fill(features+1, 1), fill(features, 0), fill(features, 1), 0.1)
			for i := range X {
				_ = r.Update(X[i], y[i])
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := r.PredictiveVariance(X[i]); err != nil {
					b.Fatal(err)
				}
				i = (i + 1) % len(X)
			}
		})
	}
}
