package clean

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/greenwave-city/greenwave/pkg/features"
)

// UpstreamLookup answers an approach's flow ratio in one of its intersection's emitted windows. The cleaner asks
// it, when a window t closes, for window t-1 of every upstream approach the topology names (see the package
// documentation, "Upstream features"). States implements it.
type UpstreamLookup interface {
	// UpstreamFlowRatio returns the flow_ratio of the approach's emitted window starting at windowStart, false
	// when that is unknown: intersection not held, window not emitted yet, a gap, outside the history kept, or
	// windowStart not a window start of that intersection.
	// Only windows emitted at an input position at or before asOf count (see Intersection.SetPosition).
	UpstreamFlowRatio(intersectionID, approachID string, windowStart time.Time, asOf int64) (float64, bool)
	// UpstreamRecent returns the occupancy ratio and the speed ratio (km/h / features.SpeedScaleKMH) of the
	// approach's emitted window starting at windowStart, each absent when it was not measured there or is
	// unknown for the reasons of UpstreamFlowRatio, or when the window is older than the recent history kept
	// (RecentHistory).
	UpstreamRecent(intersectionID, approachID string, windowStart time.Time, asOf int64) (occupancy, speedRatio features.Past)
}

// upstreamRef is one parsed topology.Approach.Upstream entry.
type upstreamRef struct {
	intersection, approach string
}

