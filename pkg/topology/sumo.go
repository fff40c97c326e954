package topology

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// SUMO import defaults (SUMOOptions zero values select them). A SUMO network carries geometry and signal
// programs but no saturation flows or timing constraints, so these are typical urban values, not measurements.
const (
	// SUMODefaultSaturationFlow is close to what SUMO's default passenger car (1 s headway, 2.5 m gap) discharges
	// per lane at 50 km/h.
	SUMODefaultSaturationFlow = 1800 // veh/h of green per lane
	// SUMODefaultMinGreenS is the vehicle minimum green of a phase whose program gives none (static programs);
	// SUMO's own actuated programs default to the same 5 s.
	SUMODefaultMinGreenS = 5
	// SUMODefaultMaxGreenS is the maximum green of a phase whose program gives none; a longer static green
	// raises it to that green.
	SUMODefaultMaxGreenS = 60
	// SUMODefaultMinCycleS and SUMODefaultMaxCycleS bound the cycle; they widen to include the program's cycle.
	SUMODefaultMinCycleS = 30
	SUMODefaultMaxCycleS = 120
	// SUMODefaultWindowS is the event-time window: closed-loop control needs data faster than five minutes.
	SUMODefaultWindowS = 120
	// SUMOTimeZone is the zone of simulated time, which has no place.
	SUMOTimeZone = "UTC"
)

// SUMODetectorPrefix starts every detector ID the SUMO import derives: SUMODetectorID(lane) is the prefix
// followed by the SUMO lane ID, the detector the bridge places on that lane.
const SUMODetectorPrefix = "e1_"

// SUMODetectorID is the ID of the detector on a SUMO lane: "e1_<laneID>", for example "e1_A1A0_0" for lane 0 of
// edge A1A0. The import and the SUMO bridge (which creates one induction loop per approach lane) both use it, so
// readings and topology agree.
func SUMODetectorID(laneID string) string { return SUMODetectorPrefix + laneID }

// SUMOPhaseID is the ID of the phase derived from the green phase at index k (0-based, counting every <phase>
// of the tlLogic, yellow and all-red included), for example "p0" and "p3" for SUMO's default two-phase program
// with an all-red. The bridge applies a plan's green to that program phase.
func SUMOPhaseID(k int) string { return "p" + strconv.Itoa(k) }

// SUMOOptions tune ImportSUMO. The zero value selects every default.
type SUMOOptions struct {
	// Revision is written to Topology.Revision (default "sumo-import").
	Revision string
	// TimeZone is written to Topology.TimeZone (default SUMOTimeZone).
	TimeZone string
	// WindowS is every intersection's window in seconds (default SUMODefaultWindowS).
	WindowS int
	// SaturationFlowVPHPerLane applies to every approach (default SUMODefaultSaturationFlow).
	SaturationFlowVPHPerLane float64
	// OnSkip, when set, is told about every traffic light that cannot become an intersection (for example a
	// pedestrian signal with a single vehicle phase), with the reason. Skipped traffic lights are not in the
	// result, and no link or upstream reference points at them.
	OnSkip func(tl, reason string)
}

// SUMOImportError lists every problem found in a SUMO network file, each naming the element it is about.
type SUMOImportError struct {
	Problems []string
}

// Error implements error.
func (e *SUMOImportError) Error() string {
	return fmt.Sprintf("sumo import (%d problems):\n  - %s", len(e.Problems), strings.Join(e.Problems, "\n  - "))
}

// maxSUMOProblems bounds how many problems are collected before the import gives up.
const maxSUMOProblems = 50

// The parts of a SUMO .net.xml the import reads. Numbers are kept as text and parsed with errors that name the
// element, which encoding/xml's own conversions would not.
type sumoNet struct {
	XMLName     xml.Name         `xml:"net"`
	Edges       []sumoEdge       `xml:"edge"`
	TLLogics    []sumoTLLogic    `xml:"tlLogic"`
	Connections []sumoConnection `xml:"connection"`
}

type sumoEdge struct {
	ID       string     `xml:"id,attr"`
	Function string     `xml:"function,attr"`
	Lanes    []sumoLane `xml:"lane"`
}

type sumoLane struct {
	ID     string `xml:"id,attr"`
	Index  string `xml:"index,attr"`
	Speed  string `xml:"speed,attr"`
	Length string `xml:"length,attr"`
}

type sumoTLLogic struct {
	ID        string      `xml:"id,attr"`
	ProgramID string      `xml:"programID,attr"`
	Phases    []sumoPhase `xml:"phase"`
}

