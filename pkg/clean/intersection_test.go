package clean

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	bad := DefaultConfig()
	bad.AllowedLateness = -time.Second
	bad.HampelWindow = 1
	bad.ProfileAlpha = 0
	bad.Holidays = []Date{{2026, 2, 30}}
	bad.HampelMinMADKMH = math.NaN()
	bad.HampelMinMADFraction = -0.1
	bad.HampelProfileAlpha = 2
	err := bad.Validate()
	var ce *ConfigError
	if !errors.As(err, &ce) || len(ce.Problems) != 7 {
		t.Fatalf("Validate() = %v, want 7 problems", err)
	}
	if _, err := NewIntersection(testTopo(), bad); err == nil {
		t.Fatal("NewIntersection accepted an invalid config")
	}
	topo := testTopo()
	topo.WindowS = 7
	if _, err := NewIntersection(topo, DefaultConfig()); !errors.Is(err, ErrInvalidIntersection) {
		t.Fatalf("NewIntersection with a 7 s window: %v", err)
	}
}

func TestAddRejections(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		modify func(*Reading)
		want   Reason
	}{
		{"wrong intersection", func(r *Reading) { r.IntersectionID = "I-2" }, ReasonInconsistent},
		{"empty intersection", func(r *Reading) { r.IntersectionID = "" }, ReasonMissingField},
		{"empty detector", func(r *Reading) { r.DetectorID = "" }, ReasonMissingField},
		{"unknown detector", func(r *Reading) { r.DetectorID = "X9" }, ReasonUnknownDetector},
		{"wrong approach", func(r *Reading) { r.ApproachID = "E" }, ReasonInconsistent},
		{"zero start", func(r *Reading) { r.Start = time.Time{} }, ReasonMissingField},
		{"start before 2000", func(r *Reading) { r.Start = time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC) }, ReasonOutOfRange},
		{"zero interval", func(r *Reading) { r.IntervalS = 0 }, ReasonOutOfRange},
		{"interval over an hour", func(r *Reading) { r.IntervalS = 7200 }, ReasonOutOfRange},
		{"interval longer than window", func(r *Reading) { r.IntervalS = 600 }, ReasonInconsistent},
		{"straddles window", func(r *Reading) { r.Start = r.Start.Add(270 * time.Second) }, ReasonInconsistent},
		{"negative count", func(r *Reading) { r.Count = -1 }, ReasonOutOfRange},
		{"NaN count", func(r *Reading) { r.Count = math.NaN() }, ReasonOutOfRange},
		{"Inf flow", func(r *Reading) { r.FlowVPH = math.Inf(1) }, ReasonOutOfRange},
		{"count and flow disagree", func(r *Reading) { r.FlowVPH = 900 }, ReasonInconsistent},
		{"flow above physical bound", func(r *Reading) { r.Count = 60 }, ReasonOutOfRange},
		{"occupancy above 1", func(r *Reading) { *r = withOccSpeed(*r, 1.2, 40) }, ReasonOutOfRange},
		{"negative speed", func(r *Reading) { *r = withOccSpeed(*r, 0.1, -3) }, ReasonOutOfRange},
		{"speed above 200", func(r *Reading) { *r = withOccSpeed(*r, 0.1, 250) }, ReasonOutOfRange},
		{"over capacity", func(r *Reading) { r.Count = 46 }, ReasonOverCapacity}, // 2760 veh/h > 1.5 × 1800
		{"flow without occupancy or speed", func(r *Reading) { r.Count = 10; *r = withOccSpeed(*r, 0, 0) }, ReasonImplausible},
		{"full occupancy at speed", func(r *Reading) { *r = withOccSpeed(*r, 0.98, 80) }, ReasonImplausible},
		{"no quantity at all", func(r *Reading) { r.Count, r.NoCount = 0, true }, ReasonMissingField},
		{"no count but a count", func(r *Reading) { r.NoCount, r.HasSpeed, r.SpeedKMH = true, true, 80 }, ReasonInconsistent},
		{"speed only above 200", func(r *Reading) { r.Count, r.NoCount, r.HasSpeed, r.SpeedKMH = 0, true, true, 412 }, ReasonOutOfRange},
		{"speed-only full occupancy at speed", func(r *Reading) { r.Count, r.NoCount = 0, true; *r = withOccSpeed(*r, 0.98, 80) }, ReasonImplausible},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestIntersection(t, DefaultConfig())
			r := rd("N1", 0, 60, 10)
			tc.modify(&r)
			res := s.Add(r, nil)
			if len(res.Rejected) != 1 || res.Rejected[0].Reason != tc.want || res.Rejected[0].Detail == "" {
				t.Fatalf("Add(%+v) rejected %+v, want one %s", r, res.Rejected, tc.want)
			}
			// A rejected reading leaves no trace: the corrected reading is accepted.
			if res := s.Add(rd("N1", 0, 60, 10), nil); len(res.Rejected) != 0 || res.Dropped != 0 {
				t.Fatalf("valid reading after a rejection: %+v", res)
			}
		})
	}
	t.Run("valid readings pass", func(t *testing.T) {
		t.Parallel()
		s := newTestIntersection(t, DefaultConfig())
		for _, r := range []Reading{
			rd("N1", 0, 60, 10),
			withOccSpeed(rd("N2", 0, 300, 100), 0.2, 45),
			{IntersectionID: "I-1", DetectorID: "E1", Start: t0, IntervalS: 60, FlowVPH: 600}, // no id, no approach, flow only
		} {
			if res := s.Add(r, nil); len(res.Rejected) != 0 {
				t.Fatalf("Add(%+v) rejected: %+v", r, res.Rejected)
			}
		}
	})
}

