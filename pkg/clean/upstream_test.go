package clean

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// upTopos are an upstream intersection U (approaches S and T) and X, whose approach N names ups as upstream and
// whose approach E names none. Every approach has one detector: <approach>1.
func upTopos(ups []string) (u, x topology.Intersection) {
	ap := func(id string, ups []string) topology.Approach {
		return topology.Approach{ID: id, Lanes: 1, SaturationFlowVPHPerLane: 1800, Detectors: []string{id + "1"}, Upstream: ups}
	}
	u = topology.Intersection{ID: "U", WindowS: 300, Approaches: []topology.Approach{ap("S", nil), ap("T", nil)}}
	x = topology.Intersection{ID: "X", WindowS: 300, Approaches: []topology.Approach{ap("N", ups), ap("E", nil)}}
	return u, x
}

// upConfig makes a window without its detector's reading a gap: no carry-forward, no profile fill.
func upConfig() Config {
	cfg := DefaultConfig()
	cfg.InterpolateMaxGap, cfg.ProfileFillMaxGap = 0, 0
	return cfg
}

const upWindows = 14

var upDetectors = map[string]string{"S1": "U", "T1": "U", "N1": "X", "E1": "X"}

// upCount is detector det's count in window m: distinct values, so that no run looks stuck.
func upCount(det string, m int) float64 {
	return map[string]float64{"S1": 20, "T1": 40, "N1": 10, "E1": 30}[det] + float64(m)*map[string]float64{"S1": 1, "T1": 2, "N1": 1, "E1": 3}[det]
}

// upOcc and upSpeed are detector det's occupancy ratio and speed in window m, distinct like upCount.
func upOcc(det string, m int) float64 {
	return map[string]float64{"S1": 0.05, "T1": 0.1, "N1": 0.02, "E1": 0.15}[det] + 0.01*float64(m)
}

func upSpeed(det string, m int) float64 {
	return map[string]float64{"S1": 30, "T1": 45, "N1": 35, "E1": 50}[det] + float64(m)
}

// upReadings are one 300 s reading per detector and window, U's before X's in each window, except the missing
// ones ("det@window"). Every reading has an occupancy and a speed, except where missing lists
// "det@window:occ" or "det@window:spd".
func upReadings(missing []string) []Reading {
	var out []Reading
	for m := range upWindows {
		for _, det := range []string{"S1", "T1", "N1", "E1"} {
			key := fmt.Sprintf("%s@%d", det, m)
			if slices.Contains(missing, key) {
				continue
			}
			out = append(out, Reading{ID: key, IntersectionID: upDetectors[det], DetectorID: det,
				Start: t0.Add(time.Duration(m) * 5 * time.Minute), IntervalS: 300, Count: upCount(det, m),
				Occupancy: upOcc(det, m), HasOccupancy: !slices.Contains(missing, key+":occ"),
				SpeedKMH: upSpeed(det, m), HasSpeed: !slices.Contains(missing, key+":spd")})
			if !out[len(out)-1].HasOccupancy {
				out[len(out)-1].Occupancy = 0
			}
			if !out[len(out)-1].HasSpeed {
				out[len(out)-1].SpeedKMH = 0
			}
		}
	}
	return out
}

// upRun feeds rs to the partition's intersections and, when flush is set, flushes them in States.IDs order.
func upRun(t *testing.T, st States, rs []Reading, flush bool) map[string][]features.Frame {
	t.Helper()
	out := map[string][]features.Frame{}
	for _, r := range rs {
		res := st[r.IntersectionID].Add(r, nil)
		if len(res.Rejected) != 0 {
			t.Fatalf("rejected %+v", res.Rejected)
		}
		out[r.IntersectionID] = append(out[r.IntersectionID], res.Frames...)
	}
	if flush {
		for _, id := range st.IDs() {
			out[id] = append(out[id], st[id].Flush(nil).Frames...)
		}
	}
	return out
}

func newUpStates(t *testing.T, ups []string, attach bool) States {
	t.Helper()
	tu, tx := upTopos(ups)
	st := States{}
	for _, in := range []topology.Intersection{tu, tx} {
		s, err := NewIntersection(in, upConfig())
		if err != nil {
			t.Fatalf("NewIntersection: %v", err)
		}
		st[in.ID] = s
	}
	if attach {
		for _, s := range st {
			s.SetUpstream(st)
		}
	}
	return st
}

