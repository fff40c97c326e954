package train

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"

	"github.com/greenwave-city/greenwave/pkg/regression"
)

// SchemaVersion is the ModelSnapshot.schema_version this package writes. RestoreLearner and Compile also read
// SchemaVersion1 records, so that a trainer upgraded from the code before version 2 restores its models once
// (the next checkpoint rewrites them at version 2).
const SchemaVersion = 2

// SchemaVersion1 is the first snapshot format: P in full, the exact state beyond the v1 fields in the opaque
// baseline_state bytes, and the pending inputs' forecasts in a map keyed by forecaster name.
const SchemaVersion1 = 1

// ModelID returns the snapshot key "intersection/approach/horizon_s/target".
func ModelID(intersectionID, approachID string, horizon time.Duration, target string) string {
	if target == "" {
		target = TargetFlow
	}
	return intersectionID + "/" + approachID + "/" + strconv.FormatInt(int64(horizon/time.Second), 10) + "/" + target
}

func ts(unix int64) *timestamppb.Timestamp { return &timestamppb.Timestamp{Seconds: unix} }

// Snapshots returns the complete state of the learner, one message per horizon in Config order, at
// SchemaVersion. The messages share nothing with the learner or with each other. RestoreLearner on all of them
// continues exactly like this learner.
func (l *Learner) Snapshots() []*greenwavev1.ModelSnapshot {
	out := make([]*greenwavev1.ModelSnapshot, 0, len(l.models))
	nc := len(l.cfg.Candidates)
	for _, m := range l.models {
		s := &greenwavev1.ModelSnapshot{
			SchemaVersion:     SchemaVersion,
			ModelId:           ModelID(l.intersection, l.approach, m.h, l.tgt.name),
			IntersectionId:    l.intersection,
			ApproachId:        l.approach,
			HorizonS:          uint32(m.hs),
			Target:            l.tgt.proto,
			FeatureSetVersion: uint32(l.fsv),
			FeatureNames:      slices.Clone(l.featureNames),
			Version:           l.version,
			Promoted:          l.cfg.Candidates[m.promoted].Name,
			Promotions:        m.promotions,
			Baselines:         make(map[string]*greenwavev1.Evaluation, len(baselineNames)),
			IntervalCoverage:  m.coverage.toProto(l.cfg.IntervalConfidence),
			History:           l.hist.toProto(),
			Recent:            recentToProto(m.evals),
		}
		if l.applied {
			s.LastAppliedWindow, s.UpdatedAt = ts(l.last), ts(l.lastEnd)
		}
		for i, c := range m.cands {
			s.Candidates = append(s.Candidates, &greenwavev1.Candidate{
				Name:       l.cfg.Candidates[i].Name,
				State:      rlsToProto(c.State()),
				Evaluation: m.evals[i].toProto(),
			})
		}
		for j, name := range baselineNames {
			s.Baselines[name] = m.evals[nc+j].toProto()
		}
		for _, p := range m.pending {
			pi := &greenwavev1.PendingInput{
				WindowStart: ts(p.start),
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
				pi.IntervalLower, pi.IntervalUpper = &p.lo, &p.hi
			}
			s.Pending = append(s.Pending, pi)
		}
		ph := m.drift.State()
		s.Drift = &greenwavev1.DriftState{
			Mean: ph.Mean, Cumulative: ph.CumUp, Minimum: ph.MinUp, N: ph.N, Detections: ph.Drifts, Drifting: m.drifting,
		}
		if m.detected {
			s.Drift.LastDetectedWindow = ts(m.driftAt)
		}
		out = append(out, s)
	}
	return out
}

// Served returns the serving form of s, a snapshot Snapshots made: what the predictor applies and ModelService
// lists, marked served. It keeps the promoted candidate's estimator whole and, of the other candidates, their
// settings, counts and evaluations without coefficients or covariance; it drops the recent errors and the
// pending inputs, which only training needs. Compile gives the same Model for s and Served(s); RestoreLearner
// refuses the served form. s is not modified.
func Served(s *greenwavev1.ModelSnapshot) *greenwavev1.ModelSnapshot {
	out := proto.CloneOf(s)
	out.Served, out.Recent, out.Pending, out.BaselineState = true, nil, nil, nil
	for _, c := range out.GetCandidates() {
		if c.GetName() == out.GetPromoted() || c.GetState() == nil {
			continue
		}
		st := c.State
		st.Coefficients, st.Covariance, st.CovarianceUpper = nil, nil, nil
	}
	return out
}

