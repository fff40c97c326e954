package signalcontrol

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

// TestProfileZone: the time-of-day profile's hours of week are in the topology's zone; SIGNAL_PROFILE_TIME_ZONE
// may only repeat it.
func TestProfileZone(t *testing.T) {
	t.Parallel()
	topo, err := topology.Load("../../../../config/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, topoZone, setting, want, refusal string
	}{
		{name: "topology alone", topoZone: "Australia/Melbourne", want: "Australia/Melbourne"},
		{name: "default", want: "UTC"},
		{name: "agreeing setting", topoZone: "America/Chicago", setting: "America/Chicago", want: "America/Chicago"},
		{name: "disagreeing setting", topoZone: "America/Chicago", setting: "UTC", refusal: `SIGNAL_PROFILE_TIME_ZONE="UTC" disagrees with the topology, which has time_zone "America/Chicago"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var cfg Config
			apptest.CheckLoad(t, &cfg, map[string]string{"SIGNAL_PROFILE_TIME_ZONE": tc.setting})
			topo := topo
			topo.TimeZone = tc.topoZone
			loc, err := cfg.profileZone(topo)
			if tc.refusal != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refusal) {
					t.Fatalf("profileZone = %v, %v; want an error containing %q", loc, err, tc.refusal)
				}
				return
			}
			if err != nil || loc.String() != tc.want {
				t.Fatalf("profileZone = %v, %v; want %s", loc, err, tc.want)
			}
		})
	}
}

func TestProfileZoneSettingValidated(t *testing.T) {
	t.Parallel()
	var cfg Config
	apptest.CheckLoad(t, &cfg, map[string]string{"SIGNAL_PROFILE_TIME_ZONE": "Mars/Olympus"}, "SIGNAL_PROFILE_TIME_ZONE")
}

// TestRunRefusesDisagreeingTimeZone: signal-control stops at start-up, before contacting a broker (none exists
// here), naming both zones.
func TestRunRefusesDisagreeingTimeZone(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../../../config/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(file, bytes.Replace(b, []byte("\ntime_zone: UTC\n"), []byte("\n"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TOPOLOGY_FILE": file, "KAFKA_BROKERS": "127.0.0.1:1", "GRPC_ADDR": "127.0.0.1:0",
		"HTTP_ADDR": "127.0.0.1:0", "LOG_LEVEL": "error", "SIGNAL_PROFILE_TIME_ZONE": "Australia/Melbourne"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = Run(ctx, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil || !strings.Contains(err.Error(), `SIGNAL_PROFILE_TIME_ZONE="Australia/Melbourne"`) || !strings.Contains(err.Error(), `no time_zone (default "UTC")`) {
		t.Fatalf("Run = %v, want a refusal naming both zones", err)
	}
}
