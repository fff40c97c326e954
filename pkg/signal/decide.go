package signal

import (
	"fmt"
	"maps"
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
	// NoData: the approach's detectors delivered nothing in the source window and no fresh model forecasts it
	// (greenwave.v1.ApproachPrediction.no_data): a failed detector. The gate holds the approach at
	// Gate.RecallVPH instead of judging the forecast, whatever its other flags say.
	NoData bool
}

// Gate is the confidence gate that decides whether forecasts may drive a plan.
type Gate struct {
	// MaxRelativeInterval bounds the interval width (upper − lower) relative to the approach capacity; wider
	// intervals are too uncertain to plan on. Default 0.5.
	MaxRelativeInterval float64
	// RecallVPH is the demand, veh/h, at which an approach with a failed detector (Forecast.NoData) is held —
	// detector recall, as an actuated controller places a phase whose detector failed on recall. 0, the
	// default, is minimum recall: the approach adds nothing to its phase's flow ratio, so a phase serving only
	// failed approaches gets its minimum green every cycle (served, never skipped: plans are fixed cycles), and
	// a phase shared with a healthy approach is timed by that approach. A positive value reserves green as if
	// that flow had been measured (a fixed recall, the analogue of maximum recall). A NaN, infinite or negative
	// value counts as 0.
	RecallVPH float64
}

// DefaultGate returns the documented defaults.
func DefaultGate() Gate { return Gate{MaxRelativeInterval: 0.5} }

// recallVPH returns the recall demand, 0 for an unusable value.
func (g Gate) recallVPH() float64 {
	if !(g.RecallVPH >= 0) || math.IsInf(g.RecallVPH, 1) {
		return 0
	}
	return g.RecallVPH
}

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
	// CauseDetectorRecall: an approach's detectors reported nothing (Forecast.NoData) and it was held at
	// Gate.RecallVPH. Unlike the other causes it also appears on predictive plans: the other approaches were
	// planned on their forecasts, this one on its recall.
	CauseDetectorRecall Cause = "detector_recall"
	CauseNoDetectorData Cause = "no_detector_data" // no approach of the intersection had detector data
)

