package evaluate

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/train"
)

// DefaultWarmup is Config.Warmup's default: four weeks, so that the seasonal baselines and the week-old lag
// features have history and the scores describe a model in steady state.
const DefaultWarmup = 28 * 24 * time.Hour

// Config configures an Evaluator.
type Config struct {
	// Clean configures every intersection's cleaner and the weather table. A nil Clean.Location (the default)
	// means the topology's time_zone (topology.Topology.Location), which is where the cleaner service takes it
	// from: the calendar features agree with the live ones without any setting.
	Clean clean.Config
	// Train is the learners' base configuration. Each intersection's learners get train.ConfigFor(Train, its
	// topology window) — the trainer service's rule for the windows the cleaner emits — so WindowS is ignored,
	// and empty Horizons choose train.AutoHorizons of the window.
	Train train.Config
	// Warmup: only labels at least this long after the start of their series are scored (see the package
	// documentation). 0 scores everything.
	Warmup time.Duration
	// Trace keeps every scored pair of the first horizon in Report.Trace (for plots).
	Trace bool
	// Flags keeps every rejected reading and every window with outlier-flagged readings in Report.Flags (for
	// the clean report).
	Flags bool
	// Signals, when set, replays signal-control's decisions and scores them (Report.Signals).
	Signals *SignalConfig
	// SignalsOnly, with Signals, skips what only the forecast scores need — the baselines' history, the pairs
	// waiting for their labels, the hold-out rows and the OLS fit —, for callers that read Report.Signals alone
	// (greenwave eval --signals): Report.Horizons, Holdout and Trace are then empty, and the rest of the Report
	// is the same (the learners, the cleaning counts and the signal replay do not read those parts).
	SignalsOnly bool
	// Observe, when set, is called after every vector a learner applied, with the learner (do not modify it)
	// and its Update: for checks that the live services compute exactly what the evaluation does. With
	// Workers > 1 it is called from the workers, for several intersections at once (each one's vectors in
	// order): it must then be safe for concurrent use.
	Observe func(f features.Frame, v features.Vector, l *train.Learner, up train.Update)
	// Workers is how many goroutines apply the cleaners' frames to the learners, the scores and the signal
	// replay; 0 or 1 applies them in the caller's goroutine. The cleaners always run in the caller's
	// goroutine (an intersection's upstream features read the other intersections' cleaners), and past them
	// the intersections share nothing: each intersection's frames are applied in order by one worker, and
	// Finish merges the workers' results in input order, so the Report is the same for any Workers
	// (TestWorkersSameReport).
	Workers int
}

// DefaultConfig returns the services' defaults (clean.DefaultConfig, train.BaseConfig: horizons fitted to each
// intersection's window) and DefaultWarmup.
func DefaultConfig() Config {
	return Config{Clean: clean.DefaultConfig(), Train: train.BaseConfig(), Warmup: DefaultWarmup}
}

// Evaluator runs the cleaner and the learners over one data set. Feed it in event-time order with Weather and
// Reading, then call Finish once (with Config.Workers > 1, Finish, or a Reading that returns an error, also
// stops the workers). Not safe for concurrent use.
type Evaluator struct {
	cfg      Config
	index    *topology.Index
	weather  *clean.WeatherTable
	runs     map[string]*run
	order    []*run   // topology order
	cleaning Cleaning // the cleaners' counts; the frames' (runOutput.counts) are added by Finish
	// flags are the rejections of the caller's goroutine (weather, readings); the frames' outlier flags are
	// in runOutput.flags.
	flags []seqFlag
	// seq numbers every flag and frame in input order: the order Finish merges the runs' results in.
	seq      uint64
	pool     *pool // nil: frames are applied in the caller's goroutine
	finished bool
}

// run is one intersection's pipeline.
type run struct {
	in      topology.Intersection
	idx     int // position in the topology, for deterministic tie-breaking
	cl      *clean.Intersection
	tc      train.Config
	series  []*series // one per approach, topology order
	started bool
	start   time.Time
	sig     *signalRun
	// out is written by the goroutine that applies the run's frames, and read by Finish once they are done.
	out runOutput
	// worker is the pool worker that applies the run's frames (Config.Workers > 1).
	worker int
}

