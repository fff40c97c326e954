// Package signal turns approach flows into safe traffic-signal timing plans: Webster's optimal cycle and green
// splits, weather-adjusted saturation flows, hard-constraint clamping, cycle rate limiting, green-wave offsets,
// fixed-time fallbacks, Webster's delay estimate, and the final safety gate (Validate and Safe).
//
// The package is pure: no I/O, no logging, no protobuf. Every function is safe for concurrent use and never
// panics on any input; bad input gives an error, never an invalid plan.
//
// # Conventions
//
// Times are seconds, flows vehicles per hour (veh/h), saturation flows veh/h of green.
//
// A phase occupies G + Y + AR seconds of the cycle: displayed green G, then yellow Y, then all-red AR, with the
// phases in configured order. A plan's cycle is exactly the sum of its phases' spans: C = Σ (G + Y + AR).
//
// Lost time follows the HCM: each phase's lost time l = topology.Phase.LostTimeS is its start-up lost time plus
// the part of its yellow and all-red that traffic does not use (clearance lost time). The intersection's lost
// time per cycle is L = Σ l over the phases; yellow and all-red are NOT added to L separately (the unused part of
// them is already inside l, the used part is effective green).
//
// Effective green is g = G + Y + AR − l (HCM: displayed green plus the change and clearance interval minus lost
// time). Summed over the phases this gives Σ g = C − L, the green that Webster splits in proportion to the
// critical flow ratios; conversely the displayed green is G = g − Y − AR + l. For example with Y = 4, AR = 2 and
// l = 4 (2 s start-up plus 2 s clearance lost), g = G + 2; with l = Y + AR, g = G.
//
// The offset is the time from the system cycle reference (time 0 mod C) to the start of the first phase's green;
// the first phase is the coordinated phase.
package signal

import (
	"errors"
	"fmt"
	"strings"
)

// Reason says which path produced a plan (pkg/wire maps it to greenwave.v1.PlanReason).
type Reason int

// Reasons; Reasons lists them all.
const (
	// ReasonUnspecified is the zero value; Webster records it as ReasonPredictive.
	ReasonUnspecified Reason = iota
	// ReasonPredictive: Webster on predicted flows.
	ReasonPredictive
	// ReasonTimeOfDay: Webster (or a stored plan) on historical time-of-day flows.
	ReasonTimeOfDay
	// ReasonFixedTime: the configured known-safe plan, or the minimum plan.
	ReasonFixedTime
	// ReasonOverride: an operator's pinned plan.
	ReasonOverride
)

// Reasons returns every reason, ReasonUnspecified first.
func Reasons() []Reason {
	return []Reason{ReasonUnspecified, ReasonPredictive, ReasonTimeOfDay, ReasonFixedTime, ReasonOverride}
}

