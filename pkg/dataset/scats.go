package dataset

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// SCATS volume file constants.
const (
	// SCATSIntervalS is the counting interval of the V00..V95 columns.
	SCATSIntervalS = 900
	// SCATSSlots is the number of volume columns per row (V00 = 00:00–00:15 … V95 = 23:45–24:00).
	SCATSSlots = 96
	// SCATSLocation is the time zone of the Date column and the slots: the Boroondara controllers count on
	// Melbourne wall-clock time.
	SCATSLocation = topology.SCATSTimeZone
	// SCATSDateLayout is the Date column's layout (d/mm/yyyy; one- or two-digit day and month).
	SCATSDateLayout = "2/1/2006"
)

// scatsSlotColumns are V00..V95.
var scatsSlotColumns = func() []string {
	cols := make([]string, SCATSSlots)
	for k := range cols {
		cols[k] = fmt.Sprintf("V%02d", k)
	}
	return cols
}()

// scatsHFColumn identifies the physical detector behind a row; see scats.
const scatsHFColumn = "HF VicRoads Internal"

// scatsMaxHeaderLines bounds the search for the header row naming the columns (the extract has a "Start Time"
// row above it).
const scatsMaxHeaderLines = 5

// scats melts each row (one approach-day) into SCATSSlots readings of SCATSIntervalS at Date + 15 min × k,
// Melbourne local time, for detector topology.SCATSDetectorID(site, location) of approach
// topology.SCATSApproachID(location) at intersection site (as written, leading zeros kept) — the ids
// topology.ImportSCATS gives, so replayed readings match an imported topology.
//
// Slots whose wall-clock time does not exist (02:00–02:45 on 29 October 2006, when daylight saving started)
// are skipped with one ReasonNonexistentLocalTime problem per row. An empty or non-numeric volume skips its slot.
//
// Rows of one Location string from two physical detectors (in the October 2006 extract, site 4335 "HIGH_ST NE of
// CHARLES_ST" has rows from "HF VicRoads Internal" 15722 and 5485 for every day): the topology has one
// detector per location, so the detector first seen for a (site, approach) owns the detector id and the
// other's rows are skipped as ReasonSharedLocation, never summed or interleaved. A second row for the same
// (site, approach, date) from the same detector is ReasonDuplicateRow. Without the HF column every repeat of a
// (site, approach, date) is a duplicate.
//
// Readings come in event-time order (see next), which needs the whole file: memory grows with the file, about
// 1 kB per row (4 MB for the extract). Problems are therefore all reported before the first reading.
type scats struct {
	t                    *table
	zone                 *time.Location
	site, location, date int
	hf                   int // -1 without the column
	slots                [SCATSSlots]int
	owner                map[string]scatsOwner // site+approach → the detector that owns the id
	seen                 map[string]int        // site+approach+date → line
	rows                 []scatsRow            // every accepted row, read at the first next
	loaded               bool
	day, slot, row       int // emission position: day group [day, dayEnd), slot k, row within the group
	dayEnd               int
}

// scatsRow is one accepted row, compact (about 1 kB) until its readings are emitted.
type scatsRow struct {
	line                     int
	site, approach, detector string
	date                     time.Time // the row's date at midnight UTC (a sort key, not an instant)
	year, day                int
	month                    time.Month
	count                    [SCATSSlots]float64
	valid                    [SCATSSlots]bool
}

type scatsOwner struct {
	hf   string
	line int
}

func newSCATS(rd *Reader, r io.Reader) (*scats, error) {
	loc, err := location(rd.opts.Location, SCATSLocation)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", rd.name, err)
	}
	t := newTable(rd, r)
	required := append([]string{"SCATS Number", "Location", "Date"}, scatsSlotColumns...)
	for {
		rec, line, err := t.row()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("open %s: %w", rd.name, ErrEmpty)
		}
		if err != nil {
			return nil, err
		}
		if !hasField(rec, "SCATS Number") {
			if line >= scatsMaxHeaderLines {
				return nil, &HeaderError{File: rd.name, Line: line, Detail: fmt.Sprintf(
					"no header row naming the column \"SCATS Number\" in the first %d lines", scatsMaxHeaderLines)}
			}
			continue
		}
		if err := t.header(rec, line, required); err != nil {
			return nil, err
		}
		break
	}
	d := &scats{t: t, zone: loc, site: t.use("SCATS Number"), location: t.use("Location"), date: t.use("Date"), hf: t.use(scatsHFColumn),
		owner: map[string]scatsOwner{}, seen: map[string]int{}}
	for k, c := range scatsSlotColumns {
		d.slots[k] = t.use(c)
	}
	return d, nil
}

func hasField(rec []string, name string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) == name {
			return true
		}
	}
	return false
}

