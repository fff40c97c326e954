package traci

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// LogicType is how SUMO runs a traffic-light program.
type LogicType int

// The program types as SUMO 1.15 reads and reports them: its TrafficLightType enumeration. TraCI's constants.py
// says 4 for delay-based (TRAFFICLIGHT_TYPE_DELAYBASED), but SUMO 1.15 takes 4 as NEMA (setProgramLogic then quits
// the simulation: "Please set ring1 for NEMA tlLogic") and 5 as delay-based.
const (
	LogicStatic     LogicType = 0 // fixed phase durations
	LogicActuated   LogicType = 3 // gap-based extension between each phase's MinDur and MaxDur
	LogicDelayBased LogicType = 5 // extension by the delay of approaching vehicles
)

func (t LogicType) String() string {
	switch t {
	case LogicStatic:
		return "static"
	case LogicActuated:
		return "actuated"
	case LogicDelayBased:
		return "delay_based"
	}
	return fmt.Sprintf("LogicType(%d)", int(t))
}

// Phase is one phase of a traffic-light program.
type Phase struct {
	Duration time.Duration
	// State has one signal per controlled link (see ControlledLinks): r red, y yellow, g green without priority,
	// G green with priority, s green right turn, u red-yellow, o and O off.
	State string
	// MinDur and MaxDur bound an actuated phase; static programs carry Duration in both.
	MinDur, MaxDur time.Duration
	// Next lists the phase indices that may follow; empty means the next in the list.
	Next []int
	Name string
}

// Logic is one traffic-light program (SUMO's tlLogic).
type Logic struct {
	ProgramID    string
	Type         LogicType
	CurrentPhase int // index into Phases of the running phase
	Phases       []Phase
	Params       map[string]string // e.g. "max-gap", "detector-gap" for actuated programs
}

// Link is one controlled connection, from an incoming lane through the junction's internal lane to an outgoing
// lane.
type Link struct {
	From, Via, To string // lane ids
}

func tlQuery(varID byte, tlsID string) query {
	return query{cmd: cmdGetTrafficLight, varID: varID, objID: tlsID}
}

// TrafficLightIDs lists the traffic lights of the network.
func (c *Client) TrafficLightIDs(ctx context.Context) ([]string, error) {
	return getValue(ctx, c, "trafficlight.getIDList", tlQuery(varIDList, ""), readStrings)
}

// TrafficLightState is the signals shown now, one character per controlled link (see Phase.State).
func (c *Client) TrafficLightState(ctx context.Context, tlsID string) (string, error) {
	return getValue(ctx, c, "trafficlight.getRedYellowGreenState", tlQuery(tlRedYellowGreenState, tlsID), readString)
}

// TrafficLightPhase is the index of the running phase in the running program.
func (c *Client) TrafficLightPhase(ctx context.Context, tlsID string) (int, error) {
	return getValue(ctx, c, "trafficlight.getPhase", tlQuery(tlCurrentPhase, tlsID), readInt)
}

// TrafficLightProgram is the id of the running program.
func (c *Client) TrafficLightProgram(ctx context.Context, tlsID string) (string, error) {
	return getValue(ctx, c, "trafficlight.getProgram", tlQuery(tlCurrentProgram, tlsID), readString)
}

// TrafficLightPhaseDuration is the running phase's duration in its program: neither what remains of it nor what
// SetTrafficLightPhaseDuration set (TrafficLightNextSwitch tells when it ends).
func (c *Client) TrafficLightPhaseDuration(ctx context.Context, tlsID string) (time.Duration, error) {
	return getValue(ctx, c, "trafficlight.getPhaseDuration", tlQuery(tlPhaseDuration, tlsID), readSeconds)
}

// TrafficLightNextSwitch is the simulated time (as Time counts it) at which the running phase is due to end.
func (c *Client) TrafficLightNextSwitch(ctx context.Context, tlsID string) (time.Duration, error) {
	return getValue(ctx, c, "trafficlight.getNextSwitch", tlQuery(tlNextSwitch, tlsID), readSeconds)
}

