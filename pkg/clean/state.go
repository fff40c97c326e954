package clean

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/greenwave-city/greenwave/pkg/topology"
)

// StateFormat is the version of the state State returns: pkg/wire stores it as a
// greenwave.v1.CleanerIntersectionState (proto/greenwave/v1/cleaner_state.proto). Formats 1 to 3 were JSON;
// RestoreLegacyIntersection still reads them once and migrates them.
//
// Format 4 holds what a restore needs and no more: as dedup memory only the open windows and a bounded replay
// memory of recently closed readings (start and value hash), the profiles in float32, the lag history in 1/10000 steps, and only the emission positions newer than the last checkpoint.
const StateFormat = 4

// ErrBadState is wrapped by RestoreIntersection (and by pkg/wire's decoders) when a state is not usable for
// the intersection.
var ErrBadState = errors.New("bad cleaner state")

// IntersectionState is an Intersection's complete state (open and held readings, event time, outlier and stuck
// state, profiles, health, lag history, recent emission positions) in the form of StateFormat. pkg/wire encodes
// it; restore it with RestoreIntersection and the same topology and Config. The UpstreamLookup is not state:
// attach it again (SetUpstream).
type IntersectionState struct {
	// Format is StateFormat of the writer.
	Format uint32
	// The topology the state belongs to: a state is refused when they changed.
	IntersectionID string
	WindowS        int64
	ApproachIDs    []string
	DetectorIDs    []string
	// Event time: whether a window was emitted yet, the next window to emit (index = start / WindowS), the
	// highest accepted reading start, the watermark (Unix ns) and the last emitted window that had data.
	Started        bool
	NextWindow     int64
	MaxEventNs     int64
	WatermarkNs    int64
	LastDataWindow int64
	// Open are the readings of the open windows, by window then detector then start; Held the readings held by
	// the clock-jump rule, in arrival order.
	Open, Held []BufferedReading
	// One per detector and approach, in topology order.
	Detectors  []DetectorState
	Approaches []ApproachState
	// Emissions are the input positions of the windows emitted since the last ForgetEmissionsThrough.
	Emissions []Emission
}

// BufferedReading is a validated, normalised reading an Intersection holds.
type BufferedReading struct {
	// Detector is the index of the detector in IntersectionState.DetectorIDs.
	Detector       uint32
	StartNs        int64
	IntervalS      int32
	Count, FlowVPH float64
	// NoCount is set when the reading carries no count (Reading.NoCount).
	NoCount bool
	// Occupancy and SpeedKMH are valid when HasOccupancy and HasSpeed.
	Occupancy, SpeedKMH    float64
	HasOccupancy, HasSpeed bool
	// ID is valid when HasID: only when it differs from the derived "<detector>@<start Unix seconds>".
	ID    string
	HasID bool
	// HeldAtNs is, for a held reading, the intersection's event-time progress when it was held.
	HeldAtNs int64
}

// DetectorState is one detector's history: stuck and outlier state per quantity, gap filling, health.
type DetectorState struct {
	// Sequences are the flow, speed and occupancy state, in that order.
	Sequences      []SequenceState
	LastObsWindow  int64
	LastObsFlowVPH float64
	HasObs         bool
	// ProfileVPH holds the 168 hour-of-week flows used for gap filling; ProfileSeen marks those that hold one.
	ProfileVPH  []float32
	ProfileSeen []bool
	Health      HealthState
	// LastStartNs is the start of the detector's last accepted reading.
	LastStartNs int64
	// ClosedStartsNs and ClosedHashes are the replay memory (Config.ReplayMemory): the starts and value hashes
	// of the readings of the detector's recently closed windows, oldest first.
	ClosedStartsNs []int64
	ClosedHashes   []uint64
}

// SequenceState is one quantity's outlier and stuck-detector state.
type SequenceState struct {
	// History and Baselines are the last HampelWindow values and their seasonal baselines (-1: none).
	History, Baselines []float64
	// ProfileMean and ProfileWeight are the 168-bucket seasonal profile; empty until the first value.
	ProfileMean, ProfileWeight []float32
	// Last and Run are the current run of equal values.
	Last float64
	Run  int64
}

// HealthState holds a detector's exponentially decayed health counters.
type HealthState struct {
	Valid, Flagged, Imputed, Late, Rejected, Windows float64
}

