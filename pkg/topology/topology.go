// Package topology describes the signalised intersections Greenwave works on: approaches, detectors, phases and
// the timing constraints of each intersection. One versioned file is shared by the collector (which detectors
// exist), the cleaner (windows, capacities, weather stations) and signal-control (phases and hard constraints).
//
// The package is pure: Parse and Validate do no I/O beyond the bytes they are given (and the time zone database
// that validating time_zone reads, embedded in the binary as a fallback).
package topology

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SchemaVersion is the topology file format this package reads.
const SchemaVersion = 1

// Topology is a whole city's (or a deployment's) intersection configuration.
type Topology struct {
	// Version is the file format version; it must equal SchemaVersion.
	Version int `yaml:"version" json:"version"`
	// Revision identifies this revision of the content (operators bump it on change); it is logged and
	// carried into plans so a plan can be traced back to the configuration that produced it.
	Revision string `yaml:"revision" json:"revision"`
	// TimeZone is the IANA time zone of the intersections (for example "Australia/Melbourne"), in which every
	// service and greenwave eval compute local calendar features; empty means DefaultTimeZone (UTC). See
	// Location.
	TimeZone string `yaml:"time_zone,omitempty" json:"time_zone,omitempty"`
	// Intersections are the signalised intersections, each with a unique ID.
	Intersections []Intersection `yaml:"intersections" json:"intersections"`
	// Corridors set the common cycle of groups of coordinated intersections (see Corridor). Optional.
	Corridors []Corridor `yaml:"corridors,omitempty" json:"corridors,omitempty"`
}

// Corridor configures one coordinated group of intersections: the intersections connected to Root through
// neighbour links (in either direction). Every member runs the common cycle CycleS and takes its green-wave
// offset from Root, so plans for different intersections agree without any state shared between them.
//
// A group of linked intersections without a Corridor entry is still coordinated, with Root its first member
// in configuration order and the cycle DefaultCorridorCycle.
type Corridor struct {
	ID string `yaml:"id" json:"id"`
	// Root is the intersection whose coordinated phase starts at offset 0.
	Root string `yaml:"root" json:"root"`
	// CycleS is the common cycle in seconds; 0 selects DefaultCorridorCycle. It must fit every member's
	// cycle range (see Intersection.CycleRange).
	CycleS float64 `yaml:"cycle_s,omitempty" json:"cycle_s,omitempty"`
}

// Intersection is one signalised intersection.
type Intersection struct {
	// ID is unique and must not contain '/', which Greenwave uses to build compound keys.
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// WeatherStation is the station whose weather the cleaner joins to this intersection ("" for none).
	WeatherStation string `yaml:"weather_station,omitempty" json:"weather_station,omitempty"`
	// WindowS is the event-time window size in seconds for this intersection's readings (default 300).
	WindowS int `yaml:"window_s,omitempty" json:"window_s,omitempty"`
	// Approaches are the traffic streams entering the intersection.
	Approaches []Approach `yaml:"approaches" json:"approaches"`
	// Phases are the signal phases in cycle order.
	Phases []Phase `yaml:"phases,omitempty" json:"phases,omitempty"`
	// Timing holds the cycle-level hard constraints.
	Timing Timing `yaml:"timing,omitempty" json:"timing"`
	// FixedTime is the known-safe fixed-time plan used when predictions cannot be trusted: green seconds per
	// phase ID. When empty, a plan with every phase at its minimum green and the minimum cycle is used.
	FixedTime map[string]float64 `yaml:"fixed_time,omitempty" json:"fixed_time,omitempty"`
	// Neighbours are coordination links to other intersections (for green-wave offsets and features).
	Neighbours []Link `yaml:"neighbours,omitempty" json:"neighbours,omitempty"`
	// ForecastOnly marks a site Greenwave forecasts but does not control: a detector station, or an intersection
	// whose signals are not known (greenwave topology import --format csv writes these). It has approaches and
	// detectors but no phases, timing, fixed-time plan or neighbour links; signal-control plans nothing for it
	// and accepts no override for it. Its approaches may still be upstream of others (features).
	ForecastOnly bool `yaml:"forecast_only,omitempty" json:"forecast_only,omitempty"`
}

// Approach is one traffic stream (for example "northbound") entering an intersection.
type Approach struct {
	ID string `yaml:"id" json:"id"`
	// Lanes is the number of lanes the approach's detectors cover.
	Lanes int `yaml:"lanes" json:"lanes"`
	// SaturationFlowVPHPerLane is the saturation flow per lane in vehicles per hour of green (typically 1800-1900).
	SaturationFlowVPHPerLane float64 `yaml:"saturation_flow_vph_per_lane" json:"saturation_flow_vph_per_lane"`
	// Detectors are the detector IDs that measure this approach; their flows add up to the approach flow.
	Detectors []string `yaml:"detectors" json:"detectors"`
	// Upstream names approaches (as "intersection/approach") that feed this one, used as features.
	Upstream []string `yaml:"upstream,omitempty" json:"upstream,omitempty"`
}

