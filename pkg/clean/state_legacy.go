package clean

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"

	"github.com/greenwave-city/greenwave/pkg/topology"
)

// The JSON state of formats 1 to 3, written by cleaners before the protobuf state. It is read, never written:
// RestoreLegacyIntersection converts it into format 4 once. What changes on the way: the dedup memory is dropped (format 4
// derives it from the open windows), the profiles are rounded to float32 and the lag history to 1/10000, and
// the emission positions become marks. A migrated intersection therefore continues almost, not bit-exactly,
// like a never-stopped one of the old version; from then on restarts are exact again.
type legacyState struct {
	Format       int      `json:"format"`
	Intersection string   `json:"intersection"`
	WindowS      int64    `json:"window_s"`
	Approaches   []string `json:"approaches"`
	Detectors    []string `json:"detectors"`

	Started  bool  `json:"started"`
	Next     int64 `json:"next"`
	MaxEvent int64 `json:"max_event_ns"`
	WM       int64 `json:"watermark_ns"`
	LastData int64 `json:"last_data"`

	Open []legacyWindow `json:"open"`
	Dets []legacyDet    `json:"detector_state"`
	Aps  []legacyAp     `json:"approach_state"`
}

type legacyWindow struct {
	Window   int64           `json:"window"`
	Readings []legacyReading `json:"readings"`
}

// fingerprint is a normalized reading's content as formats 1 to 3 stored it.
type fingerprint struct {
	Det       int     `json:"det"`
	Start     int64   `json:"start"`
	IntervalS int     `json:"interval_s"`
	Count     float64 `json:"count"`
	FlowVPH   float64 `json:"flow_vph"`
	Occ       float64 `json:"occ"`
	Speed     float64 `json:"speed"`
	HasOcc    bool    `json:"has_occ"`
	HasSpeed  bool    `json:"has_speed"`
}

type legacyReading struct {
	ID string `json:"id,omitempty"`
	fingerprint
}

type legacySeq struct {
	Hist   []float64 `json:"hist,omitempty"`
	Base   []float64 `json:"base,omitempty"`
	Mean   []float64 `json:"mean,omitempty"`
	Weight []float64 `json:"weight,omitempty"`
	Last   float64   `json:"last,omitempty"`
	Run    int       `json:"run,omitempty"`
}

// legacyDet is a detector's state; the Legacy fields are format 1's flow sequence state.
type legacyDet struct {
	Seq             [numQuantities]legacySeq `json:"seq"`
	LastObsW        int64                    `json:"last_obs_window"`
	LastObs         float64                  `json:"last_obs_flow"`
	HasObs          bool                     `json:"has_obs"`
	Profile         []float64                `json:"profile"`
	ProfileN        []int64                  `json:"profile_n"`
	Health          health                   `json:"health"`
	LegacyHist      []float64                `json:"hist,omitempty"`
	LegacyLastCount float64                  `json:"last_count,omitempty"`
	LegacyHasLast   bool                     `json:"has_last,omitempty"`
	LegacyRun       int                      `json:"run,omitempty"`
}

type legacyAp struct {
	Lag         []byte `json:"lag"`
	Emitted     []byte `json:"emitted,omitempty"`
	LastWritten int64  `json:"last_written"`
	HasWritten  bool   `json:"has_written"`
}

// RestoreLegacyIntersection migrates a JSON state of formats 1 to 3 (see legacyState), like RestoreIntersection.
func RestoreLegacyIntersection(in topology.Intersection, cfg Config, b []byte) (*Intersection, error) {
	s, err := NewIntersection(in, cfg)
	if err != nil {
		return nil, err
	}
	var w legacyState
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("%w: decode: %v", ErrBadState, err)
	}
	m, err := s.migrate(&w)
	if err == nil {
		err = s.load(m)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: intersection %s: format %d state: %v", ErrBadState, in.ID, w.Format, err)
	}
	return s, nil
}

