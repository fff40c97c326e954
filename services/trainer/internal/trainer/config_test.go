package trainer

import (
	"testing"

	"github.com/greenwave-city/greenwave/pkg/app/apptest"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string // substrings of the error; none means valid
	}{
		{name: "defaults"},
		{name: "short session timeout for tests", env: map[string]string{"TRAINER_SESSION_TIMEOUT": "1s"}},
		{name: "every problem named", env: map[string]string{
			"TRAINER_SESSION_TIMEOUT": "0s", "TRAINER_MAX_BATCH": "0", "TRAINER_SUBSCRIBER_BUFFER": "0", "TRAINER_HORIZONS": "15m,soon",
		}, want: []string{"TRAINER_SESSION_TIMEOUT", "TRAINER_MAX_BATCH", "TRAINER_SUBSCRIBER_BUFFER", "TRAINER_HORIZONS"}},
		{name: "horizon not a multiple of the window", env: map[string]string{"TRAINER_HORIZONS": "7m"}, want: []string{"TRAINER_HORIZONS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var cfg Config
			apptest.CheckLoad(t, &cfg, tc.env, tc.want...)
		})
	}
}
