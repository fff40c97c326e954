package cleaner

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/app/apptest"
	"github.com/greenwave-city/greenwave/pkg/topology"
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
		{name: "cadence settings", env: map[string]string{"CLEANER_CHECKPOINT_STATE_RATIO": "0.1", "CLEANER_CHECKPOINT_MAX_DELAY": "15m"}},
		{name: "ratio zero", env: map[string]string{"CLEANER_CHECKPOINT_STATE_RATIO": "0"}, want: []string{"CLEANER_CHECKPOINT_STATE_RATIO"}},
		{name: "ratio negative", env: map[string]string{"CLEANER_CHECKPOINT_STATE_RATIO": "-1"}, want: []string{"CLEANER_CHECKPOINT_STATE_RATIO"}},
		{name: "ratio NaN", env: map[string]string{"CLEANER_CHECKPOINT_STATE_RATIO": "NaN"}, want: []string{"CLEANER_CHECKPOINT_STATE_RATIO"}},
		{name: "ratio infinite", env: map[string]string{"CLEANER_CHECKPOINT_STATE_RATIO": "+Inf"}, want: []string{"CLEANER_CHECKPOINT_STATE_RATIO"}},
		{name: "max delay zero", env: map[string]string{"CLEANER_CHECKPOINT_MAX_DELAY": "0s"}, want: []string{"CLEANER_CHECKPOINT_MAX_DELAY"}},
		{name: "max delay under the interval", env: map[string]string{"CLEANER_CHECKPOINT_INTERVAL": "10m", "CLEANER_CHECKPOINT_MAX_DELAY": "5m"},
			want: []string{"CLEANER_CHECKPOINT_MAX_DELAY 5m0s must be positive and at least CLEANER_CHECKPOINT_INTERVAL (10m0s)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var cfg Config
			apptest.CheckLoad(t, &cfg, tc.env, tc.want...)
		})
	}
}

// TestCleanConfigTimeZone: the calendar features are in the topology's zone; CLEANER_TIME_ZONE may only repeat it,
// and a cleaner whose setting disagrees refuses to start, naming both zones.
func TestCleanConfigTimeZone(t *testing.T) {
	t.Parallel()
	topo, err := topology.Load("../../../../config/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, topoZone, setting string
		want                    string   // the features' zone when the cleaner starts
		refusal                 []string // substrings of the start-up error
	}{
		{name: "topology alone", topoZone: "Australia/Melbourne", want: "Australia/Melbourne"},
		{name: "no time_zone anywhere", want: "UTC"},
		{name: "setting repeats the topology", topoZone: "America/Chicago", setting: "America/Chicago", want: "America/Chicago"},
		{name: "setting disagrees", topoZone: "Australia/Melbourne", setting: "UTC",
			refusal: []string{`CLEANER_TIME_ZONE="UTC"`, `time_zone "Australia/Melbourne"`}},
		{name: "setting without a topology zone", setting: "Australia/Melbourne",
			refusal: []string{`CLEANER_TIME_ZONE="Australia/Melbourne"`, `no time_zone (default "UTC")`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var cfg Config
			apptest.CheckLoad(t, &cfg, map[string]string{"CLEANER_TIME_ZONE": tc.setting})
			topo := topo
			topo.TimeZone = tc.topoZone
			cc, err := cfg.cleanConfig(topo)
			if len(tc.refusal) > 0 {
				if err == nil {
					t.Fatalf("cleanConfig accepted %s against the topology's %s", tc.setting, topo.Zone())
				}
				for _, w := range tc.refusal {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cc.Location.String() != tc.want {
				t.Errorf("features in %s, want %s", cc.Location, tc.want)
			}
		})
	}
}

// TestRunRefusesDisagreeingTimeZone: the refusal happens at start-up, before any broker is contacted (the
// brokers here do not exist), and names both zones.
func TestRunRefusesDisagreeingTimeZone(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../../../config/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(file, bytes.Replace(b, []byte("\ntime_zone: UTC\n"), []byte("\ntime_zone: Australia/Melbourne\n"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TOPOLOGY_FILE": file, "KAFKA_BROKERS": "127.0.0.1:1", "GRPC_ADDR": "127.0.0.1:0",
		"HTTP_ADDR": "127.0.0.1:0", "LOG_LEVEL": "error", "CLEANER_TIME_ZONE": "America/Chicago"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = Run(ctx, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil || !strings.Contains(err.Error(), `CLEANER_TIME_ZONE="America/Chicago"`) || !strings.Contains(err.Error(), `time_zone "Australia/Melbourne"`) {
		t.Fatalf("Run = %v, want a refusal naming both zones", err)
	}
}
