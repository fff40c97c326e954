package signal

import (
	"fmt"
	"math"
	"strings"

	"github.com/greenwave-city/greenwave/pkg/topology"
)

// Forecast is one approach's predicted demand as signal-control sees it.
type Forecast struct {
	ApproachID string
	// FlowVPH is the point forecast; LowerVPH and UpperVPH bound its prediction interval.
	FlowVPH, LowerVPH, UpperVPH float64
	// Stale: the model is older than the predictor's maximum age. Drifting: its drift detector fired.
	// Baseline: no trained model existed and a baseline produced the value.
	Stale, Drifting, Baseline bool
}

// Gate is the confidence gate that decides whether forecasts may drive a plan.
type Gate struct {
	// MaxRelativeInterval bounds the interval width (upper − lower) relative to the approach capacity; wider
	// intervals are too uncertain to plan on. Default 0.5.
	MaxRelativeInterval float64
}

// DefaultGate returns the documented defaults.
func DefaultGate() Gate { return Gate{MaxRelativeInterval: 0.5} }

// DecideInput is everything a plan decision needs.
type DecideInput struct {
	Forecasts []Forecast
	// TimeOfDayFlows are historical flows for this time of week (approach → veh/h); nil when none are known.
	TimeOfDayFlows map[string]float64
	// PreviousCycleS is the cycle now running (0: none), for rate limiting.
	PreviousCycleS float64
	// SaturationFactor is the weather reduction (0 or 1: none).
	SaturationFactor float64
	// OffsetS is the coordination offset for this intersection.
	OffsetS float64
	Gate    Gate
}

// Decide chooses the plan for an intersection: Webster on the forecasts when they pass the confidence gate,
// otherwise Webster on time-of-day flows, otherwise the fixed-time plan — and, whatever path was taken, only a
// plan that passes Validate (Safe). The plan's Reason and Detail say which path and why.
func Decide(in topology.Intersection, d DecideInput) (Plan, error) {
	opts := Options{PreviousCycleS: d.PreviousCycleS, SaturationFactor: d.SaturationFactor, OffsetS: d.OffsetS}
	timeOfDay := func() (Plan, error) {
		if d.TimeOfDayFlows == nil {
			return Plan{}, fmt.Errorf("%w: no historical flows for this time of week", ErrInvalidInput)
		}
		o := opts
		o.Reason = ReasonTimeOfDay
		p, err := Webster(in, d.TimeOfDayFlows, o)
		if err == nil {
			p.Detail = "time-of-day plan from historical flows; " + p.Detail
		}
		return p, err
	}
	flows, why := gate(in, d.Forecasts, d.Gate)
	if why != "" {
		p, err := Safe(in, Plan{Reason: ReasonPredictive}, fmt.Errorf("predictions not trusted: %s", why), timeOfDay)
		return p, err
	}
	opts.Reason = ReasonPredictive
	p, err := Webster(in, flows, opts)
	if err == nil {
		p.Detail = "predictive Webster plan; " + p.Detail
	}
	return Safe(in, p, err, timeOfDay)
}

// gate returns the forecast flows when every approach has a trustworthy forecast, or why not.
func gate(in topology.Intersection, fcs []Forecast, g Gate) (map[string]float64, string) {
	if g.MaxRelativeInterval <= 0 {
		g.MaxRelativeInterval = DefaultGate().MaxRelativeInterval
	}
	by := map[string]Forecast{}
	for _, f := range fcs {
		by[f.ApproachID] = f
	}
	flows := map[string]float64{}
	var why []string
	for _, a := range in.Approaches {
		f, ok := by[a.ID]
		switch {
		case !ok:
			why = append(why, a.ID+": no forecast")
		case f.Stale:
			why = append(why, a.ID+": model stale")
		case f.Drifting:
			why = append(why, a.ID+": model in drift")
		case f.Baseline:
			why = append(why, a.ID+": no trained model yet")
		case !isFinite(f.FlowVPH) || f.FlowVPH < 0 || !isFinite(f.LowerVPH) || !isFinite(f.UpperVPH):
			why = append(why, a.ID+": forecast not a valid flow")
		case (f.UpperVPH-f.LowerVPH)/math.Max(a.CapacityVPH(), 1) > g.MaxRelativeInterval:
			why = append(why, fmt.Sprintf("%s: interval %.0f–%.0f veh/h too wide", a.ID, f.LowerVPH, f.UpperVPH))
		default:
			flows[a.ID] = f.FlowVPH
		}
	}
	return flows, strings.Join(why, "; ")
}
