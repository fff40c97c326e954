package signal

import (
	"fmt"
	"math"
	"strings"

	"github.com/greenwave-city/greenwave/pkg/topology"
)

const (
	// CycleSumToleranceS is how far Σ(green + yellow + all-red) may differ from the cycle (floating-point rounding).
	CycleSumToleranceS = 1e-6
	// BoundToleranceS absorbs floating-point rounding when greens and cycles are compared with their bounds:
	// a nanosecond, far below anything a controller can display.
	BoundToleranceS = 1e-9
)

// Validate is the final safety gate. It checks that p is a plan for in with every configured phase exactly once
// and in order; every green at least the phase's effective minimum green (vehicle and pedestrian) and at most its
// maximum green; every yellow and all-red exactly the configured value; the greens, yellows and all-reds adding
// up to the cycle within CycleSumToleranceS; the cycle within [MinCycleS, MaxCycleS]; the offset in [0, cycle);
// actuation bounds on all phases or none, each within the phase's effective min and max green and around its
// green, with a gap-out in (0, MaxGapOutS] exactly when there are bounds; and every number finite. Bounds are compared with a tolerance of BoundToleranceS. It returns nil or a
// *PlanError listing every violation.
func Validate(in topology.Intersection, p Plan) error {
	var vs []Violation
	add := func(k ViolationKind, phase, format string, args ...any) {
		vs = append(vs, Violation{Kind: k, Phase: phase, Msg: fmt.Sprintf(format, args...)})
	}
	if p.IntersectionID != in.ID {
		add(ViolationIntersection, "", "plan is for %q, want %q", p.IntersectionID, in.ID)
	}
	for _, f := range [...]struct {
		name string
		v    float64
	}{
		{"cycle_s", p.CycleS}, {"offset_s", p.OffsetS}, {"y", p.Y}, {"lost_time_s", p.LostTimeS},
		{"saturation_factor", p.SaturationFactor}, {"estimated_delay_s", p.EstimatedDelayS}, {"gap_out_s", p.GapOutS},
	} {
		if !isFinite(f.v) {
			add(ViolationNonFinite, "", "%s is %g", f.name, f.v)
		}
	}
	if len(in.Phases) == 0 {
		add(ViolationPhases, "", "the intersection has no phases")
	}
	var seenArr [16]bool
	var seen []bool
	if len(in.Phases) <= len(seenArr) {
		seen = seenArr[:len(in.Phases)]
	} else {
		seen = make([]bool, len(in.Phases))
	}
	sum := 0.0
	bounded, checked := 0, 0 // phases with actuation bounds, of the known ones
	for i, pt := range p.Phases {
		sum += pt.GreenS + pt.YellowS + pt.AllRedS
		for _, f := range [...]struct {
			name string
			v    float64
		}{{"green_s", pt.GreenS}, {"yellow_s", pt.YellowS}, {"all_red_s", pt.AllRedS}, {"flow_ratio", pt.FlowRatio},
			{"min_green_s", pt.MinGreenS}, {"max_green_s", pt.MaxGreenS}} {
			if !isFinite(f.v) {
				add(ViolationNonFinite, pt.PhaseID, "%s is %g", f.name, f.v)
			}
		}
		k := phaseIndex(in, pt.PhaseID)
		switch {
		case k < 0:
			add(ViolationPhases, pt.PhaseID, "unknown phase at position %d", i)
			continue
		case seen[k]:
			add(ViolationPhases, pt.PhaseID, "phase appears more than once (again at position %d)", i)
			continue
		case k != i:
			add(ViolationPhases, pt.PhaseID, "phase at position %d, configured at position %d", i, k)
		}
		seen[k] = true
		cfg := in.Phases[k]
		if minG := cfg.EffectiveMinGreenS(); !(pt.GreenS >= minG-BoundToleranceS) {
			add(ViolationMinGreen, pt.PhaseID, "green %gs below the minimum green %gs (vehicle %gs, pedestrian %gs)",
				pt.GreenS, minG, cfg.MinGreenS, cfg.PedestrianMinS)
		}
		if !(pt.GreenS <= cfg.MaxGreenS+BoundToleranceS) {
			add(ViolationMaxGreen, pt.PhaseID, "green %gs above the maximum green %gs", pt.GreenS, cfg.MaxGreenS)
		}
		if pt.YellowS != cfg.YellowS {
			add(ViolationYellow, pt.PhaseID, "yellow %gs, configured %gs", pt.YellowS, cfg.YellowS)
		}
		if pt.AllRedS != cfg.AllRedS {
			add(ViolationAllRed, pt.PhaseID, "all-red %gs, configured %gs", pt.AllRedS, cfg.AllRedS)
		}
		checked++
		if pt.MinGreenS != 0 || pt.MaxGreenS != 0 {
			bounded++
			if !(pt.MinGreenS >= cfg.EffectiveMinGreenS()-BoundToleranceS && pt.MinGreenS <= pt.GreenS+BoundToleranceS &&
				pt.MaxGreenS >= pt.GreenS-BoundToleranceS && pt.MaxGreenS <= cfg.MaxGreenS+BoundToleranceS) {
				add(ViolationActuation, pt.PhaseID, "actuation bounds [%g, %g]s not within [%g, %g]s around green %gs",
					pt.MinGreenS, pt.MaxGreenS, cfg.EffectiveMinGreenS(), cfg.MaxGreenS, pt.GreenS)
			}
		}
	}
	switch {
	case bounded != 0 && bounded != checked:
		add(ViolationActuation, "", "actuation bounds on %d of %d phases: all or none", bounded, checked)
	case bounded == 0 && p.GapOutS != 0:
		add(ViolationActuation, "", "gap-out %gs without actuation bounds", p.GapOutS)
	case bounded != 0 && !(p.GapOutS > 0 && p.GapOutS <= MaxGapOutS):
		add(ViolationActuation, "", "gap-out %gs outside (0, %g]s", p.GapOutS, MaxGapOutS)
	}
	for k, ok := range seen {
		if !ok {
			add(ViolationPhases, in.Phases[k].ID, "phase missing from the plan")
		}
	}
	if !(math.Abs(sum-p.CycleS) <= CycleSumToleranceS) {
		add(ViolationCycleSum, "", "green + yellow + all-red add up to %.9gs, cycle is %.9gs", sum, p.CycleS)
	}
	tm := in.Timing
	if !(p.CycleS > 0 && p.CycleS >= tm.MinCycleS-BoundToleranceS && p.CycleS <= tm.MaxCycleS+BoundToleranceS) {
		add(ViolationCycleBounds, "", "cycle %gs outside [%g, %g]s", p.CycleS, tm.MinCycleS, tm.MaxCycleS)
	}
	if !(p.OffsetS >= 0 && p.OffsetS < p.CycleS) {
		add(ViolationOffset, "", "offset %gs outside [0, %g)s", p.OffsetS, p.CycleS)
	}
	if len(vs) > 0 {
		return &PlanError{IntersectionID: in.ID, Violations: vs}
	}
	return nil
}

