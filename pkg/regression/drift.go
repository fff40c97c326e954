package regression

import (
	"errors"
	"fmt"
	"math"
)

// Direction selects which change of mean a [PageHinkley] detector reports.
type Direction int

const (
	// DetectIncrease reports an increase of the mean (the default; for a stream
	// of absolute or squared errors, the model getting worse).
	DetectIncrease Direction = iota
	// DetectDecrease reports a decrease of the mean.
	DetectDecrease
	// DetectBoth reports either.
	DetectBoth
)

// String returns the direction name.
func (d Direction) String() string {
	switch d {
	case DetectIncrease:
		return "increase"
	case DetectDecrease:
		return "decrease"
	case DetectBoth:
		return "both"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// PageHinkleyConfig configures a [PageHinkley] detector.
type PageHinkleyConfig struct {
	// Delta is the magnitude of change tolerated, in the units of the stream,
	// ≥ 0: the statistic drifts down by Delta per sample while the mean is
	// unchanged, so shifts smaller than Delta are never reported.
	Delta float64
	// Threshold (the λ of Page-Hinkley) is the alarm level, > 0, in units of
	// the stream times samples. A mean shift of s > Delta is reported after
	// about Threshold/(s − Delta) samples; larger values mean fewer false
	// alarms and later detection.
	Threshold float64
	// MinSamples is the number of samples since the last reset before an alarm
	// may be raised (0 is treated as 1).
	MinSamples uint64
	// Direction selects increases, decreases or both.
	Direction Direction
}

func (c PageHinkleyConfig) validate() error {
	var errs []error
	if !(c.Delta >= 0) || math.IsInf(c.Delta, 1) {
		errs = append(errs, fmt.Errorf("delta %g not finite and ≥ 0: %w", c.Delta, ErrInvalidConfig))
	}
	if !(c.Threshold > 0) || math.IsInf(c.Threshold, 1) {
		errs = append(errs, fmt.Errorf("threshold %g not finite and > 0: %w", c.Threshold, ErrInvalidConfig))
	}
	if c.Direction < DetectIncrease || c.Direction > DetectBoth {
		errs = append(errs, fmt.Errorf("direction %v unknown: %w", c.Direction, ErrInvalidConfig))
	}
	return errors.Join(errs...)
}

// PageHinkley is the Page-Hinkley sequential change detector for the mean of a
// stream, typically of absolute prediction errors.
//
// With x̄ₜ the running mean of the samples since the last reset,
//
//	mₜ = Σ (xᵢ − x̄ᵢ − Delta),  Mₜ = min(0, m₁ … mₜ),  alarm when mₜ − Mₜ > Threshold
//
// for increases, and symmetrically (+Delta, running maximum) for decreases.
// When Add reports drift the detector resets itself (counts, mean and sums) so
// that it can detect the next change, and increments Drifts.
type PageHinkley struct {
	s PageHinkleyState
}

// PageHinkleyState is the complete state of a [PageHinkley] as plain data.
type PageHinkleyState struct {
	Config PageHinkleyConfig
	N      uint64  // samples since the last reset
	Mean   float64 // running mean of those samples
	// CumUp and MinUp are m and M of the increase test; CumDown and MaxDown
	// their mirror for the decrease test.
	CumUp   float64
	MinUp   float64
	CumDown float64
	MaxDown float64
	Drifts  uint64 // alarms raised since creation
}

// NewPageHinkley returns a detector with the given configuration.
func NewPageHinkley(cfg PageHinkleyConfig) (*PageHinkley, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new page-hinkley: %w", err)
	}
	return &PageHinkley{s: PageHinkleyState{Config: cfg}}, nil
}

// Add feeds one sample and reports whether a change was detected. A
// non-finite x is rejected with ErrNonFinite and leaves the detector untouched.
func (p *PageHinkley) Add(x float64) (bool, error) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return false, fmt.Errorf("page-hinkley add: sample is %g: %w", x, ErrNonFinite)
	}
	s := &p.s
	s.N++
	s.Mean += (x - s.Mean) / float64(s.N)
	dev := x - s.Mean
	s.CumUp += dev - s.Config.Delta
	s.MinUp = math.Min(s.MinUp, s.CumUp)
	s.CumDown += dev + s.Config.Delta
	s.MaxDown = math.Max(s.MaxDown, s.CumDown)
	if s.N < max(s.Config.MinSamples, 1) {
		return false, nil
	}
	up := s.Config.Direction != DetectDecrease && s.CumUp-s.MinUp > s.Config.Threshold
	down := s.Config.Direction != DetectIncrease && s.MaxDown-s.CumDown > s.Config.Threshold
	if !up && !down {
		return false, nil
	}
	p.Reset()
	s.Drifts++
	return true, nil
}

// Statistic returns the current test statistic (the larger of the enabled
// directions); an alarm is raised when it exceeds Threshold.
func (p *PageHinkley) Statistic() float64 {
	s := p.s
	var st float64
	if s.Config.Direction != DetectDecrease {
		st = s.CumUp - s.MinUp
	}
	if s.Config.Direction != DetectIncrease {
		st = math.Max(st, s.MaxDown-s.CumDown)
	}
	return st
}

// Drifts returns the number of alarms raised since creation.
func (p *PageHinkley) Drifts() uint64 { return p.s.Drifts }

// N returns the number of samples since the last reset.
func (p *PageHinkley) N() uint64 { return p.s.N }

// Reset clears the statistics, keeping the configuration and the Drifts count.
func (p *PageHinkley) Reset() {
	p.s = PageHinkleyState{Config: p.s.Config, Drifts: p.s.Drifts}
}

// State returns the detector state.
func (p *PageHinkley) State() PageHinkleyState { return p.s }

// PageHinkleyFromState restores a detector; the round trip is bit-exact.
func PageHinkleyFromState(s PageHinkleyState) (*PageHinkley, error) {
	if err := s.Config.validate(); err != nil {
		return nil, fmt.Errorf("page-hinkley from state: %w: %w", ErrInvalidState, err)
	}
	for _, v := range []float64{s.Mean, s.CumUp, s.MinUp, s.CumDown, s.MaxDown} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("page-hinkley from state: statistic is %g: %w", v, ErrInvalidState)
		}
	}
	if s.MinUp > 0 || s.MinUp > s.CumUp || s.MaxDown < 0 || s.MaxDown < s.CumDown {
		return nil, fmt.Errorf("page-hinkley from state: inconsistent extrema: %w", ErrInvalidState)
	}
	return &PageHinkley{s: s}, nil
}
