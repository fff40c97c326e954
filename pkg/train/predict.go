package train

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/regression"
)

// InterceptName is the Contribution.Feature of the intercept.
const InterceptName = "intercept"

// Forecast is a prediction of the target at the snapshot's horizon after the vector's window, in the target's
// natural unit (veh/h for flow, ratio for occupancy, km/h for speed). It is the linear model's value, not
// clamped to the target's physical range.
type Forecast struct {
	Value float64
	// Lower and Upper bound the two-sided prediction interval at the requested confidence; StdErr is the
	// predictive standard deviation (noise plus coefficient uncertainty).
	Lower, Upper, StdErr float64
	// Contributions are the intercept and every coefficient × feature value, in natural units (they sum to
	// Value up to rounding), sorted by |Value| descending (ties in coefficient order).
	Contributions []Contribution
}

// Contribution is one term of a Forecast.
type Contribution struct {
	Feature string
	Value   float64
}

// Predict applies the snapshot's promoted candidate to vector v of frame f: its coefficients for the value and
// its predictive variance σ²(1 + φᵀPφ) for a normal interval at the given confidence in (0, 1). The scaled
// prediction is converted back with the vector's fixed scale (× CapacityVPH for flow), interval and
// contributions included.
//
// It returns ErrFeatureMismatch when the frame's feature set version or names (without "bias") differ from the
// snapshot's — the trainer will start a new model for the new feature set —, ErrInvalidInput for a bad vector
// or confidence, ErrInvalidSnapshot for a corrupt snapshot and ErrNotReady when the promoted candidate has seen
// too few labels for a noise estimate. Predict only reads its arguments and is safe for concurrent use.
func Predict(snap *greenwavev1.ModelSnapshot, f features.Frame, v features.Vector, confidence float64) (Forecast, error) {
	fc, err := predict(snap, f, v, confidence)
	if err != nil {
		return Forecast{}, fmt.Errorf("predict %s: %w", snap.GetModelId(), err)
	}
	return fc, nil
}