// ApproachState is an approach's lag history.
type ApproachState struct {
	// Lag holds 7 days of flow ratios in ring order (index = window mod ring length), in units of 1/10000;
	// LagAbsent marks a window without one.
	Lag []uint16
	// Recent holds RecentHistory of occupancy ratios and speed ratios (km/h / 100), two values a window in ring
	// order (2·(window mod recent length), then +1), in units of 1/10000, LagAbsent for absent. Empty in a state
	// written before it existed: the restore then knows no recent window (the upstream occupancy and speed
	// features of the next window are absent), which is why the format did not change.
	Recent      []uint16
	LastWritten int64
	HasWritten  bool
}

// LagAbsent is the ApproachState.Lag value of a window without a flow ratio.
const LagAbsent = 0xFFFF

// Emission is the input position at which a window was emitted.
type Emission struct {
	Window, Position int64
}

// State returns the state (what pkg/wire encodes). It shares no memory with s.
func (s *Intersection) State() IntersectionState {
	m := IntersectionState{
		Format: StateFormat, IntersectionID: s.in.ID, WindowS: s.winS,
		Started: s.st.Started, NextWindow: s.st.Next, MaxEventNs: s.st.MaxEvent, WatermarkNs: s.st.WM, LastDataWindow: s.st.LastData,
	}
	for _, a := range s.aps {
		m.ApproachIDs = append(m.ApproachIDs, a.id)
	}
	for _, d := range s.dets {
		m.DetectorIDs = append(m.DetectorIDs, d.id)
	}
	for _, k := range slices.Sorted(maps.Keys(s.st.Open)) {
		for _, list := range s.st.Open[k].dets {
			for _, p := range list {
				m.Open = append(m.Open, s.bufferedReading(p, 0))
			}
		}
	}
	for _, h := range s.st.Held {
		m.Held = append(m.Held, s.bufferedReading(h.pending, h.at))
	}
	for _, e := range s.st.Marks {
		m.Emissions = append(m.Emissions, Emission{Window: e.window, Position: e.pos})
	}
	for i := range s.st.Dets {
		ds := &s.st.Dets[i]
		dm := DetectorState{
			LastObsWindow: ds.LastObsW, LastObsFlowVPH: ds.LastObs, HasObs: ds.HasObs, LastStartNs: ds.LastStart,
			ProfileVPH: toF32(ds.Profile), ProfileSeen: slices.Clone(ds.ProfileSeen), Health: HealthState(ds.Health),
		}
		for q := range numQuantities {
			dm.Sequences = append(dm.Sequences, seqStateOf(ds.Seq[q]))
		}
		for _, c := range ds.Closed {
			dm.ClosedStartsNs = append(dm.ClosedStartsNs, c.startNs)
			dm.ClosedHashes = append(dm.ClosedHashes, c.hash)
		}
		m.Detectors = append(m.Detectors, dm)
	}
	for i := range s.st.Aps {
		as := &s.st.Aps[i]
		lag := make([]uint16, len(as.Lag))
		for j, v := range as.Lag {
			lag[j] = LagAbsent
			if !math.IsNaN(v) {
				lag[j] = lagUnits(v)
			}
		}
		m.Approaches = append(m.Approaches, ApproachState{Lag: lag, Recent: toUnits(as.Recent), LastWritten: as.LastWritten, HasWritten: as.HasWritten})
	}
	return m
}

// toUnits converts ratios (NaN = absent) to the state's 1/10000 units.
func toUnits(vs []float64) []uint16 {
	out := make([]uint16, len(vs))
	for j, v := range vs {
		out[j] = LagAbsent
		if !math.IsNaN(v) {
			out[j] = lagUnits(v)
		}
	}
	return out
}

// seqStateOf converts one quantity's in-memory sequence state (a copy).
func seqStateOf(sq seqState) SequenceState {
	return SequenceState{History: slices.Clone(sq.Hist), Baselines: slices.Clone(sq.Base), ProfileMean: toF32(sq.Mean),
		ProfileWeight: toF32(sq.Weight), Last: sq.Last, Run: int64(sq.Run)}
}