func TestDedup(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		second      func(Reading) Reading
		wantDropped int
		wantReason  Reason
	}{
		{"identical replay", func(r Reading) Reading { return r }, 1, ""},
		{"same interval, new id, same values", func(r Reading) Reading { r.ID = "other"; return r }, 1, ""},
		{"same interval, flow instead of count", func(r Reading) Reading { r.ID, r.Count, r.FlowVPH = "", 0, 600; return r }, 1, ""},
		{"same id, different values", func(r Reading) Reading { r.Count = 11; return r }, 0, ReasonDuplicateConflict},
		{"same interval, different values", func(r Reading) Reading { r.ID, r.Count = "x", 11; return r }, 0, ReasonDuplicateConflict},
		{"overlapping interval", func(r Reading) Reading {
			r.ID, r.Start, r.IntervalS, r.Count = "x", r.Start.Add(-30*time.Second), 60, 5
			return r
		}, 0, ReasonDuplicateConflict},
		{"adjacent interval is fine", func(r Reading) Reading { r.ID, r.Start = "x", r.Start.Add(time.Minute); return r }, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestIntersection(t, DefaultConfig())
			first := rd("N1", time.Minute, 60, 10)
			if res := s.Add(first, nil); len(res.Rejected) != 0 {
				t.Fatalf("first: %+v", res)
			}
			res := s.Add(tc.second(first), nil)
			if res.Dropped != tc.wantDropped {
				t.Errorf("dropped %d, want %d", res.Dropped, tc.wantDropped)
			}
			if tc.wantReason == "" && len(res.Rejected) != 0 || tc.wantReason != "" && (len(res.Rejected) != 1 || res.Rejected[0].Reason != tc.wantReason) {
				t.Errorf("rejected %+v, want %q", res.Rejected, tc.wantReason)
			}
		})
	}
	// A gateway that resends a whole batch after a lost acknowledgement sends readings whose windows may have
	// closed meanwhile: the replay memory recognises them for Config.ReplayMemory.
	closedCases := []struct {
		name        string
		cfg         func(*Config)
		after       time.Duration // event time reached before the resend
		restore     bool          // resend to an intersection restored from the state
		second      func(Reading) Reading
		wantDropped int
		wantReason  Reason
	}{
		{"identical resend is dropped", nil, 20 * time.Minute, false, func(r Reading) Reading { return r }, 1, ""},
		{"identical resend after a restore is dropped", nil, 20 * time.Minute, true, func(r Reading) Reading { return r }, 1, ""},
		{"resend with other values conflicts", nil, 20 * time.Minute, false, func(r Reading) Reading { r.Count = 11; return r }, 0, ReasonDuplicateConflict},
		{"unseen reading of a closed window is late", nil, 20 * time.Minute, false, func(r Reading) Reading { r.ID, r.DetectorID, r.ApproachID = "N2@0", "N2", "N"; return r }, 0, ReasonLate},
		{"resend older than the memory is late", nil, 2 * time.Hour, false, func(r Reading) Reading { return r }, 0, ReasonLate},
		{"memory off: resend is late", func(c *Config) { c.ReplayMemory = 0 }, 20 * time.Minute, false, func(r Reading) Reading { return r }, 0, ReasonLate},
	}
	for _, tc := range closedCases {
		t.Run("closed window: "+tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			s := newTestIntersection(t, cfg)
			first := rd("N1", 0, 60, 10)
			s.Add(first, nil)
			for m := time.Minute; m <= tc.after; m += time.Minute {
				s.Add(rd("N1", m, 60, 10+float64(m/time.Minute%3)), nil)
			}
			if s.Watermark().Before(t0.Add(5 * time.Minute)) {
				t.Fatal("the first window did not close")
			}
			if tc.restore {
				st := s.State()
				r, err := RestoreIntersection(testTopo(), cfg, st)
				if err != nil {
					t.Fatalf("restore: %v", err)
				}
				s = r
			}
			lateBefore := s.DetectorHealth()[0].Late
			res := s.Add(tc.second(first), nil)
			if res.Dropped != tc.wantDropped {
				t.Errorf("dropped %d, want %d", res.Dropped, tc.wantDropped)
			}
			if tc.wantReason == "" && len(res.Rejected) != 0 || tc.wantReason != "" && (len(res.Rejected) != 1 || res.Rejected[0].Reason != tc.wantReason) {
				t.Errorf("rejected %+v, want %q", res.Rejected, tc.wantReason)
			}
			if tc.wantDropped > 0 && s.DetectorHealth()[0].Late != lateBefore {
				t.Errorf("a dropped resend changed the late count: %v, was %v", s.DetectorHealth()[0].Late, lateBefore)
			}
		})
	}
	t.Run("replay memory is bounded", func(t *testing.T) {
		t.Parallel()
		for _, interval := range []int{1, 60} {
			s := newTestIntersection(t, DefaultConfig())
			step := time.Duration(interval) * time.Second
			for off := time.Duration(0); off < 3*time.Hour; off += step {
				s.Add(rd("N1", off, interval, 0), nil)
			}
			n := len(s.st.Dets[0].Closed)
			// One hour of closed windows at one reading a minute, at most maxClosedPerDetector.
			if want := min(maxClosedPerDetector, 3600/interval); n > want || n < want-5 {
				t.Errorf("interval %d s: %d readings remembered, want about %d", interval, n, want)
			}
		}
	})
	t.Run("memory is the open windows", func(t *testing.T) {
		t.Parallel()
		s := newTestIntersection(t, DefaultConfig())
		for m := 0; m < 24*60; m++ {
			s.Add(rd("N1", time.Duration(m)*time.Minute, 60, float64(10+m%5)), nil)
		}
		if n := len(s.st.Open); n > 3 {
			t.Fatalf("%d open windows", n)
		}
	})
}

