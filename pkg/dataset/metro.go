package dataset

import (
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// The Metro Interstate Traffic Volume data set (UCI id 492) is one counting station: MnDOT ATR 301, westbound
// I-94 between Minneapolis and St Paul, with OpenWeatherMap weather for the area. These ids name it everywhere.
const (
	MetroIntersectionID = "I94-ATR301"
	MetroApproachID     = "WB"
	MetroDetectorID     = "I94-ATR301-WB"
	// MetroStationID is the weather station of the file's weather columns (Minneapolis–St Paul).
	MetroStationID = "MSP"
	// MetroIntervalS is the counting interval: the volumes are hourly.
	MetroIntervalS = 3600
	// MetroLocation is the time zone of date_time: Minneapolis local time, with daylight saving (the data skip
	// 02:00 on spring-forward days).
	MetroLocation = "America/Chicago"
	// MetroTimeLayout is date_time's layout.
	MetroTimeLayout = "2006-01-02 15:04:05"
)

// The nominal cross street of MetroTopology (see there).
const (
	MetroCrossApproachID = "CROSS"
	MetroCrossDetectorID = "I94-ATR301-CROSS"
)

// metroRequired are the Metro columns the adapter reads (holiday and weather_description are ignored).
var metroRequired = []string{"temp", "rain_1h", "snow_1h", "clouds_all", "weather_main", "date_time", "traffic_volume"}

// metro decodes the Metro file. Its rows are hourly and in time order; one hour repeats on adjacent rows when
// several weather descriptions applied to it, always with the same volume. The adapter emits each hour once:
// the reading from the hour's first row with a valid volume, the weather from the hour's first row whose weather
// columns parse (OpenWeatherMap lists the descriptions in no documented order, so "first" is simply the
// deterministic choice). A repeat with a different volume is a ReasonConflictingRepeat problem; a row earlier than
// the hour being read is ReasonOutOfOrder. Memory: one hour of state.
//
// Units: temp Kelvin → temperature_c (K − 273.15, rounded to 0.01 °C, the source's resolution); rain_1h and
// snow_1h (mm in the hour) → precipitation_mm_h and snow_mm_h; clouds_all % → cloud_cover_ratio; weather_main →
// condition. Impossible values (temp 0 K, rain_1h 9831 mm) pass through converted, for the collector to reject.
type metro struct {
	t                                            *table
	loc                                          *time.Location
	temp, rain, snow, clouds, main, when, volume int
	hour                                         time.Time // the hour being assembled; zero before the first row
	hourLine                                     int
	reading                                      *clean.Reading
	weather                                      *clean.Weather
	out                                          []Record // records ready to return, in order
	eof                                          bool
}

func newMetro(rd *Reader, r io.Reader) (*metro, error) {
	loc, err := location(rd.opts.Location, MetroLocation)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", rd.name, err)
	}
	t := newTable(rd, r)
	rec, line, err := t.row()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("open %s: %w", rd.name, ErrEmpty)
	}
	if err != nil {
		return nil, err
	}
	if err := t.header(rec, line, metroRequired); err != nil {
		return nil, err
	}
	return &metro{t: t, loc: loc, temp: t.use("temp"), rain: t.use("rain_1h"), snow: t.use("snow_1h"),
		clouds: t.use("clouds_all"), main: t.use("weather_main"), when: t.use("date_time"), volume: t.use("traffic_volume")}, nil
}

func location(override *time.Location, name string) (*time.Location, error) {
	if override != nil {
		return override, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("load time zone %s: %w", name, err)
	}
	return loc, nil
}

// localTime interprets wall-clock fields in loc. A wall-clock time the clock skipped (daylight saving starts)
// has no instant: ok is false. An ambiguous one (daylight saving ends) is the earlier instant, as time.Date
// chooses.
func localTime(y int, mo time.Month, d, h, mi int, loc *time.Location) (time.Time, bool) {
	t := time.Date(y, mo, d, h, mi, 0, 0, loc)
	return t, t.Hour() == h && t.Minute() == mi && t.Day() == d
}

func (d *metro) next() (Record, error) {
	for len(d.out) == 0 {
		if d.eof {
			return Record{}, io.EOF
		}
		rec, line, err := d.t.dataRow(2)
		if errors.Is(err, io.EOF) {
			d.eof = true
			d.flush()
			continue
		}
		if err != nil {
			return Record{}, err
		}
		d.add(rec, line)
	}
	rec := d.out[0]
	d.out = d.out[1:]
	return rec, nil
}

// flush queues the hour being assembled.
func (d *metro) flush() {
	if d.reading != nil {
		d.out = append(d.out, Record{Reading: d.reading, Line: d.hourLine})
	}
	if d.weather != nil {
		d.out = append(d.out, Record{Weather: d.weather, Line: d.hourLine})
	}
	d.reading, d.weather = nil, nil
}