// bufferedReading converts a buffered reading; the id only when it is not the derived one.
func (s *Intersection) bufferedReading(p pending, heldAt int64) BufferedReading {
	r := &p.r
	m := BufferedReading{Detector: uint32(p.det), StartNs: p.startNs, IntervalS: int32(r.IntervalS), Count: r.Count,
		FlowVPH: r.FlowVPH, NoCount: r.NoCount, HeldAtNs: heldAt, Occupancy: r.Occupancy, HasOccupancy: r.HasOccupancy, SpeedKMH: r.SpeedKMH, HasSpeed: r.HasSpeed}
	if !r.HasOccupancy {
		m.Occupancy = 0
	}
	if !r.HasSpeed {
		m.SpeedKMH = 0
	}
	if r.ID != derivedID(r.DetectorID, p.startNs) {
		m.ID, m.HasID = r.ID, true
	}
	return m
}

// derivedID is the id the collector gives a reading: "<detector>@<interval start, Unix seconds>".
func derivedID(det string, startNs int64) string {
	if startNs%int64(time.Second) != 0 {
		return ""
	}
	return det + "@" + strconv.FormatInt(startNs/int64(time.Second), 10)
}

func toF32(xs []float64) []float32 {
	if xs == nil {
		return nil
	}
	out := make([]float32, len(xs))
	for i, x := range xs {
		out[i] = float32(x)
	}
	return out
}

func fromF32(xs []float32) []float64 {
	if len(xs) == 0 {
		return nil
	}
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}

// RestoreIntersection rebuilds an Intersection from its State. The topology of the intersection (id, window,
// approaches and detectors in order) must be the one the state was written with; cfg should be too. Any state
// is safe: one that is malformed or inconsistent gives an error wrapping ErrBadState. The Intersection shares no
// memory with st.
func RestoreIntersection(in topology.Intersection, cfg Config, st IntersectionState) (*Intersection, error) {
	s, err := NewIntersection(in, cfg)
	if err != nil {
		return nil, err
	}
	if st.Format != StateFormat {
		return nil, fmt.Errorf("%w: intersection %s: format %d, want %d", ErrBadState, in.ID, st.Format, StateFormat)
	}
	if err := s.load(&st); err != nil {
		return nil, fmt.Errorf("%w: intersection %s: %v", ErrBadState, in.ID, err)
	}
	return s, nil
}

