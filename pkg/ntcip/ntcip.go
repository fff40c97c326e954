// Package ntcip maps Greenwave signal plans onto the coordination objects of an NTCIP 1202 actuated signal
// controller (ASC): one pattern row of patternTable, the rows of one split of splitTable, and the
// systemPatternControl value that calls the pattern. It is pure: no SNMP, no I/O; cmd/greenwave/internal/ntcip
// sends what it computes.
//
// # Units and rounding
//
// Every NTCIP 1202 time written here is a whole number of seconds in 0..255 (patternCycleTime,
// patternOffsetTime, splitTime; NTCIP 1202 v02 §2.5.7 and §2.5.9, INTEGER (0..255)). A phase's split is the part
// of the cycle the phase may hold before it is forced off, clearances included: Greenwave's green + yellow +
// all-red. Plans are in fractional seconds, so Encode rounds: the cycle to the nearest second, each split down to
// whole seconds and then the seconds left to make up the cycle one each to the phases whose green fell below its
// minimum first, then by the largest fraction dropped (ties: earlier phase first). A phase's boundary moves by
// less than one second. The rounded timing is checked again against the intersection's hard constraints (minimum
// and maximum green, cycle bounds, splits adding up to the cycle, offset below the cycle); a plan that cannot be
// represented is refused with ErrUnrepresentable, never sent approximately.
//
// # Phases
//
// Greenwave's phases run in sequence (one ring); a controller runs them on its own phase numbers, often two
// concurrent phases per Greenwave phase in a dual-ring controller (for example NS → 2 and 6). Mapping gives
// each Greenwave phase its NTCIP phase numbers; all of them receive the Greenwave phase's split. Greenwave's first
// phase is the coordinated phase (signal.Plan's offset refers to the start of its green): its NTCIP phases get
// splitCoordPhase = 1, all others 0. For a controller whose offset refers to the end of the coordinated green
// (the yield point), Mapping.OffsetReference adds that green to the offset.
package ntcip

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// Object identifiers of NTCIP 1202 (ASC MIB) that the adapter reads and writes. asc is
// iso.org.dod.internet.private.enterprises.nema(1206).transportation(4).devices(2).asc(1); coord is asc 4.
// Table columns are followed by the row index (patternNumber; splitNumber.splitPhase); scalars by .0.
const (
	OIDCoord = "1.3.6.1.4.1.1206.4.2.1.4"
	// OIDMaxPatterns is maxPatterns (read-only, 0..253): how many pattern rows the controller has.
	OIDMaxPatterns = OIDCoord + ".5.0"
	// OIDPatternCycleTime is patternCycleTime.<pattern>: the cycle in seconds (0..255).
	OIDPatternCycleTime = OIDCoord + ".7.1.2"
	// OIDPatternOffsetTime is patternOffsetTime.<pattern>: the offset in seconds (0..255).
	OIDPatternOffsetTime = OIDCoord + ".7.1.3"
	// OIDPatternSplitNumber is patternSplitNumber.<pattern>: the splitNumber the pattern uses (0..255).
	OIDPatternSplitNumber = OIDCoord + ".7.1.4"
	// OIDMaxSplits is maxSplits (read-only, 0..255).
	OIDMaxSplits = OIDCoord + ".8.0"
	// OIDSplitTime is splitTime.<split>.<phase>: the phase's split in seconds (0..255), clearances included.
	OIDSplitTime = OIDCoord + ".9.1.3"
	// OIDSplitMode is splitMode.<split>.<phase>: SplitModeNone, SplitModePhaseOmitted, … (1..7).
	OIDSplitMode = OIDCoord + ".9.1.4"
	// OIDSplitCoordPhase is splitCoordPhase.<split>.<phase>: 1 for a coordinated phase, else 0.
	OIDSplitCoordPhase = OIDCoord + ".9.1.5"
	// OIDCoordPatternStatus is coordPatternStatus.0 (read-only): the pattern running now (0 none, 1..253,
	// 254 free, 255 flash).
	OIDCoordPatternStatus = OIDCoord + ".10.0"
	// OIDSystemPatternControl is systemPatternControl.0: the pattern the central system calls (0 standby: the
	// controller runs its own schedule; 1..253 a pattern; 254 free; 255 flash).
	OIDSystemPatternControl = OIDCoord + ".14.0"
)

