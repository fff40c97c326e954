package sumo

import (
	"fmt"
	"time"

	"github.com/greenwave-city/greenwave/pkg/train"
)

// stackEnv is the services' configuration for the loop's windows (see docs/sumo.md, "Short windows"): the
// settings whose defaults are made for 5-minute windows and hours of event time, scaled to the topology's
// window. A setting the bridge's own environment already has is left to it (getenv returns it non-empty), so an
// operator can try other values.
//   - CLEANER_ALLOWED_LATENESS 0s: lock-step closes each window with the next one's readings, not minutes later.
//   - TRAINER_HORIZONS, PREDICTOR_HORIZONS one window: the forecast of the window the plan will run in. The
//     default horizons (15 min to 1 h) are no multiple of a 2-minute window or, at 30 min and 1 h, delay every
//     model's first labels by that much.
//   - TRAINER_PUBLISH_INTERVAL 0s: a served snapshot after every window, so a model is served as soon as it can
//     forecast and with its newest coefficients; the default (12 h of event time) is longer than the scenarios.
//   - PREDICTOR_MAX_MODEL_AGE 1s (less than a window): a frame is predicted with the snapshot of the trainer
//     after that same frame (the predictor waits for it, PREDICTOR_MODEL_WAIT), never with the one before, so a
//     run stays deterministic however the trainer and the predictor race.
//   - SIGNAL_PLAN_HORIZON one window: the default (15 min) picks the nearest horizon, which is this one anyway;
//     saying it keeps the choice explicit.
func stackEnv(window time.Duration, getenv func(string) string) []string {
	w := train.FormatHorizons([]time.Duration{window})
	settings := [][2]string{
		{"CLEANER_ALLOWED_LATENESS", "0s"},
		{"TRAINER_HORIZONS", w},
		{"PREDICTOR_HORIZONS", w},
		{"TRAINER_PUBLISH_INTERVAL", "0s"},
		{"PREDICTOR_MAX_MODEL_AGE", "1s"},
		{"SIGNAL_PLAN_HORIZON", w},
	}
	var env []string
	for _, kv := range settings {
		if getenv(kv[0]) == "" {
			env = append(env, fmt.Sprintf("%s=%s", kv[0], kv[1]))
		}
	}
	return env
}
