// Package fiware decodes NGSI-LD entity batches — FIWARE Smart Data Models TrafficFlowObserved and
// WeatherObserved, key-value or normalised — into Greenwave readings in canonical units. It is pure: bytes in,
// readings and per-entity problems out; range and topology checks are left to package ingest so every API
// applies the same rules.
//
// Each attribute is read in whichever form it arrives: a plain value (key-values) or an object with "type"
// ("Property", "Relationship") and "value"/"object", optionally with "unitCode" (normalised). A batch may mix
// both forms.
package fiware

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	textclip "github.com/greenwave-city/greenwave/pkg/clip"
	"github.com/greenwave-city/greenwave/pkg/ingest"
)

// Entity types this package converts.
const (
	TypeTrafficFlowObserved = "TrafficFlowObserved"
	TypeWeatherObserved     = "WeatherObserved"
)

// MaxInterval bounds a counting interval derived from dateObservedFrom/To or intervalS; longer ones are not
// traffic counts Greenwave can use (ingest refuses more than an hour; this only keeps the arithmetic sane).
const MaxInterval = 24 * time.Hour

// Entity is one decoded entity of a batch: exactly one of Traffic, Weather or Violation is set.
type Entity struct {
	// Index is the entity's position in the request array.
	Index int
	// ID and Type are the entity's id and type as sent (empty when missing).
	ID, Type string
	// Traffic or Weather is the converted reading, not yet validated (see ingest.Traffic and ingest.Weather).
	Traffic *ingest.TrafficReading
	Weather *ingest.WeatherReading
	// Violation is why the entity could not be converted; its Field is the entity attribute ("occupancy").
	Violation *ingest.Violation
}

// Kind returns the reading kind of the entity's type.
func (e Entity) Kind() ingest.Kind {
	switch e.Type {
	case TypeTrafficFlowObserved:
		return ingest.KindTraffic
	case TypeWeatherObserved:
		return ingest.KindWeather
	}
	return ingest.KindUnspecified
}

// ErrNotArray is returned when the body is not a JSON array of entities.
var ErrNotArray = errors.New("body must be a JSON array of NGSI-LD entities")

// Decode reads an NGSI-LD entity array. The error is for a body that is not a JSON array at all; problems with
// single entities come back as the entity's Violation so the rest of the batch can still be accepted.
func Decode(body []byte) ([]Entity, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '[' {
		return nil, ErrNotArray
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, fmt.Errorf("decode entity array: %w", err)
	}
	out := make([]Entity, len(raws))
	for i, raw := range raws {
		out[i] = decodeEntity(i, raw)
	}
	return out, nil
}

// AttributeOf maps a canonical reading field (as named in ingest.Violation) to the entity attribute it came
// from, so errors about a converted entity name what the gateway sent.
func AttributeOf(kind ingest.Kind, field string) string {
	traffic := map[string]string{
		"detector_id": "id", "observed_at": "dateObserved", "interval_s": "dateObservedTo",
		"count": "intensity", "occupancy_ratio": "occupancy", "speed_kmh": "averageVehicleSpeed",
		"reading_id": "id", "lane_id": "laneId",
	}
	weather := map[string]string{
		"station_id": "id", "observed_at": "dateObserved", "temperature_c": "temperature",
		"precipitation_mm_h": "precipitation", "visibility_m": "visibility", "reading_id": "id",
	}
	m := traffic
	if kind == ingest.KindWeather {
		m = weather
	}
	if a, ok := m[field]; ok {
		return a
	}
	return field
}

type entity struct {
	attrs map[string]json.RawMessage
}

// attr is one attribute in either form.
type attr struct {
	value    json.RawMessage // the value (key-values) or "value" (normalised); nil when absent or null
	object   string          // "object" of a Relationship
	unitCode string
}

