package topology

import "strings"

// PartitionKeys returns, for every intersection, the key its readings and cleaner state are partitioned by:
// the smallest intersection ID (byte order) of its feature group. A feature group is a set of intersections
// connected by upstream references (Approach.Upstream, in either direction); an intersection without any is a
// group of its own, keyed by its own ID.
//
// Why: the cleaner builds an approach's upstream features from the upstream intersection's state, so both
// must be held by the same cleaner instance, and Kafka's unit of ordering and ownership is the partition.
// Keying a whole group to one partition keeps every feature a deterministic function of that partition's input,
// which is what makes restarts exact. Only upstream references group intersections: neighbour links need no
// shared state (signal-control derives coordination from the topology alone), and smaller groups spread better.
//
// The key depends only on group membership, not on file order. Changing membership moves an intersection's
// readings to another partition: see the README's operating notes.
func (t Topology) PartitionKeys() map[string]string {
	index := intersectionIndex(t)
	sets := newDisjointSets(len(t.Intersections))
	for i, in := range t.Intersections {
		for _, a := range in.Approaches {
			for _, up := range a.Upstream {
				ui, _, _ := strings.Cut(up, "/")
				if j, ok := index[ui]; ok {
					sets.union(i, j)
				}
			}
		}
	}
	smallest := map[int]string{}
	for i, in := range t.Intersections {
		r := sets.find(i)
		if k, ok := smallest[r]; !ok || in.ID < k {
			smallest[r] = in.ID
		}
	}
	keys := make(map[string]string, len(t.Intersections))
	for i, in := range t.Intersections {
		keys[in.ID] = smallest[sets.find(i)]
	}
	return keys
}

// intersectionIndex maps each intersection ID to its first position in t.Intersections.
func intersectionIndex(t Topology) map[string]int {
	index := make(map[string]int, len(t.Intersections))
	for i, in := range t.Intersections {
		if _, dup := index[in.ID]; !dup {
			index[in.ID] = i
		}
	}
	return index
}

// disjointSets is a union-find over 0..n-1 whose representative is always the smallest member, so groups come
// out in configuration order.
type disjointSets []int

func newDisjointSets(n int) disjointSets {
	s := make(disjointSets, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func (s disjointSets) find(i int) int {
	for s[i] != i {
		s[i] = s[s[i]]
		i = s[i]
	}
	return i
}

func (s disjointSets) union(i, j int) {
	if a, b := s.find(i), s.find(j); a != b {
		s[max(a, b)] = min(a, b)
	}
}
