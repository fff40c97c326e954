// Package ingest validates and normalises readings at the front door (the collector): required fields, physical
// ranges in canonical units, timestamps within bounds, detectors known to the topology. It is pure: the caller
// passes the clock.
package ingest

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/topology"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// SchemaVersion is the reading schema version the collector writes.
const SchemaVersion = 1

// Limits are the validation bounds.
type Limits struct {
	// MaxFutureSkew is how far ahead of the collector's clock an observation may be (gateway clock skew).
	MaxFutureSkew time.Duration
	// MaxAge is how old an observation may be (backfills older than this are refused).
	MaxAge time.Duration
	// MaxFlowVPHPerLane bounds flow per lane of the detector's approach.
	MaxFlowVPHPerLane float64
	// MaxSpeedKMH bounds speed.
	MaxSpeedKMH float64
}

// DefaultLimits are generous physical bounds; the cleaner applies the finer plausibility rules.
func DefaultLimits() Limits {
	return Limits{MaxFutureSkew: 2 * time.Minute, MaxAge: 30 * 24 * time.Hour, MaxFlowVPHPerLane: 3600, MaxSpeedKMH: 250}
}

// Violation is one field-level problem with a reading.
type Violation struct {
	Reason greenwavev1.RejectReason
	// Field is the offending field's name within the reading, e.g. "speed_kmh".
	Field       string
	Description string
}

// Traffic validates r in place: it fills the intersection and approach from the topology, derives a missing
// reading id from detector and interval, computes flow_vph from count and stamps the schema version. It returns
// the first violation found (a reading is accepted or refused as a whole), or nil.
func Traffic(r *greenwavev1.TrafficReading, topo *topology.Index, lim Limits, now time.Time) *Violation {
	bad := func(reason greenwavev1.RejectReason, field, format string, args ...any) *Violation {
		return &Violation{Reason: reason, Field: field, Description: fmt.Sprintf(format, args...)}
	}
	if r.GetSchemaVersion() > SchemaVersion {
		return bad(greenwavev1.RejectReason_REJECT_REASON_UNSUPPORTED_SCHEMA, "schema_version", "schema version %d is newer than %d", r.GetSchemaVersion(), SchemaVersion)
	}
	if v := idViolation("reading_id", r.GetReadingId()); v != nil {
		return v
	}
	if r.GetDetectorId() == "" {
		return bad(greenwavev1.RejectReason_REJECT_REASON_MISSING_FIELD, "detector_id", "detector_id is required")
	}
	ref, ok := topo.Detector(r.GetDetectorId())
	if !ok {
		return bad(greenwavev1.RejectReason_REJECT_REASON_UNKNOWN_DETECTOR, "detector_id", "detector %q is not in the topology", r.GetDetectorId())
	}
	if id := r.GetIntersectionId(); id != "" && id != ref.Intersection {
		return bad(greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT, "intersection_id", "detector %q belongs to intersection %q, not %q", r.GetDetectorId(), ref.Intersection, id)
	}
	if id := r.GetApproachId(); id != "" && id != ref.Approach {
		return bad(greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT, "approach_id", "detector %q belongs to approach %q, not %q", r.GetDetectorId(), ref.Approach, id)
	}
	if r.GetObservedAt() == nil {
		return bad(greenwavev1.RejectReason_REJECT_REASON_MISSING_FIELD, "observed_at", "observed_at is required")
	}
	if err := r.GetObservedAt().CheckValid(); err != nil {
		return bad(greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE, "observed_at", "observed_at is not a valid time: %v", err)
	}
	at := r.GetObservedAt().AsTime()
	if v := timeViolation(at, lim, now); v != nil {
		return v
	}
	if r.GetIntervalS() == 0 {
		return bad(greenwavev1.RejectReason_REJECT_REASON_MISSING_FIELD, "interval_s", "interval_s is required")
	}
	if r.GetIntervalS() > 3600 {
		return bad(greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE, "interval_s", "interval_s %d exceeds 3600", r.GetIntervalS())
	}
	if c := r.GetCount(); math.IsNaN(c) || math.IsInf(c, 0) || c < 0 {
		return bad(greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE, "count", "count %v must be a finite number ≥ 0", c)
	}
	flow := FlowVPH(r.GetCount(), r.GetIntervalS())
	in, _ := topo.Intersection(ref.Intersection)
	ap, _ := in.Approach(ref.Approach)
	lanes := float64(ap.Lanes) / float64(len(ap.Detectors))
	if maxFlow := lim.MaxFlowVPHPerLane * math.Max(1, lanes); flow > maxFlow {
		return bad(greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE, "count", "count %g in %ds is %.0f veh/h, above the physical maximum %.0f for the detector", r.GetCount(), r.GetIntervalS(), flow, maxFlow)
	}
	if r.OccupancyRatio != nil {
		if o := r.GetOccupancyRatio(); !(o >= 0 && o <= 1) {
			return bad(greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE, "occupancy_ratio", "occupancy_ratio %v outside 0..1", o)
		}
	}
	if r.SpeedKmh != nil {
		if s := r.GetSpeedKmh(); !(s >= 0 && s <= lim.MaxSpeedKMH) {
			return bad(greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE, "speed_kmh", "speed_kmh %v outside 0..%g", s, lim.MaxSpeedKMH)
		}
	}
	r.IntersectionId, r.ApproachId = ref.Intersection, ref.Approach
	r.FlowVph = flow
	r.SchemaVersion = SchemaVersion
	if r.GetReadingId() == "" {
		r.ReadingId = TrafficID(r.GetDetectorId(), at)
	}
	return nil
}