// DecideInput is everything a plan decision needs.
type DecideInput struct {
	// Mode restricts the paths taken (ModeAdaptive: all).
	Mode      Mode
	Forecasts []Forecast
	// TimeOfDayFlows are historical flows for this time of week (approach → veh/h); nil when none are known. An
	// approach absent from the map has no history: the time-of-day path fails unless that approach's detector
	// failed (Forecast.NoData), in which case it is held at Gate.RecallVPH like the predictive path does.
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
// plan that passes Validate (Safe), with its actuation bounds (Actuation) unless the operator pinned fixed time.
// d.Mode can skip the first paths. The plan's Reason and Detail say which
// path and why, and FallbackCauses lists the causes of every fallback taken (nil for a predictive plan, but for
// CauseDetectorRecall).
//
// An approach whose detector failed (Forecast.NoData) does not stop either path: it is held at its recall
// demand (Gate.RecallVPH) and the others are planned on their forecasts (or history). The plan says so in its
// Detail ("CROSS: detector reports nothing, held at minimum green (recall)") and FallbackCauses holds
// CauseDetectorRecall, on a predictive plan too. An intersection where no approach has detector data is never
// planned predictively (CauseNoDetectorData).
func Decide(in topology.Intersection, d DecideInput) (Plan, error) {
	opts := Options{PreviousCycleS: d.PreviousCycleS, SaturationFactor: d.SaturationFactor, OffsetS: d.OffsetS, CycleS: d.CycleS}
	var causes []Cause
	failed := failedDetectors(in, d.Forecasts)
	timeOfDay := func() (Plan, error) {
		flows := maps.Clone(d.TimeOfDayFlows)
		var held []string
		for _, a := range in.Approaches {
			if _, ok := flows[a.ID]; !ok && failed[a.ID] {
				held = append(held, a.ID)
			}
		}
		if len(flows) == 0 {
			causes = append(causes, CauseNoHistory)
			return Plan{}, fmt.Errorf("%w: no historical flows for this time of week", ErrInvalidInput)
		}
		for _, id := range held {
			flows[id] = d.Gate.recallVPH()
		}
		o := opts
		o.Reason = ReasonTimeOfDay
		p, err := Webster(in, flows, o)
		if err != nil {
			causes = append(causes, CauseNoHistory)
			return p, err
		}
		detail := "time-of-day plan from historical flows; "
		if len(held) > 0 {
			causes = append(causes, CauseDetectorRecall)
			detail += recallNote(in, held, d.Gate.recallVPH()) + "; "
		}
		p.Detail = detail + p.Detail
		return p, nil
	}
	finish := func(p Plan, err error) (Plan, error) {
		if err != nil {
			return p, err
		}
		if d.Mode != ModeFixedTime { // an operator who pins fixed time gets fixed time
			p = Actuation(in, p)
		}
		p.FallbackCauses = uniqueCauses(causes)
		if p.Reason == ReasonPredictive {
			// The plan did not fall back: only a recall (a partial fallback, for one approach) is worth counting.
			p.FallbackCauses = slices.DeleteFunc(p.FallbackCauses, func(c Cause) bool { return c != CauseDetectorRecall })
			if len(p.FallbackCauses) == 0 {
				p.FallbackCauses = nil
			}
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
	flows, held, why, gateCauses := gate(in, d.Forecasts, d.Gate)
	if why != "" {
		causes = append(causes, gateCauses...)
		return finish(Safe(in, Plan{Reason: ReasonPredictive}, fmt.Errorf("predictions not trusted: %s", why), timeOfDay))
	}
	opts.Reason = ReasonPredictive
	p, err := Webster(in, flows, opts)
	if err == nil {
		detail := "predictive Webster plan; "
		if len(held) > 0 {
			causes = append(causes, CauseDetectorRecall)
			detail += recallNote(in, held, d.Gate.recallVPH()) + "; "
		}
		p.Detail = detail + p.Detail
	} else {
		causes = append(causes, CausePlanRejected)
	}
	return finish(Safe(in, p, err, timeOfDay))
}

// failedDetectors returns the approaches of in whose forecast says their detectors failed (Forecast.NoData).
func failedDetectors(in topology.Intersection, fcs []Forecast) map[string]bool {
	out := map[string]bool{}
	for _, f := range fcs {
		if _, ok := in.Approach(f.ApproachID); ok && f.NoData {
			out[f.ApproachID] = true
		}
	}
	return out
}

// recallNote says, for a traffic engineer reading the plan, which approaches were held at recall and what that
// gave their phase: "detector recall: CROSS: detector reports nothing, held at minimum green (recall)".
func recallNote(in topology.Intersection, held []string, recallVPH float64) string {
	isHeld := map[string]bool{}
	for _, id := range held {
		isHeld[id] = true
	}
	parts := make([]string, 0, len(held))
	for _, id := range held {
		var shared []string // healthy approaches sharing a phase with id
		for _, ph := range in.Phases {
			if !slices.Contains(ph.Approaches, id) {
				continue
			}
			for _, o := range ph.Approaches {
				if !isHeld[o] && !slices.Contains(shared, o) {
					shared = append(shared, o)
				}
			}
		}
		var what string
		switch {
		case recallVPH > 0:
			what = fmt.Sprintf("held at recall demand %.0f veh/h", recallVPH)
		case len(shared) > 0:
			what = "held at minimum recall (0 veh/h); its phase is timed by " + strings.Join(shared, ", ")
		default:
			what = "held at minimum green (recall)"
		}
		parts = append(parts, id+": detector reports nothing, "+what)
	}
	return "detector recall: " + strings.Join(parts, "; ")
}

func uniqueCauses(cs []Cause) []Cause {
	if len(cs) == 0 {
		return nil
	}
	out := slices.Clone(cs)
	slices.Sort(out)
	return slices.Compact(out)
}

// gate returns the planning flows when every approach has a trustworthy forecast or a failed detector (held, in
// topology order, at the recall demand), or why not. At least one approach must have a trustworthy forecast:
// recall alone is not a prediction.
func gate(in topology.Intersection, fcs []Forecast, g Gate) (flows map[string]float64, held []string, why string, causes []Cause) {
	if g.MaxRelativeInterval <= 0 {
		g.MaxRelativeInterval = DefaultGate().MaxRelativeInterval
	}
	by := map[string]Forecast{}
	for _, f := range fcs {
		by[f.ApproachID] = f
	}
	flows = map[string]float64{}
	var whys []string
	no := func(c Cause, msg string) { whys, causes = append(whys, msg), append(causes, c) }
	for _, a := range in.Approaches {
		f, ok := by[a.ID]
		switch {
		case !ok:
			no(CauseNoForecast, a.ID+": no forecast")
		case f.NoData:
			held = append(held, a.ID)
			flows[a.ID] = g.recallVPH()
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
	if len(whys) == 0 && len(held) > 0 && len(held) == len(in.Approaches) {
		no(CauseNoDetectorData, "no approach has detector data (every detector reports nothing)")
	}
	return flows, held, strings.Join(whys, "; "), causes
}