type sumoPhase struct {
	Duration string `xml:"duration,attr"`
	State    string `xml:"state,attr"`
	MinDur   string `xml:"minDur,attr"`
	MaxDur   string `xml:"maxDur,attr"`
}

type sumoConnection struct {
	From      string `xml:"from,attr"`
	To        string `xml:"to,attr"`
	FromLane  string `xml:"fromLane,attr"`
	TL        string `xml:"tl,attr"`
	LinkIndex string `xml:"linkIndex,attr"`
	Dir       string `xml:"dir,attr"`
}

// sumoLink is one controlled connection: a movement from an approach lane that a signal state character governs.
type sumoLink struct {
	from, to string // normal edges
	lane     int    // index of the from lane
	index    int    // position in the tlLogic's state strings
	straight bool   // dir "s"
}

// ImportSUMO derives a topology from a SUMO network (.net.xml, as netconvert and netgenerate write it) and
// returns it validated. The rules:
//
//   - every traffic light (tlLogic, one program each) becomes an intersection with the tlLogic's ID, in file
//     order; traffic lights that cannot become a valid intersection are skipped and reported through
//     opts.OnSkip;
//   - every normal (non-internal) edge with a connection the traffic light controls is an approach with the
//     edge's ID, in order of its first link index; its lanes are the edge's lanes with a controlled connection,
//     each with the detector SUMODetectorID(lane ID); every approach has opts.SaturationFlowVPHPerLane;
//   - every green phase of the program (a state with 'G' or 'g' and no 'y', 'Y' or 'u') is a phase
//     SUMOPhaseID(k) serving every approach with at least one link green ('G' or 'g') in it. The program's
//     phases up to the next green phase are its change interval: those with a yellow ('y' or 'Y') add to
//     yellow_s, the others (all red, red-yellow) to all_red_s. A protected-turn phase therefore serves the
//     whole approach, as Greenwave's phases know approaches, not movements;
//   - min green is the phase's minDur when the program gives one (actuated programs), else
//     SUMODefaultMinGreenS (never more than the program's own green, never below 4 s); max green is its maxDur,
//     else the larger of SUMODefaultMaxGreenS and the program's green; lost time is yellow plus all-red
//     (start-up loss and the unused end of the change interval taken as equal); no pedestrian minimum;
//   - the cycle bounds are SUMODefaultMinCycleS..SUMODefaultMaxCycleS, widened to include the program's cycle;
//     the fixed-time plan is the program's own greens, so the safe fallback is what SUMO would run;
//   - a road from one traffic light to another links them: an approach edge that a traffic light's links lead
//     into, or that is reached from such an edge through junctions without traffic lights where the road has a
//     single way in (netconvert splits an edge where turn lanes begin), makes its intersection a neighbour of
//     that traffic light, with the free-flow travel time (length / speed averaged over each segment's lanes,
//     rounded to 0.1 s; the shortest road when several join them); the approach gets as upstream the upstream
//     intersection's approaches whose straight-on links (dir "s") lead into the road;
//   - every group of linked intersections becomes a corridor "sumo-<root>" rooted at its first member, with the
//     longest of its members' program cycles as common cycle (brought into the range every member admits);
//   - window opts.WindowS, time zone opts.TimeZone, no weather station.
//
// Problems in the file (malformed XML, numbers that are not numbers, connections to edges that do not exist,
// link indices beyond the state strings) are reported together in a *SUMOImportError naming the elements. It
// does no I/O beyond r.
func ImportSUMO(r io.Reader, opts SUMOOptions) (Topology, error) {
	if opts.Revision == "" {
		opts.Revision = "sumo-import"
	}
	if opts.TimeZone == "" {
		opts.TimeZone = SUMOTimeZone
	}
	if opts.WindowS == 0 {
		opts.WindowS = SUMODefaultWindowS
	}
	if opts.SaturationFlowVPHPerLane == 0 {
		opts.SaturationFlowVPHPerLane = SUMODefaultSaturationFlow
	}
	var net sumoNet
	if err := xml.NewDecoder(r).Decode(&net); err != nil {
		return Topology{}, &SUMOImportError{Problems: []string{fmt.Sprintf("not a SUMO network (.net.xml): %v", err)}}
	}
	p := &sumoParser{net: &net}
	p.index()
	if len(p.problems) > 0 {
		return Topology{}, &SUMOImportError{Problems: p.problems}
	}
	if len(net.TLLogics) == 0 {
		return Topology{}, &SUMOImportError{Problems: []string{"no tlLogic: the network has no traffic lights"}}
	}
	t := Topology{Version: SchemaVersion, Revision: opts.Revision, TimeZone: opts.TimeZone}
	cycles := map[string]float64{}
	var skipped []string
	for _, tl := range p.order {
		in, cycle, reason := p.intersection(tl, opts)
		if reason == "" {
			if err := (Topology{Version: SchemaVersion, Intersections: []Intersection{in}}).Validate(); err != nil {
				reason = err.Error()
			}
		}
		if reason != "" {
			skipped = append(skipped, fmt.Sprintf("traffic light %s: %s", tl, reason))
			if opts.OnSkip != nil {
				opts.OnSkip(tl, reason)
			}
			continue
		}
		t.Intersections = append(t.Intersections, in)
		cycles[in.ID] = cycle
	}
	if len(t.Intersections) == 0 {
		return Topology{}, &SUMOImportError{Problems: append([]string{"no traffic light can become an intersection"}, skipped...)}
	}
	p.link(&t)
	t.Corridors = sumoCorridors(t, cycles)
	if err := t.Validate(); err != nil {
		return Topology{}, fmt.Errorf("sumo import: %w", err)
	}
	return t, nil
}

