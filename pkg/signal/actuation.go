package signal

import (
	"math"

	"github.com/greenwave-city/greenwave/pkg/topology"
)

// MaxGapOutS is the longest gap-out Validate accepts: beyond it a green would never gap out in any real traffic.
const MaxGapOutS = 10.0

// Actuation gives a valid plan the actuation bounds a local actuated controller works within, the way SCATS and
// SCOOT give theirs: the plan's greens and cycle are the strategy, the local controller trims a green whose queue
// has gone and extends one whose traffic keeps coming.
//
//   - MinGreenS is the phase's effective minimum green (vehicle and pedestrian): safety, not the plan, sets how
//     early a green may end.
//   - MaxGreenS is the green the phase gets when the plan's split is stretched to the intersection's largest
//     cycle (Σ greens = max cycle − Σ(yellow + all-red)), within [GreenS, the phase's MaxGreenS]: a saturated
//     phase may grow to its share of the longest cycle, never take another phase's share.
//   - GapOutS is the saturation headway 3600 / (s · f) of the lowest per-lane saturation flow s among the
//     intersection's approaches, with the plan's weather factor f: a gap longer than a queue discharging at
//     saturation leaves means the queue has gone (one gap-out per plan: local controllers take one per program).
//
// In SUMO (docs/sumo.md) the same plans run by an actuated controller within these bounds lost 16-40 % less time
// than at fixed time. A plan that already has bounds, or is invalid, is returned unchanged; the
// result passes Validate whenever p does.
func Actuation(in topology.Intersection, p Plan) Plan {
	if Validate(in, p) != nil || len(p.Phases) == 0 || p.Phases[0].MaxGreenS != 0 {
		return p
	}
	span := 0.0 // Σ(yellow + all-red)
	greens := 0.0
	for _, pt := range p.Phases {
		span += pt.YellowS + pt.AllRedS
		greens += pt.GreenS
	}
	_, hiCycle := in.CycleRange()
	stretch := 1.0
	if greens > 0 && hiCycle-span > greens {
		stretch = (hiCycle - span) / greens
	}
	out := p
	out.Phases = make([]PhaseTiming, len(p.Phases))
	for i, pt := range p.Phases {
		cfg := in.Phases[i] // Validate: same order
		pt.MinGreenS = math.Min(cfg.EffectiveMinGreenS(), pt.GreenS)
		pt.MaxGreenS = math.Max(pt.GreenS, math.Min(pt.GreenS*stretch, cfg.MaxGreenS))
		out.Phases[i] = pt
	}
	lowest := math.Inf(1)
	for _, a := range in.Approaches {
		if a.SaturationFlowVPHPerLane > 0 {
			lowest = math.Min(lowest, a.SaturationFlowVPHPerLane)
		}
	}
	factor := p.SaturationFactor
	if !(factor > 0 && factor <= 1) {
		factor = 1
	}
	out.GapOutS = 2 // the usual saturation headway, for an intersection without saturation flows
	if !math.IsInf(lowest, 1) {
		out.GapOutS = math.Min(MaxGapOutS, 3600/(lowest*factor))
	}
	if Validate(in, out) != nil {
		return p
	}
	return out
}
