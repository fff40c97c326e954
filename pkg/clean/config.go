package clean

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Config tunes the cleaner. The zero value is not usable: start from DefaultConfig. A Config is not part of the
// marshalled state: restore with the same Config (and topology) the state was produced with, or the continuation
// is not equal to an uninterrupted run.
type Config struct {
	// AllowedLateness is how far behind the highest event time seen a reading may be and still count: the
	// watermark is (highest reading start seen) − AllowedLateness. Default 5 min.
	AllowedLateness time.Duration
	// MaxCapacityMultiple rejects a reading whose flow exceeds this multiple of its detector's capacity
	// (approach CapacityVPH / number of detectors of the approach) as "over_capacity". Default 1.5.
	MaxCapacityMultiple float64

	// ImplausibleMinFlowVPH: a reading with at least this flow, zero occupancy and zero speed (both measured) is
	// "implausible" (vehicles counted, yet the loop was never occupied and nothing moved). Default 300.
	ImplausibleMinFlowVPH float64
	// JamOccupancy and JamMaxSpeedKMH: occupancy ≥ JamOccupancy together with speed ≥ JamMaxSpeedKMH is
	// "implausible" (a fully occupied loop cannot see free-flow speeds). Defaults 0.95 and 50 km/h.
	JamOccupancy, JamMaxSpeedKMH float64

	// HampelWindow is how many previous valid readings of a detector (in event-time order) the outlier filter
	// looks at, per quantity (flow, speed, occupancy); HampelK is its threshold in robust standard deviations
	// (1.4826·MAD). Defaults 12 and 3. The filter needs at least HampelWindow/2 (and at least 3) previous values
	// before it flags anything.
	HampelWindow int
	HampelK      float64
	// HampelMinMADVPH, HampelMinMADKMH and HampelMinMADOccupancy floor the MAD of flow (veh/h), speed (km/h) and
	// occupancy (ratio), so that a run of nearly identical values (night-time zeros, free-flow speeds reported
	// in whole units) does not flag every ordinary change. Defaults 30 veh/h, 5 km/h and 0.02 (2 percentage
	// points): with K = 3 a value must leave the expected one by more than 133 veh/h, 22 km/h or 8.9 points.
	HampelMinMADVPH       float64
	HampelMinMADKMH       float64
	HampelMinMADOccupancy float64
	// HampelMinMADFraction also floors the MAD at this fraction of the expected value, because traffic varies
	// from day to day in proportion to its level: twelve consecutive hourly residuals can agree within 1 % and
	// make an ordinary 5 % busier hour an "outlier". Default 0.08: with K = 3 a value must leave the expected
	// one by more than 36 %.
	HampelMinMADFraction float64
	// HampelSeasonal makes the filter compare residuals from the detector's own hour-of-week profile of each
	// quantity instead of the raw values, as soon as the profile covers the reading and at least
	// max(3, HampelWindow/2) values of its history; otherwise (and when off) it compares the raw values. A
	// rush-hour ramp is then expected rather than an outlier: on the hourly Metro I-94 volumes the raw filter
	// flags 14 % of the readings, the seasonal one 2.3 % (mostly public holidays). Default true.
	HampelSeasonal bool
	// HampelProfileAlpha is the forgetting weight of that profile: each hour-of-week bucket is a running mean of
	// the unflagged values near its centre until it holds 1/HampelProfileAlpha readings' weight, then an
	// exponential average with this weight per reading. Default 0.1.
	HampelProfileAlpha float64
	// ReplaceOutliers replaces a flagged value (flow, speed or occupancy) by the value the filter expected
	// (the rolling median, plus the profile in the seasonal mode) in the frame; otherwise it is only counted.
	// Default false.
	ReplaceOutliers bool

	// StuckRun rejects a detector's reading as "stuck_detector" when it is the StuckRun-th (or later) consecutive
	// valid reading of that detector, in event-time order, with the same non-zero count, or the same non-zero
	// speed, or the same non-zero occupancy (a reading without the quantity breaks the run). 0 disables the
	// check. Default 12.
	StuckRun int

	// InterpolateMaxGap: a detector missing for at most this long (counted in whole windows) is filled by
	// carrying its last observed flow forward. Default 15 min.
	InterpolateMaxGap time.Duration
	// ProfileFillMaxGap: a detector missing for longer, but at most this long, is filled from its learned
	// hour-of-week profile. Longer gaps are not filled. Default 3 h.
	ProfileFillMaxGap time.Duration
	// ProfileAlpha is the exponential update weight of the hour-of-week profile. Default 0.1.
	ProfileAlpha float64

	// ClockJumpTolerance is how far ahead of the intersection's event time (its highest accepted reading start)
	// a reading may start before it is held back as a possible clock jump; at least three windows are allowed
	// whatever the setting. A held reading is applied once a majority of the intersection's active detectors
	// confirm the new time, and rejected as "clock_jump" otherwise. Default 30 min.
	ClockJumpTolerance time.Duration

	// ReplayMemory is how long, in event time, a detector remembers the identities and values of the readings
	// of its closed windows: an identical resend of one (a gateway resending a whole batch after a lost
	// acknowledgement) is then dropped as a replay (Result.Dropped) instead of dead-lettered "late", and a resend
	// with other values is "duplicate_conflict". A reading whose window closed longer ago is "late" as before.
	// The memory is part of the state (at most maxClosedPerDetector readings a detector). 0 turns it off.
	// Default 1 h.
	ReplayMemory time.Duration
	// MaxSilence bounds how many empty frames follow the last window that had any data: windows more than
	// MaxSilence after it with no data at all are skipped (counted in Result.SkippedWindows) rather than
	// emitted as gaps, so a long outage or a clock jump cannot emit an unbounded burst. Default 24 h.
	MaxSilence time.Duration

	// WeatherMaxAge is the oldest weather observation (relative to a window's end) that is still joined.
	// Default 2 h.
	WeatherMaxAge time.Duration
	// WeatherRetention is how much weather history per station WeatherTable keeps, behind its newest
	// observation. Default 48 h.
	WeatherRetention time.Duration

	// Holidays are the public holidays (local civil dates) for the holiday feature.
	Holidays []Date
	// Location is the intersection's time zone for time-of-day, weekday, holiday and profile buckets.
	// nil means UTC. The caller loads it (time.LoadLocation) so the package stays free of I/O.
	Location *time.Location

	// HealthHalfLife is the half-life, in event time, of the detector health counters. Default 24 h.
	HealthHalfLife time.Duration
}

