package dataset

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// table reads CSV rows with their line numbers, reporting broken CSV syntax as problems.
type table struct {
	rd  *Reader
	cr  *csv.Reader
	col map[string]int // column name → index, from the header
	// need is the number of fields a row must have to hold every column the decoder uses.
	need int
}

func newTable(rd *Reader, r io.Reader) *table {
	cr := csv.NewReader(stripBOM(r))
	cr.FieldsPerRecord = -1 // rows are checked against the columns actually used, with a clear problem
	cr.ReuseRecord = true
	return &table{rd: rd, cr: cr}
}

// row returns the next row and its line, skipping (and reporting) rows with broken CSV syntax and rows that are
// entirely empty. It returns io.EOF at the end and other errors as fatal.
func (t *table) row() ([]string, int, error) {
	for {
		rec, err := t.cr.Read()
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				// Syntax only: encoding/csv returns I/O errors unwrapped.
				t.rd.stats.Rows++
				t.rd.report(pe.StartLine, "", ReasonMalformedCSV, 1, "%v", pe.Err)
				continue
			}
			if errors.Is(err, io.EOF) {
				return nil, 0, io.EOF
			}
			return nil, 0, fmt.Errorf("read %s: %w", t.rd.name, err)
		}
		line, _ := t.cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		return rec, line, nil
	}
}

// dataRow returns the next data row and its line, counting it and skipping (and reporting) rows too short for
// the columns in use; a short row stands for skipped records.
func (t *table) dataRow(skipped int) ([]string, int, error) {
	for {
		rec, line, err := t.row()
		if err != nil {
			return nil, 0, err
		}
		t.rd.stats.Rows++
		if !t.short(rec, line, skipped) {
			return rec, line, nil
		}
	}
}

// header indexes a header row and checks that it names every required column and, when anyOf is given, at least
// one of anyOf (reported as missing anyOf[0]). Names are trimmed; a duplicated name is an error (which column
// would win is a guess).
func (t *table) header(rec []string, line int, required []string, anyOf ...string) error {
	t.col = map[string]int{}
	for i, f := range rec {
		name := strings.TrimSpace(f)
		if name == "" {
			continue
		}
		if _, dup := t.col[name]; dup {
			return &HeaderError{File: t.rd.name, Line: line, Detail: fmt.Sprintf("column %q appears twice", name)}
		}
		t.col[name] = i
	}
	var missing []string
	for _, c := range required {
		if _, ok := t.col[c]; !ok {
			missing = append(missing, c)
		}
	}
	detail := ""
	if len(anyOf) > 0 && !slices.ContainsFunc(anyOf, func(c string) bool { _, ok := t.col[c]; return ok }) {
		missing = append(missing, anyOf[0])
		detail = fmt.Sprintf(" (or any of %q: a reading needs a measured quantity)", anyOf[1:])
	}
	if len(missing) > 0 {
		return &HeaderError{File: t.rd.name, Line: line, Missing: missing, Detail: detail}
	}
	return nil
}

// use notes that the decoder reads column name (if present) and returns its index, or -1.
func (t *table) use(name string) int {
	i, ok := t.col[name]
	if !ok {
		return -1
	}
	t.need = max(t.need, i+1)
	return i
}

// short reports a row too short for the columns in use.
func (t *table) short(rec []string, line, skipped int) bool {
	if len(rec) >= t.need {
		return false
	}
	t.rd.report(line, "", ReasonShortRow, skipped, "%d fields, the header needs %d", len(rec), t.need)
	return true
}

// parseNumber parses a finite decimal number. NaN and infinities are not data.
func parseNumber(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a finite number", s)
	}
	return v, nil
}

// checkID reports whether s can be an id: printable, no white space inside, no '/' (Greenwave builds compound
// keys with it).
func checkID(s string) error {
	for _, r := range s {
		if unicode.IsSpace(r) || r == '/' || !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("%q holds white space, '/' or a non-printable character", s)
		}
	}
	return nil
}

// ReadingColumns are the canonical readings CSV columns; ReadingRequired must be present in the header, and at
// least one of ReadingQuantities (a file of speed stations may have no count column at all).
var (
	ReadingColumns    = []string{"observed_at", "intersection_id", "approach_id", "detector_id", "interval_s", "count", "occupancy_ratio", "speed_kmh"}
	ReadingRequired   = []string{"observed_at", "detector_id", "interval_s"}
	ReadingQuantities = []string{"count", "occupancy_ratio", "speed_kmh"}
)

// readingsCSV decodes the canonical readings CSV: header required, columns in any order, extra columns
// ignored. intersection_id and approach_id may be absent or empty (the topology knows the detector), as may
// occupancy_ratio and speed_kmh. A row needs at least one of count, occupancy_ratio and speed_kmh: an empty
// count with a speed or an occupancy is a reading without count (clean.Reading.NoCount, freeway speed stations);
// a row with none of the three is missing_value.
type readingsCSV struct {
	t                                                       *table
	at, inter, appr, det, interval, count, occupancy, speed int
}