func (s *Intersection) load(m *IntersectionState) error {
	if m.IntersectionID != s.in.ID || m.WindowS != s.winS {
		return fmt.Errorf("state is for %q with %d s windows, not %q with %d s", m.IntersectionID, m.WindowS, s.in.ID, s.winS)
	}
	if len(m.ApproachIDs) != len(s.aps) || len(m.DetectorIDs) != len(s.dets) {
		return errors.New("topology changed: approach or detector count differs")
	}
	for i, a := range s.aps {
		if m.ApproachIDs[i] != a.id {
			return fmt.Errorf("topology changed: approach %d is %q, state has %q", i, a.id, m.ApproachIDs[i])
		}
	}
	for i, d := range s.dets {
		if m.DetectorIDs[i] != d.id {
			return fmt.Errorf("topology changed: detector %d is %q, state has %q", i, d.id, m.DetectorIDs[i])
		}
	}
	maxWin := maxStart/s.winNs + 2
	inWin := func(k int64) bool { return k >= 0 && k <= maxWin }
	inTime := func(ns int64) bool { return ns >= 0 && ns <= maxStart }
	if !inTime(m.MaxEventNs) || !inTime(m.WatermarkNs) {
		return errors.New("event time or watermark out of range")
	}
	if !inWin(m.NextWindow) || !inWin(m.LastDataWindow) || m.LastDataWindow > m.NextWindow {
		return errors.New("window indices out of range")
	}
	st := &s.st
	st.Started, st.Next, st.MaxEvent, st.WM, st.LastData = m.Started, m.NextWindow, m.MaxEventNs, m.WatermarkNs, m.LastDataWindow

	for _, rm := range m.Open {
		p, err := s.loadReading(&rm)
		if err != nil {
			return fmt.Errorf("open reading: %v", err)
		}
		k := p.startNs / s.winNs
		if (k+1)*s.winNs <= st.WM || (st.Started && k < st.Next) {
			return fmt.Errorf("open window %d is already closed", k)
		}
		ow := st.Open[k]
		if ow == nil {
			ow = &openWindow{dets: make([][]pending, len(s.dets))}
			st.Open[k] = ow
		}
		list := ow.dets[p.det]
		if n := len(list); n > 0 && list[n-1].startNs+int64(list[n-1].r.IntervalS)*int64(time.Second) > p.startNs {
			return fmt.Errorf("open readings of detector %s unsorted or overlapping", p.r.DetectorID)
		}
		ow.dets[p.det] = append(list, p)
	}
	if len(m.Held) > s.maxHeld {
		return fmt.Errorf("%d held readings, at most %d", len(m.Held), s.maxHeld)
	}
	for _, rm := range m.Held {
		p, err := s.loadReading(&rm)
		if err != nil {
			return fmt.Errorf("held reading: %v", err)
		}
		if !inTime(rm.HeldAtNs) {
			return errors.New("held reading: hold time out of range")
		}
		st.Held = append(st.Held, heldReading{pending: p, at: rm.HeldAtNs})
	}
	for i, e := range m.Emissions {
		if !inWin(e.Window) || (i > 0 && e.Window <= m.Emissions[i-1].Window) {
			return errors.New("emissions out of range or unsorted")
		}
		st.Marks = append(st.Marks, emission{window: e.Window, pos: e.Position})
	}
	if int64(len(st.Marks)) > s.ringLen {
		return errors.New("more emissions than the lag history holds")
	}

	if len(m.Detectors) != len(s.dets) {
		return errors.New("detector state count differs")
	}
	for i, dm := range m.Detectors {
		name := s.dets[i].id
		ds := detState{LastObsW: dm.LastObsWindow, LastObs: dm.LastObsFlowVPH, HasObs: dm.HasObs, LastStart: dm.LastStartNs,
			Profile: fromF32(dm.ProfileVPH), ProfileSeen: make([]bool, hoursPerWeek)}
		if len(ds.Profile) != hoursPerWeek || len(dm.ProfileSeen) != hoursPerWeek || !allIn(ds.Profile, 0, maxStateFlow) ||
			!allIn([]float64{ds.LastObs}, 0, maxStateFlow) || !inWin(ds.LastObsW) || !inTime(ds.LastStart) {
			return fmt.Errorf("detector %s state invalid", name)
		}
		copy(ds.ProfileSeen, dm.ProfileSeen)
		if len(dm.ClosedStartsNs) != len(dm.ClosedHashes) || len(dm.ClosedStartsNs) > maxClosedPerDetector {
			return fmt.Errorf("detector %s: replay memory of %d starts and %d hashes (at most %d)", name,
				len(dm.ClosedStartsNs), len(dm.ClosedHashes), maxClosedPerDetector)
		}
		for j, start := range dm.ClosedStartsNs {
			if !inTime(start) || (j > 0 && start <= dm.ClosedStartsNs[j-1]) {
				return fmt.Errorf("detector %s: replay memory out of range or unsorted", name)
			}
			ds.Closed = append(ds.Closed, closedReading{startNs: start, hash: dm.ClosedHashes[j]})
		}
		if len(dm.Sequences) != int(numQuantities) {
			return fmt.Errorf("detector %s: %d sequences, want %d", name, len(dm.Sequences), numQuantities)
		}
		for q := range numQuantities {
			sm := dm.Sequences[q]
			ds.Seq[q] = seqState{Hist: slices.Clone(sm.History), Base: slices.Clone(sm.Baselines), Mean: fromF32(sm.ProfileMean),
				Weight: fromF32(sm.ProfileWeight), Last: sm.Last, Run: int(sm.Run)}
			if sm.Run < 0 || sm.Run > 1<<40 {
				return fmt.Errorf("detector %s %s: stuck run out of range", name, quantityNames[q])
			}
			if err := s.checkSeq(q, &ds.Seq[q]); err != nil {
				return fmt.Errorf("detector %s %s: %v", name, quantityNames[q], err)
			}
		}
		ds.Health = health(dm.Health)
		if !allIn([]float64{ds.Health.Valid, ds.Health.Flagged, ds.Health.Imputed, ds.Health.Late, ds.Health.Rejected, ds.Health.Windows}, 0, math.MaxFloat64) {
			return fmt.Errorf("detector %s health invalid", name)
		}
		st.Dets[i] = ds
	}
	if len(m.Approaches) != len(s.aps) {
		return errors.New("approach state count differs")
	}
	for i, am := range m.Approaches {
		lag := am.Lag
		if int64(len(lag)) != s.ringLen || !inWin(am.LastWritten) {
			return fmt.Errorf("approach %s lag history invalid", s.aps[i].id)
		}
		as := &st.Aps[i]
		for j, u := range lag {
			v, ok := ratioOfUnits(u)
			if !ok {
				return fmt.Errorf("approach %s lag history invalid", s.aps[i].id)
			}
			as.Lag[j] = v
		}
		if len(am.Recent) != 0 && len(am.Recent) != len(as.Recent) {
			return fmt.Errorf("approach %s recent history of %d values, want %d", s.aps[i].id, len(am.Recent), len(as.Recent))
		}
		for j, u := range am.Recent {
			v, ok := ratioOfUnits(u)
			if !ok {
				return fmt.Errorf("approach %s recent history invalid", s.aps[i].id)
			}
			as.Recent[j] = v
		}
		as.LastWritten, as.HasWritten = am.LastWritten, am.HasWritten
	}
	return nil
}

