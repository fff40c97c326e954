package topology

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// readingsFixture places detectors as a canonical readings file would: intersection A with two approaches (one
// of two detectors), B with one, a detector without intersection_id and one without approach_id.
var readingsFixture = []DetectorSeen{
	{Intersection: "A", Approach: "N", Detector: "A-N1", IntervalS: 300, Line: 2},
	{Intersection: "A", Approach: "N", Detector: "A-N2", IntervalS: 300, Line: 3},
	{Intersection: "A", Approach: "S", Detector: "A-S", IntervalS: 300, Line: 4},
	{Intersection: "B", Approach: "E", Detector: "B-E", IntervalS: 300, Line: 5},
	{Detector: "LOOP9", IntervalS: 300, Line: 6},
	{Intersection: "B", Detector: "B-X", IntervalS: 300, Line: 7},
	{Intersection: "A", Approach: "N", Detector: "A-N1", IntervalS: 300, Line: 8}, // a later row: nothing new
	{Intersection: "H", Approach: "W", Detector: "H-W", IntervalS: 3600, Line: 9},
}

func build(t *testing.T, opts ReadingsOptions, rows []DetectorSeen, edges []Edge) (Topology, ReadingsStats) {
	t.Helper()
	b := NewReadingsBuilder(opts)
	for _, r := range rows {
		if r.File == "" {
			r.File = "r.csv"
		}
		b.Add(r)
	}
	topo, st, err := b.Topology(edges, "e.csv")
	if err != nil {
		t.Fatal(err)
	}
	return topo, st
}

