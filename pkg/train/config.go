package train

import (
	"errors"
	"fmt"
	"time"

	"github.com/greenwave-city/greenwave/pkg/regression"
)

// Sentinel errors. Every error returned by this package wraps one of these (or a regression sentinel) with
// context; test for them with errors.Is.
var (
	// ErrInvalidConfig reports an invalid Config.
	ErrInvalidConfig = errors.New("invalid trainer configuration")
	// ErrKeyMismatch reports a frame or vector of another intersection or approach than the learner's.
	ErrKeyMismatch = errors.New("intersection or approach mismatch")
	// ErrFeatureMismatch reports a frame whose feature set version or feature names differ from the model's.
	// A newer feature set replaces the learner (Learner.Upgrade); an older or a different one is rejected.
	ErrFeatureMismatch = errors.New("feature set mismatch")
	// ErrInvalidInput reports a frame or vector that cannot be applied (misaligned window, non-finite or huge
	// features, invalid capacity). The learner is left untouched.
	ErrInvalidInput = errors.New("invalid input")
	// ErrInvalidSnapshot reports snapshots that cannot be restored, or that do not match the configuration.
	ErrInvalidSnapshot = errors.New("invalid snapshot")
	// ErrNotReady reports a model that cannot give a prediction interval yet (too few updates for a noise
	// estimate). It is regression.ErrNotReady.
	ErrNotReady = regression.ErrNotReady
)

// Targets a model can predict (Config.Target).
const (
	TargetFlow      = "flow"
	TargetOccupancy = "occupancy"
	TargetSpeed     = "speed"
)

// Targets returns every target a model can predict, in the order of the constants.
func Targets() []string { return []string{TargetFlow, TargetOccupancy, TargetSpeed} }

// Baseline forecaster names, as used in ModelSnapshot.baselines and PendingInput.baseline_forecasts.
const (
	BaselinePersistence       = "persistence"
	BaselineSeasonalNaive     = "seasonal_naive"
	BaselineHistoricalAverage = "historical_average"
)

var baselineNames = [...]string{BaselinePersistence, BaselineSeasonalNaive, BaselineHistoricalAverage}

const (
	week = 7 * 24 * 3600 // seconds
	hour = 3600

	maxPendingLimit = 100_000
	maxRecentLimit  = 100_000
	// MaxAbsFeature bounds the absolute value of every regression input. Features are O(1) by contract (see
	// package features); a larger value is rejected with ErrInvalidInput rather than allowed to wreck P.
	MaxAbsFeature = 1e6
	// maxAbsValue bounds targets and forecasts in natural units; anything larger is treated as absent.
	maxAbsValue = 1e12
)

// CandidateSpec is one RLS hyper-parameter setting run in shadow.
type CandidateSpec struct {
	// Name identifies the candidate in snapshots; unique, and not a baseline name.
	Name string
	// RLS configures the estimator. MaxTrace 0 selects regression's default Delta·(features+1).
	RLS regression.RLSConfig
}

// Config configures a Learner. The zero value is not valid; start from DefaultConfig.
type Config struct {
	// Horizons are the forecast horizons, each a positive multiple of WindowS and at most 7 days, distinct.
	// For hourly data use the step (1 h) and its multiples.
	Horizons []time.Duration
	// Candidates are the RLS settings run in shadow; the first is promoted initially.
	Candidates []CandidateSpec
	// MaxPending bounds the pending inputs kept per horizon; at least the longest horizon in windows.
	MaxPending int
	// RecentWindow is the number of most recent labels over which the recent metrics and promotion are
	// computed.
	RecentWindow int
	// PromoteMargin is the relative improvement of the recent MAE, in [0, 1), a candidate needs to replace the
	// promoted one (0.05: 5 % lower MAE).
	PromoteMargin float64
	// Drift configures the Page-Hinkley detector on the promoted candidate's scaled absolute error (for flow a
	// fraction of capacity). Only DetectIncrease is supported: the model getting worse.
	Drift regression.PageHinkleyConfig
	// Target is TargetFlow (default when empty), TargetOccupancy or TargetSpeed.
	Target string
	// WindowS is the feature window length in seconds. It must divide one hour, or be a multiple of one hour
	// that divides one week.
	WindowS int
	// IntervalConfidence is the nominal coverage, in (0, 1), of the promoted candidate's prediction interval
	// that is stored with every pending input and scored against its label (interval coverage). It should equal
	// the predictor's PREDICTOR_CONFIDENCE, so that the coverage published describes the intervals served.
	IntervalConfidence float64
}

// DefaultIntervalConfidence is DefaultConfig's IntervalConfidence, the predictor's default confidence.
const DefaultIntervalConfidence = 0.9

