package topology

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Defaults of topologies derived from a readings file (ReadingsOptions zero values select them). A readings
// file says which detectors exist, where (intersection and approach) and how often they report; it says nothing
// about lanes, capacities or signals, so these are stand-ins to review, not measurements.
const (
	// ReadingsDefaultLanes is one lane per approach: the flow ratio features are then flow over one lane's
	// saturation flow, which is comparable between approaches without claiming a geometry.
	ReadingsDefaultLanes = 1
	// ReadingsDefaultSaturationFlow is the saturation flow per lane, in veh/h of green.
	ReadingsDefaultSaturationFlow = 1800
	// ReadingsDefaultRevision is written to Topology.Revision.
	ReadingsDefaultRevision = "csv-import"
	// DefaultMaxFeatureGroup bounds the intersections of one feature group (one Kafka partition key, see
	// PartitionKeys): a larger connected set of upstream links is split (see ReadingsBuilder.Topology).
	DefaultMaxFeatureGroup = 8
	// ReadingsMinCycleS and ReadingsMaxCycleS bound the cycle of intersections imported with Signals; their
	// phases take the SCATSDefault* greens and intervals, and the fixed-time plan spreads equal greens over
	// SCATSDefaultFixedCycleS.
	ReadingsMinCycleS = SCATSDefaultMinCycleS
	ReadingsMaxCycleS = SCATSDefaultMaxCycleS
)

// ReadingsOptions tune a ReadingsBuilder. The zero value selects every default.
type ReadingsOptions struct {
	// Revision is written to Topology.Revision (default ReadingsDefaultRevision).
	Revision string
	// TimeZone is written to Topology.TimeZone ("" leaves it unset: UTC). Canonical CSV times carry their
	// offset, so the file cannot say which zone its calendar is in.
	TimeZone string
	// WeatherStation is set on every intersection ("" for none): a readings file names no station.
	WeatherStation string
	// Lanes and SaturationFlowVPHPerLane apply to every approach (defaults ReadingsDefaultLanes and
	// ReadingsDefaultSaturationFlow).
	Lanes                    int
	SaturationFlowVPHPerLane float64
	// Signals makes every intersection with at least two approaches signal-controlled: one phase per approach
	// (its ID the approach's) with the SCATSDefault* timings. Otherwise, and for intersections with one
	// approach, intersections are ForecastOnly.
	Signals bool
	// MaxGroup bounds the intersections of a feature group (default DefaultMaxFeatureGroup).
	MaxGroup int
	// OnDrop, when set, is told about every link that does not become an upstream reference and every
	// intersection Signals leaves forecast_only, and why.
	OnDrop func(reason string)
}

// DetectorSeen is where one row of a readings file places a detector.
type DetectorSeen struct {
	// Intersection and Approach are the row's intersection_id and approach_id ("" when the file has none: the
	// detector ID stands in, see ReadingsBuilder).
	Intersection, Approach, Detector string
	// IntervalS is the row's interval_s.
	IntervalS int
	// File and Line locate the row, for errors.
	File string
	Line int
}

// ReadingsImportError lists every conflict found in the readings (and adjacency) files, each as "file:line: …".
type ReadingsImportError struct {
	Problems []string
}

// Error implements error.
func (e *ReadingsImportError) Error() string {
	return fmt.Sprintf("readings import (%d problems):\n  - %s", len(e.Problems), strings.Join(e.Problems, "\n  - "))
}

// ReadingsStats describes a derived topology.
type ReadingsStats struct {
	// Intersections, Signalised and ForecastOnly count the intersections (Signalised + ForecastOnly =
	// Intersections); Detectors counts the detectors.
	Intersections, Signalised, ForecastOnly, Detectors int
	// Upstream counts the upstream references written; Neighbours the neighbour links.
	Upstream, Neighbours int
	// Groups is the number of feature groups with more than one intersection; LargestGroup the size of the
	// largest group.
	Groups, LargestGroup int
	// DroppedAtBoundary counts upstream references dropped because they cross a feature group boundary;
	// DroppedWindow those between intersections with different windows.
	DroppedAtBoundary, DroppedWindow int
}

