package train

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/regression"
)

// biasName is the feature dropped from the regression input: RLS has its own intercept.
const biasName = "bias"

// Update reports what one Apply did.
type Update struct {
	// Window is the frame's WindowStart.
	Window time.Time
	// Skipped is true when the window was not newer than the last applied one; nothing changed.
	Skipped bool
	// Version is the learner version after the Apply (unchanged when skipped).
	Version uint64
	// Horizons has one entry per configured horizon, in Config order (nil when skipped).
	Horizons []HorizonUpdate
}

// HorizonUpdate reports what one Apply did to the model of one horizon.
type HorizonUpdate struct {
	Horizon time.Duration
	// Labelled counts pending inputs that got their label, were scored and trained on.
	Labelled int
	// Expired counts pending inputs dropped without a label (label missing, imputed or a gap; label window
	// never seen; or over MaxPending).
	Expired int
	// Promoted is true when the promoted candidate changed from PromotedFrom to PromotedTo.
	Promoted                 bool
	PromotedFrom, PromotedTo string
	// Drift is true when Page-Hinkley fired and every candidate's covariance was reset.
	Drift bool
	// Forecast is the forecast of Window+Horizon, in the target's natural unit and within its physical range, by
	// the candidate promoted after this window (the one the learner's snapshots serve: Model.Predict gives the
	// same value), NaN when it could not be made.
	Forecast float64
	// Profile is the recent weekly profile's value at Window+Horizon's local time of week (the profile_target
	// seasonal input in natural units, within the physical range), NaN while that bucket has no data: the
	// model's seasonal component alone, which offline evaluation scores as a baseline.
	Profile float64
}

// pending is an input waiting for its label.
type pending struct {
	start int64     // window start, Unix seconds
	x     []float64 // regression input: the frame's features, then the horizon's seasonal inputs; never modified
	// forecasts are indexed like horizonModel.evals (candidates, then baselines), natural units; NaN = none.
	forecasts []float64
	// lo and hi are the promoted candidate's prediction interval at Config.IntervalConfidence (natural units),
	// NaN when it had no noise estimate yet; the label is scored against them (interval coverage).
	lo, hi float64
}

// eval is a forecaster's prequential error: cumulative and over the recent window.
type eval struct {
	cum    errAcc
	recent *regression.WindowStats
}

func (e *eval) add(actual, forecast float64) {
	e.cum.add(actual, forecast)
	_ = e.recent.Add(actual, forecast) // both finite by construction
}

// horizonModel is the state of one horizon.
type horizonModel struct {
	h     time.Duration
	hs    int64 // horizon in seconds
	cands []*regression.RLS
	// evals has one entry per candidate, then one per baseline (baselineNames order).
	evals      []eval
	pending    []pending // oldest first
	promoted   int
	promotions uint64
	coverage   coverage
	drift      *regression.PageHinkley
	// driftAt is the window of the last detection, valid when detected; drifting is true when the last
	// applied window raised it.
	driftAt  int64
	detected bool
	drifting bool
}

// Learner is the online model of one (intersection, approach): one horizonModel per configured horizon plus
// the baselines' shared history. It is not safe for concurrent use.
type Learner struct {
	cfg          Config
	tgt          target
	intersection string
	approach     string
	// featureNames are the regression inputs: the frame's names without "bias" (the first nBase), then
	// seasonalNames.
	featureNames []string
	nBase        int
	cal          calendar
	fsv          int
	windowS      int64

	models []*horizonModel

	applied bool
	last    int64 // last applied window start, Unix seconds
	lastEnd int64
	version uint64

	hist history
}