func (e *eval) toProto() *greenwavev1.Evaluation {
	return &greenwavev1.Evaluation{Cumulative: e.cum.toProto(), Recent: windowProto(e.recent)}
}

// forecasterName returns the name of evals index k: a candidate's, then a baseline's.
func forecasterName(cfg Config, k int) string {
	if k < len(cfg.Candidates) {
		return cfg.Candidates[k].Name
	}
	return baselineNames[k-len(cfg.Candidates)]
}

func rlsToProto(st regression.RLSState) *greenwavev1.RLSState {
	nv := 0.0
	if st.NoiseWeight > 0 {
		nv = st.NoiseSum / st.NoiseWeight
	}
	return &greenwavev1.RLSState{
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
func RestoreLearner(intersectionID, approachID string, snaps []*greenwavev1.ModelSnapshot, cfg Config) (*Learner, error) {
	l, err := restore(intersectionID, approachID, snaps, cfg)
	if err != nil {
		return nil, fmt.Errorf("restore learner %s/%s: %w", intersectionID, approachID, err)
	}
	return l, nil
}

func restore(intersectionID, approachID string, snaps []*greenwavev1.ModelSnapshot, cfg Config) (*Learner, error) {
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
		if s.GetServed() {
			return nil, fmt.Errorf("snapshot %s v%d is the served form, without the state a restore needs (restore from the trainer's changelog): %w",
				s.GetModelId(), s.GetVersion(), ErrInvalidSnapshot)
		}
	}
	names := slices.Clone(first.GetFeatureNames())
	base, ok := baseNames(names)
	if !ok || len(names) > regression.MaxFeatures || slices.Contains(names, biasName) {
		return nil, fmt.Errorf("feature names %v (a model without the seasonal inputs is of an older format; start a new model): %w", names, ErrInvalidSnapshot)
	}
	l := newLearnerShell(intersectionID, approachID, base, int(first.GetFeatureSetVersion()), cfg)
	l.version = first.GetVersion()
	if w := first.GetLastAppliedWindow(); w != nil {
		end := first.GetUpdatedAt()
		if end == nil || w.GetNanos() != 0 || end.GetSeconds()-w.GetSeconds() != l.windowS || mod(w.GetSeconds(), l.windowS) != 0 {
			return nil, fmt.Errorf("last applied window %v, updated at %v: %w", w, end, ErrInvalidSnapshot)
		}
		l.applied, l.last, l.lastEnd = true, w.GetSeconds(), end.GetSeconds()
	} else if first.GetUpdatedAt() != nil || l.version != 0 {
		return nil, fmt.Errorf("version %d without last applied window: %w", l.version, ErrInvalidSnapshot)
	}
	version := first.GetSchemaVersion()
	var (
		off    int    // schema 1: the offset of the horizon section in baseline_state
		shared []byte // schema 1: the shared section, identical in every horizon's baseline_state
	)
	switch version {
	case SchemaVersion1:
		var err error
		if off, err = l.hist.decodeShared(first.GetBaselineState()); err != nil {
			return nil, err
		}
		shared = first.GetBaselineState()[:off]
	case SchemaVersion:
		if err := l.hist.fromProto(first.GetHistory()); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("snapshot %q schema version %d, want %d (or %d): %w", first.GetModelId(), version, SchemaVersion, SchemaVersion1, ErrInvalidSnapshot)
	}

	byHorizon := map[uint32]*greenwavev1.ModelSnapshot{}
	for i, s := range snaps {
		if s == nil {
			return nil, fmt.Errorf("snapshot %d is nil: %w", i, ErrInvalidSnapshot)
		}
		switch {
		case s.GetSchemaVersion() != version:
			return nil, fmt.Errorf("snapshot %q schema version %d, %q %d: %w", s.GetModelId(), s.GetSchemaVersion(), first.GetModelId(), version, ErrInvalidSnapshot)
		case s.GetIntersectionId() != intersectionID || s.GetApproachId() != approachID:
			return nil, fmt.Errorf("snapshot %q is for %s/%s: %w", s.GetModelId(), s.GetIntersectionId(), s.GetApproachId(), ErrKeyMismatch)
		case s.GetTarget() != tgt.proto:
			return nil, fmt.Errorf("snapshot %q target %v, configured %q: %w", s.GetModelId(), s.GetTarget(), tgt.name, ErrInvalidSnapshot)
		case s.GetFeatureSetVersion() != first.GetFeatureSetVersion() || !slices.Equal(s.GetFeatureNames(), names):
			return nil, fmt.Errorf("snapshot %q feature set differs from %q: %w", s.GetModelId(), first.GetModelId(), ErrInvalidSnapshot)
		case s.GetVersion() != l.version || !s.GetLastAppliedWindow().AsTime().Equal(first.GetLastAppliedWindow().AsTime()) ||
			!s.GetUpdatedAt().AsTime().Equal(first.GetUpdatedAt().AsTime()):
			return nil, fmt.Errorf("snapshot %q at version %d, %q at %d: %w", s.GetModelId(), s.GetVersion(), first.GetModelId(), l.version, ErrInvalidSnapshot)
		case version == SchemaVersion1 && !bytes.HasPrefix(s.GetBaselineState(), shared),
			version == SchemaVersion && !proto.Equal(s.GetHistory(), first.GetHistory()):
			return nil, fmt.Errorf("snapshot %q history differs from %q: %w", s.GetModelId(), first.GetModelId(), ErrInvalidSnapshot)
		case byHorizon[s.GetHorizonS()] != nil:
			return nil, fmt.Errorf("horizon %d s repeated: %w", s.GetHorizonS(), ErrInvalidSnapshot)
		}
		byHorizon[s.GetHorizonS()] = s
	}
	for _, h := range cfg.Horizons {
		s := byHorizon[uint32(h/time.Second)]
		if s == nil {
			return nil, fmt.Errorf("no snapshot for horizon %v: %w", h, ErrInvalidSnapshot)
		}
		if want := ModelID(intersectionID, approachID, h, tgt.name); s.GetModelId() != want {
			return nil, fmt.Errorf("snapshot id %q, want %q: %w", s.GetModelId(), want, ErrInvalidSnapshot)
		}
		m, err := l.restoreHorizon(s, h, off)
		if err != nil {
			return nil, fmt.Errorf("snapshot %q: %w", s.GetModelId(), err)
		}
		l.models = append(l.models, m)
	}
	return l, nil
}

func (l *Learner) restoreHorizon(s *greenwavev1.ModelSnapshot, h time.Duration, off int) (*horizonModel, error) {
	cfg := l.cfg
	nc := len(cfg.Candidates)
	ne := nc + len(baselineNames)
	m := &horizonModel{h: h, hs: int64(h / time.Second), promoted: -1, promotions: s.GetPromotions()}
	v1 := s.GetSchemaVersion() == SchemaVersion1
	var (
		bh  blobHorizon
		err error
	)
	if v1 {
		if bh, err = decodeHorizon(s.GetBaselineState(), off, nc, ne); err != nil {
			return nil, err
		}
	} else {
		if len(s.GetBaselineState()) > 0 {
			return nil, fmt.Errorf("schema %d snapshot with schema 1 baseline state: %w", SchemaVersion, ErrInvalidSnapshot)
		}
		recent, err := recentFromProto(s.GetRecent(), ne)
		if err != nil {
			return nil, err
		}
		bh.recent = recent
		for _, c := range s.GetCandidates() {
			bh.noise = append(bh.noise, noiseAcc{c.GetState().GetNoiseSum(), c.GetState().GetNoiseWeight()})
		}
	}
	if len(s.GetCandidates()) != nc {
		return nil, fmt.Errorf("%d candidates, configured %d: %w", len(s.GetCandidates()), nc, ErrInvalidSnapshot)
	}
	nf := len(l.featureNames)
	m.evals = make([]eval, ne)
	for i, c := range s.GetCandidates() {
		spec := cfg.Candidates[i]
		st := c.GetState()
		if c.GetName() != spec.Name || st.GetForgettingFactor() != spec.RLS.Lambda || st.GetInitialCovariance() != spec.RLS.Delta {
			return nil, fmt.Errorf("candidate %d %q (λ %g, δ %g) differs from configured %q: %w",
				i, c.GetName(), st.GetForgettingFactor(), st.GetInitialCovariance(), spec.Name, ErrInvalidSnapshot)
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
			Coefficients: slices.Clone(st.GetCoefficients()), Covariance: p,
			Updates: st.GetUpdates(), CovarianceResets: st.GetResets(),
			NoiseSum: bh.noise[i].sum, NoiseWeight: bh.noise[i].weight,
		})
		if err != nil {
			return nil, fmt.Errorf("candidate %q: %w: %w", spec.Name, ErrInvalidSnapshot, err)
		}
		m.cands = append(m.cands, r)
		if c.GetName() == s.GetPromoted() {
			m.promoted = i
		}
		if m.evals[i].cum, err = errAccFromProto(c.GetEvaluation().GetCumulative()); err != nil {
			return nil, fmt.Errorf("candidate %q: %w", spec.Name, err)
		}
	}
	if m.promoted < 0 {
		return nil, fmt.Errorf("promoted candidate %q unknown: %w", s.GetPromoted(), ErrInvalidSnapshot)
	}
	if len(s.GetBaselines()) != len(baselineNames) {
		return nil, fmt.Errorf("%d baselines, want %d: %w", len(s.GetBaselines()), len(baselineNames), ErrInvalidSnapshot)
	}
	for j, name := range baselineNames {
		ev, ok := s.GetBaselines()[name]
		if !ok {
			return nil, fmt.Errorf("baseline %q missing: %w", name, ErrInvalidSnapshot)
		}
		if m.evals[nc+j].cum, err = errAccFromProto(ev.GetCumulative()); err != nil {
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
	cov, keepIntervals, err := coverageFromProto(s.GetIntervalCoverage(), cfg.IntervalConfidence, cfg.RecentWindow)
	if err != nil {
		return nil, err
	}
	m.coverage = cov
	if m.pending, err = l.restorePending(s.GetPending(), m.hs, ne, keepIntervals, v1); err != nil {
		return nil, err
	}
	d := s.GetDrift()
	m.drift, err = regression.PageHinkleyFromState(regression.PageHinkleyState{
		// The decrease statistics are not in v1; with DetectIncrease they affect nothing.
		Config: cfg.Drift, N: d.GetN(), Mean: d.GetMean(), CumUp: d.GetCumulative(), MinUp: d.GetMinimum(), Drifts: d.GetDetections(),
	})
	if err != nil {
		return nil, fmt.Errorf("drift: %w: %w", ErrInvalidSnapshot, err)
	}
	m.drifting = d.GetDrifting()
	if w := d.GetLastDetectedWindow(); w != nil {
		m.detected, m.driftAt = true, w.GetSeconds()
	}
	return m, nil
}

// restorePending decodes the pending inputs; keepIntervals false drops their intervals (made at another
// confidence than the configured one). v1 reads the forecasts from schema 1's baseline_forecasts map.
func (l *Learner) restorePending(ps []*greenwavev1.PendingInput, hs int64, ne int, keepIntervals, v1 bool) ([]pending, error) {
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
		start := p.GetWindowStart().GetSeconds()
		if p.GetWindowStart() == nil || !l.applied || start <= prev || start > l.last || start+hs <= l.last || mod(start, l.windowS) != 0 {
			return nil, fmt.Errorf("pending input %d at %v out of order or outside (last − horizon, last]: %w", i, p.GetWindowStart(), ErrInvalidSnapshot)
		}
		prev = start
		if len(p.GetValues()) != len(l.featureNames) {
			return nil, fmt.Errorf("pending input %d has %d values for %d features: %w", i, len(p.GetValues()), len(l.featureNames), ErrInvalidSnapshot)
		}
		for _, v := range p.GetValues() {
			if !(math.Abs(v) <= MaxAbsFeature) {
				return nil, fmt.Errorf("pending input %d value %g: %w", i, v, ErrInvalidSnapshot)
			}
		}
		fc := make([]float64, ne)
		if v1 {
			for k := range fc {
				fc[k] = math.NaN()
			}
			for name, v := range p.GetBaselineForecasts() {
				k, ok := index[name]
				if !ok || math.IsNaN(sane(v)) {
					return nil, fmt.Errorf("pending input %d forecast %q = %g: %w", i, name, v, ErrInvalidSnapshot)
				}
				fc[k] = v
			}
		} else {
			if len(p.GetForecasts()) != ne || len(p.GetBaselineForecasts()) > 0 {
				return nil, fmt.Errorf("pending input %d has %d forecasts (and %d by name) for %d forecasters: %w",
					i, len(p.GetForecasts()), len(p.GetBaselineForecasts()), ne, ErrInvalidSnapshot)
			}
			for k, v := range p.GetForecasts() {
				if !math.IsNaN(v) && math.IsNaN(sane(v)) {
					return nil, fmt.Errorf("pending input %d forecast of %q = %g: %w", i, forecasterName(l.cfg, k), v, ErrInvalidSnapshot)
				}
				fc[k] = v
			}
		}
		pe := pending{start: start, x: slices.Clone(p.GetValues()), forecasts: fc, lo: math.NaN(), hi: math.NaN()}
		if p.IntervalLower != nil || p.IntervalUpper != nil {
			lo, hi := sane(p.GetIntervalLower()), sane(p.GetIntervalUpper())
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