// FlowVPH converts a count of vehicles over an interval of intervalS seconds to a flow in vehicles per hour.
func FlowVPH(count float64, intervalS uint32) float64 {
	return count * 3600 / float64(intervalS)
}

// MaxIDLen bounds client-supplied ids: they become Kafka headers and dedup keys downstream.
const MaxIDLen = 128

// idViolation checks a client-supplied id ("" is fine: the collector derives one).
func idViolation(field, id string) *Violation {
	if len(id) > MaxIDLen {
		return &Violation{Reason: greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE, Field: field, Description: fmt.Sprintf("%s is %d bytes long, more than %d", field, len(id), MaxIDLen)}
	}
	for _, c := range id {
		if c < 0x20 || c == 0x7f || c == utf8.RuneError {
			return &Violation{Reason: greenwavev1.RejectReason_REJECT_REASON_MALFORMED, Field: field, Description: fmt.Sprintf("%s %q holds a control character or invalid UTF-8", field, id)}
		}
	}
	return nil
}

// TrafficID is the deterministic id of a detector's reading for the interval starting at start, so a gateway
// that resends after a lost ack produces the same id.
func TrafficID(detector string, start time.Time) string {
	return detector + "@" + strconv.FormatInt(start.Unix(), 10)
}

// Weather validates w in place, like Traffic.
func Weather(w *greenwavev1.WeatherReading, lim Limits, now time.Time) *Violation {
	bad := func(reason greenwavev1.RejectReason, field, format string, args ...any) *Violation {
		return &Violation{Reason: reason, Field: field, Description: fmt.Sprintf(format, args...)}
	}
	if w.GetSchemaVersion() > SchemaVersion {
		return bad(greenwavev1.RejectReason_REJECT_REASON_UNSUPPORTED_SCHEMA, "schema_version", "schema version %d is newer than %d", w.GetSchemaVersion(), SchemaVersion)
	}
	if v := idViolation("reading_id", w.GetReadingId()); v != nil {
		return v
	}
	if w.GetStationId() == "" {
		return bad(greenwavev1.RejectReason_REJECT_REASON_MISSING_FIELD, "station_id", "station_id is required")
	}
	if w.GetObservedAt() == nil {
		return bad(greenwavev1.RejectReason_REJECT_REASON_MISSING_FIELD, "observed_at", "observed_at is required")
	}
	if err := w.GetObservedAt().CheckValid(); err != nil {
		return bad(greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE, "observed_at", "observed_at is not a valid time: %v", err)
	}
	at := w.GetObservedAt().AsTime()
	if v := timeViolation(at, lim, now); v != nil {
		return v
	}
	ranges := []struct {
		field    string
		has      bool
		v        float64
		min, max float64
	}{
		{"temperature_c", w.TemperatureC != nil, w.GetTemperatureC(), -80, 60},
		{"precipitation_mm_h", w.PrecipitationMmH != nil, w.GetPrecipitationMmH(), 0, 500},
		{"snow_mm_h", w.SnowMmH != nil, w.GetSnowMmH(), 0, 500},
		{"cloud_cover_ratio", w.CloudCoverRatio != nil, w.GetCloudCoverRatio(), 0, 1},
		{"visibility_m", w.VisibilityM != nil, w.GetVisibilityM(), 0, 100000},
	}
	for _, r := range ranges {
		if r.has && !(r.v >= r.min && r.v <= r.max) {
			return bad(greenwavev1.RejectReason_REJECT_REASON_OUT_OF_RANGE, r.field, "%s %v outside %g..%g", r.field, r.v, r.min, r.max)
		}
	}
	w.SchemaVersion = SchemaVersion
	if w.GetReadingId() == "" {
		w.ReadingId = w.GetStationId() + "@" + strconv.FormatInt(at.Unix(), 10)
	}
	return nil
}

func timeViolation(at time.Time, lim Limits, now time.Time) *Violation {
	if at.After(now.Add(lim.MaxFutureSkew)) {
		return &Violation{Reason: greenwavev1.RejectReason_REJECT_REASON_FUTURE_TIMESTAMP, Field: "observed_at",
			Description: fmt.Sprintf("observed_at %s is %s ahead of the collector's clock (allowed skew %s)", at.Format(time.RFC3339), at.Sub(now).Round(time.Second), lim.MaxFutureSkew)}
	}
	if at.Before(now.Add(-lim.MaxAge)) {
		return &Violation{Reason: greenwavev1.RejectReason_REJECT_REASON_TOO_OLD, Field: "observed_at",
			Description: fmt.Sprintf("observed_at %s is older than the accepted horizon of %s", at.Format(time.RFC3339), lim.MaxAge)}
	}
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