// TrafficLightControlledLanes lists the incoming lane of each controlled link, in link order (a lane with
// several links appears once per link).
func (c *Client) TrafficLightControlledLanes(ctx context.Context, tlsID string) ([]string, error) {
	return getValue(ctx, c, "trafficlight.getControlledLanes", tlQuery(tlControlledLanes, tlsID), readStrings)
}

// TrafficLightControlledLinks lists, per signal index (a position in Phase.State), the links that signal
// controls.
func (c *Client) TrafficLightControlledLinks(ctx context.Context, tlsID string) ([][]Link, error) {
	return getValue(ctx, c, "trafficlight.getControlledLinks", tlQuery(tlControlledLinks, tlsID), readLinks)
}

// TrafficLightLogics lists every program loaded for the traffic light, the running one and the others
// (getAllProgramLogics, formerly getCompleteRedYellowGreenDefinition).
func (c *Client) TrafficLightLogics(ctx context.Context, tlsID string) ([]Logic, error) {
	return getValue(ctx, c, "trafficlight.getAllProgramLogics", tlQuery(tlCompleteDefinition, tlsID), readLogics)
}

// ErrInvalidLogic is returned by SetTrafficLightLogic for a program SUMO would accept and then fail on: SUMO
// 1.15 quits the whole simulation at the next step when a phase's state does not match the traffic light's
// signals.
var ErrInvalidLogic = errors.New("invalid traffic-light program")

// SetTrafficLightLogic loads a program and switches to it at its CurrentPhase, replacing a program of the same
// ProgramID (setProgramLogic). It first reads the traffic light's state to check the program against its signals
// (ErrInvalidLogic); SUMO checks the rest and refuses with a StatusError.
func (c *Client) SetTrafficLightLogic(ctx context.Context, tlsID string, logic Logic) error {
	const op = "trafficlight.setProgramLogic"
	state, err := c.TrafficLightState(ctx, tlsID)
	if err != nil {
		return err
	}
	if err := checkLogic(logic, len(state)); err != nil {
		return opError(op, tlsID, err)
	}
	var e encoder
	encodeLogic(&e, logic)
	return c.setTrafficLight(ctx, op, tlCompleteProgram, tlsID, e.b)
}

// checkLogic finds what would make SUMO refuse the program late or not at all: phases, their states' length,
// durations and successors.
func checkLogic(l Logic, signals int) error {
	if len(l.Phases) == 0 {
		return fmt.Errorf("%w %q: no phases", ErrInvalidLogic, l.ProgramID)
	}
	if l.CurrentPhase < 0 || l.CurrentPhase >= len(l.Phases) {
		return fmt.Errorf("%w %q: current phase %d of %d", ErrInvalidLogic, l.ProgramID, l.CurrentPhase, len(l.Phases))
	}
	for i, p := range l.Phases {
		if len(p.State) != signals {
			return fmt.Errorf("%w %q: phase %d has %d signals, the traffic light %d",
				ErrInvalidLogic, l.ProgramID, i, len(p.State), signals)
		}
		if p.Duration <= 0 {
			return fmt.Errorf("%w %q: phase %d lasts %v", ErrInvalidLogic, l.ProgramID, i, p.Duration)
		}
		for _, n := range p.Next {
			if n < 0 || n >= len(l.Phases) {
				return fmt.Errorf("%w %q: phase %d is followed by phase %d of %d",
					ErrInvalidLogic, l.ProgramID, i, n, len(l.Phases))
			}
		}
	}
	return nil
}

// SetTrafficLightProgram switches to a loaded program; "off" always exists.
func (c *Client) SetTrafficLightProgram(ctx context.Context, tlsID, programID string) error {
	var e encoder
	e.typedStr(programID)
	return c.setTrafficLight(ctx, "trafficlight.setProgram", tlProgram, tlsID, e.b)
}

// SetTrafficLightPhase switches the running program to phase index at once.
func (c *Client) SetTrafficLightPhase(ctx context.Context, tlsID string, index int) error {
	var e encoder
	e.typedInt(index)
	return c.setTrafficLight(ctx, "trafficlight.setPhase", tlPhaseIndex, tlsID, e.b)
}