func TestWindows(t *testing.T) {
	t.Parallel()
	t.Run("aggregation of one-minute readings", func(t *testing.T) {
		t.Parallel()
		s := newTestIntersection(t, DefaultConfig())
		var rs []Reading
		for m := 0; m < 5; m++ {
			rs = append(rs, withOccSpeed(rd("N1", time.Duration(m)*time.Minute, 60, float64(10+m)), 0.1*float64(m+1), 40+float64(m)))
			rs = append(rs, rd("N2", time.Duration(m)*time.Minute, 60, 5))
		}
		rs = append(rs, withOccSpeed(rd("E1", 0, 300, 50), 0.3, 30))
		frames, rej, _ := run(s, rs, nil)
		if len(frames) != 0 || len(rej) != 0 {
			t.Fatalf("frames %d rejections %v before the watermark passed", len(frames), rej)
		}
		res := s.Add(rd("E1", 10*time.Minute, 60, 5), nil) // watermark = 10 min − 5 min lateness = window end
		if len(res.Frames) != 1 {
			t.Fatalf("got %d frames, want 1", len(res.Frames))
		}
		f := res.Frames[0]
		if !f.WindowStart.Equal(t0) || !f.WindowEnd.Equal(t0.Add(5*time.Minute)) || f.IntersectionID != "I-1" {
			t.Fatalf("frame window %s..%s", f.WindowStart, f.WindowEnd)
		}
		n, e := f.Approaches[0], f.Approaches[1]
		if n.ApproachID != "N" || e.ApproachID != "E" {
			t.Fatalf("approach order %s %s", n.ApproachID, e.ApproachID)
		}
		// N: (10+11+12+13+14 + 25) vehicles in 5 min = 85·12 veh/h.
		if n.Observed.FlowVPH != 85*12 || n.Readings != 10 || n.Observed.Imputed || n.ImputedFraction != 0 {
			t.Errorf("N: %+v", n)
		}
		// Occupancy time-weighted over N1's readings (N2 has none): mean of 0.1..0.5.
		if math.Abs(n.Observed.Occupancy-0.3) > 1e-12 || !n.Observed.HasOccupancy {
			t.Errorf("N occupancy %v", n.Observed.Occupancy)
		}
		// Speed count-weighted: Σ(40+m)(10+m)/60.
		if want := (40*10 + 41*11 + 42*12 + 43*13 + 44*14) / 60.0; math.Abs(n.Observed.SpeedKMH-want) > 1e-12 {
			t.Errorf("N speed %v, want %v", n.Observed.SpeedKMH, want)
		}
		if e.Observed.FlowVPH != 600 || e.Observed.Occupancy != 0.3 || e.Observed.SpeedKMH != 30 {
			t.Errorf("E: %+v", e.Observed)
		}
		if got := n.Values[featureIndex("flow_ratio")]; got != 85*12/3600.0 {
			t.Errorf("flow_ratio %v", got)
		}
		if f.Weather.Missing != true || n.Values[featureIndex("weather_missing")] != 1 {
			t.Errorf("weather not missing without a lookup")
		}
		if got := features.EventID(f.IntersectionID, f.WindowStart); got != "I-1/2026-11-02T00:00:00Z" {
			t.Errorf("EventID %q", got)
		}
	})
	t.Run("late reading", func(t *testing.T) {
		t.Parallel()
		s := newTestIntersection(t, DefaultConfig())
		s.Add(rd("N1", 0, 60, 10), nil)
		s.Add(rd("N1", 10*time.Minute, 60, 10), nil)
		res := s.Add(rd("N2", 4*time.Minute, 60, 10), nil)
		if len(res.Rejected) != 1 || res.Rejected[0].Reason != ReasonLate {
			t.Fatalf("got %+v, want late", res)
		}
		// Watermark 5 min: window 1 (5..10 min) is still open.
		if res := s.Add(rd("N2", 6*time.Minute, 60, 10), nil); len(res.Rejected) != 0 {
			t.Fatalf("window 1 within lateness: %+v", res)
		}
		if res := s.Add(rd("N1", 16*time.Minute, 60, 10), nil); len(res.Frames) != 1 {
			t.Fatalf("watermark 11 min closes window 1: %+v", res)
		}
		if res := s.Add(rd("N2", 9*time.Minute, 60, 10), nil); len(res.Rejected) != 1 || res.Rejected[0].Reason != ReasonLate {
			t.Fatalf("window 1 after it closed: %+v", res)
		}
		if res := s.Add(rd("N2", 11*time.Minute, 60, 10), nil); len(res.Rejected) != 0 {
			t.Fatalf("open window: %+v", res)
		}
	})
	t.Run("every window once, empty ones included, approaches never absent", func(t *testing.T) {
		t.Parallel()
		cfg := DefaultConfig()
		cfg.ClockJumpTolerance = 365 * 24 * time.Hour // one detector's hour-long jump is no clock jump here
		s := newTestIntersection(t, cfg)
		frames, _, _ := run(s, []Reading{rd("N1", 0, 60, 10), rd("N1", 60*time.Minute, 60, 10)}, nil)
		if len(frames) != 11 {
			t.Fatalf("%d frames, want 11", len(frames))
		}
		for i, f := range frames {
			if want := t0.Add(time.Duration(i) * 5 * time.Minute); !f.WindowStart.Equal(want) || len(f.Approaches) != 2 {
				t.Fatalf("frame %d: %s with %d approaches", i, f.WindowStart, len(f.Approaches))
			}
		}
		if !frames[0].Approaches[1].Gap || frames[0].Approaches[0].Gap {
			t.Errorf("frame 0: E should be a gap, N not")
		}
		res := s.Flush(nil)
		if len(res.Frames) != 2 || !res.Frames[1].WindowStart.Equal(t0.Add(time.Hour)) {
			t.Fatalf("flush: %d frames", len(res.Frames))
		}
		if res := s.Flush(nil); len(res.Frames) != 0 {
			t.Fatalf("second flush emitted %d frames", len(res.Frames))
		}
	})
	t.Run("close idle", func(t *testing.T) {
		t.Parallel()
		s := newTestIntersection(t, DefaultConfig())
		s.Add(rd("N1", 0, 60, 10), nil)
		if res := s.CloseIdle(t0.Add(9*time.Minute), nil); len(res.Frames) != 0 {
			t.Fatalf("closed too early: %d", len(res.Frames))
		}
		res := s.CloseIdle(t0.Add(10*time.Minute), nil)
		if len(res.Frames) != 1 {
			t.Fatalf("CloseIdle at window end + lateness: %d frames", len(res.Frames))
		}
		if res := s.Add(rd("N2", 0, 60, 10), nil); len(res.Rejected) != 1 || res.Rejected[0].Reason != ReasonLate {
			t.Fatalf("after CloseIdle: %+v", res)
		}
		if res := s.CloseIdle(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), nil); len(res.Frames) != 0 {
			t.Fatal("CloseIdle in the past emitted frames")
		}
	})
	t.Run("long silence is skipped, not emitted", func(t *testing.T) {
		t.Parallel()
		cfg := DefaultConfig()
		cfg.MaxSilence = time.Hour
		cfg.ClockJumpTolerance = 365 * 24 * time.Hour // a 30-day silence, not a clock jump
		s := newTestIntersection(t, cfg)
		s.Add(rd("N1", 0, 60, 10), nil)
		res := s.Add(rd("N1", 30*24*time.Hour, 60, 10), nil)
		if len(res.Frames) != 13 || res.SkippedWindows != 30*24*12-13-1 {
			t.Fatalf("frames %d skipped %d", len(res.Frames), res.SkippedWindows)
		}
		res = s.Add(rd("N1", 30*24*time.Hour+10*time.Minute, 60, 10), nil)
		if len(res.Frames) != 1 || !res.Frames[0].WindowStart.Equal(t0.Add(30*24*time.Hour)) {
			t.Fatalf("after the silence: %+v", res.Frames)
		}
	})
}