// NewLearner returns an empty learner for one approach. featureNames are the frames' names (Frame.Names,
// including "bias", which is dropped) and featureSetVersion their Frame.FeatureSetVersion.
func NewLearner(intersectionID, approachID string, featureNames []string, featureSetVersion int, cfg Config) (*Learner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new learner %s/%s: %w", intersectionID, approachID, err)
	}
	var in []string
	for _, n := range featureNames {
		if n != biasName {
			in = append(in, n)
		}
	}
	if len(in)+numSeasonal > regression.MaxFeatures {
		return nil, fmt.Errorf("new learner %s/%s: %d features: %w", intersectionID, approachID, len(in), ErrInvalidConfig)
	}
	for _, n := range seasonalNames {
		if slices.Contains(in, n) {
			return nil, fmt.Errorf("new learner %s/%s: feature %q is a seasonal input name: %w", intersectionID, approachID, n, ErrInvalidConfig)
		}
	}
	l := newLearnerShell(intersectionID, approachID, in, featureSetVersion, cfg)
	for _, h := range cfg.Horizons {
		m := &horizonModel{h: h, hs: int64(h / time.Second)}
		for _, cs := range cfg.Candidates {
			r, err := regression.NewRLS(len(l.featureNames), cs.RLS)
			if err != nil {
				return nil, fmt.Errorf("new learner %s/%s: candidate %q: %w", intersectionID, approachID, cs.Name, err)
			}
			m.cands = append(m.cands, r)
		}
		m.evals = make([]eval, len(cfg.Candidates)+len(baselineNames))
		for i := range m.evals {
			m.evals[i].recent, _ = regression.NewWindowStats(cfg.RecentWindow) // size validated
		}
		m.drift, _ = regression.NewPageHinkley(cfg.Drift) // validated
		l.models = append(l.models, m)
	}
	return l, nil
}

// newLearnerShell returns a learner without models and with an empty history. base are the frame's feature
// names without "bias".
func newLearnerShell(intersectionID, approachID string, base []string, fsv int, cfg Config) *Learner {
	tgt, _ := targetOf(cfg.Target) // validated
	return &Learner{
		cfg:          cfg,
		tgt:          tgt,
		intersection: intersectionID,
		approach:     approachID,
		featureNames: append(slices.Clip(base), seasonalNames[:]...),
		nBase:        len(base),
		cal:          calendarOf(base),
		fsv:          fsv,
		windowS:      int64(cfg.WindowS),
		hist:         newHistory(int64(cfg.WindowS), cfg.bucketS()),
	}
}

// FeatureSetVersion returns the feature set version of the frames the learner applies (Frame.FeatureSetVersion).
func (l *Learner) FeatureSetVersion() int { return l.fsv }

// Version returns the learner's version: the ModelSnapshot.version of its snapshots, one more with every applied
// window, continued by Upgrade.
func (l *Learner) Version() uint64 { return l.version }

// FeatureNames returns the regression inputs in coefficient order: the frame's names without "bias", then the
// seasonal inputs (InputHATarget …).
func (l *Learner) FeatureNames() []string { return slices.Clone(l.featureNames) }

// LastApplied returns the start of the last applied window and whether any window was applied.
func (l *Learner) LastApplied() (time.Time, bool) {
	if !l.applied {
		return time.Time{}, false
	}
	return time.Unix(l.last, 0).UTC(), true
}

// Inputs returns a copy of the regression input (FeatureNames order: the frame's features, then the seasonal
// inputs) of the last applied window's forecast at horizon index i (Config order), nil when there is none. It
// lets an offline reference model (evaluate's hold-out OLS) see exactly the inputs the learner saw.
func (l *Learner) Inputs(i int) []float64 {
	if !l.applied || i < 0 || i >= len(l.models) {
		return nil
	}
	m := l.models[i]
	if len(m.pending) == 0 || m.pending[len(m.pending)-1].start != l.last {
		return nil
	}
	return slices.Clone(m.pending[len(m.pending)-1].x)
}

// checkNames reports whether names without "bias" equal want.
func checkNames(names, want []string) bool {
	j := 0
	for _, n := range names {
		if n == biasName {
			continue
		}
		if j >= len(want) || want[j] != n {
			return false
		}
		j++
	}
	return j == len(want)
}

