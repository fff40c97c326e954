package train

import (
	"fmt"
	"time"

	"github.com/greenwave-city/greenwave/pkg/features"
)

// Forecast returns what Model(h) followed by Model.Predict(f, v, confidence) returns — the same Value, Lower,
// Upper, StdErr and Linear, bit for bit, the same error and the same drifting and ok — but without
// Contributions (nil). When f is the window the learner applied last, which is the offline evaluation's case
// (the predictor serving the snapshot taken right after the frame), it reads the learner's own promoted
// estimator and history instead of compiling a Model: no snapshot is built, copied or decoded, which made
// compiling about a quarter of `greenwave eval --signals`. For any other frame it compiles the Model.
//
// The two agree because a compiled Model is a copy of exactly what this reads: the promoted candidate's
// coefficients and upper covariance triangle (the only half prediction reads), its noise variance S/W (compiled
// as S/W over a weight of 1, which divides to the same bits), and the history, whose seasonal inputs for a
// window the snapshot has applied are computed by the same code from the same values.
func (l *Learner) Forecast(h time.Duration, f features.Frame, v features.Vector, confidence float64) (fc Forecast, drifting, ok bool, err error) {
	var m *horizonModel
	for _, hm := range l.models {
		if hm.h == h {
			m = hm
			break
		}
	}
	if m == nil {
		return Forecast{}, false, false, nil
	}
	if start, _, err := window(f, l.windowS); err != nil || !l.applied || start != l.last {
		cm, drifting, ok, err := l.Model(h)
		if !ok || err != nil {
			return Forecast{}, drifting, ok, err
		}
		fc, err := cm.Predict(f, v, confidence)
		fc.Contributions = nil
		return fc, drifting, true, err
	}
	fc, err = l.forecastLast(m, f, v, confidence)
	if err != nil {
		return Forecast{}, m.drifting, true, fmt.Errorf("predict %s: %w", ModelID(l.intersection, l.approach, m.h, l.tgt.name), err)
	}
	return fc, m.drifting, true, nil
}

// forecastLast is Model.predict, step for step, for the learner's last applied window f (callers check it).
func (l *Learner) forecastLast(m *horizonModel, f features.Frame, v features.Vector, confidence float64) (Forecast, error) {
	if !(confidence > 0 && confidence < 1) {
		return Forecast{}, fmt.Errorf("confidence %g not in (0, 1): %w", confidence, ErrInvalidInput)
	}
	fsv := uint32(l.fsv) // as a snapshot records it
	if uint32(f.FeatureSetVersion) != fsv || f.FeatureSetVersion < 0 || !checkNames(f.Names, l.featureNames[:l.nBase]) {
		return Forecast{}, fmt.Errorf("frame feature set %d, model %d: %w", f.FeatureSetVersion, fsv, ErrFeatureMismatch)
	}
	x, err := inputs(f.Names, v, len(l.featureNames))
	if err != nil {
		return Forecast{}, err
	}
	scale, err := l.tgt.scale(v)
	if err != nil {
		return Forecast{}, err
	}
	// Model.seasonal for a model that has applied the frame's window: nothing to record.
	start := l.last
	tow := l.cal.localTimeOfWeek(start, x)
	n := len(x)
	x = append(x, make([]float64, numSeasonal)...)
	l.hist.seasonalInputs(x[n:], start, l.last, m.hs, tow, scale)
	r := m.cands[m.promoted]
	// Compile's readiness: the noise estimate exists after as many updates as coefficients, plus one.
	if need := uint64(len(l.featureNames) + 2); r.Updates() < need {
		return Forecast{}, fmt.Errorf("promoted candidate %q after %d updates, needs %d: %w", l.cfg.Candidates[m.promoted].Name, r.Updates(), need, ErrNotReady)
	}
	return predictRLS(r, l.tgt, x, confidence, scale)
}
