package clean

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// Window size limits accepted by NewIntersection: the lag history holds 7 days of windows per approach.
const (
	MinWindowS = 60
	MaxWindowS = 86400
)

// hoursPerWeek is the number of hour-of-week profile buckets per detector.
const hoursPerWeek = 7 * 24

// ErrInvalidIntersection is wrapped by NewIntersection and RestoreIntersection when the topology cannot be used.
var ErrInvalidIntersection = errors.New("invalid intersection")

// Intersection is the cleaning state machine of one intersection: feed it the intersection's readings in
// partition order with Add and emit the frames it returns. Not safe for concurrent use.
//
// Time: the watermark is max(highest reading start accepted − Config.AllowedLateness, any watermark set by
// CloseIdle or Flush); it never moves back. Window [kW, (k+1)W) is emitted exactly once, when the watermark
// reaches (k+1)W, with every approach present. A reading whose window end is at or before the watermark is
// "late". Frames are emitted for every window from the first window with data on; windows with no data at all
// more than Config.MaxSilence after the last window with data are skipped (Result.SkippedWindows).
type Intersection struct {
	in       topology.Intersection
	cfg      Config
	winS     int64
	winNs    int64
	loc      *time.Location
	holidays map[Date]bool
	names    []string
	aps      []apInfo
	dets     []detInfo
	detIndex map[string]int
	apIndex  map[string]int
	// derived constants
	silentWindows int64
	interpWindows int64
	profWindows   int64
	ringLen       int64
	recentLen     int64 // windows of the recent occupancy and speed history (RecentHistory)
	dayWindows    int64
	healthDecay   float64
	jumpNs        int64 // clock-jump tolerance (Config.ClockJumpTolerance, at least three windows)
	maxHeld       int   // bound of the held-back readings
	// forgotten is the position through which emissions are no longer stamped (ForgetEmissionsThrough).
	forgotten int64

	st state

	// ul answers the upstream features; attached by the owner (SetUpstream), not state.
	ul UpstreamLookup
	// pos is the input position of what is applied now (SetPosition), not state: it stamps the windows this
	// intersection emits and bounds what its upstream lookups may see.
	pos int64

	// scratch buffers (not state)
	sortBuf, resBuf []float64
}

type apInfo struct {
	id          string
	capacityVPH float64
	first, n    int // detectors dets[first : first+n]
	// upstream are the approach's distinct upstream approaches, in configuration order.
	upstream []upstreamRef
}

type detInfo struct {
	id          string
	approach    int
	capacityVPH float64 // per-detector share of the approach capacity
	maxFlowVPH  float64 // physical bound: MaxFlowVPHPerLane × lanes covered (at least one lane)
}

// state is everything that changes; State returns exactly this.
type state struct {
	Started  bool
	Next     int64 // next window index to emit (valid when Started)
	MaxEvent int64 // highest accepted reading start, Unix ns (0: none yet)
	WM       int64 // Unix ns
	LastData int64 // last emitted window index that had data (valid when Started)
	// Open windows, keyed by window index. They are the dedup memory too: a reading's identity is its detector
	// and interval start, and a reading for a closed window is late whether or not it was seen before.
	Open map[int64]*openWindow
	// Held are readings far ahead of the event time, waiting for confirmation (clock-jump rule), in arrival
	// order; at most maxHeld.
	Held []heldReading
	// Marks are the input positions of the windows emitted since the last ForgetEmissionsThrough, by window.
	Marks []emission
	Dets  []detState
	Aps   []apState
}

// heldReading is a reading held back by the clock-jump rule; at is the event-time progress when it was held.
type heldReading struct {
	pending
	at int64
}

// emission is the input position at which a window was emitted.
type emission struct {
	window, pos int64
}

type openWindow struct {
	dets [][]pending // per detector index, sorted by start, non-overlapping
}

type pending struct {
	r       Reading
	startNs int64
	det     int
}

type detState struct {
	// Seq is the stuck-detector and outlier-filter state of flow, speed and occupancy (indexed by quantity).
	Seq      [numQuantities]seqState `json:"seq"`
	LastObsW int64                   `json:"last_obs_window"`
	LastObs  float64                 `json:"last_obs_flow"`
	HasObs   bool                    `json:"has_obs"`
	// Profile holds hoursPerWeek flows (veh/h) for gap filling, each a float32 value (the update rounds to
	// float32 so that the state stays small: 4 bytes a bucket); ProfileSeen marks the buckets that hold one.
	Profile     []float64 `json:"profile"`
	ProfileSeen []bool    `json:"-"`
	Health      health    `json:"health"`
	// LastStart is the start of the detector's last accepted reading, Unix ns (0: none): who is active, for
	// the clock-jump rule.
	LastStart int64 `json:"-"`
	// Closed is the replay memory (Config.ReplayMemory): the readings of the detector's recently closed
	// windows, oldest first.
	Closed []closedReading `json:"-"`
}

// closedReading is a reading of a closed window as the replay memory keeps it: its start and a hash of its
// values (valuesHash).
type closedReading struct {
	startNs int64
	hash    uint64
}

// maxClosedPerDetector bounds the replay memory of a detector whatever its reporting interval.
const maxClosedPerDetector = 256

type health struct {
	Valid    float64 `json:"valid"`
	Flagged  float64 `json:"flagged"`
	Imputed  float64 `json:"imputed"`
	Late     float64 `json:"late"`
	Rejected float64 `json:"rejected"`
	Windows  float64 `json:"windows"`
}

