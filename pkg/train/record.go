package train

import (
	"math"
	"slices"
	"time"
)

// The types below are the state of one model as the models topic and the trainer's changelog carry it: field for
// field the greenwave.v1.ModelSnapshot message (pkg/wire converts), so that a snapshot round-trips through the
// message without loss. Optional sub-messages are pointers (nil when absent); slices and maps may share memory
// with the snapshot they came from, so treat a Snapshot as read-only once made.

// Snapshot is one horizon's model: what Learner.Snapshots returns, RestoreLearner and Compile read.
type Snapshot struct {
	// SchemaVersion is SchemaVersion or SchemaVersion1.
	SchemaVersion              uint32
	ModelID                    string
	IntersectionID, ApproachID string
	HorizonS                   uint32
	// Target is TargetFlow, TargetOccupancy or TargetSpeed; "" when the record names none this build knows.
	Target            string
	FeatureSetVersion uint32
	// FeatureNames are the regression inputs: the frame's features without "bias", then the seasonal inputs.
	FeatureNames []string
	// Version counts the windows applied; LastAppliedWindow and UpdatedAt (its end) are nil before the first.
	Version           uint64
	LastAppliedWindow *Time
	UpdatedAt         *Time
	Candidates        []Candidate
	Promoted          string
	Promotions        uint64
	Baselines         map[string]*Evaluation
	Pending           []PendingInput
	Drift             *DriftState
	// BaselineState is schema 1's opaque exact state; empty at SchemaVersion.
	BaselineState    []byte
	IntervalCoverage *IntervalCoverage
	History          *SeasonalHistory
	Recent           []RecentErrors
	// Served marks the serving form (Served): no state a restore needs.
	Served bool
}

// Time is an instant as a snapshot records it, Unix seconds and nanoseconds (the learner writes whole seconds;
// a record with other nanoseconds is invalid, and kept as it is so that the check can say so).
type Time struct {
	Seconds int64
	Nanos   int32
}

// Time returns t as a time.Time, the Unix epoch for nil (as the message's AsTime does).
func (t *Time) Time() time.Time {
	if t == nil {
		return time.Unix(0, 0).UTC()
	}
	return time.Unix(t.Seconds, int64(t.Nanos)).UTC()
}

// unixTime returns the whole-second instant unix.
func unixTime(unix int64) *Time { return &Time{Seconds: unix} }

// Candidate is one RLS estimator of a model with its evaluation.
type Candidate struct {
	Name       string
	State      *RLSState
	Evaluation *Evaluation
}

// RLSState is a candidate's estimator. Schema 2 keeps P as CovarianceUpper (the upper triangle, row by row),
// schema 1 as Covariance (row-major, in full); see Covariance.
type RLSState struct {
	Coefficients      []float64
	Covariance        []float64
	ForgettingFactor  float64
	InitialCovariance float64
	Updates           uint64
	NoiseVariance     float64
	Resets            uint64
	CovarianceUpper   []float64
	NoiseSum          float64
	NoiseWeight       float64
}

// Evaluation is a forecaster's prequential errors: since the model started, and over the recent window.
type Evaluation struct {
	Cumulative, Recent *ErrorStats
}

// ErrorStats are error sums and the metrics derived from them (NaN when undefined).
type ErrorStats struct {
	N                                           uint64
	SumAbsError, SumSquaredError                float64
	NPct                                        uint64
	SumAbsPctError, SumActual, SumActualSquared float64
	MAE, RMSE, MAPE, R2                         float64
}

// PendingInput is an input waiting for its label. Forecasts (schema 2) holds every forecaster's forecast in
// evaluation order, NaN for none; schema 1 kept them in BaselineForecasts by name.
type PendingInput struct {
	WindowStart                  *Time
	Values                       []float64
	BaselineForecasts            map[string]float64
	IntervalLower, IntervalUpper *float64
	Forecasts                    []float64
}

// IntervalCoverage counts labels inside the promoted candidate's intervals at Confidence.
type IntervalCoverage struct {
	Confidence float64
	Hits, N    uint64
	// Recent holds the recent labels' hit flags, oldest first.
	Recent []bool
}

// DriftState is the Page-Hinkley detector of a model.
type DriftState struct {
	Mean, Cumulative, Minimum float64
	N, Detections             uint64
	LastDetectedWindow        *Time
	Drifting                  bool
}

// SeasonalHistory is the learner's week of targets and time-of-week profiles (schema 2).
type SeasonalHistory struct {
	WindowS      uint32
	Ring         []float64
	BucketS      uint32
	BucketSum    []float64
	BucketCount  []uint64
	ProfileMean  []float64
	ProfileCount []uint64
}

// RecentErrors is a forecaster's recent window; ActualAs > 0 refers to the labels of window ActualAs−1.
type RecentErrors struct {
	Size             uint32
	Actual, Forecast []float64
	ActualAs         uint32
}

// deref returns *p, or the zero value for nil (as the message's getters read an absent sub-message).
func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// equal reports whether h and o hold the same history (NaN equal to NaN, as proto.Equal compares); nil equals
// only nil.
func (h *SeasonalHistory) equal(o *SeasonalHistory) bool {
	if h == nil || o == nil {
		return h == o
	}
	eq := func(a, b []float64) bool {
		return slices.EqualFunc(a, b, func(x, y float64) bool { return x == y || (math.IsNaN(x) && math.IsNaN(y)) })
	}
	return h.WindowS == o.WindowS && h.BucketS == o.BucketS && eq(h.Ring, o.Ring) && eq(h.BucketSum, o.BucketSum) &&
		slices.Equal(h.BucketCount, o.BucketCount) && eq(h.ProfileMean, o.ProfileMean) && slices.Equal(h.ProfileCount, o.ProfileCount)
}

// id returns the model id, "" for nil (for error messages).
func (s *Snapshot) id() string {
	if s == nil {
		return ""
	}
	return s.ModelID
}

// Unix returns t's Unix seconds, 0 for nil.
func (t *Time) Unix() int64 {
	if t == nil {
		return 0
	}
	return t.Seconds
}
