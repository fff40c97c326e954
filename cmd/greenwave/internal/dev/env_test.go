package dev

import (
	"slices"
	"strings"
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
		env     map[string]string
		want    string
		wantErr string
	}{
		{nil, "", ""},
		{map[string]string{"GREENWAVE_TOKEN": " gw-secret-0123456789\n"}, "gw-secret-0123456789", ""},
		{map[string]string{"GREENWAVE_TOKEN": "gw-secret"}, "", "$GREENWAVE_TOKEN: the token is 9 characters long, shorter than the minimum 16"},
	} {
		got, err := envToken(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
		if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("envToken(%v) = %q, %v; want %q, %q", tt.env, got, err, tt.want, tt.wantErr)
		}
	}
}
