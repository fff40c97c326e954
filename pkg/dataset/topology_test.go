package dataset_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/greenwave-city/greenwave/pkg/dataset"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// TestCSVTopologyRoundTrip: readings and adjacency fixtures → topology → YAML → Load, which validates.
func TestCSVTopologyRoundTrip(t *testing.T) {
	t.Parallel()
	b := topology.NewReadingsBuilder(topology.ReadingsOptions{})
	f, err := os.Open("testdata/readings_topology.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := dataset.AddCSVDetectors(b, f, "readings_topology.csv", dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The speed-only row (empty count) places its detector; the row with a bad detector id places nothing.
	if st.Readings != 8 || st.SkippedRecords != 1 || st.Problems[dataset.ReasonBadID] != 1 {
		t.Errorf("stats %+v, want 8 placing rows and the bad id skipped", st)
	}
	ef, err := os.Open("testdata/readings_topology_edges.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	edges, err := topology.ParseAdjacency(ef, "edges.csv")
	if err != nil {
		t.Fatal(err)
	}
	topo, rs, err := b.Topology(edges, "edges.csv")
	if err != nil {
		t.Fatal(err)
	}
	if rs.Intersections != 3 || rs.ForecastOnly != 3 || rs.Detectors != 6 || rs.Upstream != 5 || rs.LargestGroup != 3 {
		t.Errorf("stats %+v", rs)
	}
	out, err := yaml.Marshal(topo)
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/topology.yaml"
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := topology.Load(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	ix := topology.NewIndex(back)
	for det, want := range map[string]topology.DetectorRef{
		"K1-N2": {Intersection: "K1", Approach: "N"}, "K2-SPEED": {Intersection: "K2", Approach: "W"}, "STATION7": {Intersection: "STATION7", Approach: "STATION7"},
	} {
		if got, ok := ix.Detector(det); !ok || got != want {
			t.Errorf("detector %s at %+v, want %+v", det, got, want)
		}
	}
	if in, _ := ix.Intersection("K2"); in.Window() != 900 || !in.ForecastOnly || strings.Join(in.Approaches[0].Upstream, ",") != "K1/S" {
		t.Errorf("K2 %+v", in)
	}
}

func TestCSVTopologyErrorsNameFileAndLine(t *testing.T) {
	t.Parallel()
	in := "observed_at,intersection_id,approach_id,detector_id,interval_s,count\n" +
		"2026-03-02T08:00:00Z,K1,N,D,300,1\n" +
		"2026-03-02T08:00:00Z,K1,S,D,300,1\n"
	b := topology.NewReadingsBuilder(topology.ReadingsOptions{})
	if _, err := dataset.AddCSVDetectors(b, strings.NewReader(in), "r.csv", dataset.Options{}); err != nil {
		t.Fatal(err)
	}
	_, _, err := b.Topology(nil, "")
	var re *topology.ReadingsImportError
	if !errors.As(err, &re) || !strings.HasPrefix(re.Problems[0], `r.csv:3: detector "D" is in K1/S here but in K1/N at r.csv:2`) {
		t.Fatalf("error %v", err)
	}
	if _, err := dataset.AddCSVDetectors(b, strings.NewReader("detector_id\nx\n"), "h.csv", dataset.Options{}); err == nil || !strings.Contains(err.Error(), "h.csv:1") {
		t.Errorf("header error %v, want h.csv:1", err)
	}
}

// FuzzAddCSVDetectors: any input either fails at its header, or yields a topology that validates, or an import
// error whose every problem names the file and a line; rows it skips are problems with a line.
func FuzzAddCSVDetectors(f *testing.F) {
	if b, err := os.ReadFile("testdata/readings_topology.csv"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("observed_at,intersection_id,approach_id,detector_id,interval_s,count\nx,A,N,D,300,\nx,A,S,D,300,1\nx,B,,E,7,1\n"))
	f.Add([]byte("detector_id,observed_at,interval_s,count\nD,,60,\n\"E,,0,\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		b := topology.NewReadingsBuilder(topology.ReadingsOptions{})
		st, err := dataset.AddCSVDetectors(b, strings.NewReader(string(in)), "f.csv", dataset.Options{OnProblem: func(p dataset.Problem) {
			if p.File != "f.csv" || p.Line < 1 {
				t.Fatalf("problem %+v without file and line", p)
			}
		}})
		if err != nil {
			return
		}
		topo, _, err := b.Topology(nil, "")
		var re *topology.ReadingsImportError
		switch {
		case errors.As(err, &re):
			for _, p := range re.Problems {
				if !strings.HasPrefix(p, "f.csv:") && !strings.HasPrefix(p, "no readings") {
					t.Fatalf("problem %q does not name the file and line", p)
				}
			}
		case err != nil:
			t.Fatalf("placements the reader accepted made an invalid topology: %v", err)
		default:
			if err := topo.Validate(); err != nil {
				t.Fatal(err)
			}
			if st.Readings == 0 {
				t.Fatal("a topology from no placing row")
			}
		}
	})
}
