// Package evaluate is the offline pipeline behind `greenwave eval` and `greenwave fit`: it runs the exact code of
// the cleaner (clean.Intersection, clean.WeatherTable) and of the trainer (train.Learner) over readings and weather
// read from a file, and scores what they produce. It also replays signal-control's decision (signal.Decide) on
// the learner's own forecasts to estimate the delay Greenwave's plans would have caused (Signals).
//
// The package is pure: no I/O, no clock, no randomness beyond the seeded split of Fit, no goroutines. Callers
// feed an Evaluator readings and weather in event-time order and call Finish.
//
// # What is run, per intersection of the topology
//
//  1. Each weather observation goes to one clean.WeatherTable (Config.Clean), exactly as every cleaner instance
//     reads the weather topic; a rejected observation is counted under its weather_* reason.
//  2. Each reading goes to its intersection's clean.Intersection.Add (Config.Clean), routed by the reading's
//     intersection id or, when empty, by the topology's detector index. At the end every intersection is
//     flushed (clean.Intersection.Flush), as a replay ends.
//  3. Every frame the cleaner emits is applied, approach by approach, to that approach's train.Learner
//     (train.ConfigFor(Config.Train, the intersection's window), the trainer service's rule) — what the trainer service does with a frame.
//
// # Scoring (Report.Horizons)
//
// Model: the learner's own test-then-train forecasts. train.Update.Horizons[i].Forecast, returned by the Apply
// of the frame at t, is the promoted candidate's forecast of t+h made before any label of t+h was seen. It is
// paired with the observed target of the frame at t+h, with the learner's pairing rule: only when that frame
// exists and its target was measured (not a gap, not imputed, present for the target). A forecast the learner
// could not make (NaN) is not scored.
//
// Baselines (OnlineBaselines), computed here from the observed targets the learner sees, the window at t
// recorded before the forecasts made at t: persistence (the target at t), seasonal naive (the target at t+h's
// local wall-clock time 7 days before, in Config.Clean.Location; none when that time did not exist),
// historical average (the mean of the targets so far in t+h's LOCAL time-of-week bucket, in
// Config.Clean.Location — the zone of the calendar features from which the model's profile reads its local time;
// the learner's own historical average buckets UTC hours) and seasonal profile (train.HorizonUpdate.Profile: the
// model's recent weekly profile alone, without the regression).
//
// Same pairs: a (series, target window) pair is scored only when its label is measured, it is past the warm-up
// and every forecaster — the model and each baseline — has a forecast for it; then it is scored for all of them,
// so every row of a horizon has the same N. HorizonReport.DroppedPairs counts the pairs left out of every row,
// HorizonReport.Missing splits them per forecaster lacking a forecast (MissingReason says why one can).
//
// Warm-up: only labels (target times) at least Config.Warmup after the start of their series count; a series
// is one (intersection, approach) and starts at the first window its intersection emitted.
//
// Metrics are in the target's natural unit (veh/h for flow): MAE, RMSE and MAPE in percent over non-zero
// actuals (regression.ErrorStats).
//
// # Hold-out OLS (Report.Holdout)
//
// A batch reference for the online learner: every (input at t, observed target at t+h₁) pair, h₁ the first
// horizon, with the model's own inputs (train.Learner.Inputs: the frame's features without "bias", then the
// seasonal inputs) and its fixed target scale (÷ capacity for flow, see package train), in time order (ties in
// topology order). The first TrainRows(n) rows train regression.OLS. Columns constant or linearly dependent on
// earlier columns over the training rows (absent sensors, presence flags that never change) are dropped first,
// because OLS rejects a rank-deficient design; Report.Holdout.Inputs names every column it was given (all of
// the model's inputs) and DroppedColumns those left out. OLS, the model and every online baseline are then
// scored on the test rows (the last 20 %) that count under the same-pairs rule; OLS forecasts every row, so
// the rows dropped are those an online forecaster could not forecast (HoldoutReport.DroppedPairs, Missing).
package evaluate