func TestShuffledOrderGivesSameFrames(t *testing.T) {
	t.Parallel()
	rs := fixture(120, 1)
	want, wantRej, _ := run(newTestIntersection(t, DefaultConfig()), rs, testWeather())
	if len(want) < 20 || len(wantRej) != 0 {
		t.Fatalf("fixture: %d frames, rejections %v", len(want), wantRej)
	}
	// Shuffle within blocks shorter than the allowed lateness (5 min): every permutation of a block is
	// "out of order within lateness".
	for seed := uint64(0); seed < 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		sh := append([]Reading(nil), rs...)
		block := 3 * 4 // 4 minutes of readings (3 detectors per minute, a few missing)
		for i := 0; i < len(sh); i += block {
			b := sh[i:min(i+block, len(sh))]
			rng.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
		}
		got, rej, _ := run(newTestIntersection(t, DefaultConfig()), sh, testWeather())
		if len(rej) != 0 {
			t.Fatalf("seed %d: rejections %v", seed, rej)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: shuffled frames differ (%d vs %d frames)", seed, len(got), len(want))
		}
	}
}

func TestMarshalRestoreAtEveryStep(t *testing.T) {
	t.Parallel()
	rs := fixture(50, 2)
	// Add replays, conflicts and late readings so that every kind of state is exercised.
	rs = append(rs, rs[10], rs[len(rs)-1])
	conflict := rs[len(rs)-3]
	conflict.Count++
	rs = append(rs, conflict, rd("N1", 0, 60, 3))
	// A reading of a clock 3 days ahead, held back until it is rejected as a clock jump.
	rs = slices.Insert(rs, 40, shifted(rs[40], threeDays))
	cfg := DefaultConfig()
	cfg.ReplaceOutliers = true
	cfg.StuckRun = 4
	cfg.Holidays = []Date{{2026, 11, 2}}
	wl := testWeather()

	type out struct {
		frames  []features.Frame
		rej     []Rejection
		dropped int
		health  []DetectorHealth
	}
	full := func(s *Intersection, rs []Reading) out {
		f, r, d := run(s, rs, wl)
		fl := s.Flush(wl)
		return out{append(f, fl.Frames...), append(r, fl.Rejected...), d, s.DetectorHealth()}
	}
	want := full(newTestIntersection(t, cfg), rs)
	// rs[10]'s window is closed by then (its replay is dropped by the replay memory), the last reading's is
	// open (dropped).
	if len(want.frames) < 10 || want.dropped != 2 {
		t.Fatalf("fixture: %d frames, %d dropped", len(want.frames), want.dropped)
	}
	for k := 0; k <= len(rs); k++ {
		s := newTestIntersection(t, cfg)
		f1, r1, d1 := run(s, rs[:k], wl)
		st := s.State()
		s2, err := RestoreIntersection(testTopo(), cfg, st)
		if err != nil {
			t.Fatalf("k=%d: restore: %v", k, err)
		}
		if !reflect.DeepEqual(s2.State(), st) {
			t.Fatalf("k=%d: the restored state differs", k)
		}
		rest := full(s2, rs[k:])
		got := out{append(f1, rest.frames...), append(r1, rest.rej...), d1 + rest.dropped, rest.health}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("k=%d: restored run differs from the uninterrupted one", k)
		}
	}
}