// summary is "id(window,forecast_only|phases):approach[detectors]<upstream>;…" for comparing topologies briefly.
func summary(topo Topology) string {
	var parts []string
	for _, in := range topo.Intersections {
		kind := fmt.Sprintf("%d phases", len(in.Phases))
		if in.ForecastOnly {
			kind = "forecast_only"
		}
		s := fmt.Sprintf("%s(%d,%s)", in.ID, in.Window(), kind)
		for _, a := range in.Approaches {
			s += fmt.Sprintf(":%s%v", a.ID, a.Detectors)
			if len(a.Upstream) > 0 {
				s += fmt.Sprintf("<%s>", strings.Join(a.Upstream, ","))
			}
		}
		for _, l := range in.Neighbours {
			s += fmt.Sprintf("~%s@%g", l.Intersection, l.TravelTimeS)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func TestReadingsBuilder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  ReadingsOptions
		edges []Edge
		want  string
		stats ReadingsStats
	}{
		{name: "forecast only",
			want:  "A(300,forecast_only):N[A-N1 A-N2]:S[A-S]; B(300,forecast_only):B-X[B-X]:E[B-E]; H(3600,forecast_only):W[H-W]; LOOP9(300,forecast_only):LOOP9[LOOP9]",
			stats: ReadingsStats{Intersections: 4, ForecastOnly: 4, Detectors: 7, LargestGroup: 1}},
		{name: "signals", opts: ReadingsOptions{Signals: true},
			want:  "A(300,2 phases):N[A-N1 A-N2]:S[A-S]; B(300,2 phases):B-X[B-X]:E[B-E]; H(3600,forecast_only):W[H-W]; LOOP9(300,forecast_only):LOOP9[LOOP9]",
			stats: ReadingsStats{Intersections: 4, Signalised: 2, ForecastOnly: 2, Detectors: 7, LargestGroup: 1}},
		{name: "directed detector link",
			edges: []Edge{{From: "A-S", To: "B-E", Directed: true, Line: 2}},
			want:  "A(300,forecast_only):N[A-N1 A-N2]:S[A-S]; B(300,forecast_only):B-X[B-X]:E[B-E]<A/S>; H(3600,forecast_only):W[H-W]; LOOP9(300,forecast_only):LOOP9[LOOP9]",
			stats: ReadingsStats{Intersections: 4, ForecastOnly: 4, Detectors: 7, Upstream: 1, Groups: 1, LargestGroup: 2}},
		{name: "undirected intersection link",
			edges: []Edge{{From: "LOOP9", To: "B", Line: 2}},
			want:  "A(300,forecast_only):N[A-N1 A-N2]:S[A-S]; B(300,forecast_only):B-X[B-X]<LOOP9/LOOP9>:E[B-E]<LOOP9/LOOP9>; H(3600,forecast_only):W[H-W]; LOOP9(300,forecast_only):LOOP9[LOOP9]<B/B-X,B/E>",
			stats: ReadingsStats{Intersections: 4, ForecastOnly: 4, Detectors: 7, Upstream: 4, Groups: 1, LargestGroup: 2}},
		{name: "unequal windows dropped",
			edges: []Edge{{From: "A", To: "H", Line: 2}},
			want:  "A(300,forecast_only):N[A-N1 A-N2]:S[A-S]; B(300,forecast_only):B-X[B-X]:E[B-E]; H(3600,forecast_only):W[H-W]; LOOP9(300,forecast_only):LOOP9[LOOP9]",
			stats: ReadingsStats{Intersections: 4, ForecastOnly: 4, Detectors: 7, LargestGroup: 1, DroppedWindow: 4}},
		{name: "neighbour links with signals",
			opts:  ReadingsOptions{Signals: true},
			edges: []Edge{{From: "A-S", To: "B-E", TravelTimeS: 30, HasTravelTime: true, Directed: true, Line: 2}, {From: "A", To: "B", TravelTimeS: 99, HasTravelTime: true, Line: 3}, {From: "LOOP9", To: "A", TravelTimeS: 5, HasTravelTime: true, Line: 4}},
			want: "A(300,2 phases):N[A-N1 A-N2]<B/B-X,B/E,LOOP9/LOOP9>:S[A-S]<B/B-X,B/E,LOOP9/LOOP9>~B@99; B(300,2 phases):B-X[B-X]<A/N,A/S>:E[B-E]<A/N,A/S>~A@30; " +
				"H(3600,forecast_only):W[H-W]; LOOP9(300,forecast_only):LOOP9[LOOP9]<A/N,A/S>",
			stats: ReadingsStats{Intersections: 4, Signalised: 2, ForecastOnly: 2, Detectors: 7, Upstream: 12, Neighbours: 2, Groups: 1, LargestGroup: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topo, st := build(t, tc.opts, readingsFixture, tc.edges)
			if got := summary(topo); got != tc.want {
				t.Errorf("topology\n got  %s\n want %s", got, tc.want)
			}
			if st != tc.stats {
				t.Errorf("stats %+v, want %+v", st, tc.stats)
			}
			if topo.Revision != ReadingsDefaultRevision || topo.Intersections[0].Approaches[0].Lanes != ReadingsDefaultLanes {
				t.Errorf("defaults not applied: %+v", topo.Intersections[0])
			}
		})
	}
}

func TestReadingsBuilderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		rows  []DetectorSeen
		edges []Edge
		want  []string
	}{
		{"no rows", nil, nil, []string{"no readings"}},
		{"detector moves", []DetectorSeen{{Intersection: "A", Approach: "N", Detector: "D", IntervalS: 300, Line: 2}, {Intersection: "A", Approach: "S", Detector: "D", IntervalS: 300, Line: 9}},
			nil, []string{`r.csv:9: detector "D" is in A/S here but in A/N at r.csv:2`}},
		{"mixed intervals", []DetectorSeen{{Intersection: "A", Detector: "D", IntervalS: 300, Line: 2}, {Intersection: "A", Detector: "E", IntervalS: 60, Line: 3}},
			nil, []string{`r.csv:3: intersection "A" has interval_s 60 here but 300 at r.csv:2`}},
		{"window not dividing a day", []DetectorSeen{{Intersection: "A", Detector: "D", IntervalS: 7, Line: 4}},
			nil, []string{`r.csv:4: intersection "A": interval_s 7 does not divide a day`}},
		{"unknown edge end", []DetectorSeen{{Intersection: "A", Detector: "D", IntervalS: 300, Line: 2}},
			[]Edge{{From: "D", To: "Z", Line: 5}}, []string{`e.csv:5: "Z" is neither a detector nor an intersection`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := NewReadingsBuilder(ReadingsOptions{})
			for _, r := range tc.rows {
				r.File = "r.csv"
				b.Add(r)
			}
			_, _, err := b.Topology(tc.edges, "e.csv")
			var re *ReadingsImportError
			if !errors.As(err, &re) || len(re.Problems) != len(tc.want) {
				t.Fatalf("error %v, want %d problems", err, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(re.Problems[i], w) {
					t.Errorf("problem %q, want prefix %q", re.Problems[i], w)
				}
			}
		})
	}
}

