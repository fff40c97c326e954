package wire

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topology"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// maxCleanerStateBytes bounds a decompressed cleaner state: far above what any topology needs (an intersection
// of 64 detectors at 60 s windows is under 2 MB), and a limit on what a corrupt or hostile record can allocate.
const maxCleanerStateBytes = 16 << 20

// MarshalCleaner encodes an intersection's state (see EncodeCleanerState).
func MarshalCleaner(s *clean.Intersection) ([]byte, error) {
	return EncodeCleanerState(s.State())
}

// EncodeCleanerState encodes a cleaner state as a greenwave.v1.CleanerIntersectionState, deflate-compressed
// (RFC 1951): the profiles and the lag history compress to about half. Restore it with RestoreCleaner.
func EncodeCleanerState(st clean.IntersectionState) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(cleanerStateProto(st))
	if err != nil {
		return nil, fmt.Errorf("marshal cleaner state of %s: %w", st.IntersectionID, err)
	}
	if b, err = stream.Deflate(b); err != nil {
		return nil, fmt.Errorf("compress cleaner state of %s: %w", st.IntersectionID, err)
	}
	return b, nil
}

// RestoreCleaner rebuilds an intersection from EncodeCleanerState's bytes, or from a JSON state of formats 1
// to 3 (migrated once, see clean.RestoreLegacyIntersection). Any bytes are safe: a state that is malformed or
// inconsistent gives an error wrapping clean.ErrBadState.
func RestoreCleaner(in topology.Intersection, cfg clean.Config, b []byte) (*clean.Intersection, error) {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		return clean.RestoreLegacyIntersection(in, cfg, b)
	}
	st, err := DecodeCleanerState(b)
	if err != nil {
		return nil, err
	}
	return clean.RestoreIntersection(in, cfg, st)
}

// DecodeCleanerState decompresses and decodes EncodeCleanerState's bytes without restoring them (for tools that
// show a state). It fails with an error wrapping clean.ErrBadState.
func DecodeCleanerState(b []byte) (clean.IntersectionState, error) {
	raw, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(b)), maxCleanerStateBytes+1))
	if err != nil {
		return clean.IntersectionState{}, fmt.Errorf("%w: decompress: %v", clean.ErrBadState, err)
	}
	if len(raw) > maxCleanerStateBytes {
		return clean.IntersectionState{}, fmt.Errorf("%w: larger than %d bytes decompressed", clean.ErrBadState, maxCleanerStateBytes)
	}
	return unmarshalCleanerState(raw)
}

// unmarshalCleanerState decodes an uncompressed greenwave.v1.CleanerIntersectionState.
func unmarshalCleanerState(raw []byte) (clean.IntersectionState, error) {
	var m greenwavev1.CleanerIntersectionState
	if err := proto.Unmarshal(raw, &m); err != nil {
		return clean.IntersectionState{}, fmt.Errorf("%w: decode: %v", clean.ErrBadState, err)
	}
	return cleanerState(&m)
}

func cleanerStateProto(st clean.IntersectionState) *greenwavev1.CleanerIntersectionState {
	m := &greenwavev1.CleanerIntersectionState{
		Format: st.Format, IntersectionId: st.IntersectionID, WindowS: st.WindowS, ApproachIds: st.ApproachIDs, DetectorIds: st.DetectorIDs,
		Started: st.Started, NextWindow: st.NextWindow, MaxEventNs: st.MaxEventNs, WatermarkNs: st.WatermarkNs, LastDataWindow: st.LastDataWindow,
	}
	for _, r := range st.Open {
		m.Open = append(m.Open, bufferedReadingProto(r))
	}
	for _, r := range st.Held {
		m.Held = append(m.Held, bufferedReadingProto(r))
	}
	for _, e := range st.Emissions {
		m.Emissions = append(m.Emissions, &greenwavev1.CleanerEmission{Window: e.Window, Position: e.Position})
	}
	for _, d := range st.Detectors {
		h := d.Health
		dm := &greenwavev1.CleanerDetectorState{
			LastObsWindow: d.LastObsWindow, LastObsFlowVph: d.LastObsFlowVPH, HasObs: d.HasObs, LastStartNs: d.LastStartNs,
			ClosedStartsNs: d.ClosedStartsNs, ClosedHashes: d.ClosedHashes,
			ProfileVph: d.ProfileVPH, ProfileSeen: packBits(d.ProfileSeen),
			Health: &greenwavev1.CleanerHealth{Valid: h.Valid, Flagged: h.Flagged, Imputed: h.Imputed, Late: h.Late, Rejected: h.Rejected, Windows: h.Windows},
		}
		for _, sq := range d.Sequences {
			dm.Sequences = append(dm.Sequences, &greenwavev1.CleanerSequence{History: sq.History, Baselines: sq.Baselines,
				ProfileMean: sq.ProfileMean, ProfileWeight: sq.ProfileWeight, Last: sq.Last, Run: sq.Run})
		}
		m.Detectors = append(m.Detectors, dm)
	}
	for _, a := range st.Approaches {
		lag := make([]byte, 2*len(a.Lag))
		for j, u := range a.Lag {
			binary.LittleEndian.PutUint16(lag[2*j:], u)
		}
		m.Approaches = append(m.Approaches, &greenwavev1.CleanerApproachState{Lag: lag, Recent: packUint16s(a.Recent), LastWritten: a.LastWritten, HasWritten: a.HasWritten})
	}
	return m
}

