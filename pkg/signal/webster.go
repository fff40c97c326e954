package signal

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/greenwave-city/greenwave/pkg/topology"
)

const (
	// DefaultOversaturationY is the critical flow ratio sum at or above which Webster treats an intersection as
	// oversaturated when Options.OversaturationY is 0. Webster's formula grows without bound as Y approaches 1
	// and is unreliable above about 0.9.
	DefaultOversaturationY = 0.9
	// MinSaturationFactor is the smallest Options.SaturationFactor accepted; SaturationFactor never returns less.
	MinSaturationFactor = 0.5
	// MaxFlowRatio caps a phase's critical flow ratio y so that Y stays finite for absurd flows (1e12 veh/h);
	// any y this large is oversaturated anyway.
	MaxFlowRatio = 1e6
	// negligibleWeight: phases whose share y/Y is below this get no demand-driven green (avoids 1/w overflow).
	negligibleWeight = 1e-12
)

// Options tune Webster. The zero value is valid: no weather reduction, DefaultOversaturationY, no rate limit,
// Webster's own cycle, offset 0, ReasonPredictive.
type Options struct {
	// SaturationFactor multiplies every approach's saturation flow, typically SaturationFactor(weather).
	// 0 means 1; otherwise it must lie in [MinSaturationFactor, 1].
	SaturationFactor float64
	// OversaturationY is the Y at or above which the plan runs the maximum cycle with greens split by flow
	// ratio and Oversaturated set. 0 means DefaultOversaturationY; otherwise it must lie in (0, 1).
	OversaturationY float64
	// PreviousCycleS is the cycle of the plan now running; with Timing.MaxCycleChangeS > 0 the new cycle
	// differs from it by at most that much (CycleRateLimited is set when this binds). 0 means no previous plan.
	// Hard cycle bounds win over the rate limit (after a configuration change, for example).
	PreviousCycleS float64
	// CycleS, when positive, replaces Webster's optimal (or the oversaturated maximum) cycle, for example the
	// common cycle of a coordinated corridor. It is still subject to the rate limit and the hard bounds.
	CycleS float64
	// OffsetS is the plan's offset (see Offsets); it is reduced modulo the cycle into [0, cycle).
	OffsetS float64
	// Reason is recorded in the plan; ReasonUnspecified means ReasonPredictive.
	Reason Reason
}

func (o Options) resolve() (factor, threshold float64, err error) {
	factor, threshold = o.SaturationFactor, o.OversaturationY
	if factor == 0 {
		factor = 1
	}
	if threshold == 0 {
		threshold = DefaultOversaturationY
	}
	var ps []string
	if !(factor >= MinSaturationFactor && factor <= 1) {
		ps = append(ps, fmt.Sprintf("saturation factor %g outside [%g, 1]", o.SaturationFactor, float64(MinSaturationFactor)))
	}
	if !(threshold > 0 && threshold < 1) {
		ps = append(ps, fmt.Sprintf("oversaturation threshold %g outside (0, 1)", o.OversaturationY))
	}
	if !(o.PreviousCycleS >= 0 && o.PreviousCycleS <= maxConfigS) {
		ps = append(ps, fmt.Sprintf("previous cycle %g is not a duration", o.PreviousCycleS))
	}
	if !(o.CycleS >= 0 && o.CycleS <= maxConfigS) {
		ps = append(ps, fmt.Sprintf("requested cycle %g is not a duration", o.CycleS))
	}
	if !isFinite(o.OffsetS) {
		ps = append(ps, fmt.Sprintf("offset %g is not finite", o.OffsetS))
	}
	if len(ps) > 0 {
		return 0, 0, fmt.Errorf("%w: options: %s", ErrInvalidInput, strings.Join(ps, "; "))
	}
	return factor, threshold, nil
}

