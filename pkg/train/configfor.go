package train

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DefaultHorizons are the forecast horizons chosen when the operator gives none (TRAINER_HORIZONS,
// PREDICTOR_HORIZONS or greenwave eval --horizons left to "auto"): those of them that are whole multiples of the
// intersection's window (see AutoHorizons).
var DefaultHorizons = []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour}

// BaseConfig returns DefaultConfig without a window and without horizons: the configuration the trainer, the
// predictor and greenwave eval start from before ConfigFor fits it to an intersection's window. An operator's
// horizons replace the empty Horizons (which means "auto").
func BaseConfig() Config {
	c := DefaultConfig()
	c.WindowS, c.Horizons = 0, nil
	return c
}

// AutoHorizons returns the horizons chosen for windows of windowS seconds when none are configured: those of
// DefaultHorizons that are whole multiples of the window — 15, 30 and 60 minutes for windows of 1 to 15 minutes,
// 1 hour alone for 20-minute to hourly windows — else one window (windows longer than an hour). Never empty for a
// positive window.
func AutoHorizons(windowS int) []time.Duration {
	if windowS <= 0 {
		return nil
	}
	w := time.Duration(windowS) * time.Second
	var out []time.Duration
	for _, h := range DefaultHorizons {
		if h%w == 0 {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		out = []time.Duration{w}
	}
	return out
}

// ConfigFor returns base fitted to windows of windowS seconds: the one rule by which the trainer (for each
// intersection, from its frames' window), the predictor and greenwave eval (from the topology's window) configure
// a learner, so that a live model equals the offline one. It sets WindowS; keeps base.Horizons when given (they
// must be whole multiples of the window) or else chooses AutoHorizons(windowS); and raises MaxPending to the
// longest horizon in windows when base's is smaller (a pending input must be able to wait for its label). The
// error wraps ErrInvalidConfig and says which horizons do not fit; the caller names its setting.
func ConfigFor(base Config, windowS int) (Config, error) {
	c := base
	c.WindowS = windowS
	if len(base.Horizons) == 0 {
		c.Horizons = AutoHorizons(windowS)
	} else {
		c.Horizons = slices.Clone(base.Horizons)
	}
	if windowS > 0 {
		for _, h := range c.Horizons {
			if steps := h / (time.Duration(windowS) * time.Second); h > 0 && int64(steps) > int64(c.MaxPending) && steps <= maxPendingLimit {
				c.MaxPending = int(steps)
			}
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("configure learners for %d s windows (horizons %s): %w", windowS, FormatHorizons(c.Horizons), err)
	}
	return c, nil
}

// ValidateBase reports the problems of a base configuration (see BaseConfig) that no window can fix: every
// setting but WindowS, and of the horizons what does not depend on the window (positive, whole seconds, at most
// 7 days, distinct). Services check it at start-up; ConfigFor checks the rest per window.
func (c Config) ValidateBase() error {
	var errs []error
	seen := map[time.Duration]bool{}
	for _, h := range c.Horizons {
		switch {
		case h <= 0 || h > week*time.Second:
			errs = append(errs, fmt.Errorf("horizon %v not in (0, 168h]: %w", h, ErrInvalidConfig))
		case h%time.Second != 0:
			errs = append(errs, fmt.Errorf("horizon %v is not a whole number of seconds: %w", h, ErrInvalidConfig))
		case seen[h]:
			errs = append(errs, fmt.Errorf("horizon %v repeated: %w", h, ErrInvalidConfig))
		}
		seen[h] = true
	}
	// The rest is what Validate checks of any window: probe with a one-hour window and horizon.
	probe := c
	probe.WindowS, probe.Horizons = hour, []time.Duration{time.Hour}
	if err := probe.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ParseHorizons parses an operator's horizons: durations such as 15m or 1h (whole seconds), or the single word
// "auto" — or nothing — for AutoHorizons (nil). setting names the variable or flag in errors.
func ParseHorizons(setting string, in []string) ([]time.Duration, error) {
	var out []time.Duration
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" || (strings.EqualFold(s, "auto") && len(in) == 1) {
			continue
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d%time.Second != 0 {
			return nil, fmt.Errorf("%s: %q is not a positive whole number of seconds such as 15m or 1h, nor \"auto\"", setting, s)
		}
		out = append(out, d)
	}
	return out, nil
}

// FormatHorizons prints horizons as an operator writes them ("15m,30m,1h"); "auto" for none.
func FormatHorizons(hs []time.Duration) string {
	if len(hs) == 0 {
		return "auto"
	}
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = formatDuration(h)
	}
	return strings.Join(parts, ",")
}

// formatDuration prints 15m rather than 15m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Config returns the learner's configuration (a copy).
func (l *Learner) Config() Config {
	c := l.cfg
	c.Horizons = slices.Clone(c.Horizons)
	c.Candidates = slices.Clone(c.Candidates)
	return c
}

// CheckWindow reports whether windowS is a window a learner can run on: it must divide one hour, or be a
// multiple of one hour that divides one week (the seasonal history's slots). The error wraps ErrInvalidConfig.
func CheckWindow(windowS int) error {
	switch {
	case windowS <= 0:
		return fmt.Errorf("window %d s not positive: %w", windowS, ErrInvalidConfig)
	case windowS <= hour && hour%windowS != 0:
		return fmt.Errorf("window %d s does not divide one hour: %w", windowS, ErrInvalidConfig)
	case windowS > hour && (windowS%hour != 0 || week%windowS != 0):
		return fmt.Errorf("window %d s is not a multiple of one hour dividing one week: %w", windowS, ErrInvalidConfig)
	}
	return nil
}

// OneLine joins the lines of a joined error with "; ", for dead-letter details and log fields.
func OneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