func TestUpstreamFeatures(t *testing.T) {
	t.Parallel()
	iv, ip := featureIndex("upstream_flow_ratio_lag1"), featureIndex("upstream_lag1_present")
	detOf := map[string]string{"U/S": "S1", "U/T": "T1", "X/N": "N1", "X/E": "E1"}
	cases := []struct {
		name    string
		ups     []string
		missing []string
		attach  bool
		// absent are X windows whose N must have no upstream value (besides window 0, which has no t-1).
		absent []int
	}{
		{"upstream window t-1 known", []string{"U/S"}, nil, true, nil},
		{"upstream window t-1 a gap", []string{"U/S"}, []string{"S1@3", "S1@8", "S1@9"}, true, []int{4, 9, 10}},
		{"two upstream, mean of the known", []string{"U/S", "U/T"}, []string{"T1@3", "S1@6", "S1@9", "T1@9"}, true, []int{10}},
		{"unheld intersection and unknown approach are unknown", []string{"W/Z", "U/Q", "U/S"}, []string{"S1@5"}, true, []int{6}},
		{"a repeated entry counts once", []string{"U/S", "U/T", "U/S"}, []string{"T1@2"}, true, nil},
		{"own intersection and itself", []string{"X/N", "X/E"}, []string{"N1@4", "E1@4"}, true, []int{5}},
		{"no lookup attached", []string{"U/S"}, nil, false, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}},
		{"no upstream configured", nil, nil, true, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			frames := upRun(t, newUpStates(t, tc.ups, tc.attach), upReadings(tc.missing), true)
			if len(frames["X"]) != upWindows || len(frames["U"]) != upWindows {
				t.Fatalf("%d X and %d U frames, want %d each", len(frames["X"]), len(frames["U"]), upWindows)
			}
			for id, fs := range frames {
				checkFinite(t, fs)
				for _, f := range fs {
					if f.FeatureSetVersion != features.SetVersion || len(f.Names) != features.NumFeatures {
						t.Fatalf("%s: feature set %d with %d names", id, f.FeatureSetVersion, len(f.Names))
					}
				}
			}
			for _, f := range frames["U"] {
				for _, v := range f.Approaches {
					if v.Values[iv] != 0 || v.Values[ip] != 0 {
						t.Fatalf("U %s %s: upstream feature without upstream configured", f.WindowStart, v.ApproachID)
					}
				}
			}
			for k, f := range frames["X"] {
				// The oracle works from the readings fed, not from U's frames: mean of count/150 (capacity
				// 1800 veh/h, 300 s windows) over the distinct upstream approaches with a reading in window k-1.
				var sum float64
				n := 0
				var seen []string
				for _, up := range tc.ups {
					det, ok := detOf[up]
					if !tc.attach || !ok || slices.Contains(seen, up) || k == 0 || slices.Contains(tc.missing, fmt.Sprintf("%s@%d", det, k-1)) {
						continue
					}
					seen = append(seen, up)
					sum += quantizeLag(upCount(det, k-1) / 150) // the lag history holds 1/10000 steps
					n++
				}
				if (n == 0) != (k == 0 || slices.Contains(tc.absent, k)) {
					t.Fatalf("window %d: oracle has %d known upstream approaches, case lists absent %v", k, n, tc.absent)
				}
				want, wantP := 0.0, 0.0
				if n > 0 {
					want, wantP = sum/float64(n), 1
				}
				nv, ev := f.Approaches[0].Values, f.Approaches[1].Values
				if math.Abs(nv[iv]-want) > 1e-12 || nv[ip] != wantP {
					t.Errorf("window %d N: upstream %v present %v, want %v %v", k, nv[iv], nv[ip], want, wantP)
				}
				if ev[iv] != 0 || ev[ip] != 0 {
					t.Errorf("window %d E: upstream %v present %v without upstream configured", k, ev[iv], ev[ip])
				}
			}
		})
	}
}

