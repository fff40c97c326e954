package train

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/greenwave-city/greenwave/pkg/regression"
)

// SchemaVersion is the ModelSnapshot.schema_version this package writes. RestoreLearner and Compile also read
// SchemaVersion1 records, so that a trainer upgraded from the code before version 2 restores its models once
// (the next checkpoint rewrites them at version 2).
const SchemaVersion = 2

// SchemaVersion1 is the first snapshot format: P in full, the exact state beyond the v1 fields in the opaque
// baseline_state bytes, and the pending inputs' forecasts in a map keyed by forecaster name.
const SchemaVersion1 = 1

// ModelID returns the model id, the snapshot key "intersection/approach/horizon_s/target" (whole seconds; an
// empty target is TargetFlow, the default Config.Target). The key starts with the intersection id, so the models
// topic stays co-partitioned with the other topics.
func ModelID(intersectionID, approachID string, horizon time.Duration, target string) string {
	if target == "" {
		target = TargetFlow
	}
	return intersectionID + "/" + approachID + "/" + strconv.FormatInt(int64(horizon/time.Second), 10) + "/" + target
}

// Snapshots returns the complete state of the learner, one snapshot per horizon in Config order, at
// SchemaVersion. The snapshots share nothing with the learner or with each other. RestoreLearner on all of them
// continues exactly like this learner.
func (l *Learner) Snapshots() []*Snapshot {
	out := make([]*Snapshot, 0, len(l.models))
	nc := len(l.cfg.Candidates)
	for _, m := range l.models {
		s := &Snapshot{
			SchemaVersion:     SchemaVersion,
			ModelID:           ModelID(l.intersection, l.approach, m.h, l.tgt.name),
			IntersectionID:    l.intersection,
			ApproachID:        l.approach,
			HorizonS:          uint32(m.hs),
			Target:            l.tgt.name,
			FeatureSetVersion: uint32(l.fsv),
			FeatureNames:      slices.Clone(l.featureNames),
			Version:           l.version,
			Promoted:          l.cfg.Candidates[m.promoted].Name,
			Promotions:        m.promotions,
			Baselines:         make(map[string]*Evaluation, len(baselineNames)),
			IntervalCoverage:  m.coverage.state(l.cfg.IntervalConfidence),
			History:           l.hist.state(),
			Recent:            recentErrors(m.evals),
		}
		if l.applied {
			s.LastAppliedWindow, s.UpdatedAt = unixTime(l.last), unixTime(l.lastEnd)
		}
		for i, c := range m.cands {
			s.Candidates = append(s.Candidates, Candidate{
				Name:       l.cfg.Candidates[i].Name,
				State:      rlsState(c.State()),
				Evaluation: m.evals[i].evaluation(),
			})
		}
		for j, name := range baselineNames {
			s.Baselines[name] = m.evals[nc+j].evaluation()
		}
		for _, p := range m.pending {
			pi := PendingInput{
				WindowStart: unixTime(p.start),
				Values:      slices.Clone(p.x),
				Forecasts:   make([]float64, len(p.forecasts)),
			}
			for k, fc := range p.forecasts {
				if math.IsNaN(fc) {
					fc = math.NaN() // one canonical bit pattern
				}
				pi.Forecasts[k] = fc
			}
			if !math.IsNaN(p.lo) {
				lo, hi := p.lo, p.hi
				pi.IntervalLower, pi.IntervalUpper = &lo, &hi
			}
			s.Pending = append(s.Pending, pi)
		}
		ph := m.drift.State()
		s.Drift = &DriftState{
			Mean: ph.Mean, Cumulative: ph.CumUp, Minimum: ph.MinUp, N: ph.N, Detections: ph.Drifts, Drifting: m.drifting,
		}
		if m.detected {
			s.Drift.LastDetectedWindow = unixTime(m.driftAt)
		}
		out = append(out, s)
	}
	return out
}

