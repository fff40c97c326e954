// Package regression is the numerical core of the Greenwave trainer: online
// recursive least squares with exponential forgetting ([RLS]), batch least
// squares ([OLS], [Ridge]), prequential error metrics ([ErrorStats],
// [WindowStats]) and drift detection ([PageHinkley]).
//
// The package is pure: no I/O, no logging, no global state. Every stateful type
// exports its complete state as a plain struct of scalars and slices (State /
// FromState pairs) so that the trainer can snapshot it and a restored value
// continues bit-for-bit like one that never stopped.
//
// # Scaling assumption
//
// RLS and OLS are invariant to feature scaling in exact arithmetic but not in
// floating point. Callers are expected to scale features with a fixed,
// documented rule (for example flow divided by approach capacity) so that every
// feature is O(1); the default RLS prior (Delta) and the trace bound are chosen
// for O(1) features. The tests show agreement with batch OLS on both O(1)
// features and on raw features spanning six orders of magnitude.
//
// # Concurrency
//
// No type in this package is safe for concurrent mutation. Methods documented
// as read-only may run concurrently with each other, but not with a mutating
// method (Update, Add, Reset).
package regression