// String returns the reason's lower-case name.
func (r Reason) String() string {
	switch r {
	case ReasonUnspecified:
		return "unspecified"
	case ReasonPredictive:
		return "predictive"
	case ReasonTimeOfDay:
		return "time_of_day"
	case ReasonFixedTime:
		return "fixed_time"
	case ReasonOverride:
		return "override"
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// PhaseTiming is one phase's share of the cycle, in seconds.
type PhaseTiming struct {
	PhaseID string
	// GreenS is the displayed green; YellowS and AllRedS are the configured change and clearance intervals.
	GreenS, YellowS, AllRedS float64
	// FlowRatio is the phase's critical flow ratio y = max q/(s·f) over its approaches (0 for fallbacks).
	FlowRatio float64
	// Approaches are the approaches the phase serves (a copy of the configuration).
	Approaches []string
	// MinGreenS and MaxGreenS are the actuation bounds a local actuated controller may move the green within
	// (see Actuation); both 0 for a plan without bounds, which runs GreenS exactly.
	MinGreenS, MaxGreenS float64
}

// SpanS is the phase's share of the cycle: green + yellow + all-red.
func (pt PhaseTiming) SpanS() float64 { return pt.GreenS + pt.YellowS + pt.AllRedS }

// Plan is a complete signal timing plan for one intersection. Only plans that pass Validate may be sent to a
// controller; Webster, FixedTimePlan, MinimumPlan and Safe only ever return such plans (or an error).
type Plan struct {
	IntersectionID string
	// CycleS is the cycle length; it equals the sum of every phase's green, yellow and all-red.
	CycleS float64
	// OffsetS is the start of the first phase's green relative to the system cycle reference, in [0, CycleS).
	OffsetS float64
	// Phases are in the intersection's configured order, each exactly once.
	Phases []PhaseTiming
	Reason Reason
	// Detail explains the plan in words: the Webster numbers, which constraints bound it, why a fallback was taken.
	Detail string
	// Y is the sum of the phases' critical flow ratios; LostTimeS is L, the sum of the phases' lost times.
	Y, LostTimeS float64
	// Oversaturated is true when Y reached Options.OversaturationY: the plan runs the maximum cycle.
	Oversaturated bool
	// CycleRateLimited is true when the cycle was held back by Timing.MaxCycleChangeS.
	CycleRateLimited bool
	// SaturationFactor is the weather factor applied to saturation flows (1 = none).
	SaturationFactor float64
	// EstimatedDelayS is Webster's average delay per vehicle under this plan (see DelayWebster); 0 for plans
	// computed without flows.
	EstimatedDelayS float64
	// GapOutS is the gap between vehicles after which a local actuated controller ends a green past its
	// MinGreenS; 0 for a plan without actuation bounds.
	GapOutS float64
	// FallbackCauses are why Decide fell back from predictions (sorted, distinct), and CauseDetectorRecall when it
	// held an approach with a failed detector at recall (on a predictive plan too); nil otherwise.
	FallbackCauses []Cause
}

// Errors, checked with errors.Is.
var (
	// ErrInvalidInput: flows or options that cannot be planned from (NaN, negative, infinite, missing, unknown).
	ErrInvalidInput = errors.New("invalid planning input")
	// ErrInfeasible: the intersection's constraints (or configuration) admit no valid plan.
	ErrInfeasible = errors.New("constraints cannot be met")
	// ErrInvalidPlan: a plan breaks its intersection's constraints; the error is a *PlanError.
	ErrInvalidPlan = errors.New("invalid signal plan")
	// ErrNoSafePlan: Safe found no valid plan at all, because the intersection's configuration is infeasible.
	ErrNoSafePlan = errors.New("no safe signal plan")
)

// ViolationKind classifies a constraint a plan breaks.
type ViolationKind int

// Violation kinds reported by Validate.
const (
	// ViolationIntersection: the plan is for another intersection.
	ViolationIntersection ViolationKind = iota + 1
	// ViolationPhases: a phase is missing, unknown, duplicated or out of order.
	ViolationPhases
	// ViolationNonFinite: a number in the plan is NaN or infinite.
	ViolationNonFinite
	// ViolationMinGreen: a green is below the phase's effective minimum green (vehicle or pedestrian).
	ViolationMinGreen
	// ViolationMaxGreen: a green is above the phase's maximum green.
	ViolationMaxGreen
	// ViolationYellow: a yellow differs from the configured yellow.
	ViolationYellow
	// ViolationAllRed: an all-red differs from the configured all-red.
	ViolationAllRed
	// ViolationCycleSum: the phases' green, yellow and all-red do not add up to the cycle.
	ViolationCycleSum
	// ViolationCycleBounds: the cycle is outside [MinCycleS, MaxCycleS].
	ViolationCycleBounds
	// ViolationOffset: the offset is outside [0, cycle).
	ViolationOffset
	// ViolationActuation: actuation bounds outside the phase's green limits or not around its green, on some
	// phases only, or a gap-out missing, not positive, above MaxGapOutS or without bounds.
	ViolationActuation
)

// String returns the kind's name.
func (k ViolationKind) String() string {
	switch k {
	case ViolationIntersection:
		return "intersection"
	case ViolationPhases:
		return "phases"
	case ViolationNonFinite:
		return "non_finite"
	case ViolationMinGreen:
		return "min_green"
	case ViolationMaxGreen:
		return "max_green"
	case ViolationYellow:
		return "yellow"
	case ViolationAllRed:
		return "all_red"
	case ViolationCycleSum:
		return "cycle_sum"
	case ViolationCycleBounds:
		return "cycle_bounds"
	case ViolationOffset:
		return "offset"
	case ViolationActuation:
		return "actuation"
	}
	return fmt.Sprintf("violation(%d)", int(k))
}

// Violation is one broken constraint.
type Violation struct {
	Kind ViolationKind
	// Phase is the phase concerned, "" for plan-level violations.
	Phase string
	// Msg describes the violation with the offending and the allowed values.
	Msg string
}

// String formats the violation for an error message.
func (v Violation) String() string {
	if v.Phase != "" {
		return fmt.Sprintf("%s: phase %s: %s", v.Kind, v.Phase, v.Msg)
	}
	return fmt.Sprintf("%s: %s", v.Kind, v.Msg)
}

// PlanError lists every constraint a plan breaks. It unwraps to ErrInvalidPlan.
type PlanError struct {
	IntersectionID string
	Violations     []Violation
}

// Error implements error.
func (e *PlanError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plan for intersection %q breaks %d constraint(s): ", e.IntersectionID, len(e.Violations))
	for i, v := range e.Violations {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(v.String())
	}
	return b.String()
}

// Unwrap returns ErrInvalidPlan.
func (e *PlanError) Unwrap() error { return ErrInvalidPlan }

// Has reports whether the error contains a violation of the given kind.
func (e *PlanError) Has(k ViolationKind) bool {
	for _, v := range e.Violations {
		if v.Kind == k {
			return true
		}
	}
	return false
}
