package evaluate

import (
	"fmt"
	"math"
	"time"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/train"
)

// SignalConfig configures the replay of signal-control (Config.Signals). The defaults are the services'.
//
// For every frame at t, in this order, as the predictor and signal-control do in live operation:
//
//  1. the window's measured (not imputed) approach flows are learned into the hour-of-week profile of the
//     time-of-day fallback (signal.Profile, ProfileAlpha, buckets in ProfileZone);
//  2. each approach's forecast at the horizon nearest PlanHorizon is what the predictor would publish:
//     train.Predict on the learner's snapshot after it applied the frame (at Confidence; Learner.Forecast computes
//     the same bits from the learner without building the snapshot), or, when there is no
//     usable model yet, a persistence forecast flagged as a baseline; Drifting is the model's drift state;
//     models are never stale offline (the model is as new as the frame);
//  3. signal.Decide with Gate, the profile's flows for the bucket of t's window end (ProfileMinSamples), the
//     previous plan's cycle, and the weather saturation factor of the frame — the same gate and fallbacks
//     signal-control uses — gives the plan for the next window [t+W, t+2W).
//
// The plan is then scored with signal.DelayWebster on the flows OBSERVED in the window it was made for, when
// every approach's flow there was measured and the window is past the warm-up: the forecasts never see the
// flows they are scored on.
//
// Fixed-time reference: per intersection, what a traffic engineer would configure from a count survey — the
// Webster plan (signal.Webster, no weather factor) for the intersection's average weekday peak hour, held all
// day. The peak hour is the hour of day, in Location, whose mean total flow over every fully measured weekday
// (Monday–Friday) window of the whole file is highest; the plan's flows are each approach's mean over those
// windows. It uses the whole file, including the windows it is scored on: if anything, hindsight favours it.
//
// Time-of-day reference: a traffic engineer's plan book — for each window, the Webster plan (no weather factor)
// on each approach's mean measured flow in the window's local hour of week (Location), over the windows seen
// before it. A window whose hour of week has no earlier flow for some approach has no time-of-day plan.
//
// Oracle (perfect forecast): the Webster plan (no weather factor) on the flows that really came in the window
// it is scored on: what retiming on a perfect forecast would give. Greenwave − oracle is what better forecasts
// could still gain; time of day − Greenwave is what Greenwave's forecasts gain over retiming by the clock. It is
// not a lower bound of the delay: Webster's cycle ignores the phases' green limits and its split does not
// minimise Webster's delay exactly, so a plan made for other flows can delay the window's traffic less (see
// TestOracleNotWorseThanTimeOfDay).
//
// Every reference is scored on the same windows: those where Greenwave's plan and the time-of-day plan exist.
// Delays are averaged per vehicle: Σ(delay × total flow) / Σ total flow over every scored window of every
// intersection.
type SignalConfig struct {
	// PlanHorizon is SIGNAL_PLAN_HORIZON: the nearest configured horizon drives the plans. Default 15 min.
	PlanHorizon time.Duration
	// Confidence is PREDICTOR_CONFIDENCE, the prediction interval the gate judges. Default 0.9.
	Confidence float64
	// Gate is signal-control's confidence gate (SIGNAL_MAX_RELATIVE_INTERVAL). Default signal.DefaultGate().
	Gate signal.Gate
	// ProfileAlpha, ProfileMinSamples and ProfileZone are SIGNAL_PROFILE_ALPHA, _MIN_SAMPLES and the zone of the
	// hour-of-week buckets. Defaults 0.1, 3 and nil: the topology's time_zone, as signal-control.
	ProfileAlpha      float64
	ProfileMinSamples uint32
	ProfileZone       *time.Location
	// Location is the local time zone of the data, for the weekday peak hour of the fixed-time reference.
	// nil (the default) means the topology's time_zone.
	Location *time.Location
	// Warmup: only windows at least this long after the start of their intersection are scored. Default 7
	// days: the profile has three samples per hour of week only after three weeks of 15-minute windows, but
	// the models are usable after days, and a month of data leaves nothing to score after four weeks.
	Warmup time.Duration
}

// DefaultSignalConfig returns the services' defaults and a 7-day warm-up.
func DefaultSignalConfig() SignalConfig {
	return SignalConfig{PlanHorizon: 15 * time.Minute, Confidence: 0.9, Gate: signal.DefaultGate(),
		ProfileAlpha: 0.1, ProfileMinSamples: 3, Warmup: 7 * 24 * time.Hour}
}