// inputs returns the regression input of v: its values without the "bias" positions. Every value must be
// finite and at most MaxAbsFeature in magnitude.
func inputs(names []string, v features.Vector, n int) ([]float64, error) {
	if len(v.Values) != len(names) {
		return nil, fmt.Errorf("approach %q has %d values for %d feature names: %w", v.ApproachID, len(v.Values), len(names), ErrInvalidInput)
	}
	x := make([]float64, 0, n)
	for i, name := range names {
		if name == biasName {
			continue
		}
		val := v.Values[i]
		if !(math.Abs(val) <= MaxAbsFeature) {
			return nil, fmt.Errorf("approach %q feature %q is %g, not finite with |x| ≤ %g: %w", v.ApproachID, name, val, MaxAbsFeature, ErrInvalidInput)
		}
		x = append(x, val)
	}
	return x, nil
}

// window validates the frame's window and returns its start and end in Unix seconds.
func window(f features.Frame, windowS int64) (int64, int64, error) {
	start, end := f.WindowStart.Unix(), f.WindowEnd.Unix()
	if f.WindowStart.Nanosecond() != 0 || f.WindowEnd.Nanosecond() != 0 || mod(start, windowS) != 0 || end-start != windowS {
		return 0, 0, fmt.Errorf("window [%v, %v) is not an epoch-aligned %d s window: %w", f.WindowStart, f.WindowEnd, windowS, ErrInvalidInput)
	}
	return start, end, nil
}

// mod returns a mod m in [0, m).
func mod(a, m int64) int64 {
	r := a % m
	if r < 0 {
		r += m
	}
	return r
}

// Apply applies the window of frame f for this learner's approach, whose vector in f is v. See the package
// documentation for the steps. It returns ErrKeyMismatch, ErrFeatureMismatch or ErrInvalidInput, wrapped,
// and leaves the learner untouched on every error. A window not newer than the last applied one is skipped,
// whatever its feature set. On ErrFeatureMismatch, Upgrade tells whether the frame's feature set replaces the learner's.
func (l *Learner) Apply(f features.Frame, v features.Vector) (Update, error) {
	if f.IntersectionID != l.intersection || v.ApproachID != l.approach {
		return Update{}, fmt.Errorf("apply %s/%s to learner %s/%s: %w", f.IntersectionID, v.ApproachID, l.intersection, l.approach, ErrKeyMismatch)
	}
	start, end, err := window(f, l.windowS)
	if err != nil {
		return Update{}, fmt.Errorf("apply %s/%s: %w", l.intersection, l.approach, err)
	}
	// A window already applied is skipped whatever its feature set: after a restore, the replayed frames of
	// an upgraded learner's predecessor carry the old one.
	if l.applied && start <= l.last {
		return Update{Window: f.WindowStart, Skipped: true, Version: l.version}, nil
	}
	if f.FeatureSetVersion != l.fsv || !checkNames(f.Names, l.featureNames[:l.nBase]) {
		return Update{}, fmt.Errorf("apply %s/%s: frame feature set %d %v, model %d %v: %w",
			l.intersection, l.approach, f.FeatureSetVersion, f.Names, l.fsv, l.featureNames, ErrFeatureMismatch)
	}
	x, err := inputs(f.Names, v, l.nBase)
	if err != nil {
		return Update{}, fmt.Errorf("apply %s/%s window %v: %w", l.intersection, l.approach, f.WindowStart, err)
	}
	scale, err := l.tgt.scale(v)
	if err != nil {
		return Update{}, fmt.Errorf("apply %s/%s window %v: %w", l.intersection, l.approach, f.WindowStart, err)
	}
	y, observed := l.tgt.observed(v)

	// Everything is validated: from here on the learner changes.
	up := Update{Window: f.WindowStart, Horizons: make([]HorizonUpdate, len(l.models))}
	for i, m := range l.models {
		hu := &up.Horizons[i]
		hu.Horizon = m.h
		hu.Labelled, hu.Expired, hu.Drift = m.label(start, y, observed, scale, l.cfg.RecentWindow)
	}
	tow := l.cal.localTimeOfWeek(start, x)
	l.hist.record(start, l.last, l.applied, y, observed, tow)
	for i, m := range l.models {
		hu := &up.Horizons[i]
		xh := make([]float64, len(l.featureNames))
		copy(xh, x)
		l.hist.seasonalInputs(xh[l.nBase:], start, start, m.hs, tow, scale)
		p := pending{start: start, x: xh, forecasts: l.forecasts(m, start, xh, y, observed, scale)}
		p.lo, p.hi = interval(m.cands[m.promoted], xh, l.cfg.IntervalConfidence, scale, l.tgt)
		m.pending = append(m.pending, p)
		if over := len(m.pending) - l.cfg.MaxPending; over > 0 {
			m.pending = append(m.pending[:0], m.pending[over:]...)
			hu.Expired += over
		}
		if hu.Labelled > 0 {
			from := m.promoted
			if m.promote(l.cfg) {
				hu.Promoted = true
				hu.PromotedFrom, hu.PromotedTo = l.cfg.Candidates[from].Name, l.cfg.Candidates[m.promoted].Name
			}
		}
		m.drifting = hu.Drift
		if hu.Drift {
			m.detected, m.driftAt = true, start
			m.resetCovariances()
		}
		// The forecast and interval of this window are those of the model as it now stands — the candidate
		// promoted after this window's labels, with its covariance after any drift reset — which is what a
		// snapshot taken now serves (Predict): the evaluation scores exactly the forecasts the predictor makes.
		last := &m.pending[len(m.pending)-1]
		if hu.Promoted || hu.Drift {
			last.lo, last.hi = interval(m.cands[m.promoted], last.x, l.cfg.IntervalConfidence, scale, l.tgt)
		}
		hu.Forecast = last.forecasts[m.promoted]
		hu.Profile = l.tgt.physical(l.hist.profile(tow + m.hs))
	}
	l.applied, l.last, l.lastEnd = true, start, end
	l.version++
	up.Version = l.version
	return up, nil
}

