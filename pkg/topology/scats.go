package topology

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// SCATS import defaults (SCATSOptions zero values select them). The Boroondara extract carries no geometry or
// timing, so these are typical Australian arterial values, not measurements.
const (
	SCATSDefaultLanes          = 2
	SCATSDefaultSaturationFlow = 1800 // veh/h of green per lane
	SCATSDefaultMinGreenS      = 8
	SCATSDefaultMaxGreenS      = 60
	SCATSDefaultPedestrianMinS = 10
	SCATSDefaultYellowS        = 4
	SCATSDefaultAllRedS        = 2
	SCATSDefaultLostTimeS      = 4
	SCATSDefaultMinCycleS      = 40
	SCATSDefaultMaxCycleS      = 150
	// SCATSDefaultFixedCycleS is the cycle the fixed-time fallback plan is spread over (equal greens).
	SCATSDefaultFixedCycleS = 90
	// SCATSWindowS is the window of imported intersections: the data are 15-minute volumes.
	SCATSWindowS = 900
)

// SCATSOptions tune ImportSCATS. The zero value selects every default.
type SCATSOptions struct {
	// Revision is written to Topology.Revision (default "scats-import").
	Revision string
	// TimeZone is written to Topology.TimeZone (default SCATSTimeZone, the zone the Boroondara counts are in).
	TimeZone string
	// WeatherStation is set on every intersection ("" for none).
	WeatherStation string
	// Lanes and SaturationFlowVPHPerLane apply to every approach (defaults 2 and 1800).
	Lanes                    int
	SaturationFlowVPHPerLane float64
	// OnSkip, when set, is told about every site that cannot become a signalised intersection (fewer than two
	// approaches: one approach cannot make the two phases a plan needs). Skipped sites are not in the result.
	OnSkip func(site, reason string)
}

// SCATSApproachID derives an approach ID from a SCATS "Location" such as "WARRIGAL_RD N of HIGH STREET_RD".
//
// The rule (the replay adapter for --format scats uses this same function, so detector IDs agree):
//
//   - split the location on white space and find the first word "of" (any case) that is preceded by at least
//     two words; the word before it is the direction and the words before that the road;
//   - when the direction is one of N, S, E, W, NE, NW, SE, SW (any case), the ID is DIRECTION_ROAD, for example
//     "N_WARRIGAL_RD";
//   - otherwise (no "of", or another word there) the ID is the whole location;
//   - the ID is upper-cased, and every run of characters other than A–Z, 0–9, '.', '_' and '-' becomes one '_'
//     ("HIGH STREET_RD" → "HIGH_STREET_RD"); leading and trailing '_' are trimmed; an empty result is "APPROACH".
//
// Locations that differ only in case or spacing therefore name the same approach. Including the road keeps the
// IDs of one site distinct in practice (two approaches with the same direction on the same road would collide:
// ImportSCATS reports that).
func SCATSApproachID(location string) string {
	words := strings.Fields(location)
	for i := 2; i < len(words); i++ {
		if !strings.EqualFold(words[i], "of") {
			continue
		}
		if dir := strings.ToUpper(words[i-1]); scatsAxis(dir) != axisUnknown {
			return sanitizeID(dir + "_" + strings.Join(words[:i-1], "_"))
		}
		break
	}
	return sanitizeID(location)
}

// SCATSDetectorID is the detector ID of a SCATS site's approach: "<site>-<SCATSApproachID(location)>", with the
// site number as written in the file (leading zeros kept) and surrounding white space trimmed, for example
// "0970-N_WARRIGAL_RD".
func SCATSDetectorID(site, location string) string {
	return strings.TrimSpace(site) + "-" + SCATSApproachID(location)
}

