package topology

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"
)

// validTopology is a small valid topology: two linked intersections with two phases each.
func validTopology() Topology {
	mk := func(id, other string) Intersection {
		return Intersection{
			ID: id, WindowS: 300,
			Approaches: []Approach{
				{ID: "N", Lanes: 2, SaturationFlowVPHPerLane: 1800, Detectors: []string{id + "-N"}},
				{ID: "E", Lanes: 1, SaturationFlowVPHPerLane: 1800, Detectors: []string{id + "-E"}},
			},
			Phases: []Phase{
				{ID: "NS", Approaches: []string{"N"}, MinGreenS: 10, MaxGreenS: 60, PedestrianMinS: 12, YellowS: 4, AllRedS: 2, LostTimeS: 4},
				{ID: "EW", Approaches: []string{"E"}, MinGreenS: 8, MaxGreenS: 50, YellowS: 4, AllRedS: 2, LostTimeS: 4},
			},
			Timing:     Timing{MinCycleS: 50, MaxCycleS: 150, MaxCycleChangeS: 20},
			FixedTime:  map[string]float64{"NS": 34, "EW": 24},
			Neighbours: []Link{{Intersection: other, TravelTimeS: 40}},
		}
	}
	return Topology{Version: 1, Revision: "r1", Intersections: []Intersection{mk("A", "B"), mk("B", "A")}}
}

