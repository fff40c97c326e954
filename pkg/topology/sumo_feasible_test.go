package topology_test

import (
	"os"
	"testing"

	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// TestImportSUMOFeasible checks that signal-control accepts every derived intersection and that its fixed-time
// plan (SUMO's own program) is a valid plan.
func TestImportSUMOFeasible(t *testing.T) {
	t.Parallel()
	for _, path := range []string{
		"../../deploy/sumo/grid3x3/grid3x3.net.xml",
		"../../deploy/sumo/grid3x3-peak/grid3x3-peak.net.xml",
		"../../deploy/sumo/arterial/arterial.net.xml",
		"testdata/sumo/tiny.net.xml",
	} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			topo, err := topology.ImportSUMO(f, topology.SUMOOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range topo.Intersections {
				if err := signal.Feasible(in); err != nil {
					t.Errorf("%s: %v", in.ID, err)
				}
				p, err := signal.FixedTimePlan(in)
				if err != nil {
					t.Errorf("%s: fixed-time plan: %v", in.ID, err)
				} else if err := signal.Validate(in, p); err != nil {
					t.Errorf("%s: fixed-time plan: %v", in.ID, err)
				}
			}
		})
	}
}