func (c SignalConfig) validate() error {
	switch {
	case c.PlanHorizon <= 0:
		return fmt.Errorf("signals: plan horizon %v must be positive", c.PlanHorizon)
	case !(c.Confidence > 0 && c.Confidence < 1):
		return fmt.Errorf("signals: confidence %g not in (0, 1)", c.Confidence)
	case !(c.ProfileAlpha > 0 && c.ProfileAlpha <= 1):
		return fmt.Errorf("signals: profile alpha %g not in (0, 1]", c.ProfileAlpha)
	case c.Warmup < 0:
		return fmt.Errorf("signals: warm-up %v is negative", c.Warmup)
	}
	return nil
}

// SignalReport compares Greenwave's plans with the fixed-time, time-of-day and oracle references.
type SignalReport struct {
	// Intersections is the number of intersections with at least one scored window; Windows the number of
	// scored (intersection, window) pairs.
	Intersections, Windows int
	// FixedTimeDelayS, TimeOfDayDelayS, GreenwaveDelayS and OracleDelayS are the average delays per vehicle,
	// in seconds, over the same windows; Reduction is 1 − Greenwave/FixedTime (positive: Greenwave's plans delay
	// traffic less).
	FixedTimeDelayS, TimeOfDayDelayS, GreenwaveDelayS, OracleDelayS, Reduction float64
	// MissingTimeOfDay counts windows otherwise scored but left out because their hour of week had no
	// time-of-day plan yet.
	MissingTimeOfDay int
	// PlanReasons counts the scored Greenwave plans by signal.Reason name (predictive, time_of_day, fixed_time).
	PlanReasons map[string]int
	// PerIntersection details every intersection with scored windows, in topology order.
	PerIntersection []IntersectionDelay
}

// IntersectionDelay is one intersection's comparison.
type IntersectionDelay struct {
	ID string
	// PeakHour is the local hour of day of the fixed-time plan's flows; FixedCycleS that plan's cycle.
	PeakHour     int
	FixedCycleS  float64
	Windows      int
	FixedDelayS  float64
	TimeOfDayS   float64
	GreenDelayS  float64
	OracleDelayS float64
	TotalVehicle float64
}

// signalRun is one intersection's plan replay.
type signalRun struct {
	in        topology.Intersection
	cfg       SignalConfig
	horizon   time.Duration // the configured horizon nearest cfg.PlanHorizon
	profile   signal.Profile
	prevCycle float64
	plan      *signal.Plan
	planFor   int64 // window start (Unix s) the plan is for
	scored    []scoredWindow
	reasons   map[string]int
	// peakSum[h][a] sums approach a's flow over the fully measured weekday windows of local hour h;
	// peakN[h] counts them.
	peakSum [24][]float64
	peakN   [24]int
	// todSum[b][a] and todN[b][a] are approach a's measured flows so far in local hour-of-week bucket b (the
	// time-of-day plan book).
	todSum, todN [7 * 24][]float64
	missTOD      int
	// planned, when set (by tests), sees every plan that is scored: "greenwave", "time_of_day" and "oracle" with
	// the window (Unix s) they are scored on, and "fixed_time" with 0.
	planned func(kind string, window int64, p signal.Plan)
}

type scoredWindow struct {
	flows                  map[string]float64
	total, gwD, todD, orcD float64
}

func newSignalRun(in topology.Intersection, cfg SignalConfig, horizons []time.Duration) (*signalRun, error) {
	if len(horizons) == 0 {
		return nil, fmt.Errorf("signals: no horizon")
	}
	horizon, _ := PlanHorizon(horizons, cfg.PlanHorizon)
	if err := signal.Feasible(in); err != nil {
		return nil, fmt.Errorf("signals: %w", err)
	}
	s := &signalRun{in: in, cfg: cfg, horizon: horizon, reasons: map[string]int{}}
	for h := range s.peakSum {
		s.peakSum[h] = make([]float64, len(in.Approaches))
	}
	for b := range s.todSum {
		s.todSum[b], s.todN[b] = make([]float64, len(in.Approaches)), make([]float64, len(in.Approaches))
	}
	return s, nil
}

// PlanHorizon returns the horizon of horizons nearest to want (SignalConfig.PlanHorizon), the first of equally
// near ones: the one whose forecasts the replay plans from, as signal-control uses the predictor's horizon
// nearest SIGNAL_PLAN_HORIZON. ok is false when horizons is empty. The learners of the other horizons play no
// part in the signal report: each horizon's model is trained and promoted on its own.
func PlanHorizon(horizons []time.Duration, want time.Duration) (h time.Duration, ok bool) {
	if len(horizons) == 0 {
		return 0, false
	}
	best := 0
	for i, h := range horizons {
		if math.Abs(float64(h-want)) < math.Abs(float64(horizons[best]-want)) {
			best = i
		}
	}
	return horizons[best], true
}

