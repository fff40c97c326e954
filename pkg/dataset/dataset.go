// Package dataset reads traffic data files into the cleaner's domain types, for `greenwave replay` and
// `greenwave eval`: anything one command can read, the other can.
//
// Formats (see Open):
//
//   - "csv": the canonical readings CSV of DESIGN.md (OpenWeather reads the canonical weather CSV);
//   - "metro": the UCI Metro Interstate Traffic Volume file (hourly I-94 volume and weather, one site);
//   - "scats": the VicRoads SCATS volume extract of the City of Boroondara (96 fifteen-minute volumes per row).
//
// Every format yields exactly what the canonical CSV would for the same data: readings with a detector, an
// interval start (UTC), an interval length, a count and the matching flow; weather in canonical units.
// Record IDs are left empty: the collector derives the deterministic id detector@interval-start, so a resent
// reading is recognised as a replay downstream.
//
// A row that cannot be read is never guessed: it is skipped, reported as a Problem with its file name and line
// number (Options.OnProblem, Reader.Problems), and counted by reason (Reader.Stats). Values that parse but are
// physically impossible (a temperature of 0 K, a negative count) are passed through in canonical units: judging
// them is the collector's and the cleaner's job, and they report it with their own reasons.
//
// The package is pure apart from reading the io.Reader it is given, and streams: memory does not grow with the
// file, except for the small per-format state documented on each adapter.
package dataset

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	// The adapters interpret local times in named zones; embedding the zone database keeps that independent
	// of the machine's /usr/share/zoneinfo (minimal containers have none).
	_ "time/tzdata"

	"github.com/greenwave-city/greenwave/pkg/clean"
)

// The formats Open accepts.
const (
	FormatCSV   = "csv"
	FormatMetro = "metro"
	FormatSCATS = "scats"
)

// Formats lists the formats Open accepts, for help texts.
func Formats() []string { return []string{FormatCSV, FormatMetro, FormatSCATS} }

// Record is one reading or one weather observation read from a file: exactly one of Reading and Weather is set.
type Record struct {
	Reading *clean.Reading
	Weather *clean.Weather
	// Line is the line of the file the record comes from (the first line of the hour's rows for Metro).
	Line int
}

// Time returns the record's event time: the reading's interval start or the weather observation time.
func (r Record) Time() time.Time {
	if r.Reading != nil {
		return r.Reading.Start
	}
	if r.Weather != nil {
		return r.Weather.ObservedAt
	}
	return time.Time{}
}

// Reason classifies a Problem. The set is fixed so that counts by reason are comparable between runs.
type Reason string

// The problem reasons.
const (
	// ReasonMalformedCSV: the CSV syntax is broken (for example a stray quote); the row is skipped.
	ReasonMalformedCSV Reason = "malformed_csv"
	// ReasonShortRow: the row has fewer fields than the header names.
	ReasonShortRow Reason = "short_row"
	// ReasonMissingValue: a required cell is empty.
	ReasonMissingValue Reason = "missing_value"
	// ReasonBadTime: a time or date cell does not parse.
	ReasonBadTime Reason = "bad_time"
	// ReasonBadNumber: a numeric cell is not a finite decimal number (or interval_s not a positive integer).
	ReasonBadNumber Reason = "bad_number"
	// ReasonBadID: an id cell holds characters ids cannot contain (white space inside, '/', control characters).
	ReasonBadID Reason = "bad_id"
	// ReasonNonexistentLocalTime: a local time that the clock skipped (the hour a daylight-saving change
	// removes); there is no instant to give the value.
	ReasonNonexistentLocalTime Reason = "nonexistent_local_time"
	// ReasonConflictingRepeat: Metro repeats an hour with a different traffic volume than its first row.
	ReasonConflictingRepeat Reason = "conflicting_repeat"
	// ReasonOutOfOrder: a Metro row earlier than an hour already emitted.
	ReasonOutOfOrder Reason = "out_of_order"
	// ReasonDuplicateRow: a SCATS row for a (site, location, date) already read.
	ReasonDuplicateRow Reason = "duplicate_row"
	// ReasonSharedLocation: a SCATS row of a second detector whose Location string another detector of the
	// same site already uses (the topology has one detector per location).
	ReasonSharedLocation Reason = "shared_location"
)