// next emits readings in event-time order: day by day, slot by slot, rows of a day in file order. The
// extract is ordered by site, location and date, so file order would run each approach through the whole month
// before the next one starts, and the cleaner would reject every approach but an intersection's first as late.
// Sorting needs the whole file: the rows are buffered compactly (about 1 kB each, 4 MB for the extract).
func (d *scats) next() (Record, error) {
	if !d.loaded {
		if err := d.load(); err != nil {
			return Record{}, err
		}
	}
	for d.day < len(d.rows) {
		if d.dayEnd == d.day {
			d.dayEnd = d.day
			for d.dayEnd < len(d.rows) && d.rows[d.dayEnd].date.Equal(d.rows[d.day].date) {
				d.dayEnd++
			}
		}
		for d.slot < SCATSSlots {
			for d.day+d.row < d.dayEnd {
				r := &d.rows[d.day+d.row]
				d.row++
				if !r.valid[d.slot] {
					continue
				}
				at, _ := localTime(r.year, r.month, r.day, d.slot/4, (d.slot%4)*15, d.zone)
				v := r.count[d.slot]
				return Record{Line: r.line, Reading: &clean.Reading{IntersectionID: r.site, ApproachID: r.approach, DetectorID: r.detector,
					Start: at.UTC(), IntervalS: SCATSIntervalS, Count: v, FlowVPH: v * 3600 / SCATSIntervalS}}, nil
			}
			d.slot++
			d.row = 0
		}
		d.day, d.slot = d.dayEnd, 0
	}
	d.rows = nil
	return Record{}, io.EOF
}

// load reads every row, reporting problems in file order, and sorts the rows by date (stable: file order
// within a date).
func (d *scats) load() error {
	for {
		rec, line, err := d.t.dataRow(SCATSSlots)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		d.melt(rec, line)
	}
	sort.SliceStable(d.rows, func(i, j int) bool { return d.rows[i].date.Before(d.rows[j].date) })
	d.loaded = true
	return nil
}

// melt checks one row and buffers its valid slots.
func (d *scats) melt(rec []string, line int) {
	rd := d.t.rd
	site, loc := cell(rec, d.site), strings.Join(strings.Fields(cell(rec, d.location)), " ")
	if site == "" {
		rd.report(line, "SCATS Number", ReasonMissingValue, SCATSSlots, "SCATS Number is empty")
		return
	}
	if err := checkID(site); err != nil {
		rd.report(line, "SCATS Number", ReasonBadID, SCATSSlots, "%v", err)
		return
	}
	if loc == "" {
		rd.report(line, "Location", ReasonMissingValue, SCATSSlots, "Location is empty")
		return
	}
	ds := cell(rec, d.date)
	day, err := time.Parse(SCATSDateLayout, ds)
	if err != nil {
		rd.report(line, "Date", ReasonBadTime, SCATSSlots, "%q is not a date such as 1/10/2006 (d/mm/yyyy)", ds)
		return
	}
	approach := topology.SCATSApproachID(loc)
	key := site + "\x00" + approach
	if d.hf >= 0 {
		hf := cell(rec, d.hf)
		own, ok := d.owner[key]
		if !ok {
			d.owner[key] = scatsOwner{hf: hf, line: line}
		} else if own.hf != hf {
			rd.report(line, "Location", ReasonSharedLocation, SCATSSlots,
				"site %s %q: detector %s %q shares this location with detector %q (first at line %d), which owns detector id %s; skipped",
				site, loc, scatsHFColumn, hf, own.hf, own.line, topology.SCATSDetectorID(site, loc))
			return
		}
	}
	dayKey := key + "\x00" + day.Format("2006-01-02")
	if first, dup := d.seen[dayKey]; dup {
		rd.report(line, "Date", ReasonDuplicateRow, SCATSSlots, "site %s %q on %s was already read at line %d; skipped", site, loc, ds, first)
		return
	}
	d.seen[dayKey] = line

	row := scatsRow{line: line, site: site, approach: approach, detector: topology.SCATSDetectorID(site, loc),
		date: day, year: day.Year(), month: day.Month(), day: day.Day()}
	var gap []string
	for k, col := range d.slots {
		name := scatsSlotColumns[k]
		s := strings.TrimSpace(rec[col])
		if s == "" {
			rd.report(line, name, ReasonMissingValue, 1, "volume is empty")
			continue
		}
		v, err := parseNumber(s)
		if err == nil && math.IsInf(v*3600/SCATSIntervalS, 0) {
			err = fmt.Errorf("%q overflows the flow in veh/h", s)
		}
		if err != nil {
			rd.report(line, name, ReasonBadNumber, 1, "%v", err)
			continue
		}
		if _, ok := localTime(day.Year(), day.Month(), day.Day(), k/4, (k%4)*15, d.zone); !ok {
			gap = append(gap, name)
			continue
		}
		row.count[k], row.valid[k] = v, true
	}
	d.rows = append(d.rows, row)
	if len(gap) > 0 {
		rd.report(line, strings.Join(gap, ","), ReasonNonexistentLocalTime, len(gap),
			"%d slots are wall-clock times %s skipped on %s (daylight saving started); their values are ignored", len(gap), d.zone, ds)
	}
}