// Model compiles horizon h's current model exactly as Compile(Served(s)) would for the matching snapshot s of
// Snapshots (the same forecasts, bit for bit), and reports whether that horizon is drifting, without building
// what prediction does not read (evaluations, recent errors, pending inputs, the other candidates): what an
// offline evaluation needs to forecast every window as the predictor would. False when the learner has no such
// horizon.
func (l *Learner) Model(h time.Duration) (m *Model, drifting bool, ok bool, err error) {
	for _, hm := range l.models {
		if hm.h != h {
			continue
		}
		promoted := l.cfg.Candidates[hm.promoted].Name
		s := &Snapshot{
			SchemaVersion:     SchemaVersion,
			ModelID:           ModelID(l.intersection, l.approach, hm.h, l.tgt.name),
			HorizonS:          uint32(hm.hs),
			Target:            l.tgt.name,
			FeatureSetVersion: uint32(l.fsv),
			FeatureNames:      slices.Clone(l.featureNames),
			Promoted:          promoted,
			History:           l.hist.state(),
			Candidates:        []Candidate{{Name: promoted, State: rlsState(hm.cands[hm.promoted].State())}},
		}
		if l.applied {
			s.LastAppliedWindow = unixTime(l.last)
		}
		m, err := Compile(s)
		return m, hm.drifting, true, err
	}
	return nil, false, false, nil
}

// Served returns the serving form of s, a snapshot Snapshots made: what the predictor applies and ModelService
// lists, marked served. It keeps the promoted candidate's estimator whole and, of the other candidates, their
// settings, counts and evaluations without coefficients or covariance; it drops the recent errors and the
// pending inputs, which only training needs. Compile gives the same Model for s and Served(s); RestoreLearner
// refuses the served form. s is not modified; the result shares the parts it keeps with s.
func Served(s *Snapshot) *Snapshot {
	out := *s
	out.Served, out.Recent, out.Pending, out.BaselineState = true, nil, nil, nil
	out.Candidates = slices.Clone(s.Candidates)
	for i, c := range out.Candidates {
		if c.Name == out.Promoted || c.State == nil {
			continue
		}
		st := *c.State
		st.Coefficients, st.Covariance, st.CovarianceUpper = nil, nil, nil
		out.Candidates[i].State = &st
	}
	return &out
}

func (e *eval) evaluation() *Evaluation {
	return &Evaluation{Cumulative: e.cum.stats(), Recent: windowStats(e.recent)}
}

// forecasterName returns the name of evals index k: a candidate's, then a baseline's.
func forecasterName(cfg Config, k int) string {
	if k < len(cfg.Candidates) {
		return cfg.Candidates[k].Name
	}
	return baselineNames[k-len(cfg.Candidates)]
}

func rlsState(st regression.RLSState) *RLSState {
	nv := 0.0
	if st.NoiseWeight > 0 {
		nv = st.NoiseSum / st.NoiseWeight
	}
	return &RLSState{
		Coefficients:      st.Coefficients,
		CovarianceUpper:   upperTriangle(st.Covariance, st.Features+1),
		ForgettingFactor:  st.Lambda,
		InitialCovariance: st.Delta,
		Updates:           st.Updates,
		NoiseVariance:     nv,
		// Resets are never called; covariance resets (rounding repairs and drift) are the v1 "resets".
		Resets:      st.CovarianceResets + st.Resets,
		NoiseSum:    st.NoiseSum,
		NoiseWeight: st.NoiseWeight,
	}
}

// RestoreLearner rebuilds a learner from the snapshots Snapshots returned (one per configured horizon, any
// order; typically decoded from the models topic). cfg must be the configuration the learner ran with:
// horizons, candidates (names, λ, Delta, MaxTrace), target, window, recent window and drift settings are
// checked against the snapshots where they are recorded, and a mismatch is ErrInvalidSnapshot (start a new
// learner instead). Continuing from the restored learner equals an uninterrupted run bit for bit.
func RestoreLearner(intersectionID, approachID string, snaps []*Snapshot, cfg Config) (*Learner, error) {
	l, err := restore(intersectionID, approachID, snaps, cfg)
	if err != nil {
		return nil, fmt.Errorf("restore learner %s/%s: %w", intersectionID, approachID, err)
	}
	return l, nil
}

