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
		// Whether a horizon fits is a question for each intersection's window, answered per frame (configFor).
		{name: "horizon fitting some windows", env: map[string]string{"TRAINER_HORIZONS": "7m"}},
		{name: "auto", env: map[string]string{"TRAINER_HORIZONS": "auto"}},
		{name: "auto mixed with horizons", env: map[string]string{"TRAINER_HORIZONS": "auto,15m"}, want: []string{"TRAINER_HORIZONS"}},
		{name: "horizon repeated", env: map[string]string{"TRAINER_HORIZONS": "15m,15m"}, want: []string{"TRAINER_HORIZONS", "repeated"}},
		{name: "publish interval not whole seconds", env: map[string]string{"TRAINER_PUBLISH_INTERVAL": "1500ms"}, want: []string{"TRAINER_PUBLISH_INTERVAL"}},
		{name: "publish every window", env: map[string]string{"TRAINER_PUBLISH_INTERVAL": "0s"}},
		{name: "speed target", env: map[string]string{"TRAINER_TARGET": "speed"}},
		{name: "unknown target", env: map[string]string{"TRAINER_TARGET": "volume"}, want: []string{"TRAINER_TARGET", "volume", "flow, occupancy, speed"}},
		{name: "horizon beyond a week", env: map[string]string{"TRAINER_HORIZONS": "200h"}, want: []string{"TRAINER_HORIZONS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var cfg Config
			apptest.CheckLoad(t, &cfg, tc.env, tc.want...)
		})
	}
}

func TestGroupNamePerTarget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ target, want string }{
		{"flow", "trainer"}, {"", "trainer"}, {"speed", "trainer-speed"}, {"occupancy", "trainer-occupancy"},
	} {
		c := Config{Target: tc.target}
		if got := c.groupName(); got != tc.want {
			t.Errorf("target %q: group %q, want %q", tc.target, got, tc.want)
		}
	}
}
