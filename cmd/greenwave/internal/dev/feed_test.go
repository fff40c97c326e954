package dev

import (
	"os"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/kafkatest"
)

// TestMain fails the package when a test leaves a goroutine behind.
func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }

func TestDueAt(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 29, 12, 0, 30, 0, time.UTC)
	simStart := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		speed     float64
		wallStart time.Time
		at        time.Time
		want      time.Time
	}{
		{"first tick at once", 600, now, simStart, now},
		{"ten simulated minutes a second", 600, now, simStart.Add(10 * time.Minute), now.Add(time.Second)},
		// 72 h at 600x take 7m12s; then the interval that started 30 s ago may go 30 s from now.
		{"real time once caught up", 600, now.Add(-7*time.Minute - 12*time.Second), now.Add(-30 * time.Second), now.Add(30 * time.Second)},
		{"never before the interval is over", 1e6, now, now, now.Add(time.Minute)},
		{"max speed in the past", 0, now, simStart.Add(24 * time.Hour), now},
		{"max speed at now", 0, now, now, now.Add(time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &feeder{speed: tc.speed, interval: time.Minute}
			if got := f.dueAt(tc.wallStart, simStart, tc.at); !got.Equal(tc.want) {
				t.Errorf("dueAt = %v, want %v", got, tc.want)
			}
		})
	}
}