// TestReadingsGroupsSplit checks the documented split of a large connected component: a chain and a star of
// intersections, each linked to the next, cut breadth-first from the smallest unassigned ID.
func TestReadingsGroupsSplit(t *testing.T) {
	t.Parallel()
	chain := func(n int) ([]DetectorSeen, []Edge) {
		var rows []DetectorSeen
		var edges []Edge
		for i := range n {
			id := fmt.Sprintf("I%02d", i)
			rows = append(rows, DetectorSeen{Intersection: id, Approach: "a", Detector: id + "-d", IntervalS: 900, Line: i + 2})
			if i > 0 {
				edges = append(edges, Edge{From: fmt.Sprintf("I%02d", i-1), To: id, Line: i + 1})
			}
		}
		return rows, edges
	}
	star := func(n int) ([]DetectorSeen, []Edge) {
		rows := []DetectorSeen{{Intersection: "HUB", Approach: "a", Detector: "hub", IntervalS: 900, Line: 2}}
		var edges []Edge
		for i := range n {
			id := fmt.Sprintf("S%02d", i)
			rows = append(rows, DetectorSeen{Intersection: id, Approach: "a", Detector: id + "-d", IntervalS: 900, Line: i + 3})
			edges = append(edges, Edge{From: "HUB", To: id, Directed: true, Line: i + 2})
		}
		return rows, edges
	}
	tests := []struct {
		name     string
		rows     []DetectorSeen
		edges    []Edge
		maxGroup int
		groups   string // partition keys of the groups with their sizes
		dropped  int
	}{
		{"chain fits", first(chain(8)), second(chain(8)), 8, "I00:8", 0},
		// 20 in a line, groups of 8: I00-I07, I08-I15, I16-I19; two boundaries, each link undirected (2 references).
		{"chain split", first(chain(20)), second(chain(20)), 8, "I00:8 I08:8 I16:4", 4},
		{"chain of one", first(chain(3)), second(chain(3)), 1, "I00:1 I01:1 I02:1", 4},
		// HUB sorts first: it takes S00..S03, then S04.., S08.. form groups of their own (no links among them).
		{"star split", first(star(10)), second(star(10)), 5, "HUB:5 S04:1 S05:1 S06:1 S07:1 S08:1 S09:1", 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topo, st := build(t, ReadingsOptions{MaxGroup: tc.maxGroup}, tc.rows, tc.edges)
			sizes := map[string]int{}
			for _, k := range topo.PartitionKeys() {
				sizes[k]++
			}
			var got []string
			for _, k := range sortedKeys(sizes) {
				got = append(got, fmt.Sprintf("%s:%d", k, sizes[k]))
			}
			if strings.Join(got, " ") != tc.groups || st.DroppedAtBoundary != tc.dropped {
				t.Errorf("groups %q dropped %d, want %q dropped %d", got, st.DroppedAtBoundary, tc.groups, tc.dropped)
			}
			// Deterministic: the same input in reverse order gives the same topology.
			rows := append([]DetectorSeen(nil), tc.rows...)
			for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
				rows[i], rows[j] = rows[j], rows[i]
			}
			again, _ := build(t, ReadingsOptions{MaxGroup: tc.maxGroup}, rows, tc.edges)
			if !reflect.DeepEqual(again, topo) {
				t.Error("row order changed the topology")
			}
		})
	}
}