// TestUpstreamOccupancySpeed: approach N's upstream occupancy and speed features are the means, over its
// upstream approaches whose window t-1 measured them, of the values fed, each with its own presence.
func TestUpstreamOccupancySpeed(t *testing.T) {
	t.Parallel()
	io, iop := featureIndex("upstream_occupancy_lag1"), featureIndex("upstream_occupancy_present")
	is, isp := featureIndex("upstream_speed_ratio_lag1"), featureIndex("upstream_speed_present")
	detOf := map[string]string{"U/S": "S1", "U/T": "T1", "X/N": "N1", "X/E": "E1"}
	cases := []struct {
		name    string
		ups     []string
		missing []string
		attach  bool
	}{
		{"one upstream known", []string{"U/S"}, nil, true},
		{"occupancy and speed missing apart", []string{"U/S"}, []string{"S1@3:occ", "S1@5:spd", "S1@8:occ", "S1@8:spd"}, true},
		{"upstream window t-1 a gap", []string{"U/S"}, []string{"S1@4"}, true},
		{"two upstream, mean of the known", []string{"U/S", "U/T"}, []string{"T1@3:occ", "S1@6:spd", "S1@9", "T1@9:occ"}, true},
		{"unheld intersection and unknown approach are unknown", []string{"W/Z", "U/Q", "U/S"}, []string{"S1@5:occ"}, true},
		{"own intersection", []string{"X/E"}, []string{"E1@4:spd"}, true},
		{"no lookup attached", []string{"U/S"}, nil, false},
		{"no upstream configured", nil, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			frames := upRun(t, newUpStates(t, tc.ups, tc.attach), upReadings(tc.missing), true)
			if len(frames["X"]) != upWindows {
				t.Fatalf("%d X frames, want %d", len(frames["X"]), upWindows)
			}
			checkFinite(t, frames["X"])
			for k, f := range frames["X"] {
				// The oracle works from the readings fed: the mean over the distinct upstream approaches whose
				// window k-1 had a reading with the value, as stored (1/10000 steps).
				var occSum, spdSum float64
				nOcc, nSpd := 0, 0
				var seen []string
				for _, up := range tc.ups {
					det, ok := detOf[up]
					key := fmt.Sprintf("%s@%d", det, k-1)
					if !tc.attach || !ok || slices.Contains(seen, up) || k == 0 || slices.Contains(tc.missing, key) {
						continue
					}
					seen = append(seen, up)
					if !slices.Contains(tc.missing, key+":occ") {
						occSum += quantizeLag(upOcc(det, k-1))
						nOcc++
					}
					if !slices.Contains(tc.missing, key+":spd") {
						spdSum += quantizeLag(upSpeed(det, k-1) / features.SpeedScaleKMH)
						nSpd++
					}
				}
				wantO, wantOP, wantS, wantSP := 0.0, 0.0, 0.0, 0.0
				if nOcc > 0 {
					wantO, wantOP = occSum/float64(nOcc), 1
				}
				if nSpd > 0 {
					wantS, wantSP = spdSum/float64(nSpd), 1
				}
				nv, ev := f.Approaches[0].Values, f.Approaches[1].Values
				if math.Abs(nv[io]-wantO) > 1e-12 || nv[iop] != wantOP || math.Abs(nv[is]-wantS) > 1e-12 || nv[isp] != wantSP {
					t.Errorf("window %d N: occupancy %v (%v), speed %v (%v); want %v (%v), %v (%v)",
						k, nv[io], nv[iop], nv[is], nv[isp], wantO, wantOP, wantS, wantSP)
				}
				if ev[io] != 0 || ev[iop] != 0 || ev[is] != 0 || ev[isp] != 0 {
					t.Errorf("window %d E: upstream occupancy or speed without upstream configured", k)
				}
			}
		})
	}
}

// TestRecentHistoryBound: the occupancy and speed of a window older than RecentHistory are unknown, while its
// flow ratio is still known (7 days).
func TestRecentHistoryBound(t *testing.T) {
	t.Parallel()
	tu, _ := upTopos(nil)
	u, err := NewIntersection(tu, upConfig())
	if err != nil {
		t.Fatal(err)
	}
	n := int(RecentHistory/(5*time.Minute)) + 3
	for m := range n {
		r := Reading{ID: fmt.Sprintf("S1@%d", m), IntersectionID: "U", DetectorID: "S1", Start: t0.Add(time.Duration(m) * 5 * time.Minute),
			IntervalS: 300, Count: 20 + float64(m%7), Occupancy: 0.1 + 0.01*float64(m%5), HasOccupancy: true, SpeedKMH: 40 + float64(m%9), HasSpeed: true}
		if res := u.Add(r, nil); len(res.Rejected) != 0 {
			t.Fatalf("rejected %+v", res.Rejected)
		}
	}
	u.Flush(nil)
	w := func(m int) time.Time { return t0.Add(time.Duration(m) * 5 * time.Minute) }
	for _, tc := range []struct {
		m     int
		known bool
	}{{n - 1, true}, {n - int(RecentHistory/(5*time.Minute)), true}, {n - int(RecentHistory/(5*time.Minute)) - 1, false}, {0, false}, {n, false}} {
		occ, spd := u.Recent("S", w(tc.m), 0)
		if occ.OK != tc.known || spd.OK != tc.known {
			t.Errorf("window %d of %d: occupancy %+v speed %+v, want known %v", tc.m, n, occ, spd, tc.known)
		}
		if _, ok := u.FlowRatio("S", w(tc.m), 0); ok != (tc.m < n) {
			t.Errorf("window %d: flow ratio known %v", tc.m, ok)
		}
	}
	if occ, spd := u.Recent("S", w(n-1), 0); math.Abs(occ.Value-(0.1+0.01*float64((n-1)%5))) > 1e-4 || math.Abs(spd.Value-(40+float64((n-1)%9))/100) > 1e-4 {
		t.Errorf("last window: occupancy %v speed %v", occ.Value, spd.Value)
	}
	if occ, _ := u.Recent("S", w(n-1).Add(time.Second), 0); occ.OK {
		t.Error("a time that is no window start is known")
	}
}