// Webster computes a timing plan for the intersection from approach flows (approach ID → veh/h).
//
// Every approach of the intersection must have a flow, and flows may name no other approach; a flow that is
// NaN, negative or infinite is invalid. Invalid flows or options return an error wrapping ErrInvalidInput, an
// intersection whose constraints admit no plan (see Feasible) one wrapping ErrInfeasible: callers then fall back
// (see Safe). Zero flows are valid: with no traffic at all the plan runs the shortest allowed cycle and minimum
// greens (stretched equally if that cycle is longer than their sum); finite huge flows take the oversaturated
// path. A returned plan always passes Validate.
//
// The method (conventions in the package comment):
//
//   - each phase's critical flow ratio is y = max over its approaches of q / (s·lanes·f), with f the saturation
//     factor (weather), capped at MaxFlowRatio; Y = Σ y. An approach served by several phases counts in each.
//   - L = Σ phase lost time (Phase.LostTimeS; yellow and all-red are not added, see the package comment).
//   - Y < threshold: Webster's optimal cycle C0 = (1.5·L + 5)/(1 − Y). Y ≥ threshold: the maximum cycle,
//     Oversaturated set. Y = 0: the shortest allowed cycle. Options.CycleS, when set, replaces all of these.
//   - the cycle is moved to within Timing.MaxCycleChangeS of Options.PreviousCycleS (rate limit), then into
//     [max(MinCycleS, Σ min spans), min(MaxCycleS, Σ max spans)] (hard bounds win).
//   - effective green C − L is split in proportion to y; displayed green G = g − yellow − all-red + lost time.
//     A phase whose green would leave [effective min green, max green] is held at the bound and the remaining
//     green is redistributed over the other phases in proportion to their y, to the fixed point (computed
//     exactly: all unclamped phases get the same effective green per unit of y). Green that phases with demand
//     cannot take (all at max green) goes to phases without demand in equal effective shares; with Y = 0 all
//     phases share equally.
//   - EstimatedDelayS is DelayWebster of the result.
func Webster(in topology.Intersection, flows map[string]float64, opts Options) (Plan, error) {
	factor, threshold, err := opts.resolve()
	if err != nil {
		return Plan{}, fmt.Errorf("webster %q: %w", in.ID, err)
	}
	if err := Feasible(in); err != nil {
		return Plan{}, fmt.Errorf("webster: %w", err)
	}
	if err := checkFlows(in, flows); err != nil {
		return Plan{}, fmt.Errorf("webster %q: %w", in.ID, err)
	}
	n := len(in.Phases)
	scratch := make([]float64, 7*n) // ys, weights, and splitGreens' five vectors
	ys, weights := scratch[:n], scratch[n:2*n]
	var bigY, lost float64
	for i, ph := range in.Phases {
		for _, id := range ph.Approaches {
			a, ok := in.Approach(id)
			capacity := a.CapacityVPH() * factor
			if !ok || !(capacity > 0) || math.IsInf(capacity, 0) {
				return Plan{}, fmt.Errorf("webster %q: %w: phase %s approach %q has no usable saturation flow",
					in.ID, ErrInfeasible, ph.ID, id)
			}
			ys[i] = math.Max(ys[i], flows[id]/capacity)
		}
		ys[i] = math.Min(ys[i], MaxFlowRatio)
		bigY += ys[i]
		lost += ph.LostTimeS
	}

	notes := make([]byte, 0, 128)
	note := func(format string, args ...float64) {
		notes = appendf(append(notes, "; "...), format, args...)
	}
	over := bigY >= threshold
	var c, c0 float64
	switch {
	case opts.CycleS > 0:
		c = opts.CycleS
		note("cycle %s requested", c)
		if over {
			note("oversaturated: Y=% ≥ %, greens split by flow ratio", bigY, threshold)
		}
	case over:
		c = in.Timing.MaxCycleS
		note("oversaturated: Y=% ≥ %, running the maximum cycle with greens split by flow ratio", bigY, threshold)
	case bigY == 0:
		c, _ = cycleRange(in)
		note("no traffic: shortest allowed cycle, minimum greens")
	default:
		c0 = (1.5*lost + 5) / (1 - bigY)
		c = c0
	}
	limited := false
	if prev, step := opts.PreviousCycleS, in.Timing.MaxCycleChangeS; prev > 0 && step > 0 {
		if l := clamp(c, prev-step, prev+step); l != c {
			note("cycle rate-limited from %s to %s (previous %s, max change %s)", c, l, prev, step)
			c, limited = l, true
		}
	}
	lo, hi := cycleRange(in)
	if b := clamp(c, lo, hi); b != c {
		note("cycle moved from %s to %s by the cycle bounds [%, %]s", c, b, lo, hi)
		c = b
	}

	if bigY > 0 {
		for i, y := range ys {
			weights[i] = y / bigY
		}
	}
	greens := splitGreens(in, c, weights, scratch[2*n:])
	p := Plan{
		IntersectionID:   in.ID,
		CycleS:           c,
		OffsetS:          wrapOffset(opts.OffsetS, c),
		Phases:           newPhases(in),
		Reason:           opts.Reason,
		Y:                bigY,
		LostTimeS:        lost,
		Oversaturated:    over,
		CycleRateLimited: limited,
		SaturationFactor: factor,
	}
	if p.Reason == ReasonUnspecified {
		p.Reason = ReasonPredictive
	}
	for i, ph := range in.Phases {
		p.Phases[i].GreenS = greens[i]
		p.Phases[i].FlowRatio = ys[i]
		switch {
		case greens[i] <= ph.EffectiveMinGreenS() && ph.EffectiveMinGreenS() < ph.MaxGreenS:
			notes = appendf(append(append(notes, "; "...), ph.ID...), " at min green %s", greens[i])
		case greens[i] >= ph.MaxGreenS:
			notes = appendf(append(append(notes, "; "...), ph.ID...), " at max green %s", greens[i])
		}
	}
	if factor < 1 {
		note("saturation flows ×% (weather)", factor)
	}
	p.EstimatedDelayS = DelayWebster(in, p, flows)

	detail := make([]byte, 0, 64+len(notes))
	detail = appendf(detail, "webster: Y=% L=%s", bigY, lost)
	if c0 > 0 {
		detail = appendf(detail, " C0=%s", c0)
	}
	detail = appendf(detail, " cycle=%s", c)
	p.Detail = string(append(detail, notes...))

	if err := Validate(in, p); err != nil {
		// Unreachable for a feasible intersection; kept so that no invalid plan can ever leave this function.
		return Plan{}, fmt.Errorf("webster %q: computed plan is invalid: %w", in.ID, err)
	}
	return p, nil
}