// openTable reads a canonical CSV's header and checks that the required columns are there, and one of anyOf
// when given.
func openTable(rd *Reader, r io.Reader, required []string, anyOf ...string) (*table, error) {
	t := newTable(rd, r)
	rec, line, err := t.row()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("open %s: %w", rd.name, ErrEmpty)
	}
	if err != nil {
		return nil, err
	}
	if err := t.header(rec, line, required, anyOf...); err != nil {
		return nil, err
	}
	return t, nil
}

func newReadingsCSV(rd *Reader, r io.Reader) (*readingsCSV, error) {
	t, err := openTable(rd, r, ReadingRequired, ReadingQuantities...)
	if err != nil {
		return nil, err
	}
	return &readingsCSV{t: t, at: t.use("observed_at"), inter: t.use("intersection_id"), appr: t.use("approach_id"),
		det: t.use("detector_id"), interval: t.use("interval_s"), count: t.use("count"),
		occupancy: t.use("occupancy_ratio"), speed: t.use("speed_kmh")}, nil
}

func cell(rec []string, i int) string {
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(rec[i])
}

func (d *readingsCSV) next() (Record, error) {
	for {
		rec, line, err := d.t.dataRow(1)
		if err != nil {
			return Record{}, err
		}
		if r, ok := d.parse(rec, line); ok {
			return Record{Reading: &r, Line: line}, nil
		}
	}
}

func (d *readingsCSV) parse(rec []string, line int) (clean.Reading, bool) {
	bad := func(field string, reason Reason, format string, args ...any) (clean.Reading, bool) {
		d.t.rd.report(line, field, reason, 1, format, args...)
		return clean.Reading{}, false
	}
	r := clean.Reading{IntersectionID: cell(rec, d.inter), ApproachID: cell(rec, d.appr), DetectorID: cell(rec, d.det)}
	for _, f := range []struct{ name, v string }{{"intersection_id", r.IntersectionID}, {"approach_id", r.ApproachID}, {"detector_id", r.DetectorID}} {
		if err := checkID(f.v); err != nil {
			return bad(f.name, ReasonBadID, "%v", err)
		}
	}
	if r.DetectorID == "" {
		return bad("detector_id", ReasonMissingValue, "detector_id is empty")
	}
	at := cell(rec, d.at)
	if at == "" {
		return bad("observed_at", ReasonMissingValue, "observed_at is empty")
	}
	start, err := time.Parse(time.RFC3339Nano, at)
	if err != nil || start.IsZero() { // the zero time means "unset" on the wire
		return bad("observed_at", ReasonBadTime, "%q is not an RFC 3339 time such as 2026-11-30T07:55:00Z", at)
	}
	r.Start = start.UTC()
	iv := cell(rec, d.interval)
	n, err := strconv.ParseUint(iv, 10, 32)
	if err != nil || n == 0 {
		return bad("interval_s", ReasonBadNumber, "%q is not a positive whole number of seconds", iv)
	}
	r.IntervalS = int(n)
	c, occ, spd := cell(rec, d.count), cell(rec, d.occupancy), cell(rec, d.speed)
	switch {
	case c == "" && occ == "" && spd == "":
		return bad("count", ReasonMissingValue, "count, occupancy_ratio and speed_kmh are all empty (a reading needs at least one)")
	case c == "":
		r.NoCount = true // a speed- or occupancy-only reading
	default:
		if r.Count, err = parseNumber(c); err != nil {
			return bad("count", ReasonBadNumber, "%v", err)
		}
		if r.FlowVPH = r.Count * 3600 / float64(r.IntervalS); math.IsInf(r.FlowVPH, 0) {
			return bad("count", ReasonBadNumber, "count %g in %d s overflows the flow in veh/h", r.Count, r.IntervalS)
		}
	}
	if occ != "" {
		if r.Occupancy, err = parseNumber(occ); err != nil {
			return bad("occupancy_ratio", ReasonBadNumber, "%v", err)
		}
		r.HasOccupancy = true
	}
	if spd != "" {
		if r.SpeedKMH, err = parseNumber(spd); err != nil {
			return bad("speed_kmh", ReasonBadNumber, "%v", err)
		}
		r.HasSpeed = true
	}
	return r, true
}

// WeatherColumns are the canonical weather CSV columns; WeatherRequired must be present in the header.
var (
	WeatherColumns  = []string{"observed_at", "station_id", "temperature_c", "precipitation_mm_h", "snow_mm_h", "cloud_cover_ratio", "visibility_m", "condition"}
	WeatherRequired = []string{"observed_at", "station_id"}
)

// weatherCSV decodes the canonical weather CSV; every column but observed_at and station_id may be absent or
// empty (not measured).
type weatherCSV struct {
	t                                                      *table
	at, station, temp, precip, snow, cloud, vis, condition int
}