// series is one approach's learner and scores.
type series struct {
	ap      topology.Approach
	learner *train.Learner
	// pend[i] maps a target time (Unix s) to every forecaster's forecast of horizon i made for it.
	pend  []map[int64]forecastSet
	score []pairScore
	hist  *seasonalHistory
	// rows holds hold-out rows waiting for their label: label time (Unix s) → the learner's input and the
	// first horizon's forecasts.
	rows map[int64]pendingRow
}

// pendingRow is a hold-out row waiting for its label.
type pendingRow struct {
	x  []float64
	fc forecastSet
}

// Cleaning counts what the cleaners did.
type Cleaning struct {
	// Readings is the number of readings fed; Weather the number of weather observations.
	Readings, Weather int
	// Duplicates counts identical replays the cleaners dropped silently (clean.Result.Dropped).
	Duplicates int
	// Rejected counts rejections by clean.Reason, weather reasons (weather_*) included.
	Rejected map[string]int
	// Imputed counts approach windows whose target was not fully measured (filled in, a gap, or not measured at
	// all: no speed for a speed target, no flow from speed-only sensors), the windows the scores skip (the rule
	// of train.Observed); Gaps counts the windows that could not be filled at all.
	Imputed, Gaps int
	// Flagged counts readings the outlier filter flagged (kept, counted in the frames).
	Flagged int
	// Windows counts approach windows emitted; SkippedWindows windows not emitted after a long silence
	// (clean.Result.SkippedWindows, per intersection).
	Windows, SkippedWindows int
}

// Flag is one reading the cleaner set aside, or one window in which it flagged outliers.
type Flag struct {
	IntersectionID, ApproachID string
	// DetectorID is set for rejections (outlier flags are counted per approach window).
	DetectorID string
	// Time is the reading's start, or the window start for outliers.
	Time time.Time
	// Reason is a clean.Reason, or "outlier".
	Reason string
	// Count is 1 for a rejection, the number of flagged readings for an outlier window.
	Count int
}

// TracePoint is one scored forecast of the first horizon.
type TracePoint struct {
	IntersectionID, ApproachID string
	// Target is the time the forecast is for (the label window's start).
	Target             time.Time
	Observed, Forecast float64
}

// Metrics are error metrics over N pairs, in the target's natural unit; NaN when undefined (N = 0, or no
// non-zero actual for MAPE).
type Metrics struct {
	MAE, RMSE float64
	// MAPE is in percent, over the pairs with a non-zero actual.
	MAPE float64
	N    int
}

// HorizonReport scores one horizon over every series. The model and every baseline are scored on exactly the
// same pairs (the same-pairs rule of the package documentation), so every N is equal.
type HorizonReport struct {
	Horizon time.Duration
	Model   Metrics
	// Baselines maps each of OnlineBaselines to metrics.
	Baselines map[string]Metrics
	// DroppedPairs counts the labelled pairs after the warm-up left out of every row because at least one
	// forecaster had no forecast for them. Missing splits them per forecaster (ModelName or a baseline name;
	// MissingReason says why one can lack a forecast); a pair may lack several, so Missing may sum to more.
	DroppedPairs int
	Missing      map[string]int
	// ModelAll is the model on every labelled pair after the warm-up it forecast, the dropped ones included:
	// what dropping pairs changes for the model (not comparable with the baselines' rows).
	ModelAll Metrics
}

