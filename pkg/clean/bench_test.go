package clean

import "testing"

// BenchmarkCleanReadings measures the whole per-reading path (checks, dedup, windows, outlier filter, gap
// filling, features, weather join, upstream lookups) on one-minute readings of three detectors, and reports
// readings/s.
func BenchmarkCleanReadings(b *testing.B) {
	const minutes = 7 * 24 * 60
	rs := fixture(minutes, 9)
	wl := testWeather()
	cfg := DefaultConfig()
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	newState := func() *Intersection {
		s, _ := NewIntersection(testTopo(), cfg)
		s.SetUpstream(States{s.in.ID: s}) // the test topology names upstream approaches of its own and of an absent intersection
		return s
	}
	s := newState()
	for b.Loop() {
		if n%len(rs) == 0 && n > 0 {
			b.StopTimer()
			s = newState()
			b.StartTimer()
		}
		s.Add(rs[n%len(rs)], wl)
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
}

// BenchmarkState measures taking the state of an intersection with a full week of history (pkg/wire measures
// its encoding).
func BenchmarkState(b *testing.B) {
	s, _ := NewIntersection(testTopo(), DefaultConfig())
	for _, r := range fixture(7*24*60, 9) {
		s.Add(r, nil)
	}
	for b.Loop() {
		_ = s.State()
	}
}
