package evaluate

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// The Numenta Anomaly Benchmark realTraffic files (MnDOT detectors, Jul–Sep 2015) are `timestamp,value` CSVs,
// one series per file: speed_<detector>.csv in mph and occupancy_<detector>.csv in percent. ReadNAB turns one
// into readings of its own one-detector intersection (NABTopology), so that the cleaner's flags can be compared
// with the benchmark's labelled anomaly windows (NABCleanReport).
//
// Mapping: every row is a reading of detector "<file stem>" (approach "A", intersection "nab-<file stem>") with
// IntervalS NABIntervalS at the row's timestamp, no count (clean.Reading.NoCount: the files carry no volume) and the value converted
// to the canonical unit: speed mph × 1.609344 → speed_kmh, occupancy % ÷ 100 → occupancy_ratio. The samples are
// 5 minutes apart at irregular minutes, so a 60 s interval and window keep every sample in a window of its own
// without straddling a boundary. Timestamps carry no zone; they are read as UTC, like the label windows, so both
// are on one clock.
const (
	// NABIntervalS is the interval and window given to NAB samples.
	NABIntervalS = 60
	// NABTimeLayout is the layout of NAB timestamps.
	NABTimeLayout = "2006-01-02 15:04:05"
	// NABApproachID is the one approach of a NAB intersection.
	NABApproachID = "A"
	// mphToKMH converts miles per hour to km/h (international mile).
	mphToKMH = 1.609344
)

// NABSeries is one NAB file read as readings.
type NABSeries struct {
	// Name is the file's key in the label file: "realTraffic/<base name>".
	Name string
	// Detector is the file stem ("speed_6005"); the intersection is "nab-" + Detector.
	Detector string
	// Kind is "speed" or "occupancy".
	Kind     string
	Readings []clean.Reading
}

// IntersectionID is the series' intersection in NABTopology.
func (s NABSeries) IntersectionID() string { return "nab-" + s.Detector }

// LineError is a row of a data file that cannot be read: File and Line say where.
type LineError struct {
	File string
	Line int
	Msg  string
}

// Error implements error.
func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// ReadNAB reads one NAB realTraffic file. name is the file name (its base name gives the series and the kind:
// speed_* or occupancy_*; travel-time series have no reading field and are refused). Every bad row is
// reported as a *LineError (joined), never skipped silently.
func ReadNAB(r io.Reader, name string) (NABSeries, error) {
	base := path.Base(strings.ReplaceAll(name, "\\", "/"))
	stem := strings.TrimSuffix(base, path.Ext(base))
	s := NABSeries{Name: "realTraffic/" + base, Detector: stem}
	var conv func(float64, *clean.Reading)
	switch {
	case strings.HasPrefix(stem, "speed_"):
		s.Kind = "speed"
		conv = func(v float64, rd *clean.Reading) { rd.SpeedKMH, rd.HasSpeed = v*mphToKMH, true }
	case strings.HasPrefix(stem, "occupancy_"):
		s.Kind = "occupancy"
		conv = func(v float64, rd *clean.Reading) { rd.Occupancy, rd.HasOccupancy = v/100, true }
	default:
		return s, fmt.Errorf("%s: a NAB series must be speed_*.csv (mph) or occupancy_*.csv (%%); %q has no reading field", name, base)
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	var errs []error
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				errs = append(errs, &LineError{File: name, Line: pe.Line, Msg: pe.Err.Error()})
				continue
			}
			return s, fmt.Errorf("read %s: %w", name, err)
		}
		if line == 1 {
			if len(rec) < 2 || strings.TrimPrefix(rec[0], "\ufeff") != "timestamp" || rec[1] != "value" {
				return s, &LineError{File: name, Line: 1, Msg: fmt.Sprintf("header %q, want timestamp,value", rec)}
			}
			continue
		}
		if len(rec) != 2 {
			errs = append(errs, &LineError{File: name, Line: line, Msg: fmt.Sprintf("%d fields, want 2", len(rec))})
			continue
		}
		at, err := time.Parse(NABTimeLayout, rec[0])
		if err != nil {
			errs = append(errs, &LineError{File: name, Line: line, Msg: fmt.Sprintf("timestamp %q is not %s", rec[0], NABTimeLayout)})
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[1]), 64)
		if err != nil {
			errs = append(errs, &LineError{File: name, Line: line, Msg: fmt.Sprintf("value %q is not a number", rec[1])})
			continue
		}
		rd := clean.Reading{IntersectionID: s.IntersectionID(), ApproachID: NABApproachID, DetectorID: stem, Start: at, IntervalS: NABIntervalS, NoCount: true}
		conv(v, &rd)
		s.Readings = append(s.Readings, rd)
		if len(errs) > 50 {
			break
		}
	}
	return s, errors.Join(errs...)
}

