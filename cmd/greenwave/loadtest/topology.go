package main

import (
	"fmt"

	"github.com/greenwave-city/greenwave/pkg/topology"
)

// approachIDs are the four approaches of every generated intersection, one detector each.
var approachIDs = []string{"N", "S", "E", "W"}

// Topology generates a city of n independent four-approach intersections (one detector per approach, two
// phases NS and EW) with windows of windowS seconds. Intersections are not linked: the load test measures the
// pipeline's throughput, and links would only put whole corridors into one partition. Detector ids are
// L<intersection>-<approach>1, intersection ids L<0-padded index>.
func Topology(n, windowS int) (topology.Topology, error) {
	t := topology.Topology{Version: topology.SchemaVersion, Revision: fmt.Sprintf("loadtest-%d-%ds", n, windowS), TimeZone: "UTC"}
	for i := range n {
		in := topology.Intersection{
			ID: IntersectionID(i), WindowS: windowS,
			Phases: []topology.Phase{
				{ID: "NS", Approaches: []string{"N", "S"}, MinGreenS: 10, MaxGreenS: 60, YellowS: 4, AllRedS: 2, LostTimeS: 4},
				{ID: "EW", Approaches: []string{"E", "W"}, MinGreenS: 8, MaxGreenS: 50, YellowS: 4, AllRedS: 2, LostTimeS: 4},
			},
			Timing:    topology.Timing{MinCycleS: 50, MaxCycleS: 150, MaxCycleChangeS: 20},
			FixedTime: map[string]float64{"NS": 34, "EW": 24},
		}
		for _, a := range approachIDs {
			in.Approaches = append(in.Approaches, topology.Approach{ID: a, Lanes: 1, SaturationFlowVPHPerLane: 1800,
				Detectors: []string{DetectorID(i, a)}})
		}
		t.Intersections = append(t.Intersections, in)
	}
	if err := t.Validate(); err != nil {
		return topology.Topology{}, fmt.Errorf("generated topology: %w", err)
	}
	return t, nil
}

// IntersectionID is the id of the i-th generated intersection.
func IntersectionID(i int) string { return fmt.Sprintf("L%05d", i) }

// DetectorID is the id of the detector on approach a of the i-th generated intersection.
func DetectorID(i int, a string) string { return IntersectionID(i) + "-" + a + "1" }
