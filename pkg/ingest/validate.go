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

	"github.com/greenwave-city/greenwave/pkg/clip"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

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
	Reason Reason
	// Field is the offending field's name within the reading, e.g. "speed_kmh".
	Field       string
	Description string
}

// bad is a Violation with a formatted description.
func bad(reason Reason, field, format string, args ...any) *Violation {
	return &Violation{Reason: reason, Field: field, Description: fmt.Sprintf(format, args...)}
}

// Traffic validates r in place: it fills the intersection and approach from the topology, derives a missing
// reading id from detector and interval and computes flow_vph from count. A reading needs at least one of count,
// occupancy and speed: one without a count (NoCount) and without both others is missing_field "count". It returns the first violation found
// (a reading is accepted or refused as a whole), or nil. Field names are those of the proto message
// ("speed_kmh"); the schema version is pkg/wire's to check.
func Traffic(r *TrafficReading, topo *topology.Index, lim Limits, now time.Time) *Violation {
	if v := idViolation("reading_id", r.ReadingID); v != nil {
		return v
	}
	if r.DetectorID == "" {
		return bad(ReasonMissingField, "detector_id", "detector_id is required")
	}
	ref, ok := topo.Detector(r.DetectorID)
	if !ok {
		return bad(ReasonUnknownDetector, "detector_id", "detector %q is not in the topology", clip.ID(r.DetectorID))
	}
	if id := r.IntersectionID; id != "" && id != ref.Intersection {
		return bad(ReasonInconsistent, "intersection_id", "detector %q belongs to intersection %q, not %q", r.DetectorID, ref.Intersection, clip.ID(id))
	}
	if id := r.ApproachID; id != "" && id != ref.Approach {
		return bad(ReasonInconsistent, "approach_id", "detector %q belongs to approach %q, not %q", r.DetectorID, ref.Approach, clip.ID(id))
	}
	at, v := observedAt(r.ObservedAt, lim, now)
	if v != nil {
		return v
	}
	if r.IntervalS == 0 {
		return bad(ReasonMissingField, "interval_s", "interval_s is required")
	}
	if r.IntervalS > 3600 {
		return bad(ReasonOutOfRange, "interval_s", "interval_s %d exceeds 3600", r.IntervalS)
	}
	var flow float64
	if r.NoCount {
		if !r.HasOccupancy && !r.HasSpeed {
			return bad(ReasonMissingField, "count", "a reading needs at least one of count, occupancy_ratio and speed_kmh: count_absent is set and neither occupancy_ratio nor speed_kmh is")
		}
		if r.Count != 0 || r.FlowVPH != 0 {
			return bad(ReasonInconsistent, "count", "count_absent is set but count is %v and flow_vph %v", r.Count, r.FlowVPH)
		}
	} else {
		if c := r.Count; math.IsNaN(c) || math.IsInf(c, 0) || c < 0 {
			return bad(ReasonOutOfRange, "count", "count %v must be a finite number ≥ 0", c)
		}
		flow = FlowVPH(r.Count, r.IntervalS)
		in, _ := topo.Intersection(ref.Intersection)
		ap, _ := in.Approach(ref.Approach)
		lanes := float64(ap.Lanes) / float64(len(ap.Detectors))
		if maxFlow := lim.MaxFlowVPHPerLane * math.Max(1, lanes); flow > maxFlow {
			return bad(ReasonOutOfRange, "count", "count %g in %ds is %.0f veh/h, above the physical maximum %.0f for the detector", r.Count, r.IntervalS, flow, maxFlow)
		}
	}
	if r.HasOccupancy {
		if o := r.OccupancyRatio; !(o >= 0 && o <= 1) {
			return bad(ReasonOutOfRange, "occupancy_ratio", "occupancy_ratio %v outside 0..1", o)
		}
	}
	if r.HasSpeed {
		if s := r.SpeedKMH; !(s >= 0 && s <= lim.MaxSpeedKMH) {
			return bad(ReasonOutOfRange, "speed_kmh", "speed_kmh %v outside 0..%g", s, lim.MaxSpeedKMH)
		}
	}
	r.IntersectionID, r.ApproachID = ref.Intersection, ref.Approach
	r.FlowVPH = flow
	if r.ReadingID == "" {
		r.ReadingID = TrafficID(r.DetectorID, at)
	}
	return nil
}

// observedAt checks an observation time: present, valid and within the accepted horizon.
func observedAt(t Instant, lim Limits, now time.Time) (time.Time, *Violation) {
	if !t.Set {
		return time.Time{}, bad(ReasonMissingField, "observed_at", "observed_at is required")
	}
	if t.Invalid != "" {
		return time.Time{}, bad(ReasonOutOfRange, "observed_at", "observed_at is not a valid time: %s", clip.ID(t.Invalid))
	}
	return t.Time, timeViolation(t.Time, lim, now)
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
		return &Violation{Reason: ReasonOutOfRange, Field: field, Description: fmt.Sprintf("%s is %d bytes long, more than %d", field, len(id), MaxIDLen)}
	}
	for _, c := range id {
		if c < 0x20 || c == 0x7f || c == utf8.RuneError {
			return &Violation{Reason: ReasonMalformed, Field: field, Description: fmt.Sprintf("%s %q holds a control character or invalid UTF-8", field, id)}
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
func Weather(w *WeatherReading, lim Limits, now time.Time) *Violation {
	if v := idViolation("reading_id", w.ReadingID); v != nil {
		return v
	}
	if w.StationID == "" {
		return bad(ReasonMissingField, "station_id", "station_id is required")
	}
	at, v := observedAt(w.ObservedAt, lim, now)
	if v != nil {
		return v
	}
	ranges := []struct {
		field    string
		has      bool
		v        float64
		min, max float64
	}{
		{"temperature_c", w.HasTemperature, w.TemperatureC, -80, 60},
		{"precipitation_mm_h", w.HasPrecipitation, w.PrecipitationMMH, 0, 500},
		{"snow_mm_h", w.HasSnow, w.SnowMMH, 0, 500},
		{"cloud_cover_ratio", w.HasCloudCover, w.CloudCoverRatio, 0, 1},
		{"visibility_m", w.HasVisibility, w.VisibilityM, 0, 100000},
	}
	for _, r := range ranges {
		if r.has && !(r.v >= r.min && r.v <= r.max) {
			return bad(ReasonOutOfRange, r.field, "%s %v outside %g..%g", r.field, r.v, r.min, r.max)
		}
	}
	if w.ReadingID == "" {
		w.ReadingID = w.StationID + "@" + strconv.FormatInt(at.Unix(), 10)
	}
	return nil
}

func timeViolation(at time.Time, lim Limits, now time.Time) *Violation {
	if at.After(now.Add(lim.MaxFutureSkew)) {
		return &Violation{Reason: ReasonFutureTimestamp, Field: "observed_at",
			Description: fmt.Sprintf("observed_at %s is %s ahead of the collector's clock (allowed skew %s)", at.Format(time.RFC3339), at.Sub(now).Round(time.Second), lim.MaxFutureSkew)}
	}
	if at.Before(now.Add(-lim.MaxAge)) {
		return &Violation{Reason: ReasonTooOld, Field: "observed_at",
			Description: fmt.Sprintf("observed_at %s is older than the accepted horizon of %s", at.Format(time.RFC3339), lim.MaxAge)}
	}
	return nil
}
