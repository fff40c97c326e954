package clean

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/greenwave-city/greenwave/pkg/topology"
)

// StateFormat is the version of the encoding written by MarshalState. RestoreIntersection also reads
// format 1 (before speed and occupancy had sequence checks): its flow history and stuck run carry over, the
// new speed and occupancy state starts empty and the flow history has no seasonal baselines (the filter uses
// raw values until those values have rolled out of the window).
//
// Format 3 adds the input position at which each window of the lag history was emitted (SetPosition); a format
// 1 or 2 state restores with every window counted as emitted before anything applied after the restore.
const StateFormat = 3

// ErrBadState is wrapped by RestoreIntersection when the bytes are not a usable state for the intersection.
var ErrBadState = errors.New("bad cleaner state")

// The encoding is JSON with every map turned into a slice sorted by key, so equal states give equal bytes.
// Every float in it is finite (inputs are validated), except the lag history, which holds NaN for "absent" and
// is therefore stored as little-endian IEEE-754 bits (base64 in JSON). Go's JSON encoding of finite float64
// round-trips bit-exactly, so a restored Intersection continues exactly like one that never stopped.
type wireState struct {
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

	Open  []wireWindow  `json:"open"`
	ByID  []wireID      `json:"dedup_ids"`
	ByKey []fingerprint `json:"dedup_keys"`
	Dets  []wireDet     `json:"detector_state"`
	Aps   []wireAp      `json:"approach_state"`
}

type wireWindow struct {
	Window   int64         `json:"window"`
	Readings []wireReading `json:"readings"`
}

type wireReading struct {
	ID string `json:"id,omitempty"`
	fingerprint
}

type wireID struct {
	ID string      `json:"id"`
	FP fingerprint `json:"fp"`
}

// wireDet is a detector's state; the legacy fields are format 1's flow sequence state, read and never written.
type wireDet struct {
	detState
	LegacyHist      []float64 `json:"hist,omitempty"`
	LegacyLastCount float64   `json:"last_count,omitempty"`
	LegacyHasLast   bool      `json:"has_last,omitempty"`
	LegacyRun       int       `json:"run,omitempty"`
}

type wireAp struct {
	Lag []byte `json:"lag"`
	// Emitted holds apState.Emitted (format 3 on; absent before: every window counts as emitted before now).
	Emitted     []byte `json:"emitted,omitempty"`
	LastWritten int64  `json:"last_written"`
	HasWritten  bool   `json:"has_written"`
}

// MarshalState encodes the complete state (open windows, watermark, next window, dedup memory, Hampel
// histories, stuck counters, last observations, profiles, health, lag history) deterministically. Restore it
// with RestoreIntersection and the same topology and Config. The UpstreamLookup is not state: attach it again
// (SetUpstream). Nothing in the state depends on the feature set, so a state written under feature set 1
// restores unchanged and continues with the version 2 features.
func (s *Intersection) MarshalState() ([]byte, error) {
	w := wireState{
		Format: StateFormat, Intersection: s.in.ID, WindowS: s.winS,
		Started: s.st.Started, Next: s.st.Next, MaxEvent: s.st.MaxEvent, WM: s.st.WM, LastData: s.st.LastData,
		Dets: make([]wireDet, len(s.st.Dets)),
	}
	for i, ds := range s.st.Dets {
		w.Dets[i].detState = ds
	}
	for _, a := range s.aps {
		w.Approaches = append(w.Approaches, a.id)
	}
	for _, d := range s.dets {
		w.Detectors = append(w.Detectors, d.id)
	}
	for k, ow := range s.st.Open {
		ww := wireWindow{Window: k}
		for _, list := range ow.dets {
			for _, p := range list {
				r := p.r
				ww.Readings = append(ww.Readings, wireReading{ID: r.ID, fingerprint: fingerprint{Det: p.det, Start: p.startNs,
					IntervalS: r.IntervalS, Count: r.Count, FlowVPH: r.FlowVPH, Occ: r.Occupancy, Speed: r.SpeedKMH,
					HasOcc: r.HasOccupancy, HasSpeed: r.HasSpeed}})
			}
		}
		w.Open = append(w.Open, ww)
	}
	slices.SortFunc(w.Open, func(a, b wireWindow) int { return cmpInt(a.Window, b.Window) })
	for id, fp := range s.st.ByID {
		w.ByID = append(w.ByID, wireID{ID: id, FP: fp})
	}
	slices.SortFunc(w.ByID, func(a, b wireID) int { return strings.Compare(a.ID, b.ID) })
	for _, fp := range s.st.ByKey {
		w.ByKey = append(w.ByKey, fp)
	}
	slices.SortFunc(w.ByKey, func(a, b fingerprint) int {
		if c := cmpInt(int64(a.Det), int64(b.Det)); c != 0 {
			return c
		}
		return cmpInt(a.Start, b.Start)
	})
	for _, a := range s.st.Aps {
		b := make([]byte, 8*len(a.Lag))
		for i, v := range a.Lag {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
		}
		e := make([]byte, 8*len(a.Emitted))
		for i, v := range a.Emitted {
			binary.LittleEndian.PutUint64(e[8*i:], uint64(v))
		}
		w.Aps = append(w.Aps, wireAp{Lag: b, Emitted: e, LastWritten: a.LastWritten, HasWritten: a.HasWritten})
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("marshal cleaner state of %s: %w", s.in.ID, err)
	}
	return b, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// RestoreIntersection rebuilds an Intersection from MarshalState's bytes. The topology of the intersection
// (id, window, approaches and detectors in order) must be the one the state was written with; cfg should be
// too. Any bytes are safe: a state that is malformed or inconsistent gives an error wrapping ErrBadState.
func RestoreIntersection(in topology.Intersection, cfg Config, b []byte) (*Intersection, error) {
	s, err := NewIntersection(in, cfg)
	if err != nil {
		return nil, err
	}
	var w wireState
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("%w: decode: %v", ErrBadState, err)
	}
	if err := s.load(&w); err != nil {
		return nil, fmt.Errorf("%w: intersection %s: %v", ErrBadState, in.ID, err)
	}
	return s, nil
}