func TestRestoreRejects(t *testing.T) {
	t.Parallel()
	s := newTestIntersection(t, DefaultConfig())
	run(s, fixture(12, 3), nil)
	other := testTopo()
	other.Approaches[1].Detectors = []string{"E9"}
	// tamper changes a fresh copy of the state (State shares no memory with s).
	tamper := func(f func(*IntersectionState)) IntersectionState {
		st := s.State()
		f(&st)
		return st
	}
	cases := []struct {
		name string
		topo topology.Intersection
		st   IntersectionState
	}{
		{"empty", testTopo(), IntersectionState{}},
		{"other topology", other, s.State()},
		{"tampered watermark", testTopo(), tamper(func(m *IntersectionState) { m.WatermarkNs = -1 })},
		{"future format", testTopo(), tamper(func(m *IntersectionState) { m.Format++ })},
		{"short lag history", testTopo(), tamper(func(m *IntersectionState) { m.Approaches[0].Lag = m.Approaches[0].Lag[1:] })},
		{"short profile", testTopo(), tamper(func(m *IntersectionState) {
			m.Detectors[0].ProfileVPH = m.Detectors[0].ProfileVPH[1:]
		})},
		{"short profile bitmap", testTopo(), tamper(func(m *IntersectionState) { m.Detectors[0].ProfileSeen = m.Detectors[0].ProfileSeen[8:] })},
		{"negative profile", testTopo(), tamper(func(m *IntersectionState) { m.Detectors[0].ProfileVPH[3] = -1 })},
		{"open reading in a closed window", testTopo(), tamper(func(m *IntersectionState) { m.Open[0].StartNs = t0.UnixNano() })},
		{"unknown detector", testTopo(), tamper(func(m *IntersectionState) { m.Open[0].Detector = 9 })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := RestoreIntersection(tc.topo, DefaultConfig(), tc.st); !errors.Is(err, ErrBadState) {
				t.Fatalf("got %v, want ErrBadState", err)
			}
		})
	}
	t.Run("empty JSON object", func(t *testing.T) {
		t.Parallel()
		if _, err := RestoreLegacyIntersection(testTopo(), DefaultConfig(), []byte("{}")); !errors.Is(err, ErrBadState) {
			t.Fatalf("got %v, want ErrBadState", err)
		}
	})
}

func TestGapFilling(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig() // carry forward ≤ 15 min (3 windows), profile ≤ 3 h
	cfg.StuckRun = 0       // the synthetic counts are constant
	// Detector E1 reports 300 s readings of 50 vehicles (600 veh/h) for a week, on the hour-of-week profile,
	// then stops; N1 and N2 keep reporting.
	s := newTestIntersection(t, cfg)
	week := 7 * 24 * 12
	var frames []features.Frame
	add := func(r Reading) {
		res := s.Add(r, nil)
		if len(res.Rejected) != 0 {
			t.Fatalf("rejected %+v", res.Rejected)
		}
		frames = append(frames, res.Frames...)
	}
	for w := 0; w < week+60; w++ {
		off := time.Duration(w) * 5 * time.Minute
		add(rd("N1", off, 300, float64(20+w%3)))
		if w%2 == 0 || w >= week {
			add(rd("N2", off, 300, 20))
		}
		if w < week {
			add(rd("E1", off, 300, 50))
		}
	}
	e := func(w int) features.Vector { return frames[w].Approaches[1] }
	n := func(w int) features.Vector { return frames[w].Approaches[0] }
	t.Run("carry forward", func(t *testing.T) {
		for w := week; w < week+3; w++ {
			if v := e(w); v.Gap || v.Observed.FlowVPH != 600 || v.ImputedFraction != 1 || !v.Observed.Imputed {
				t.Fatalf("window %d: %+v", w, v)
			}
		}
	})
	t.Run("profile", func(t *testing.T) {
		for w := week + 3; w < week+36; w++ {
			if v := e(w); v.Gap || v.Observed.FlowVPH != 600 || !v.Observed.Imputed {
				t.Fatalf("window %d: %+v", w, v)
			}
		}
	})
	t.Run("gap beyond the profile limit", func(t *testing.T) {
		for w := week + 36; w < week+57; w++ {
			v := e(w)
			if !v.Gap || v.Values[featureIndex("gap")] != 1 || v.Values[featureIndex("flow_ratio")] != 0 {
				t.Fatalf("window %d: %+v", w, v)
			}
		}
	})
	t.Run("lane-share and carry-forward within an approach", func(t *testing.T) {
		// In the first week N2 reports every other window: the missing ones carry forward N2's 20.
		v := n(101)
		if v.Gap || v.ImputedFraction != 0.5 || !v.Observed.Imputed || v.Observed.FlowVPH != float64(20+101%3)*12+240 {
			t.Fatalf("window 101: %+v", v)
		}
		if v := n(100); v.Observed.Imputed || v.ImputedFraction != 0 {
			t.Fatalf("window 100: %+v", v)
		}
	})
	t.Run("lags", func(t *testing.T) {
		v := n(week + 10)
		for _, c := range []struct {
			name string
			w    int
		}{{"flow_ratio_lag1", week + 9}, {"flow_ratio_lag3", week + 7}, {"flow_ratio_yesterday", week + 10 - 288}, {"flow_ratio_last_week", 10}} {
			// The lag history holds flow ratios in 1/10000 steps.
			if got, want := v.Values[featureIndex(c.name)], quantizeLag(n(c.w).Values[featureIndex("flow_ratio")]); got != want {
				t.Errorf("%s = %v, want %v", c.name, got, want)
			}
		}
		if v := n(0); v.Values[featureIndex("lag1_present")] != 0 || v.Values[featureIndex("last_week_present")] != 0 {
			t.Errorf("first window has lags: %v", v.Values)
		}
		if v := e(week + 40); v.Values[featureIndex("lag1_present")] != 0 {
			t.Errorf("lag of a gap window is present")
		}
	})
	t.Run("partial coverage", func(t *testing.T) {
		s := newTestIntersection(t, cfg)
		for m := 0; m < 4; m++ { // 4 of 5 minutes
			s.Add(rd("E1", time.Duration(m)*time.Minute, 60, 10), nil)
		}
		res := s.Flush(nil)
		if v := res.Frames[0].Approaches[1]; v.Observed.FlowVPH != 600 || math.Abs(v.ImputedFraction-0.2) > 1e-12 || v.Observed.Imputed {
			t.Fatalf("%+v", v)
		}
	})
	checkFinite(t, frames)
}

