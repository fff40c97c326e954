package ingest

import "time"

// Kind says which list of a batch a reading belongs to.
type Kind int

// The kinds of reading.
const (
	KindUnspecified Kind = iota
	KindTraffic
	KindWeather
)

// Kinds returns every kind but KindUnspecified.
func Kinds() []Kind { return []Kind{KindTraffic, KindWeather} }

// Reason is why the collector refuses a reading. pkg/wire maps each to one proto RejectReason.
type Reason string

// The reasons.
const (
	// ReasonMalformed: a value that cannot be read (bad JSON, a control character in an id, an empty reading).
	ReasonMalformed Reason = "malformed"
	// ReasonMissingField: a required field is absent.
	ReasonMissingField Reason = "missing_field"
	// ReasonOutOfRange: a value outside its physical range.
	ReasonOutOfRange Reason = "out_of_range"
	// ReasonUnknownDetector: the detector is not in the topology.
	ReasonUnknownDetector Reason = "unknown_detector"
	// ReasonFutureTimestamp: an observation ahead of the collector's clock by more than the allowed skew.
	ReasonFutureTimestamp Reason = "future_timestamp"
	// ReasonTooOld: an observation older than the accepted horizon.
	ReasonTooOld Reason = "too_old"
	// ReasonPermissionDenied: the gateway may not publish for the detector or station.
	ReasonPermissionDenied Reason = "permission_denied"
	// ReasonUnsupportedUnit: a unit the collector cannot convert.
	ReasonUnsupportedUnit Reason = "unsupported_unit"
	// ReasonUnsupportedSchema: a schema version newer than the collector understands.
	ReasonUnsupportedSchema Reason = "unsupported_schema"
	// ReasonInconsistent: fields contradict each other or the topology.
	ReasonInconsistent Reason = "inconsistent"
)

// Reasons returns every reason.
func Reasons() []Reason {
	return []Reason{ReasonMalformed, ReasonMissingField, ReasonOutOfRange, ReasonUnknownDetector, ReasonFutureTimestamp,
		ReasonTooOld, ReasonPermissionDenied, ReasonUnsupportedUnit, ReasonUnsupportedSchema, ReasonInconsistent}
}

// Instant is a time as a gateway sent it: absent, present, or present but not a valid instant.
type Instant struct {
	// Time is the instant in UTC, valid when Set.
	Time time.Time
	Set  bool
	// Invalid says why the value sent is not a valid instant ("" when it is).
	Invalid string
}

// At is the Instant of a valid time.
func At(t time.Time) Instant { return Instant{Time: t.UTC(), Set: true} }

// TrafficReading is a detector reading as a gateway sent it (or the simulator made it), in canonical units.
// Traffic validates and completes it.
type TrafficReading struct {
	ReadingID, IntersectionID, ApproachID, DetectorID, LaneID string
	// ObservedAt is the start of the counting interval.
	ObservedAt Instant
	IntervalS  uint32
	// Count is vehicles in the interval; FlowVPH the flow it makes (Traffic computes it). Both are 0 when
	// NoCount is set.
	Count, FlowVPH float64
	// NoCount is set when the detector counts no vehicles (a speed- or occupancy-only sensor; proto
	// count_absent). The zero value is a counted reading. A reading needs at least one of count, occupancy and
	// speed.
	NoCount bool
	// OccupancyRatio (0..1) and SpeedKMH are valid when HasOccupancy and HasSpeed.
	OccupancyRatio, SpeedKMH float64
	HasOccupancy, HasSpeed   bool
}

// WeatherReading is a weather observation as a gateway sent it, in canonical units. Weather validates and
// completes it.
type WeatherReading struct {
	ReadingID, StationID string
	ObservedAt           Instant
	// The quantities are valid when their Has flag is set.
	TemperatureC, PrecipitationMMH, SnowMMH, CloudCoverRatio, VisibilityM   float64
	HasTemperature, HasPrecipitation, HasSnow, HasCloudCover, HasVisibility bool
	Condition                                                               string
}
