package wire

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/ingest"
	"github.com/greenwave-city/greenwave/pkg/topology"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// ingestReasons maps every ingest.Reason to its RejectReason (one to one). TestReasonTables fails when a value
// is added on one side only.
var ingestReasons = map[ingest.Reason]greenwavev1.RejectReason{
	ingest.ReasonMalformed:         greenwavev1.RejectReason_REJECT_REASON_MALFORMED,
	ingest.ReasonMissingField:      greenwavev1.RejectReason_REJECT_REASON_MISSING_FIELD,
	ingest.ReasonOutOfRange:        greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE,
	ingest.ReasonUnknownDetector:   greenwavev1.RejectReason_REJECT_REASON_UNKNOWN_DETECTOR,
	ingest.ReasonFutureTimestamp:   greenwavev1.RejectReason_REJECT_REASON_FUTURE_TIMESTAMP,
	ingest.ReasonTooOld:            greenwavev1.RejectReason_REJECT_REASON_TOO_OLD,
	ingest.ReasonPermissionDenied:  greenwavev1.RejectReason_REJECT_REASON_PERMISSION_DENIED,
	ingest.ReasonUnsupportedUnit:   greenwavev1.RejectReason_REJECT_REASON_UNSUPPORTED_UNIT,
	ingest.ReasonUnsupportedSchema: greenwavev1.RejectReason_REJECT_REASON_UNSUPPORTED_SCHEMA,
	ingest.ReasonInconsistent:      greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT,
}

// IngestRejectReason maps a collector reason to the proto enum (UNSPECIFIED for a reason not in
// ingest.Reasons).
func IngestRejectReason(r ingest.Reason) greenwavev1.RejectReason {
	return ingestReasons[r]
}

// readingKinds maps every ingest.Kind to its ReadingKind; TestReadingKinds checks both sides.
var readingKinds = map[ingest.Kind]greenwavev1.ReadingKind{
	ingest.KindUnspecified: greenwavev1.ReadingKind_READING_KIND_UNSPECIFIED,
	ingest.KindTraffic:     greenwavev1.ReadingKind_READING_KIND_TRAFFIC,
	ingest.KindWeather:     greenwavev1.ReadingKind_READING_KIND_WEATHER,
}

// ReadingKind maps a reading kind to the proto enum.
func ReadingKind(k ingest.Kind) greenwavev1.ReadingKind {
	return readingKinds[k]
}

// IngestKind maps a proto reading kind to the domain one (KindUnspecified for an unknown value).
func IngestKind(k greenwavev1.ReadingKind) ingest.Kind {
	for d, p := range readingKinds {
		if p == k {
			return d
		}
	}
	return ingest.KindUnspecified
}

// instant reads a gateway's timestamp.
func instant(t *timestamppb.Timestamp) ingest.Instant {
	if t == nil {
		return ingest.Instant{}
	}
	in := ingest.Instant{Time: t.AsTime(), Set: true}
	if err := t.CheckValid(); err != nil {
		in.Invalid = err.Error()
	}
	return in
}

func instantProto(in ingest.Instant) *timestamppb.Timestamp {
	if !in.Set {
		return nil
	}
	return timestamppb.New(in.Time)
}

// IngestTraffic converts a reading a gateway sent to the domain type that ingest.Traffic validates.
func IngestTraffic(r *greenwavev1.TrafficReading) ingest.TrafficReading {
	return ingest.TrafficReading{
		ReadingID: r.GetReadingId(), IntersectionID: r.GetIntersectionId(), ApproachID: r.GetApproachId(), DetectorID: r.GetDetectorId(),
		LaneID: r.GetLaneId(), ObservedAt: instant(r.GetObservedAt()), IntervalS: r.GetIntervalS(), Count: r.GetCount(), FlowVPH: r.GetFlowVph(),
		NoCount: r.GetCountAbsent(), OccupancyRatio: r.GetOccupancyRatio(), HasOccupancy: r.OccupancyRatio != nil, SpeedKMH: r.GetSpeedKmh(), HasSpeed: r.SpeedKmh != nil,
	}
}

// IngestTrafficProto converts a domain reading (decoded from NGSI-LD or simulated) to the message gateways send,
// stamped with SchemaVersion.
func IngestTrafficProto(r ingest.TrafficReading) *greenwavev1.TrafficReading {
	return &greenwavev1.TrafficReading{
		SchemaVersion: SchemaVersion, ReadingId: r.ReadingID, IntersectionId: r.IntersectionID, ApproachId: r.ApproachID,
		DetectorId: r.DetectorID, LaneId: r.LaneID, ObservedAt: instantProto(r.ObservedAt), IntervalS: r.IntervalS, Count: r.Count,
		FlowVph: r.FlowVPH, CountAbsent: r.NoCount, OccupancyRatio: opt(r.HasOccupancy, r.OccupancyRatio), SpeedKmh: opt(r.HasSpeed, r.SpeedKMH),
	}
}