// SetTrafficLightPhaseDuration sets what remains of the running phase, counted from now. Later runs of the phase
// keep the program's duration.
func (c *Client) SetTrafficLightPhaseDuration(ctx context.Context, tlsID string, remaining time.Duration) error {
	var e encoder
	e.typedSeconds(remaining)
	return c.setTrafficLight(ctx, "trafficlight.setPhaseDuration", tlPhaseDuration, tlsID, e.b)
}

// encodeLogic writes a program as setProgramLogic takes it: a compound of program id, type, current phase, the
// phases (each a compound of six) and the parameters (key, value string lists, sorted by key).
func encodeLogic(e *encoder, l Logic) {
	e.compound(5)
	e.typedStr(l.ProgramID)
	e.typedInt(int(l.Type))
	e.typedInt(l.CurrentPhase)
	e.compound(len(l.Phases))
	for _, p := range l.Phases {
		e.compound(6)
		e.typedSeconds(p.Duration)
		e.typedStr(p.State)
		e.typedSeconds(p.MinDur)
		e.typedSeconds(p.MaxDur)
		e.compound(len(p.Next))
		for _, n := range p.Next {
			e.typedInt(n)
		}
		e.typedStr(p.Name)
	}
	e.compound(len(l.Params))
	for _, k := range slices.Sorted(maps.Keys(l.Params)) {
		e.typedStrings(k, l.Params[k])
	}
}

// readLogics reads getAllProgramLogics' answer: a compound type byte, the number of programs, then each program
// as encodeLogic writes it.
func readLogics(d *decoder) []Logic {
	n := d.compound(logicMinSize)
	logics := make([]Logic, 0, n)
	for range n {
		logics = append(logics, readLogic(d))
		if d.err != nil {
			return nil
		}
	}
	return logics
}

// The fewest bytes a program and a phase take on the wire, to bound what a corrupt count can allocate.
const (
	logicMinSize = 5 + 5 + 5 + 5 + 5 + 5 // compound, id, type, current phase, phases, parameters
	phaseMinSize = 5 + 9 + 5 + 9 + 9 + 5 + 5
)

func readLogic(d *decoder) Logic {
	d.compoundOf(5)
	l := Logic{ProgramID: d.typedStr(), Type: LogicType(d.typedInt()), CurrentPhase: d.typedInt()}
	n := d.compound(phaseMinSize)
	l.Phases = make([]Phase, 0, n)
	for range n {
		d.compoundOf(6)
		p := Phase{Duration: d.seconds(), State: d.typedStr(), MinDur: d.seconds(), MaxDur: d.seconds()}
		for range d.compound(5) { // typed ints
			p.Next = append(p.Next, d.typedInt())
			if d.err != nil {
				break
			}
		}
		p.Name = d.typedStr()
		if d.err != nil {
			return Logic{}
		}
		l.Phases = append(l.Phases, p)
	}
	for range d.compound(13) { // typed lists of two strings
		kv := d.typedStrings()
		if d.err == nil && len(kv) != 2 {
			d.failf("parameter of %d strings, want key and value", len(kv))
		}
		if d.err != nil {
			return Logic{}
		}
		if l.Params == nil {
			l.Params = make(map[string]string)
		}
		l.Params[kv[0]] = kv[1]
	}
	return l
}

// readLinks reads getControlledLinks' answer: a compound type byte and its item count, the number of signals as
// a typed int, then per signal the number of links as a typed int and each link as a string list (from, to,
// via).
func readLinks(d *decoder) [][]Link {
	d.expect(typeCompound)
	d.i32()                      // items in the compound, a count of everything below; the counts below are what matter
	n := d.fits(d.typedInt(), 5) // a signal takes at least its typed count
	signals := make([][]Link, 0, n)
	for range n {
		m := d.fits(d.typedInt(), 17) // a link takes at least a typed list of three empty strings
		links := make([]Link, 0, m)
		for range m {
			lanes := d.typedStrings()
			if d.err == nil && len(lanes) != 3 {
				d.failf("link of %d lanes, want from, to and via", len(lanes))
			}
			if d.err != nil {
				return nil
			}
			links = append(links, Link{From: lanes[0], To: lanes[1], Via: lanes[2]})
		}
		if d.err != nil {
			return nil
		}
		signals = append(signals, links)
	}
	return signals
}