func restore(intersectionID, approachID string, snaps []*Snapshot, cfg Config) (*Learner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(snaps) != len(cfg.Horizons) {
		return nil, fmt.Errorf("%d snapshots for %d horizons: %w", len(snaps), len(cfg.Horizons), ErrInvalidSnapshot)
	}
	tgt, _ := targetOf(cfg.Target)
	first := snaps[0]
	if first == nil {
		return nil, fmt.Errorf("nil snapshot: %w", ErrInvalidSnapshot)
	}
	for _, s := range snaps {
		if s != nil && s.Served {
			return nil, fmt.Errorf("snapshot %s v%d is the served form, without the state a restore needs (restore from the trainer's changelog): %w",
				s.ModelID, s.Version, ErrInvalidSnapshot)
		}
	}
	names := slices.Clone(first.FeatureNames)
	base, ok := baseNames(names)
	if !ok || len(names) > regression.MaxFeatures || slices.Contains(names, biasName) {
		return nil, fmt.Errorf("feature names %v (a model without the seasonal inputs is of an older format; start a new model): %w", names, ErrInvalidSnapshot)
	}
	l := newLearnerShell(intersectionID, approachID, base, int(first.FeatureSetVersion), cfg)
	l.version = first.Version
	if w := first.LastAppliedWindow; w != nil {
		end := first.UpdatedAt
		if end == nil || w.Nanos != 0 || end.Seconds-w.Seconds != l.windowS || mod(w.Seconds, l.windowS) != 0 {
			return nil, fmt.Errorf("last applied window %v, updated at %v: %w", w, end, ErrInvalidSnapshot)
		}
		l.applied, l.last, l.lastEnd = true, w.Seconds, end.Seconds
	} else if first.UpdatedAt != nil || l.version != 0 {
		return nil, fmt.Errorf("version %d without last applied window: %w", l.version, ErrInvalidSnapshot)
	}
	version := first.SchemaVersion
	var (
		off    int    // schema 1: the offset of the horizon section in baseline_state
		shared []byte // schema 1: the shared section, identical in every horizon's baseline_state
	)
	switch version {
	case SchemaVersion1:
		var err error
		if off, err = l.hist.decodeShared(first.BaselineState); err != nil {
			return nil, err
		}
		shared = first.BaselineState[:off]
	case SchemaVersion:
		if err := l.hist.setState(first.History); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("snapshot %q schema version %d, want %d (or %d): %w", first.ModelID, version, SchemaVersion, SchemaVersion1, ErrInvalidSnapshot)
	}

	byHorizon := map[uint32]*Snapshot{}
	for i, s := range snaps {
		if s == nil {
			return nil, fmt.Errorf("snapshot %d is nil: %w", i, ErrInvalidSnapshot)
		}
		switch {
		case s.SchemaVersion != version:
			return nil, fmt.Errorf("snapshot %q schema version %d, %q %d: %w", s.ModelID, s.SchemaVersion, first.ModelID, version, ErrInvalidSnapshot)
		case s.IntersectionID != intersectionID || s.ApproachID != approachID:
			return nil, fmt.Errorf("snapshot %q is for %s/%s: %w", s.ModelID, s.IntersectionID, s.ApproachID, ErrKeyMismatch)
		case s.Target != tgt.name:
			return nil, fmt.Errorf("snapshot %q target %v, configured %q: %w", s.ModelID, s.Target, tgt.name, ErrInvalidSnapshot)
		case s.FeatureSetVersion != first.FeatureSetVersion || !slices.Equal(s.FeatureNames, names):
			return nil, fmt.Errorf("snapshot %q feature set differs from %q: %w", s.ModelID, first.ModelID, ErrInvalidSnapshot)
		case s.Version != l.version || !s.LastAppliedWindow.Time().Equal(first.LastAppliedWindow.Time()) ||
			!s.UpdatedAt.Time().Equal(first.UpdatedAt.Time()):
			return nil, fmt.Errorf("snapshot %q at version %d, %q at %d: %w", s.ModelID, s.Version, first.ModelID, l.version, ErrInvalidSnapshot)
		case version == SchemaVersion1 && !bytes.HasPrefix(s.BaselineState, shared),
			version == SchemaVersion && !s.History.equal(first.History):
			return nil, fmt.Errorf("snapshot %q history differs from %q: %w", s.ModelID, first.ModelID, ErrInvalidSnapshot)
		case byHorizon[s.HorizonS] != nil:
			return nil, fmt.Errorf("horizon %d s repeated: %w", s.HorizonS, ErrInvalidSnapshot)
		}
		byHorizon[s.HorizonS] = s
	}
	for _, h := range cfg.Horizons {
		s := byHorizon[uint32(h/time.Second)]
		if s == nil {
			return nil, fmt.Errorf("no snapshot for horizon %v: %w", h, ErrInvalidSnapshot)
		}
		if want := ModelID(intersectionID, approachID, h, tgt.name); s.ModelID != want {
			return nil, fmt.Errorf("snapshot id %q, want %q: %w", s.ModelID, want, ErrInvalidSnapshot)
		}
		m, err := l.restoreHorizon(s, h, off)
		if err != nil {
			return nil, fmt.Errorf("snapshot %q: %w", s.ModelID, err)
		}
		l.models = append(l.models, m)
	}
	return l, nil
}