// ReadingsBuilder derives a topology from the rows of canonical readings files: Add every row (or every
// distinct detector), then call Topology. Not safe for concurrent use.
//
// Rules:
//
//   - one intersection per intersection_id; a row without one puts its detector in an intersection of its own,
//     with the detector ID as intersection ID;
//   - one approach per (intersection_id, approach_id); a row without approach_id puts its detector in an
//     approach of its own, with the detector ID as approach ID;
//   - one detector per detector_id: it must stay in one intersection and approach in every row;
//   - the intersection's window is its rows' interval_s, which must be the same in every row and divide a day.
//
// Intersections, approaches and detectors are sorted by ID, so the result does not depend on row order.
type ReadingsBuilder struct {
	opts      ReadingsOptions
	detectors map[string]DetectorSeen // detector ID → first row placing it
	windows   map[string]DetectorSeen // intersection ID → first row setting its window
	problems  []string
}

// NewReadingsBuilder returns an empty builder.
func NewReadingsBuilder(opts ReadingsOptions) *ReadingsBuilder {
	if opts.Revision == "" {
		opts.Revision = ReadingsDefaultRevision
	}
	if opts.Lanes == 0 {
		opts.Lanes = ReadingsDefaultLanes
	}
	if opts.SaturationFlowVPHPerLane == 0 {
		opts.SaturationFlowVPHPerLane = ReadingsDefaultSaturationFlow
	}
	if opts.MaxGroup == 0 {
		opts.MaxGroup = DefaultMaxFeatureGroup
	}
	return &ReadingsBuilder{opts: opts, detectors: map[string]DetectorSeen{}, windows: map[string]DetectorSeen{}}
}

func (b *ReadingsBuilder) problem(file string, line int, format string, args ...any) {
	if len(b.problems) < maxImportProblems {
		b.problems = append(b.problems, fmt.Sprintf("%s:%d: %s", file, line, fmt.Sprintf(format, args...)))
	}
}

// Add notes one row. Conflicts with earlier rows are collected and returned by Topology.
func (b *ReadingsBuilder) Add(d DetectorSeen) {
	if d.Intersection == "" {
		d.Intersection = d.Detector
	}
	if d.Approach == "" {
		d.Approach = d.Detector
	}
	if first, ok := b.detectors[d.Detector]; ok {
		if first.Intersection != d.Intersection || first.Approach != d.Approach {
			b.problem(d.File, d.Line, "detector %q is in %s/%s here but in %s/%s at %s:%d (a detector belongs to one approach)",
				d.Detector, d.Intersection, d.Approach, first.Intersection, first.Approach, first.File, first.Line)
		}
	} else {
		b.detectors[d.Detector] = d
	}
	first, ok := b.windows[d.Intersection]
	switch {
	case !ok:
		b.windows[d.Intersection] = d
		if d.IntervalS <= 0 || 86400%d.IntervalS != 0 {
			b.problem(d.File, d.Line, "intersection %q: interval_s %d does not divide a day, so it cannot be a window", d.Intersection, d.IntervalS)
		}
	case first.IntervalS != d.IntervalS:
		b.problem(d.File, d.Line, "intersection %q has interval_s %d here but %d at %s:%d (one window per intersection)",
			d.Intersection, d.IntervalS, first.IntervalS, first.File, first.Line)
	}
}

// approachRef is one approach of the derived topology.
type approachRef struct{ in, ap string }

func (r approachRef) String() string { return r.in + "/" + r.ap }

