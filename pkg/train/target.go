package train

import (
	"fmt"
	"math"

	"github.com/greenwave-city/greenwave/pkg/features"
)

// target is a predicted quantity: how to read it from a vector and its fixed scale (see Conditioning in the
// package documentation).
type target struct {
	name string
}

func targetOf(name string) (target, error) {
	switch name {
	case "", TargetFlow:
		return target{TargetFlow}, nil
	case TargetOccupancy:
		return target{TargetOccupancy}, nil
	case TargetSpeed:
		return target{TargetSpeed}, nil
	}
	return target{}, fmt.Errorf("target %q not flow, occupancy or speed: %w", name, ErrInvalidConfig)
}

// targetOfSnapshot returns a snapshot's target, which must be named (no default).
func targetOfSnapshot(name string) (target, error) {
	switch name {
	case TargetFlow, TargetOccupancy, TargetSpeed:
		return targetOf(name)
	}
	return target{}, fmt.Errorf("target %q: %w", name, ErrInvalidSnapshot)
}

// scale returns the fixed divisor of the target for vector v: the capacity for flow, 1 for occupancy, 100 km/h
// for speed.
func (t target) scale(v features.Vector) (float64, error) {
	switch t.name {
	case TargetOccupancy:
		return 1, nil
	case TargetSpeed:
		return features.SpeedScaleKMH, nil
	}
	c := v.CapacityVPH
	if !(c > 0) || math.IsInf(c, 1) {
		return 0, fmt.Errorf("approach %q capacity %g veh/h not finite and > 0: %w", v.ApproachID, c, ErrInvalidInput)
	}
	return c, nil
}

// physical returns v within the target's physical range: flow and speed are never negative, occupancy lies in
// [0, 1]. NaN stays NaN (it means "no forecast" and is handled by the caller). It is applied once, where
// forecasts and interval bounds are formed — Model.Predict, and the learner's test-then-train forecasts and
// intervals —, so the predictor, the trainer's metrics and `greenwave eval` all see the same, served, values.
//
// Clamping is monotone, so a clamped point forecast and interval are exactly the median and the quantiles of
// the model's predictive distribution censored at the range's bounds (the median of a normal is its mean): a
// label inside the linear interval is inside the clamped one, and coverage never goes down. The point error never
// goes up either, as every label lies in the range: |y − clamp(f)| ≤ |y − f|.
func (t target) physical(v float64) float64 {
	switch {
	case v > 1 && t.name == TargetOccupancy:
		return 1
	case v > 0, math.IsNaN(v):
		return v
	}
	return 0 // also -0 and -Inf
}

// Observed returns the target (a Config.Target name; anything but occupancy and speed reads the flow) of vector v
// in natural units, and whether it may label or score a forecast: measured, not imputed, not a gap, finite and of
// sane magnitude. It is the one rule the learner, the predictor and `greenwave eval` share.
func Observed(name string, v features.Vector) (float64, bool) { return target{name}.observed(v) }

// observed returns the target in natural units and whether it may label or score a forecast: measured, not
// imputed, not a gap, finite and of sane magnitude.
func (t target) observed(v features.Vector) (float64, bool) {
	o := v.Observed
	if v.Gap || o.Imputed {
		return 0, false
	}
	var y float64
	switch t.name {
	case TargetOccupancy:
		if !o.HasOccupancy {
			return 0, false
		}
		y = o.Occupancy
	case TargetSpeed:
		if !o.HasSpeed {
			return 0, false
		}
		y = o.SpeedKMH
	default:
		if o.NoFlow {
			return 0, false
		}
		y = o.FlowVPH
	}
	if !(math.Abs(y) <= maxAbsValue) { // also NaN
		return 0, false
	}
	return y, true
}