func (l *Learner) restoreHorizon(s *Snapshot, h time.Duration, off int) (*horizonModel, error) {
	cfg := l.cfg
	nc := len(cfg.Candidates)
	ne := nc + len(baselineNames)
	m := &horizonModel{h: h, hs: int64(h / time.Second), promoted: -1, promotions: s.Promotions}
	v1 := s.SchemaVersion == SchemaVersion1
	var (
		bh  blobHorizon
		err error
	)
	if v1 {
		if bh, err = decodeHorizon(s.BaselineState, off, nc, ne); err != nil {
			return nil, err
		}
	} else {
		if len(s.BaselineState) > 0 {
			return nil, fmt.Errorf("schema %d snapshot with schema 1 baseline state: %w", SchemaVersion, ErrInvalidSnapshot)
		}
		recent, err := recentWindows(s.Recent, ne)
		if err != nil {
			return nil, err
		}
		bh.recent = recent
		for _, c := range s.Candidates {
			bh.noise = append(bh.noise, noiseAcc{deref(c.State).NoiseSum, deref(c.State).NoiseWeight})
		}
	}
	if len(s.Candidates) != nc {
		return nil, fmt.Errorf("%d candidates, configured %d: %w", len(s.Candidates), nc, ErrInvalidSnapshot)
	}
	nf := len(l.featureNames)
	m.evals = make([]eval, ne)
	for i, c := range s.Candidates {
		spec := cfg.Candidates[i]
		st := deref(c.State)
		if c.Name != spec.Name || st.ForgettingFactor != spec.RLS.Lambda || st.InitialCovariance != spec.RLS.Delta {
			return nil, fmt.Errorf("candidate %d %q (λ %g, δ %g) differs from configured %q: %w",
				i, c.Name, st.ForgettingFactor, st.InitialCovariance, spec.Name, ErrInvalidSnapshot)
		}
		maxTrace := spec.RLS.MaxTrace
		if maxTrace == 0 {
			maxTrace = spec.RLS.Delta * float64(nf+1)
		}
		p, err := fullCovariance(st, nf)
		if err != nil {
			return nil, fmt.Errorf("candidate %q: %w", spec.Name, err)
		}
		r, err := regression.FromState(regression.RLSState{
			Features: nf, Lambda: spec.RLS.Lambda, Delta: spec.RLS.Delta, MaxTrace: maxTrace,
			Coefficients: slices.Clone(st.Coefficients), Covariance: p,
			Updates: st.Updates, CovarianceResets: st.Resets,
			NoiseSum: bh.noise[i].sum, NoiseWeight: bh.noise[i].weight,
		})
		if err != nil {
			return nil, fmt.Errorf("candidate %q: %w: %w", spec.Name, ErrInvalidSnapshot, err)
		}
		m.cands = append(m.cands, r)
		if c.Name == s.Promoted {
			m.promoted = i
		}
		if m.evals[i].cum, err = errAccOf(deref(c.Evaluation).Cumulative); err != nil {
			return nil, fmt.Errorf("candidate %q: %w", spec.Name, err)
		}
	}
	if m.promoted < 0 {
		return nil, fmt.Errorf("promoted candidate %q unknown: %w", s.Promoted, ErrInvalidSnapshot)
	}
	if len(s.Baselines) != len(baselineNames) {
		return nil, fmt.Errorf("%d baselines, want %d: %w", len(s.Baselines), len(baselineNames), ErrInvalidSnapshot)
	}
	for j, name := range baselineNames {
		ev, ok := s.Baselines[name]
		if !ok {
			return nil, fmt.Errorf("baseline %q missing: %w", name, ErrInvalidSnapshot)
		}
		if m.evals[nc+j].cum, err = errAccOf(deref(ev).Cumulative); err != nil {
			return nil, fmt.Errorf("baseline %q: %w", name, err)
		}
	}
	for k := range m.evals {
		if bh.recent[k].Size != cfg.RecentWindow {
			return nil, fmt.Errorf("recent window %d, configured %d: %w", bh.recent[k].Size, cfg.RecentWindow, ErrInvalidSnapshot)
		}
		if m.evals[k].recent, err = regression.WindowStatsFromState(bh.recent[k]); err != nil {
			return nil, fmt.Errorf("recent window of %q: %w: %w", forecasterName(cfg, k), ErrInvalidSnapshot, err)
		}
	}
	cov, keepIntervals, err := restoreCoverage(s.IntervalCoverage, cfg.IntervalConfidence, cfg.RecentWindow)
	if err != nil {
		return nil, err
	}
	m.coverage = cov
	if m.pending, err = l.restorePending(s.Pending, m.hs, ne, keepIntervals, v1); err != nil {
		return nil, err
	}
	d := deref(s.Drift)
	m.drift, err = regression.PageHinkleyFromState(regression.PageHinkleyState{
		// The decrease statistics are not in v1; with DetectIncrease they affect nothing.
		Config: cfg.Drift, N: d.N, Mean: d.Mean, CumUp: d.Cumulative, MinUp: d.Minimum, Drifts: d.Detections,
	})
	if err != nil {
		return nil, fmt.Errorf("drift: %w: %w", ErrInvalidSnapshot, err)
	}
	m.drifting = d.Drifting
	if w := d.LastDetectedWindow; w != nil {
		m.detected, m.driftAt = true, w.Seconds
	}
	return m, nil
}

