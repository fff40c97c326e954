package sumo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/dataset"
	"github.com/greenwave-city/greenwave/pkg/topology"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

func TestDetectorEdges(t *testing.T) {
	approach := func(id string, dets []string, up ...string) topology.Approach {
		return topology.Approach{ID: id, Detectors: dets, Upstream: up}
	}
	nan := math.NaN()
	tests := []struct {
		name string
		topo topology.Topology
		want []Edge
	}{
		{name: "no links", topo: topology.Topology{Intersections: []topology.Intersection{
			{ID: "A", Approaches: []topology.Approach{approach("a", []string{"d1"})}}}}},
		{name: "two lanes feed two lanes", topo: topology.Topology{Intersections: []topology.Intersection{
			{ID: "A", Approaches: []topology.Approach{approach("in", []string{"a0", "a1"})}},
			{ID: "B", Approaches: []topology.Approach{approach("AB", []string{"b0", "b1"}, "A/in")},
				Neighbours: []topology.Link{{Intersection: "A", TravelTimeS: 12.9}}}}},
			want: []Edge{{"a0", "b0", 0.5, 12.9}, {"a1", "b0", 0.5, 12.9}, {"a0", "b1", 0.5, 12.9}, {"a1", "b1", 0.5, 12.9}}},
		{name: "two upstream approaches, one without a neighbour link", topo: topology.Topology{Intersections: []topology.Intersection{
			{ID: "A", Approaches: []topology.Approach{approach("x", []string{"a"})}},
			{ID: "C", Approaches: []topology.Approach{approach("y", []string{"c"})}},
			{ID: "B", Approaches: []topology.Approach{approach("in", []string{"b"}, "A/x", "C/y")},
				Neighbours: []topology.Link{{Intersection: "A", TravelTimeS: 20}}}}},
			want: []Edge{{"a", "b", 0.5, 20}, {"c", "b", 0.5, nan}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DetectorEdges(tt.topo)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i, e := range got {
				w := tt.want[i]
				if e.From != w.From || e.To != w.To || e.Weight != w.Weight ||
					(e.TravelTimeS != w.TravelTimeS && !(math.IsNaN(e.TravelTimeS) && math.IsNaN(w.TravelTimeS))) {
					t.Errorf("edge %d = %+v, want %+v", i, e, w)
				}
			}
		})
	}
}

func TestWriteEdges(t *testing.T) {
	var b bytes.Buffer
	if err := writeEdges(&b, []Edge{{"a", "b", 1.0 / 3, 12.9}, {"c", "b", 0.5, math.NaN()}}); err != nil {
		t.Fatal(err)
	}
	want := "from,to,weight,travel_time_s\na,b,0.333333,12.9\nc,b,0.500000,\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestRecorderReadsBack writes a recording and reads it the way greenwave eval and replay do.
func TestRecorderReadsBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	topo := topology.Topology{Version: topology.SchemaVersion, Revision: "r", Intersections: []topology.Intersection{{ID: "A", WindowS: 120,
		Approaches: []topology.Approach{{ID: "in", Lanes: 1, SaturationFlowVPHPerLane: 1800, Detectors: []string{"e1_in_0"}}},
		Phases: []topology.Phase{{ID: "p0", Approaches: []string{"in"}, MinGreenS: 5, MaxGreenS: 60, YellowS: 3, LostTimeS: 4},
			{ID: "p1", Approaches: []string{"in"}, MinGreenS: 5, MaxGreenS: 60, YellowS: 3, LostTimeS: 4}},
		Timing: topology.Timing{MinCycleS: 30, MaxCycleS: 120}}}}
	rec, err := newRecorder(dir, topo)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, time.January, 5, 7, 2, 0, 0, time.UTC)
	occ, speed := 0.0123456, 47.5
	rds := []*greenwavev1.TrafficReading{
		{IntersectionId: "A", ApproachId: "in", DetectorId: "e1_in_0", ObservedAt: timestamppb.New(at), IntervalS: 120, Count: 7,
			OccupancyRatio: &occ, SpeedKmh: &speed},
		{IntersectionId: "A", ApproachId: "in", DetectorId: "e1_in_0", ObservedAt: timestamppb.New(at.Add(2 * time.Minute)), IntervalS: 120},
	}
	if err := rec.write(rds); err != nil {
		t.Fatal(err)
	}
	if err := rec.close(); err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(filepath.Join(dir, RecordReadings))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := dataset.Open(dataset.FormatCSV, f, RecordReadings, dataset.Options{OnProblem: func(p dataset.Problem) { t.Errorf("problem: %v", p) }})
	if err != nil {
		t.Fatal(err)
	}
	var got []dataset.Record
	for {
		r, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) != 2 {
		t.Fatalf("read %d records, want 2", len(got))
	}
	first, second := got[0].Reading, got[1].Reading
	if !first.Start.Equal(at) || first.DetectorID != "e1_in_0" || first.ApproachID != "in" || first.IntervalS != 120 || first.Count != 7 ||
		!first.HasOccupancy || first.Occupancy != 0.0123 || !first.HasSpeed || first.SpeedKMH != 47.5 {
		t.Errorf("first reading %+v", first)
	}
	if second.Count != 0 || second.HasOccupancy || second.HasSpeed {
		t.Errorf("second reading %+v: want a zero count without occupancy or speed", second)
	}
	back, err := topology.Load(filepath.Join(dir, RecordTopology))
	if err != nil {
		t.Fatalf("recorded topology: %v", err)
	}
	if !reflect.DeepEqual(back.Intersections[0].Approaches, topo.Intersections[0].Approaches) {
		t.Errorf("recorded topology %+v", back)
	}
	edges, err := os.ReadFile(filepath.Join(dir, RecordEdges))
	if err != nil || string(edges) != strings.Join(EdgeColumns, ",")+"\n" {
		t.Errorf("edges %q, %v: want the header only", edges, err)
	}
}

// TestRunRecord records a run of SUMO's own controller: the recording does not change the result, and it holds
// every full window of every detector.
func TestRunRecord(t *testing.T) {
	requireSumo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := func(record string) string {
		var stdout, stderr bytes.Buffer
		o := Options{Scenario: "grid3x3", Controller: Actuated, JSON: true, End: 5 * time.Minute, Seed: -1, Record: record}
		if err := Run(ctx, o, &stdout, &stderr); err != nil {
			t.Fatalf("Run(record %q): %v\n%s", record, err, stderr.String())
		}
		return stdout.String()
	}
	dir := filepath.Join(t.TempDir(), "rec")
	plain, recorded := run(""), run(dir)
	if plain != recorded {
		t.Errorf("--record changed the result:\n%s\n%s", plain, recorded)
	}
	topo, err := topology.Load(filepath.Join(dir, RecordTopology))
	if err != nil {
		t.Fatal(err)
	}
	dets := 0
	for _, in := range topo.Intersections {
		for _, a := range in.Approaches {
			dets += len(a.Detectors)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, RecordReadings))
	if err != nil {
		t.Fatal(err)
	}
	// 5 simulated minutes: two full windows of 120 s.
	if rows := strings.Count(string(b), "\n") - 1; dets == 0 || rows != 2*dets {
		t.Errorf("%d readings for %d detectors, want two windows", rows, dets)
	}
	edges, err := os.ReadFile(filepath.Join(dir, RecordEdges))
	if err != nil || strings.Count(string(edges), "\n") < 2 {
		t.Errorf("edges %q, %v: want links between the grid's detectors", edges, err)
	}
}
