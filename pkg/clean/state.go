package clean

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/topology"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// StateFormat is the version of the state written by MarshalState: a greenwave.v1.CleanerIntersectionState
// (proto/greenwave/v1/cleaner_state.proto). Formats 1 to 3 were JSON; RestoreIntersection still reads them once
// and migrates them (see restoreLegacy).
//
// Format 4 holds what a restore needs and no more: no dedup memory (the open windows are it), the profiles in
// float32, the lag history in 1/10000 steps, and only the emission positions newer than the last checkpoint.
const StateFormat = 4

// ErrBadState is wrapped by RestoreIntersection when the bytes are not a usable state for the intersection.
var ErrBadState = errors.New("bad cleaner state")

// MarshalState encodes the complete state (open and held readings, event time, outlier and stuck state,
// profiles, health, lag history, recent emission positions) as a greenwave.v1.CleanerIntersectionState,
// deflate-compressed (RFC 1951): the profiles and the lag history compress to about half. Restore it with
// RestoreIntersection and the same topology and Config. The UpstreamLookup is not state: attach it again
// (SetUpstream).
func (s *Intersection) MarshalState() ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(s.StateMessage())
	if err != nil {
		return nil, fmt.Errorf("marshal cleaner state of %s: %w", s.in.ID, err)
	}
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.DefaultCompression)
	if err == nil {
		_, err = w.Write(b)
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("compress cleaner state of %s: %w", s.in.ID, err)
	}
	return buf.Bytes(), nil
}

// maxStateBytes bounds a decompressed state: far above what any topology needs (an intersection of 64
// detectors at 60 s windows is under 2 MB), and a limit on what a corrupt or hostile record can allocate.
const maxStateBytes = 16 << 20

// DecodeState decompresses and decodes MarshalState's bytes without restoring them (for tools that show a
// state). It fails with an error wrapping ErrBadState.
func DecodeState(b []byte) (*greenwavev1.CleanerIntersectionState, error) {
	raw, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(b)), maxStateBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: decompress: %v", ErrBadState, err)
	}
	if len(raw) > maxStateBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes decompressed", ErrBadState, maxStateBytes)
	}
	var m greenwavev1.CleanerIntersectionState
	if err := proto.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: decode: %v", ErrBadState, err)
	}
	return &m, nil
}

// StateMessage is the state as a protobuf message (what MarshalState encodes).
func (s *Intersection) StateMessage() *greenwavev1.CleanerIntersectionState {
	m := &greenwavev1.CleanerIntersectionState{
		Format: StateFormat, IntersectionId: s.in.ID, WindowS: s.winS,
		Started: s.st.Started, NextWindow: s.st.Next, MaxEventNs: s.st.MaxEvent, WatermarkNs: s.st.WM, LastDataWindow: s.st.LastData,
	}
	for _, a := range s.aps {
		m.ApproachIds = append(m.ApproachIds, a.id)
	}
	for _, d := range s.dets {
		m.DetectorIds = append(m.DetectorIds, d.id)
	}
	for _, k := range slices.Sorted(maps.Keys(s.st.Open)) {
		for _, list := range s.st.Open[k].dets {
			for _, p := range list {
				m.Open = append(m.Open, s.readingMessage(p, 0))
			}
		}
	}
	for _, h := range s.st.Held {
		m.Held = append(m.Held, s.readingMessage(h.pending, h.at))
	}
	for _, e := range s.st.Marks {
		m.Emissions = append(m.Emissions, &greenwavev1.CleanerEmission{Window: e.window, Position: e.pos})
	}
	for i := range s.st.Dets {
		ds := &s.st.Dets[i]
		dm := &greenwavev1.CleanerDetectorState{
			LastObsWindow: ds.LastObsW, LastObsFlowVph: ds.LastObs, HasObs: ds.HasObs, LastStartNs: ds.LastStart,
			ProfileVph: toF32(ds.Profile), ProfileSeen: packBits(ds.ProfileSeen),
			Health: &greenwavev1.CleanerHealth{Valid: ds.Health.Valid, Flagged: ds.Health.Flagged, Imputed: ds.Health.Imputed,
				Late: ds.Health.Late, Rejected: ds.Health.Rejected, Windows: ds.Health.Windows},
		}
		for q := range numQuantities {
			sq := &ds.Seq[q]
			dm.Sequences = append(dm.Sequences, &greenwavev1.CleanerSequence{History: sq.Hist, Baselines: sq.Base,
				ProfileMean: toF32(sq.Mean), ProfileWeight: toF32(sq.Weight), Last: sq.Last, Run: int64(sq.Run)})
		}
		m.Detectors = append(m.Detectors, dm)
	}
	for i := range s.st.Aps {
		as := &s.st.Aps[i]
		lag := make([]byte, 2*len(as.Lag))
		for j, v := range as.Lag {
			u := uint16(0xFFFF)
			if !math.IsNaN(v) {
				u = lagUnits(v)
			}
			lag[2*j], lag[2*j+1] = byte(u), byte(u>>8)
		}
		m.Approaches = append(m.Approaches, &greenwavev1.CleanerApproachState{Lag: lag, LastWritten: as.LastWritten, HasWritten: as.HasWritten})
	}
	return m
}