// HoldoutReport is the batch OLS reference and the comparison on its test rows (see the package documentation).
type HoldoutReport struct {
	// Horizon is the first horizon, the one OLS forecasts.
	Horizon time.Duration
	// MAE and MSE are OLS's, over the N scored test pairs.
	MAE, MSE float64
	// N is the number of scored test pairs: the test rows past the warm-up for which the model and every
	// online baseline have a forecast. Train is the number of training rows, Test the number of test rows.
	N, Train, Test int
	// Model and Baselines (OnlineBaselines and BaselineOLS) are scored on the same N test pairs.
	Model     Metrics
	Baselines map[string]Metrics
	// BeforeWarmup counts the test rows whose label is before the warm-up boundary of its series (not pairs
	// of the comparison); DroppedPairs the others left out because an online forecaster had no forecast, and
	// Missing splits those per forecaster as HorizonReport.Missing does. Test = N + BeforeWarmup + DroppedPairs.
	BeforeWarmup, DroppedPairs int
	Missing                    map[string]int
	// Inputs names the columns of every row given to OLS: the model's regression inputs
	// (train.Learner.FeatureNames), all of them. DroppedColumns are those left out of the fit as constant or
	// collinear over the training rows.
	Inputs, DroppedColumns []string
	// Err explains why no fit was possible (too few rows, …); empty on success.
	Err string
}

// Report is the result of an evaluation.
type Report struct {
	// Vectors is the number of approach feature vectors applied to the learners.
	Vectors  int
	Horizons []HorizonReport
	Holdout  HoldoutReport
	Cleaning Cleaning
	// Trace and Flags are filled when Config.Trace and Config.Flags are set.
	Trace []TracePoint
	Flags []Flag
	// Signals is set when Config.Signals is.
	Signals *SignalReport
}

// New returns an Evaluator for a validated topology. It checks the configuration against every intersection
// (for example that each horizon is a multiple of the intersection's window) and reports every problem.
func New(topo topology.Topology, cfg Config) (*Evaluator, error) {
	if err := cfg.zones(topo); err != nil {
		return nil, err
	}
	if err := cfg.Clean.Validate(); err != nil {
		return nil, fmt.Errorf("evaluate: cleaner config: %w", err)
	}
	if cfg.Warmup < 0 {
		return nil, fmt.Errorf("evaluate: warm-up %v is negative", cfg.Warmup)
	}
	if cfg.Signals != nil {
		if err := cfg.Signals.validate(); err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
	} else if cfg.SignalsOnly {
		return nil, errors.New("evaluate: SignalsOnly without Signals")
	}
	e := &Evaluator{cfg: cfg, index: topology.NewIndex(topo), weather: clean.NewWeatherTable(cfg.Clean),
		runs: map[string]*run{}, cleaning: Cleaning{Rejected: map[string]int{}}}
	var errs []error
	// Every intersection reads its upstream features from the others, as in one cleaner partition.
	states := clean.States{}
	for i, in := range topo.Intersections {
		cl, err := clean.NewIntersection(in, cfg.Clean)
		if err != nil {
			errs = append(errs, fmt.Errorf("intersection %s: %w", in.ID, err))
			continue
		}
		cl.SetUpstream(states)
		states[in.ID] = cl
		tc, err := train.ConfigFor(cfg.Train, in.Window())
		if err != nil {
			errs = append(errs, fmt.Errorf("intersection %s (window %d s): %w", in.ID, in.Window(), err))
			continue
		}
		r := &run{in: in, idx: i, cl: cl, tc: tc}
		for _, a := range in.Approaches {
			s := &series{ap: a, pend: make([]map[int64]forecastSet, len(tc.Horizons)),
				score: make([]pairScore, len(tc.Horizons)), rows: map[int64]pendingRow{},
				hist: newSeasonalHistory(int64(in.Window()), cfg.Clean.Location)}
			for h := range s.pend {
				s.pend[h] = map[int64]forecastSet{}
			}
			r.series = append(r.series, s)
		}
		if cfg.Signals != nil && !in.ForecastOnly { // no signals to plan
			sr, err := newSignalRun(in, *cfg.Signals, tc.Horizons)
			if err != nil {
				errs = append(errs, fmt.Errorf("intersection %s: %w", in.ID, err))
				continue
			}
			r.sig = sr
		}
		e.runs[in.ID] = r
		e.order = append(e.order, r)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("evaluate: %w", errors.Join(errs...))
	}
	if len(e.order) == 0 {
		return nil, errors.New("evaluate: the topology has no intersection")
	}
	if cfg.Workers > 1 {
		e.pool = newPool(e, cfg.Workers)
	}
	return e, nil
}