// loadReading validates one buffered reading the way Add does.
func (s *Intersection) loadReading(rm *BufferedReading) (pending, error) {
	det := int(rm.Detector)
	if rm.Detector >= uint32(len(s.dets)) || rm.StartNs < minStart || rm.StartNs >= maxStart {
		return pending{}, errors.New("bad detector or start")
	}
	d := s.dets[det]
	r := Reading{ID: rm.ID, IntersectionID: s.in.ID, ApproachID: s.aps[d.approach].id, DetectorID: d.id,
		Start: time.Unix(0, rm.StartNs).UTC(), IntervalS: int(rm.IntervalS), Count: rm.Count, FlowVPH: rm.FlowVPH,
		NoCount: rm.NoCount, HasOccupancy: rm.HasOccupancy, HasSpeed: rm.HasSpeed}
	if rm.HasOccupancy {
		r.Occupancy = rm.Occupancy
	}
	if rm.HasSpeed {
		r.SpeedKMH = rm.SpeedKMH
	}
	if !rm.HasID {
		r.ID = derivedID(d.id, rm.StartNs)
	}
	orig := r
	if _, rj := s.check(&r); rj != nil || r != orig {
		return pending{}, fmt.Errorf("reading %q of detector %s invalid", r.ID, d.id)
	}
	return pending{r: r, startNs: rm.StartNs, det: det}, nil
}

// checkSeq validates one quantity's restored sequence state.
func (s *Intersection) checkSeq(q quantity, sq *seqState) error {
	hi := [numQuantities]float64{maxStateFlow, MaxSpeedKMH, 1}[q]
	bases := func(xs []float64) bool {
		for _, b := range xs {
			if b != -1 && !(b >= 0 && b <= hi) {
				return false
			}
		}
		return true
	}
	switch {
	case len(sq.Hist) > s.cfg.HampelWindow || len(sq.Base) != len(sq.Hist):
		return errors.New("history longer than the window or without baselines")
	case !allIn(sq.Hist, 0, hi) || !bases(sq.Base):
		return errors.New("history value or baseline out of range")
	case (sq.Mean == nil) != (sq.Weight == nil) || (sq.Mean != nil && (len(sq.Mean) != hoursPerWeek || len(sq.Weight) != hoursPerWeek)):
		return errors.New("profile incomplete")
	case !allIn(sq.Mean, 0, hi) || !allIn(sq.Weight, 0, maxProfileWeight):
		return errors.New("profile value out of range")
	case sq.Run < 0 || sq.Run > 1<<40 || !allIn([]float64{sq.Last}, 0, hi):
		return errors.New("stuck run out of range")
	}
	return nil
}

// maxStateFlow bounds restored flows, counts and ratios: far above anything a valid reading produces, far
// below where arithmetic on them could overflow.
const maxStateFlow = 1e7

func allIn(xs []float64, lo, hi float64) bool {
	for _, x := range xs {
		if !(x >= lo && x <= hi) {
			return false
		}
	}
	return true
}

// ratioOfUnits decodes one stored history value (1/lagQuantum steps, LagAbsent for none: NaN); ok is false for
// a value no writer produces.
func ratioOfUnits(u uint16) (float64, bool) {
	switch {
	case u == LagAbsent:
		return math.NaN(), true
	case u > maxLagUnits:
		return 0, false
	}
	return float64(u) / lagQuantum, true
}