// readingMessage encodes a buffered reading; the id only when it is not the derived one.
func (s *Intersection) readingMessage(p pending, heldAt int64) *greenwavev1.CleanerReading {
	r := &p.r
	m := &greenwavev1.CleanerReading{Detector: uint32(p.det), StartNs: p.startNs, IntervalS: int32(r.IntervalS), Count: r.Count,
		FlowVph: r.FlowVPH, HeldAtNs: heldAt}
	if r.HasOccupancy {
		m.OccupancyRatio = &r.Occupancy
	}
	if r.HasSpeed {
		m.SpeedKmh = &r.SpeedKMH
	}
	if r.ID != derivedID(r.DetectorID, p.startNs) {
		m.ReadingId = &r.ID
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

func packBits(bs []bool) []byte {
	out := make([]byte, (len(bs)+7)/8)
	for i, b := range bs {
		if b {
			out[i/8] |= 1 << (i % 8)
		}
	}
	return out
}

// RestoreIntersection rebuilds an Intersection from MarshalState's bytes, or from a JSON state of formats 1 to
// 3 (migrated). The topology of the intersection (id, window, approaches and detectors in order) must be the one
// the state was written with; cfg should be too. Any bytes are safe: a state that is malformed or inconsistent
// gives an error wrapping ErrBadState.
func RestoreIntersection(in topology.Intersection, cfg Config, b []byte) (*Intersection, error) {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		return restoreLegacy(in, cfg, b)
	}
	m, err := DecodeState(b)
	if err != nil {
		return nil, err
	}
	return RestoreIntersectionMessage(in, cfg, m)
}

// RestoreIntersectionMessage is RestoreIntersection from the decoded message (StateMessage's).
func RestoreIntersectionMessage(in topology.Intersection, cfg Config, m *greenwavev1.CleanerIntersectionState) (*Intersection, error) {
	s, err := NewIntersection(in, cfg)
	if err != nil {
		return nil, err
	}
	if m.GetFormat() != StateFormat {
		return nil, fmt.Errorf("%w: intersection %s: format %d, want %d", ErrBadState, in.ID, m.GetFormat(), StateFormat)
	}
	if err := s.load(m); err != nil {
		return nil, fmt.Errorf("%w: intersection %s: %v", ErrBadState, in.ID, err)
	}
	return s, nil
}

func (s *Intersection) load(m *greenwavev1.CleanerIntersectionState) error {
	if m.GetIntersectionId() != s.in.ID || m.GetWindowS() != s.winS {
		return fmt.Errorf("state is for %q with %d s windows, not %q with %d s", m.GetIntersectionId(), m.GetWindowS(), s.in.ID, s.winS)
	}
	if len(m.GetApproachIds()) != len(s.aps) || len(m.GetDetectorIds()) != len(s.dets) {
		return errors.New("topology changed: approach or detector count differs")
	}
	for i, a := range s.aps {
		if m.GetApproachIds()[i] != a.id {
			return fmt.Errorf("topology changed: approach %d is %q, state has %q", i, a.id, m.GetApproachIds()[i])
		}
	}
	for i, d := range s.dets {
		if m.GetDetectorIds()[i] != d.id {
			return fmt.Errorf("topology changed: detector %d is %q, state has %q", i, d.id, m.GetDetectorIds()[i])
		}
	}
	maxWin := maxStart/s.winNs + 2
	inWin := func(k int64) bool { return k >= 0 && k <= maxWin }
	inTime := func(ns int64) bool { return ns >= 0 && ns <= maxStart }
	if !inTime(m.GetMaxEventNs()) || !inTime(m.GetWatermarkNs()) {
		return errors.New("event time or watermark out of range")
	}
	if !inWin(m.GetNextWindow()) || !inWin(m.GetLastDataWindow()) || m.GetLastDataWindow() > m.GetNextWindow() {
		return errors.New("window indices out of range")
	}
	st := &s.st
	st.Started, st.Next, st.MaxEvent, st.WM, st.LastData = m.GetStarted(), m.GetNextWindow(), m.GetMaxEventNs(), m.GetWatermarkNs(), m.GetLastDataWindow()

	for _, rm := range m.GetOpen() {
		p, err := s.loadReading(rm)
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
	if len(m.GetHeld()) > s.maxHeld {
		return fmt.Errorf("%d held readings, at most %d", len(m.GetHeld()), s.maxHeld)
	}
	for _, rm := range m.GetHeld() {
		p, err := s.loadReading(rm)
		if err != nil {
			return fmt.Errorf("held reading: %v", err)
		}
		if !inTime(rm.GetHeldAtNs()) {
			return errors.New("held reading: hold time out of range")
		}
		st.Held = append(st.Held, heldReading{pending: p, at: rm.GetHeldAtNs()})
	}
	for i, e := range m.GetEmissions() {
		if !inWin(e.GetWindow()) || (i > 0 && e.GetWindow() <= m.GetEmissions()[i-1].GetWindow()) {
			return errors.New("emissions out of range or unsorted")
		}
		st.Marks = append(st.Marks, emission{window: e.GetWindow(), pos: e.GetPosition()})
	}
	if int64(len(st.Marks)) > s.ringLen {
		return errors.New("more emissions than the lag history holds")
	}

	if len(m.GetDetectors()) != len(s.dets) {
		return errors.New("detector state count differs")
	}
	for i, dm := range m.GetDetectors() {
		name := s.dets[i].id
		ds := detState{LastObsW: dm.GetLastObsWindow(), LastObs: dm.GetLastObsFlowVph(), HasObs: dm.GetHasObs(), LastStart: dm.GetLastStartNs(),
			Profile: fromF32(dm.GetProfileVph()), ProfileSeen: make([]bool, hoursPerWeek)}
		if len(ds.Profile) != hoursPerWeek || len(dm.GetProfileSeen()) != (hoursPerWeek+7)/8 || !allIn(ds.Profile, 0, maxStateFlow) ||
			!allIn([]float64{ds.LastObs}, 0, maxStateFlow) || !inWin(ds.LastObsW) || !inTime(ds.LastStart) {
			return fmt.Errorf("detector %s state invalid", name)
		}
		for j := range ds.ProfileSeen {
			ds.ProfileSeen[j] = dm.GetProfileSeen()[j/8]&(1<<(j%8)) != 0
		}
		if len(dm.GetSequences()) != int(numQuantities) {
			return fmt.Errorf("detector %s: %d sequences, want %d", name, len(dm.GetSequences()), numQuantities)
		}
		for q := range numQuantities {
			sm := dm.GetSequences()[q]
			ds.Seq[q] = seqState{Hist: sm.GetHistory(), Base: sm.GetBaselines(), Mean: fromF32(sm.GetProfileMean()),
				Weight: fromF32(sm.GetProfileWeight()), Last: sm.GetLast(), Run: int(sm.GetRun())}
			if sm.GetRun() < 0 || sm.GetRun() > 1<<40 {
				return fmt.Errorf("detector %s %s: stuck run out of range", name, quantityNames[q])
			}
			if err := s.checkSeq(q, &ds.Seq[q]); err != nil {
				return fmt.Errorf("detector %s %s: %v", name, quantityNames[q], err)
			}
		}
		h := dm.GetHealth()
		ds.Health = health{Valid: h.GetValid(), Flagged: h.GetFlagged(), Imputed: h.GetImputed(), Late: h.GetLate(),
			Rejected: h.GetRejected(), Windows: h.GetWindows()}
		if !allIn([]float64{ds.Health.Valid, ds.Health.Flagged, ds.Health.Imputed, ds.Health.Late, ds.Health.Rejected, ds.Health.Windows}, 0, math.MaxFloat64) {
			return fmt.Errorf("detector %s health invalid", name)
		}
		st.Dets[i] = ds
	}
	if len(m.GetApproaches()) != len(s.aps) {
		return errors.New("approach state count differs")
	}
	for i, am := range m.GetApproaches() {
		lag := am.GetLag()
		if int64(len(lag)) != 2*s.ringLen || !inWin(am.GetLastWritten()) {
			return fmt.Errorf("approach %s lag history invalid", s.aps[i].id)
		}
		as := &st.Aps[i]
		for j := range as.Lag {
			u := uint16(lag[2*j]) | uint16(lag[2*j+1])<<8
			switch {
			case u == 0xFFFF:
				as.Lag[j] = math.NaN()
			case u > maxLagUnits:
				return fmt.Errorf("approach %s lag history invalid", s.aps[i].id)
			default:
				as.Lag[j] = float64(u) / lagQuantum
			}
		}
		as.LastWritten, as.HasWritten = am.GetLastWritten(), am.GetHasWritten()
	}
	return nil
}

// loadReading validates one buffered reading the way Add does.
func (s *Intersection) loadReading(rm *greenwavev1.CleanerReading) (pending, error) {
	det := int(rm.GetDetector())
	if rm.GetDetector() >= uint32(len(s.dets)) || rm.GetStartNs() < minStart || rm.GetStartNs() >= maxStart {
		return pending{}, errors.New("bad detector or start")
	}
	d := s.dets[det]
	r := Reading{ID: rm.GetReadingId(), IntersectionID: s.in.ID, ApproachID: s.aps[d.approach].id, DetectorID: d.id,
		Start: time.Unix(0, rm.GetStartNs()).UTC(), IntervalS: int(rm.GetIntervalS()), Count: rm.GetCount(), FlowVPH: rm.GetFlowVph(),
		Occupancy: rm.GetOccupancyRatio(), SpeedKMH: rm.GetSpeedKmh(), HasOccupancy: rm.OccupancyRatio != nil, HasSpeed: rm.SpeedKmh != nil}
	if rm.ReadingId == nil {
		r.ID = derivedID(d.id, rm.GetStartNs())
	}
	orig := r
	if _, rj := s.check(&r); rj != nil || r != orig {
		return pending{}, fmt.Errorf("reading %q of detector %s invalid", r.ID, d.id)
	}
	return pending{r: r, startNs: rm.GetStartNs(), det: det}, nil
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