// zones fills the time zones left nil with the topology's, the services' one source of local time.
func (cfg *Config) zones(topo topology.Topology) error {
	if cfg.Clean.Location != nil && (cfg.Signals == nil || (cfg.Signals.ProfileZone != nil && cfg.Signals.Location != nil)) {
		return nil
	}
	loc, err := topo.Location()
	if err != nil {
		return fmt.Errorf("evaluate: topology time_zone: %w", err)
	}
	if cfg.Clean.Location == nil {
		cfg.Clean.Location = loc
	}
	if cfg.Signals != nil {
		sc := *cfg.Signals
		if sc.ProfileZone == nil {
			sc.ProfileZone = loc
		}
		if sc.Location == nil {
			sc.Location = loc
		}
		cfg.Signals = &sc
	}
	return nil
}

// Weather adds one weather observation to the weather table; a rejected one is counted by its reason.
func (e *Evaluator) Weather(w clean.Weather) {
	e.cleaning.Weather++
	if rj := e.cleaning.reject(e.weather.Add(w)); rj != "" && e.cfg.Flags {
		e.flag(Flag{Time: w.ObservedAt.UTC(), Reason: rj, Count: 1})
	}
}

// reject counts a weather rejection and returns its reason ("" for none).
func (c *Cleaning) reject(rj *clean.WeatherRejection) string {
	if rj == nil {
		return ""
	}
	c.Rejected[string(rj.Reason)]++
	return string(rj.Reason)
}

// Reading feeds one reading to its intersection's cleaner and everything the cleaner emits to the learners.
// A reading of an intersection or detector the topology does not know is counted as "unknown_detector", as
// the cleaner service dead-letters it. The error reports a frame a learner refused, which means the cleaner
// and the trainer disagree: a bug, not bad input.
func (e *Evaluator) Reading(rd clean.Reading) error {
	if e.finished {
		return errors.New("evaluate: Reading after Finish (or after an error of the workers)")
	}
	e.cleaning.Readings++
	id := rd.IntersectionID
	if id == "" {
		if ref, ok := e.index.Detector(rd.DetectorID); ok {
			id, rd.IntersectionID = ref.Intersection, ref.Intersection
		}
	}
	r, ok := e.runs[id]
	if !ok {
		e.cleaning.Rejected[string(clean.ReasonUnknownDetector)]++
		if e.cfg.Flags {
			e.flag(Flag{IntersectionID: id, DetectorID: rd.DetectorID, Time: rd.Start.UTC(),
				Reason: string(clean.ReasonUnknownDetector), Count: 1})
		}
		return nil
	}
	// The reading's position in the input orders upstream lookups as the cleaner's offsets do.
	r.cl.SetPosition(int64(e.cleaning.Readings))
	return e.apply(r, r.cl.Add(rd, e.weather))
}

// apply accounts for one cleaner result and applies its frames.
func (e *Evaluator) apply(r *run, res clean.Result) error {
	c := &e.cleaning
	c.Duplicates += res.Dropped
	c.SkippedWindows += res.SkippedWindows
	for _, rj := range res.Rejected {
		c.Rejected[string(rj.Reason)]++
		if e.cfg.Flags {
			e.flag(Flag{IntersectionID: r.in.ID, ApproachID: rj.Reading.ApproachID, DetectorID: rj.Reading.DetectorID,
				Time: rj.Reading.Start.UTC(), Reason: string(rj.Reason), Count: 1})
		}
	}
	for _, f := range res.Frames {
		e.seq++
		if e.pool != nil {
			if e.pool.failed.Load() {
				// A frame of some run failed (a bug, see Reading): stop at once, as one goroutine would.
				e.finished = true
				return e.stop()
			}
			e.pool.send(r, f, e.seq)
			continue
		}
		if err := e.frame(r, f, e.seq); err != nil {
			return err
		}
	}
	return nil
}

