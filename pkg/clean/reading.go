package clean

import (
	"math"
	"strconv"
	"time"

	"github.com/greenwave-city/greenwave/pkg/features"
)

// Reading is one detector's count over one counting interval, after the collector's unit conversion.
type Reading struct {
	// ID is the stable event id of the reading ("" when the source has none).
	ID             string
	IntersectionID string
	// ApproachID may be empty: the topology knows the detector's approach.
	ApproachID string
	DetectorID string
	// Start is the start of the counting interval (event time).
	Start time.Time
	// IntervalS is the counting interval length in seconds.
	IntervalS int
	// Count is the vehicles counted in the interval; FlowVPH = Count·3600/IntervalS. Either may be 0 when
	// the other is given. Both mean nothing (and are 0) when NoCount is set.
	Count, FlowVPH float64
	// NoCount is set when the reading carries no count (a speed- or occupancy-only sensor, such as a freeway
	// speed station). It is the negation of "has count" so that the zero value, which every count source
	// builds, stays a counted reading. A reading needs at least one of count, occupancy and speed.
	NoCount bool
	// Occupancy (ratio 0..1) and SpeedKMH are valid when HasOccupancy and HasSpeed.
	Occupancy, SpeedKMH    float64
	HasOccupancy, HasSpeed bool
}

// HasCount reports whether the reading carries a count (and so a flow).
func (r *Reading) HasCount() bool { return !r.NoCount }

// Reason is why a reading was set aside. The set is fixed (Reasons); pkg/wire maps each to one proto
// RejectReason, the weather_* reasons with the weather reading kind.
type Reason string

// The reasons. Weather reasons carry the "weather_" prefix.
const (
	// ReasonMissingField: a required field (detector id, start) is empty.
	ReasonMissingField Reason = "missing_field"
	// ReasonOutOfRange: a value outside its physical range.
	ReasonOutOfRange Reason = "out_of_range"
	// ReasonUnknownDetector: the detector is not in this intersection's topology.
	ReasonUnknownDetector Reason = "unknown_detector"
	// ReasonInconsistent: fields contradict each other or the topology (wrong intersection or approach, count
	// and flow disagree, interval longer than the window or straddling a window boundary).
	ReasonInconsistent Reason = "inconsistent"
	// ReasonDuplicateConflict: same reading id, or same detector and interval, seen with different values, or
	// an interval overlapping an accepted one of the same detector.
	ReasonDuplicateConflict Reason = "duplicate_conflict"
	// ReasonImplausible: a combination the fundamental diagram rules out.
	ReasonImplausible Reason = "implausible"
	// ReasonOverCapacity: flow above Config.MaxCapacityMultiple × the detector's capacity.
	ReasonOverCapacity Reason = "over_capacity"
	// ReasonStuckDetector: the same non-zero count for Config.StuckRun consecutive readings.
	ReasonStuckDetector Reason = "stuck_detector"
	// ReasonLate: the reading's window was already closed by the watermark.
	ReasonLate Reason = "late"
	// ReasonClockJump: the reading started far ahead of the intersection's event time and no majority of its
	// active detectors confirmed the new time (a wrong clock).
	ReasonClockJump Reason = "clock_jump"
	// ReasonOutlier is reserved for the proto mapping: the Hampel filter flags (and optionally replaces)
	// outliers, it never rejects them, so Intersection never produces this reason.
	ReasonOutlier Reason = "outlier"
	// ReasonWeatherMissingField: a weather observation without station or time.
	ReasonWeatherMissingField Reason = "weather_missing_field"
	// ReasonWeatherOutOfRange: a weather value outside its physical range.
	ReasonWeatherOutOfRange Reason = "weather_out_of_range"
	// ReasonWeatherDuplicateConflict: the same station and time seen with different values.
	ReasonWeatherDuplicateConflict Reason = "weather_duplicate_conflict"
)

// Reasons returns every reason, traffic reasons first.
func Reasons() []Reason {
	return []Reason{
		ReasonMissingField, ReasonOutOfRange, ReasonUnknownDetector, ReasonInconsistent, ReasonDuplicateConflict,
		ReasonImplausible, ReasonOverCapacity, ReasonStuckDetector, ReasonLate, ReasonClockJump, ReasonOutlier,
		ReasonWeatherMissingField, ReasonWeatherOutOfRange, ReasonWeatherDuplicateConflict,
	}
}

// IsWeather reports whether r is about a weather observation.
func (r Reason) IsWeather() bool { return len(r) > 8 && r[:8] == "weather_" }

// Rejection is a reading set aside, with the reason and a human-readable detail. Reading.Start is in UTC.
type Rejection struct {
	Reading Reading
	Reason  Reason
	Detail  string
}

// WeatherLookup finds the latest weather observation of a station strictly before an instant. *WeatherTable
// implements it; the intersection calls it with each closing window's end (and ignores an answer stamped at or
// after the end, or older than Config.WeatherMaxAge).
type WeatherLookup interface {
	Lookup(station string, at time.Time) (Weather, bool)
}

// Result is the effect of one call on an Intersection.
type Result struct {
	// Rejected are readings set aside, including deferred "stuck_detector" rejections of closing windows.
	Rejected []Rejection
	// Dropped counts identical replays, dropped silently.
	Dropped int
	// Frames are the windows closed by this call, in window order.
	Frames []features.Frame
	// SkippedWindows counts windows closed without a frame because they lie more than Config.MaxSilence after
	// the last window with any data.
	SkippedWindows int
	// Health holds, for each frame in Frames (same order), every detector's health as of that window's close.
	// It is a function of the input sequence alone, like the frames, so a restored Intersection reports the
	// same health as one that never stopped.
	Health []WindowHealth
}

// WindowHealth is the health of every detector of the intersection right after one window closed.
type WindowHealth struct {
	// WindowStart and WindowEnd bound the window whose close produced the record (UTC).
	WindowStart, WindowEnd time.Time
	// Detectors are in topology order, as Intersection.DetectorHealth returns them.
	Detectors []DetectorHealth
}

// Physical bounds of a reading.
const (
	MaxFlowVPHPerLane = 3000.0
	MaxSpeedKMH       = 200.0
	MaxIntervalS      = 3600
)

var (
	minStart = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	maxStart = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
)

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func ftoa(x float64) string { return strconv.FormatFloat(x, 'g', 6, 64) }