func (d *metro) add(rec []string, line int) {
	rd := d.t.rd
	s := cell(rec, d.when)
	if s == "" {
		rd.report(line, "date_time", ReasonMissingValue, 2, "date_time is empty")
		return
	}
	wall, err := time.Parse(MetroTimeLayout, s)
	if err != nil {
		rd.report(line, "date_time", ReasonBadTime, 2, "%q is not a time such as 2012-10-02 09:00:00", s)
		return
	}
	if wall.Minute() != 0 || wall.Second() != 0 {
		rd.report(line, "date_time", ReasonBadTime, 2, "%q is not on the hour (the volumes are hourly)", s)
		return
	}
	at, ok := localTime(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), 0, d.loc)
	if !ok {
		rd.report(line, "date_time", ReasonNonexistentLocalTime, 2, "%s does not exist in %s (daylight saving starts)", s, d.loc)
		return
	}
	at = at.UTC()
	switch {
	case d.hour.IsZero() || at.After(d.hour):
		d.flush()
		d.hour, d.hourLine = at, line
	case at.Before(d.hour):
		rd.report(line, "date_time", ReasonOutOfOrder, 2, "%s is earlier than the hour already read (%s): rows must be in time order",
			s, d.hour.In(d.loc).Format(MetroTimeLayout))
		return
	default:
		rd.stats.MergedRows++
	}

	if r, ok := d.parseReading(rec, line, at); ok {
		switch {
		case d.reading == nil:
			d.reading = &r
		case d.reading.Count != r.Count:
			rd.report(line, "traffic_volume", ReasonConflictingRepeat, 0, "hour %s repeats with volume %g, its first row (line %d) has %g; keeping the first",
				s, r.Count, d.hourLine, d.reading.Count)
		}
	}
	if d.weather == nil {
		if w, ok := d.parseWeather(rec, line, at); ok {
			d.weather = &w
		}
	}
}

func (d *metro) parseReading(rec []string, line int, at time.Time) (clean.Reading, bool) {
	s := cell(rec, d.volume)
	if s == "" {
		d.t.rd.report(line, "traffic_volume", ReasonMissingValue, 1, "traffic_volume is empty")
		return clean.Reading{}, false
	}
	v, err := parseNumber(s)
	if err != nil {
		d.t.rd.report(line, "traffic_volume", ReasonBadNumber, 1, "%v", err)
		return clean.Reading{}, false
	}
	return clean.Reading{IntersectionID: MetroIntersectionID, ApproachID: MetroApproachID, DetectorID: MetroDetectorID,
		Start: at, IntervalS: MetroIntervalS, Count: v, FlowVPH: v}, true
}

// parseWeather converts a row's weather (called until one row of the hour provides it).
func (d *metro) parseWeather(rec []string, line int, at time.Time) (clean.Weather, bool) {
	w := clean.Weather{StationID: MetroStationID, ObservedAt: at, Condition: cell(rec, d.main)}
	fields := []struct {
		name  string
		col   int
		v     *float64
		has   *bool
		scale func(float64) float64
	}{
		{"temp", d.temp, &w.TemperatureC, &w.HasTemperature, func(k float64) float64 { return math.Round((k-273.15)*100) / 100 }},
		{"rain_1h", d.rain, &w.PrecipitationMMH, &w.HasPrecipitation, nil},
		{"snow_1h", d.snow, &w.SnowMMH, &w.HasSnow, nil},
		{"clouds_all", d.clouds, &w.CloudCoverRatio, &w.HasCloudCover, func(p float64) float64 { return p / 100 }},
	}
	for _, f := range fields {
		s := cell(rec, f.col)
		if s == "" {
			continue // not measured
		}
		v, err := parseNumber(s)
		if err != nil {
			d.t.rd.report(line, f.name, ReasonBadNumber, 1, "%v", err)
			return clean.Weather{}, false
		}
		if f.scale != nil {
			v = f.scale(v)
		}
		*f.v, *f.has = v, true
	}
	return w, true
}

// MetroTopology returns a valid topology for the Metro data set's one site, so the stack can run on it
// (`greenwave topology import --format metro`).
//
// ATR 301 is a freeway counting station, not a signalised intersection; the topology is a modelling stand-in:
//
//   - approach WB: westbound I-94 with 4 lanes (the file's peak, 7 280 veh/h, needs at least 4 lanes at the
//     2 000 veh/h/lane a freeway lane carries at capacity), saturation flow 2 000 veh/h/lane, detector
//     MetroDetectorID;
//   - approach CROSS: a nominal one-lane cross street with detector MetroCrossDetectorID, which no data feed:
//     topology validation requires two phases and every phase must serve an approach, so the cross phase needs
//     one. Its flow is always a gap in the features, and plans for the site are not meaningful timing advice;
//   - phases THROUGH (WB) and CROSS, window 3600 s (the volumes are hourly), weather station MetroStationID;
//   - time_zone MetroLocation, the zone of the file's local times, so the services' calendar features are
//     Minneapolis local time as greenwave eval's are.
func MetroTopology() topology.Topology {
	phase := func(id, approach string, minG, maxG float64) topology.Phase {
		return topology.Phase{ID: id, Approaches: []string{approach}, MinGreenS: minG, MaxGreenS: maxG,
			YellowS: 4, AllRedS: 2, LostTimeS: 4}
	}
	return topology.Topology{
		Version:  topology.SchemaVersion,
		Revision: "metro-i94-atr301",
		TimeZone: MetroLocation,
		Intersections: []topology.Intersection{{
			ID:             MetroIntersectionID,
			Name:           "I-94 westbound at MnDOT ATR 301 (Minneapolis-St Paul)",
			WeatherStation: MetroStationID,
			WindowS:        MetroIntervalS,
			Approaches: []topology.Approach{
				{ID: MetroApproachID, Lanes: 4, SaturationFlowVPHPerLane: 2000, Detectors: []string{MetroDetectorID}},
				{ID: MetroCrossApproachID, Lanes: 1, SaturationFlowVPHPerLane: 1800, Detectors: []string{MetroCrossDetectorID}},
			},
			Phases: []topology.Phase{
				phase("THROUGH", MetroApproachID, 20, 120),
				phase(MetroCrossApproachID, MetroCrossApproachID, 8, 40),
			},
			Timing:    topology.Timing{MinCycleS: 60, MaxCycleS: 180},
			FixedTime: map[string]float64{"THROUGH": 90, MetroCrossApproachID: 18},
		}},
	}
}