func (e entity) attr(name string) (attr, error) {
	raw, ok := e.attrs[name]
	if !ok || isNull(raw) {
		return attr{}, nil
	}
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		var n struct {
			Type     string          `json:"type"`
			Value    json.RawMessage `json:"value"`
			Object   json.RawMessage `json:"object"`
			UnitCode string          `json:"unitCode"`
		}
		if err := json.Unmarshal(raw, &n); err != nil {
			return attr{}, fmt.Errorf("%s: %w", name, err)
		}
		if n.Type != "" || n.Value != nil || n.Object != nil {
			a := attr{unitCode: n.UnitCode}
			if !isNull(n.Value) {
				a.value = n.Value
			}
			if n.Object != nil && !isNull(n.Object) {
				if err := json.Unmarshal(n.Object, &a.object); err != nil {
					return attr{}, fmt.Errorf("%s: relationship object must be a string", name)
				}
			}
			return a, nil
		}
	}
	return attr{value: raw}, nil
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// number reads a numeric attribute; ok is false when it is absent or null.
func (e entity) number(name string) (v float64, unit string, ok bool, viol *ingest.Violation) {
	a, err := e.attr(name)
	if err != nil {
		return 0, "", false, malformed(name, "%v", err)
	}
	if a.value == nil {
		return 0, "", false, nil
	}
	if err := json.Unmarshal(a.value, &v); err != nil {
		return 0, "", false, malformed(name, "%s must be a number, got %s", name, clip(a.value))
	}
	return v, a.unitCode, true, nil
}