// IngestWeather converts an observation a gateway sent to the domain type that ingest.Weather validates.
func IngestWeather(w *greenwavev1.WeatherReading) ingest.WeatherReading {
	c := Weather(w)
	return ingest.WeatherReading{ReadingID: c.ID, StationID: c.StationID, ObservedAt: instant(w.GetObservedAt()),
		TemperatureC: c.TemperatureC, PrecipitationMMH: c.PrecipitationMMH, SnowMMH: c.SnowMMH, CloudCoverRatio: c.CloudCoverRatio,
		VisibilityM: c.VisibilityM, HasTemperature: c.HasTemperature, HasPrecipitation: c.HasPrecipitation, HasSnow: c.HasSnow,
		HasCloudCover: c.HasCloudCover, HasVisibility: c.HasVisibility, Condition: c.Condition}
}

// IngestWeatherProto converts a domain observation to the message gateways send, stamped with SchemaVersion.
func IngestWeatherProto(w ingest.WeatherReading) *greenwavev1.WeatherReading {
	m := WeatherProto(clean.Weather{ID: w.ReadingID, StationID: w.StationID,
		TemperatureC: w.TemperatureC, PrecipitationMMH: w.PrecipitationMMH, SnowMMH: w.SnowMMH, CloudCoverRatio: w.CloudCoverRatio,
		VisibilityM: w.VisibilityM, HasTemperature: w.HasTemperature, HasPrecipitation: w.HasPrecipitation, HasSnow: w.HasSnow,
		HasCloudCover: w.HasCloudCover, HasVisibility: w.HasVisibility, Condition: w.Condition})
	m.ObservedAt = instantProto(w.ObservedAt)
	return m
}

// schemaViolation refuses a message of a schema version newer than this build writes.
func schemaViolation(v uint32) *ingest.Violation {
	if v <= SchemaVersion {
		return nil
	}
	return &ingest.Violation{Reason: ingest.ReasonUnsupportedSchema, Field: "schema_version",
		Description: fmt.Sprintf("schema version %d is newer than %d", v, SchemaVersion)}
}

// ValidateTraffic checks a reading a gateway sent (schema version, then ingest.Traffic) and, when it is
// accepted, completes the message in place: intersection and approach from the topology, a derived reading id
// when none was sent, flow_vph from the count, and the schema version. The message keeps every other field as
// received.
func ValidateTraffic(r *greenwavev1.TrafficReading, topo *topology.Index, lim ingest.Limits, now time.Time) *ingest.Violation {
	if v := schemaViolation(r.GetSchemaVersion()); v != nil {
		return v
	}
	d := IngestTraffic(r)
	if v := ingest.Traffic(&d, topo, lim, now); v != nil {
		return v
	}
	r.IntersectionId, r.ApproachId, r.FlowVph, r.ReadingId = d.IntersectionID, d.ApproachID, d.FlowVPH, d.ReadingID
	r.SchemaVersion = SchemaVersion
	return nil
}

// ValidateWeather is ValidateTraffic for a weather observation (ingest.Weather; a derived reading id).
func ValidateWeather(w *greenwavev1.WeatherReading, lim ingest.Limits, now time.Time) *ingest.Violation {
	if v := schemaViolation(w.GetSchemaVersion()); v != nil {
		return v
	}
	d := IngestWeather(w)
	if v := ingest.Weather(&d, lim, now); v != nil {
		return v
	}
	w.ReadingId = d.ReadingID
	w.SchemaVersion = SchemaVersion
	return nil
}

// Stamp sets the processing-time fields the collector adds to an accepted reading.
func Stamp(m proto.Message, gateway string, now time.Time) {
	StampAt(m, gateway, timestamppb.New(now))
}

// StampAt is Stamp with a shared receive time: a batch's readings share one timestamp message, which must not
// be modified afterwards.
func StampAt(m proto.Message, gateway string, receivedAt *timestamppb.Timestamp) {
	switch r := m.(type) {
	case *greenwavev1.TrafficReading:
		r.GatewayId, r.ReceivedAt = gateway, receivedAt
	case *greenwavev1.WeatherReading:
		r.GatewayId, r.ReceivedAt = gateway, receivedAt
	}
}