// Topology returns the validated topology of everything added, with the links of edges (read from the file
// adjacencyName; nil for none):
//
//   - an edge's ends are detector IDs or intersection IDs (a detector ID wins when an ID is both); a detector
//     stands for its approach, an intersection for all its approaches;
//   - an edge From → To makes every approach of From upstream of every approach of To (an approach is never its
//     own upstream); an undirected edge (Directed false) also the reverse;
//   - upstream references between intersections with different windows are dropped (the cleaner reads the
//     upstream approach's previous window, which must be one of this intersection's);
//   - feature groups are bounded: the intersections connected by upstream references form groups (PartitionKeys);
//     a connected set larger than opts.MaxGroup is split, deterministically, by taking its smallest unassigned
//     intersection ID and adding intersections in breadth-first order (neighbours in ID order) until the group
//     has MaxGroup members, then again from the smallest unassigned ID. A reference crossing two groups is
//     dropped: the downstream approach loses that feature input (reported through opts.OnDrop);
//   - with opts.Signals, an edge with a travel_time_s between two signal-controlled intersections also becomes
//     a neighbour link on To (and on From when undirected), the first such edge per pair winning. Neighbour links
//     share no state, so they do not count towards groups.
//
// Conflicting rows, unknown edge ends and invalid windows are returned together in a *ReadingsImportError.
func (b *ReadingsBuilder) Topology(edges []Edge, adjacencyName string) (Topology, ReadingsStats, error) {
	var st ReadingsStats
	problems := append([]string(nil), b.problems...)
	if len(b.detectors) == 0 && len(problems) == 0 {
		problems = append(problems, "no readings: nothing to derive a topology from")
	}
	// intersection → approach → detectors
	tree := map[string]map[string][]string{}
	for id, d := range b.detectors {
		if tree[d.Intersection] == nil {
			tree[d.Intersection] = map[string][]string{}
		}
		tree[d.Intersection][d.Approach] = append(tree[d.Intersection][d.Approach], id)
	}
	interIDs := sortedKeys(tree)
	approaches := map[string][]approachRef{}
	for _, in := range interIDs {
		for _, ap := range sortedKeys(tree[in]) {
			approaches[in] = append(approaches[in], approachRef{in, ap})
		}
	}
	signalised := map[string]bool{}
	if b.opts.Signals {
		for _, in := range interIDs {
			// Phases of SCATSDefault* greens fit SCATSDefaultMaxCycleS only up to a number of approaches.
			n := len(approaches[in])
			switch {
			case n < 2:
				b.drop("intersection %s stays forecast_only: one approach cannot make the two phases a plan needs", in)
			case float64(n)*(SCATSDefaultPedestrianMinS+SCATSDefaultYellowS+SCATSDefaultAllRedS) > ReadingsMaxCycleS:
				b.drop("intersection %s stays forecast_only: %d approaches cannot have one phase each within a %d s cycle", in, n, ReadingsMaxCycleS)
			default:
				signalised[in] = true
			}
		}
	}

	// Resolve the edges to upstream references and neighbour links.
	resolve := func(id string, line int) []approachRef {
		if d, ok := b.detectors[id]; ok {
			return []approachRef{{d.Intersection, d.Approach}}
		}
		if refs, ok := approaches[id]; ok {
			return refs
		}
		if len(problems) < maxImportProblems {
			problems = append(problems, fmt.Sprintf("%s:%d: %q is neither a detector nor an intersection of the readings", adjacencyName, line, id))
		}
		return nil
	}
	upstream := map[approachRef]map[approachRef]bool{} // downstream → its upstream approaches
	links := map[string]map[string]Link{}              // intersection → neighbour → link
	var linkOrder []approachRef                        // (intersection, neighbour) in edge order
	window := func(in string) int { return b.windows[in].IntervalS }
	addLink := func(from, to []approachRef, e Edge) {
		for _, t := range to {
			for _, f := range from {
				if f == t {
					continue
				}
				if window(f.in) != window(t.in) {
					st.DroppedWindow++
					b.drop("%s:%d: upstream %s → %s dropped: windows %d s and %d s differ", adjacencyName, e.Line, f, t, window(f.in), window(t.in))
					continue
				}
				if upstream[t] == nil {
					upstream[t] = map[approachRef]bool{}
				}
				upstream[t][f] = true
			}
		}
		if !b.opts.Signals || !e.HasTravelTime || len(from) == 0 || len(to) == 0 {
			return
		}
		fi, ti := from[0].in, to[0].in
		if fi == ti || !signalised[fi] || !signalised[ti] {
			return
		}
		if links[ti] == nil {
			links[ti] = map[string]Link{}
		}
		if _, dup := links[ti][fi]; !dup {
			links[ti][fi] = Link{Intersection: fi, TravelTimeS: e.TravelTimeS}
			linkOrder = append(linkOrder, approachRef{ti, fi})
		}
	}
	for _, e := range edges {
		from, to := resolve(e.From, e.Line), resolve(e.To, e.Line)
		addLink(from, to, e)
		if !e.Directed {
			addLink(to, from, e)
		}
	}
	if len(problems) > 0 {
		return Topology{}, st, &ReadingsImportError{Problems: problems}
	}

	group := b.groups(interIDs, upstream)
	t := Topology{Version: SchemaVersion, Revision: b.opts.Revision, TimeZone: b.opts.TimeZone}
	for _, id := range interIDs {
		in := Intersection{ID: id, WindowS: window(id), WeatherStation: b.opts.WeatherStation}
		for _, ref := range approaches[id] {
			dets := append([]string(nil), tree[id][ref.ap]...)
			sort.Strings(dets)
			a := Approach{ID: ref.ap, Lanes: b.opts.Lanes, SaturationFlowVPHPerLane: b.opts.SaturationFlowVPHPerLane, Detectors: dets}
			for _, up := range sortedRefs(upstream[ref]) {
				if group[up.in] != group[id] {
					st.DroppedAtBoundary++
					b.drop("upstream %s → %s dropped: it crosses a feature group boundary (--max-group %d)", up, ref, b.opts.MaxGroup)
					continue
				}
				a.Upstream = append(a.Upstream, up.String())
			}
			st.Upstream += len(a.Upstream)
			st.Detectors += len(dets)
			in.Approaches = append(in.Approaches, a)
		}
		if signalised[id] {
			readingsSignals(&in)
			st.Signalised++
		} else {
			in.ForecastOnly = true
			st.ForecastOnly++
		}
		t.Intersections = append(t.Intersections, in)
	}
	byID := intersectionIndex(t)
	for _, l := range linkOrder {
		in := &t.Intersections[byID[l.in]]
		in.Neighbours = append(in.Neighbours, links[l.in][l.ap])
		st.Neighbours++
	}
	st.Intersections = len(t.Intersections)
	sizes := map[string]int{}
	for _, g := range t.PartitionKeys() {
		sizes[g]++
	}
	for _, n := range sizes {
		if n > 1 {
			st.Groups++
		}
		st.LargestGroup = max(st.LargestGroup, n)
	}
	if err := t.Validate(); err != nil {
		return Topology{}, st, fmt.Errorf("readings import: %w", err)
	}
	return t, st, nil
}