// TestUpstreamRestore checks restart equivalence across intersections: both restored at any offset, with the
// lookup attached again, give the frames of the uninterrupted run.
func TestUpstreamRestore(t *testing.T) {
	t.Parallel()
	ups := []string{"U/S", "U/T", "X/E"}
	rs := upReadings([]string{"T1@3", "S1@6", "S1@9", "T1@9", "E1@7"})
	want := upRun(t, newUpStates(t, ups, true), rs, true)
	tu, tx := upTopos(ups)
	topos := map[string]topology.Intersection{"U": tu, "X": tx}
	for cut := 0; cut <= len(rs); cut++ {
		st := newUpStates(t, ups, true)
		got := upRun(t, st, rs[:cut], false)
		restored := States{}
		for _, id := range st.IDs() {
			var err error
			if restored[id], err = RestoreIntersection(topos[id], upConfig(), st[id].State()); err != nil {
				t.Fatalf("cut %d: restore %s: %v", cut, id, err)
			}
		}
		for _, s := range restored {
			s.SetUpstream(restored)
		}
		for id, fs := range upRun(t, restored, rs[cut:], true) {
			got[id] = append(got[id], fs...)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("cut %d: restored run differs from the uninterrupted one", cut)
		}
	}
}

func TestFlowRatio(t *testing.T) {
	t.Parallel()
	st := newUpStates(t, nil, true)
	upRun(t, st, upReadings([]string{"S1@4"}), false) // windows 0..11 emitted, 12 and 13 open
	u := st["U"]
	w := func(m int) time.Time { return t0.Add(time.Duration(m) * 5 * time.Minute) }
	cases := []struct {
		name         string
		intersection string
		approach     string
		start        time.Time
		want         float64
		ok           bool
	}{
		{"emitted", "U", "S", w(3), quantizeLag(upCount("S1", 3) / 150), true},
		{"emitted, other approach", "U", "T", w(4), quantizeLag(upCount("T1", 4) / 150), true},
		{"emitted, in another zone", "U", "S", w(3).In(time.FixedZone("x", 3600)), quantizeLag(upCount("S1", 3) / 150), true},
		{"gap", "U", "S", w(4), 0, false},
		{"not emitted yet", "U", "S", w(12), 0, false},
		{"before the first window", "U", "S", w(-1), 0, false},
		{"older than the history", "U", "S", w(3).Add(-8 * 24 * time.Hour), 0, false},
		{"misaligned", "U", "S", w(3).Add(time.Minute), 0, false},
		{"misaligned by a nanosecond", "U", "S", w(3).Add(time.Nanosecond), 0, false},
		{"before 1970", "U", "S", time.Unix(-300, 0), 0, false},
		{"unknown approach", "U", "Q", w(3), 0, false},
		{"intersection not held", "W", "S", w(3), 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := st.UpstreamFlowRatio(tc.intersection, tc.approach, tc.start, 0)
			if ok != tc.ok || math.Abs(got-tc.want) > 1e-12 {
				t.Fatalf("UpstreamFlowRatio = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
			if tc.intersection == "U" {
				if g, o := u.FlowRatio(tc.approach, tc.start, 0); g != got || o != ok {
					t.Fatalf("FlowRatio = %v, %v; States answered %v, %v", g, o, got, ok)
				}
			}
		})
	}
}

func TestUpstreamParsing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		ups []string
		ok  bool
	}{
		{[]string{"U/S", "X/E", "X/N"}, true},
		{[]string{"U/S/x"}, true}, // split at the first '/': approach "S/x"
		{[]string{"U"}, false},
		{[]string{"/S"}, false},
		{[]string{"U/"}, false},
		{[]string{"U/S", ""}, false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.ups), func(t *testing.T) {
			t.Parallel()
			_, x := upTopos(tc.ups)
			_, err := NewIntersection(x, upConfig())
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, ErrInvalidIntersection) {
				t.Fatalf("NewIntersection: %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestStatesIDs(t *testing.T) {
	t.Parallel()
	st := States{"b": nil, "a": nil, "B": nil}
	if got := st.IDs(); !slices.Equal(got, []string{"B", "a", "b"}) {
		t.Fatalf("IDs = %v", got)
	}
	if _, ok := (States(nil)).UpstreamFlowRatio("a", "S", t0, 0); ok {
		t.Fatal("nil States knows a flow ratio")
	}
}

// nanLookup answers every question with a non-finite value.
type nanLookup struct{}

func (nanLookup) UpstreamFlowRatio(string, string, time.Time, int64) (float64, bool) {
	return math.NaN(), true
}

func (nanLookup) UpstreamRecent(string, string, time.Time, int64) (features.Past, features.Past) {
	return features.Past{Value: math.Inf(1), OK: true}, features.Past{Value: math.NaN(), OK: true}
}

func TestUpstreamNonFiniteLookup(t *testing.T) {
	t.Parallel()
	st := newUpStates(t, []string{"U/S"}, false)
	st["X"].SetUpstream(nanLookup{})
	frames := upRun(t, st, upReadings(nil), true)
	checkFinite(t, frames["X"])
	if p := frames["X"][5].Approaches[0].Values[featureIndex("upstream_lag1_present")]; p != 0 {
		t.Fatalf("a NaN answer counted as known (present %v)", p)
	}
}

// TestUpstreamRestoreAtDifferentPositions restores the members of one States from snapshots taken at different
// input positions, as a crash in the middle of a checkpoint leaves them (each member's state is its own
// changelog record), and replays the input from the earlier position the way the cleaner does: each member
// skips what its own state already covers. The reader's frames must equal the uninterrupted run's, although
// the upstream member comes back knowing windows that, at the reader's replayed positions, it had not
// emitted yet.
func TestUpstreamRestoreAtDifferentPositions(t *testing.T) {
	t.Parallel()
	ups := []string{"U/S", "U/T"}
	// All of X's readings first, then U's: in the uninterrupted run X never sees an upstream window.
	var rs []Reading
	for _, first := range []string{"X", "U"} {
		for _, r := range upReadings(nil) {
			if r.IntersectionID == first {
				rs = append(rs, r)
			}
		}
	}
	tu, tx := upTopos(ups)
	topos := map[string]topology.Intersection{"U": tu, "X": tx}
	type emitted struct {
		pos    int
		frames []features.Frame
	}
	run := func(st States, from int, skip map[string]int, snapshotAt map[string]int) (map[string][]emitted, map[string]IntersectionState) {
		out, snaps := map[string][]emitted{}, map[string]IntersectionState{}
		for i := from; i <= len(rs); i++ {
			for id, at := range snapshotAt {
				if at == i {
					snaps[id] = st[id].State()
				}
			}
			if i == len(rs) {
				break
			}
			r := rs[i]
			if i < skip[r.IntersectionID] {
				continue
			}
			s := st[r.IntersectionID]
			s.SetPosition(int64(i))
			if fs := s.Add(r, nil).Frames; len(fs) > 0 {
				out[r.IntersectionID] = append(out[r.IntersectionID], emitted{i, fs})
			}
		}
		return out, snaps
	}
	nx := len(rs) / 2
	for _, cut := range []struct{ x, u int }{{nx / 2, len(rs)}, {nx / 2, nx + 10}, {1, len(rs) - 1}} {
		want, snaps := run(newUpStates(t, ups, true), 0, nil, map[string]int{"X": cut.x, "U": cut.u})
		restored := States{}
		for id, b := range snaps {
			var err error
			if restored[id], err = RestoreIntersection(topos[id], upConfig(), b); err != nil {
				t.Fatalf("restore %s: %v", id, err)
			}
			restored[id].SetUpstream(restored)
		}
		got, _ := run(restored, cut.x, map[string]int{"X": cut.x, "U": cut.u}, nil)
		var wantX []emitted
		for _, e := range want["X"] {
			if e.pos >= cut.x {
				wantX = append(wantX, e)
			}
		}
		if len(wantX) == 0 {
			t.Fatalf("cut %+v: X emits nothing after its snapshot: the test exercises nothing", cut)
		}
		if !reflect.DeepEqual(got["X"], wantX) {
			t.Errorf("cut %+v: X's frames after a restore with U ahead differ from the uninterrupted run", cut)
		}
	}
}
