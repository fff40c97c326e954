package signal

import (
	"fmt"
	"math"

	"github.com/greenwave-city/greenwave/pkg/topology"
)

// Offsets computes green-wave offsets, in [0, cycleS), for every intersection of ins connected to root through
// Neighbours links, all running the common cycle cycleS. Intersections not connected to root are absent from
// the result; links to intersections not in ins are ignored.
//
// A link {Intersection: N, TravelTimeS: t} on intersection X means a platoon released by N's green reaches X
// after t seconds, so X's offset should be N's offset + t (mod cycle): the first phase's green at X starts when
// the platoon arrives. Root gets offset 0 and the wave spreads breadth-first; an intersection X reached from P
// takes offset(P) + t when X has a link naming P (traffic flowing away from root), otherwise offset(P) − t when
// P has a link naming X (traffic flowing towards root). On a two-way corridor whose links go both ways, the
// direction leaving root is therefore favoured; where a loop of links disagrees, the first path found (in
// configuration order) wins.
//
// To coordinate a corridor: compute each member's Webster plan, take the largest cycle as the common cycle,
// compute Offsets with it, and compute each plan again with Options.CycleS = common cycle and Options.OffsetS =
// its offset. A member whose bounds or rate limit do not admit the common cycle ends up with another cycle;
// check Plan.CycleS before treating it as coordinated.
//
// The error wraps ErrInvalidInput for a non-positive or non-finite cycle, an unknown root, duplicate IDs or a
// travel time that is negative, not finite or longer than a day.
func Offsets(ins []topology.Intersection, root string, cycleS float64) (map[string]float64, error) {
	if !(cycleS > 0) || math.IsInf(cycleS, 0) {
		return nil, fmt.Errorf("offsets: %w: cycle %g is not a positive duration", ErrInvalidInput, cycleS)
	}
	index := make(map[string]int, len(ins))
	for i, in := range ins {
		if _, dup := index[in.ID]; dup {
			return nil, fmt.Errorf("offsets: %w: duplicate intersection %q", ErrInvalidInput, in.ID)
		}
		index[in.ID] = i
		for _, l := range in.Neighbours {
			if !(l.TravelTimeS >= 0 && l.TravelTimeS <= maxConfigS) {
				return nil, fmt.Errorf("offsets: %w: intersection %q: travel time from %q is %g",
					ErrInvalidInput, in.ID, l.Intersection, l.TravelTimeS)
			}
		}
	}
	if _, ok := index[root]; !ok {
		return nil, fmt.Errorf("offsets: %w: root intersection %q is not among the intersections", ErrInvalidInput, root)
	}
	// travel returns the travel time from one intersection to another if the destination has a link for it.
	travel := func(from, to int) (float64, bool) {
		for _, l := range ins[to].Neighbours {
			if l.Intersection == ins[from].ID {
				return l.TravelTimeS, true
			}
		}
		return 0, false
	}
	// Offsets are accumulated unwrapped and reduced at the end, so long chains lose no precision to wrapping.
	raw := map[string]float64{root: 0}
	queue := []int{index[root]}
	visit := func(p, x int) {
		if _, done := raw[ins[x].ID]; done || x == p {
			return
		}
		if t, ok := travel(p, x); ok {
			raw[ins[x].ID] = raw[ins[p].ID] + t
		} else if t, ok := travel(x, p); ok {
			raw[ins[x].ID] = raw[ins[p].ID] - t
		} else {
			return
		}
		queue = append(queue, x)
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, l := range ins[p].Neighbours {
			if x, ok := index[l.Intersection]; ok {
				visit(p, x)
			}
		}
		for x := range ins {
			if _, ok := travel(p, x); ok {
				visit(p, x)
			}
		}
	}
	out := make(map[string]float64, len(raw))
	for id, o := range raw {
		out[id] = wrapOffset(o, cycleS)
	}
	return out, nil
}