func TestOutliersAndStuck(t *testing.T) {
	t.Parallel()
	t.Run("hampel flags", func(t *testing.T) {
		t.Parallel()
		cfg := DefaultConfig()
		cfg.HampelSeasonal = false // the raw rolling median; sequence_test.go covers the seasonal mode
		for _, replace := range []bool{false, true} {
			cfg.ReplaceOutliers = replace
			s := newTestIntersection(t, cfg)
			var rs []Reading
			for m := 0; m < 10; m++ {
				rs = append(rs, rd("E1", time.Duration(m)*time.Minute, 60, float64(10+m%2)))
			}
			rs = append(rs, rd("E1", 10*time.Minute, 60, 40)) // 2400 veh/h against a median of 630
			for m := 11; m < 15; m++ {
				rs = append(rs, rd("E1", time.Duration(m)*time.Minute, 60, 10))
			}
			frames, _, _ := run(s, rs, nil)
			frames = append(frames, s.Flush(nil).Frames...)
			v := frames[2].Approaches[1]
			if v.FlaggedOutliers != 1 || frames[1].Approaches[1].FlaggedOutliers != 0 {
				t.Fatalf("replace=%v: flagged %d", replace, v.FlaggedOutliers)
			}
			want := (40.0 + 40) * 12 // 40 + 4×10 vehicles in 5 minutes
			if replace {
				want = (10.5 + 40) * 12 // the outlier is replaced by the rolling median 630 veh/h = 10.5 per minute
			}
			if math.Abs(v.Observed.FlowVPH-want) > 1e-9 {
				t.Fatalf("replace=%v: flow %v, want %v", replace, v.Observed.FlowVPH, want)
			}
		}
	})
	t.Run("night zeros are not outliers", func(t *testing.T) {
		t.Parallel()
		s := newTestIntersection(t, DefaultConfig())
		var rs []Reading
		for m := 0; m < 20; m++ {
			c := 0.0
			if m == 15 {
				c = 1
			}
			rs = append(rs, rd("E1", time.Duration(m)*time.Minute, 60, c))
		}
		frames, _, _ := run(s, rs, nil)
		for _, f := range append(frames, s.Flush(nil).Frames...) {
			if f.Approaches[1].FlaggedOutliers != 0 {
				t.Fatalf("flagged a single vehicle at night")
			}
		}
	})
	t.Run("stuck detector", func(t *testing.T) {
		t.Parallel()
		cfg := DefaultConfig()
		cfg.StuckRun = 4
		s := newTestIntersection(t, cfg)
		var rej []Rejection
		for m := 0; m < 10; m++ {
			c := 7.0
			if m == 8 {
				c = 8
			}
			rej = append(rej, s.Add(rd("E1", time.Duration(m)*time.Minute, 60, c), nil).Rejected...)
		}
		rej = append(rej, s.Flush(nil).Rejected...)
		if len(rej) != 5 { // minutes 3..7 (the 4th to 8th 7 in a row)
			t.Fatalf("got %d stuck rejections: %+v", len(rej), rej)
		}
		for i, r := range rej {
			if r.Reason != ReasonStuckDetector || !r.Reading.Start.Equal(t0.Add(time.Duration(3+i)*time.Minute)) {
				t.Fatalf("rejection %d: %+v", i, r)
			}
		}
		h := s.DetectorHealth()[2]
		if h.DetectorID != "E1" || h.Rejected == 0 || !(h.Score < 1) {
			t.Fatalf("health %+v", h)
		}
	})
}

