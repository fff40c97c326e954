package ingest

import (
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/topology"
)

func TestFlowVPH(t *testing.T) {
	for _, c := range []struct {
		count    float64
		interval uint32
		want     float64
	}{{10, 60, 600}, {25, 300, 300}, {0, 900, 0}, {1, 3600, 1}} {
		if got := FlowVPH(c.count, c.interval); got != c.want {
			t.Errorf("FlowVPH(%v, %d) = %v, want %v", c.count, c.interval, got, c.want)
		}
	}
}

// TestTrafficPartialReadings: a reading needs at least one of count, occupancy and speed. One without a count
// (NoCount) is accepted with a speed or an occupancy and keeps a zero flow; with neither it is missing_field on
// "count"; NoCount beside a count contradicts itself. A legacy reading with a zero count is still a count.
func TestTrafficPartialReadings(t *testing.T) {
	t.Parallel()
	topo := topology.NewIndex(topology.Topology{Intersections: []topology.Intersection{{ID: "I-1", WindowS: 300,
		Approaches: []topology.Approach{{ID: "N", Lanes: 1, SaturationFlowVPHPerLane: 1800, Detectors: []string{"D1"}}}}}})
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	base := func() TrafficReading {
		return TrafficReading{DetectorID: "D1", ObservedAt: At(now.Add(-5 * time.Minute)), IntervalS: 300}
	}
	cases := []struct {
		name   string
		modify func(*TrafficReading)
		reason Reason // "" accepted
		field  string
	}{
		{"speed only", func(r *TrafficReading) { r.NoCount, r.SpeedKMH, r.HasSpeed = true, 88, true }, "", ""},
		{"occupancy only", func(r *TrafficReading) { r.NoCount, r.OccupancyRatio, r.HasOccupancy = true, 0.2, true }, "", ""},
		{"legacy zero count", func(r *TrafficReading) {}, "", ""},
		{"nothing", func(r *TrafficReading) { r.NoCount = true }, ReasonMissingField, "count"},
		{"no count with a count", func(r *TrafficReading) { r.NoCount, r.Count, r.HasSpeed = true, 4, true }, ReasonInconsistent, "count"},
		{"speed only out of range", func(r *TrafficReading) { r.NoCount, r.SpeedKMH, r.HasSpeed = true, 400, true }, ReasonOutOfRange, "speed_kmh"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := base()
			c.modify(&r)
			v := Traffic(&r, topo, DefaultLimits(), now)
			switch {
			case c.reason == "" && v != nil:
				t.Fatalf("rejected: %+v", v)
			case c.reason == "" && (r.FlowVPH != 0 || r.IntersectionID != "I-1"):
				t.Fatalf("accepted reading %+v: want zero flow and the topology's intersection", r)
			case c.reason != "" && (v == nil || v.Reason != c.reason || v.Field != c.field || v.Description == ""):
				t.Fatalf("violation %+v, want %s on %q", v, c.reason, c.field)
			}
		})
	}
}