// checkFlows requires a valid flow for every approach and no flow for anything else.
func checkFlows(in topology.Intersection, flows map[string]float64) error {
	var ps []string
	for _, a := range in.Approaches {
		q, ok := flows[a.ID]
		switch {
		case !ok:
			ps = append(ps, fmt.Sprintf("approach %s: no flow", a.ID))
		case !(q >= 0) || math.IsInf(q, 1):
			ps = append(ps, fmt.Sprintf("approach %s: flow %g veh/h is not a finite non-negative number", a.ID, q))
		}
	}
	if len(flows) > len(in.Approaches)-countMissing(in, flows) {
		var unknown []string
		for id := range flows {
			if _, ok := in.Approach(id); !ok {
				unknown = append(unknown, fmt.Sprintf("%q", id))
			}
		}
		slices.Sort(unknown)
		ps = append(ps, "flows for unknown approaches "+strings.Join(unknown, ", "))
	}
	if len(ps) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidInput, strings.Join(ps, "; "))
	}
	return nil
}

func countMissing(in topology.Intersection, flows map[string]float64) int {
	n := 0
	for _, a := range in.Approaches {
		if _, ok := flows[a.ID]; !ok {
			n++
		}
	}
	return n
}

// splitGreens returns displayed greens, one per phase, that add up to cycle − Σ(yellow + all-red), each within
// [effective min green, max green], splitting effective green in proportion to weights (see Webster).
// The cycle must lie in cycleRange(in). buf must hold 5·len(in.Phases) values; the result is part of it.
func splitGreens(in topology.Intersection, cycle float64, weights, buf []float64) []float64 {
	n := len(in.Phases)
	w, c, lo, hi, out := buf[:n], buf[n:2*n], buf[2*n:3*n], buf[3*n:4*n], buf[4*n:]
	total := cycle
	demandMax := 0.0 // the most green the phases can take in stage 1
	for i, ph := range in.Phases {
		total -= ph.YellowS + ph.AllRedS
		w[i] = weights[i]
		if !(w[i] >= negligibleWeight) {
			w[i] = 0
		}
		// Displayed green G = effective green − yellow − all-red + lost time.
		c[i] = ph.LostTimeS - ph.YellowS - ph.AllRedS
		lo[i], hi[i] = ph.EffectiveMinGreenS(), ph.MaxGreenS
		if w[i] > 0 {
			demandMax += hi[i]
		} else {
			demandMax += lo[i]
		}
	}
	if total > demandMax+BoundToleranceS {
		// The phases with demand are all at max green: share the rest equally (in effective green) among the
		// phases without demand, holding the others at max green.
		for i := range w {
			if w[i] > 0 {
				w[i], lo[i] = 0, hi[i]
			} else {
				w[i] = 1
			}
		}
	}
	share(total, w, c, lo, hi, out)
	return out
}