// flag records a rejection of the caller's goroutine, numbered in input order.
func (e *Evaluator) flag(f Flag) {
	e.seq++
	e.flags = append(e.flags, seqFlag{seq: e.seq, Flag: f})
}

// frame applies one frame to the intersection's learners, scores the labels it carries and, with Signals, plans.
// seq is the frame's number in input order. It writes only to r (r.out for what the report merges), and reads
// only e.cfg of the Evaluator: each run's frames may be applied in a goroutine of their own.
func (e *Evaluator) frame(r *run, f features.Frame, seq uint64) error {
	if !r.started {
		r.started, r.start = true, f.WindowStart
	}
	t := f.WindowStart.Unix()
	counted := !f.WindowStart.Before(r.start.Add(e.cfg.Warmup))
	for ai, v := range f.Approaches {
		if ai >= len(r.series) || r.series[ai].ap.ID != v.ApproachID {
			return fmt.Errorf("evaluate: frame %s approach %d is %q, topology has another order", features.EventID(f.IntersectionID, f.WindowStart), ai, v.ApproachID)
		}
		s := r.series[ai]
		r.out.vectors++
		e.count(r, f, v, seq)
		if s.learner == nil {
			l, err := train.NewLearner(f.IntersectionID, v.ApproachID, f.Names, f.FeatureSetVersion, r.tc)
			if err != nil {
				return fmt.Errorf("evaluate: %w", err)
			}
			s.learner = l
		}
		y, obs := train.Observed(r.tc.Target, v)
		if !e.cfg.SignalsOnly {
			e.label(r, s, f, v, t, y, obs, counted, seq)
		}
		up, err := s.learner.Apply(f, v)
		if err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
		if e.cfg.Observe != nil {
			e.cfg.Observe(f, v, s.learner, up)
		}
		if up.Skipped || e.cfg.SignalsOnly {
			continue
		}
		s.forecasts(t, y, obs, up)
	}
	if r.sig != nil {
		r.sig.frame(f, r)
	}
	return nil
}

// label scores the forecasts made for the window at t of series s and completes its hold-out row: the
// forecast report's part of Evaluator.frame before the learner applies the window.
func (e *Evaluator) label(r *run, s *series, f features.Frame, v features.Vector, t int64, y float64, obs, counted bool, seq uint64) {
	for i := range s.pend {
		if fc, ok := s.pend[i][t]; ok && obs && counted {
			if s.score[i].pair(y, &fc) && i == 0 && e.cfg.Trace {
				r.out.trace = append(r.out.trace, seqTrace{seq: seq, TracePoint: TracePoint{IntersectionID: f.IntersectionID,
					ApproachID: v.ApproachID, Target: f.WindowStart, Observed: y, Forecast: fc[fModel]}})
			}
		}
		for k := range s.pend[i] {
			if k <= t {
				delete(s.pend[i], k)
			}
		}
	}
	holdoutLabel(r, s, v, t, y, obs, counted)
}

// forecasts records the baselines' history and every forecaster's forecasts from the window at t the learner
// of s just applied (up): the forecast report's part of Evaluator.frame after it.
func (s *series) forecasts(t int64, y float64, obs bool, up train.Update) {
	// The baselines see the window at t first, as the learner's history does: persistence is its target.
	persist := math.NaN()
	if obs {
		s.hist.record(t, y)
		persist = y
	}
	for i, hu := range up.Horizons {
		at := t + int64(hu.Horizon/time.Second)
		fc := forecastSet{hu.Forecast, persist, s.hist.lastWeek(at), s.hist.average(at), hu.Profile}
		s.pend[i][at] = fc
		if i == 0 {
			if x := s.learner.Inputs(0); x != nil {
				s.rows[at] = pendingRow{x: x, fc: fc}
			}
		}
	}
}