// frame replays signal-control for frame f, whose vectors the learners of r just applied.
func (s *signalRun) frame(f features.Frame, r *run) {
	t := f.WindowStart.Unix()
	counted := !f.WindowStart.Before(r.start.Add(s.cfg.Warmup))
	flows := map[string]float64{}
	all := true
	for _, v := range f.Approaches {
		if v.Gap || v.Observed.Imputed {
			all = false
			continue
		}
		flows[v.ApproachID] = v.Observed.FlowVPH
	}
	total := 0.0
	for _, q := range flows {
		total += q
	}
	loc := s.cfg.Location
	if loc == nil {
		loc = time.UTC
	}
	if lt := f.WindowStart.In(loc); all && lt.Weekday() != time.Saturday && lt.Weekday() != time.Sunday {
		h := lt.Hour()
		for i, a := range s.in.Approaches {
			s.peakSum[h][i] += flows[a.ID]
		}
		s.peakN[h]++
	}
	todBucket := signal.ProfileBucket(f.WindowStart.In(loc))
	if s.plan != nil && s.planFor == t && all && counted && total > 0 {
		d := signal.DelayWebster(s.in, *s.plan, flows)
		tod, okTOD := s.timeOfDayPlan(todBucket)
		switch {
		case math.IsNaN(d):
		case !okTOD:
			s.missTOD++
		default:
			if orc, ok := s.oraclePlan(flows); ok {
				s.scored = append(s.scored, scoredWindow{flows: flows, total: total, gwD: d,
					todD: signal.DelayWebster(s.in, tod, flows), orcD: signal.DelayWebster(s.in, orc, flows)})
				s.reasons[s.plan.Reason.String()]++
				if s.planned != nil {
					s.planned("greenwave", t, *s.plan)
					s.planned("time_of_day", t, tod)
					s.planned("oracle", t, orc)
				}
			}
		}
	}
	// The plan book learns the window after it was scored: it only knows the flows seen before.
	for i, a := range s.in.Approaches {
		if q, ok := flows[a.ID]; ok {
			s.todSum[todBucket][i] += q
			s.todN[todBucket][i]++
		}
	}
	// 1. Learn the profile, as signal-control does with each prediction's source window.
	zone := s.cfg.ProfileZone
	if zone == nil {
		zone = time.UTC
	}
	bucket := signal.ProfileBucket(f.WindowStart.In(zone))
	for _, v := range f.Approaches {
		if !v.Gap && !v.Observed.Imputed {
			s.profile.Observe(v.ApproachID, bucket, v.Observed.FlowVPH, s.cfg.ProfileAlpha)
		}
	}
	// 2. The predictor's forecasts.
	var fcs []signal.Forecast
	for ai, v := range f.Approaches {
		fcs = append(fcs, s.forecast(r.series[ai].learner, f, v))
	}
	// 3. signal-control's decision, for the next window.
	w := f.Weather
	var precip, snow, vis *float64
	if !w.Missing {
		if w.HasPrecipitation {
			precip = &w.PrecipitationMMH
		}
		if w.HasSnow {
			snow = &w.SnowMMH
		}
		if w.HasVisibility {
			vis = &w.VisibilityM
		}
	}
	d := signal.DecideInput{Forecasts: fcs, PreviousCycleS: s.prevCycle, Gate: s.cfg.Gate,
		SaturationFactor: signal.SaturationFactor(precip, snow, vis),
		TimeOfDayFlows:   s.profile.Flows(s.in, signal.ProfileBucket(f.WindowEnd.In(zone)), s.cfg.ProfileMinSamples)}
	plan, err := signal.Decide(s.in, d)
	if err != nil {
		// Feasible was checked: Decide always finds a safe plan. Keep the previous plan, as the service does.
		s.planFor = f.WindowEnd.Unix()
		return
	}
	s.plan, s.planFor, s.prevCycle = &plan, f.WindowEnd.Unix(), plan.CycleS
}

// forecast is the predictor's flow forecast for one approach at the plan horizon (see SignalConfig).
func (s *signalRun) forecast(l *train.Learner, f features.Frame, v features.Vector) signal.Forecast {
	// Without a usable model, a gap window marks a failed detector, as the predictor's no_data does (the
	// evaluation has no model staleness): signal-control holds the approach at recall.
	fallback := signal.Forecast{ApproachID: v.ApproachID, Baseline: true, FlowVPH: v.Observed.FlowVPH,
		LowerVPH: 0, UpperVPH: math.Max(v.CapacityVPH, v.Observed.FlowVPH), NoData: v.Gap}
	if l == nil {
		return fallback
	}
	// Learner.Forecast is Learner.Model's compiled model predicting, without compiling it for every frame.
	fc, drifting, ok, err := l.Forecast(s.horizon, f, v, s.cfg.Confidence)
	if !ok || err != nil {
		return fallback
	}
	return signal.Forecast{ApproachID: v.ApproachID, FlowVPH: fc.Value, LowerVPH: fc.Lower, UpperVPH: fc.Upper,
		Drifting: drifting}
}