// Upgrade applies vector v of frame f to a successor of l when f's feature set version is newer than l's (the
// cleaner was upgraded): a new learner for f's feature names, with l's configuration, version and last applied
// window, so the versions of the model's snapshots keep increasing — the successor's first snapshot supersedes
// every snapshot of l wherever the newest version wins — and its windows never go back. Nothing else carries
// over: the coefficients, pending inputs, prequential metrics, coverage, drift state and history of l belong to
// the old feature set, so the successor starts like a new model. It returns the successor and its Update.
//
// A frame whose window is not after l's last applied window is a replay: it is skipped (Update.Skipped) and l
// itself is returned, so that the successor's first snapshot is always one window newer than l's last. An older
// feature set version (a cleaner not yet upgraded during a rolling upgrade) never downgrades a model, and the
// same version with other names is a cleaner bug: both return ErrFeatureMismatch. Upgrade also returns the
// errors of NewLearner and Apply, wrapped; l is never modified.
func (l *Learner) Upgrade(f features.Frame, v features.Vector) (*Learner, Update, error) {
	switch {
	case f.FeatureSetVersion < l.fsv:
		return nil, Update{}, fmt.Errorf("upgrade %s/%s: frame feature set %d is older than the model's %d (a cleaner not yet upgraded?); a model is never downgraded: %w",
			l.intersection, l.approach, f.FeatureSetVersion, l.fsv, ErrFeatureMismatch)
	case f.FeatureSetVersion == l.fsv:
		return nil, Update{}, fmt.Errorf("upgrade %s/%s: frame feature set %d %v is the model's version with features %v; a changed feature set needs a new version: %w",
			l.intersection, l.approach, f.FeatureSetVersion, f.Names, l.featureNames[:l.nBase], ErrFeatureMismatch)
	}
	n, err := NewLearner(l.intersection, l.approach, f.Names, f.FeatureSetVersion, l.cfg)
	if err != nil {
		return nil, Update{}, fmt.Errorf("upgrade %s/%s to feature set %d: %w", l.intersection, l.approach, f.FeatureSetVersion, err)
	}
	n.version = l.version
	n.applied, n.last, n.lastEnd = l.applied, l.last, l.lastEnd
	up, err := n.Apply(f, v)
	if err != nil {
		return nil, Update{}, fmt.Errorf("upgrade to feature set %d: %w", f.FeatureSetVersion, err)
	}
	if up.Skipped {
		return l, up, nil
	}
	return n, up, nil
}