func (b *ReadingsBuilder) drop(format string, args ...any) {
	if b.opts.OnDrop != nil {
		b.opts.OnDrop(fmt.Sprintf(format, args...))
	}
}

// groups assigns every intersection a feature group number by the rule documented on Topology: connected sets
// of at most MaxGroup intersections stay whole, larger ones are cut breadth-first from their smallest IDs.
func (b *ReadingsBuilder) groups(ids []string, upstream map[approachRef]map[approachRef]bool) map[string]int {
	adj := map[string]map[string]bool{}
	for down, ups := range upstream {
		for up := range ups {
			if up.in == down.in {
				continue
			}
			for _, p := range [][2]string{{up.in, down.in}, {down.in, up.in}} {
				if adj[p[0]] == nil {
					adj[p[0]] = map[string]bool{}
				}
				adj[p[0]][p[1]] = true
			}
		}
	}
	neighbours := func(id string) []string { return sortedKeys(adj[id]) }
	group := map[string]int{}
	next := 0
	for _, id := range ids { // ids are sorted: every component starts at its smallest ID
		if _, done := group[id]; done {
			continue
		}
		// The whole connected component first.
		comp := map[string]bool{id: true}
		queue := []string{id}
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			for _, n := range neighbours(cur) {
				if !comp[n] {
					comp[n] = true
					queue = append(queue, n)
				}
			}
		}
		if len(comp) <= b.opts.MaxGroup {
			for m := range comp {
				group[m] = next
			}
			next++
			continue
		}
		members := sortedKeys(comp)
		for _, start := range members {
			if _, done := group[start]; done {
				continue
			}
			size := 0
			queue := []string{start}
			group[start] = next
			for len(queue) > 0 && size < b.opts.MaxGroup {
				cur := queue[0]
				queue = queue[1:]
				size++
				for _, n := range neighbours(cur) {
					if _, done := group[n]; done || size+len(queue) >= b.opts.MaxGroup {
						continue
					}
					group[n] = next
					queue = append(queue, n)
				}
			}
			next++
		}
	}
	return group
}

