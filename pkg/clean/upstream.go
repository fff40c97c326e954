package clean

import (
	"fmt"
	"maps"
	"slices"
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
	UpstreamFlowRatio(intersectionID, approachID string, windowStart time.Time) (float64, bool)
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

// SetUpstream attaches the lookup the upstream features are read from; nil (the default) means no upstream data,
// so those features are absent. The lookup is not part of the marshalled state: owners attach it again after
// NewIntersection and RestoreIntersection, before the next Add, CloseIdle or Flush.
func (s *Intersection) SetUpstream(ul UpstreamLookup) { s.ul = ul }

// FlowRatio returns approach approachID's flow_ratio in this intersection's emitted window starting at
// windowStart, from the lag history. It is false for an unknown approach, a windowStart that is not one of this
// intersection's window starts, a window not emitted yet, a gap, or a window older than the 7 days kept.
func (s *Intersection) FlowRatio(approachID string, windowStart time.Time) (float64, bool) {
	ai, ok := s.apIndex[approachID]
	sec := windowStart.Unix()
	if !ok || windowStart.Nanosecond() != 0 || sec < 0 || sec%s.winS != 0 {
		return 0, false
	}
	l := s.lag(&s.st.Aps[ai], sec/s.winS)
	return l.FlowRatio, l.OK
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
		if r, ok := s.ul.UpstreamFlowRatio(u.intersection, u.approach, prev); ok && finite(r) {
			sum += r
			n++
		}
	}
	if n == 0 {
		return features.Lag{}
	}
	return features.Lag{FlowRatio: sum / float64(n), OK: true}
}

// States is one cleaner partition's intersections by ID. It implements UpstreamLookup over its members: attach
// it to every member with SetUpstream, and each reads its upstream approaches from the others. Members read each
// other while they close windows, so one goroutine uses the whole States (the partition's), like an Intersection.
type States map[string]*Intersection

// UpstreamFlowRatio implements UpstreamLookup with the named member's FlowRatio (false when it is not held).
func (st States) UpstreamFlowRatio(intersectionID, approachID string, windowStart time.Time) (float64, bool) {
	s := st[intersectionID]
	if s == nil {
		return 0, false
	}
	return s.FlowRatio(approachID, windowStart)
}

// IDs returns the members' IDs in byte order. Call Flush and CloseIdle on the members in this order: a window
// they close reads its upstream intersections as the earlier calls left them, so a fixed order keeps the
// frames a function of the input rather than of map iteration.
func (st States) IDs() []string {
	return slices.Sorted(maps.Keys(st))
}