// text reads a string attribute, or a Relationship's object.
func (e entity) text(name string) (string, *ingest.Violation) {
	a, err := e.attr(name)
	if err != nil {
		return "", malformed(name, "%v", err)
	}
	if a.object != "" {
		return a.object, nil
	}
	if a.value == nil {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(a.value, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(a.value, &n); err == nil { // laneId is an integer in the data model
		return n.String(), nil
	}
	return "", malformed(name, "%s must be a string, got %s", name, clip(a.value))
}

// date reads a DateTime attribute: an RFC 3339 string, or {"@type": "DateTime", "@value": "…"}. An ISO 8601
// interval "start/end" returns both ends.
func (e entity) date(name string) (start, end time.Time, ok bool, viol *ingest.Violation) {
	a, err := e.attr(name)
	if err != nil {
		return start, end, false, malformed(name, "%v", err)
	}
	if a.value == nil {
		return start, end, false, nil
	}
	var s string
	if err := json.Unmarshal(a.value, &s); err != nil {
		var typed struct {
			Value string `json:"@value"`
		}
		if err := json.Unmarshal(a.value, &typed); err != nil || typed.Value == "" {
			return start, end, false, malformed(name, "%s must be an RFC 3339 date-time string, got %s", name, clip(a.value))
		}
		s = typed.Value
	}
	from, to, interval := strings.Cut(s, "/")
	if start, err = parseTime(from); err != nil {
		return start, end, false, malformed(name, "%s %q: %v", name, textclip.ID(s), err)
	}
	end = start
	if interval {
		if end, err = parseTime(to); err != nil {
			return start, end, false, malformed(name, "%s %q: %v", name, textclip.ID(s), err)
		}
	}
	return start, end, true, nil
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, errors.New("not an RFC 3339 date-time with a time zone (e.g. 2026-11-30T07:00:00Z)")
	}
	return t, nil
}

func clip(raw json.RawMessage) string {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

func malformed(field, format string, args ...any) *ingest.Violation {
	return &ingest.Violation{Reason: ingest.ReasonMalformed, Field: field, Description: fmt.Sprintf(format, args...)}
}

func violation(reason ingest.Reason, field, format string, args ...any) *ingest.Violation {
	return &ingest.Violation{Reason: reason, Field: field, Description: fmt.Sprintf(format, args...)}
}

func decodeEntity(i int, raw json.RawMessage) Entity {
	out := Entity{Index: i}
	var e entity
	if err := json.Unmarshal(raw, &e.attrs); err != nil || e.attrs == nil {
		out.Violation = malformed("", "entity must be a JSON object")
		return out
	}
	_ = json.Unmarshal(e.attrs["id"], &out.ID)
	_ = json.Unmarshal(e.attrs["type"], &out.Type)
	switch out.Type {
	case TypeTrafficFlowObserved:
		out.Traffic, out.Violation = traffic(e, out.ID)
	case TypeWeatherObserved:
		out.Weather, out.Violation = weather(e, out.ID)
	case "":
		out.Violation = violation(ingest.ReasonMissingField, "type", "type is required (%s or %s)", TypeTrafficFlowObserved, TypeWeatherObserved)
	default:
		out.Violation = malformed("type", "entity type %q is not accepted (%s or %s)", textclip.ID(out.Type), TypeTrafficFlowObserved, TypeWeatherObserved)
	}
	if out.Violation != nil {
		out.Traffic, out.Weather = nil, nil
	}
	return out
}

// LocalID strips an NGSI-LD URN prefix ("urn:ngsi-ld:<Type>:") from an entity id or relationship object, so
// "urn:ngsi-ld:TrafficFlowObserved:I-100-N1" and "I-100-N1" name the same detector.
func LocalID(id string) string {
	if rest, ok := strings.CutPrefix(id, "urn:ngsi-ld:"); ok {
		if _, local, ok := strings.Cut(rest, ":"); ok {
			return local
		}
		return rest
	}
	return id
}

// firstText returns the first non-empty of the named text attributes, with its name.
func firstText(e entity, names ...string) (string, string, *ingest.Violation) {
	for _, n := range names {
		v, viol := e.text(n)
		if viol != nil {
			return "", n, viol
		}
		if v != "" {
			return v, n, nil
		}
	}
	return "", "", nil
}

// optional reads a non-negative quantity, treating sentinels as missing, and converts it.
func optional(e entity, name string, sentinel func(float64) bool, convert func(float64, string) (float64, error)) (*float64, *ingest.Violation) {
	v, unit, ok, viol := e.number(name)
	if viol != nil || !ok || sentinel(v) {
		return nil, viol
	}
	if !finite(v) {
		return nil, violation(ingest.ReasonOutOfRange, name, "%s must be finite", name)
	}
	c, err := convert(v, unit)
	if err != nil {
		return nil, violation(ingest.ReasonUnsupportedUnit, name, "%s: %v", name, err)
	}
	return &c, nil
}

// setOptional stores an optional quantity and whether it is present.
func setOptional(v *float64, has *bool, x *float64) {
	if x != nil {
		*v, *has = *x, true
	}
}

func traffic(e entity, id string) (*ingest.TrafficReading, *ingest.Violation) {
	r := &ingest.TrafficReading{}
	det, _, viol := firstText(e, "detectorId", "refDevice")
	if viol != nil {
		return nil, viol
	}
	if det == "" {
		det = id
	}
	if det = LocalID(det); det == "" {
		return nil, violation(ingest.ReasonMissingField, "id", "the detector is named by detectorId, refDevice or the entity id; none is set")
	}
	r.DetectorID = det
	lane, viol := e.text("laneId")
	if viol != nil {
		return nil, viol
	}
	r.LaneID = lane

	start, end, viol := observedInterval(e)
	if viol != nil {
		return nil, viol
	}
	r.ObservedAt = ingest.At(start)
	r.IntervalS = uint32(end.Sub(start) / time.Second)

	count, _, ok, viol := e.number("intensity")
	if viol != nil {
		return nil, viol
	}
	if ok && !IsSentinel(count) {
		r.Count = count
	} else {
		r.NoCount = true // a speed- or occupancy-only sensor
	}
	occ, viol := optional(e, "occupancy", IsSentinel, OccupancyRatio)
	if viol != nil {
		return nil, viol
	}
	setOptional(&r.OccupancyRatio, &r.HasOccupancy, occ)
	speed, viol := optional(e, "averageVehicleSpeed", IsSentinel, SpeedKMH)
	if viol != nil {
		return nil, viol
	}
	setOptional(&r.SpeedKMH, &r.HasSpeed, speed)
	if r.NoCount && !r.HasOccupancy && !r.HasSpeed {
		return nil, violation(ingest.ReasonMissingField, "intensity", "a reading needs at least one of intensity, occupancy and averageVehicleSpeed; got none (or no-data codes)")
	}
	return r, nil
}

// observedInterval finds the counting interval: dateObservedFrom/dateObservedTo, an ISO 8601 interval in
// dateObserved, or a dateObserved instant (the end of counting) with Greenwave's intervalS attribute.
func observedInterval(e entity) (start, end time.Time, viol *ingest.Violation) {
	from, _, hasFrom, viol := e.date("dateObservedFrom")
	if viol != nil {
		return start, end, viol
	}
	to, _, hasTo, viol := e.date("dateObservedTo")
	if viol != nil {
		return start, end, viol
	}
	obsStart, obsEnd, hasObs, viol := e.date("dateObserved")
	if viol != nil {
		return start, end, viol
	}
	intervalS, _, hasInterval, viol := e.number("intervalS")
	if viol != nil {
		return start, end, viol
	}
	field := "dateObservedTo"
	switch {
	case hasFrom && hasTo:
		start, end = from, to
	case hasObs && obsEnd.After(obsStart):
		start, end, field = obsStart, obsEnd, "dateObserved"
	case hasInterval && (hasObs || hasTo || hasFrom):
		if !(intervalS > 0 && intervalS <= MaxInterval.Seconds()) || intervalS != math.Trunc(intervalS) {
			return start, end, violation(ingest.ReasonOutOfRange, "intervalS", "intervalS %v must be a whole number of seconds in 1..%d", intervalS, int(MaxInterval.Seconds()))
		}
		d := time.Duration(intervalS) * time.Second
		switch {
		case hasFrom:
			start, end = from, from.Add(d)
		case hasTo:
			start, end = to.Add(-d), to
		default:
			start, end = obsStart.Add(-d), obsStart
		}
	default:
		return start, end, violation(ingest.ReasonMissingField, "dateObservedFrom",
			"the counting interval is required: dateObservedFrom and dateObservedTo, an interval \"start/end\" in dateObserved, or dateObserved (its end) with intervalS")
	}
	d := end.Sub(start)
	if d <= 0 || d > MaxInterval {
		return start, end, violation(ingest.ReasonInconsistent, field, "the counting interval %s–%s must be positive and at most %s", start.Format(time.RFC3339), end.Format(time.RFC3339), MaxInterval)
	}
	if d%time.Second != 0 {
		return start, end, violation(ingest.ReasonInconsistent, field, "the counting interval %s is not a whole number of seconds", d)
	}
	return start, end, nil
}

func weather(e entity, id string) (*ingest.WeatherReading, *ingest.Violation) {
	w := &ingest.WeatherReading{}
	station, _, viol := firstText(e, "stationCode", "refPointOfInterest", "refDevice")
	if viol != nil {
		return nil, viol
	}
	if station == "" {
		station = id
	}
	if station = LocalID(station); station == "" {
		return nil, violation(ingest.ReasonMissingField, "id", "the station is named by stationCode, refPointOfInterest, refDevice or the entity id; none is set")
	}
	w.StationID = station
	at, _, ok, viol := e.date("dateObserved")
	if viol != nil {
		return nil, viol
	}
	if !ok {
		return nil, violation(ingest.ReasonMissingField, "dateObserved", "dateObserved is required")
	}
	w.ObservedAt = ingest.At(at)
	t, viol := optional(e, "temperature", IsTemperatureSentinel, TemperatureC)
	if viol != nil {
		return nil, viol
	}
	setOptional(&w.TemperatureC, &w.HasTemperature, t)
	p, viol := optional(e, "precipitation", IsSentinel, PrecipitationMMH)
	if viol != nil {
		return nil, viol
	}
	setOptional(&w.PrecipitationMMH, &w.HasPrecipitation, p)
	// visibility is a number in metres in WeatherObserved, but older models use words ("good", "poor"),
	// which Greenwave cannot turn into a distance: those are ignored rather than guessed.
	if a, err := e.attr("visibility"); err == nil && a.value != nil && bytes.TrimSpace(a.value)[0] != '"' {
		v, viol := optional(e, "visibility", IsSentinel, VisibilityM)
		if viol != nil {
			return nil, viol
		}
		setOptional(&w.VisibilityM, &w.HasVisibility, v)
	}
	cond, viol := e.text("weatherType")
	if viol != nil {
		return nil, viol
	}
	w.Condition = cond
	return w, nil
}