func newWeatherCSV(rd *Reader, r io.Reader) (*weatherCSV, error) {
	t, err := openTable(rd, r, WeatherRequired)
	if err != nil {
		return nil, err
	}
	return &weatherCSV{t: t, at: t.use("observed_at"), station: t.use("station_id"), temp: t.use("temperature_c"),
		precip: t.use("precipitation_mm_h"), snow: t.use("snow_mm_h"), cloud: t.use("cloud_cover_ratio"),
		vis: t.use("visibility_m"), condition: t.use("condition")}, nil
}

func (d *weatherCSV) next() (Record, error) {
	for {
		rec, line, err := d.t.dataRow(1)
		if err != nil {
			return Record{}, err
		}
		if w, ok := d.parse(rec, line); ok {
			return Record{Weather: &w, Line: line}, nil
		}
	}
}

func (d *weatherCSV) parse(rec []string, line int) (clean.Weather, bool) {
	bad := func(field string, reason Reason, format string, args ...any) (clean.Weather, bool) {
		d.t.rd.report(line, field, reason, 1, format, args...)
		return clean.Weather{}, false
	}
	w := clean.Weather{StationID: cell(rec, d.station), Condition: cell(rec, d.condition)}
	if w.StationID == "" {
		return bad("station_id", ReasonMissingValue, "station_id is empty")
	}
	if err := checkID(w.StationID); err != nil {
		return bad("station_id", ReasonBadID, "%v", err)
	}
	at := cell(rec, d.at)
	if at == "" {
		return bad("observed_at", ReasonMissingValue, "observed_at is empty")
	}
	obs, err := time.Parse(time.RFC3339Nano, at)
	if err != nil || obs.IsZero() { // the zero time means "unset" on the wire
		return bad("observed_at", ReasonBadTime, "%q is not an RFC 3339 time such as 2026-11-30T07:00:00Z", at)
	}
	w.ObservedAt = obs.UTC()
	for _, f := range []struct {
		name string
		col  int
		v    *float64
		has  *bool
	}{
		{"temperature_c", d.temp, &w.TemperatureC, &w.HasTemperature},
		{"precipitation_mm_h", d.precip, &w.PrecipitationMMH, &w.HasPrecipitation},
		{"snow_mm_h", d.snow, &w.SnowMMH, &w.HasSnow},
		{"cloud_cover_ratio", d.cloud, &w.CloudCoverRatio, &w.HasCloudCover},
		{"visibility_m", d.vis, &w.VisibilityM, &w.HasVisibility},
	} {
		s := cell(rec, f.col)
		if s == "" {
			continue
		}
		if *f.v, err = parseNumber(s); err != nil {
			return bad(f.name, ReasonBadNumber, "%v", err)
		}
		*f.has = true
	}
	return w, true
}

// AddCSVDetectors reads a canonical readings CSV and adds every row's detector placement (intersection_id,
// approach_id, detector_id, interval_s) to b, for `greenwave topology import --format csv`. Only those cells are
// read: a row whose count, time or speed cannot be read still says where its detector is (a row with no
// quantity at all, say), so its detector is placed even though replay and eval skip the reading. A row whose ids
// or interval_s cannot be read is skipped and reported as the reading decoder would (Options.OnProblem, counted
// in the returned Stats, whose Readings counts the rows that placed a detector). An error is an unreadable
// header or stream, never a bad row.
func AddCSVDetectors(b *topology.ReadingsBuilder, r io.Reader, name string, opts Options) (Stats, error) {
	rd := newReader(name, opts)
	t, err := openTable(rd, r, ReadingRequired)
	if err != nil {
		return Stats{}, err
	}
	inter, appr, det, interval := t.use("intersection_id"), t.use("approach_id"), t.use("detector_id"), t.use("interval_s")
	for {
		rec, line, err := t.dataRow(1)
		if errors.Is(err, io.EOF) {
			return rd.Stats(), nil
		}
		if err != nil {
			return rd.Stats(), err
		}
		d := topology.DetectorSeen{Intersection: cell(rec, inter), Approach: cell(rec, appr), Detector: cell(rec, det), File: name, Line: line}
		bad := false
		for _, f := range []struct{ name, v string }{{"intersection_id", d.Intersection}, {"approach_id", d.Approach}, {"detector_id", d.Detector}} {
			if err := checkID(f.v); err != nil && !bad {
				rd.report(line, f.name, ReasonBadID, 1, "%v", err)
				bad = true
			}
		}
		iv := cell(rec, interval)
		n, err := strconv.ParseUint(iv, 10, 32)
		switch {
		case bad:
		case d.Detector == "":
			rd.report(line, "detector_id", ReasonMissingValue, 1, "detector_id is empty")
		case err != nil || n == 0:
			rd.report(line, "interval_s", ReasonBadNumber, 1, "%q is not a positive whole number of seconds", iv)
		default:
			d.IntervalS = int(n)
			rd.stats.Readings++
			b.Add(d)
		}
	}
}