func sanitizeID(s string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToUpper(s) {
		ok := (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '.' || r == '_' || r == '-'
		if !ok || r == '_' {
			if !under {
				b.WriteByte('_')
			}
			under = true
			continue
		}
		under = false
		b.WriteRune(r)
	}
	id := strings.Trim(b.String(), "_")
	if id == "" {
		return "APPROACH"
	}
	return id
}

type axis int

const (
	axisUnknown axis = iota
	axisNS
	axisEW
)

// scatsAxis maps a direction token to its phase axis. Diagonals: NE and SW (one road axis) join the N/S phase,
// NW and SE (the perpendicular axis) the E/W phase, so the two directions of one diagonal road share a phase and
// a road crossing it gets the other.
func scatsAxis(dir string) axis {
	switch dir {
	case "N", "S", "NE", "SW":
		return axisNS
	case "E", "W", "NW", "SE":
		return axisEW
	}
	return axisUnknown
}

func scatsDirection(id string) string {
	dir, _, _ := strings.Cut(id, "_")
	return dir
}

// SCATSImportError lists every problem found in a SCATS file, each with its line number.
type SCATSImportError struct {
	Problems []string
}

// Error implements error.
func (e *SCATSImportError) Error() string {
	return fmt.Sprintf("scats import (%d problems):\n  - %s", len(e.Problems), strings.Join(e.Problems, "\n  - "))
}

// maxSCATSProblems bounds how many line problems are collected before the import gives up.
const maxSCATSProblems = 50

// ImportSCATS reads the VicRoads SCATS volume CSV (the Boroondara October 2006 extract: UTF-8 with an optional
// BOM, two header rows — the second names the columns — then one row per approach and day) and returns a
// validated topology with:
//
//   - one intersection per "SCATS Number", its ID the number as written (leading zeros kept), in order of first
//     appearance, named after the roads of its approaches ("HIGH_STREET_RD / WARRIGAL_RD"), window SCATSWindowS;
//   - one approach per distinct Location of the site, ID SCATSApproachID(location), with one detector
//     SCATSDetectorID(site, location), opts.Lanes lanes and opts.SaturationFlowVPHPerLane;
//   - two phases, "NS" (N, S, NE, SW approaches) and "EW" (E, W, NW, SE), each approach with an unknown direction
//     joining the phase with fewer approaches (NS on a tie); when every approach falls on one axis, one phase per
//     approach instead, named after it;
//   - the SCATSDefault* timings, cycle bounds SCATSDefaultMinCycleS..SCATSDefaultMaxCycleS, and a fixed-time
//     plan with equal greens spread over SCATSDefaultFixedCycleS (clamped to each phase's green range);
//   - no neighbour links: the file's coordinates say where a detector is, not which approaches platoons travel;
//   - time_zone opts.TimeZone (default SCATSTimeZone), the zone of the counts' dates and slots.
//
// Only the columns "SCATS Number" and "Location" are needed; volumes are ignored. Sites with fewer than two
// approaches are skipped (reported through opts.OnSkip). Every bad row is reported with its line number in a
// *SCATSImportError; a topology that fails Validate returns its *ValidationError. It does no I/O beyond r.
func ImportSCATS(r io.Reader, opts SCATSOptions) (Topology, error) {
	if opts.Revision == "" {
		opts.Revision = "scats-import"
	}
	if opts.TimeZone == "" {
		opts.TimeZone = SCATSTimeZone
	}
	if opts.Lanes == 0 {
		opts.Lanes = SCATSDefaultLanes
	}
	if opts.SaturationFlowVPHPerLane == 0 {
		opts.SaturationFlowVPHPerLane = SCATSDefaultSaturationFlow
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return Topology{}, fmt.Errorf("scats import: read: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true

	var problems []string
	problem := func(line int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("line %d: %s", line, fmt.Sprintf(format, args...)))
	}
	type site struct {
		id        string
		approach  map[string]string // approach ID → first location
		order     []string          // approach IDs in order of appearance
		firstLine int
	}
	var sites []*site
	byID := map[string]*site{}
	siteCol, locCol := -1, -1
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return Topology{}, fmt.Errorf("scats import: %w", err)
			}
			problem(pe.Line, "%v", pe.Err)
			if len(problems) >= maxSCATSProblems {
				break
			}
			continue
		}
		line, _ := cr.FieldPos(0)
		if siteCol < 0 {
			// The header row naming the columns; rows before it (the "Start Time" row) are skipped.
			for i, f := range rec {
				switch strings.TrimSpace(f) {
				case "SCATS Number":
					siteCol = i
				case "Location":
					locCol = i
				}
			}
			if siteCol < 0 || locCol < 0 {
				siteCol, locCol = -1, -1
				if line >= 2 {
					return Topology{}, &SCATSImportError{Problems: []string{fmt.Sprintf(
						"line %d: no header row naming the columns \"SCATS Number\" and \"Location\" in the first %d lines", line, line)}}
				}
			}
			continue
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) <= max(siteCol, locCol) {
			problem(line, "%d fields, want at least %d", len(rec), max(siteCol, locCol)+1)
			continue
		}
		num, loc := strings.TrimSpace(rec[siteCol]), strings.TrimSpace(rec[locCol])
		switch {
		case num == "":
			problem(line, "SCATS Number is empty")
		case strings.ContainsAny(num, "/ \t\r\n") || !isPrintable(num):
			problem(line, "SCATS Number %q must be printable without '/' or white space", num)
		case loc == "":
			problem(line, "Location is empty")
		default:
			s := byID[num]
			if s == nil {
				s = &site{id: num, approach: map[string]string{}, firstLine: line}
				byID[num] = s
				sites = append(sites, s)
			}
			aid := SCATSApproachID(loc)
			if first, ok := s.approach[aid]; ok {
				if !strings.EqualFold(strings.Join(strings.Fields(first), " "), strings.Join(strings.Fields(loc), " ")) {
					problem(line, "site %s: locations %q and %q both map to approach %q", num, first, loc, aid)
				}
				break
			}
			s.approach[aid] = loc
			s.order = append(s.order, aid)
		}
		if len(problems) >= maxSCATSProblems {
			break
		}
	}
	if siteCol < 0 && len(problems) == 0 {
		problems = append(problems, "no header row naming the columns \"SCATS Number\" and \"Location\"")
	}
	if len(problems) > 0 {
		return Topology{}, &SCATSImportError{Problems: problems}
	}
	t := Topology{Version: SchemaVersion, Revision: opts.Revision, TimeZone: opts.TimeZone}
	for _, s := range sites {
		if len(s.order) < 2 {
			if opts.OnSkip != nil {
				opts.OnSkip(s.id, fmt.Sprintf("only %d approach (%s): a plan needs two phases", len(s.order), strings.Join(s.order, ", ")))
			}
			continue
		}
		t.Intersections = append(t.Intersections, scatsIntersection(s.id, s.order, opts))
	}
	if len(t.Intersections) == 0 {
		return Topology{}, &SCATSImportError{Problems: []string{"no site with at least two approaches"}}
	}
	if err := t.Validate(); err != nil {
		return Topology{}, fmt.Errorf("scats import: %w", err)
	}
	return t, nil
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\ufffd' {
			return false
		}
	}
	return true
}