// Reasons lists every reason in a fixed order.
func Reasons() []Reason {
	return []Reason{ReasonMalformedCSV, ReasonShortRow, ReasonMissingValue, ReasonBadTime, ReasonBadNumber, ReasonBadID,
		ReasonNonexistentLocalTime, ReasonConflictingRepeat, ReasonOutOfOrder, ReasonDuplicateRow, ReasonSharedLocation}
}

// Problem is a row (or a cell of a row) that was skipped.
type Problem struct {
	// File is the name given to Open; Line the 1-based line of the row.
	File string
	Line int
	// Field is the column concerned ("" for the whole row).
	Field  string
	Reason Reason
	Detail string
	// Skipped is how many records the problem cost: a SCATS row is 96 readings, a Metro row a reading and a
	// weather observation; 0 when nothing was lost (a repeated Metro row whose hour is already read); 1 for
	// broken CSV syntax, whose content is unknown.
	Skipped int
}

// String formats the problem as "file:line: field: detail (reason)".
func (p Problem) String() string {
	field := ""
	if p.Field != "" {
		field = p.Field + ": "
	}
	return fmt.Sprintf("%s:%d: %s%s (%s)", p.File, p.Line, field, p.Detail, p.Reason)
}

// Stats counts what a Reader has read so far.
type Stats struct {
	// Rows is the number of data rows read (header rows excluded).
	Rows int
	// Readings and Weather count the records returned by Next.
	Readings, Weather int
	// MergedRows counts Metro rows that repeated an hour already read with the same volume (several weather
	// descriptions for one hour): they add no record.
	MergedRows int
	// Problems counts problems by reason; SkippedRecords sums their Problem.Skipped.
	Problems       map[Reason]int
	SkippedRecords int
}

// MaxRetainedProblems bounds the problems Reader.Problems keeps; Options.OnProblem and Stats see every one.
const MaxRetainedProblems = 1000

// Options tune a Reader. The zero value is ready to use.
type Options struct {
	// OnProblem, when set, is called with every problem as it is found, from the goroutine calling Next.
	OnProblem func(Problem)
	// Location overrides the time zone of the formats that carry local times (metro: MetroLocation, scats:
	// SCATSLocation). Canonical CSV times carry their offset and ignore it.
	Location *time.Location
}

// Source yields records one at a time and io.EOF at the end. *Reader implements it.
type Source interface {
	Next() (Record, error)
}

// decoder is one format's row reader. next returns the next record, io.EOF at the end, or a fatal error;
// problems go through the reader's report function.
type decoder interface {
	next() (Record, error)
}

// Reader reads one file. Not safe for concurrent use.
type Reader struct {
	name     string
	dec      decoder
	opts     Options
	stats    Stats
	problems []Problem
	err      error
}

// Open returns a Reader of r in the given format (FormatCSV, FormatMetro or FormatSCATS). name is used in
// problems and errors (usually the file name). Open reads the header: a file whose header does not fit the
// format is an error naming the missing columns. The caller closes r after the last Next.
func Open(format string, r io.Reader, name string, opts Options) (*Reader, error) {
	rd := newReader(name, opts)
	var err error
	switch format {
	case FormatCSV:
		rd.dec, err = newReadingsCSV(rd, r)
	case FormatMetro:
		rd.dec, err = newMetro(rd, r)
	case FormatSCATS:
		rd.dec, err = newSCATS(rd, r)
	default:
		return nil, fmt.Errorf("open %s: unknown format %q (want one of %q)", name, format, Formats())
	}
	if err != nil {
		return nil, err
	}
	return rd, nil
}