// Date is a civil (calendar) date without a time zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// String formats the date as YYYY-MM-DD.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day) }

// ParseDate parses a YYYY-MM-DD date.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("parse date %q: %w", s, err)
	}
	return DateOf(t), nil
}

// DateOf is the civil date of t in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{Year: y, Month: m, Day: d}
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		AllowedLateness:       5 * time.Minute,
		MaxCapacityMultiple:   1.5,
		ImplausibleMinFlowVPH: 300,
		JamOccupancy:          0.95,
		JamMaxSpeedKMH:        50,
		HampelWindow:          12,
		HampelK:               3,
		HampelMinMADVPH:       30,
		HampelMinMADKMH:       5,
		HampelMinMADOccupancy: 0.02,
		HampelMinMADFraction:  0.08,
		HampelSeasonal:        true,
		HampelProfileAlpha:    0.1,
		StuckRun:              12,
		InterpolateMaxGap:     15 * time.Minute,
		ProfileFillMaxGap:     3 * time.Hour,
		ProfileAlpha:          0.1,
		ClockJumpTolerance:    30 * time.Minute,
		ReplayMemory:          time.Hour,
		MaxSilence:            24 * time.Hour,
		WeatherMaxAge:         2 * time.Hour,
		WeatherRetention:      48 * time.Hour,
		HealthHalfLife:        24 * time.Hour,
	}
}

// ConfigError lists every problem of a Config.
type ConfigError struct {
	Problems []string
}

