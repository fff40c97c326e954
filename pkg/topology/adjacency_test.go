package topology

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseAdjacency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want []Edge
	}{
		{"minimal.csv", []Edge{{From: "A", To: "B", Weight: 1, Line: 2}}},
		{"full.csv", []Edge{
			{From: "A", To: "B", Weight: 0.5, TravelTimeS: 12, HasTravelTime: true, Directed: true, Line: 2},
			{From: "A-S", To: "C-N", Weight: 1, Line: 3},
			{From: "C", To: "A", Weight: 2, Directed: true, Line: 5},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			f, err := os.Open(filepath.Join("testdata", "adjacency", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := ParseAdjacency(f, tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseAdjacencyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty", "", []string{"e.csv:1: empty file"}},
		{"no to column", "from,weight\nA,1\n", []string{`e.csv:1: header lacks column "to"`}},
		{"duplicate column", "from,to,to\n", []string{`e.csv:1: column "to" appears twice`}},
		{"bad rows", "", nil}, // from testdata/adjacency/bad.csv, below
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := tc.in
			if tc.name == "bad rows" {
				b, err := os.ReadFile(filepath.Join("testdata", "adjacency", "bad.csv"))
				if err != nil {
					t.Fatal(err)
				}
				in = string(b)
				tc.want = []string{`e.csv:3: links "A" to itself`, "e.csv:4: to is empty", `e.csv:5: weight "-1"`,
					`e.csv:6: travel_time_s "90000"`, `e.csv:7: directed "maybe"`, "e.csv:8: extraneous or missing \" in quoted-field"}
			}
			_, err := ParseAdjacency(strings.NewReader(in), "e.csv")
			var ae *AdjacencyError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v, want *AdjacencyError", err)
			}
			if len(ae.Problems) != len(tc.want) {
				t.Fatalf("problems %q, want %d", ae.Problems, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(ae.Problems[i], w) {
					t.Errorf("problem %d %q, want prefix %q", i, ae.Problems[i], w)
				}
			}
		})
	}
}

func FuzzParseAdjacency(f *testing.F) {
	for _, name := range []string{"minimal.csv", "full.csv", "bad.csv"} {
		if b, err := os.ReadFile(filepath.Join("testdata", "adjacency", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("from,to,directed\nA,B,true\nB,C,\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		edges, err := ParseAdjacency(strings.NewReader(string(b)), "fuzz.csv")
		if err != nil {
			var ae *AdjacencyError
			if !errors.As(err, &ae) || len(ae.Problems) == 0 || len(ae.Problems) > maxImportProblems {
				t.Fatalf("error %v is not an *AdjacencyError with 1..%d problems", err, maxImportProblems)
			}
			for _, p := range ae.Problems {
				if !strings.HasPrefix(p, "fuzz.csv:") {
					t.Fatalf("problem %q does not name the file and line", p)
				}
			}
			return
		}
		for _, e := range edges {
			if e.From == "" || e.To == "" || e.From == e.To || strings.ContainsAny(e.From+e.To, "/ \t\r\n") {
				t.Fatalf("edge %+v has bad ids", e)
			}
			if !(e.Weight >= 0) || !(e.TravelTimeS >= 0 && e.TravelTimeS <= MaxTravelTimeS) || e.Line < 2 {
				t.Fatalf("edge %+v out of range", e)
			}
		}
		// Whatever it decodes can be applied to readings naming its ids without panicking, and the result
		// validates.
		b2 := NewReadingsBuilder(ReadingsOptions{Signals: len(edges)%2 == 0, MaxGroup: 3})
		for i, e := range edges {
			b2.Add(DetectorSeen{Intersection: e.From, Approach: "a", Detector: e.From + "-d", IntervalS: 300, File: "r.csv", Line: 2 * i})
			b2.Add(DetectorSeen{Intersection: e.To, Approach: "a", Detector: e.To + "-d", IntervalS: 300, File: "r.csv", Line: 2*i + 1})
		}
		if len(edges) > 0 {
			topo, _, err := b2.Topology(edges, "fuzz.csv")
			var re *ReadingsImportError
			switch {
			case errors.As(err, &re):
			case err != nil:
				t.Fatalf("import of valid ids failed: %v", err)
			default:
				if err := topo.Validate(); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}