// restorePending decodes the pending inputs; keepIntervals false drops their intervals (made at another
// confidence than the configured one). v1 reads the forecasts from schema 1's baseline_forecasts map.
func (l *Learner) restorePending(ps []PendingInput, hs int64, ne int, keepIntervals, v1 bool) ([]pending, error) {
	if len(ps) > l.cfg.MaxPending {
		return nil, fmt.Errorf("%d pending inputs, max %d: %w", len(ps), l.cfg.MaxPending, ErrInvalidSnapshot)
	}
	index := make(map[string]int, ne)
	for k := 0; k < ne; k++ {
		index[forecasterName(l.cfg, k)] = k
	}
	var out []pending
	prev := int64(math.MinInt64)
	for i, p := range ps {
		start := deref(p.WindowStart).Seconds
		if p.WindowStart == nil || !l.applied || start <= prev || start > l.last || start+hs <= l.last || mod(start, l.windowS) != 0 {
			return nil, fmt.Errorf("pending input %d at %v out of order or outside (last − horizon, last]: %w", i, p.WindowStart, ErrInvalidSnapshot)
		}
		prev = start
		if len(p.Values) != len(l.featureNames) {
			return nil, fmt.Errorf("pending input %d has %d values for %d features: %w", i, len(p.Values), len(l.featureNames), ErrInvalidSnapshot)
		}
		for _, v := range p.Values {
			if !(math.Abs(v) <= MaxAbsFeature) {
				return nil, fmt.Errorf("pending input %d value %g: %w", i, v, ErrInvalidSnapshot)
			}
		}
		fc := make([]float64, ne)
		if v1 {
			for k := range fc {
				fc[k] = math.NaN()
			}
			for name, v := range p.BaselineForecasts {
				k, ok := index[name]
				if !ok || math.IsNaN(sane(v)) {
					return nil, fmt.Errorf("pending input %d forecast %q = %g: %w", i, name, v, ErrInvalidSnapshot)
				}
				fc[k] = v
			}
		} else {
			if len(p.Forecasts) != ne || len(p.BaselineForecasts) > 0 {
				return nil, fmt.Errorf("pending input %d has %d forecasts (and %d by name) for %d forecasters: %w",
					i, len(p.Forecasts), len(p.BaselineForecasts), ne, ErrInvalidSnapshot)
			}
			for k, v := range p.Forecasts {
				if !math.IsNaN(v) && math.IsNaN(sane(v)) {
					return nil, fmt.Errorf("pending input %d forecast of %q = %g: %w", i, forecasterName(l.cfg, k), v, ErrInvalidSnapshot)
				}
				fc[k] = v
			}
		}
		pe := pending{start: start, x: slices.Clone(p.Values), forecasts: fc, lo: math.NaN(), hi: math.NaN()}
		if p.IntervalLower != nil || p.IntervalUpper != nil {
			lo, hi := sane(deref(p.IntervalLower)), sane(deref(p.IntervalUpper))
			if p.IntervalLower == nil || p.IntervalUpper == nil || math.IsNaN(lo) || math.IsNaN(hi) || lo > hi {
				return nil, fmt.Errorf("pending input %d interval [%v, %v]: %w", i, p.IntervalLower, p.IntervalUpper, ErrInvalidSnapshot)
			}
			if keepIntervals {
				pe.lo, pe.hi = lo, hi
			}
		}
		out = append(out, pe)
	}
	return out, nil
}