func predict(snap *greenwavev1.ModelSnapshot, f features.Frame, v features.Vector, confidence float64) (Forecast, error) {
	if snap == nil {
		return Forecast{}, fmt.Errorf("nil snapshot: %w", ErrInvalidSnapshot)
	}
	if !(confidence > 0 && confidence < 1) {
		return Forecast{}, fmt.Errorf("confidence %g not in (0, 1): %w", confidence, ErrInvalidInput)
	}
	names := snap.GetFeatureNames()
	base, ok := baseNames(names)
	if !ok {
		return Forecast{}, fmt.Errorf("model inputs %v lack the seasonal inputs (older format): %w", names, ErrInvalidSnapshot)
	}
	if uint32(f.FeatureSetVersion) != snap.GetFeatureSetVersion() || f.FeatureSetVersion < 0 || !checkNames(f.Names, base) {
		return Forecast{}, fmt.Errorf("frame feature set %d, model %d: %w", f.FeatureSetVersion, snap.GetFeatureSetVersion(), ErrFeatureMismatch)
	}
	tgt, err := targetOfProto(snap.GetTarget())
	if err != nil {
		return Forecast{}, err
	}
	x, err := inputs(f.Names, v, len(names))
	if err != nil {
		return Forecast{}, err
	}
	scale, err := tgt.scale(v)
	if err != nil {
		return Forecast{}, err
	}
	if x, err = withSeasonal(snap, f, v, tgt, x, base, scale); err != nil {
		return Forecast{}, err
	}
	var st *greenwavev1.RLSState
	for _, c := range snap.GetCandidates() {
		if c.GetName() == snap.GetPromoted() {
			st = c.GetState()
			break
		}
	}
	if st == nil {
		return Forecast{}, fmt.Errorf("promoted candidate %q not in snapshot: %w", snap.GetPromoted(), ErrInvalidSnapshot)
	}
	n := len(names) + 1
	rs := regression.RLSState{
		Features: len(names), Lambda: st.GetForgettingFactor(), Delta: st.GetInitialCovariance(),
		MaxTrace:     math.Inf(1), // the wind-up guard plays no part in prediction
		Coefficients: st.GetCoefficients(), Covariance: st.GetCovariance(), Updates: st.GetUpdates(),
	}
	// The noise estimate exists after n+1 updates (see regression.RLS); noise_variance carries it.
	ready := st.GetUpdates() >= uint64(n+1)
	if ready {
		rs.NoiseSum, rs.NoiseWeight = st.GetNoiseVariance(), 1
	}
	r, err := regression.FromState(rs)
	if err != nil {
		return Forecast{}, fmt.Errorf("promoted candidate %q: %w: %w", snap.GetPromoted(), ErrInvalidSnapshot, err)
	}
	if !ready {
		return Forecast{}, fmt.Errorf("promoted candidate %q after %d updates, needs %d: %w", snap.GetPromoted(), st.GetUpdates(), n+1, ErrNotReady)
	}
	y, err := r.Predict(x)
	if err != nil {
		return Forecast{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	pv, err := r.PredictiveVariance(x)
	if err != nil {
		return Forecast{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	lo, hi, err := r.Interval(x, confidence)
	if err != nil {
		return Forecast{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	out := Forecast{Value: y * scale, Lower: lo * scale, Upper: hi * scale, StdErr: math.Sqrt(pv) * scale}
	if math.IsNaN(sane(out.Value)) || math.IsInf(out.Lower, 0) || math.IsInf(out.Upper, 0) {
		return Forecast{}, fmt.Errorf("forecast %g [%g, %g] not finite: %w", out.Value, out.Lower, out.Upper, ErrInvalidInput)
	}
	beta := st.GetCoefficients()
	out.Contributions = make([]Contribution, 0, n)
	out.Contributions = append(out.Contributions, Contribution{InterceptName, beta[0] * scale})
	for i, name := range names {
		out.Contributions = append(out.Contributions, Contribution{name, beta[i+1] * x[i] * scale})
	}
	slices.SortStableFunc(out.Contributions, func(a, b Contribution) int {
		return cmp.Compare(math.Abs(b.Value), math.Abs(a.Value))
	})
	return out, nil
}

// withSeasonal appends the seasonal inputs of the snapshot's horizon to the frame's inputs x, computed from the
// snapshot's history exactly as Apply computes them. When the snapshot has not applied the frame's window yet
// (the usual case: the predictor sees a frame before the trainer's snapshot of it), the window's target is first
// recorded into a copy of the history, as Apply would record it; the inputs are then bit-identical to those the
// trainer stores for the window, provided the snapshot's last window is the previous one (windows the snapshot
// lacks in between count as missing). A snapshot newer than the frame is used as it is.
func withSeasonal(snap *greenwavev1.ModelSnapshot, f features.Frame, v features.Vector, tgt target, x []float64, base []string, scale float64) ([]float64, error) {
	h, err := historyFromBlob(snap.GetBaselineState())
	if err != nil {
		return nil, err
	}
	start, _, err := window(f, h.windowS)
	if err != nil {
		return nil, err
	}
	hs := int64(snap.GetHorizonS())
	if hs <= 0 || hs > week || hs%h.windowS != 0 {
		return nil, fmt.Errorf("horizon %d s with %d s windows: %w", hs, h.windowS, ErrInvalidSnapshot)
	}
	tow := calendarOf(base).localTimeOfWeek(start, x)
	w := snap.GetLastAppliedWindow()
	last, applied := w.GetSeconds(), w != nil
	if !applied || last < start {
		y, observed := tgt.observed(v)
		h.record(start, last, applied, y, observed, tow)
		last = start
	}
	n := len(x)
	x = append(x, make([]float64, numSeasonal)...)
	h.seasonalInputs(x[n:], start, last, hs, tow, scale)
	return x, nil
}