// CapacityVPH is the approach's saturation flow over all its lanes, in vehicles per hour of green.
func (a Approach) CapacityVPH() float64 {
	return a.SaturationFlowVPHPerLane * float64(a.Lanes)
}

// Phase is a signal phase: a set of approaches that get green together.
type Phase struct {
	ID string `yaml:"id" json:"id"`
	// Approaches served by the phase; each must be an approach of the intersection.
	Approaches []string `yaml:"approaches" json:"approaches"`
	// MinGreenS and MaxGreenS bound the green time, in seconds.
	MinGreenS float64 `yaml:"min_green_s" json:"min_green_s"`
	MaxGreenS float64 `yaml:"max_green_s" json:"max_green_s"`
	// PedestrianMinS is the minimum green that lets pedestrians cross (walk + clearance); 0 if none.
	PedestrianMinS float64 `yaml:"pedestrian_min_s,omitempty" json:"pedestrian_min_s,omitempty"`
	// YellowS and AllRedS are the fixed change and clearance intervals after the green, in seconds.
	YellowS float64 `yaml:"yellow_s" json:"yellow_s"`
	AllRedS float64 `yaml:"all_red_s" json:"all_red_s"`
	// LostTimeS is the phase's lost time (start-up plus clearance lost time), in seconds.
	LostTimeS float64 `yaml:"lost_time_s" json:"lost_time_s"`
}

// EffectiveMinGreenS is the larger of the vehicle and pedestrian minimum greens.
func (p Phase) EffectiveMinGreenS() float64 {
	return math.Max(p.MinGreenS, p.PedestrianMinS)
}

// Timing holds an intersection's cycle-level constraints.
type Timing struct {
	MinCycleS float64 `yaml:"min_cycle_s" json:"min_cycle_s"`
	MaxCycleS float64 `yaml:"max_cycle_s" json:"max_cycle_s"`
	// MaxCycleChangeS bounds the change of cycle length between consecutive plans (0: no limit).
	MaxCycleChangeS float64 `yaml:"max_cycle_change_s,omitempty" json:"max_cycle_change_s,omitempty"`
}

// Link couples an intersection to a neighbour along a corridor.
type Link struct {
	Intersection string `yaml:"intersection" json:"intersection"`
	// TravelTimeS is the platoon travel time from the neighbour to this intersection, used for offsets; a finite
	// duration of at most MaxTravelTimeS.
	TravelTimeS float64 `yaml:"travel_time_s" json:"travel_time_s"`
}

// MaxTravelTimeS bounds a neighbour link's travel time (a day); longer links cannot coordinate anything.
const MaxTravelTimeS = 86400

// DefaultWindowS is the event-time window used when an intersection does not set one.
const DefaultWindowS = 300

// Window returns the intersection's event-time window size in seconds.
func (in Intersection) Window() int {
	if in.WindowS > 0 {
		return in.WindowS
	}
	return DefaultWindowS
}

// Approach returns the approach with the given ID.
func (in Intersection) Approach(id string) (Approach, bool) {
	for _, a := range in.Approaches {
		if a.ID == id {
			return a, true
		}
	}
	return Approach{}, false
}

// CycleOverheadS is the per-cycle time not available as green: the sum of every phase's yellow and all-red.
func (in Intersection) CycleOverheadS() float64 {
	var s float64
	for _, p := range in.Phases {
		s += p.YellowS + p.AllRedS
	}
	return s
}

// CycleRange returns the cycles, in seconds, for which greens within every phase's bounds exist: from the
// larger of MinCycleS and Σ(effective min green + yellow + all-red) to the smaller of MaxCycleS and
// Σ(max green + yellow + all-red). The range is empty (lo > hi) for an infeasible intersection.
func (in Intersection) CycleRange() (lo, hi float64) {
	var minSpan, maxSpan float64
	for _, p := range in.Phases {
		minSpan += p.EffectiveMinGreenS() + p.YellowS + p.AllRedS
		maxSpan += p.MaxGreenS + p.YellowS + p.AllRedS
	}
	return math.Max(in.Timing.MinCycleS, minSpan), math.Min(in.Timing.MaxCycleS, maxSpan)
}