func scatsIntersection(id string, order []string, opts SCATSOptions) Intersection {
	in := Intersection{ID: id, WeatherStation: opts.WeatherStation, WindowS: SCATSWindowS,
		Timing: Timing{MinCycleS: SCATSDefaultMinCycleS, MaxCycleS: SCATSDefaultMaxCycleS}}
	var ns, ew, unknown []string
	roads := map[string]bool{}
	for _, aid := range order {
		in.Approaches = append(in.Approaches, Approach{ID: aid, Lanes: opts.Lanes, SaturationFlowVPHPerLane: opts.SaturationFlowVPHPerLane,
			Detectors: []string{id + "-" + aid}})
		switch scatsAxis(scatsDirection(aid)) {
		case axisNS:
			ns = append(ns, aid)
		case axisEW:
			ew = append(ew, aid)
		default:
			unknown = append(unknown, aid)
		}
		if dir, road, ok := strings.Cut(aid, "_"); ok && scatsAxis(dir) != axisUnknown {
			roads[road] = true
		} else {
			roads[aid] = true
		}
	}
	for _, aid := range unknown {
		if len(ew) < len(ns) {
			ew = append(ew, aid)
		} else {
			ns = append(ns, aid)
		}
	}
	phase := func(pid string, approaches []string) Phase {
		return Phase{ID: pid, Approaches: approaches, MinGreenS: SCATSDefaultMinGreenS, MaxGreenS: SCATSDefaultMaxGreenS,
			PedestrianMinS: SCATSDefaultPedestrianMinS, YellowS: SCATSDefaultYellowS, AllRedS: SCATSDefaultAllRedS, LostTimeS: SCATSDefaultLostTimeS}
	}
	if len(ns) > 0 && len(ew) > 0 {
		in.Phases = []Phase{phase("NS", ns), phase("EW", ew)}
	} else {
		for _, aid := range order {
			in.Phases = append(in.Phases, phase(aid, []string{aid}))
		}
	}
	names := make([]string, 0, len(roads))
	for r := range roads {
		names = append(names, r)
	}
	sort.Strings(names)
	in.Name = strings.Join(names, " / ")
	n := float64(len(in.Phases))
	in.FixedTime = map[string]float64{}
	for _, ph := range in.Phases {
		g := (SCATSDefaultFixedCycleS - n*(ph.YellowS+ph.AllRedS)) / n
		in.FixedTime[ph.ID] = math.Min(math.Max(math.Floor(g), ph.EffectiveMinGreenS()), ph.MaxGreenS)
	}
	return in
}