// Feasible reports whether any plan can satisfy the intersection's constraints: unique phase IDs, finite,
// non-negative timing values (at most a day), max green at least the effective min green, and a cycle range [max(MinCycleS, Σ min spans),
// min(MaxCycleS, Σ max spans)] that is not empty, where a phase's min (max) span is its effective min (max)
// green plus yellow plus all-red. topology.Validate does not check that the maximum greens can fill the minimum
// cycle; signal-control should call Feasible for every intersection at start-up and refuse a configuration
// that fails. The error wraps ErrInfeasible.
func Feasible(in topology.Intersection) error {
	var ps []string
	add := func(format string, args ...any) { ps = append(ps, fmt.Sprintf(format, args...)) }
	if len(in.Phases) == 0 {
		add("no phases")
	}
	for k, ph := range in.Phases {
		if phaseIndex(in, ph.ID) != k {
			add("phase %s: duplicate phase id", ph.ID)
		}
		for _, f := range [...]struct {
			name string
			v    float64
		}{
			{"min_green_s", ph.MinGreenS}, {"max_green_s", ph.MaxGreenS}, {"pedestrian_min_s", ph.PedestrianMinS},
			{"yellow_s", ph.YellowS}, {"all_red_s", ph.AllRedS}, {"lost_time_s", ph.LostTimeS},
		} {
			if !(f.v >= 0 && f.v <= maxConfigS) {
				add("phase %s: %s %g is not a duration in [0, %g]", ph.ID, f.name, f.v, float64(maxConfigS))
			}
		}
		if !(ph.MaxGreenS >= ph.EffectiveMinGreenS()) {
			add("phase %s: max green %g below the minimum green %g", ph.ID, ph.MaxGreenS, ph.EffectiveMinGreenS())
		}
	}
	tm := in.Timing
	if !(tm.MinCycleS > 0 && tm.MinCycleS <= tm.MaxCycleS && tm.MaxCycleS <= maxConfigS) {
		add("cycle bounds [%g, %g] are not a valid range in (0, %g]", tm.MinCycleS, tm.MaxCycleS, float64(maxConfigS))
	}
	if len(ps) == 0 {
		lo, hi := cycleRange(in)
		if lo > hi+BoundToleranceS {
			add("no cycle fits: it must be at least %gs (min cycle, or every phase's min green + yellow + all-red) "+
				"and at most %gs (max cycle, or every phase's max green + yellow + all-red)", lo, hi)
		}
	}
	if len(ps) > 0 {
		return fmt.Errorf("intersection %q: %w: %s", in.ID, ErrInfeasible, strings.Join(ps, "; "))
	}
	return nil
}