func TestWeatherJoin(t *testing.T) {
	t.Parallel()
	t.Run("table bounds", func(t *testing.T) {
		t.Parallel()
		ok := Weather{StationID: "S", ObservedAt: t0, TemperatureC: 10, HasTemperature: true}
		cases := []struct {
			name   string
			modify func(*Weather)
			want   Reason
		}{
			{"valid", func(*Weather) {}, ""},
			{"absent values are fine", func(w *Weather) { w.HasTemperature = false; w.TemperatureC = 999 }, ""},
			{"no station", func(w *Weather) { w.StationID = "" }, ReasonWeatherMissingField},
			{"no time", func(w *Weather) { w.ObservedAt = time.Time{} }, ReasonWeatherOutOfRange},
			{"too hot", func(w *Weather) { w.TemperatureC = 61 }, ReasonWeatherOutOfRange},
			{"negative rain", func(w *Weather) { w.PrecipitationMMH, w.HasPrecipitation = -1, true }, ReasonWeatherOutOfRange},
			{"NaN snow", func(w *Weather) { w.SnowMMH, w.HasSnow = math.NaN(), true }, ReasonWeatherOutOfRange},
			{"visibility over 100 km", func(w *Weather) { w.VisibilityM, w.HasVisibility = 2e5, true }, ReasonWeatherOutOfRange},
			{"cloud cover over 1", func(w *Weather) { w.CloudCoverRatio, w.HasCloudCover = 1.5, true }, ReasonWeatherOutOfRange},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				w := ok
				tc.modify(&w)
				rj := NewWeatherTable(DefaultConfig()).Add(w)
				if tc.want == "" && rj != nil || tc.want != "" && (rj == nil || rj.Reason != tc.want || !rj.Reason.IsWeather()) {
					t.Fatalf("Add = %+v, want %q", rj, tc.want)
				}
			})
		}
	})
	t.Run("lookup and duplicates", func(t *testing.T) {
		t.Parallel()
		wt := NewWeatherTable(DefaultConfig())
		w := Weather{ID: "a", StationID: "S", ObservedAt: t0, TemperatureC: 10, HasTemperature: true}
		if rj := wt.Add(w); rj != nil {
			t.Fatal(rj)
		}
		w.ID = "b"
		if rj := wt.Add(w); rj != nil {
			t.Fatalf("identical replay: %+v", rj)
		}
		w.TemperatureC = 11
		if rj := wt.Add(w); rj == nil || rj.Reason != ReasonWeatherDuplicateConflict {
			t.Fatalf("conflict: %+v", rj)
		}
		if _, ok := wt.Lookup("S", t0.Add(-time.Second)); ok {
			t.Error("found an observation from the future")
		}
		if _, ok := wt.Lookup("S", t0); ok {
			t.Error("an observation stamped at the window end joined it")
		}
		if got, ok := wt.Lookup("S", t0.Add(time.Nanosecond)); !ok || got.TemperatureC != 10 {
			t.Error("observation just before the window end not found")
		}
		if got, ok := wt.Lookup("S", t0.Add(2*time.Hour)); !ok || got.TemperatureC != 10 {
			t.Error("observation at max age not found")
		}
		if _, ok := wt.Lookup("S", t0.Add(2*time.Hour+time.Second)); ok {
			t.Error("observation older than max age found")
		}
		wt.Advance(t0.Add(72 * time.Hour))
		wt.Add(Weather{StationID: "S", ObservedAt: t0.Add(72 * time.Hour)})
		if _, ok := wt.Lookup("S", t0.Add(time.Hour)); ok {
			t.Error("observation older than the retention kept")
		}
	})
	t.Run("a follower ahead of the readings loses nothing they will join", func(t *testing.T) {
		t.Parallel()
		cfg := DefaultConfig()
		wt := NewWeatherTable(cfg)
		const days = 30
		for h := range days * 24 {
			if rj := wt.Add(Weather{StationID: "S", ObservedAt: t0.Add(time.Duration(h) * time.Hour), TemperatureC: float64(h % 40), HasTemperature: true}); rj != nil {
				t.Fatal(rj)
			}
		}
		// The readings replay the month after the weather was read: every hour's window (looked up at its end)
		// joins the observation of its start, and what lies more than the retention behind them is dropped as
		// they advance.
		for h := range days * 24 {
			start, at := t0.Add(time.Duration(h)*time.Hour), t0.Add(time.Duration(h+1)*time.Hour)
			wt.Advance(at)
			got, ok := wt.Lookup("S", at)
			if !ok || !got.ObservedAt.Equal(start) {
				t.Fatalf("hour %d: joined %v (%v), want the observation at %v", h, got.ObservedAt, ok, start)
			}
			if n, max := len(wt.stations["S"]), int((cfg.WeatherRetention+time.Duration(days*24)*time.Hour-at.Sub(t0))/time.Hour)+1; n > max {
				t.Fatalf("hour %d: %d observations kept, want at most %d", h, n, max)
			}
		}
		if _, ok := wt.Lookup("S", t0); ok {
			t.Error("an observation older than the retention behind the horizon was kept")
		}
	})
	t.Run("frame weather", func(t *testing.T) {
		t.Parallel()
		s := newTestIntersection(t, DefaultConfig())
		wl := stubWeather{Weather{StationID: "STN-1", ObservedAt: t0.Add(-time.Hour), PrecipitationMMH: 2, HasPrecipitation: true,
			VisibilityM: 20000, HasVisibility: true}}
		s.Add(rd("N1", 0, 60, 10), wl)
		f := s.Flush(wl).Frames[0]
		v := f.Approaches[0].Values
		if f.Weather.Missing || v[featureIndex("precip_log1p")] != math.Log1p(2) || v[featureIndex("visibility_ratio")] != 1 ||
			v[featureIndex("temperature_present")] != 0 || v[featureIndex("weather_missing")] != 0 {
			t.Fatalf("weather %+v values %v", f.Weather, v)
		}
		s = newTestIntersection(t, DefaultConfig())
		old := stubWeather{Weather{StationID: "STN-1", ObservedAt: t0.Add(-3 * time.Hour), TemperatureC: 5, HasTemperature: true}}
		s.Add(rd("N1", 0, 60, 10), old)
		if f := s.Flush(old).Frames[0]; !f.Weather.Missing {
			t.Fatal("stale weather joined")
		}
	})
}

// TestWeatherJoinRule pins which observation a window joins: the latest stamped strictly before its end, at
// most WeatherMaxAge before it. The lookup is the real WeatherTable, and a stub that also offers observations the
// rule excludes, since the intersection enforces the rule whatever the lookup answers.
func TestWeatherJoinRule(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	end := t0.Add(5 * time.Minute) // the window [t0, t0+5m) of the test topology's 300-s windows
	cases := []struct {
		name string
		at   time.Time // the one observation's time
		join bool
	}{
		{"at the window start", t0, true},
		{"inside the window", t0.Add(2 * time.Minute), true},
		{"a nanosecond before the end", end.Add(-time.Nanosecond), true},
		{"exactly at the end: the next window's", end, false},
		{"after the end", end.Add(time.Second), false},
		{"before the window, at the maximum age", end.Add(-cfg.WeatherMaxAge), true},
		{"older than the maximum age", end.Add(-cfg.WeatherMaxAge - time.Nanosecond), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := Weather{StationID: "STN-1", ObservedAt: tc.at, TemperatureC: 7, HasTemperature: true}
			wt := NewWeatherTable(cfg)
			if rj := wt.Add(w); rj != nil {
				t.Fatal(rj)
			}
			for _, wl := range []WeatherLookup{wt, stubWeather{w}, anyWeather{w}} {
				s := newTestIntersection(t, cfg)
				s.Add(rd("N1", 0, 300, 10), wl)
				f := s.Flush(wl).Frames[0]
				if got := !f.Weather.Missing; got != tc.join || (got && !f.Weather.ObservedAt.Equal(tc.at)) {
					t.Fatalf("%T: window ending %v joined %v (missing %v), want joined %v", wl, end, f.Weather.ObservedAt, f.Weather.Missing, tc.join)
				}
			}
		})
	}
}

// anyWeather is a WeatherLookup that answers its observation whatever the time asked (a careless lookup).
type anyWeather struct{ w Weather }

func (a anyWeather) Lookup(station string, _ time.Time) (Weather, bool) {
	return a.w, station == a.w.StationID
}

