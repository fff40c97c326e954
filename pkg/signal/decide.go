package signal

import (
	"fmt"
	"math"
	"slices"
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

// Mode restricts which paths Decide may take; operators pin it with an override.
type Mode int

const (
	// ModeAdaptive is the normal chain: predictions if trusted, else time-of-day, else fixed-time.
	ModeAdaptive Mode = iota
	// ModeTimeOfDay skips predictions: time-of-day flows, else fixed-time.
	ModeTimeOfDay
	// ModeFixedTime runs the configured fixed-time plan (or the minimum plan).
	ModeFixedTime
)

// Cause is why Decide did not plan on predictions; the values are metric labels.
type Cause string

// Causes reported in Plan.FallbackCauses.
const (
	CauseNoForecast     Cause = "no_forecast"      // an approach had no forecast at the planning horizon
	CauseStale          Cause = "stale"            // a model was older than the predictor's maximum age
	CauseDrift          Cause = "drift"            // a model's drift detector fired
	CauseNoModel        Cause = "no_model"         // a baseline stood in for a model not trained yet
	CauseInvalid        Cause = "invalid_forecast" // a forecast was NaN, infinite or negative
	CauseWideInterval   Cause = "wide_interval"    // a prediction interval was wider than the gate allows
	CausePlanRejected   Cause = "plan_rejected"    // Webster on the forecasts failed or gave an invalid plan
	CauseNoHistory      Cause = "no_history"       // no time-of-day flows for this time of week (or unusable)
	CauseOperatorPinned Cause = "operator_pinned"  // an override pinned a mode that skips predictions
)

// DecideInput is everything a plan decision needs.
type DecideInput struct {
	// Mode restricts the paths taken (ModeAdaptive: all).
	Mode      Mode
	Forecasts []Forecast
	// TimeOfDayFlows are historical flows for this time of week (approach → veh/h); nil when none are known.
	TimeOfDayFlows map[string]float64
	// PreviousCycleS is the cycle now running (0: none), for rate limiting.
	PreviousCycleS float64
	// SaturationFactor is the weather reduction (0 or 1: none).
	SaturationFactor float64
	// OffsetS is the coordination offset for this intersection.
	OffsetS float64
	// CycleS, when positive, is the common cycle of the intersection's coordinated corridor (Options.CycleS).
	CycleS float64
	Gate   Gate
}

// Decide chooses the plan for an intersection: Webster on the forecasts when they pass the confidence gate,
// otherwise Webster on time-of-day flows, otherwise the fixed-time plan — and, whatever path was taken, only a
// plan that passes Validate (Safe). d.Mode can skip the first paths. The plan's Reason and Detail say which
// path and why, and FallbackCauses lists the causes of every fallback taken (nil for a predictive plan).
func Decide(in topology.Intersection, d DecideInput) (Plan, error) {
	opts := Options{PreviousCycleS: d.PreviousCycleS, SaturationFactor: d.SaturationFactor, OffsetS: d.OffsetS, CycleS: d.CycleS}
	var causes []Cause
	timeOfDay := func() (Plan, error) {
		if d.TimeOfDayFlows == nil {
			causes = append(causes, CauseNoHistory)
			return Plan{}, fmt.Errorf("%w: no historical flows for this time of week", ErrInvalidInput)
		}
		o := opts
		o.Reason = ReasonTimeOfDay
		p, err := Webster(in, d.TimeOfDayFlows, o)
		if err != nil {
			causes = append(causes, CauseNoHistory)
			return p, err
		}
		p.Detail = "time-of-day plan from historical flows; " + p.Detail
		return p, nil
	}
	finish := func(p Plan, err error) (Plan, error) {
		if err != nil {
			return p, err
		}
		if p.Reason != ReasonPredictive {
			p.FallbackCauses = uniqueCauses(causes)
		}
		return p, nil
	}
	switch d.Mode {
	case ModeFixedTime:
		causes = append(causes, CauseOperatorPinned)
		p, err := FixedTimePlan(in)
		return finish(Safe(in, p, err))
	case ModeTimeOfDay:
		causes = append(causes, CauseOperatorPinned)
		p, err := timeOfDay()
		return finish(Safe(in, p, err))
	}
	flows, why, gateCauses := gate(in, d.Forecasts, d.Gate)
	if why != "" {
		causes = append(causes, gateCauses...)
		return finish(Safe(in, Plan{Reason: ReasonPredictive}, fmt.Errorf("predictions not trusted: %s", why), timeOfDay))
	}
	opts.Reason = ReasonPredictive
	p, err := Webster(in, flows, opts)
	if err == nil {
		p.Detail = "predictive Webster plan; " + p.Detail
	} else {
		causes = append(causes, CausePlanRejected)
	}
	return finish(Safe(in, p, err, timeOfDay))
}

func uniqueCauses(cs []Cause) []Cause {
	if len(cs) == 0 {
		return nil
	}
	out := slices.Clone(cs)
	slices.Sort(out)
	return slices.Compact(out)
}

// gate returns the forecast flows when every approach has a trustworthy forecast, or why not.
func gate(in topology.Intersection, fcs []Forecast, g Gate) (map[string]float64, string, []Cause) {
	if g.MaxRelativeInterval <= 0 {
		g.MaxRelativeInterval = DefaultGate().MaxRelativeInterval
	}
	by := map[string]Forecast{}
	for _, f := range fcs {
		by[f.ApproachID] = f
	}
	flows := map[string]float64{}
	var why []string
	var causes []Cause
	no := func(c Cause, msg string) { why, causes = append(why, msg), append(causes, c) }
	for _, a := range in.Approaches {
		f, ok := by[a.ID]
		switch {
		case !ok:
			no(CauseNoForecast, a.ID+": no forecast")
		case f.Stale:
			no(CauseStale, a.ID+": model stale")
		case f.Drifting:
			no(CauseDrift, a.ID+": model in drift")
		case f.Baseline:
			no(CauseNoModel, a.ID+": no trained model yet")
		case !isFinite(f.FlowVPH) || f.FlowVPH < 0 || !isFinite(f.LowerVPH) || !isFinite(f.UpperVPH) || f.UpperVPH < f.LowerVPH:
			no(CauseInvalid, a.ID+": forecast not a valid flow")
		case !((f.UpperVPH-f.LowerVPH)/math.Max(a.CapacityVPH(), 1) <= g.MaxRelativeInterval):
			no(CauseWideInterval, fmt.Sprintf("%s: interval %.0f–%.0f veh/h too wide", a.ID, f.LowerVPH, f.UpperVPH))
		default:
			flows[a.ID] = f.FlowVPH
		}
	}
	return flows, strings.Join(why, "; "), causes
}