// Phase table objects (asc 1, phaseTable {phase 2}), read to check that the controller's clearances are the
// topology's: a split includes them, so a different yellow or red clearance moves every green inside its split.
const (
	// OIDPhaseYellowChange is phaseYellowChange.<phase>: the yellow change interval in tenths of seconds (0..255).
	OIDPhaseYellowChange = "1.3.6.1.4.1.1206.4.2.1.1.2.1.8"
	// OIDPhaseRedClear is phaseRedClear.<phase>: the red clearance interval in tenths of seconds (0..255).
	OIDPhaseRedClear = "1.3.6.1.4.1.1206.4.2.1.1.2.1.9"
	// OIDPhaseMinimumGreen is phaseMinimumGreen.<phase>: the controller's minimum green in seconds (0..255).
	OIDPhaseMinimumGreen = "1.3.6.1.4.1.1206.4.2.1.1.2.1.4"
)

// MinimumGreenLimits are, for every NTCIP phase m maps p's phases to, phaseMinimumGreen with the largest value
// the controller may hold: the green t gives the phase (its split less yellow and all-red), in whole seconds
// rounded down. A controller minimum above it would hold the phase beyond its split and break the cycle.
func MinimumGreenLimits(m Mapping, p signal.Plan, t Timing) []Var {
	var vs []Var
	for _, ph := range p.Phases {
		for _, n := range mappedPhases(m, ph.PhaseID) {
			for _, r := range t.Rows {
				if r.Phase == n {
					green := math.Floor(float64(r.TimeS) - ph.YellowS - ph.AllRedS + signal.BoundToleranceS)
					vs = append(vs, Var{fmt.Sprintf("%s.%d", OIDPhaseMinimumGreen, n), int(math.Max(green, 0))})
				}
			}
		}
	}
	return vs
}

// Clearances are the phaseYellowChange and phaseRedClear values, in tenths of seconds, that the controller must
// hold for every NTCIP phase m maps p's phases to: the plan's yellow_s and all_red_s (which signal.Validate has
// checked equal the topology's) times ten, rounded. Phases p has but m does not map are left out.
func Clearances(m Mapping, p signal.Plan) []Var {
	var vs []Var
	for _, ph := range p.Phases {
		for _, n := range mappedPhases(m, ph.PhaseID) {
			vs = append(vs, Var{fmt.Sprintf("%s.%d", OIDPhaseYellowChange, n), int(math.Round(ph.YellowS * 10))},
				Var{fmt.Sprintf("%s.%d", OIDPhaseRedClear, n), int(math.Round(ph.AllRedS * 10))})
		}
	}
	return vs
}

// splitMode values (NTCIP 1202 v02 §2.5.9.4).
const (
	SplitModeNone         = 2
	SplitModePhaseOmitted = 7
)

// SystemPatternStandby is the systemPatternControl value that hands control back to the controller's own
// schedule.
const SystemPatternStandby = 0

// Limits of the MIB's value ranges.
const (
	MaxPattern = 253 // patternNumber 1..253 (254 and 255 are free and flash)
	MaxSplit   = 255 // splitNumber 1..255
	MaxPhase   = 255 // splitPhase / phaseNumber 1..255
	MaxSeconds = 255 // patternCycleTime, patternOffsetTime, splitTime
)

// Errors, checked with errors.Is.
var (
	// ErrPhaseMapping: the plan's phases do not match the controller's phase mapping.
	ErrPhaseMapping = errors.New("plan phases do not match the phase mapping")
	// ErrUnrepresentable: the plan cannot be written in whole seconds within the MIB's ranges and the
	// intersection's constraints.
	ErrUnrepresentable = errors.New("plan cannot be represented in NTCIP 1202 objects")
	// ErrInvalidMapping: a Mapping is inconsistent with itself or the intersection (see CheckMapping).
	ErrInvalidMapping = errors.New("invalid phase mapping")
)

// PhaseMap maps one Greenwave phase onto the controller's phase numbers.
type PhaseMap struct {
	// PhaseID is the topology's phase id.
	PhaseID string
	// Phases are NTCIP phase numbers (1..255) that run during it, at least one.
	Phases []int
}