func TestValidateAcceptsValid(t *testing.T) {
	if err := validTopology().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateRules(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Topology)
		want   string // substring of one problem
	}{
		{"version", func(t *Topology) { t.Version = 2 }, "version: got 2"},
		{"no intersections", func(t *Topology) { t.Intersections = nil; t.Corridors = nil }, "intersections: none configured"},
		{"empty intersection id", func(t *Topology) { t.Intersections[0].ID = "" }, "id is empty"},
		{"slash in id", func(t *Topology) { t.Intersections[0].ID = "A/1" }, "must not contain '/'"},
		{"duplicate intersection", func(t *Topology) { t.Intersections[1].ID = "A" }, "duplicate intersection id"},
		{"window", func(t *Topology) { t.Intersections[0].WindowS = 7 }, "window_s 7"},
		{"no approaches", func(t *Topology) { t.Intersections[0].Approaches = nil }, "no approaches"},
		{"duplicate approach", func(t *Topology) { t.Intersections[0].Approaches[1].ID = "N" }, "duplicate approach id"},
		{"lanes", func(t *Topology) { t.Intersections[0].Approaches[0].Lanes = 0 }, "lanes 0 outside 1..12"},
		{"saturation flow", func(t *Topology) { t.Intersections[0].Approaches[0].SaturationFlowVPHPerLane = math.NaN() }, "saturation_flow_vph_per_lane NaN"},
		{"no detectors", func(t *Topology) { t.Intersections[0].Approaches[0].Detectors = nil }, "no detectors"},
		{"empty detector", func(t *Topology) { t.Intersections[0].Approaches[0].Detectors = []string{""} }, "empty detector id"},
		{"shared detector", func(t *Topology) { t.Intersections[1].Approaches[0].Detectors = []string{"A-N"} }, `detector "A-N" already belongs to A/N`},
		{"one phase", func(t *Topology) { t.Intersections[0].Phases = t.Intersections[0].Phases[:1] }, "at least two phases"},
		{"duplicate phase", func(t *Topology) { t.Intersections[0].Phases[1].ID = "NS" }, "duplicate phase id"},
		{"phase serves nothing", func(t *Topology) { t.Intersections[0].Phases[1].Approaches = nil }, "serves no approach"},
		{"unknown approach in phase", func(t *Topology) { t.Intersections[0].Phases[1].Approaches = []string{"X"} }, `unknown approach "X"`},
		{"unserved approach", func(t *Topology) { t.Intersections[0].Phases[1].Approaches = []string{"N"} }, `approach "E" is served by no phase`},
		{"min green", func(t *Topology) { t.Intersections[0].Phases[0].MinGreenS = 3 }, "min_green_s 3 outside 4..300"},
		{"max green below pedestrian", func(t *Topology) { t.Intersections[0].Phases[0].MaxGreenS = 11 }, "max_green_s 11 must lie in the minimum green 12..300"},
		{"max green infinite", func(t *Topology) { t.Intersections[0].Phases[0].MaxGreenS = math.Inf(1) }, "max_green_s +Inf"},
		{"pedestrian", func(t *Topology) { t.Intersections[0].Phases[0].PedestrianMinS = -1 }, "pedestrian_min_s -1"},
		{"yellow", func(t *Topology) { t.Intersections[0].Phases[0].YellowS = 2 }, "yellow_s 2 outside 3..6"},
		{"all red", func(t *Topology) { t.Intersections[0].Phases[0].AllRedS = 7 }, "all_red_s 7 outside 0..6"},
		{"lost time", func(t *Topology) { t.Intersections[0].Phases[0].LostTimeS = math.NaN() }, "lost_time_s NaN"},
		{"min cycle", func(t *Topology) { t.Intersections[0].Timing.MinCycleS = 10 }, "min_cycle_s 10 below 20"},
		{"max cycle", func(t *Topology) { t.Intersections[0].Timing.MaxCycleS = 400 }, "max_cycle_s 400 must lie in min_cycle_s..300"},
		{"max cycle below minimum spans", func(t *Topology) {
			t.Intersections[0].Timing = Timing{MinCycleS: 20, MaxCycleS: 30}
			t.Intersections[0].FixedTime = nil
		}, "cannot fit every phase's minimum green"},
		{"min cycle above maximum spans", func(t *Topology) {
			t.Intersections[0].Phases[0].MaxGreenS, t.Intersections[0].Phases[1].MaxGreenS = 12, 8
			t.Intersections[0].Timing.MinCycleS = 100
			t.Intersections[0].FixedTime = nil
		}, "cannot be reached with every phase at its max green"},
		{"cycle change", func(t *Topology) { t.Intersections[0].Timing.MaxCycleChangeS = -1 }, "max_cycle_change_s -1"},
		{"fixed time omits a phase", func(t *Topology) { delete(t.Intersections[0].FixedTime, "EW") }, `fixed_time has no green for phase "EW"`},
		{"fixed time unknown phase", func(t *Topology) { t.Intersections[0].FixedTime["X"] = 10 }, `fixed_time names unknown phase "X"`},
		{"fixed time below min green", func(t *Topology) { t.Intersections[0].FixedTime["NS"] = 11 }, "fixed_time[NS] 11 outside"},
		{"fixed time NaN", func(t *Topology) { t.Intersections[0].FixedTime["NS"] = math.NaN() }, "fixed_time[NS] NaN"},
		{"fixed time cycle", func(t *Topology) { t.Intersections[0].FixedTime = map[string]float64{"NS": 12, "EW": 8} }, "adds up to a cycle of 32"},
		{"neighbour to itself", func(t *Topology) { t.Intersections[0].Neighbours[0].Intersection = "A" }, "neighbour link to itself"},
		{"duplicate neighbour", func(t *Topology) {
			t.Intersections[0].Neighbours = append(t.Intersections[0].Neighbours, t.Intersections[0].Neighbours[0])
		}, `duplicate neighbour link to "B"`},
		{"unknown neighbour", func(t *Topology) { t.Intersections[0].Neighbours[0].Intersection = "Z" }, `neighbour "Z" is not configured`},
		{"negative travel time", func(t *Topology) { t.Intersections[0].Neighbours[0].TravelTimeS = -1 }, "travel_time_s -1"},
		{"NaN travel time", func(t *Topology) { t.Intersections[0].Neighbours[0].TravelTimeS = math.NaN() }, "travel_time_s NaN"},
		{"infinite travel time", func(t *Topology) { t.Intersections[0].Neighbours[0].TravelTimeS = math.Inf(1) }, "travel_time_s +Inf"},
		{"upstream", func(t *Topology) { t.Intersections[0].Approaches[0].Upstream = []string{"B/Q"} }, `upstream "B/Q"`},
		{"upstream window", func(t *Topology) {
			t.Intersections[0].Approaches[0].Upstream = []string{"B/N"}
			t.Intersections[1].WindowS = 900
		}, `upstream "B/N" has 900 s windows, this intersection 300 s`},
		{"corridor root unknown", func(t *Topology) { t.Corridors = []Corridor{{ID: "c", Root: "Z"}} }, `root "Z" is not a configured intersection`},
		{"corridor empty id", func(t *Topology) { t.Corridors = []Corridor{{Root: "A"}} }, "corridors[0] (): id is empty"},
		{"corridor twice", func(t *Topology) { t.Corridors = []Corridor{{ID: "c", Root: "A"}, {ID: "d", Root: "B"}} }, `linked to corridor "c"`},
		{"corridor cycle outside range", func(t *Topology) { t.Corridors = []Corridor{{ID: "c", Root: "A", CycleS: 45}} }, "cycle_s 45 is outside"},
		{"corridor cycle NaN", func(t *Topology) { t.Corridors = []Corridor{{ID: "c", Root: "A", CycleS: math.NaN()}} }, "cycle_s NaN"},
		{"no common cycle", func(t *Topology) {
			t.Intersections[1].Timing = Timing{MinCycleS: 120, MaxCycleS: 150}
			t.Intersections[0].Timing.MaxCycleS = 100
			t.Intersections[1].FixedTime = map[string]float64{"NS": 60, "EW": 50}
		}, "admit no common cycle"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo := validTopology()
			tc.mutate(&topo)
			err := topo.Validate()
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a *ValidationError", err)
			}
			for _, p := range ve.Problems {
				if strings.Contains(p, tc.want) {
					return
				}
			}
			t.Errorf("no problem contains %q; got:\n%v", tc.want, err)
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	topo := validTopology()
	topo.Intersections[0].Phases[0].YellowS = 1
	topo.Intersections[1].Approaches[0].Lanes = 0
	topo.Intersections[1].Neighbours[0].TravelTimeS = math.Inf(1)
	var ve *ValidationError
	if err := topo.Validate(); !errors.As(err, &ve) || len(ve.Problems) != 3 {
		t.Fatalf("want exactly 3 problems, got %v", err)
	}
}