type sumoParser struct {
	net      *sumoNet
	problems []string
	edges    map[string]*sumoEdge
	programs map[string]*sumoTLLogic
	order    []string              // traffic light IDs in file order
	links    map[string][]sumoLink // by traffic light, in link index order
	preds    map[string][]string   // normal edges with an uncontrolled connection into each normal edge
}

func (p *sumoParser) problem(format string, args ...any) {
	if len(p.problems) < maxSUMOProblems {
		p.problems = append(p.problems, fmt.Sprintf(format, args...))
	}
}

// index checks the elements the import relies on and indexes edges, programs and controlled links.
func (p *sumoParser) index() {
	p.edges = map[string]*sumoEdge{}
	for i := range p.net.Edges {
		e := &p.net.Edges[i]
		if e.ID == "" {
			p.problem("edge #%d has no id", i+1)
			continue
		}
		if _, dup := p.edges[e.ID]; dup {
			p.problem("edge %s: defined twice", e.ID)
		}
		p.edges[e.ID] = e
	}
	p.programs = map[string]*sumoTLLogic{}
	for i := range p.net.TLLogics {
		tl := &p.net.TLLogics[i]
		if prev, dup := p.programs[tl.ID]; dup {
			p.problem("tlLogic %s: programs %q and %q: the import needs exactly one program per traffic light", tl.ID, prev.ProgramID, tl.ProgramID)
			continue
		}
		p.programs[tl.ID] = tl
		p.order = append(p.order, tl.ID)
		for k, ph := range tl.Phases {
			if d, err := parseSUMONumber(ph.Duration); err != nil || d < 0 {
				p.problem("tlLogic %s phase %d: duration %q is not a duration in seconds", tl.ID, k, ph.Duration)
			}
			for _, v := range [...]struct{ name, s string }{{"minDur", ph.MinDur}, {"maxDur", ph.MaxDur}} {
				if v.s == "" {
					continue
				}
				if d, err := parseSUMONumber(v.s); err != nil || d < 0 {
					p.problem("tlLogic %s phase %d: %s %q is not a duration in seconds", tl.ID, k, v.name, v.s)
				}
			}
		}
	}
	p.links = map[string][]sumoLink{}
	p.preds = map[string][]string{}
	for _, c := range p.net.Connections {
		if c.TL == "" {
			from, to := p.edges[c.From], p.edges[c.To]
			if from != nil && to != nil && sumoNormal(from) && sumoNormal(to) && !slices.Contains(p.preds[c.To], c.From) {
				p.preds[c.To] = append(p.preds[c.To], c.From)
			}
			continue
		}
		where := fmt.Sprintf("connection from %s to %s (traffic light %s)", c.From, c.To, c.TL)
		prog, ok := p.programs[c.TL]
		if !ok {
			p.problem("%s: no tlLogic %s", where, c.TL)
			continue
		}
		from, to := p.edges[c.From], p.edges[c.To]
		if from == nil || to == nil {
			p.problem("%s: edge not in the network", where)
			continue
		}
		if !sumoNormal(from) || !sumoNormal(to) {
			continue // crossings and walking areas: pedestrians are not approaches
		}
		lane, err1 := strconv.Atoi(c.FromLane)
		index, err2 := strconv.Atoi(c.LinkIndex)
		switch {
		case err1 != nil || lane < 0 || lane >= len(from.Lanes):
			p.problem("%s: fromLane %q is not a lane of edge %s", where, c.FromLane, c.From)
			continue
		case err2 != nil || index < 0:
			p.problem("%s: linkIndex %q is not a link index", where, c.LinkIndex)
			continue
		}
		for k, ph := range prog.Phases {
			if index >= len(ph.State) {
				p.problem("%s: linkIndex %d beyond the %d-character state of phase %d", where, index, len(ph.State), k)
				break
			}
		}
		p.links[c.TL] = append(p.links[c.TL], sumoLink{from: c.From, to: c.To, lane: lane, index: index, straight: c.Dir == "s"})
	}
	for _, tl := range p.order {
		slices.SortStableFunc(p.links[tl], func(a, b sumoLink) int { return a.index - b.index })
	}
}

