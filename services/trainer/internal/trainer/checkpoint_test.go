package trainer

import (
	"math"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/train"
)

// TestCheckpointDue: checkpoints follow event time (UTC-aligned multiples of the interval); a quiet partition
// is checkpointed only when its input is historical.
func TestCheckpointDue(t *testing.T) {
	t.Parallel()
	day := int64(24 * 3600)
	now := time.Unix(100*day+3600, 0)
	tests := []struct {
		name                    string
		every, idleAfter        time.Duration
		eventTime, checkpointed int64
		idle                    time.Duration
		want                    bool
	}{
		{"every batch", 0, 0, 5, 5, 0, true},
		{"first window", 24 * time.Hour, 0, 10*day + 300, 0, 0, true},
		{"same day", 24 * time.Hour, 0, 10*day + 7200, 10*day + 300, 0, false},
		{"midnight crossed", 24 * time.Hour, 0, 11 * day, 10*day + 300, 0, true},
		{"replay idle", 24 * time.Hour, 10 * time.Second, 10*day + 7200, 10*day + 300, 10 * time.Second, true},
		{"replay not idle long enough", 24 * time.Hour, 10 * time.Second, 10*day + 7200, 10*day + 300, 9 * time.Second, false},
		{"replay idle, idle checkpoints off", 24 * time.Hour, 0, 10*day + 7200, 10*day + 300, time.Hour, false},
		{"live idle", 24 * time.Hour, 10 * time.Second, 100*day + 1800, 100*day + 300, time.Hour, false},
	}
	for _, tc := range tests {
		p := &partition{checkpointEvery: tc.every, checkpointIdle: tc.idleAfter, eventTime: tc.eventTime, checkpointed: tc.checkpointed}
		if got := p.CheckpointDue(now, tc.idle); got != tc.want {
			t.Errorf("%s: CheckpointDue = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestPublishDue: a learner's served snapshots follow its own event time — its first window, the first window
// it can forecast after one it could not, and each UTC-aligned multiple of the interval.
func TestPublishDue(t *testing.T) {
	t.Parallel()
	day := int64(24 * 3600)
	forecast := train.Update{Horizons: []train.HorizonUpdate{{Forecast: 1}, {Forecast: 2}}}
	warming := train.Update{Horizons: []train.HorizonUpdate{{Forecast: 1}, {Forecast: math.NaN()}}}
	tests := []struct {
		name  string
		every time.Duration
		last  *servedMark // nil: never published
		end   int64
		upd   train.Update
		want  bool
	}{
		{"first window", 12 * time.Hour, nil, 10*day + 900, warming, true},
		{"same half day, warming up", 12 * time.Hour, &servedMark{end: 10 * day, ready: false}, 10*day + 900, warming, false},
		{"first forecast", 12 * time.Hour, &servedMark{end: 10 * day, ready: false}, 10*day + 900, forecast, true},
		{"same half day, forecasting", 12 * time.Hour, &servedMark{end: 10*day + 900, ready: true}, 10*day + 1800, forecast, false},
		{"noon crossed", 12 * time.Hour, &servedMark{end: 10*day + 900, ready: true}, 10*day + day/2, forecast, true},
		{"no forecast after a reset does not publish", 12 * time.Hour, &servedMark{end: 10*day + 900, ready: true}, 10*day + 1800, warming, false},
		{"every window", 0, &servedMark{end: 10*day + 900, ready: true}, 10*day + 1800, forecast, true},
	}
	for _, tc := range tests {
		p := &partition{publishEvery: tc.every, served: map[string]servedMark{}}
		if tc.last != nil {
			p.served["I-1/A0"] = *tc.last
		}
		if got := p.publishDue("I-1/A0", tc.end, tc.upd); got != tc.want {
			t.Errorf("%s: publishDue = %v, want %v", tc.name, got, tc.want)
		}
	}
}
