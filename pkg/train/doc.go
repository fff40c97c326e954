// Package train is the functional core of the Greenwave trainer: one [Learner] per (intersection, approach)
// keeps, for every forecast horizon, a set of online RLS candidates run in shadow, the pending inputs that wait
// for their delayed labels, prequential metrics of the candidates and of three baselines, candidate promotion
// and Page-Hinkley drift detection. [Predict] is what the predictor calls on a snapshot.
//
// The package is pure and deterministic: no I/O, no logging, no clock, no randomness, no global state. A
// Learner changes only through [Learner.Apply], so restoring its snapshots ([Learner.Snapshots],
// [RestoreLearner]) and replaying the following frames gives snapshots that are proto.Equal, bit for bit, to an
// uninterrupted run.
//
// # Configuration: one rule for every window
//
// [ConfigFor] fits a base configuration ([BaseConfig] plus the operator's horizons) to an intersection's window:
// the trainer service applies it to each intersection's frames, the predictor uses its horizons, and greenwave
// eval applies it to the topology's window, so a live model equals the offline one. Without configured horizons it
// chooses [AutoHorizons]: those of [DefaultHorizons] (15, 30, 60 minutes) that are multiples of the window, else
// one window. [DefaultConfig] is that rule's result for 300-s windows.
//
// # Delayed labels (test-then-train)
//
// Frames arrive in event-time order, one per window of Config.WindowS seconds. Apply(frame at t):
//
//  1. Labels. Every pending input made at t−h for horizon h is labelled with the observed target of this
//     window, if the target was observed (not a gap, not imputed, finite). The forecasts stored in the pending
//     input when it was made — every candidate's and every baseline's — are scored against the label first;
//     then the promoted candidate's absolute error feeds the drift detector; only then is every candidate
//     updated with (x, y). A label that is missing or imputed expires the pending input without any update.
//  2. Expiry. Pending inputs whose label window lies before t (their label frame never came) are dropped, and
//     at most Config.MaxPending are kept (the oldest go first).
//  3. A new pending input for t: x (the frame's features without "bias", see below), each candidate's forecast
//     of t+h and the baselines' forecasts of t+h.
//  4. Promotion (see below).
//  5. Drift action (see below).
//
// A frame whose WindowStart is not after the last applied window is skipped (Update.Skipped), whatever its
// feature set: replays are harmless. The history used by the baselines is updated between steps 2 and 3.
//
// # Conditioning
//
// The features of package features are already O(1) (flows divided by the approach capacity, ratios, indicators,
// sines). The regression target is scaled by a fixed rule, never by running statistics, so that it is O(1) too
// and a coefficient keeps its meaning:
//
//	flow       y = flow_vph / CapacityVPH   (the vector's capacity, as for the flow features)
//	occupancy  y = occupancy ratio          (already 0..1)
//	speed      y = speed_kmh / 100          (features.SpeedScaleKMH, as for the speed feature)
//
// The label is scaled with the capacity of the label window's vector, and a forecast is converted back with the
// capacity of the vector it is made from. Forecasts, metrics and baselines are in the target's natural unit
// (veh/h for flow); the drift detector sees the scaled absolute error (a fraction of capacity for flow), so one
// drift configuration suits approaches of any size.
//
// The feature named "bias" (constant 1 in package features) duplicates the intercept of [regression.RLS] and is
// dropped from the regression input; ModelSnapshot.feature_names lists the remaining features in coefficient
// order. A frame whose feature_set_version or feature names (without "bias") differ from the model's is
// rejected with [ErrFeatureMismatch].
//
// # Feature-set upgrades
//
// When the cleaner's feature set changes, its frames carry a higher feature_set_version. [Learner.Upgrade]
// replaces the learner by a successor for the new names that continues the version numbering and the last
// applied window, and applies the frame: the model id stays, its first new snapshot supersedes the old ones
// (the newest version wins in the trainer's restore, in package models and in the predictor) and carries the new
// feature_set_version and feature_names. Everything learned belongs to the old features, so the successor starts
// like a new model: coefficients, pending inputs, prequential metrics, coverage, drift state and the baselines'
// history restart, and the model predicts (ErrNotReady) again once its promoted candidate has a noise estimate. A
// frame with an older version is never used to downgrade a model, and the same version with other names is
// rejected: both are [ErrFeatureMismatch]. The upgrade is a pure function of the learner and the frame, so
// restoring an old-feature-set snapshot and replaying the frames that follow upgrades exactly as before.
//
// # Baselines
//
//   - persistence: the target observed at t (no forecast when it was not observed);
//   - seasonal_naive: the target observed at t+h−7d, from a ring of the last week of windows (one slot per
//     window, cleared over gaps) — no forecast before a week of data;
//   - historical_average: the running mean of every observed target in the UTC time-of-week bucket of t+h.
//     Buckets are one hour wide (168 per week) when WindowS ≤ 1 h, else one window wide.
//
// A forecaster without a forecast for a pending input is not scored on its label, so a baseline's N can be
// smaller than the candidates'.
//
// # Seasonal inputs
//
// The frame's features describe the window at t, not the target time t+h. Every horizon's regression input is
// therefore the frame's features followed by seasonal inputs for t+h, computed from the history (the baselines'
// state), all divided by the target's fixed scale: ha_target (+ presence) and ha_ramp = HA(t+h) − HA(t) from the
// historical average; sn_target (+ presence) from the seasonal naive ring; profile_target (+ presence) and
// profile_ramp from a recent weekly profile per local time-of-week bucket (the local time of week is read from
// the dow_sin/dow_cos features, so it follows daylight saving; UTC without them), an exponentially weighted mean
// with a memory of 26 weeks. The model can then learn y(t+h) ≈ y(t) + ramp plus weather and calendar
// corrections. Absent values are 0 with their presence flag 0. Apply records the window first and then computes
// them; Predict computes them with the same code from the snapshot's history (recording the frame's window into a
// copy when the snapshot has not applied it), so there is no training/serving skew.
//
// # Promotion
//
// Every candidate's absolute errors over the last Config.RecentWindow labels are kept (the "recent" metrics).
// After an Apply that scored labels, the candidate with the lowest recent MAE (ties: the earlier one in
// Config.Candidates) replaces the promoted one when recentMAE(best) < (1 − PromoteMargin)·recentMAE(promoted), and
// both windows hold at least half of RecentWindow pairs. The margin is relative, so the same value suits every
// approach size; it gives hysteresis against flapping between near-equal candidates. The first candidate of
// Config.Candidates is promoted initially.
//
// # Drift action
//
// When Page-Hinkley (increase test only) fires on the promoted candidate's scaled absolute error, every
// candidate's covariance P is reset to Delta·I while its coefficients and noise estimate are kept: old
// observations lose their weight at once (a re-weighting, not a restart), so the models re-adapt at the speed of
// a fresh fit but start from the current coefficients instead of zero. RLSState.resets counts these resets
// together with covariance restarts after rounding failures. Update and DriftState report the detection.
//
// # Interval coverage
//
// Every pending input also stores the promoted candidate's prediction interval at Config.IntervalConfidence
// (natural units; none before the candidate has a noise estimate). When its label arrives, before any update,
// the label is counted as a hit when it lies inside that interval: cumulatively and over the last RecentWindow
// labels (ModelSnapshot.interval_coverage, read with [CoverageOf]). A well-calibrated model's coverage is close to
// the confidence; a lower one means the intervals are too narrow (drift, heavy tails). Restoring at another
// IntervalConfidence starts the counts over and drops the pending intervals rather than mixing confidences.
//
// # Snapshot format
//
// [Learner.Snapshots] writes ModelSnapshot schema version 2 ([SchemaVersion]): feature_names lists the frame's
// features then the seasonal inputs; every candidate's RLSState carries P as its upper triangle
// (covariance_upper: P is exactly symmetric, so this restores it bit for bit at half the bytes) and the
// noise-variance accumulators (noise_sum, noise_weight; noise_variance alone, their quotient, cannot be split back
// bit-exactly); history is the seasonal history (the baselines' week ring, time-of-week sums and weekly profile,
// identical in every horizon's snapshot of a learner); recent holds every forecaster's recent (label, forecast)
// window, the labels stored once for forecasters scored on the same ones (actual_as); a pending input's forecasts
// are a packed list in forecaster order (candidates, then baselines; NaN = none). The candidates' MaxTrace is not
// stored: it comes from the configuration, which [RestoreLearner] checks against the snapshot.
//
// [RestoreLearner] and [Compile] also read schema version 1 ([SchemaVersion1]), in which P was stored in full,
// the history, recent windows and noise accumulators were trainer-owned opaque baseline_state bytes (format 2,
// with the profile; see blob.go) and the pending forecasts a map keyed by forecaster name: a trainer upgraded
// from it restores its models exactly and writes them at version 2 from its next checkpoint. A snapshot without
// the seasonal inputs, or with baseline_state of format 1, is rejected (ErrInvalidSnapshot) and the trainer
// starts a fresh model.
//
// # Concurrency
//
// A Learner is not safe for concurrent use. Predict only reads its snapshot and may run concurrently.
package train
