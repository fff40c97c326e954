package topology

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Edge is one row of an adjacency CSV: a link between two intersections or detectors of a readings file.
type Edge struct {
	// From and To are intersection IDs or detector IDs (see ReadingsBuilder.Topology for how they resolve).
	From, To string
	// Weight is the row's weight (default 1). It is checked (finite, not negative) and kept for other tools; the
	// topology has no use for it.
	Weight float64
	// TravelTimeS is the platoon travel time from From to To in seconds; HasTravelTime is false when the cell is
	// absent or empty.
	TravelTimeS   float64
	HasTravelTime bool
	// Directed is true when the row says traffic flows only From → To; otherwise the link goes both ways.
	Directed bool
	// Line is the row's line in the file.
	Line int
}

// AdjacencyColumns are the adjacency CSV columns; from and to are required, the others optional.
var AdjacencyColumns = []string{"from", "to", "weight", "travel_time_s", "directed"}

// AdjacencyError lists every bad row of an adjacency CSV as "file:line: problem".
type AdjacencyError struct {
	Problems []string
}

// Error implements error.
func (e *AdjacencyError) Error() string {
	return fmt.Sprintf("adjacency (%d problems):\n  - %s", len(e.Problems), strings.Join(e.Problems, "\n  - "))
}

// maxImportProblems bounds how many line problems an import collects before it gives up.
const maxImportProblems = 50

// ParseAdjacency decodes an adjacency CSV: a header naming at least the columns from and to (any order, also
// weight, travel_time_s and directed; other columns are ignored), then one link per row. weight defaults to 1
// and must be a finite number ≥ 0; travel_time_s, when given, a duration in 0..MaxTravelTimeS; directed is
// true/false/1/0/yes/no (any case), empty meaning false. IDs are trimmed and must be non-empty, printable and
// free of '/' and white space; a row linking an ID to itself is an error. Blank lines are skipped; a UTF-8 BOM
// is ignored. Every bad row is reported as "name:line: …" in an *AdjacencyError. It does no I/O beyond r.
func ParseAdjacency(r io.Reader, name string) ([]Edge, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read adjacency %s: %w", name, err)
	}
	cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff"))))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	var problems []string
	problem := func(line int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s:%d: %s", name, line, fmt.Sprintf(format, args...)))
	}
	col := map[string]int{}
	var edges []Edge
	header := false
	for len(problems) < maxImportProblems {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return nil, fmt.Errorf("read adjacency %s: %w", name, err)
			}
			problem(pe.StartLine, "%v", pe.Err)
			if !header {
				break
			}
			continue
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if !header {
			header = true
			for i, f := range rec {
				c := strings.TrimSpace(f)
				if _, dup := col[c]; dup && c != "" {
					problem(line, "column %q appears twice", c)
				}
				col[c] = i
			}
			for _, c := range []string{"from", "to"} {
				if _, ok := col[c]; !ok {
					problem(line, "header lacks column %q (want from,to[,weight][,travel_time_s][,directed])", c)
				}
			}
			if len(problems) > 0 {
				break
			}
			continue
		}
		if e, msg := parseEdge(rec, col); msg != "" {
			problem(line, "%s", msg)
		} else {
			e.Line = line
			edges = append(edges, e)
		}
	}
	if !header && len(problems) == 0 {
		problem(1, "empty file: no header row")
	}
	if len(problems) > 0 {
		return nil, &AdjacencyError{Problems: problems}
	}
	return edges, nil
}

// parseEdge decodes one data row; a non-empty message says what is wrong with it.
func parseEdge(rec []string, col map[string]int) (Edge, string) {
	get := func(c string) (string, bool) {
		i, ok := col[c]
		if !ok {
			return "", false
		}
		if i >= len(rec) {
			return "", true
		}
		return strings.TrimSpace(rec[i]), true
	}
	e := Edge{Weight: 1}
	e.From, _ = get("from")
	e.To, _ = get("to")
	for _, id := range []struct{ name, v string }{{"from", e.From}, {"to", e.To}} {
		if id.v == "" {
			return e, id.name + " is empty"
		}
		if strings.ContainsAny(id.v, "/ \t\r\n") || !isPrintable(id.v) {
			return e, fmt.Sprintf("%s %q must be printable without '/' or white space", id.name, id.v)
		}
	}
	if e.From == e.To {
		return e, fmt.Sprintf("links %q to itself", e.From)
	}
	if s, ok := get("weight"); ok && s != "" {
		w, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
			return e, fmt.Sprintf("weight %q is not a finite number ≥ 0", s)
		}
		e.Weight = w
	}
	if s, ok := get("travel_time_s"); ok && s != "" {
		tt, err := strconv.ParseFloat(s, 64)
		if err != nil || !(tt >= 0 && tt <= MaxTravelTimeS) {
			return e, fmt.Sprintf("travel_time_s %q is not a duration in 0..%d s", s, MaxTravelTimeS)
		}
		e.TravelTimeS, e.HasTravelTime = tt, true
	}
	if s, ok := get("directed"); ok && s != "" {
		switch strings.ToLower(s) {
		case "true", "1", "yes":
			e.Directed = true
		case "false", "0", "no":
		default:
			return e, fmt.Sprintf("directed %q: want true or false", s)
		}
	}
	return e, ""
}
