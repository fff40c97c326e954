package regression

import (
	"fmt"
	"testing"
)

func benchmarkRLSUpdate(b *testing.B, features int) {
	r := mustRLS(b, features, DefaultRLSConfig())
	const rows = 1024 // cycled, so data generation is outside the loop
	coef := make([]float64, features+1)
	for i := range coef {
		coef[i] = float64(i%5) - 2
	}
	X, y := synth(1, rows, coef, fill(features, 0), fill(features, 1), 0.1)
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
func BenchmarkRLSUpdate16(b *testing.B) { benchmarkRLSUpdate(b, 16) }

// BenchmarkRLSUpdate32 shows the O(n²) scaling.
func BenchmarkRLSUpdate32(b *testing.B) { benchmarkRLSUpdate(b, 32) }

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