// DetectorRef locates a detector in the topology.
type DetectorRef struct {
	Intersection string
	Approach     string
}

// Index is a read-only lookup structure built from a validated Topology. It is safe for concurrent use.
type Index struct {
	topo          Topology
	intersections map[string]int
	detectors     map[string]DetectorRef
	partitionKeys map[string]string
}

// NewIndex builds the lookup index. It expects a validated topology.
func NewIndex(t Topology) *Index {
	ix := &Index{topo: t, intersections: map[string]int{}, detectors: map[string]DetectorRef{}, partitionKeys: t.PartitionKeys()}
	for i, in := range t.Intersections {
		ix.intersections[in.ID] = i
		for _, a := range in.Approaches {
			for _, d := range a.Detectors {
				ix.detectors[d] = DetectorRef{Intersection: in.ID, Approach: a.ID}
			}
		}
	}
	return ix
}

// Topology returns the indexed topology.
func (ix *Index) Topology() Topology { return ix.topo }

// Intersection returns the intersection with the given ID.
func (ix *Index) Intersection(id string) (Intersection, bool) {
	i, ok := ix.intersections[id]
	if !ok {
		return Intersection{}, false
	}
	return ix.topo.Intersections[i], true
}

// PartitionKey returns the key that places an intersection's readings and cleaner state in a Kafka partition
// (see Topology.PartitionKeys); an intersection not in the topology is its own key.
func (ix *Index) PartitionKey(id string) string {
	if k, ok := ix.partitionKeys[id]; ok {
		return k
	}
	return id
}

// Detector locates a detector by ID.
func (ix *Index) Detector(id string) (DetectorRef, bool) {
	r, ok := ix.detectors[id]
	return r, ok
}

// IntersectionIDs returns every intersection ID, sorted.
func (ix *Index) IntersectionIDs() []string {
	ids := make([]string, 0, len(ix.intersections))
	for id := range ix.intersections {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Load reads and validates a topology file.
func Load(path string) (Topology, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Topology{}, fmt.Errorf("read topology: %w", err)
	}
	t, err := Parse(b)
	if err != nil {
		return Topology{}, fmt.Errorf("topology %s: %w", path, err)
	}
	return t, nil
}

// Parse decodes a YAML (or JSON) topology, rejecting unknown fields, and validates it.
func Parse(b []byte) (Topology, error) {
	var t Topology
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&t); err != nil {
		return Topology{}, fmt.Errorf("decode: %w", err)
	}
	if err := t.Validate(); err != nil {
		return Topology{}, err
	}
	return t, nil
}

// ValidationError lists every problem found in a topology, so an operator can fix them all at once.
type ValidationError struct {
	Problems []string
}

// Error implements error.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid topology (%d problems):\n  - %s", len(e.Problems), strings.Join(e.Problems, "\n  - "))
}

