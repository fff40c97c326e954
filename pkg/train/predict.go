package train

import (
	"fmt"

	"github.com/greenwave-city/greenwave/pkg/features"
)

// InterceptName is the Contribution.Feature of the intercept.
const InterceptName = "intercept"

// Forecast is a prediction of the target at the snapshot's horizon after the vector's window, in the target's
// natural unit (veh/h for flow, ratio for occupancy, km/h for speed). Value, Lower and Upper lie in the target's
// physical range — flow and speed at least 0, occupancy in [0, 1] —: the linear model's value and interval
// clamped to it (see docs/model.md, "Physical forecasts"), which is what the predictor serves and what the
// trainer's test-then-train metrics score.
type Forecast struct {
	Value float64
	// Lower and Upper bound the two-sided prediction interval at the requested confidence, truncated to the
	// physical range; StdErr is the linear model's predictive standard deviation (noise plus coefficient
	// uncertainty), not truncated.
	Lower, Upper, StdErr float64
	// Linear is the linear model's value before clamping; it differs from Value only when that left the
	// physical range.
	Linear float64
	// Contributions are the intercept and every coefficient × feature value, in natural units (they sum to
	// Linear up to rounding), sorted by |Value| descending (ties in coefficient order).
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
// snapshot's — after a cleaner upgrade, until the trainer publishes the upgraded model (Learner.Upgrade) —,
// ErrInvalidInput for a bad vector or confidence, ErrInvalidSnapshot for a corrupt snapshot and ErrNotReady when
// the promoted candidate has seen too few labels for a noise estimate (a snapshot that is corrupt as well as
// mismatched to the frame reports ErrInvalidSnapshot). Predict only reads its arguments and is safe for concurrent use. It is Compile followed by
// Model.Predict.
func Predict(snap *Snapshot, f features.Frame, v features.Vector, confidence float64) (Forecast, error) {
	// One code path for both: a snapshot predicts exactly as the Model compiled from it. A server predicting
	// many frames with one snapshot should Compile it once instead (this decodes the week of history each call).
	m, err := compile(snap)
	if err != nil {
		return Forecast{}, fmt.Errorf("predict %s: %w", snap.id(), err)
	}
	return m.Predict(f, v, confidence)
}

// withSeasonal appends the seasonal inputs of the snapshot's horizon to the frame's inputs x, as Model.Predict
// does (see Model.seasonal), without restoring the snapshot's candidates. Tests compare it with the inputs Apply
// stores, which is what guarantees that serving sees the inputs training saw.
func withSeasonal(snap *Snapshot, f features.Frame, v features.Vector, tgt target, x []float64, base []string, scale float64) ([]float64, error) {
	m, err := seasonalModel(snap, tgt, base)
	if err != nil {
		return nil, err
	}
	return m.seasonal(f, v, x, scale)
}
