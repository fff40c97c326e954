package main

import (
	"testing"
	"time"
)

func TestPct(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	for _, tc := range []struct{ p, want float64 }{{50, 5}, {99, 10}, {100, 10}, {10, 1}, {0, 1}} {
		if got := pct(xs, tc.p); got != tc.want {
			t.Errorf("pct(%v) = %v, want %v (nearest rank)", tc.p, got, tc.want)
		}
	}
	if got := pct(nil, 50); got != 0 {
		t.Errorf("pct of nothing = %v, want 0", got)
	}
}

func TestReadingsPlausible(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	rs := readings(3, 5, at, 10)
	if len(rs) != 8 {
		t.Fatalf("%d readings, want 8 (2 intersections × 4 detectors)", len(rs))
	}
	for _, r := range rs {
		// The cleaner rejects flows above 1.5 × capacity (1 800 veh/h on one lane).
		if flow := r.GetCount() * 3600 / float64(r.GetIntervalS()); flow <= 0 || flow > 1.5*1800 {
			t.Errorf("%s: flow %v veh/h outside (0, 2700]", r.GetDetectorId(), flow)
		}
		if !r.GetObservedAt().AsTime().Equal(at) {
			t.Errorf("%s observed at %v, want %v", r.GetDetectorId(), r.GetObservedAt().AsTime(), at)
		}
	}
}