// count adds one approach window to the run's cleaning counts and, with Flags, records its outlier flags.
func (e *Evaluator) count(r *run, f features.Frame, v features.Vector, seq uint64) {
	c := &r.out.counts
	c.Windows++
	// The target's own rule: a window without flow (speed-only sensors) has no flow label, one without speed no
	// speed label.
	if _, ok := train.Observed(r.tc.Target, v); !ok {
		c.Imputed++
	}
	if v.Gap {
		c.Gaps++
	}
	c.Flagged += v.FlaggedOutliers
	if v.FlaggedOutliers > 0 && e.cfg.Flags {
		r.out.flags = append(r.out.flags, seqFlag{seq: seq, Flag: Flag{IntersectionID: r.in.ID, ApproachID: v.ApproachID,
			Time: f.WindowStart, Reason: string(clean.ReasonOutlier), Count: v.FlaggedOutliers}})
	}
}

// Finish flushes every cleaner (the end of the input closes every open window), applies the last frames and
// returns the report. The Evaluator cannot be used afterwards.
func (e *Evaluator) Finish() (*Report, error) {
	if e.finished {
		return nil, errors.New("evaluate: Finish called twice")
	}
	e.finished = true
	for _, r := range e.order {
		r.cl.SetPosition(int64(e.cleaning.Readings) + 1) // after every reading
		if err := e.apply(r, r.cl.Flush(e.weather)); err != nil {
			e.stop()
			return nil, err
		}
	}
	if err := e.stop(); err != nil {
		return nil, err
	}
	rep, holdout := e.merge()
	if e.cfg.SignalsOnly {
		rep.Signals = e.signalReport()
		sort.SliceStable(rep.Flags, func(i, j int) bool { return rep.Flags[i].Time.Before(rep.Flags[j].Time) })
		return rep, nil
	}
	for _, h := range e.Horizons() {
		hr := HorizonReport{Horizon: h, Baselines: map[string]Metrics{}}
		var ps pairScore
		for _, r := range e.order {
			i := slices.Index(r.tc.Horizons, h)
			if i < 0 {
				continue
			}
			for _, s := range r.series {
				ps.add(&s.score[i])
			}
		}
		hr.Model = ps.sums[fModel].metrics()
		for k := fModel + 1; k < numForecasters; k++ {
			hr.Baselines[forecasterNames[k]] = ps.sums[k].metrics()
		}
		hr.DroppedPairs, hr.Missing, hr.ModelAll = ps.dropped, ps.missingMap(), ps.modelAll.metrics()
		rep.Horizons = append(rep.Horizons, hr)
	}
	rep.Holdout = holdoutOLS(holdout, e.featureNames())
	rep.Holdout.Horizon = e.firstHorizon()
	if e.cfg.Signals != nil {
		rep.Signals = e.signalReport()
	}
	sort.SliceStable(rep.Flags, func(i, j int) bool { return rep.Flags[i].Time.Before(rep.Flags[j].Time) })
	return rep, nil
}

// Horizons returns every horizon some intersection's learners run, in increasing order: the configured ones, or
// those train.AutoHorizons chose for each window.
func (e *Evaluator) Horizons() []time.Duration {
	var out []time.Duration
	for _, r := range e.order {
		for _, h := range r.tc.Horizons {
			if !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
	}
	slices.Sort(out)
	return out
}

// firstHorizon returns the first horizon of every intersection when they share it (the hold-out's), else 0.
func (e *Evaluator) firstHorizon() time.Duration {
	var h time.Duration
	for _, r := range e.order {
		if len(r.tc.Horizons) == 0 || (h != 0 && r.tc.Horizons[0] != h) {
			return 0
		}
		h = r.tc.Horizons[0]
	}
	return h
}

// featureNames returns the regression input names of the learners (the frames' names without "bias", then the
// seasonal inputs).
func (e *Evaluator) featureNames() []string {
	for _, r := range e.order {
		for _, s := range r.series {
			if s.learner != nil {
				return s.learner.FeatureNames()
			}
		}
	}
	return nil
}

// scaleOf is the learner's fixed target divisor (see package train, Conditioning).
func scaleOf(target string, v features.Vector) float64 {
	switch target {
	case train.TargetOccupancy:
		return 1
	case train.TargetSpeed:
		return features.SpeedScaleKMH
	}
	return v.CapacityVPH
}
