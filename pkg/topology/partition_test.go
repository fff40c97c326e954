package topology

import (
	"maps"
	"testing"
)

func TestPartitionKeys(t *testing.T) {
	in := func(id string, upstream ...string) Intersection {
		return Intersection{ID: id, Approaches: []Approach{{ID: "N", Upstream: upstream}}}
	}
	tests := []struct {
		name          string
		intersections []Intersection
		want          map[string]string
	}{
		{"no upstream: each its own key", []Intersection{in("B"), in("A")}, map[string]string{"A": "A", "B": "B"}},
		{"one reference groups both, smallest id wins whatever the order",
			[]Intersection{in("I-2", "I-10/N"), in("I-10"), in("I-3")},
			map[string]string{"I-2": "I-10", "I-10": "I-10", "I-3": "I-3"}},
		{"chains are one group", []Intersection{in("C", "B/N"), in("B", "A/N"), in("A"), in("D")},
			map[string]string{"A": "A", "B": "A", "C": "A", "D": "D"}},
		{"self and unknown references change nothing", []Intersection{in("A", "A/N", "Z/N"), in("B")},
			map[string]string{"A": "A", "B": "B"}},
		{"neighbour links alone do not group", []Intersection{
			{ID: "A", Neighbours: []Link{{Intersection: "B"}}}, {ID: "B", Neighbours: []Link{{Intersection: "A"}}}},
			map[string]string{"A": "A", "B": "B"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Topology{Intersections: tc.intersections}.PartitionKeys()
			if !maps.Equal(got, tc.want) {
				t.Errorf("PartitionKeys = %v, want %v", got, tc.want)
			}
			ix := NewIndex(Topology{Intersections: tc.intersections})
			for id, want := range tc.want {
				if k := ix.PartitionKey(id); k != want {
					t.Errorf("Index.PartitionKey(%s) = %s, want %s", id, k, want)
				}
			}
			if k := ix.PartitionKey("unknown"); k != "unknown" {
				t.Errorf("Index.PartitionKey(unknown) = %s, want itself", k)
			}
		})
	}
}
