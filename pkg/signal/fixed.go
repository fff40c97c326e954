package signal

import (
	"fmt"
	"strings"

	"github.com/greenwave-city/greenwave/pkg/topology"
)

// FixedTimePlan returns the intersection's configured known-safe plan: the greens of in.FixedTime, configured
// yellows and all-reds, the cycle their sum, offset 0, ReasonFixedTime. When in.FixedTime is empty it returns
// MinimumPlan(in). The configured greens are used as given, never stretched: if they name an unknown phase, miss
// a phase, or break a constraint (the cycle they add up to included), FixedTimePlan returns an error (wrapping
// ErrInvalidPlan or ErrInfeasible) and Safe moves on to MinimumPlan.
func FixedTimePlan(in topology.Intersection) (Plan, error) {
	if len(in.FixedTime) == 0 {
		p, err := MinimumPlan(in)
		if err != nil {
			return Plan{}, err
		}
		p.Detail = "fixed-time: no fixed_time configured, " + p.Detail
		return p, nil
	}
	var missing []string
	p := newPlan(in, ReasonFixedTime)
	for i, ph := range in.Phases {
		g, ok := in.FixedTime[ph.ID]
		if !ok {
			missing = append(missing, ph.ID)
			continue
		}
		p.Phases[i].GreenS = g
		p.CycleS += g + ph.YellowS + ph.AllRedS
	}
	if len(missing) > 0 {
		return Plan{}, fmt.Errorf("fixed-time plan of %q: %w: fixed_time has no green for phase(s) %s",
			in.ID, ErrInfeasible, strings.Join(missing, ", "))
	}
	for id := range in.FixedTime {
		if phaseIndex(in, id) < 0 {
			return Plan{}, fmt.Errorf("fixed-time plan of %q: %w: fixed_time names unknown phase %q", in.ID, ErrInfeasible, id)
		}
	}
	p.Detail = fmt.Sprintf("fixed-time: configured greens, cycle %.4gs", p.CycleS)
	if err := Validate(in, p); err != nil {
		return Plan{}, fmt.Errorf("fixed-time plan of %q: %w", in.ID, err)
	}
	return p, nil
}

// MinimumPlan returns the all-minimum plan: every phase at its effective minimum green (vehicle or pedestrian),
// with the cycle the larger of Timing.MinCycleS and the sum of those greens plus yellows and all-reds; any
// time needed to reach MinCycleS is added to the greens in equal parts (a phase at max green passes its part
// on). Offset 0, ReasonFixedTime. It is valid whenever the intersection passes Feasible, and returns an error
// wrapping ErrInfeasible otherwise.
func MinimumPlan(in topology.Intersection) (Plan, error) {
	if err := Feasible(in); err != nil {
		return Plan{}, fmt.Errorf("minimum plan: %w", err)
	}
	lo, _ := cycleRange(in)
	n := len(in.Phases)
	buf := make([]float64, 5*n)
	w, c, los, his, out := buf[:n], buf[n:2*n], buf[2*n:3*n], buf[3*n:4*n], buf[4*n:]
	total := lo
	for i, ph := range in.Phases {
		total -= ph.YellowS + ph.AllRedS
		w[i], c[i], los[i], his[i] = 1, ph.EffectiveMinGreenS(), ph.EffectiveMinGreenS(), ph.MaxGreenS
	}
	share(total, w, c, los, his, out)
	p := newPlan(in, ReasonFixedTime)
	p.CycleS = lo
	for i := range p.Phases {
		p.Phases[i].GreenS = out[i]
	}
	p.Detail = fmt.Sprintf("minimum plan: every phase at its minimum green, cycle %.4gs", p.CycleS)
	if lo > minSpan(in)+BoundToleranceS {
		p.Detail += fmt.Sprintf(" (greens stretched equally to the minimum cycle %.4gs)", in.Timing.MinCycleS)
	}
	if err := Validate(in, p); err != nil {
		return Plan{}, fmt.Errorf("minimum plan of %q: %w", in.ID, err)
	}
	return p, nil
}

// newPlan returns a plan for in with every phase present, yellows and all-reds set, greens and cycle zero.
func newPlan(in topology.Intersection, r Reason) Plan {
	p := Plan{IntersectionID: in.ID, Reason: r, SaturationFactor: 1, Phases: newPhases(in)}
	for _, ph := range in.Phases {
		p.LostTimeS += ph.LostTimeS
	}
	return p
}

// newPhases returns the phase timings of in with IDs, yellows, all-reds and approaches set. The approach lists
// are copies (sharing one backing array), so a caller modifying a plan cannot modify the configuration.
func newPhases(in topology.Intersection) []PhaseTiming {
	total := 0
	for _, ph := range in.Phases {
		total += len(ph.Approaches)
	}
	ids := make([]string, 0, total)
	pts := make([]PhaseTiming, len(in.Phases))
	for i, ph := range in.Phases {
		start := len(ids)
		ids = append(ids, ph.Approaches...)
		pts[i] = PhaseTiming{PhaseID: ph.ID, YellowS: ph.YellowS, AllRedS: ph.AllRedS, Approaches: ids[start:len(ids):len(ids)]}
	}
	return pts
}

func minSpan(in topology.Intersection) float64 {
	s := 0.0
	for _, ph := range in.Phases {
		s += ph.EffectiveMinGreenS() + ph.YellowS + ph.AllRedS
	}
	return s
}