type apState struct {
	// Lag is the ring of flow ratios (NaN = absent), each quantised to 1/10000 (lagQuantum) so that the state
	// holds two bytes a window.
	Lag []float64
	// Recent is the ring of the last recentLen windows' occupancy ratio and speed ratio (speed / 100), two
	// values a window (index 2·(window mod recentLen), then +1), NaN = absent, quantised like Lag; the upstream
	// occupancy and speed features read it. It shares LastWritten with Lag.
	Recent      []float64
	LastWritten int64
	HasWritten  bool
}

// NewIntersection returns the empty state machine for one intersection. cfg must be valid.
func NewIntersection(in topology.Intersection, cfg Config) (*Intersection, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Intersection{in: in, cfg: cfg, loc: cfg.location(), names: features.Names(), detIndex: map[string]int{},
		apIndex: map[string]int{}}
	w := int64(in.Window())
	var problems []string
	if w < MinWindowS || w > MaxWindowS || 86400%w != 0 {
		problems = append(problems, fmt.Sprintf("window %d s must divide a day and lie in %d..%d", w, MinWindowS, MaxWindowS))
	}
	if in.ID == "" {
		problems = append(problems, "empty intersection id")
	}
	if len(in.Approaches) == 0 {
		problems = append(problems, "no approaches")
	}
	for _, a := range in.Approaches {
		capVPH := a.CapacityVPH()
		if !(capVPH > 0) || math.IsInf(capVPH, 0) || a.Lanes < 1 {
			problems = append(problems, fmt.Sprintf("approach %q: capacity %g veh/h (lanes %d) must be positive", a.ID, capVPH, a.Lanes))
		}
		if len(a.Detectors) == 0 {
			problems = append(problems, fmt.Sprintf("approach %q has no detectors", a.ID))
		}
		ai := len(s.aps)
		ups, err := parseUpstream(a.Upstream)
		if err != nil {
			problems = append(problems, fmt.Sprintf("approach %q: %v", a.ID, err))
		}
		s.aps = append(s.aps, apInfo{id: a.ID, capacityVPH: capVPH, first: len(s.dets), n: len(a.Detectors), upstream: ups})
		if _, dup := s.apIndex[a.ID]; !dup {
			s.apIndex[a.ID] = ai
		}
		nd := float64(max(1, len(a.Detectors)))
		for _, d := range a.Detectors {
			if _, dup := s.detIndex[d]; dup || d == "" {
				problems = append(problems, fmt.Sprintf("approach %q: detector %q empty or duplicate", a.ID, d))
			}
			s.detIndex[d] = len(s.dets)
			s.dets = append(s.dets, detInfo{id: d, approach: ai, capacityVPH: capVPH / nd,
				maxFlowVPH: MaxFlowVPHPerLane * math.Max(1, float64(a.Lanes)/nd)})
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w %q: %v", ErrInvalidIntersection, in.ID, problems)
	}
	s.winS, s.winNs = w, w*int64(time.Second)
	s.silentWindows = int64(cfg.MaxSilence / time.Duration(s.winNs))
	s.interpWindows = int64(cfg.InterpolateMaxGap / time.Duration(s.winNs))
	s.profWindows = int64(cfg.ProfileFillMaxGap / time.Duration(s.winNs))
	s.dayWindows = 86400 / w
	s.ringLen = 7 * s.dayWindows
	s.recentLen = max(minRecentWindows, (int64(RecentHistory/time.Second)+w-1)/w)
	s.healthDecay = math.Exp2(-float64(s.winNs) / float64(cfg.HealthHalfLife))
	s.jumpNs = max(int64(cfg.ClockJumpTolerance), 3*s.winNs)
	s.maxHeld = max(8, 2*len(s.dets))
	s.holidays = map[Date]bool{}
	for _, d := range cfg.Holidays {
		s.holidays[d] = true
	}
	s.st = state{Open: map[int64]*openWindow{}}
	s.st.Dets = make([]detState, len(s.dets))
	for i := range s.st.Dets {
		s.st.Dets[i] = detState{Profile: make([]float64, hoursPerWeek), ProfileSeen: make([]bool, hoursPerWeek)}
	}
	s.st.Aps = make([]apState, len(s.aps))
	for i := range s.st.Aps {
		s.st.Aps[i] = newApState(s.ringLen, s.recentLen)
	}
	return s, nil
}

func newApState(n, recent int64) apState {
	lag := make([]float64, n)
	for i := range lag {
		lag[i] = math.NaN()
	}
	rec := make([]float64, 2*recent)
	for i := range rec {
		rec[i] = math.NaN()
	}
	return apState{Lag: lag, Recent: rec}
}

// Watermark returns the current watermark (zero time before any reading).
func (s *Intersection) Watermark() time.Time { return time.Unix(0, s.st.WM).UTC() }

// Add applies one reading and returns what it caused: its rejection or silent drop, and the frames of every
// window the advancing watermark closed (with the deferred rejections of those windows). wl is asked for the
// weather at each closing window's end (nil: weather missing).
//
// A reading far ahead of the intersection's event time (see Config.ClockJumpTolerance) is held back until a
// majority of the intersection's active detectors confirm the new time; unconfirmed, it is rejected as
// "clock_jump" (see the package documentation, "Clock jumps").
func (s *Intersection) Add(r Reading, wl WeatherLookup) Result {
	var res Result
	s.add(r, wl, &res, false)
	return res
}

// add applies one reading; release is set for held readings that a majority confirmed (no clock-jump check).
func (s *Intersection) add(r Reading, wl WeatherLookup, res *Result, release bool) {
	r.Start = r.Start.UTC()
	det, rj := s.check(&r)
	if rj != nil {
		if det >= 0 {
			s.st.Dets[det].Health.Rejected++
		}
		res.Rejected = append(res.Rejected, *rj)
		return
	}
	startNs := r.Start.UnixNano()
	reject := func(reason Reason, format string, args ...any) {
		if reason == ReasonLate {
			s.st.Dets[det].Health.Late++
		} else {
			s.st.Dets[det].Health.Rejected++
		}
		res.Rejected = append(res.Rejected, Rejection{Reading: r, Reason: reason, Detail: fmt.Sprintf(format, args...)})
	}
	// Deduplication: a reading's identity is its detector and interval start. The open windows and the
	// held-back readings hold every accepted reading that is not closed yet, the replay memory those of the
	// recently closed windows; any other reading for a closed window is late.
	same := func(p *pending) bool {
		if sameValues(&p.r, &r) {
			res.Dropped++
		} else {
			reject(ReasonDuplicateConflict, "detector %s interval at %s was seen with different values", r.DetectorID, r.Start.Format(time.RFC3339Nano))
		}
		return true
	}
	for i := range s.st.Held {
		if h := &s.st.Held[i]; h.det == det && h.startNs == startNs && same(&h.pending) {
			return
		}
	}
	k := startNs / s.winNs
	if (k+1)*s.winNs <= s.st.WM {
		if c, ok := s.closedReading(det, startNs); ok {
			if c.hash == valuesHash(&r) {
				res.Dropped++
				return
			}
			reject(ReasonDuplicateConflict, "detector %s interval at %s was applied with different values (its window is closed)",
				r.DetectorID, r.Start.Format(time.RFC3339Nano))
			return
		}
		reject(ReasonLate, "window ending %s already closed (watermark %s)",
			time.Unix(0, (k+1)*s.winNs).UTC().Format(time.RFC3339), s.Watermark().Format(time.RFC3339Nano))
		return
	}
	ow := s.st.Open[k]
	var list []pending
	if ow != nil {
		list = ow.dets[det]
	}
	i := sort.Search(len(list), func(i int) bool { return list[i].startNs >= startNs })
	if i < len(list) && list[i].startNs == startNs && same(&list[i]) {
		return
	}
	if !release && s.ahead(startNs) {
		s.hold(pending{r: r, startNs: startNs, det: det}, wl, res)
		return
	}
	d := s.dets[det]
	if lim := s.cfg.MaxCapacityMultiple * d.capacityVPH; !r.NoCount && r.FlowVPH > lim {
		reject(ReasonOverCapacity, "flow %s veh/h above %s × detector capacity %s veh/h", ftoa(r.FlowVPH), ftoa(s.cfg.MaxCapacityMultiple), ftoa(d.capacityVPH))
		return
	}
	if r.HasOccupancy && r.HasSpeed {
		if !r.NoCount && r.FlowVPH >= s.cfg.ImplausibleMinFlowVPH && r.Occupancy == 0 && r.SpeedKMH == 0 {
			reject(ReasonImplausible, "flow %s veh/h with zero occupancy and zero speed", ftoa(r.FlowVPH))
			return
		}
		if r.Occupancy >= s.cfg.JamOccupancy && r.SpeedKMH >= s.cfg.JamMaxSpeedKMH {
			reject(ReasonImplausible, "occupancy %s with speed %s km/h", ftoa(r.Occupancy), ftoa(r.SpeedKMH))
			return
		}
	}
	endNs := startNs + int64(r.IntervalS)*int64(time.Second)
	if (i > 0 && list[i-1].startNs+int64(list[i-1].r.IntervalS)*int64(time.Second) > startNs) || (i < len(list) && list[i].startNs < endNs) {
		reject(ReasonDuplicateConflict, "interval overlaps an accepted interval of detector %s", r.DetectorID)
		return
	}
	if ow == nil {
		ow = &openWindow{dets: make([][]pending, len(s.dets))}
		s.st.Open[k] = ow
	}
	ow.dets[det] = slices.Insert(list, i, pending{r: r, startNs: startNs, det: det})
	s.st.Dets[det].LastStart = max(s.st.Dets[det].LastStart, startNs)
	if startNs > s.st.MaxEvent {
		s.st.MaxEvent = startNs
		s.advance(startNs - int64(s.cfg.AllowedLateness))
	}
	s.close(res, wl)
	s.expire(res, false)
}

// sameValues reports whether two normalized readings of one detector and start carry the same values.
func sameValues(a, b *Reading) bool {
	return a.IntervalS == b.IntervalS && a.NoCount == b.NoCount && a.Count == b.Count && a.FlowVPH == b.FlowVPH && a.HasOccupancy == b.HasOccupancy &&
		a.Occupancy == b.Occupancy && a.HasSpeed == b.HasSpeed && a.SpeedKMH == b.SpeedKMH
}

// valuesHash is a 64-bit FNV-1a hash of the values sameValues compares: the replay memory keeps it instead of
// the reading.
func valuesHash(r *Reading) uint64 {
	h := uint64(14695981039346656037)
	mix := func(x uint64) {
		for range 8 {
			h ^= x & 0xff
			h *= 1099511628211
			x >>= 8
		}
	}
	flags := uint64(0)
	for i, b := range []bool{r.NoCount, r.HasOccupancy, r.HasSpeed} {
		if b {
			flags |= 1 << i
		}
	}
	mix(uint64(r.IntervalS))
	mix(flags)
	for _, v := range []float64{r.Count, r.FlowVPH, r.Occupancy, r.SpeedKMH} {
		mix(math.Float64bits(v))
	}
	return h
}

// closedReading finds detector det's reading starting at startNs in the replay memory.
func (s *Intersection) closedReading(det int, startNs int64) (closedReading, bool) {
	list := s.st.Dets[det].Closed
	i := sort.Search(len(list), func(i int) bool { return list[i].startNs >= startNs })
	if i < len(list) && list[i].startNs == startNs {
		return list[i], true
	}
	return closedReading{}, false
}

// remember adds the readings of detector det's window k, closing now, to its replay memory and forgets those
// of windows that ended ReplayMemory or longer before window k's end.
func (s *Intersection) remember(det int, k int64, list []pending) {
	ds := &s.st.Dets[det]
	if s.cfg.ReplayMemory <= 0 {
		return
	}
	for _, p := range list {
		ds.Closed = append(ds.Closed, closedReading{startNs: p.startNs, hash: valuesHash(&p.r)})
	}
	horizon := (k+1)*s.winNs - s.cfg.ReplayMemory.Nanoseconds()
	drop := 0
	for drop < len(ds.Closed) && (drop < len(ds.Closed)-maxClosedPerDetector || (ds.Closed[drop].startNs/s.winNs+1)*s.winNs <= horizon) {
		drop++
	}
	if drop > 0 {
		ds.Closed = slices.Delete(ds.Closed, 0, drop)
	}
}

// progress is the intersection's event-time progress: the highest accepted reading start, or the watermark
// plus the allowed lateness when CloseIdle or Flush moved it further. 0 before anything happened.
func (s *Intersection) progress() int64 {
	if s.st.WM == 0 {
		return s.st.MaxEvent
	}
	return max(s.st.MaxEvent, s.st.WM+int64(s.cfg.AllowedLateness))
}

// ahead reports whether a reading starting at startNs is a clock-jump candidate: more than the tolerance
// ahead of the event-time progress. Before the first reading nothing is (there is no time to compare with).
func (s *Intersection) ahead(startNs int64) bool {
	p := s.progress()
	return p != 0 && startNs-p > s.jumpNs
}

// quorum is how many distinct detectors must confirm a jump: a majority of the active detectors (those with
// an accepted reading within Config.MaxSilence of the progress), at least one.
func (s *Intersection) quorum() int {
	p := s.progress()
	active := 0
	for i := range s.st.Dets {
		if ls := s.st.Dets[i].LastStart; ls != 0 && p-ls <= int64(s.cfg.MaxSilence) {
			active++
		}
	}
	return active/2 + 1
}

// hold keeps a clock-jump candidate back and applies the held readings whose new time is confirmed (confirm).
// When the buffer overflows, the oldest held reading is rejected.
func (s *Intersection) hold(p pending, wl WeatherLookup, res *Result) {
	s.st.Held = append(s.st.Held, heldReading{pending: p, at: s.progress()})
	if s.confirm(wl, res, false) {
		return
	}
	if len(s.st.Held) > s.maxHeld {
		s.rejectHeld(0, res, "more readings ahead than can be held")
	}
}

// confirm looks, in arrival order, for a held reading whose time the others confirm: the held readings that
// start no earlier than the tolerance before it come from a quorum of detectors and from at least two interval
// starts (time goes on at the new clock, so a single bad batch does not confirm itself; at the end of a finite
// input, atEnd, nothing more can come and the quorum suffices). Then the jump is real — the intersection's
// sources came back after an outage, or their clock was corrected — and the held readings within the tolerance
// of it are applied in arrival order, as if they had never been held; the others are judged again against the
// new time (and may be held again). It reports whether it applied anything.
func (s *Intersection) confirm(wl WeatherLookup, res *Result, atEnd bool) bool {
	q := s.quorum()
	dets := make([]bool, len(s.dets))
	for _, c := range s.st.Held {
		clear(dets)
		distinct, later := 0, false
		for _, h := range s.st.Held {
			if h.startNs >= c.startNs-s.jumpNs {
				later = later || h.startNs != c.startNs
				if !dets[h.det] {
					dets[h.det] = true
					distinct++
				}
			}
		}
		if (!later && !atEnd) || distinct < q {
			continue
		}
		held := s.st.Held
		s.st.Held = nil
		var rest []heldReading
		for _, h := range held {
			if absDiff(h.startNs, c.startNs) <= s.jumpNs {
				s.add(h.r, wl, res, true)
			} else {
				rest = append(rest, h)
			}
		}
		for _, h := range rest {
			s.add(h.r, wl, res, false)
		}
		return true
	}
	return false
}

// expire rejects the held readings that the event time has moved past by more than the tolerance without a
// confirmation (all of them when all is set: the end of a finite input).
func (s *Intersection) expire(res *Result, all bool) {
	p := s.progress()
	for i := 0; i < len(s.st.Held); {
		if all || p-s.st.Held[i].at > s.jumpNs {
			s.rejectHeld(i, res, "the intersection's event time moved on without them")
			continue
		}
		i++
	}
}

// rejectHeld rejects held reading i as a clock jump.
func (s *Intersection) rejectHeld(i int, res *Result, why string) {
	h := s.st.Held[i]
	s.st.Held = slices.Delete(s.st.Held, i, i+1)
	s.st.Dets[h.det].Health.Rejected++
	res.Rejected = append(res.Rejected, Rejection{Reading: h.r, Reason: ReasonClockJump, Detail: fmt.Sprintf(
		"start %s is %s ahead of intersection %s's event time %s and no majority of its active detectors confirmed it (%s; tolerance %s)",
		h.r.Start.Format(time.RFC3339), time.Duration(h.startNs-h.at), s.in.ID, time.Unix(0, h.at).UTC().Format(time.RFC3339),
		why, time.Duration(s.jumpNs))})
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

// CloseIdle is the processing-time idle timeout. It advances the watermark to now − Config.AllowedLateness (if
// that is later), exactly as if a reading starting at now had been accepted, and closes the windows it passes.
// The service calls it with its wall clock when the partition has received nothing for its idle timeout, so
// that sparse detectors do not stall windows in live deployments. Readings that later arrive for the closed
// windows are "late". Replays at full speed must not call it (event time is then far behind the wall clock):
// a replay and a live run give the same frames as long as no reading arrives for a window after CloseIdle
// closed it. now is clamped to the accepted event-time range (2000..2200).
func (s *Intersection) CloseIdle(now time.Time, wl WeatherLookup) Result {
	var res Result
	if now.Before(time.Unix(0, minStart)) {
		return res
	}
	ns := maxStart
	if now.Before(time.Unix(0, maxStart)) {
		ns = now.UnixNano()
	}
	s.advance(ns - int64(s.cfg.AllowedLateness))
	s.close(&res, wl)
	s.expire(&res, false)
	return res
}

// Flush is for the end of a finite input (replay files, offline evaluation): it advances the watermark to the
// end of the latest window holding data and closes every open window. Readings for those windows that arrive
// afterwards are "late". Readings still held back by the clock-jump rule are applied when a majority of the
// active detectors holds readings at their time (nothing more can come to show that time goes on: the last
// readings of a series after a gap), otherwise rejected ("clock_jump").
func (s *Intersection) Flush(wl WeatherLookup) Result {
	var res Result
	for s.confirm(wl, &res, true) {
	}
	s.expire(&res, true)
	last := int64(math.MinInt64)
	for k := range s.st.Open {
		last = max(last, k)
	}
	if last != math.MinInt64 {
		s.advance((last + 1) * s.winNs)
	}
	s.close(&res, wl)
	return res
}

func (s *Intersection) advance(wm int64) {
	if wm > s.st.WM {
		s.st.WM = wm
	}
}

// close emits every window whose end is at or before the watermark.
func (s *Intersection) close(res *Result, wl WeatherLookup) {
	last := s.st.WM/s.winNs - 1 // last window index with (k+1)·W ≤ WM
	if !s.st.Started {
		if len(s.st.Open) == 0 {
			return
		}
		first := s.minOpen(math.MinInt64)
		if first > last {
			return
		}
		s.st.Started, s.st.Next, s.st.LastData = true, first, first
	}
	for s.st.Next <= last {
		k := s.st.Next
		ow, ok := s.st.Open[k]
		switch {
		case ok:
			delete(s.st.Open, k)
			s.st.LastData = k
		case k-s.st.LastData > s.silentWindows:
			nk := min(s.minOpen(k), last+1)
			res.SkippedWindows += int(nk - k)
			s.decayHealth(math.Pow(s.healthDecay, float64(nk-k)))
			s.st.Next = nk
			continue
		}
		fr := s.emit(k, ow, res, wl)
		res.Frames = append(res.Frames, fr)
		res.Health = append(res.Health, WindowHealth{WindowStart: fr.WindowStart, WindowEnd: fr.WindowEnd, Detectors: s.DetectorHealth()})
		s.st.Next = k + 1
	}
}

// minOpen returns the smallest open window index greater than after (math.MaxInt64 if none).
func (s *Intersection) minOpen(after int64) int64 {
	m := int64(math.MaxInt64)
	for k := range s.st.Open {
		if k > after && k < m {
			m = k
		}
	}
	return m
}

func (s *Intersection) decayHealth(f float64) {
	for i := range s.st.Dets {
		h := &s.st.Dets[i].Health
		h.Valid *= f
		h.Flagged *= f
		h.Imputed *= f
		h.Late *= f
		h.Rejected *= f
		h.Windows *= f
	}
}

// emit builds window k's frame from its open readings (ow may be nil) and advances the per-detector and
// per-approach history.
func (s *Intersection) emit(k int64, ow *openWindow, res *Result, wl WeatherLookup) features.Frame {
	start := time.Unix(k*s.winS, 0).UTC()
	end := time.Unix((k+1)*s.winS, 0).UTC()
	prevStart := time.Unix((k-1)*s.winS, 0).UTC()
	local := start.In(s.loc)
	how := ((int(local.Weekday())+6)%7)*24 + local.Hour()
	fr := features.Frame{
		IntersectionID:    s.in.ID,
		WindowStart:       start,
		WindowEnd:         end,
		FeatureSetVersion: features.SetVersion,
		Names:             s.names,
		Weather:           s.weather(end, wl),
		Holiday:           s.holidays[DateOf(local)],
		Approaches:        make([]features.Vector, len(s.aps)),
	}
	s.decayHealth(s.healthDecay)
	values := make([]float64, len(s.aps)*features.NumFeatures)
	for ai, ap := range s.aps {
		var (
			flowSum, imputed float64
			known, unknown   int
			// anyMissing: some detector had no valid reading; flowFilled: some detector's flow was not
			// measured (no reading, or readings without counts).
			anyMissing, flowFilled         bool
			nReadings, nFlagged            int
			occNum, occDen, spdNum, spdDen float64
			// Speeds of readings without counts, time-weighted (used when no counted reading has a speed).
			tspdNum, tspdDen float64
			// seen sums the detectors' shares of the window covered by any valid reading.
			seen float64
		)
		for d := ap.first; d < ap.first+ap.n; d++ {
			ds := &s.st.Dets[d]
			ds.Health.Windows++
			var list []pending
			if ow != nil {
				list = ow.dets[d]
			}
			s.remember(d, k, list)
			var counts, covered, anyCovered float64
			for _, p := range list {
				r, flagged, stuck := s.sequence(d, p.r)
				if stuck != nil {
					ds.Health.Rejected++
					res.Rejected = append(res.Rejected, *stuck)
					continue
				}
				if flagged {
					nFlagged++
					ds.Health.Flagged++
				}
				ds.Health.Valid++
				nReadings++
				iv := float64(r.IntervalS)
				anyCovered += iv
				if !r.NoCount {
					counts += r.FlowVPH * iv / 3600
					covered += iv
				}
				if r.HasOccupancy {
					occNum += r.Occupancy * iv
					occDen += iv
				}
				switch {
				case r.HasSpeed && r.Count > 0:
					spdNum += r.SpeedKMH * r.Count
					spdDen += r.Count
				case r.HasSpeed && r.NoCount && r.SpeedKMH > 0:
					tspdNum += r.SpeedKMH * iv
					tspdDen += iv
				}
			}
			seen += math.Min(1, anyCovered/float64(s.winS))
			if covered > 0 {
				f := counts * 3600 / covered
				imputed += 1 - math.Min(1, covered/float64(s.winS))
				ds.LastObsW, ds.LastObs, ds.HasObs = k, f, true
				if covered >= float64(s.winS) {
					if !ds.ProfileSeen[how] {
						ds.Profile[how] = f32(f)
					} else {
						ds.Profile[how] = f32(ds.Profile[how] + s.cfg.ProfileAlpha*(f-ds.Profile[how]))
					}
					ds.ProfileSeen[how] = true
				}
				flowSum += f
				known++
				continue
			}
			flowFilled = true
			if anyCovered == 0 {
				anyMissing = true
				ds.Health.Imputed++
			}
			gap := int64(math.MaxInt64)
			if ds.HasObs {
				gap = k - ds.LastObsW
			}
			switch {
			case gap <= s.interpWindows:
				flowSum += ds.LastObs
			case gap <= s.profWindows && ds.ProfileSeen[how]:
				flowSum += ds.Profile[how]
			default:
				unknown++
				continue
			}
			known++
			imputed++
		}
		v := features.Vector{ApproachID: ap.id, CapacityVPH: ap.capacityVPH, Readings: nReadings, FlaggedOutliers: nFlagged}
		switch {
		case known > 0:
			if unknown > 0 {
				flowSum += flowSum / float64(known) * float64(unknown)
				imputed += float64(unknown)
			}
			v.ImputedFraction = math.Min(1, imputed/float64(ap.n))
			v.Observed = features.Observed{FlowVPH: flowSum, Imputed: anyMissing || flowFilled}
		case occDen > 0 || spdDen > 0 || tspdDen > 0:
			// Readings without counts only (speed or occupancy stations): no gap, but no flow either.
			v.ImputedFraction = math.Max(0, 1-seen/float64(ap.n))
			v.Observed = features.Observed{NoFlow: true, Imputed: anyMissing}
		default:
			v.Gap = true
			v.Observed.Imputed = true
		}
		if !v.Gap {
			if occDen > 0 {
				v.Observed.Occupancy, v.Observed.HasOccupancy = math.Min(1, occNum/occDen), true
			}
			switch {
			case spdDen > 0:
				v.Observed.SpeedKMH, v.Observed.HasSpeed = math.Min(MaxSpeedKMH, spdNum/spdDen), true
			case tspdDen > 0:
				v.Observed.SpeedKMH, v.Observed.HasSpeed = math.Min(MaxSpeedKMH, tspdNum/tspdDen), true
			}
		}
		as := &s.st.Aps[ai]
		in := features.Input{
			LocalStart: local, CapacityVPH: ap.capacityVPH, Observed: v.Observed,
			ImputedFraction: v.ImputedFraction, Gap: v.Gap,
			Lag1: s.lag(as, k-1), Lag2: s.lag(as, k-2), Lag3: s.lag(as, k-3),
			Yesterday: s.lag(as, k-s.dayWindows), LastWeek: s.lag(as, k-s.ringLen),
			Upstream: s.upstreamLag(ap, prevStart),
			Holiday:  fr.Holiday, Weather: fr.Weather,
		}
		in.UpstreamOccupancy, in.UpstreamSpeedRatio = s.upstreamRecent(ap, prevStart)
		v.Values = values[ai*features.NumFeatures : (ai+1)*features.NumFeatures : (ai+1)*features.NumFeatures]
		features.BuildInto(v.Values, in)
		ratio := math.NaN()
		if !v.Gap && !v.Observed.NoFlow {
			ratio = v.Values[1]
		}
		occ, spd := math.NaN(), math.NaN()
		if v.Observed.HasOccupancy {
			occ = v.Values[4]
		}
		if v.Observed.HasSpeed {
			spd = v.Values[6]
		}
		s.writeLag(as, k, ratio, occ, spd)
		fr.Approaches[ai] = v
	}
	s.mark(k)
	return fr
}

// median sorts buf in place and returns its median.
func median(buf []float64) float64 {
	slices.Sort(buf)
	n := len(buf)
	if n%2 == 1 {
		return buf[n/2]
	}
	return (buf[n/2-1] + buf[n/2]) / 2
}

func (s *Intersection) lag(as *apState, idx int64) features.Lag {
	if !as.HasWritten || idx > as.LastWritten || idx <= as.LastWritten-s.ringLen || idx < 0 {
		return features.Lag{}
	}
	v := as.Lag[idx%s.ringLen]
	if math.IsNaN(v) {
		return features.Lag{}
	}
	return features.Lag{FlowRatio: v, OK: true}
}

// recent returns the occupancy ratio and speed ratio of window idx from the recent history.
func (s *Intersection) recent(as *apState, idx int64) (occupancy, speedRatio features.Past) {
	if !as.HasWritten || idx > as.LastWritten || idx <= as.LastWritten-s.recentLen || idx < 0 {
		return features.Past{}, features.Past{}
	}
	j := 2 * (idx % s.recentLen)
	if v := as.Recent[j]; !math.IsNaN(v) {
		occupancy = features.Past{Value: v, OK: true}
	}
	if v := as.Recent[j+1]; !math.IsNaN(v) {
		speedRatio = features.Past{Value: v, OK: true}
	}
	return occupancy, speedRatio
}

// writeLag records window k's flow ratio, occupancy ratio and speed ratio (NaN: absent), and marks the windows
// skipped since the last one written as absent.
func (s *Intersection) writeLag(as *apState, k int64, v, occ, spd float64) {
	if as.HasWritten {
		from := max(as.LastWritten+1, k-s.ringLen+1)
		for i := from; i < k; i++ {
			as.Lag[i%s.ringLen] = math.NaN()
		}
		for i := max(as.LastWritten+1, k-s.recentLen+1); i < k; i++ {
			j := 2 * (i % s.recentLen)
			as.Recent[j], as.Recent[j+1] = math.NaN(), math.NaN()
		}
	}
	as.Lag[k%s.ringLen] = quantizeLag(v)
	j := 2 * (k % s.recentLen)
	as.Recent[j], as.Recent[j+1] = quantizeLag(occ), quantizeLag(spd)
	as.LastWritten, as.HasWritten = k, true
}

// RecentHistory is how much event time of each approach's occupancy and speed the cleaner keeps for the
// upstream occupancy and speed features (rounded up to whole windows, at least minRecentWindows). Only window
// t-1 is read in normal operation; the rest is slack for an upstream intersection whose windows close ahead of
// its readers', and for a restore that brings an upstream member back from a later checkpoint than its readers
// (package documentation, "Upstream features"). 6 h costs 4 bytes a window: 288 bytes an approach at 300-s
// windows, 1/14 of the flow history's 7 days.
const RecentHistory = 6 * time.Hour

// minRecentWindows is the least recent history in windows, for windows longer than RecentHistory / 4.
const minRecentWindows = 4

// lagQuantum is the resolution of the lag history's flow ratios: 1/10000 of the approach capacity (0.36 veh/h
// at 3600 veh/h), far below what a detector can tell apart, so that a window costs two bytes of state (7 days
// at 300 s windows: 4 KB per approach instead of 16 KB).
const lagQuantum = 1e4

// maxLagUnits is the largest stored ratio in lagQuantum units; 0xFFFF is "absent".
const maxLagUnits = 0xFFFE

// quantizeLag rounds a flow ratio to the lag history's resolution (NaN stays NaN).
func quantizeLag(v float64) float64 {
	if math.IsNaN(v) {
		return v
	}
	return float64(lagUnits(v)) / lagQuantum
}

// lagUnits is a non-NaN ratio in lagQuantum units, clamped to 0..maxLagUnits.
func lagUnits(v float64) uint16 {
	return uint16(math.Min(math.Max(math.Round(v*lagQuantum), 0), maxLagUnits))
}

// f32 rounds to float32 precision: the profiles are kept in float32 so that the state holds 4 bytes a bucket.
func f32(x float64) float64 { return float64(float32(x)) }

// mark records the input position at which window k was emitted (see SetPosition), for the windows whose
// position a lookup may still be too early for; older marks than the lag history reaches are dropped.
func (s *Intersection) mark(k int64) {
	if s.pos <= s.forgotten {
		return
	}
	m := s.st.Marks
	cut := 0
	for cut < len(m) && m[cut].window <= k-s.ringLen {
		cut++
	}
	s.st.Marks = append(m[cut:], emission{window: k, pos: s.pos})
}

func (s *Intersection) weather(end time.Time, wl WeatherLookup) features.WeatherContext {
	station := s.in.WeatherStation
	if station == "" || wl == nil {
		return features.WeatherContext{StationID: station, Missing: true}
	}
	w, ok := wl.Lookup(station, end)
	// The lookup is trusted for nothing: the rule (strictly before the end, within the maximum age) is
	// enforced here too, so every WeatherLookup gives the same frames.
	if !ok || checkWeather(w) != nil || !w.ObservedAt.Before(end) || end.Sub(w.ObservedAt) > s.cfg.WeatherMaxAge {
		return features.WeatherContext{StationID: station, Missing: true}
	}
	return features.WeatherContext{
		StationID: station, ObservedAt: w.ObservedAt.UTC(),
		TemperatureC: w.TemperatureC, PrecipitationMMH: w.PrecipitationMMH, SnowMMH: w.SnowMMH, VisibilityM: w.VisibilityM,
		HasTemperature: w.HasTemperature, HasPrecipitation: w.HasPrecipitation, HasSnow: w.HasSnow, HasVisibility: w.HasVisibility,
	}
}

// check validates structure and physical bounds and normalizes r (ApproachID, Count/FlowVPH). It returns the
// detector index (-1 when unknown) and the rejection, if any.
func (s *Intersection) check(r *Reading) (int, *Rejection) {
	rj := func(reason Reason, format string, args ...any) *Rejection {
		return &Rejection{Reading: *r, Reason: reason, Detail: fmt.Sprintf(format, args...)}
	}
	if r.IntersectionID != s.in.ID {
		if r.IntersectionID == "" {
			return -1, rj(ReasonMissingField, "intersection_id is empty")
		}
		return -1, rj(ReasonInconsistent, "reading for intersection %q given to %q", r.IntersectionID, s.in.ID)
	}
	if r.DetectorID == "" {
		return -1, rj(ReasonMissingField, "detector_id is empty")
	}
	det, ok := s.detIndex[r.DetectorID]
	if !ok {
		return -1, rj(ReasonUnknownDetector, "detector %q is not part of intersection %s", r.DetectorID, s.in.ID)
	}
	d := s.dets[det]
	if ap := s.aps[d.approach].id; r.ApproachID == "" {
		r.ApproachID = ap
	} else if r.ApproachID != ap {
		return det, rj(ReasonInconsistent, "detector %s belongs to approach %q, not %q", d.id, ap, r.ApproachID)
	}
	if r.Start.IsZero() {
		return det, rj(ReasonMissingField, "start (observed_at) is not set")
	}
	if r.Start.Before(time.Unix(0, minStart)) || !r.Start.Before(time.Unix(0, maxStart)) {
		return det, rj(ReasonOutOfRange, "start %s outside 2000..2200", r.Start.Format(time.RFC3339))
	}
	if r.IntervalS < 1 || r.IntervalS > MaxIntervalS {
		return det, rj(ReasonOutOfRange, "interval %d s outside 1..%d", r.IntervalS, MaxIntervalS)
	}
	if int64(r.IntervalS) > s.winS {
		return det, rj(ReasonInconsistent, "interval %d s longer than the intersection's %d s window (configure window_s to the data step)", r.IntervalS, s.winS)
	}
	if r.NoCount {
		if !r.HasOccupancy && !r.HasSpeed {
			return det, rj(ReasonMissingField, "reading carries none of count, occupancy and speed")
		}
		if r.Count != 0 || r.FlowVPH != 0 {
			return det, rj(ReasonInconsistent, "reading without count carries count %s and flow %s veh/h", ftoa(r.Count), ftoa(r.FlowVPH))
		}
	}
	if !finite(r.Count) || r.Count < 0 {
		return det, rj(ReasonOutOfRange, "count %s is negative or not finite", ftoa(r.Count))
	}
	if !finite(r.FlowVPH) || r.FlowVPH < 0 {
		return det, rj(ReasonOutOfRange, "flow %s veh/h is negative or not finite", ftoa(r.FlowVPH))
	}
	iv := float64(r.IntervalS)
	switch {
	case r.NoCount:
	case r.FlowVPH == 0:
		r.FlowVPH = r.Count * 3600 / iv
	case r.Count == 0:
		r.Count = r.FlowVPH * iv / 3600
	default:
		if want := r.Count * 3600 / iv; math.Abs(want-r.FlowVPH) > 0.01*math.Max(1, r.FlowVPH) {
			return det, rj(ReasonInconsistent, "flow %s veh/h disagrees with count %s in %d s (%s veh/h)", ftoa(r.FlowVPH), ftoa(r.Count), r.IntervalS, ftoa(want))
		}
	}
	if !(r.FlowVPH <= d.maxFlowVPH) {
		return det, rj(ReasonOutOfRange, "flow %s veh/h above the physical %s veh/h of the lanes detector %s covers", ftoa(r.FlowVPH), ftoa(d.maxFlowVPH), d.id)
	}
	if r.HasOccupancy && !(r.Occupancy >= 0 && r.Occupancy <= 1) {
		return det, rj(ReasonOutOfRange, "occupancy %s outside 0..1", ftoa(r.Occupancy))
	}
	if r.HasSpeed && !(r.SpeedKMH >= 0 && r.SpeedKMH <= MaxSpeedKMH) {
		return det, rj(ReasonOutOfRange, "speed %s km/h outside 0..%s", ftoa(r.SpeedKMH), ftoa(MaxSpeedKMH))
	}
	if !r.HasOccupancy {
		r.Occupancy = 0
	}
	if !r.HasSpeed {
		r.SpeedKMH = 0
	}
	startNs := r.Start.UnixNano()
	if startNs/s.winNs != (startNs+int64(r.IntervalS)*int64(time.Second)-1)/s.winNs {
		return det, rj(ReasonInconsistent, "interval [%s, +%d s) straddles a %d s window boundary (windows are aligned to the Unix epoch)", r.Start.Format(time.RFC3339Nano), r.IntervalS, s.winS)
	}
	return det, nil
}

// DetectorHealth is one detector's recent record: exponentially decayed counts (half-life Config.HealthHalfLife
// of event time, decayed per closed window) and a score.
type DetectorHealth struct {
	DetectorID, ApproachID string
	// Valid readings used; Flagged of those by the outlier filter; Imputed windows without any reading;
	// Late and Rejected readings; Windows closed.
	Valid, Flagged, Imputed, Late, Rejected, Windows float64
	// Score is (1 − bad)·(1 − missing) in 0..1 with bad = (Rejected + Late + Flagged)/(Valid + Rejected + Late)
	// and missing = Imputed/Windows (each term 0 without evidence): 1 is a healthy detector.
	Score float64
}

// DetectorHealth returns every detector's health, in topology order.
func (s *Intersection) DetectorHealth() []DetectorHealth {
	out := make([]DetectorHealth, len(s.dets))
	for i, d := range s.dets {
		h := s.st.Dets[i].Health
		bad, missing := 0.0, 0.0
		if n := h.Valid + h.Rejected + h.Late; n > 0 {
			bad = math.Min(1, (h.Rejected+h.Late+h.Flagged)/n)
		}
		if h.Windows > 0 {
			missing = math.Min(1, h.Imputed/h.Windows)
		}
		out[i] = DetectorHealth{DetectorID: d.id, ApproachID: s.aps[d.approach].id,
			Valid: h.Valid, Flagged: h.Flagged, Imputed: h.Imputed, Late: h.Late, Rejected: h.Rejected, Windows: h.Windows,
			Score: (1 - bad) * (1 - missing)}
	}
	return out
}