func first[A, B any](a A, _ B) A  { return a }
func second[A, B any](_ A, b B) B { return b }

// TestReadingsRoundTrip: import → YAML → Parse (which validates) gives the same topology.
func TestReadingsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, signals := range []bool{false, true} {
		topo, _ := build(t, ReadingsOptions{Signals: signals, TimeZone: "Europe/Paris"}, readingsFixture,
			[]Edge{{From: "A", To: "B", TravelTimeS: 20, HasTravelTime: true, Line: 2}, {From: "LOOP9", To: "A-S", Directed: true, Line: 3}})
		b, err := yaml.Marshal(topo)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(b)
		if err != nil {
			t.Fatalf("signals=%v: %v\n%s", signals, err, b)
		}
		if !reflect.DeepEqual(back, topo) {
			t.Errorf("signals=%v: round trip changed the topology:\n%s", signals, b)
		}
	}
}

func TestValidateForecastOnly(t *testing.T) {
	t.Parallel()
	base := func() Topology {
		topo, _ := build(t, ReadingsOptions{Signals: true}, readingsFixture, nil)
		return topo
	}
	tests := []struct {
		name   string
		change func(*Topology)
		want   string
	}{
		{"valid", func(*Topology) {}, ""},
		{"phases", func(t *Topology) { t.Intersections[2].Phases = t.Intersections[0].Phases }, "forecast_only intersection has 2 phases"},
		{"timing", func(t *Topology) { t.Intersections[2].Timing.MinCycleS = 40 }, "forecast_only intersection has timing"},
		{"fixed time", func(t *Topology) { t.Intersections[2].FixedTime = map[string]float64{"W": 20} }, "forecast_only intersection has a fixed_time"},
		{"own link", func(t *Topology) { t.Intersections[2].Neighbours = []Link{{Intersection: "A"}} }, "forecast_only intersection has neighbour links"},
		{"link to it", func(t *Topology) { t.Intersections[0].Neighbours = []Link{{Intersection: "H"}} }, `neighbour "H" is forecast_only`},
		{"corridor root", func(t *Topology) { t.Corridors = []Corridor{{ID: "c", Root: "H"}} }, `root "H" has no neighbour links`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topo := base()
			tc.change(&topo)
			err := topo.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestReadingsSignalsFallBack: with Signals, an intersection that cannot get one phase per approach stays
// forecast_only, and OnDrop says why.
func TestReadingsSignalsFallBack(t *testing.T) {
	t.Parallel()
	var rows []DetectorSeen
	for i := range 10 {
		rows = append(rows, DetectorSeen{Intersection: "BIG", Approach: fmt.Sprintf("a%d", i), Detector: fmt.Sprintf("d%d", i), IntervalS: 300, Line: i + 2})
	}
	rows = append(rows, DetectorSeen{Intersection: "ONE", Approach: "a", Detector: "one", IntervalS: 300, Line: 12})
	var notes []string
	topo, st := build(t, ReadingsOptions{Signals: true, OnDrop: func(s string) { notes = append(notes, s) }}, rows, nil)
	if st.Signalised != 0 || !topo.Intersections[0].ForecastOnly || !topo.Intersections[1].ForecastOnly {
		t.Errorf("stats %+v", st)
	}
	want := []string{"intersection BIG stays forecast_only: 10 approaches cannot have one phase each within a 150 s cycle",
		"intersection ONE stays forecast_only: one approach cannot make the two phases a plan needs"}
	if !reflect.DeepEqual(notes, want) {
		t.Errorf("notes %q, want %q", notes, want)
	}
}
