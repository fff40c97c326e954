package cleaner

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
		{name: "short session timeout for tests", env: map[string]string{"CLEANER_SESSION_TIMEOUT": "2s"}},
		{name: "every problem named", env: map[string]string{
			"CLEANER_SESSION_TIMEOUT": "0s", "CLEANER_MAX_BATCH": "0", "CLEANER_TIME_ZONE": "Mars/Olympus",
			"CLEANER_HOLIDAYS": "2026-13-01", "CLEANER_IDLE_TIMEOUT": "-1s", "CLEANER_CHECKPOINT_INTERVAL": "-1s",
		}, want: []string{"CLEANER_SESSION_TIMEOUT", "CLEANER_MAX_BATCH", "CLEANER_TIME_ZONE", "CLEANER_IDLE_TIMEOUT", "CLEANER_CHECKPOINT_INTERVAL"}},
		{name: "snapshot after every batch", env: map[string]string{"CLEANER_CHECKPOINT_INTERVAL": "0s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var cfg Config
			apptest.CheckLoad(t, &cfg, tc.env, tc.want...)
		})
	}
}