// sumoNormal reports whether an edge is a road (not internal to a junction, a crossing or a walking area).
func sumoNormal(e *sumoEdge) bool {
	return (e.Function == "" || e.Function == "normal") && !strings.HasPrefix(e.ID, ":")
}

func parseSUMONumber(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a finite number", s)
	}
	return v, nil
}

// laneID returns the ID of lane index of edge e, by the lanes' index attribute (their position when absent).
func laneID(e *sumoEdge, index int) string {
	for i, l := range e.Lanes {
		if l.Index == strconv.Itoa(index) || (l.Index == "" && i == index) {
			return l.ID
		}
	}
	return e.ID + "_" + strconv.Itoa(index)
}

func isGreen(c byte) bool { return c == 'G' || c == 'g' }

// intersection derives one traffic light's intersection and its program cycle, or says why it cannot.
func (p *sumoParser) intersection(tl string, opts SUMOOptions) (in Intersection, cycle float64, reason string) {
	prog := p.programs[tl]
	links := p.links[tl]
	if len(links) == 0 {
		return in, 0, "controls no road connection"
	}
	in = Intersection{ID: tl, Name: fmt.Sprintf("SUMO traffic light %s, program %s", tl, prog.ProgramID), WindowS: opts.WindowS,
		FixedTime: map[string]float64{}}
	lanes := map[string][]int{}
	var approaches []string
	for _, l := range links {
		if _, ok := lanes[l.from]; !ok {
			approaches = append(approaches, l.from)
		}
		if !slices.Contains(lanes[l.from], l.lane) {
			lanes[l.from] = append(lanes[l.from], l.lane)
		}
	}
	for _, a := range approaches {
		slices.Sort(lanes[a])
		ap := Approach{ID: a, Lanes: len(lanes[a]), SaturationFlowVPHPerLane: opts.SaturationFlowVPHPerLane}
		for _, l := range lanes[a] {
			ap.Detectors = append(ap.Detectors, SUMODetectorID(laneID(p.edges[a], l)))
		}
		in.Approaches = append(in.Approaches, ap)
	}
	n := len(prog.Phases)
	green := make([]bool, n)
	first := -1
	for k, ph := range prog.Phases {
		green[k] = strings.ContainsAny(ph.State, "Gg") && !strings.ContainsAny(ph.State, "yYu")
		if green[k] && first < 0 {
			first = k
		}
		d, _ := parseSUMONumber(ph.Duration)
		cycle += d
	}
	if first < 0 {
		return in, 0, "its program has no green phase"
	}
	// Walk the cycle from the first green phase, so change intervals at the start of the program belong to the
	// last green phase.
	var ph *Phase
	for i := range n {
		k := (first + i) % n
		sp := prog.Phases[k]
		d, _ := parseSUMONumber(sp.Duration)
		if !green[k] {
			if strings.ContainsAny(sp.State, "yY") {
				ph.YellowS += d
			} else {
				ph.AllRedS += d
			}
			continue
		}
		id := SUMOPhaseID(k)
		in.Phases = append(in.Phases, Phase{ID: id})
		ph = &in.Phases[len(in.Phases)-1]
		for _, a := range approaches {
			for _, l := range links {
				if l.from == a && isGreen(sp.State[l.index]) {
					ph.Approaches = append(ph.Approaches, a)
					break
				}
			}
		}
		ph.MinGreenS = math.Max(4, math.Min(SUMODefaultMinGreenS, d))
		if v, err := parseSUMONumber(sp.MinDur); err == nil {
			ph.MinGreenS = v
		}
		ph.MaxGreenS = math.Min(300, math.Max(SUMODefaultMaxGreenS, d))
		if v, err := parseSUMONumber(sp.MaxDur); err == nil {
			ph.MaxGreenS = v
		}
		in.FixedTime[id] = math.Min(math.Max(d, ph.MinGreenS), ph.MaxGreenS)
	}
	// Green phases were appended in cycle order from the first green phase, which is program order.
	for i := range in.Phases {
		in.Phases[i].LostTimeS = math.Min(10, in.Phases[i].YellowS+in.Phases[i].AllRedS)
		if len(in.Phases[i].Approaches) == 0 {
			return in, 0, fmt.Sprintf("green phase %s gives green to no road approach (pedestrians only?)", in.Phases[i].ID)
		}
	}
	in.Timing = Timing{MinCycleS: math.Max(20, math.Min(SUMODefaultMinCycleS, cycle)), MaxCycleS: math.Min(300, math.Max(SUMODefaultMaxCycleS, cycle))}
	return in, cycle, ""
}

