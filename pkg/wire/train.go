package wire

import (
	"maps"
	"slices"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/train"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// targets maps the domain targets to the proto enum; TestTargetTable fails when either side gains a value.
var targets = map[string]greenwavev1.Target{
	"":                    greenwavev1.Target_TARGET_UNSPECIFIED,
	train.TargetFlow:      greenwavev1.Target_TARGET_FLOW,
	train.TargetOccupancy: greenwavev1.Target_TARGET_OCCUPANCY,
	train.TargetSpeed:     greenwavev1.Target_TARGET_SPEED,
}

// TargetProto returns the enum of a target name ("" and unknown names give TARGET_UNSPECIFIED).
func TargetProto(name string) greenwavev1.Target { return targets[name] }

// Target returns the name of a target enum: "" for TARGET_UNSPECIFIED, and ok false for a value this build does
// not know.
func Target(t greenwavev1.Target) (name string, ok bool) {
	for n, v := range targets {
		if v == t {
			return n, true
		}
	}
	return "", false
}

// SnapshotProto converts a model snapshot to the ModelSnapshot message (the payload of the models topic, the
// trainer's changelog and ModelService). The message shares slices and maps with s.
func SnapshotProto(s *train.Snapshot) *greenwavev1.ModelSnapshot {
	if s == nil {
		return nil
	}
	out := &greenwavev1.ModelSnapshot{
		SchemaVersion: s.SchemaVersion, ModelId: s.ModelID, IntersectionId: s.IntersectionID, ApproachId: s.ApproachID,
		HorizonS: s.HorizonS, Target: TargetProto(s.Target), FeatureSetVersion: s.FeatureSetVersion, FeatureNames: s.FeatureNames,
		Version: s.Version, LastAppliedWindow: timeProto(s.LastAppliedWindow), Promoted: s.Promoted, Promotions: s.Promotions,
		Drift: driftProto(s.Drift), UpdatedAt: timeProto(s.UpdatedAt), BaselineState: s.BaselineState,
		IntervalCoverage: coverageProto(s.IntervalCoverage), History: historyProto(s.History), Served: s.Served,
	}
	for _, c := range s.Candidates {
		out.Candidates = append(out.Candidates, &greenwavev1.Candidate{Name: c.Name, State: RLSStateProto(c.State), Evaluation: evaluationProto(c.Evaluation)})
	}
	if s.Baselines != nil {
		out.Baselines = make(map[string]*greenwavev1.Evaluation, len(s.Baselines))
		for name, e := range s.Baselines {
			out.Baselines[name] = evaluationProto(e)
		}
	}
	for _, p := range s.Pending {
		out.Pending = append(out.Pending, &greenwavev1.PendingInput{
			WindowStart: timeProto(p.WindowStart), Values: p.Values, BaselineForecasts: p.BaselineForecasts,
			IntervalLower: p.IntervalLower, IntervalUpper: p.IntervalUpper, Forecasts: p.Forecasts,
		})
	}
	for _, r := range s.Recent {
		out.Recent = append(out.Recent, &greenwavev1.RecentErrors{Size: r.Size, Actual: r.Actual, Forecast: r.Forecast, ActualAs: r.ActualAs})
	}
	return out
}

// Snapshot converts a ModelSnapshot message to the domain type, which shares slices and maps with p. A target
// this build does not know becomes "" (which Compile and RestoreLearner refuse); the message's unknown fields
// are dropped. A nil message gives nil.
func Snapshot(p *greenwavev1.ModelSnapshot) *train.Snapshot {
	if p == nil {
		return nil
	}
	tgt, _ := Target(p.GetTarget())
	out := &train.Snapshot{
		SchemaVersion: p.GetSchemaVersion(), ModelID: p.GetModelId(), IntersectionID: p.GetIntersectionId(), ApproachID: p.GetApproachId(),
		HorizonS: p.GetHorizonS(), Target: tgt, FeatureSetVersion: p.GetFeatureSetVersion(), FeatureNames: p.GetFeatureNames(),
		Version: p.GetVersion(), LastAppliedWindow: timeOf(p.GetLastAppliedWindow()), Promoted: p.GetPromoted(), Promotions: p.GetPromotions(),
		Drift: driftOf(p.GetDrift()), UpdatedAt: timeOf(p.GetUpdatedAt()), BaselineState: p.GetBaselineState(),
		IntervalCoverage: coverageOf(p.GetIntervalCoverage()), History: historyOf(p.GetHistory()), Served: p.GetServed(),
	}
	for _, c := range p.GetCandidates() {
		out.Candidates = append(out.Candidates, train.Candidate{Name: c.GetName(), State: RLSState(c.GetState()), Evaluation: evaluationOf(c.GetEvaluation())})
	}
	if p.Baselines != nil {
		out.Baselines = make(map[string]*train.Evaluation, len(p.Baselines))
		for name, e := range p.Baselines {
			out.Baselines[name] = evaluationOf(e)
		}
	}
	for _, pi := range p.GetPending() {
		out.Pending = append(out.Pending, train.PendingInput{
			WindowStart: timeOf(pi.GetWindowStart()), Values: pi.GetValues(), BaselineForecasts: pi.GetBaselineForecasts(),
			IntervalLower: pi.IntervalLower, IntervalUpper: pi.IntervalUpper, Forecasts: pi.GetForecasts(),
		})
	}
	for _, r := range p.GetRecent() {
		out.Recent = append(out.Recent, train.RecentErrors{Size: r.GetSize(), Actual: r.GetActual(), Forecast: r.GetForecast(), ActualAs: r.GetActualAs()})
	}
	return out
}

// Snapshots converts a list of messages (see Snapshot).
func Snapshots(ps []*greenwavev1.ModelSnapshot) []*train.Snapshot {
	out := make([]*train.Snapshot, len(ps))
	for i, p := range ps {
		out[i] = Snapshot(p)
	}
	return out
}

// RLSStateProto converts a candidate's estimator state (nil gives nil).
func RLSStateProto(st *train.RLSState) *greenwavev1.RLSState {
	if st == nil {
		return nil
	}
	return &greenwavev1.RLSState{
		Coefficients: st.Coefficients, Covariance: st.Covariance, ForgettingFactor: st.ForgettingFactor,
		InitialCovariance: st.InitialCovariance, Updates: st.Updates, NoiseVariance: st.NoiseVariance, Resets: st.Resets,
		CovarianceUpper: st.CovarianceUpper, NoiseSum: st.NoiseSum, NoiseWeight: st.NoiseWeight,
	}
}

// RLSState converts an RLSState message (nil gives nil), e.g. for train.Covariance of a model ModelService listed.
func RLSState(p *greenwavev1.RLSState) *train.RLSState {
	if p == nil {
		return nil
	}
	return &train.RLSState{
		Coefficients: p.GetCoefficients(), Covariance: p.GetCovariance(), ForgettingFactor: p.GetForgettingFactor(),
		InitialCovariance: p.GetInitialCovariance(), Updates: p.GetUpdates(), NoiseVariance: p.GetNoiseVariance(), Resets: p.GetResets(),
		CovarianceUpper: p.GetCovarianceUpper(), NoiseSum: p.GetNoiseSum(), NoiseWeight: p.GetNoiseWeight(),
	}
}

func timeProto(t *train.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return &timestamppb.Timestamp{Seconds: t.Seconds, Nanos: t.Nanos}
}

func timeOf(t *timestamppb.Timestamp) *train.Time {
	if t == nil {
		return nil
	}
	return &train.Time{Seconds: t.GetSeconds(), Nanos: t.GetNanos()}
}

func evaluationProto(e *train.Evaluation) *greenwavev1.Evaluation {
	if e == nil {
		return nil
	}
	return &greenwavev1.Evaluation{Cumulative: errorStatsProto(e.Cumulative), Recent: errorStatsProto(e.Recent)}
}

func evaluationOf(e *greenwavev1.Evaluation) *train.Evaluation {
	if e == nil {
		return nil
	}
	return &train.Evaluation{Cumulative: errorStatsOf(e.GetCumulative()), Recent: errorStatsOf(e.GetRecent())}
}

func errorStatsProto(s *train.ErrorStats) *greenwavev1.ErrorStats {
	if s == nil {
		return nil
	}
	return &greenwavev1.ErrorStats{
		N: s.N, SumAbsError: s.SumAbsError, SumSquaredError: s.SumSquaredError, NPct: s.NPct, SumAbsPctError: s.SumAbsPctError,
		SumActual: s.SumActual, SumActualSquared: s.SumActualSquared, Mae: s.MAE, Rmse: s.RMSE, Mape: s.MAPE, R2: s.R2,
	}
}

func errorStatsOf(s *greenwavev1.ErrorStats) *train.ErrorStats {
	if s == nil {
		return nil
	}
	return &train.ErrorStats{
		N: s.GetN(), SumAbsError: s.GetSumAbsError(), SumSquaredError: s.GetSumSquaredError(), NPct: s.GetNPct(),
		SumAbsPctError: s.GetSumAbsPctError(), SumActual: s.GetSumActual(), SumActualSquared: s.GetSumActualSquared(),
		MAE: s.GetMae(), RMSE: s.GetRmse(), MAPE: s.GetMape(), R2: s.GetR2(),
	}
}

func driftProto(d *train.DriftState) *greenwavev1.DriftState {
	if d == nil {
		return nil
	}
	return &greenwavev1.DriftState{Mean: d.Mean, Cumulative: d.Cumulative, Minimum: d.Minimum, N: d.N, Detections: d.Detections,
		LastDetectedWindow: timeProto(d.LastDetectedWindow), Drifting: d.Drifting}
}

func driftOf(d *greenwavev1.DriftState) *train.DriftState {
	if d == nil {
		return nil
	}
	return &train.DriftState{Mean: d.GetMean(), Cumulative: d.GetCumulative(), Minimum: d.GetMinimum(), N: d.GetN(),
		Detections: d.GetDetections(), LastDetectedWindow: timeOf(d.GetLastDetectedWindow()), Drifting: d.GetDrifting()}
}

func coverageProto(c *train.IntervalCoverage) *greenwavev1.IntervalCoverage {
	if c == nil {
		return nil
	}
	return &greenwavev1.IntervalCoverage{Confidence: c.Confidence, Hits: c.Hits, N: c.N, Recent: c.Recent}
}

func coverageOf(c *greenwavev1.IntervalCoverage) *train.IntervalCoverage {
	if c == nil {
		return nil
	}
	return &train.IntervalCoverage{Confidence: c.GetConfidence(), Hits: c.GetHits(), N: c.GetN(), Recent: c.GetRecent()}
}

func historyProto(h *train.SeasonalHistory) *greenwavev1.SeasonalHistory {
	if h == nil {
		return nil
	}
	return &greenwavev1.SeasonalHistory{WindowS: h.WindowS, Ring: h.Ring, BucketS: h.BucketS, BucketSum: h.BucketSum,
		BucketCount: h.BucketCount, ProfileMean: h.ProfileMean, ProfileCount: h.ProfileCount}
}

func historyOf(h *greenwavev1.SeasonalHistory) *train.SeasonalHistory {
	if h == nil {
		return nil
	}
	return &train.SeasonalHistory{WindowS: h.GetWindowS(), Ring: h.GetRing(), BucketS: h.GetBucketS(), BucketSum: h.GetBucketSum(),
		BucketCount: h.GetBucketCount(), ProfileMean: h.GetProfileMean(), ProfileCount: h.GetProfileCount()}
}

// targetNames returns the domain targets in the table, sorted (for tests and messages).
func targetNames() []string { return slices.Sorted(maps.Keys(targets)) }