// TestWeatherJoinTies feeds the same readings and weather twice in event-time order, once with every weather
// observation before the readings stamped at the same instant and once after them, with no allowed lateness,
// so that a window closes on a reading starting exactly at its end, where an observation is stamped too. The
// input has a gap longer than the clock-jump tolerance (the readings after it are held back and then
// confirmed) and an hour with weather but no readings. The frames must not depend on the tie order, and each
// joins the latest observation before its end.
func TestWeatherJoinTies(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.AllowedLateness = 0
	type event struct {
		at time.Time
		r  *Reading
		w  *Weather
	}
	var events []event
	for m := 0; m < 240; m += 5 {
		off := time.Duration(m) * time.Minute
		if m >= 60 && m < 150 { // a 90-minute outage of every detector (weather goes on)
			if m%15 == 0 {
				events = append(events, event{at: t0.Add(off), w: &Weather{StationID: "STN-1", ObservedAt: t0.Add(off), TemperatureC: float64(m % 40), HasTemperature: true}})
			}
			continue
		}
		for _, det := range []string{"N1", "N2", "E1"} {
			r := rd(det, off, 300, float64(10+m%7))
			events = append(events, event{at: r.Start, r: &r})
		}
		// Observations every 10 minutes, each stamped at the end of a window (and the start of the next).
		if m%10 == 0 {
			events = append(events, event{at: t0.Add(off), w: &Weather{StationID: "STN-1", ObservedAt: t0.Add(off), TemperatureC: float64(m % 40), HasTemperature: true}})
		}
	}
	feed := func(weatherFirst bool) []features.Frame {
		// rank orders the records of one instant: weather then readings, or the other way round.
		rank := func(e event) int {
			if (e.w != nil) == weatherFirst {
				return 0
			}
			return 1
		}
		evs := slices.Clone(events)
		slices.SortStableFunc(evs, func(a, b event) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return rank(a) - rank(b)
		})
		s := newTestIntersection(t, cfg)
		wt := NewWeatherTable(cfg)
		var frames []features.Frame
		for _, e := range evs {
			if e.w != nil {
				if rj := wt.Add(*e.w); rj != nil {
					t.Fatal(rj)
				}
				continue
			}
			res := s.Add(*e.r, wt)
			if len(res.Rejected) > 0 {
				t.Fatalf("rejected %+v", res.Rejected)
			}
			frames = append(frames, res.Frames...)
		}
		return append(frames, s.Flush(wt).Frames...)
	}
	first, last := feed(true), feed(false)
	if len(first) != 48 {
		t.Fatalf("%d frames, want 48", len(first))
	}
	if !reflect.DeepEqual(first, last) {
		for i := range first {
			if i < len(last) && !reflect.DeepEqual(first[i], last[i]) {
				t.Errorf("window %v: weather first joined %v, readings first %v", first[i].WindowStart, first[i].Weather.ObservedAt, last[i].Weather.ObservedAt)
			}
		}
		t.Fatal("the frames depend on the order of ties at the window end")
	}
	for _, f := range first {
		// The latest observation before the end: every 10 minutes while the detectors report, every 15 during
		// the outage.
		var want time.Time
		for _, e := range events {
			if e.w != nil && e.at.Before(f.WindowEnd) {
				want = e.at
			}
		}
		if f.Weather.Missing || !f.Weather.ObservedAt.Equal(want) {
			t.Errorf("window %v–%v joined %v (missing %v), want %v", f.WindowStart, f.WindowEnd, f.Weather.ObservedAt, f.Weather.Missing, want)
		}
	}
}

func TestCalendarFeatures(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Holidays = []Date{{2026, 11, 7}}
	loc := time.FixedZone("UTC+10", 10*3600)
	cfg.Location = loc
	s := newTestIntersection(t, cfg)
	// 2026-11-06 14:00 UTC is Saturday 2026-11-07 00:00 local.
	off := 4*24*time.Hour + 14*time.Hour
	s.Add(rd("N1", off, 60, 10), nil)
	f := s.Flush(nil).Frames[0]
	v := f.Approaches[0].Values
	if !f.Holiday || v[featureIndex("holiday")] != 1 || v[featureIndex("weekend")] != 1 ||
		v[featureIndex("tod_sin")] != 0 || v[featureIndex("tod_cos")] != 1 {
		t.Fatalf("holiday %v values %v", f.Holiday, v)
	}
	if got, want := v[featureIndex("dow_sin")], math.Sin(2*math.Pi*5/7); got != want {
		t.Fatalf("dow_sin %v, want %v", got, want)
	}
}

func TestDetectorHealth(t *testing.T) {
	t.Parallel()
	s := newTestIntersection(t, DefaultConfig())
	run(s, fixture(60, 4), nil)
	if res := s.Add(rd("N2", 5*time.Minute, 60, 3), nil); len(res.Rejected) != 1 || res.Rejected[0].Reason != ReasonLate {
		t.Fatalf("late reading: %+v", res)
	}
	s.Flush(nil)
	hs := s.DetectorHealth()
	if len(hs) != 3 {
		t.Fatalf("%d detectors", len(hs))
	}
	for _, h := range hs {
		if !(h.Score >= 0 && h.Score <= 1) || h.Valid == 0 {
			t.Errorf("%+v", h)
		}
	}
	if hs[1].Late == 0 || !(hs[2].Imputed > 0) || !(hs[2].Score < hs[1].Score+0.5) {
		t.Errorf("health %+v", hs)
	}
}

func TestResultHealthPerWindow(t *testing.T) {
	t.Parallel()
	s := newTestIntersection(t, DefaultConfig())
	var frames, health int
	for _, r := range fixture(60, 5) {
		res := s.Add(r, nil)
		if len(res.Health) != len(res.Frames) {
			t.Fatalf("%d health records for %d frames", len(res.Health), len(res.Frames))
		}
		for i, h := range res.Health {
			f := res.Frames[i]
			if !h.WindowStart.Equal(f.WindowStart) || !h.WindowEnd.Equal(f.WindowEnd) || len(h.Detectors) != 3 {
				t.Fatalf("health record %d %+v does not match frame %s", i, h, f.WindowStart)
			}
		}
		if n := len(res.Health); n > 0 && !reflect.DeepEqual(res.Health[n-1].Detectors, s.DetectorHealth()) {
			t.Fatalf("last health record differs from DetectorHealth after the call")
		}
		frames += len(res.Frames)
		health += len(res.Health)
	}
	if frames == 0 || health != frames {
		t.Fatalf("%d frames, %d health records", frames, health)
	}
}