// label scores and trains on the pending inputs whose label window is start, and drops those whose label
// window has passed. y is the window's target (natural units) when observed, scale its fixed divisor; recent
// is the size of the recent windows.
func (m *horizonModel) label(start int64, y float64, observed bool, scale float64, recent int) (labelled, expired int, drift bool) {
	n := 0
	for n < len(m.pending) && m.pending[n].start+m.hs <= start {
		p := m.pending[n]
		n++
		if p.start+m.hs != start || !observed {
			expired++
			continue
		}
		labelled++
		// Test: score every forecast made before any update with this label, and the interval issued with them.
		for k, fc := range p.forecasts {
			if !math.IsNaN(fc) {
				m.evals[k].add(y, fc)
			}
		}
		if !math.IsNaN(p.lo) {
			m.coverage.add(p.lo <= y && y <= p.hi, recent)
		}
		if fc := p.forecasts[m.promoted]; !math.IsNaN(fc) {
			if d, err := m.drift.Add(math.Abs(y-fc) / scale); err == nil && d {
				drift = true
			}
		}
		// Then train. An update the estimator rejects (overflow) leaves that candidate unchanged.
		ys := y / scale
		for _, c := range m.cands {
			_ = c.Update(p.x, ys)
		}
	}
	m.pending = append(m.pending[:0], m.pending[n:]...)
	return labelled, expired, drift
}

// forecasts returns every forecaster's forecast of start+h (natural units, within the target's physical range,
// NaN when none), in evals order: what is scored is what the predictor would serve. The history must already
// hold the window at start as its last.
func (l *Learner) forecasts(m *horizonModel, start int64, x []float64, y float64, observed bool, scale float64) []float64 {
	nc := len(m.cands)
	out := make([]float64, nc+len(baselineNames))
	for i, c := range m.cands {
		out[i] = sane(predictScaled(c, x) * scale)
	}
	out[nc] = math.NaN()
	if observed {
		out[nc] = y
	}
	at := start + m.hs
	out[nc+1] = l.hist.slot(at-week, start)
	out[nc+2] = l.hist.average(at)
	for i, v := range out {
		out[i] = l.tgt.physical(v)
	}
	return out
}

func predictScaled(c *regression.RLS, x []float64) float64 {
	p, err := c.Predict(x)
	if err != nil {
		return math.NaN()
	}
	return p
}

// sane returns v, or NaN when v is not finite or beyond maxAbsValue.
func sane(v float64) float64 {
	if !(math.Abs(v) <= maxAbsValue) {
		return math.NaN()
	}
	return v
}

// promote applies the promotion rule and reports whether the promoted candidate changed.
func (m *horizonModel) promote(cfg Config) bool {
	minLen := (cfg.RecentWindow + 1) / 2
	cur := m.evals[m.promoted].recent
	if cur.Len() < minLen {
		return false
	}
	curMAE := cur.MAE()
	best, bestMAE := -1, math.Inf(1)
	for i := range m.cands {
		r := m.evals[i].recent
		if r.Len() < minLen {
			continue
		}
		if mae := r.MAE(); mae < bestMAE {
			best, bestMAE = i, mae
		}
	}
	if best < 0 || best == m.promoted || !(bestMAE < (1-cfg.PromoteMargin)*curMAE) {
		return false
	}
	m.promoted = best
	m.promotions++
	return true
}

// resetCovariances sets every candidate's P to Delta·I, keeping coefficients and noise estimate, and counts
// the reset in its covariance resets.
func (m *horizonModel) resetCovariances() {
	for i, c := range m.cands {
		st := c.State()
		n := st.Features + 1
		clear(st.Covariance)
		for j := 0; j < n; j++ {
			st.Covariance[j*n+j] = st.Delta
		}
		st.CovarianceResets++
		if r, err := regression.FromState(st); err == nil { // Delta·I always satisfies FromState
			m.cands[i] = r
		}
	}
}
