package topology

import (
	"fmt"
	"math"
	"strings"
)

// Coordination is how one intersection takes part in a coordinated corridor.
type Coordination struct {
	// Corridor is the configured corridor's ID, or "" for a linked group without a Corridor entry.
	Corridor string
	// Root is the intersection at offset 0.
	Root string
	// Members are the corridor's intersections, in configuration order (the slice is shared: do not modify).
	Members []string
	// CycleS is the common cycle every member runs.
	CycleS float64
}

// linkedGroups returns the groups of intersections connected by neighbour links (either direction), each in
// configuration order, and the group index of every intersection. Links to unknown intersections are ignored.
func linkedGroups(t Topology) ([][]int, map[string]int) {
	index := intersectionIndex(t)
	sets := newDisjointSets(len(t.Intersections))
	linked := make([]bool, len(t.Intersections))
	for i, in := range t.Intersections {
		for _, l := range in.Neighbours {
			j, ok := index[l.Intersection]
			if !ok || j == i {
				continue
			}
			linked[i], linked[j] = true, true
			sets.union(i, j)
		}
	}
	var groups [][]int
	byRoot := map[int]int{}
	member := map[string]int{}
	for i, in := range t.Intersections {
		if !linked[i] {
			continue
		}
		r := sets.find(i)
		g, ok := byRoot[r]
		if !ok {
			g = len(groups)
			byRoot[r] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
		member[in.ID] = g
	}
	return groups, member
}

// DefaultCorridorCycle is the common cycle of a linked group without a configured cycle: the longest cycle
// every member admits (the smallest upper end of the members' CycleRange). Long cycles give a coordinated
// corridor the most capacity, at the price of more delay in light traffic; configure Corridor.CycleS to choose.
func DefaultCorridorCycle(members []Intersection) float64 {
	c := math.Inf(1)
	for _, in := range members {
		_, hi := in.CycleRange()
		c = math.Min(c, hi)
	}
	if math.IsInf(c, 1) {
		return 0
	}
	return c
}

// Coordination resolves every coordinated corridor of a validated topology: for each intersection with
// neighbour links, the group it belongs to, its root and its common cycle. Intersections without links are
// absent. It is pure and deterministic, so every signal-control instance computes the same corridors.
func (t Topology) Coordination() map[string]Coordination {
	groups, member := linkedGroups(t)
	out := map[string]Coordination{}
	for g, idx := range groups {
		ids := make([]string, len(idx))
		ins := make([]Intersection, len(idx))
		for k, i := range idx {
			ids[k], ins[k] = t.Intersections[i].ID, t.Intersections[i]
		}
		co := Coordination{Root: ids[0], Members: ids, CycleS: DefaultCorridorCycle(ins)}
		for _, c := range t.Corridors {
			if gi, ok := member[c.Root]; ok && gi == g {
				co.Corridor, co.Root = c.ID, c.Root
				if c.CycleS > 0 {
					co.CycleS = c.CycleS
				}
				break
			}
		}
		for _, id := range ids {
			out[id] = co
		}
	}
	return out
}

// validateCorridors checks the corridor entries and that every linked group has a common cycle.
func validateCorridors(t Topology, add func(format string, args ...any)) {
	groups, member := linkedGroups(t)
	byID := map[string]Intersection{}
	for _, in := range t.Intersections {
		byID[in.ID] = in
	}
	seen := map[string]bool{}
	claimed := map[int]string{}
	for i, c := range t.Corridors {
		where := fmt.Sprintf("corridors[%d] (%s)", i, c.ID)
		switch {
		case c.ID == "":
			add("%s: id is empty", where)
		case seen[c.ID]:
			add("%s: duplicate corridor id", where)
		}
		seen[c.ID] = true
		if !(c.CycleS >= 0 && c.CycleS <= 300) {
			add("%s: cycle_s %g must be 0 (default) or a cycle up to 300", where, c.CycleS)
		}
		if _, ok := byID[c.Root]; !ok {
			add("%s: root %q is not a configured intersection", where, c.Root)
			continue
		}
		g, ok := member[c.Root]
		if !ok {
			add("%s: root %q has no neighbour links, so there is nothing to coordinate", where, c.Root)
			continue
		}
		if other, dup := claimed[g]; dup {
			add("%s: root %q is linked to corridor %q's intersections; a linked group is one corridor", where, c.Root, other)
			continue
		}
		claimed[g] = c.ID
		if c.CycleS > 0 {
			for _, k := range groups[g] {
				in := t.Intersections[k]
				if lo, hi := in.CycleRange(); c.CycleS < lo || c.CycleS > hi {
					add("%s: cycle_s %g is outside the cycles intersection %q admits [%g, %g]", where, c.CycleS, in.ID, lo, hi)
				}
			}
		}
	}
	for g, idx := range groups {
		if _, ok := claimed[g]; ok {
			continue
		}
		ins := make([]Intersection, len(idx))
		ids := make([]string, len(idx))
		lo := 0.0
		for k, i := range idx {
			ins[k], ids[k] = t.Intersections[i], t.Intersections[i].ID
			l, _ := ins[k].CycleRange()
			lo = math.Max(lo, l)
		}
		if c := DefaultCorridorCycle(ins); c < lo {
			add("linked intersections %s admit no common cycle (need at least %g, at most %g): "+
				"remove a neighbour link or widen their cycle bounds", strings.Join(ids, ", "), lo, c)
		}
	}
}