// parseUpstream splits "intersection/approach" entries at the first '/' (intersection ids cannot contain one).
// A repeated entry is kept once, so that it does not weigh twice in the mean.
func parseUpstream(entries []string) ([]upstreamRef, error) {
	var out []upstreamRef
	for _, e := range entries {
		i, a, ok := strings.Cut(e, "/")
		if !ok || i == "" || a == "" {
			return nil, fmt.Errorf("upstream %q is not \"intersection/approach\"", e)
		}
		if r := (upstreamRef{intersection: i, approach: a}); !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// beforeAnyPosition stamps windows whose emission position is unknown (restored from a state format without
// stamps): they count as emitted before anything that is applied now.
const beforeAnyPosition = math.MinInt64

// SetPosition records the input position (in the cleaner, the Kafka offset) of what is applied next: the windows
// the intersection emits are stamped with it, and its upstream lookups see only windows stamped at or before
// it. Positions must not decrease across the members of one States; 0 everywhere (never set) disables the bound.
//
// Why: a checkpoint writes each member's state as its own changelog record, and a crash can leave some of them
// acknowledged and others not, so a restore may bring an upstream member back at a later checkpoint than the
// members that read it. Replaying the input from the committed offset, a reader would then see upstream
// windows that in the uninterrupted run were emitted only later; the stamp hides them, so the replayed frames
// equal the uninterrupted run's.
func (s *Intersection) SetPosition(pos int64) { s.pos = pos }

// SetUpstream attaches the lookup the upstream features are read from; nil (the default) means no upstream data,
// so those features are absent. The lookup is not part of the marshalled state: owners attach it again after
// NewIntersection and RestoreIntersection, before the next Add, CloseIdle or Flush.
func (s *Intersection) SetUpstream(ul UpstreamLookup) { s.ul = ul }

// FlowRatio returns approach approachID's flow_ratio in this intersection's window starting at windowStart,
// emitted at an input position at or before asOf, from the lag history. It is false for an unknown approach, a
// windowStart that is not one of this intersection's window starts, a window not emitted yet (or emitted after
// asOf), a gap, or a window older than the 7 days kept.
func (s *Intersection) FlowRatio(approachID string, windowStart time.Time, asOf int64) (float64, bool) {
	ai, ok := s.apIndex[approachID]
	sec := windowStart.Unix()
	if !ok || windowStart.Nanosecond() != 0 || sec < 0 || sec%s.winS != 0 {
		return 0, false
	}
	as := &s.st.Aps[ai]
	idx := sec / s.winS
	l := s.lag(as, idx)
	if !l.OK || s.emittedAt(idx) > asOf {
		return 0, false
	}
	return l.FlowRatio, true
}

// Recent returns approach approachID's occupancy ratio and speed ratio in this intersection's window starting
// at windowStart, emitted at an input position at or before asOf, from the recent history (RecentHistory):
// each is absent under the conditions of FlowRatio, when it was not measured in that window, or when the window
// is older than the recent history.
func (s *Intersection) Recent(approachID string, windowStart time.Time, asOf int64) (occupancy, speedRatio features.Past) {
	ai, ok := s.apIndex[approachID]
	sec := windowStart.Unix()
	if !ok || windowStart.Nanosecond() != 0 || sec < 0 || sec%s.winS != 0 {
		return features.Past{}, features.Past{}
	}
	idx := sec / s.winS
	if s.emittedAt(idx) > asOf {
		return features.Past{}, features.Past{}
	}
	return s.recent(&s.st.Aps[ai], idx)
}

// emittedAt is the input position at which window idx was emitted, beforeAnyPosition when no mark is kept
// (emitted at or before the position ForgetEmissionsThrough was given, or with no position set).
func (s *Intersection) emittedAt(idx int64) int64 {
	m := s.st.Marks
	i := sort.Search(len(m), func(i int) bool { return m[i].window >= idx })
	if i < len(m) && m[i].window == idx {
		return m[i].pos
	}
	return beforeAnyPosition
}

// ForgetEmissionsThrough drops the emission positions at or before pos and stops recording them: pos must be a
// position that every later lookup (SetPosition) and every later restore's replay is past, such as the last
// offset of a checkpoint that is complete and committed. Lookups then answer exactly as before, and the state
// keeps only the windows emitted since (the cleaner calls it at each checkpoint with the previous one's).
func (s *Intersection) ForgetEmissionsThrough(pos int64) {
	s.forgotten = max(s.forgotten, pos)
	m := s.st.Marks
	keep := m[:0]
	for _, e := range m {
		if e.pos > pos {
			keep = append(keep, e)
		}
	}
	s.st.Marks = keep
}

// upstreamLag is the mean flow ratio, in the window starting at prev, of ap's upstream approaches that the
// lookup knows, summed in configuration order so that the result does not depend on anything else.
func (s *Intersection) upstreamLag(ap apInfo, prev time.Time) features.Lag {
	if s.ul == nil {
		return features.Lag{}
	}
	var sum float64
	n := 0
	for _, u := range ap.upstream {
		// A foreign lookup could answer NaN or ±Inf; features must stay finite, so such a value counts as unknown.
		if r, ok := s.ul.UpstreamFlowRatio(u.intersection, u.approach, prev, s.pos); ok && finite(r) {
			sum += r
			n++
		}
	}
	if n == 0 {
		return features.Lag{}
	}
	return features.Lag{FlowRatio: sum / float64(n), OK: true}
}

// upstreamRecent is the mean occupancy ratio and the mean speed ratio, in the window starting at prev, of ap's
// upstream approaches whose value the lookup knows, each over its own known ones, in configuration order.
func (s *Intersection) upstreamRecent(ap apInfo, prev time.Time) (occupancy, speedRatio features.Past) {
	if s.ul == nil {
		return features.Past{}, features.Past{}
	}
	var occSum, spdSum float64
	nOcc, nSpd := 0, 0
	for _, u := range ap.upstream {
		occ, spd := s.ul.UpstreamRecent(u.intersection, u.approach, prev, s.pos)
		if occ.OK && finite(occ.Value) {
			occSum += occ.Value
			nOcc++
		}
		if spd.OK && finite(spd.Value) {
			spdSum += spd.Value
			nSpd++
		}
	}
	if nOcc > 0 {
		occupancy = features.Past{Value: occSum / float64(nOcc), OK: true}
	}
	if nSpd > 0 {
		speedRatio = features.Past{Value: spdSum / float64(nSpd), OK: true}
	}
	return occupancy, speedRatio
}

// States is one cleaner partition's intersections by ID. It implements UpstreamLookup over its members: attach
// it to every member with SetUpstream, and each reads its upstream approaches from the others. Members read each
// other while they close windows, so one goroutine uses the whole States (the partition's), like an Intersection.
type States map[string]*Intersection

// UpstreamFlowRatio implements UpstreamLookup with the named member's FlowRatio (false when it is not held).
func (st States) UpstreamFlowRatio(intersectionID, approachID string, windowStart time.Time, asOf int64) (float64, bool) {
	s := st[intersectionID]
	if s == nil {
		return 0, false
	}
	return s.FlowRatio(approachID, windowStart, asOf)
}

// UpstreamRecent implements UpstreamLookup with the named member's Recent (absent when it is not held).
func (st States) UpstreamRecent(intersectionID, approachID string, windowStart time.Time, asOf int64) (occupancy, speedRatio features.Past) {
	s := st[intersectionID]
	if s == nil {
		return features.Past{}, features.Past{}
	}
	return s.Recent(approachID, windowStart, asOf)
}

// IDs returns the members' IDs in byte order. Call Flush and CloseIdle on the members in a fixed order, such
// as this one (the offline evaluator uses topology order): a window they close reads its upstream
// intersections as the earlier calls left them, so a fixed order keeps the frames a function of the input
// rather than of map iteration.
func (st States) IDs() []string {
	return slices.Sorted(maps.Keys(st))
}