// share sets out[i] = clamp(w[i]·λ + c[i], lo[i], hi[i]) (or lo[i] where w[i] = 0) for the λ that makes Σ out
// equal total. Σ out is piecewise linear and non-decreasing in λ, with breakpoints where a phase reaches a
// bound; share finds the segment holding total and interpolates, which is exact. total outside the reachable
// range gives the nearest end.
func share(total float64, w, c, lo, hi, out []float64) {
	at := func(i int, lambda float64) float64 {
		if w[i] == 0 {
			return lo[i]
		}
		return clamp(w[i]*lambda+c[i], lo[i], hi[i])
	}
	sum := func(lambda float64) float64 {
		s := 0.0
		for i := range w {
			s += at(i, lambda)
		}
		return s
	}
	var arr [16]float64
	bps := arr[:0]
	for i := range w {
		if w[i] > 0 {
			bps = append(bps, (lo[i]-c[i])/w[i], (hi[i]-c[i])/w[i])
		}
	}
	if len(bps) == 0 {
		copy(out, lo)
		return
	}
	slices.Sort(bps)
	lambda := bps[len(bps)-1]
	prevB, prevS := bps[0], sum(bps[0])
	if total <= prevS {
		lambda = prevB
	} else {
		for _, b := range bps[1:] {
			s := sum(b)
			if s >= total {
				lambda = b
				if s > prevS {
					lambda = prevB + (total-prevS)/(s-prevS)*(b-prevB)
				}
				break
			}
			prevB, prevS = b, s
		}
	}
	got := 0.0
	for i := range w {
		out[i] = at(i, lambda)
		got += out[i]
	}
	// Put the rounding residual on the phase with the most room, so Σ out = total to the last bit or so.
	if r := total - got; r != 0 {
		best, room := -1, 0.0
		for i := range w {
			rm := hi[i] - out[i]
			if r < 0 {
				rm = out[i] - lo[i]
			}
			if rm > room {
				best, room = i, rm
			}
		}
		if best >= 0 {
			out[best] = clamp(out[best]+r, lo[best], hi[best])
		}
	}
}

// appendf appends format to b with each '%' replaced by the next value, formatted with four significant digits
// (so "%s" reads as the value followed by the unit s). It is a cheap stand-in for fmt.Appendf on Webster's hot
// path, which matters under the race detector.
func appendf(b []byte, format string, values ...float64) []byte {
	for {
		i := strings.IndexByte(format, '%')
		if i < 0 || len(values) == 0 {
			return append(b, format...)
		}
		b = strconv.AppendFloat(append(b, format[:i]...), values[0], 'g', 4, 64)
		format, values = format[i+1:], values[1:]
	}
}

func clamp(v, lo, hi float64) float64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// wrapOffset reduces an offset into [0, cycle).
func wrapOffset(offset, cycle float64) float64 {
	if !(cycle > 0) || !isFinite(offset) {
		return 0
	}
	o := math.Mod(offset, cycle)
	if o < 0 {
		o += cycle
	}
	if !(o >= 0 && o < cycle) { // o + cycle rounded up to cycle
		o = 0
	}
	return o
}