// Validate checks every hard constraint and returns a *ValidationError listing all problems, or nil.
func (t Topology) Validate() error {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if t.Version != SchemaVersion {
		add("version: got %d, want %d", t.Version, SchemaVersion)
	}
	if t.TimeZone != "" {
		if _, err := loadZone(t.TimeZone); err != nil {
			add("time_zone: %v", err)
		}
	}
	if len(t.Intersections) == 0 {
		add("intersections: none configured")
	}
	seenInt := map[string]bool{}
	seenDet := map[string]string{}
	for i, in := range t.Intersections {
		where := fmt.Sprintf("intersections[%d] (%s)", i, in.ID)
		switch {
		case in.ID == "":
			add("%s: id is empty", where)
		case strings.ContainsAny(in.ID, "/ \t\n"):
			add("%s: id must not contain '/' or white space", where)
		case seenInt[in.ID]:
			add("%s: duplicate intersection id", where)
		}
		seenInt[in.ID] = true
		if in.WindowS < 0 || (in.WindowS > 0 && 86400%in.WindowS != 0) {
			add("%s: window_s %d must be positive and divide a day", where, in.WindowS)
		}
		if len(in.Approaches) == 0 {
			add("%s: no approaches", where)
		}
		approaches := map[string]bool{}
		for j, a := range in.Approaches {
			aw := fmt.Sprintf("%s.approaches[%d] (%s)", where, j, a.ID)
			switch {
			case a.ID == "":
				add("%s: id is empty", aw)
			case strings.ContainsAny(a.ID, "/ \t\n"):
				add("%s: id must not contain '/' or white space", aw)
			case approaches[a.ID]:
				add("%s: duplicate approach id", aw)
			}
			approaches[a.ID] = true
			if a.Lanes < 1 || a.Lanes > 12 {
				add("%s: lanes %d outside 1..12", aw, a.Lanes)
			}
			if !(a.SaturationFlowVPHPerLane >= 600 && a.SaturationFlowVPHPerLane <= 2400) {
				add("%s: saturation_flow_vph_per_lane %g outside 600..2400", aw, a.SaturationFlowVPHPerLane)
			}
			if len(a.Detectors) == 0 {
				add("%s: no detectors", aw)
			}
			for _, d := range a.Detectors {
				if d == "" {
					add("%s: empty detector id", aw)
					continue
				}
				if other, dup := seenDet[d]; dup {
					add("%s: detector %q already belongs to %s", aw, d, other)
				}
				seenDet[d] = in.ID + "/" + a.ID
			}
		}
		if in.ForecastOnly {
			validateForecastOnly(in, where, add)
			continue
		}
		if len(in.Phases) < 2 {
			add("%s: at least two phases are needed", where)
		}
		served := map[string]bool{}
		phaseIDs := map[string]bool{}
		var minCycle, maxCycle float64
		for k, ph := range in.Phases {
			pw := fmt.Sprintf("%s.phases[%d] (%s)", where, k, ph.ID)
			if ph.ID == "" {
				add("%s: id is empty", pw)
			} else if phaseIDs[ph.ID] {
				add("%s: duplicate phase id", pw)
			}
			phaseIDs[ph.ID] = true
			if len(ph.Approaches) == 0 {
				add("%s: serves no approach", pw)
			}
			for _, a := range ph.Approaches {
				if !approaches[a] {
					add("%s: unknown approach %q", pw, a)
				}
				served[a] = true
			}
			if !(ph.MinGreenS >= 4 && ph.MinGreenS <= 300) {
				add("%s: min_green_s %g outside 4..300", pw, ph.MinGreenS)
			}
			if !(ph.PedestrianMinS >= 0 && ph.PedestrianMinS <= 300) {
				add("%s: pedestrian_min_s %g outside 0..300", pw, ph.PedestrianMinS)
			}
			if !(ph.MaxGreenS >= ph.EffectiveMinGreenS() && ph.MaxGreenS <= 300) {
				add("%s: max_green_s %g must lie in the minimum green %g..300", pw, ph.MaxGreenS, ph.EffectiveMinGreenS())
			}
			if !(ph.YellowS >= 3 && ph.YellowS <= 6) {
				add("%s: yellow_s %g outside 3..6", pw, ph.YellowS)
			}
			if !(ph.AllRedS >= 0 && ph.AllRedS <= 6) {
				add("%s: all_red_s %g outside 0..6", pw, ph.AllRedS)
			}
			if !(ph.LostTimeS >= 0 && ph.LostTimeS <= 10) {
				add("%s: lost_time_s %g outside 0..10", pw, ph.LostTimeS)
			}
			minCycle += ph.EffectiveMinGreenS() + ph.YellowS + ph.AllRedS
			maxCycle += ph.MaxGreenS + ph.YellowS + ph.AllRedS
		}
		for _, a := range in.Approaches {
			if a.ID != "" && !served[a.ID] {
				add("%s: approach %q is served by no phase", where, a.ID)
			}
		}
		tm := in.Timing
		if !(tm.MinCycleS >= 20) {
			add("%s: timing.min_cycle_s %g below 20", where, tm.MinCycleS)
		}
		if !(tm.MaxCycleS >= tm.MinCycleS && tm.MaxCycleS <= 300) {
			add("%s: timing.max_cycle_s %g must lie in min_cycle_s..300", where, tm.MaxCycleS)
		}
		if tm.MaxCycleS < minCycle {
			add("%s: timing.max_cycle_s %g cannot fit every phase's minimum green, yellow and all-red (%g)", where, tm.MaxCycleS, minCycle)
		}
		if len(in.Phases) > 0 && tm.MinCycleS > maxCycle {
			add("%s: timing.min_cycle_s %g cannot be reached with every phase at its max green, yellow and all-red (%g)", where, tm.MinCycleS, maxCycle)
		}
		if !(tm.MaxCycleChangeS >= 0 && tm.MaxCycleChangeS <= 300) {
			add("%s: timing.max_cycle_change_s %g outside 0..300", where, tm.MaxCycleChangeS)
		}
		validateFixedTime(in, where, add)
		linkedTo := map[string]bool{}
		for _, l := range in.Neighbours {
			if l.Intersection == in.ID {
				add("%s: neighbour link to itself", where)
			}
			if linkedTo[l.Intersection] {
				add("%s: duplicate neighbour link to %q", where, l.Intersection)
			}
			linkedTo[l.Intersection] = true
			if !(l.TravelTimeS >= 0 && l.TravelTimeS <= MaxTravelTimeS) {
				add("%s: neighbour %q travel_time_s %g is not a duration in 0..%d", where, l.Intersection, l.TravelTimeS, MaxTravelTimeS)
			}
		}
	}
	// Cross-references need every intersection known first.
	forecastOnly := map[string]bool{}
	for _, in := range t.Intersections {
		if in.ForecastOnly {
			forecastOnly[in.ID] = true
		}
	}
	for i, in := range t.Intersections {
		for _, l := range in.Neighbours {
			if !seenInt[l.Intersection] {
				add("intersections[%d] (%s): neighbour %q is not configured", i, in.ID, l.Intersection)
			} else if forecastOnly[l.Intersection] {
				add("intersections[%d] (%s): neighbour %q is forecast_only: it has no signals to coordinate with", i, in.ID, l.Intersection)
			}
		}
		for _, a := range in.Approaches {
			for _, up := range a.Upstream {
				ui, ua, ok := strings.Cut(up, "/")
				if !ok || !seenInt[ui] || !hasApproach(t, ui, ua) {
					add("intersections[%d] (%s): approach %q upstream %q is not a configured intersection/approach", i, in.ID, a.ID, up)
					continue
				}
				// The upstream feature reads the upstream approach's previous window, which must be one of
				// this intersection's windows.
				for _, u := range t.Intersections {
					if u.ID == ui && u.Window() != in.Window() {
						add("intersections[%d] (%s): approach %q upstream %q has %d s windows, this intersection %d s: upstream approaches need equal windows",
							i, in.ID, a.ID, up, u.Window(), in.Window())
					}
				}
			}
		}
	}
	validateCorridors(t, add)
	if len(p) > 0 {
		return &ValidationError{Problems: p}
	}
	return nil
}

