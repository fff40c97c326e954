package predictor

import (
	"errors"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/congestion"
	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// maxContributions bounds the explanation carried per forecast: the largest terms by magnitude.
const maxContributions = 5

// Predictor computes an intersection's predictions from a frame. Its output is a function of the frame and the
// models held for it, nothing else (no clock): a replayed frame gives the same prediction, with the same event
// id, as long as the models have not learned since — see the package documentation. It is safe for concurrent
// use.
type Predictor struct {
	models *models.Store
	// horizons chooses each frame's horizons from its window, as the trainer does (nil: testHorizons' fixed set).
	horizons   *horizonRule
	targets    []target
	maxAge     time.Duration
	confidence float64
	classify   congestion.Classifier
	// compiled holds the snapshots of models compiled for prediction (decoding one per prediction cost more
	// than all the rest of a prediction).
	compiled compiledModels
	// mismatches reports the models not used because their feature set differs from the frame's; nil reports
	// nothing (tests).
	mismatches *mismatchReporter
}

// Predict returns the prediction record for a frame: every approach × target × horizon, with intervals,
// staleness, interval coverage, contributions and congestion. Approaches without a usable model get a
// persistence forecast marked fallback; an approach whose detectors delivered nothing and that no fresh model
// forecasts is marked no_data (a failed detector, see noData). The intersection level is the worst approach level at the shortest
// horizon.
func (pr *Predictor) Predict(f features.Frame) *greenwavev1.IntersectionPrediction {
	out := &greenwavev1.IntersectionPrediction{
		SchemaVersion: wire.SchemaVersion, EventId: wire.FeaturesEventID(f.IntersectionID, f.WindowStart),
		IntersectionId: f.IntersectionID, WindowStart: timestamppb.New(f.WindowStart), WindowEnd: timestamppb.New(f.WindowEnd),
		Weather: wire.WeatherContextProto(f.Weather),
	}
	horizons, _ := pr.horizons.of(f) // a frame whose window fits no horizon gets no forecast (Handle dead-letters it)
	if len(horizons) == 0 {
		return out
	}
	shortest := horizons[0]
	for _, h := range horizons[1:] {
		shortest = min(shortest, h)
	}
	var worst *greenwavev1.Prediction
	for _, v := range f.Approaches {
		ap := &greenwavev1.ApproachPrediction{ApproachId: v.ApproachID, CapacityVph: v.CapacityVPH, Observed: wire.ObservedProto(v.Observed)}
		modelled := false // a fresh trained model forecast the approach's flow
		for _, tg := range pr.targets {
			for _, h := range horizons {
				p, ok := pr.predictOne(f, v, tg, h)
				if !ok {
					continue
				}
				if h == shortest && p.GetLevel() != greenwavev1.CongestionLevel_CONGESTION_LEVEL_UNSPECIFIED &&
					(worst == nil || p.GetLevel() > worst.GetLevel() ||
						p.GetLevel() == worst.GetLevel() && p.GetLevelOfService() > worst.GetLevelOfService()) { // "F" > "E"; "" (occupancy) least
					worst = p
				}
				if tg.proto == greenwavev1.Target_TARGET_FLOW && !p.GetFallback() && !p.GetStale() {
					modelled = true
				}
				ap.Horizons = append(ap.Horizons, p)
			}
		}
		ap.NoData = noData(v, modelled)
		out.Approaches = append(out.Approaches, ap)
	}
	if worst != nil {
		out.Level, out.LevelOfService = worst.GetLevel(), worst.GetLevelOfService()
	}
	return out
}

// noData reports whether an approach's detectors have failed as far as this frame can tell: nothing measured
// or fillable in the window (a gap: the cleaner fills a silent detector from its last value and then its profile
// for ProfileFillMaxGap, 3 h by default, before giving up) and no fresh trained model of its flow — never one,
// because the detectors never reported, or only stale ones, because they have been silent for longer than the
// maximum model age (the trainer learns only from measured windows). An approach with a fresh model, or with any
// measured or filled data, is not flagged: its forecasts go through signal-control's confidence gate as before.
func noData(v features.Vector, modelled bool) bool {
	return v.Gap && !modelled
}

// predictOne forecasts one target at one horizon. ok is false when there is neither a usable model nor an
// observation to persist (speed or occupancy not measured on the approach): no value is invented. A model whose
// feature set differs from the frame's (the cleaner was upgraded and the trainer has not published the upgraded
// model yet, or a cleaner not yet upgraded feeds an upgraded model) is never applied to the frame: the forecast
// falls back to persistence, and the mismatch is counted and logged.
func (pr *Predictor) predictOne(f features.Frame, v features.Vector, tg target, h time.Duration) (*greenwavev1.Prediction, bool) {
	id := train.ModelID(f.IntersectionID, v.ApproachID, h, tg.name)
	p := &greenwavev1.Prediction{
		HorizonS: uint32(h / time.Second), Target: tg.proto, TargetTime: timestamppb.New(f.WindowStart.Add(h)),
		Confidence: pr.confidence, ModelId: id,
	}
	snap, ok := pr.models.Get(id)
	var (
		fc  train.Forecast
		err error
		cm  *compiledModel
	)
	if ok {
		if cm = pr.compiled.get(id, snap, pr.confidence); cm.err != nil {
			err = cm.err
		} else if fc, err = cm.model.Predict(f, v, pr.confidence); errors.Is(err, train.ErrFeatureMismatch) {
			pr.mismatches.report(id, f.FeatureSetVersion, snap)
		}
	}
	if !ok || err != nil {
		if !persistence(p, tg, v, pr.classify.FreeFlowSpeedKMH) {
			return nil, false
		}
	} else {
		p.Value, p.Lower, p.Upper, p.StdError = fc.Value, fc.Lower, fc.Upper, fc.StdErr
		p.ModelVersion = snap.Version
		updated := snap.UpdatedAt.Time()
		p.ModelAge = durationpb.New(f.WindowEnd.Sub(updated))
		p.Stale = pr.isStale(f, updated)
		p.Drifting = snap.Drift != nil && snap.Drift.Drifting
		p.IntervalCoverage = cm.coverage
		for _, c := range fc.Contributions {
			if len(p.Contributions) == maxContributions {
				break
			}
			p.Contributions = append(p.Contributions, &greenwavev1.FeatureContribution{Feature: c.Feature, Contribution: c.Value})
		}
	}
	level, los, dos := pr.classify.Classify(tg.name, p.Value, v.CapacityVPH)
	p.Level, p.LevelOfService = wire.LevelProto(level), los
	if !math.IsNaN(dos) {
		p.DegreeOfSaturation = dos
	}
	return p, true
}

// isStale reports whether a model that last learned at updated is stale for the frame: more than maxAge of
// event time before the frame's window end.
func (pr *Predictor) isStale(f features.Frame, updated time.Time) bool {
	return f.WindowEnd.Sub(updated) > pr.maxAge
}

// persistence fills p with the observed value as the forecast, flagged fallback, with an interval as wide as the
// target's plausible range (so no consumer mistakes it for a confident forecast). It reports false when the
// target was not observed.
func persistence(p *greenwavev1.Prediction, tg target, v features.Vector, freeFlowKMH float64) bool {
	o := v.Observed
	p.Fallback = true
	switch tg.proto {
	case greenwavev1.Target_TARGET_SPEED:
		if !o.HasSpeed {
			return false
		}
		p.Value, p.Lower, p.Upper, p.StdError = o.SpeedKMH, 0, math.Max(2*freeFlowKMH, o.SpeedKMH), freeFlowKMH
	case greenwavev1.Target_TARGET_OCCUPANCY:
		if !o.HasOccupancy {
			return false
		}
		p.Value, p.Lower, p.Upper, p.StdError = o.Occupancy, 0, 1, 0.5
	default:
		if o.NoFlow {
			return false
		}
		p.Value, p.Lower, p.Upper, p.StdError = o.FlowVPH, 0, math.Max(v.CapacityVPH, o.FlowVPH), v.CapacityVPH/2
	}
	return true
}

// coverage returns the model's recent interval coverage (the last recent-window labels, one day by default),
// falling back to the cumulative one, or 0 when no label was scored yet or the trainer counted intervals at
// another confidence than the one served (the figure would describe other intervals).
func coverage(s *train.Snapshot, confidence float64) float64 {
	c, ok := train.CoverageOf(s)
	if !ok || c.Confidence != confidence {
		return 0
	}
	if c.RecentN > 0 {
		return c.Recent()
	}
	if c.N > 0 {
		return c.Cumulative()
	}
	return 0
}

// mismatchReporter counts the forecasts that fell back because the model's feature set differs from the frame's,
// and logs each model once per pair of feature sets: a cleaner upgrade mismatches every model until the trainer
// publishes its successor, and a line per forecast would flood the log. It is safe for concurrent use; a nil
// reporter reports nothing.
type mismatchReporter struct {
	log   *zap.Logger
	count prometheus.Counter
	// logged holds the mismatchKeys already logged. It grows by one entry per model and pair of feature sets
	// seen, which an upgrade bounds by the number of models.
	logged sync.Map
}

// mismatchKey is a model and the feature sets that did not match: the frame's and the model's.
type mismatchKey struct {
	model              string
	frameFSV, modelFSV int
}

func (r *mismatchReporter) report(id string, frameFSV int, snap *train.Snapshot) {
	if r == nil {
		return
	}
	r.count.Inc()
	k := mismatchKey{model: id, frameFSV: frameFSV, modelFSV: int(snap.FeatureSetVersion)}
	if _, seen := r.logged.LoadOrStore(k, struct{}{}); seen {
		return
	}
	r.log.Warn("model not used: its feature set differs from the frame's; persistence fallback until a model of the frame's feature set arrives",
		zap.String("model", id), zap.Int("frame_feature_set", frameFSV), zap.Uint32("model_feature_set", snap.FeatureSetVersion),
		zap.Uint64("model_version", snap.Version))
}
