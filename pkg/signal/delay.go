package signal

import (
	"math"

	"github.com/greenwave-city/greenwave/pkg/topology"
)

const (
	// DelayMaxX is the degree of saturation at which Webster's delay terms are evaluated at most: the formula
	// diverges as x → 1 and does not hold for x ≥ 1.
	DelayMaxX = 0.98
	// DelayAnalysisPeriodS is the analysis period T of the deterministic overflow term used for x > 1.
	DelayAnalysisPeriodS = 900
	// DelayMaxOverflowX caps x in the overflow term so the estimate stays finite when an approach has no
	// effective green or an absurd flow; beyond ten times capacity the number means "gridlock" anyway.
	DelayMaxOverflowX = 10
)

// DelayWebster returns the flow-weighted average delay per vehicle, in seconds, that Webster's formula predicts
// for the plan and flows (approach ID → veh/h):
//
//	d = C(1−λ)² / (2(1−λx)) + x² / (2q(1−x)) − 0.65 (C/q²)^(1/3) x^(2+5λ)
//
// per approach, with C the cycle, q the flow and s the saturation flow (s·lanes·plan.SaturationFactor) in
// veh/s, λ = g/C the approach's effective green ratio (g summed over every phase that serves it; effective
// green = green + yellow + all-red − lost time, see the package comment) and x = q/(λs) its degree of
// saturation.
//
// Oversaturation: Webster's formula only holds for x < 1, so its terms are evaluated at min(x, DelayMaxX), and
// for x > 1 the deterministic overflow delay of a queue growing over an analysis period T,
// T/2 · (min(x, DelayMaxOverflowX) − 1) with T = DelayAnalysisPeriodS, is added (as in the HCM's
// incremental-delay term). A negative result (the third term is an empirical correction) is raised to 0.
//
// Approaches with zero, missing or invalid (NaN, negative, infinite) flow carry no weight. It returns 0 when no
// approach has traffic and NaN when the plan's cycle is not a positive finite number.
func DelayWebster(in topology.Intersection, plan Plan, flows map[string]float64) (avgDelayS float64) {
	cycle := plan.CycleS
	if !(cycle > 0) || math.IsInf(cycle, 0) {
		return math.NaN()
	}
	factor := plan.SaturationFactor
	if !(factor > 0 && factor <= 1) {
		factor = 1
	}
	// Normalise the weights by the largest flow so that Σ q·d cannot overflow for absurd flows.
	maxQ := 0.0
	for _, a := range in.Approaches {
		if q, ok := flows[a.ID]; ok && q > maxQ && !math.IsInf(q, 1) {
			maxQ = q
		}
	}
	if maxQ == 0 {
		return 0
	}
	var sumW, sumWD float64
	for _, a := range in.Approaches {
		q := flows[a.ID]
		if !(q > 0) || math.IsInf(q, 1) {
			continue
		}
		g := 0.0
		for _, pt := range plan.Phases {
			k := phaseIndex(in, pt.PhaseID)
			if k < 0 || !serves(in.Phases[k], a.ID) {
				continue
			}
			if eg := pt.GreenS + pt.YellowS + pt.AllRedS - in.Phases[k].LostTimeS; eg > 0 {
				g += eg
			}
		}
		d := websterApproachDelay(cycle, g/cycle, q/3600, a.CapacityVPH()*factor/3600)
		if !isFinite(d) {
			continue
		}
		w := q / maxQ
		sumW += w
		sumWD += w * d
	}
	if sumW == 0 {
		return 0
	}
	return sumWD / sumW
}

// websterApproachDelay is Webster's delay for one approach: cycle c (s), green ratio lambda, flow q and
// saturation flow s (veh/s), q > 0.
func websterApproachDelay(c, lambda, q, s float64) float64 {
	lambda = clamp(lambda, 0, 1)
	x := math.Inf(1)
	if lambda*s > 0 {
		x = q / (lambda * s)
	}
	xc := math.Min(x, DelayMaxX)
	cq := math.Cbrt(q)
	d := c*(1-lambda)*(1-lambda)/(2*(1-lambda*xc)) +
		xc*xc/(2*q*(1-xc)) -
		0.65*math.Cbrt(c)/(cq*cq)*math.Pow(xc, 2+5*lambda) // (C/q²)^(1/3) without underflowing q²
	if x > 1 {
		d += DelayAnalysisPeriodS / 2 * (math.Min(x, DelayMaxOverflowX) - 1)
	}
	return math.Max(d, 0)
}

func serves(ph topology.Phase, approach string) bool {
	for _, a := range ph.Approaches {
		if a == approach {
			return true
		}
	}
	return false
}
