package main

import (
	"slices"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/topology"
)

// TestSignalPlanHorizons: with auto horizons, --signals trains only the auto horizon nearest the plan horizon,
// and every horizon when the intersections' windows disagree on it.
func TestSignalPlanHorizons(t *testing.T) {
	t.Parallel()
	topo := func(windows ...int) topology.Topology {
		var tp topology.Topology
		for _, w := range windows {
			tp.Intersections = append(tp.Intersections, topology.Intersection{WindowS: w})
		}
		return tp
	}
	tests := []struct {
		name string
		topo topology.Topology
		plan time.Duration
		want []time.Duration
	}{
		{"15-minute windows (SCATS)", topo(900, 900), 15 * time.Minute, []time.Duration{15 * time.Minute}},
		{"5-minute windows", topo(300), 15 * time.Minute, []time.Duration{15 * time.Minute}},
		{"hourly windows (Metro)", topo(3600), 15 * time.Minute, []time.Duration{time.Hour}},
		{"a 40-minute plan horizon", topo(900), 40 * time.Minute, []time.Duration{30 * time.Minute}},
		{"windows giving the same horizon", topo(300, 900), 15 * time.Minute, []time.Duration{15 * time.Minute}},
		{"windows giving different horizons", topo(900, 3600), 15 * time.Minute, nil},
		{"no intersection", topo(), 15 * time.Minute, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := signalPlanHorizons(tc.topo, tc.plan); !slices.Equal(got, tc.want) {
				t.Fatalf("signalPlanHorizons = %v, want %v", got, tc.want)
			}
		})
	}
}