// Mapping says where a controller keeps Greenwave's pattern and how its phases are numbered.
type Mapping struct {
	// Pattern is the patternNumber reserved for Greenwave (1..253).
	Pattern int
	// Split is the splitNumber the pattern uses (1..255), reserved for Greenwave as well.
	Split int
	// Phases maps every phase of the intersection, in any order.
	Phases []PhaseMap
	// Omit are NTCIP phases of the controller that Greenwave does not run: written as phaseOmitted with a zero
	// split, so a phase left in the controller's sequence cannot take time from the plan.
	Omit []int
	// OffsetReference is the point of the coordinated phase the controller's patternOffsetTime refers to.
	OffsetReference OffsetReference
}

// OffsetReference is where in the coordinated phase a controller measures its offset from. NTCIP 1202 leaves
// it to the controller; Greenwave's offset is the start of the coordinated phase's green.
type OffsetReference int

// Offset references.
const (
	// OffsetGreenStart: the offset is the start of the coordinated phase's green (Greenwave's own; the default).
	OffsetGreenStart OffsetReference = iota
	// OffsetYellowStart: the offset is the end of the coordinated green, the start of its yellow (the "yield
	// point" of many controllers): Encode adds the coordinated phase's green to the offset.
	OffsetYellowStart
)

// FieldError is one problem of a Mapping; Field names the part (phases.NS, pattern, omit[2]).
type FieldError struct {
	Field, Msg string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// MappingError lists every problem CheckMapping found. It wraps ErrInvalidMapping.
type MappingError struct {
	Problems []FieldError
}

func (e *MappingError) Error() string {
	s := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		s[i] = p.Error()
	}
	return "invalid phase mapping: " + strings.Join(s, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalidMapping) true.
func (e *MappingError) Unwrap() error { return ErrInvalidMapping }

// CheckMapping checks m against the intersection: pattern and split numbers in range, every phase of in mapped
// exactly once, no unknown phase id, every NTCIP phase number in 1..255 and used once (across phases and Omit).
// It returns nil or a *MappingError listing every problem.
func CheckMapping(in topology.Intersection, m Mapping) error {
	var ps []FieldError
	add := func(field, format string, args ...any) {
		ps = append(ps, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if m.Pattern < 1 || m.Pattern > MaxPattern {
		add("pattern", "%d is not a pattern number in 1..%d", m.Pattern, MaxPattern)
	}
	if m.Split < 1 || m.Split > MaxSplit {
		add("split", "%d is not a split number in 1..%d", m.Split, MaxSplit)
	}
	owner := map[int]string{} // NTCIP phase → field that uses it
	use := func(field string, n int) {
		switch prev, dup := owner[n]; {
		case n < 1 || n > MaxPhase:
			add(field, "NTCIP phase %d is not in 1..%d", n, MaxPhase)
		case dup:
			add(field, "NTCIP phase %d is already used by %s", n, prev)
		default:
			owner[n] = field
		}
	}
	seen := map[string]bool{}
	for _, pm := range m.Phases {
		field := "phases." + pm.PhaseID
		if !slices.ContainsFunc(in.Phases, func(p topology.Phase) bool { return p.ID == pm.PhaseID }) {
			add(field, "intersection %s has no phase %q (its phases: %s)", in.ID, pm.PhaseID, phaseIDs(in))
			continue
		}
		if seen[pm.PhaseID] {
			add(field, "phase mapped more than once")
			continue
		}
		seen[pm.PhaseID] = true
		if len(pm.Phases) == 0 {
			add(field, "no NTCIP phase number")
		}
		for _, n := range pm.Phases {
			use(field, n)
		}
	}
	for _, p := range in.Phases {
		if !seen[p.ID] {
			add("phases", "phase %s of intersection %s is not mapped", p.ID, in.ID)
		}
	}
	for i, n := range m.Omit {
		use(fmt.Sprintf("omit[%d]", i), n)
	}
	if len(ps) > 0 {
		return &MappingError{Problems: ps}
	}
	return nil
}

func phaseIDs(in topology.Intersection) string {
	ids := make([]string, len(in.Phases))
	for i, p := range in.Phases {
		ids[i] = p.ID
	}
	return strings.Join(ids, ", ")
}

// SplitRow is one row of splitTable for the reserved split.
type SplitRow struct {
	// Phase is the NTCIP phase number (splitPhase).
	Phase int
	// TimeS is splitTime in seconds; Mode is splitMode; Coord is splitCoordPhase (1 or 0).
	TimeS, Mode, Coord int
}

// Timing is a plan in NTCIP 1202 terms: what Encode computes and the adapter writes.
type Timing struct {
	// Pattern and Split are the reserved pattern and split numbers.
	Pattern, Split int
	// CycleS and OffsetS are patternCycleTime and patternOffsetTime in seconds.
	CycleS, OffsetS int
	// Rows are the split's rows in ascending phase number: mapped phases and omitted ones.
	Rows []SplitRow
}

// Var is one object instance and its INTEGER value.
type Var struct {
	OID   string
	Value int
}

// SplitVars are the splitTable instances of t, three per row (time, mode, coordinated), rows in phase order.
func (t Timing) SplitVars() []Var {
	vs := make([]Var, 0, 3*len(t.Rows))
	for _, r := range t.Rows {
		idx := fmt.Sprintf(".%d.%d", t.Split, r.Phase)
		vs = append(vs, Var{OIDSplitTime + idx, r.TimeS}, Var{OIDSplitMode + idx, r.Mode}, Var{OIDSplitCoordPhase + idx, r.Coord})
	}
	return vs
}

// PatternVars are the patternTable instances of t: cycle, offset and split number.
func (t Timing) PatternVars() []Var {
	idx := fmt.Sprintf(".%d", t.Pattern)
	return []Var{{OIDPatternCycleTime + idx, t.CycleS}, {OIDPatternOffsetTime + idx, t.OffsetS}, {OIDPatternSplitNumber + idx, t.Split}}
}

// ActivateVar is the systemPatternControl instance that calls t's pattern.
func (t Timing) ActivateVar() Var { return Var{OIDSystemPatternControl, t.Pattern} }

// Encode turns p, a plan for in that passed signal.Validate, into the controller's objects under m (which passed
// CheckMapping). It returns an error wrapping ErrPhaseMapping when p's phases are not exactly the mapped ones,
// and one wrapping ErrUnrepresentable when the rounded timing breaks the MIB's ranges or in's constraints (see
// the package comment). It never panics.
func Encode(in topology.Intersection, m Mapping, p signal.Plan) (Timing, error) {
	if err := matchPhases(m, p); err != nil {
		return Timing{}, err
	}
	for _, f := range []float64{p.CycleS, p.OffsetS} {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return Timing{}, fmt.Errorf("%w: cycle %g s, offset %g s", ErrUnrepresentable, p.CycleS, p.OffsetS)
		}
	}
	spans := make([]float64, len(p.Phases))
	sum := 0.0
	for i, ph := range p.Phases {
		spans[i] = ph.SpanS()
		if !(spans[i] >= 0 && spans[i] <= MaxSeconds) {
			return Timing{}, fmt.Errorf("%w: phase %s split %g s outside 0..%d s", ErrUnrepresentable, ph.PhaseID, spans[i], MaxSeconds)
		}
		sum += spans[i]
	}
	cycle := math.Round(sum)
	if !(cycle >= 1 && cycle <= MaxSeconds) {
		return Timing{}, fmt.Errorf("%w: cycle %g s outside 1..%d s", ErrUnrepresentable, sum, MaxSeconds)
	}
	splits := roundSplits(in, p, spans, int(cycle))
	var probs []string
	total := 0
	for i, ph := range p.Phases {
		total += splits[i]
		cfg, ok := phaseConfig(in, ph.PhaseID)
		if !ok {
			probs = append(probs, fmt.Sprintf("phase %s is not in intersection %s", ph.PhaseID, in.ID))
			continue
		}
		g := float64(splits[i]) - ph.YellowS - ph.AllRedS
		if g < cfg.EffectiveMinGreenS()-signal.BoundToleranceS {
			probs = append(probs, fmt.Sprintf("phase %s: split %d s leaves green %g s, below its minimum %g s", ph.PhaseID, splits[i], g, cfg.EffectiveMinGreenS()))
		}
		if g > cfg.MaxGreenS+signal.BoundToleranceS {
			probs = append(probs, fmt.Sprintf("phase %s: split %d s gives green %g s, above its maximum %g s", ph.PhaseID, splits[i], g, cfg.MaxGreenS))
		}
	}
	if total != int(cycle) {
		probs = append(probs, fmt.Sprintf("splits add up to %d s, cycle is %d s", total, int(cycle)))
	}
	if tm := in.Timing; cycle < tm.MinCycleS-signal.BoundToleranceS || cycle > tm.MaxCycleS+signal.BoundToleranceS {
		probs = append(probs, fmt.Sprintf("cycle %g s outside [%g, %g] s", cycle, tm.MinCycleS, tm.MaxCycleS))
	}
	offset := math.Round(p.OffsetS)
	if !(offset >= 0) {
		probs = append(probs, fmt.Sprintf("offset %g s is negative", p.OffsetS))
	}
	if m.OffsetReference == OffsetYellowStart {
		// The green the controller will run: the rounded split less the clearances, so the yield point agrees
		// with the splits actually written.
		offset += math.Round(float64(splits[0]) - p.Phases[0].YellowS - p.Phases[0].AllRedS)
	}
	offset = math.Mod(offset, cycle) // 89.6 s in a 90 s cycle is 0 s, not 90 s
	if len(probs) > 0 {
		return Timing{}, fmt.Errorf("%w: %s", ErrUnrepresentable, strings.Join(probs, "; "))
	}
	t := Timing{Pattern: m.Pattern, Split: m.Split, CycleS: int(cycle), OffsetS: int(offset)}
	for i, ph := range p.Phases {
		coord := 0
		if i == 0 {
			coord = 1
		}
		for _, n := range mappedPhases(m, ph.PhaseID) {
			t.Rows = append(t.Rows, SplitRow{Phase: n, TimeS: splits[i], Mode: SplitModeNone, Coord: coord})
		}
	}
	for _, n := range m.Omit {
		t.Rows = append(t.Rows, SplitRow{Phase: n, TimeS: 0, Mode: SplitModePhaseOmitted, Coord: 0})
	}
	sort.Slice(t.Rows, func(i, j int) bool { return t.Rows[i].Phase < t.Rows[j].Phase })
	return t, nil
}

// roundSplits rounds the spans to whole seconds adding up to cycle: floors first, then one second each to the
// phases below their minimum green, then by the largest fraction dropped (earlier phase on ties).
func roundSplits(in topology.Intersection, p signal.Plan, spans []float64, cycle int) []int {
	splits := make([]int, len(spans))
	left := cycle
	for i, s := range spans {
		splits[i] = int(math.Floor(s))
		left -= splits[i]
	}
	order := make([]int, len(spans))
	for i := range order {
		order[i] = i
	}
	short := func(i int) bool {
		cfg, ok := phaseConfig(in, p.Phases[i].PhaseID)
		return ok && float64(splits[i])-p.Phases[i].YellowS-p.Phases[i].AllRedS < cfg.EffectiveMinGreenS()-signal.BoundToleranceS
	}
	shortNow := make([]bool, len(spans))
	for i := range spans {
		shortNow[i] = short(i)
	}
	sort.SliceStable(order, func(a, b int) bool {
		i, j := order[a], order[b]
		if shortNow[i] != shortNow[j] {
			return shortNow[i]
		}
		return spans[i]-math.Floor(spans[i]) > spans[j]-math.Floor(spans[j])
	})
	for k := 0; left > 0 && k < len(order); k++ {
		splits[order[k]]++
		left--
	}
	return splits
}

func matchPhases(m Mapping, p signal.Plan) error {
	var probs []string
	inPlan := map[string]bool{}
	for _, ph := range p.Phases {
		if inPlan[ph.PhaseID] {
			probs = append(probs, fmt.Sprintf("phase %s appears twice in the plan", ph.PhaseID))
		}
		inPlan[ph.PhaseID] = true
		if mappedPhases(m, ph.PhaseID) == nil {
			probs = append(probs, fmt.Sprintf("plan phase %s has no NTCIP phase in the mapping", ph.PhaseID))
		}
	}
	for _, pm := range m.Phases {
		if !inPlan[pm.PhaseID] {
			probs = append(probs, fmt.Sprintf("mapped phase %s is missing from the plan", pm.PhaseID))
		}
	}
	if len(p.Phases) == 0 {
		probs = append(probs, "the plan has no phases")
	}
	if len(probs) > 0 {
		return fmt.Errorf("%w: %s", ErrPhaseMapping, strings.Join(probs, "; "))
	}
	return nil
}

func mappedPhases(m Mapping, id string) []int {
	for _, pm := range m.Phases {
		if pm.PhaseID == id && len(pm.Phases) > 0 {
			return pm.Phases
		}
	}
	return nil
}

func phaseConfig(in topology.Intersection, id string) (topology.Phase, bool) {
	for _, p := range in.Phases {
		if p.ID == id {
			return p, true
		}
	}
	return topology.Phase{}, false
}