func (s *Intersection) load(w *wireState) error {
	if w.Format < 1 || w.Format > StateFormat {
		return fmt.Errorf("format %d, want 1 to %d", w.Format, StateFormat)
	}
	if w.Intersection != s.in.ID || w.WindowS != s.winS {
		return fmt.Errorf("state is for %q with %d s windows, not %q with %d s", w.Intersection, w.WindowS, s.in.ID, s.winS)
	}
	if len(w.Approaches) != len(s.aps) || len(w.Detectors) != len(s.dets) {
		return errors.New("topology changed: approach or detector count differs")
	}
	for i, a := range s.aps {
		if w.Approaches[i] != a.id {
			return fmt.Errorf("topology changed: approach %d is %q, state has %q", i, a.id, w.Approaches[i])
		}
	}
	for i, d := range s.dets {
		if w.Detectors[i] != d.id {
			return fmt.Errorf("topology changed: detector %d is %q, state has %q", i, d.id, w.Detectors[i])
		}
	}
	maxWin := maxStart/s.winNs + 2
	inWin := func(k int64) bool { return k >= 0 && k <= maxWin }
	if w.MaxEvent < 0 || w.MaxEvent > maxStart || w.WM < 0 || w.WM > maxStart {
		return errors.New("event time or watermark out of range")
	}
	if !inWin(w.Next) || !inWin(w.LastData) || w.LastData > w.Next {
		return errors.New("window indices out of range")
	}
	st := &s.st
	st.Started, st.Next, st.MaxEvent, st.WM, st.LastData = w.Started, w.Next, w.MaxEvent, w.WM, w.LastData

	for _, ww := range w.Open {
		k := ww.Window
		if !inWin(k) || (k+1)*s.winNs <= st.WM || (st.Started && k < st.Next) {
			return fmt.Errorf("open window %d is already closed", k)
		}
		if _, dup := st.Open[k]; dup {
			return fmt.Errorf("open window %d twice", k)
		}
		ow := &openWindow{dets: make([][]pending, len(s.dets))}
		st.Open[k] = ow
		for _, wr := range ww.Readings {
			fp := wr.fingerprint
			if fp.Det < 0 || fp.Det >= len(s.dets) || fp.Start < minStart || fp.Start >= maxStart {
				return errors.New("open reading: bad detector or start")
			}
			d := s.dets[fp.Det]
			r := Reading{ID: wr.ID, IntersectionID: s.in.ID, ApproachID: s.aps[d.approach].id, DetectorID: d.id,
				Start: time.Unix(0, fp.Start).UTC(), IntervalS: fp.IntervalS, Count: fp.Count, FlowVPH: fp.FlowVPH,
				Occupancy: fp.Occ, SpeedKMH: fp.Speed, HasOccupancy: fp.HasOcc, HasSpeed: fp.HasSpeed}
			orig := r
			if _, rj := s.check(&r); rj != nil || r != orig {
				return fmt.Errorf("open reading %q invalid", wr.ID)
			}
			if fp.Start/s.winNs != k {
				return fmt.Errorf("open reading %q is not in window %d", wr.ID, k)
			}
			list := ow.dets[fp.Det]
			if n := len(list); n > 0 && list[n-1].startNs+int64(list[n-1].r.IntervalS)*int64(time.Second) > fp.Start {
				return fmt.Errorf("open readings of detector %s unsorted or overlapping", d.id)
			}
			ow.dets[fp.Det] = append(list, pending{r: r, startNs: fp.Start, det: fp.Det})
		}
	}
	okFP := func(fp fingerprint) bool {
		return fp.Start >= minStart && fp.Start < maxStart && fp.Det >= 0 && fp.Det < len(s.dets) && finite(fp.Count) && finite(fp.FlowVPH) && finite(fp.Occ) && finite(fp.Speed)
	}
	for _, e := range w.ByID {
		if e.ID == "" || !okFP(e.FP) {
			return errors.New("bad dedup id entry")
		}
		if _, dup := st.ByID[e.ID]; dup {
			return errors.New("duplicate dedup id entry")
		}
		st.ByID[e.ID] = e.FP
		k := e.FP.Start / s.winNs
		st.byWindow[k] = append(st.byWindow[k], dedupRef{id: e.ID, key: dedupKey{det: e.FP.Det, start: e.FP.Start}})
	}
	for _, fp := range w.ByKey {
		if !okFP(fp) {
			return errors.New("bad dedup key entry")
		}
		key := dedupKey{det: fp.Det, start: fp.Start}
		if _, dup := st.ByKey[key]; dup {
			return errors.New("duplicate dedup key entry")
		}
		st.ByKey[key] = fp
		k := fp.Start / s.winNs
		st.byWindow[k] = append(st.byWindow[k], dedupRef{key: key})
	}

	if len(w.Dets) != len(s.dets) {
		return errors.New("detector state count differs")
	}
	for i, wd := range w.Dets {
		ds := wd.detState
		if w.Format == 1 {
			if !reflect.DeepEqual(ds.Seq, [numQuantities]seqState{}) {
				return fmt.Errorf("detector %s: format 1 state with sequence state", s.dets[i].id)
			}
			fs := &ds.Seq[qFlow]
			fs.Hist = wd.LegacyHist
			fs.Base = make([]float64, len(fs.Hist))
			for j := range fs.Base {
				fs.Base[j] = -1
			}
			if wd.LegacyHasLast {
				fs.Last, fs.Run = wd.LegacyLastCount, wd.LegacyRun
			}
		} else if wd.LegacyHist != nil || wd.LegacyLastCount != 0 || wd.LegacyHasLast || wd.LegacyRun != 0 {
			return fmt.Errorf("detector %s: format 1 fields in format %d state", s.dets[i].id, w.Format)
		}
		if len(ds.Profile) != hoursPerWeek || len(ds.ProfileN) != hoursPerWeek || !allIn(ds.Profile, 0, maxStateFlow) ||
			!allIn([]float64{ds.LastObs}, 0, maxStateFlow) || !inWin(ds.LastObsW) {
			return fmt.Errorf("detector %s state invalid", s.dets[i].id)
		}
		for q := range numQuantities {
			if err := s.checkSeq(q, &ds.Seq[q]); err != nil {
				return fmt.Errorf("detector %s %s: %v", s.dets[i].id, quantityNames[q], err)
			}
		}
		for _, n := range ds.ProfileN {
			if n < 0 {
				return fmt.Errorf("detector %s profile count negative", s.dets[i].id)
			}
		}
		h := ds.Health
		if !allFinite([]float64{h.Valid, h.Flagged, h.Imputed, h.Late, h.Rejected, h.Windows}) ||
			h.Valid < 0 || h.Flagged < 0 || h.Imputed < 0 || h.Late < 0 || h.Rejected < 0 || h.Windows < 0 {
			return fmt.Errorf("detector %s health invalid", s.dets[i].id)
		}
		st.Dets[i] = ds
	}
	if len(w.Aps) != len(s.aps) {
		return errors.New("approach state count differs")
	}
	for i, wa := range w.Aps {
		if int64(len(wa.Lag)) != 8*s.ringLen || !inWin(wa.LastWritten) {
			return fmt.Errorf("approach %s lag history invalid", s.aps[i].id)
		}
		as := &st.Aps[i]
		for j := range as.Lag {
			v := math.Float64frombits(binary.LittleEndian.Uint64(wa.Lag[8*j:]))
			if !math.IsNaN(v) && !(v >= 0 && v <= maxStateFlow) {
				return fmt.Errorf("approach %s lag history invalid", s.aps[i].id)
			}
			as.Lag[j] = v
		}
		switch {
		case w.Format < 3 && len(wa.Emitted) == 0:
			// Stamps came with format 3; the restored windows count as emitted before now (newApState's value).
		case int64(len(wa.Emitted)) != 8*s.ringLen:
			return fmt.Errorf("approach %s emission positions invalid", s.aps[i].id)
		default:
			for j := range as.Emitted {
				as.Emitted[j] = int64(binary.LittleEndian.Uint64(wa.Emitted[8*j:]))
			}
		}
		as.LastWritten, as.HasWritten = wa.LastWritten, wa.HasWritten
	}
	return nil
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

func allFinite(xs []float64) bool {
	for _, x := range xs {
		if !finite(x) {
			return false
		}
	}
	return true
}
