package dev

import (
	"slices"
	"testing"
)

// The collector settings dev presets give way to the caller's: COLLECTOR_ALLOW_ANONYMOUS=false turns anonymous
// access off.
func TestCollectorEnvRespectsTheCaller(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		caller map[string]string
		want   []string
	}{
		{"nothing set", nil, []string{"COLLECTOR_ALLOW_ANONYMOUS=true", "COLLECTOR_MAX_AGE=876000h"}},
		{"anonymous off", map[string]string{"COLLECTOR_ALLOW_ANONYMOUS": "false"}, []string{"COLLECTOR_MAX_AGE=876000h"}},
		{"both set", map[string]string{"COLLECTOR_ALLOW_ANONYMOUS": "false", "COLLECTOR_MAX_AGE": "720h"}, nil},
	} {
		lookup := func(k string) (string, bool) { v, ok := tt.caller[k]; return v, ok }
		if got := collectorEnv(lookup); !slices.Equal(got, tt.want) {
			t.Errorf("%s: collectorEnv = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestEnvToken(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"GREENWAVE_TOKEN": " gw-secret\n"}, "gw-secret"},
	} {
		if got := envToken(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }); got != tt.want {
			t.Errorf("envToken(%v) = %q, want %q", tt.env, got, tt.want)
		}
	}
}