// timeOfDayPlan returns the plan book's plan for local hour-of-week bucket b, false when some approach has no
// flow there yet.
func (s *signalRun) timeOfDayPlan(b int) (signal.Plan, bool) {
	flows := make(map[string]float64, len(s.in.Approaches))
	for i, a := range s.in.Approaches {
		if s.todN[b][i] == 0 {
			return signal.Plan{}, false
		}
		flows[a.ID] = s.todSum[b][i] / s.todN[b][i]
	}
	p, err := signal.Webster(s.in, flows, signal.Options{Reason: signal.ReasonTimeOfDay})
	p, err = signal.Safe(s.in, p, err)
	return p, err == nil
}

// oraclePlan returns the perfect-forecast plan for a window whose observed flows are flows: Webster on them,
// held to the intersection's constraints by signal.Safe as every other plan is; false when no valid plan exists.
func (s *signalRun) oraclePlan(flows map[string]float64) (signal.Plan, bool) {
	p, err := signal.Webster(s.in, flows, signal.Options{Reason: signal.ReasonPredictive})
	p, err = signal.Safe(s.in, p, err)
	return p, err == nil
}

// fixedPlan returns the fixed-time reference plan and its peak hour, false when the intersection has no fully
// measured weekday window.
func (s *signalRun) fixedPlan() (signal.Plan, int, bool) {
	best, bestTotal := -1, -1.0
	for h := range s.peakN {
		if s.peakN[h] == 0 {
			continue
		}
		tot := 0.0
		for _, q := range s.peakSum[h] {
			tot += q
		}
		if tot /= float64(s.peakN[h]); tot > bestTotal {
			best, bestTotal = h, tot
		}
	}
	if best < 0 {
		return signal.Plan{}, 0, false
	}
	flows := map[string]float64{}
	for i, a := range s.in.Approaches {
		flows[a.ID] = s.peakSum[best][i] / float64(s.peakN[best])
	}
	p, err := signal.Webster(s.in, flows, signal.Options{Reason: signal.ReasonFixedTime})
	p, err = signal.Safe(s.in, p, err)
	if err != nil {
		return signal.Plan{}, 0, false
	}
	return p, best, true
}

// signalReport compares the plans over every scored window.
func (e *Evaluator) signalReport() *SignalReport {
	rep := &SignalReport{PlanReasons: map[string]int{}}
	var fixedW, todW, greenW, orcW, veh float64
	for _, r := range e.order {
		s := r.sig
		if s == nil || len(s.scored) == 0 {
			continue
		}
		fixed, peak, ok := s.fixedPlan()
		if !ok {
			continue
		}
		if s.planned != nil {
			s.planned("fixed_time", 0, fixed)
		}
		id := IntersectionDelay{ID: r.in.ID, PeakHour: peak, FixedCycleS: fixed.CycleS, Windows: len(s.scored)}
		var fw, tw, gw, ow float64
		for _, w := range s.scored {
			fw += signal.DelayWebster(s.in, fixed, w.flows) * w.total
			tw += w.todD * w.total
			gw += w.gwD * w.total
			ow += w.orcD * w.total
			id.TotalVehicle += w.total
		}
		id.FixedDelayS, id.TimeOfDayS, id.GreenDelayS, id.OracleDelayS = fw/id.TotalVehicle, tw/id.TotalVehicle, gw/id.TotalVehicle, ow/id.TotalVehicle
		fixedW, todW, greenW, orcW, veh = fixedW+fw, todW+tw, greenW+gw, orcW+ow, veh+id.TotalVehicle
		rep.MissingTimeOfDay += s.missTOD
		rep.PerIntersection = append(rep.PerIntersection, id)
		rep.Intersections++
		rep.Windows += len(s.scored)
		for k, n := range s.reasons {
			rep.PlanReasons[k] += n
		}
	}
	rep.FixedTimeDelayS, rep.TimeOfDayDelayS, rep.GreenwaveDelayS, rep.OracleDelayS, rep.Reduction = math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
	if veh > 0 {
		rep.FixedTimeDelayS, rep.TimeOfDayDelayS, rep.GreenwaveDelayS, rep.OracleDelayS = fixedW/veh, todW/veh, greenW/veh, orcW/veh
		rep.Reduction = 1 - rep.GreenwaveDelayS/rep.FixedTimeDelayS
	}
	return rep
}