// migrate converts a legacy state into format 4; load validates the result.
func (s *Intersection) migrate(w *legacyState) (*IntersectionState, error) {
	if w.Format < 1 || w.Format > 3 {
		return nil, fmt.Errorf("format %d, want 1 to 3", w.Format)
	}
	m := &IntersectionState{Format: StateFormat, IntersectionID: w.Intersection, WindowS: w.WindowS,
		ApproachIDs: w.Approaches, DetectorIDs: w.Detectors, Started: w.Started, NextWindow: w.Next, MaxEventNs: w.MaxEvent,
		WatermarkNs: w.WM, LastDataWindow: w.LastData}
	lastStart := make([]int64, len(w.Dets))
	for _, ow := range w.Open {
		for _, r := range ow.Readings {
			fp := r.fingerprint
			if fp.Det < 0 || fp.Det >= len(s.dets) || fp.Start/s.winNs != ow.Window || fp.IntervalS < 0 || fp.IntervalS > MaxIntervalS {
				return nil, errors.New("open reading: bad detector, start or interval")
			}
			rm := BufferedReading{Detector: uint32(fp.Det), StartNs: fp.Start, IntervalS: int32(fp.IntervalS),
				Count: fp.Count, FlowVPH: fp.FlowVPH}
			if fp.HasOcc {
				rm.Occupancy, rm.HasOccupancy = fp.Occ, true
			}
			if fp.HasSpeed {
				rm.SpeedKMH, rm.HasSpeed = fp.Speed, true
			}
			if id := r.ID; id != derivedID(s.dets[fp.Det].id, fp.Start) {
				rm.ID, rm.HasID = id, true
			}
			m.Open = append(m.Open, rm)
			if fp.Det < len(lastStart) {
				lastStart[fp.Det] = max(lastStart[fp.Det], fp.Start)
			}
		}
	}
	for i, wd := range w.Dets {
		seq := wd.Seq
		if w.Format == 1 {
			if !reflect.DeepEqual(seq, [numQuantities]legacySeq{}) {
				return nil, fmt.Errorf("detector %d: format 1 state with sequence state", i)
			}
			fs := &seq[qFlow]
			fs.Hist = wd.LegacyHist
			fs.Base = make([]float64, len(fs.Hist))
			for j := range fs.Base {
				fs.Base[j] = -1
			}
			if wd.LegacyHasLast {
				fs.Last, fs.Run = wd.LegacyLastCount, wd.LegacyRun
			}
		} else if wd.LegacyHist != nil || wd.LegacyLastCount != 0 || wd.LegacyHasLast || wd.LegacyRun != 0 {
			return nil, fmt.Errorf("detector %d: format 1 fields in format %d state", i, w.Format)
		}
		if len(wd.ProfileN) != hoursPerWeek {
			return nil, fmt.Errorf("detector %d: profile counts invalid", i)
		}
		seen := make([]bool, hoursPerWeek)
		for j, n := range wd.ProfileN {
			seen[j] = n > 0
		}
		ls := lastStart[i]
		if wd.HasObs && wd.LastObsW > 0 && wd.LastObsW < maxStart/s.winNs {
			ls = max(ls, wd.LastObsW*s.winNs)
		}
		dm := DetectorState{LastObsWindow: wd.LastObsW, LastObsFlowVPH: wd.LastObs, HasObs: wd.HasObs,
			ProfileVPH: toF32(wd.Profile), ProfileSeen: seen, LastStartNs: ls, Health: HealthState(wd.Health)}
		for q := range numQuantities {
			sq := seq[q]
			dm.Sequences = append(dm.Sequences, SequenceState{History: sq.Hist, Baselines: sq.Base,
				ProfileMean: toF32(sq.Mean), ProfileWeight: toF32(sq.Weight), Last: sq.Last, Run: int64(sq.Run)})
		}
		m.Detectors = append(m.Detectors, dm)
	}
	for i, wa := range w.Aps {
		if int64(len(wa.Lag)) != 8*s.ringLen {
			return nil, fmt.Errorf("approach %d lag history invalid", i)
		}
		lag := make([]uint16, s.ringLen)
		for j := range s.ringLen {
			v := math.Float64frombits(binary.LittleEndian.Uint64(wa.Lag[8*j:]))
			lag[j] = LagAbsent
			if !math.IsNaN(v) {
				if !(v >= 0 && v <= maxStateFlow) {
					return nil, fmt.Errorf("approach %d lag history invalid", i)
				}
				lag[j] = lagUnits(v)
			}
		}
		m.Approaches = append(m.Approaches, ApproachState{Lag: lag, LastWritten: wa.LastWritten, HasWritten: wa.HasWritten})
		// Every approach was stamped at the same emissions: the first one's stamps become the marks.
		if i == 0 && int64(len(wa.Emitted)) == 8*s.ringLen && wa.HasWritten {
			for k := max(0, wa.LastWritten-s.ringLen+1); k <= wa.LastWritten; k++ {
				if pos := int64(binary.LittleEndian.Uint64(wa.Emitted[8*(k%s.ringLen):])); pos > 0 {
					m.Emissions = append(m.Emissions, Emission{Window: k, Position: pos})
				}
			}
		} else if len(wa.Emitted) != 0 && int64(len(wa.Emitted)) != 8*s.ringLen {
			return nil, fmt.Errorf("approach %d emission positions invalid", i)
		}
	}
	return m, nil
}