// Error implements error.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("invalid cleaner config (%d problems): %s", len(e.Problems), strings.Join(e.Problems, "; "))
}

// Validate reports every problem of c as a *ConfigError, or returns nil.
func (c Config) Validate() error {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	finitePos := func(x float64) bool { return x > 0 && !math.IsInf(x, 0) }
	if c.AllowedLateness < 0 {
		add("AllowedLateness %v is negative", c.AllowedLateness)
	}
	if !finitePos(c.MaxCapacityMultiple) {
		add("MaxCapacityMultiple %g must be positive", c.MaxCapacityMultiple)
	}
	if !finitePos(c.ImplausibleMinFlowVPH) {
		add("ImplausibleMinFlowVPH %g must be positive", c.ImplausibleMinFlowVPH)
	}
	if !(c.JamOccupancy > 0 && c.JamOccupancy <= 1) {
		add("JamOccupancy %g must lie in (0, 1]", c.JamOccupancy)
	}
	if !finitePos(c.JamMaxSpeedKMH) {
		add("JamMaxSpeedKMH %g must be positive", c.JamMaxSpeedKMH)
	}
	if c.HampelWindow < 3 || c.HampelWindow > 1000 {
		add("HampelWindow %d outside 3..1000", c.HampelWindow)
	}
	if !finitePos(c.HampelK) {
		add("HampelK %g must be positive", c.HampelK)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"HampelMinMADVPH", c.HampelMinMADVPH}, {"HampelMinMADKMH", c.HampelMinMADKMH}, {"HampelMinMADOccupancy", c.HampelMinMADOccupancy},
		{"HampelMinMADFraction", c.HampelMinMADFraction}} {
		if !(f.v >= 0) || math.IsInf(f.v, 0) {
			add("%s %g must be non-negative and finite", f.name, f.v)
		}
	}
	if !(c.HampelProfileAlpha > 0 && c.HampelProfileAlpha <= 1) {
		add("HampelProfileAlpha %g must lie in (0, 1]", c.HampelProfileAlpha)
	}
	if c.StuckRun < 0 || c.StuckRun == 1 {
		add("StuckRun %d must be 0 (off) or at least 2", c.StuckRun)
	}
	if c.InterpolateMaxGap < 0 {
		add("InterpolateMaxGap %v is negative", c.InterpolateMaxGap)
	}
	if c.ProfileFillMaxGap < c.InterpolateMaxGap {
		add("ProfileFillMaxGap %v is shorter than InterpolateMaxGap %v", c.ProfileFillMaxGap, c.InterpolateMaxGap)
	}
	if !(c.ProfileAlpha > 0 && c.ProfileAlpha <= 1) {
		add("ProfileAlpha %g must lie in (0, 1]", c.ProfileAlpha)
	}
	if c.ClockJumpTolerance <= 0 {
		add("ClockJumpTolerance %v must be positive", c.ClockJumpTolerance)
	}
	if c.ReplayMemory < 0 {
		add("ReplayMemory %v is negative", c.ReplayMemory)
	}
	if c.MaxSilence < 0 {
		add("MaxSilence %v is negative", c.MaxSilence)
	}
	if c.WeatherMaxAge <= 0 {
		add("WeatherMaxAge %v must be positive", c.WeatherMaxAge)
	}
	if c.WeatherRetention < c.WeatherMaxAge {
		add("WeatherRetention %v is shorter than WeatherMaxAge %v", c.WeatherRetention, c.WeatherMaxAge)
	}
	if c.HealthHalfLife <= 0 {
		add("HealthHalfLife %v must be positive", c.HealthHalfLife)
	}
	for i, d := range c.Holidays {
		t := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
		if DateOf(t) != d {
			add("Holidays[%d] %v is not a valid date", i, d)
		}
	}
	if len(p) > 0 {
		return &ConfigError{Problems: p}
	}
	return nil
}

func (c Config) location() *time.Location {
	if c.Location == nil {
		return time.UTC
	}
	return c.Location
}
