package sumo

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

func TestStackEnv(t *testing.T) {
	tests := []struct {
		name   string
		window time.Duration
		set    map[string]string // the bridge's own environment
		want   []string
	}{
		{name: "two-minute windows", window: 2 * time.Minute, want: []string{
			"CLEANER_ALLOWED_LATENESS=0s", "TRAINER_HORIZONS=2m", "PREDICTOR_HORIZONS=2m",
			"TRAINER_PUBLISH_INTERVAL=0s", "PREDICTOR_MAX_MODEL_AGE=1s", "SIGNAL_PLAN_HORIZON=2m"}},
		{name: "one-minute windows", window: time.Minute, want: []string{
			"CLEANER_ALLOWED_LATENESS=0s", "TRAINER_HORIZONS=1m", "PREDICTOR_HORIZONS=1m",
			"TRAINER_PUBLISH_INTERVAL=0s", "PREDICTOR_MAX_MODEL_AGE=1s", "SIGNAL_PLAN_HORIZON=1m"}},
		{name: "the operator's settings stay", window: 2 * time.Minute,
			set:  map[string]string{"CLEANER_ALLOWED_LATENESS": "30s", "TRAINER_HORIZONS": "2m,10m", "PREDICTOR_HORIZONS": "2m,10m"},
			want: []string{"TRAINER_PUBLISH_INTERVAL=0s", "PREDICTOR_MAX_MODEL_AGE=1s", "SIGNAL_PLAN_HORIZON=2m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := stackEnv(tt.window, func(k string) string { return tt.set[k] })
			if !slices.Equal(got, tt.want) {
				t.Errorf("stackEnv(%v) = %q, want %q", tt.window, got, tt.want)
			}
		})
	}
}

func TestWarmup(t *testing.T) {
	epoch := time.Date(2026, time.January, 5, 7, 0, 0, 0, time.UTC)
	plan := func(r greenwavev1.PlanReason, at time.Duration) *greenwavev1.SignalPlan {
		return &greenwavev1.SignalPlan{Reason: r, ValidFrom: timestamppb.New(epoch.Add(at))}
	}
	const (
		predictive = greenwavev1.PlanReason_PLAN_REASON_PREDICTIVE
		timeOfDay  = greenwavev1.PlanReason_PLAN_REASON_TIME_OF_DAY
	)
	tests := []struct {
		name   string
		plans  []*greenwavev1.SignalPlan
		want   time.Duration
		wantOK bool
	}{
		{name: "none", wantOK: false},
		{name: "fallbacks only", plans: []*greenwavev1.SignalPlan{plan(timeOfDay, 2*time.Minute), plan(timeOfDay, 4*time.Minute)}},
		{name: "the first predictive", plans: []*greenwavev1.SignalPlan{plan(timeOfDay, 2*time.Minute),
			plan(predictive, 88*time.Minute), plan(predictive, 90*time.Minute)}, want: 88 * time.Minute, wantOK: true},
		{name: "out of order", plans: []*greenwavev1.SignalPlan{plan(predictive, 90*time.Minute), plan(predictive, 88*time.Minute)},
			want: 88 * time.Minute, wantOK: true},
		{name: "at simulated time 0", plans: []*greenwavev1.SignalPlan{plan(predictive, 0)}, want: 0, wantOK: true},
		{name: "no valid_from", plans: []*greenwavev1.SignalPlan{{Reason: predictive}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := warmup{epoch: epoch}
			for _, p := range tt.plans {
				w.see(p)
			}
			if got, ok := w.firstPredictive(); got != tt.want || ok != tt.wantOK {
				t.Errorf("firstPredictive() = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