// DefaultConfig returns the configuration for 5-minute windows: horizons 15, 30 and 60 minutes; eight
// candidates, λ ∈ {0.99, 0.995, 0.999, 1} × Delta ∈ {10, 1000} (memories of about 100, 200, 1000 windows and
// unbounded; a moderate and a diffuse prior), the first being λ 0.995, Delta 1000; a recent window of one day
// (288 windows); a 5 % promotion margin; and a drift detector that tolerates a 2 %-of-capacity rise of the mean
// absolute error and alarms at a cumulative excess of 3 (for example a rise of 0.1 for 40 windows); and interval
// coverage tracked at 90 % confidence.
func DefaultConfig() Config {
	var cands []CandidateSpec
	add := func(lambda, delta float64) {
		cands = append(cands, CandidateSpec{
			Name: fmt.Sprintf("rls_lambda%g_delta%g", lambda, delta),
			RLS:  regression.RLSConfig{Lambda: lambda, Delta: delta},
		})
	}
	add(0.995, 1000)
	for _, l := range []float64{0.99, 0.995, 0.999, 1} {
		for _, d := range []float64{10, 1000} {
			if l == 0.995 && d == 1000 {
				continue
			}
			add(l, d)
		}
	}
	return Config{
		Horizons:           []time.Duration{15 * time.Minute, 30 * time.Minute, 60 * time.Minute},
		Candidates:         cands,
		MaxPending:         64,
		RecentWindow:       288,
		PromoteMargin:      0.05,
		Drift:              regression.PageHinkleyConfig{Delta: 0.02, Threshold: 3, MinSamples: 288},
		Target:             TargetFlow,
		WindowS:            300,
		IntervalConfidence: DefaultIntervalConfidence,
	}
}

// Validate reports every problem with c, joined.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf(format+": %w", append(a, ErrInvalidConfig)...))
	}
	ws := c.WindowS
	switch {
	case ws <= 0:
		bad("window %d s not positive", ws)
	case ws <= hour && hour%ws != 0:
		bad("window %d s does not divide one hour", ws)
	case ws > hour && (ws%hour != 0 || week%ws != 0):
		bad("window %d s is not a multiple of one hour dividing one week", ws)
	}
	if len(c.Horizons) == 0 {
		bad("no horizons")
	}
	seen := map[time.Duration]bool{}
	var maxSteps int64
	for _, h := range c.Horizons {
		switch {
		case h <= 0 || h > week*time.Second:
			bad("horizon %v not in (0, 168h]", h)
		case ws > 0 && h%(time.Duration(ws)*time.Second) != 0:
			bad("horizon %v not a multiple of the %d s window", h, ws)
		case seen[h]:
			bad("horizon %v repeated", h)
		default:
			if ws > 0 {
				maxSteps = max(maxSteps, int64(h/(time.Duration(ws)*time.Second)))
			}
		}
		seen[h] = true
	}
	if len(c.Candidates) == 0 {
		bad("no candidates")
	}
	names := map[string]bool{}
	for _, b := range baselineNames {
		names[b] = true
	}
	for i, cs := range c.Candidates {
		if cs.Name == "" {
			bad("candidate %d has no name", i)
		} else if names[cs.Name] {
			bad("candidate name %q repeated or a baseline name", cs.Name)
		}
		names[cs.Name] = true
		if _, err := regression.NewRLS(0, cs.RLS); err != nil {
			bad("candidate %q: %v", cs.Name, err)
		}
	}
	if c.MaxPending < 1 || c.MaxPending > maxPendingLimit || int64(c.MaxPending) < maxSteps {
		bad("max pending %d not in [%d, %d] (the longest horizon in windows)", c.MaxPending, max(maxSteps, 1), maxPendingLimit)
	}
	if c.RecentWindow < 1 || c.RecentWindow > maxRecentLimit {
		bad("recent window %d not in [1, %d]", c.RecentWindow, maxRecentLimit)
	}
	if !(c.PromoteMargin >= 0 && c.PromoteMargin < 1) {
		bad("promote margin %g not in [0, 1)", c.PromoteMargin)
	}
	if _, err := regression.NewPageHinkley(c.Drift); err != nil {
		bad("drift: %v", err)
	}
	if c.Drift.Direction != regression.DetectIncrease {
		bad("drift direction %v: only increase is supported", c.Drift.Direction)
	}
	if !(c.IntervalConfidence > 0 && c.IntervalConfidence < 1) {
		bad("interval confidence %g not in (0, 1)", c.IntervalConfidence)
	}
	if _, err := targetOf(c.Target); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// bucketS returns the time-of-week bucket width of the historical average, in seconds.
func (c Config) bucketS() int64 { return bucketSOf(int64(c.WindowS)) }