func TestParseRejectsUnknownFields(t *testing.T) {
	if _, err := Parse([]byte("version: 1\nintersectionz: []\n")); err == nil || !strings.Contains(err.Error(), "intersectionz") {
		t.Fatalf("Parse = %v, want an unknown-field error", err)
	}
}

func TestExampleTopology(t *testing.T) {
	topo, err := Load("../../config/topology.yaml")
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("example topology missing")
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.Coordination()) == 0 {
		t.Error("the example corridor should be coordinated")
	}
}

func TestCoordination(t *testing.T) {
	tests := []struct {
		name      string
		corridors []Corridor
		wantID    string
		wantRoot  string
		wantCycle float64
	}{
		// Default: the longest cycle both admit: min(150, (60+6)+(50+6)) = 122.
		{"default", nil, "", "A", 122},
		{"configured", []Corridor{{ID: "main", Root: "B", CycleS: 90}}, "main", "B", 90},
		{"configured root, default cycle", []Corridor{{ID: "main", Root: "B"}}, "main", "B", 122},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo := validTopology()
			topo.Corridors = tc.corridors
			if err := topo.Validate(); err != nil {
				t.Fatal(err)
			}
			co := topo.Coordination()
			for _, id := range []string{"A", "B"} {
				c, ok := co[id]
				if !ok || c.Corridor != tc.wantID || c.Root != tc.wantRoot || c.CycleS != tc.wantCycle || len(c.Members) != 2 {
					t.Errorf("Coordination()[%s] = %+v, %v", id, c, ok)
				}
			}
		})
	}
	topo := validTopology()
	topo.Intersections[0].Neighbours, topo.Intersections[1].Neighbours = nil, nil
	if co := topo.Coordination(); len(co) != 0 {
		t.Errorf("unlinked intersections coordinated: %v", co)
	}
}