// NABTopology returns one intersection per series, window NABIntervalS, with one approach "A" holding the one
// detector. Capacity (one lane at 1 800 veh/h) only scales flow features, which NAB series leave at zero. The
// intersections have no phases: they are for the cleaner and the learners, never for signal plans.
func NABTopology(series []NABSeries) topology.Topology {
	t := topology.Topology{Version: topology.SchemaVersion, Revision: "nab-realtraffic"}
	for _, s := range series {
		t.Intersections = append(t.Intersections, topology.Intersection{ID: s.IntersectionID(), WindowS: NABIntervalS,
			Approaches: []topology.Approach{{ID: NABApproachID, Lanes: 1, SaturationFlowVPHPerLane: 1800, Detectors: []string{s.Detector}}}})
	}
	return t
}

// Window is a closed interval [Start, End] of labelled anomaly.
type Window struct{ Start, End time.Time }

// Contains reports whether t lies in the window.
func (w Window) Contains(t time.Time) bool { return !t.Before(w.Start) && !t.After(w.End) }

// ParseNABWindows decodes NAB's combined_windows.json: series key → list of [start, end] timestamps
// ("2015-09-16 00:44:00.000000").
func ParseNABWindows(r io.Reader) (map[string][]Window, error) {
	var raw map[string][][]string
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return nil, fmt.Errorf("decode anomaly windows: %w", err)
	}
	out := make(map[string][]Window, len(raw))
	for key, ws := range raw {
		for i, w := range ws {
			if len(w) != 2 {
				return nil, fmt.Errorf("anomaly windows %q[%d]: %d timestamps, want 2", key, i, len(w))
			}
			var tt [2]time.Time
			for j, s := range w {
				t, err := time.Parse("2006-01-02 15:04:05.999999", s)
				if err != nil {
					return nil, fmt.Errorf("anomaly windows %q[%d]: %w", key, i, err)
				}
				tt[j] = t
			}
			if tt[1].Before(tt[0]) {
				return nil, fmt.Errorf("anomaly windows %q[%d]: ends before it starts", key, i)
			}
			out[key] = append(out[key], Window{Start: tt[0], End: tt[1]})
		}
	}
	return out, nil
}

// SeriesFlags is the clean report of one NAB series.
type SeriesFlags struct {
	Name string
	// Points and PointsInside count the series' readings, all and inside a labelled window; Windows is the
	// number of labelled windows.
	Points, PointsInside, Windows int
	// FlaggedInside and FlaggedOutside count readings the cleaner rejected or flagged as outliers.
	FlaggedInside, FlaggedOutside int
	// ByReason counts the flags by reason ("outlier" or a clean.Reason).
	ByReason map[string]int
}

// NABCleanReport counts, per series, the readings the cleaner flagged (Report.Flags, Config.Flags set) inside
// and outside the series' labelled anomaly windows. A window-level outlier flag counts its Count readings at the
// window's start; with one reading per window (NABIntervalS) that is the reading's own time.
func NABCleanReport(series []NABSeries, windows map[string][]Window, flags []Flag) []SeriesFlags {
	byInt := map[string][]Flag{}
	for _, f := range flags {
		byInt[f.IntersectionID] = append(byInt[f.IntersectionID], f)
	}
	out := make([]SeriesFlags, 0, len(series))
	for _, s := range series {
		ws := windows[s.Name]
		inside := func(t time.Time) bool {
			for _, w := range ws {
				if w.Contains(t) {
					return true
				}
			}
			return false
		}
		sf := SeriesFlags{Name: s.Name, Points: len(s.Readings), Windows: len(ws), ByReason: map[string]int{}}
		for _, r := range s.Readings {
			if inside(r.Start) {
				sf.PointsInside++
			}
		}
		for _, f := range byInt[s.IntersectionID()] {
			if inside(f.Time) {
				sf.FlaggedInside += f.Count
			} else {
				sf.FlaggedOutside += f.Count
			}
			sf.ByReason[f.Reason] += f.Count
		}
		out = append(out, sf)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