// maxConfigS bounds every configured duration Feasible accepts (a day), keeping all sums finite and exact enough.
const maxConfigS = 86400

// cycleRange returns the range of cycles for which greens within their bounds exist.
func cycleRange(in topology.Intersection) (lo, hi float64) {
	var minSpan, maxSpan float64
	for _, ph := range in.Phases {
		minSpan += ph.EffectiveMinGreenS() + ph.YellowS + ph.AllRedS
		maxSpan += ph.MaxGreenS + ph.YellowS + ph.AllRedS
	}
	return math.Max(in.Timing.MinCycleS, minSpan), math.Min(in.Timing.MaxCycleS, maxSpan)
}

// Safe returns candidate if candidateErr is nil and candidate passes Validate. Otherwise it falls back, in
// order, to each of fallbacks (nil entries skipped; for example a time-of-day plan), FixedTimePlan(in) and
// MinimumPlan(in), returning the first that is valid, with Detail saying why each earlier plan was rejected.
// A fallback plan keeps its own Reason (ReasonFixedTime for the built-in ones).
//
// Safe never returns a plan that fails Validate: when no plan is valid, which happens only when the intersection
// fails Feasible, it returns the zero Plan and an error wrapping ErrNoSafePlan. Rate limiting is comfort, not
// safety: a fallback plan's cycle may jump by more than Timing.MaxCycleChangeS.
//
// A typical call is
//
//	p, err := signal.Webster(in, flows, opts)
//	p, err = signal.Safe(in, p, err)
func Safe(in topology.Intersection, candidate Plan, candidateErr error, fallbacks ...func() (Plan, error)) (Plan, error) {
	if candidateErr == nil {
		candidateErr = Validate(in, candidate)
		if candidateErr == nil {
			return candidate, nil
		}
	}
	name := "candidate"
	if candidate.Reason != ReasonUnspecified {
		name = candidate.Reason.String()
	}
	reasons := []string{fmt.Sprintf("%s plan rejected: %v", name, candidateErr)}
	try := func(name string, p Plan, err error) (Plan, bool) {
		if err == nil {
			err = Validate(in, p)
		}
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("%s rejected: %v", name, err))
			return Plan{}, false
		}
		p.Detail = "fallback to " + name + " (" + strings.Join(reasons, "; ") + "): " + p.Detail
		return p, true
	}
	for i, fb := range fallbacks {
		if fb == nil {
			continue
		}
		p, err := fb()
		if p, ok := try(fmt.Sprintf("fallback plan %d", i+1), p, err); ok {
			return p, nil
		}
	}
	fixed, err := FixedTimePlan(in)
	if p, ok := try("fixed-time plan", fixed, err); ok {
		return p, nil
	}
	minimum, err := MinimumPlan(in)
	if p, ok := try("minimum plan", minimum, err); ok {
		return p, nil
	}
	return Plan{}, fmt.Errorf("intersection %q: %w: %s", in.ID, ErrNoSafePlan, strings.Join(reasons, "; "))
}

func phaseIndex(in topology.Intersection, id string) int {
	for k, ph := range in.Phases {
		if ph.ID == id {
			return k
		}
	}
	return -1
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