// OpenWeather returns a Reader of the canonical weather CSV
// (observed_at,station_id,temperature_c,precipitation_mm_h,snow_mm_h,cloud_cover_ratio,visibility_m,condition).
func OpenWeather(r io.Reader, name string, opts Options) (*Reader, error) {
	rd := newReader(name, opts)
	var err error
	if rd.dec, err = newWeatherCSV(rd, r); err != nil {
		return nil, err
	}
	return rd, nil
}

func newReader(name string, opts Options) *Reader {
	return &Reader{name: name, opts: opts, stats: Stats{Problems: map[Reason]int{}}}
}

// Name returns the name given to Open.
func (r *Reader) Name() string { return r.name }

// Next returns the next record, io.EOF after the last one, or an error reading the underlying reader (after
// which every call returns that error). Problems do not end the reading.
func (r *Reader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	rec, err := r.dec.next()
	if err != nil {
		r.err = err
		return Record{}, err
	}
	if rec.Reading != nil {
		r.stats.Readings++
	} else {
		r.stats.Weather++
	}
	return rec, nil
}

// Stats returns the counts so far. The Problems map is a copy.
func (r *Reader) Stats() Stats {
	s := r.stats
	s.Problems = make(map[Reason]int, len(r.stats.Problems))
	for k, v := range r.stats.Problems {
		s.Problems[k] = v
	}
	return s
}

// Problems returns the first MaxRetainedProblems problems found so far, in file order.
func (r *Reader) Problems() []Problem { return append([]Problem(nil), r.problems...) }

// report records a problem.
func (r *Reader) report(line int, field string, reason Reason, skipped int, format string, args ...any) {
	p := Problem{File: r.name, Line: line, Field: field, Reason: reason, Detail: fmt.Sprintf(format, args...), Skipped: skipped}
	r.stats.Problems[reason]++
	r.stats.SkippedRecords += skipped
	if len(r.problems) < MaxRetainedProblems {
		r.problems = append(r.problems, p)
	}
	if r.opts.OnProblem != nil {
		r.opts.OnProblem(p)
	}
}

// HeaderError is a file whose header does not fit its format.
type HeaderError struct {
	File string
	Line int
	// Missing lists required columns the header lacks.
	Missing []string
	Detail  string
}

// Error implements error.
func (e *HeaderError) Error() string {
	if len(e.Missing) > 0 {
		return fmt.Sprintf("%s:%d: header lacks column(s) %q%s", e.File, e.Line, e.Missing, e.Detail)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Detail)
}

// ErrEmpty is returned by Open for a file with no header row.
var ErrEmpty = errors.New("empty file: no header row")

// stripBOM returns r without a leading UTF-8 byte order mark (spreadsheet exports often start with one).
func stripBOM(r io.Reader) io.Reader {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\ufeff")) {
		_, _ = br.Discard(3)
	}
	return br
}

// Merge returns a Source yielding the records of every source ordered by event time, ties going to the
// earlier argument. It expects each source in time order (a file out of order still yields every record, in a
// merged order that is only as sorted as its inputs). Merge reads one record ahead from each source; an error
// from any source ends the merge with that error.
func Merge(sources ...Source) Source {
	return &merged{sources: sources, heads: make([]*Record, len(sources)), done: make([]bool, len(sources))}
}

type merged struct {
	sources []Source
	heads   []*Record
	done    []bool
}

func (m *merged) Next() (Record, error) {
	best := -1
	for i, s := range m.sources {
		if m.heads[i] == nil && !m.done[i] {
			rec, err := s.Next()
			switch {
			case errors.Is(err, io.EOF):
				m.done[i] = true
			case err != nil:
				return Record{}, err
			default:
				m.heads[i] = &rec
			}
		}
		if m.heads[i] != nil && (best < 0 || m.heads[i].Time().Before(m.heads[best].Time())) {
			best = i
		}
	}
	if best < 0 {
		return Record{}, io.EOF
	}
	rec := *m.heads[best]
	m.heads[best] = nil
	return rec, nil
}