// link adds neighbour links and upstream approaches between the topology's intersections.
func (p *sumoParser) link(t *Topology) {
	// feeds[edge] lists the (intersection, approach) pairs whose straight-on links lead into edge; exits[edge]
	// the intersections with any link into it.
	type feed struct{ tl, approach string }
	feeds := map[string][]feed{}
	exits := map[string][]string{}
	for _, in := range t.Intersections {
		for _, l := range p.links[in.ID] {
			if !slices.Contains(exits[l.to], in.ID) {
				exits[l.to] = append(exits[l.to], in.ID)
			}
			if f := (feed{in.ID, l.from}); l.straight && !slices.Contains(feeds[l.to], f) {
				feeds[l.to] = append(feeds[l.to], f)
			}
		}
	}
	for i := range t.Intersections {
		in := &t.Intersections[i]
		travel := map[string]float64{}
		for j := range in.Approaches {
			a := &in.Approaches[j]
			e, tt, ok := p.upstreamEdge(a.ID, exits)
			for _, up := range exits[e] {
				if up == in.ID || !ok {
					continue
				}
				if prev, seen := travel[up]; !seen || tt < prev {
					travel[up] = tt
				}
			}
			for _, f := range feeds[e] {
				if f.tl != in.ID {
					a.Upstream = append(a.Upstream, f.tl+"/"+f.approach)
				}
			}
		}
		for _, u := range t.Intersections {
			if tt, ok := travel[u.ID]; ok {
				in.Neighbours = append(in.Neighbours, Link{Intersection: u.ID, TravelTimeS: tt})
			}
		}
	}
}

// maxSUMOChain bounds how many plain road segments upstreamEdge walks back through.
const maxSUMOChain = 16

// upstreamEdge walks back from an approach edge through junctions without traffic lights where the road has a
// single way in (netconvert splits edges where turn lanes begin, for example), to the edge a traffic light in
// exits feeds. It returns that edge and the free-flow travel time from its start to the end of the approach;
// ok is false when a segment has no usable travel time. Without such an edge it returns the approach itself.
func (p *sumoParser) upstreamEdge(approach string, exits map[string][]string) (edge string, tt float64, ok bool) {
	edge = approach
	for range maxSUMOChain {
		t, ok := edgeTravelTime(p.edges[edge])
		if !ok {
			return approach, 0, false
		}
		tt += t
		if len(exits[edge]) > 0 || len(p.preds[edge]) != 1 {
			break
		}
		edge = p.preds[edge][0]
	}
	if len(exits[edge]) == 0 {
		edge = approach
	}
	return edge, math.Round(tt*10) / 10, tt <= MaxTravelTimeS
}

// edgeTravelTime is the free-flow travel time along an edge, length / speed averaged over its lanes; ok is false
// when no lane has a usable length and speed.
func edgeTravelTime(e *sumoEdge) (float64, bool) {
	var sum float64
	n := 0
	for _, l := range e.Lanes {
		length, err1 := parseSUMONumber(l.Length)
		speed, err2 := parseSUMONumber(l.Speed)
		if err1 != nil || err2 != nil || !(length >= 0) || !(speed > 0) {
			continue
		}
		sum += length / speed
		n++
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}

// sumoCorridors makes every linked group a corridor rooted at its first member, running the longest of its
// members' program cycles, brought into the cycle range every member admits when it lies outside.
func sumoCorridors(t Topology, cycles map[string]float64) []Corridor {
	groups, _ := linkedGroups(t)
	var out []Corridor
	for _, g := range groups {
		root := t.Intersections[g[0]].ID
		c := Corridor{ID: "sumo-" + root, Root: root}
		lo, hi := 0.0, math.Inf(1)
		for _, i := range g {
			in := t.Intersections[i]
			c.CycleS = math.Max(c.CycleS, cycles[in.ID])
			l, h := in.CycleRange()
			lo, hi = math.Max(lo, l), math.Min(hi, h)
		}
		c.CycleS = math.Max(math.Min(c.CycleS, hi), lo)
		out = append(out, c)
	}
	return out
}