func bufferedReadingProto(r clean.BufferedReading) *greenwavev1.CleanerReading {
	m := &greenwavev1.CleanerReading{Detector: r.Detector, StartNs: r.StartNs, IntervalS: r.IntervalS, Count: r.Count, FlowVph: r.FlowVPH,
		CountAbsent: r.NoCount, HeldAtNs: r.HeldAtNs, OccupancyRatio: opt(r.HasOccupancy, r.Occupancy), SpeedKmh: opt(r.HasSpeed, r.SpeedKMH)}
	if r.HasID {
		m.ReadingId = proto.String(r.ID)
	}
	return m
}

func cleanerState(m *greenwavev1.CleanerIntersectionState) (clean.IntersectionState, error) {
	st := clean.IntersectionState{
		Format: m.GetFormat(), IntersectionID: m.GetIntersectionId(), WindowS: m.GetWindowS(), ApproachIDs: m.GetApproachIds(), DetectorIDs: m.GetDetectorIds(),
		Started: m.GetStarted(), NextWindow: m.GetNextWindow(), MaxEventNs: m.GetMaxEventNs(), WatermarkNs: m.GetWatermarkNs(), LastDataWindow: m.GetLastDataWindow(),
	}
	for _, r := range m.GetOpen() {
		st.Open = append(st.Open, bufferedReading(r))
	}
	for _, r := range m.GetHeld() {
		st.Held = append(st.Held, bufferedReading(r))
	}
	for _, e := range m.GetEmissions() {
		st.Emissions = append(st.Emissions, clean.Emission{Window: e.GetWindow(), Position: e.GetPosition()})
	}
	for _, dm := range m.GetDetectors() {
		h := dm.GetHealth()
		d := clean.DetectorState{
			LastObsWindow: dm.GetLastObsWindow(), LastObsFlowVPH: dm.GetLastObsFlowVph(), HasObs: dm.GetHasObs(), LastStartNs: dm.GetLastStartNs(),
			ClosedStartsNs: dm.GetClosedStartsNs(), ClosedHashes: dm.GetClosedHashes(),
			ProfileVPH: dm.GetProfileVph(), ProfileSeen: unpackBits(dm.GetProfileSeen()),
			Health: clean.HealthState{Valid: h.GetValid(), Flagged: h.GetFlagged(), Imputed: h.GetImputed(), Late: h.GetLate(), Rejected: h.GetRejected(), Windows: h.GetWindows()},
		}
		for _, sq := range dm.GetSequences() {
			d.Sequences = append(d.Sequences, clean.SequenceState{History: sq.GetHistory(), Baselines: sq.GetBaselines(),
				ProfileMean: sq.GetProfileMean(), ProfileWeight: sq.GetProfileWeight(), Last: sq.GetLast(), Run: sq.GetRun()})
		}
		st.Detectors = append(st.Detectors, d)
	}
	for i, am := range m.GetApproaches() {
		b := am.GetLag()
		if len(b)%2 != 0 {
			return clean.IntersectionState{}, fmt.Errorf("%w: intersection %s: approach %d lag history invalid", clean.ErrBadState, st.IntersectionID, i)
		}
		lag := make([]uint16, len(b)/2)
		for j := range lag {
			lag[j] = binary.LittleEndian.Uint16(b[2*j:])
		}
		rb := am.GetRecent()
		if len(rb)%2 != 0 {
			return clean.IntersectionState{}, fmt.Errorf("%w: intersection %s: approach %d recent history invalid", clean.ErrBadState, st.IntersectionID, i)
		}
		st.Approaches = append(st.Approaches, clean.ApproachState{Lag: lag, Recent: unpackUint16s(rb), LastWritten: am.GetLastWritten(), HasWritten: am.GetHasWritten()})
	}
	return st, nil
}

// packUint16s encodes vs as little-endian uint16s (nil for none).
func packUint16s(vs []uint16) []byte {
	if len(vs) == 0 {
		return nil
	}
	b := make([]byte, 2*len(vs))
	for j, u := range vs {
		binary.LittleEndian.PutUint16(b[2*j:], u)
	}
	return b
}

// unpackUint16s decodes little-endian uint16s (nil for none); len(b) must be even.
func unpackUint16s(b []byte) []uint16 {
	if len(b) == 0 {
		return nil
	}
	out := make([]uint16, len(b)/2)
	for j := range out {
		out[j] = binary.LittleEndian.Uint16(b[2*j:])
	}
	return out
}

func bufferedReading(m *greenwavev1.CleanerReading) clean.BufferedReading {
	return clean.BufferedReading{Detector: m.GetDetector(), StartNs: m.GetStartNs(), IntervalS: m.GetIntervalS(), Count: m.GetCount(),
		FlowVPH: m.GetFlowVph(), NoCount: m.GetCountAbsent(), Occupancy: m.GetOccupancyRatio(), HasOccupancy: m.OccupancyRatio != nil,
		SpeedKMH: m.GetSpeedKmh(), HasSpeed: m.SpeedKmh != nil, ID: m.GetReadingId(), HasID: m.ReadingId != nil, HeldAtNs: m.GetHeldAtNs()}
}

// packBits packs a bitmap little-endian within each byte.
func packBits(bs []bool) []byte {
	out := make([]byte, (len(bs)+7)/8)
	for i, b := range bs {
		if b {
			out[i/8] |= 1 << (i % 8)
		}
	}
	return out
}

func unpackBits(b []byte) []bool {
	out := make([]bool, 8*len(b))
	for i := range out {
		out[i] = b[i/8]&(1<<(i%8)) != 0
	}
	return out
}