// readingsSignals gives an intersection one phase per approach with the SCATSDefault* timings and a fixed-time
// plan of equal greens.
func readingsSignals(in *Intersection) {
	in.Timing = Timing{MinCycleS: ReadingsMinCycleS, MaxCycleS: ReadingsMaxCycleS}
	n := float64(len(in.Approaches))
	in.FixedTime = map[string]float64{}
	for _, a := range in.Approaches {
		ph := Phase{ID: a.ID, Approaches: []string{a.ID}, MinGreenS: SCATSDefaultMinGreenS, MaxGreenS: SCATSDefaultMaxGreenS,
			PedestrianMinS: SCATSDefaultPedestrianMinS, YellowS: SCATSDefaultYellowS, AllRedS: SCATSDefaultAllRedS, LostTimeS: SCATSDefaultLostTimeS}
		in.Phases = append(in.Phases, ph)
		g := (SCATSDefaultFixedCycleS - n*(ph.YellowS+ph.AllRedS)) / n
		in.FixedTime[ph.ID] = math.Min(math.Max(math.Floor(g), ph.EffectiveMinGreenS()), ph.MaxGreenS)
	}
	// Equal greens over the default cycle may fall short of the minimum cycle with few phases: stretch them.
	cycle := 0.0
	for _, ph := range in.Phases {
		cycle += in.FixedTime[ph.ID] + ph.YellowS + ph.AllRedS
	}
	if cycle < in.Timing.MinCycleS {
		extra := math.Ceil((in.Timing.MinCycleS - cycle) / n)
		for _, ph := range in.Phases {
			in.FixedTime[ph.ID] = math.Min(in.FixedTime[ph.ID]+extra, ph.MaxGreenS)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func sortedRefs(m map[approachRef]bool) []approachRef {
	rs := make([]approachRef, 0, len(m))
	for r := range m {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].in != rs[j].in {
			return rs[i].in < rs[j].in
		}
		return rs[i].ap < rs[j].ap
	})
	return rs
}

// Summary is one line describing the derived topology, for command output.
func (s ReadingsStats) Summary() string {
	return fmt.Sprintf("%d intersections (%d signalised, %d forecast_only), %d detectors, %d upstream references in %d feature groups (largest %d), %d neighbour links; dropped %d links at group boundaries, %d between unequal windows",
		s.Intersections, s.Signalised, s.ForecastOnly, s.Detectors, s.Upstream, s.Groups, s.LargestGroup, s.Neighbours, s.DroppedAtBoundary, s.DroppedWindow)
}