// validateFixedTime checks that a configured fixed-time plan names every phase exactly and is itself a valid
// plan: each green within the phase's bounds and the cycle they add up to within the cycle bounds. A broken
// fixed-time plan would only be noticed when predictions fail, which is the worst moment.
func validateFixedTime(in Intersection, where string, add func(format string, args ...any)) {
	if len(in.FixedTime) == 0 {
		return
	}
	phaseIDs := map[string]bool{}
	cycle, complete := 0.0, true
	for _, ph := range in.Phases {
		phaseIDs[ph.ID] = true
		g, ok := in.FixedTime[ph.ID]
		if !ok {
			add("%s: fixed_time has no green for phase %q (it must list every phase)", where, ph.ID)
			complete = false
			continue
		}
		if !(g >= ph.EffectiveMinGreenS() && g <= ph.MaxGreenS) {
			add("%s: fixed_time[%s] %g outside the phase's green range %g..%g", where, ph.ID, g, ph.EffectiveMinGreenS(), ph.MaxGreenS)
			complete = false
		}
		cycle += g + ph.YellowS + ph.AllRedS
	}
	ids := make([]string, 0, len(in.FixedTime))
	for id := range in.FixedTime {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if !phaseIDs[id] {
			add("%s: fixed_time names unknown phase %q", where, id)
			complete = false
		}
	}
	if complete && !(cycle >= in.Timing.MinCycleS && cycle <= in.Timing.MaxCycleS) {
		add("%s: fixed_time adds up to a cycle of %g, outside timing %g..%g", where, cycle, in.Timing.MinCycleS, in.Timing.MaxCycleS)
	}
}

// validateForecastOnly checks that a forecast-only intersection carries nothing signal-control would act on:
// a phase, timing or link there would look configured while nothing ever used it.
func validateForecastOnly(in Intersection, where string, add func(format string, args ...any)) {
	if len(in.Phases) > 0 {
		add("%s: forecast_only intersection has %d phases (it controls no signals: remove them or forecast_only)", where, len(in.Phases))
	}
	if in.Timing != (Timing{}) {
		add("%s: forecast_only intersection has timing (it controls no signals)", where)
	}
	if len(in.FixedTime) > 0 {
		add("%s: forecast_only intersection has a fixed_time plan (it controls no signals)", where)
	}
	if len(in.Neighbours) > 0 {
		add("%s: forecast_only intersection has neighbour links (coordination needs signals; use upstream for features)", where)
	}
}

func hasApproach(t Topology, intersection, approach string) bool {
	for _, in := range t.Intersections {
		if in.ID == intersection {
			_, ok := in.Approach(approach)
			return ok
		}
	}
	return false
}

// ErrUnknownDetector is returned when a reading names a detector the topology does not know.
var ErrUnknownDetector = errors.New("unknown detector")
