package clean

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

const threeDays = 72 * time.Hour

// ahead returns r shifted by d, as a gateway whose clock is d ahead would stamp it.
func shifted(r Reading, d time.Duration) Reading {
	r.Start = r.Start.Add(d)
	r.ID = derivedID(r.DetectorID, r.Start.UnixNano())
	return r
}

// without returns rs without the readings for which drop is true.
func without(rs []Reading, drop func(Reading) bool) []Reading {
	var out []Reading
	for _, r := range rs {
		if !drop(r) {
			out = append(out, r)
		}
	}
	return out
}

func runFlush(s *Intersection, rs []Reading) ([]features.Frame, []Rejection) {
	f, rej, _ := run(s, rs, nil)
	fl := s.Flush(nil)
	return append(f, fl.Frames...), append(rej, fl.Rejected...)
}

func countReason(rej []Rejection, reason Reason) int {
	n := 0
	for _, r := range rej {
		if r.Reason == reason {
			n++
		}
	}
	return n
}

// TestClockJump checks the clock-jump rule on one intersection: readings far ahead of its event time that no
// majority of its detectors confirms are held back and rejected as clock_jump, without closing anybody's
// windows; a jump that a majority confirms (sources back after an outage) is applied exactly as if there were
// no rule.
func TestClockJump(t *testing.T) {
	t.Parallel()
	base := fixture(120, 5)
	noRule := DefaultConfig()
	noRule.ClockJumpTolerance = 10 * 365 * 24 * time.Hour
	for _, tc := range []struct {
		name string
		// input is the stream fed; reference is what gives the same frames without the bad clock (nil: input
		// under noRule, for jumps that must be applied as if there were no rule).
		input, reference []Reading
		wantJumps        int
	}{
		{
			name:      "one reading 3 days ahead",
			input:     append(append(append([]Reading{}, base[:150]...), shifted(base[150], threeDays)), base[151:]...),
			reference: append(append([]Reading{}, base[:150]...), base[151:]...),
			wantJumps: 1,
		},
		{
			name: "one detector's clock 3 days ahead from minute 30 on",
			input: func() []Reading {
				var out []Reading
				for _, r := range base {
					if r.DetectorID == "N2" && !r.Start.Before(t0.Add(30*time.Minute)) {
						r = shifted(r, threeDays)
					}
					out = append(out, r)
				}
				return out
			}(),
			reference: without(base, func(r Reading) bool { return r.DetectorID == "N2" && !r.Start.Before(t0.Add(30*time.Minute)) }),
			wantJumps: -1, // every shifted reading
		},
		{
			name: "a detector back after a 6-hour outage is no jump",
			input: func() []Reading {
				long := fixture(8*60, 5)
				return without(long, func(r Reading) bool {
					return r.DetectorID == "E1" && r.Start.After(t0.Add(60*time.Minute)) && r.Start.Before(t0.Add(7*time.Hour))
				})
			}(),
		},
		{
			name: "hourly readings in 300 s windows: each waits for the next, none is a jump",
			input: func() []Reading {
				var out []Reading
				for h := range 48 {
					for _, d := range []string{"N1", "N2", "E1"} {
						out = append(out, rd(d, time.Duration(h)*time.Hour, 60, float64(5+h%7)))
					}
				}
				return out
			}(),
		},
		{
			name:  "one detector, the last reading after a 2-hour gap is applied at the end",
			input: []Reading{rd("N1", 0, 60, 5), rd("N1", 5*time.Minute, 60, 6), rd("N1", 2*time.Hour, 60, 5)},
		},
		{
			name: "the whole intersection back after a 6-hour outage is confirmed",
			input: without(fixture(8*60, 5), func(r Reading) bool {
				return r.Start.After(t0.Add(60*time.Minute)) && r.Start.Before(t0.Add(7*time.Hour))
			}),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, rej := runFlush(newTestIntersection(t, DefaultConfig()), tc.input)
			var want []features.Frame
			if tc.reference != nil {
				want, _ = runFlush(newTestIntersection(t, DefaultConfig()), tc.reference)
			} else {
				want, _ = runFlush(newTestIntersection(t, noRule), tc.input)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%d frames differ from the %d of the reference", len(got), len(want))
			}
			jumps := countReason(rej, ReasonClockJump)
			if tc.wantJumps == -1 {
				tc.wantJumps = len(tc.input) - len(tc.reference)
			}
			if jumps != tc.wantJumps || countReason(rej, ReasonLate) != 0 {
				t.Fatalf("%d clock_jump and %d late rejections, want %d and 0", jumps, countReason(rej, ReasonLate), tc.wantJumps)
			}
			for _, r := range rej {
				if r.Reason == ReasonClockJump && !strings.Contains(r.Detail, "ahead of intersection I-1's event time") {
					t.Fatalf("detail %q", r.Detail)
				}
			}
		})
	}
	t.Run("held reading rejected once the event time moves on", func(t *testing.T) {
		t.Parallel()
		s := newTestIntersection(t, DefaultConfig())
		run(s, base[:30], nil)
		if res := s.Add(shifted(base[30], threeDays), nil); len(res.Rejected) != 0 || len(s.st.Held) != 1 {
			t.Fatalf("not held: %+v", res)
		}
		// Its identical resend is a replay of the held reading, a different one a conflict.
		if res := s.Add(shifted(base[30], threeDays), nil); res.Dropped != 1 {
			t.Fatalf("resend of a held reading: %+v", res)
		}
		_, rej, _ := run(s, base[31:], nil)
		if countReason(rej, ReasonClockJump) != 1 || len(s.st.Held) != 0 {
			t.Fatalf("rejections %+v, %d held", rej, len(s.st.Held))
		}
	})
	t.Run("bounded: at most max(8, 2 × detectors) held", func(t *testing.T) {
		t.Parallel()
		s := newTestIntersection(t, DefaultConfig())
		run(s, base[:30], nil)
		var rej []Rejection
		for m := range 20 {
			rej = append(rej, s.Add(rd("N1", threeDays+time.Duration(m)*time.Minute, 60, 5), nil).Rejected...)
		}
		if len(s.st.Held) != s.maxHeld || len(rej) != 20-s.maxHeld || countReason(rej, ReasonClockJump) != len(rej) {
			t.Fatalf("%d held, %d rejected", len(s.st.Held), len(rej))
		}
	})
	t.Run("after the idle timeout, a reading at the wall clock is no jump", func(t *testing.T) {
		t.Parallel()
		s := newTestIntersection(t, DefaultConfig())
		run(s, base[:30], nil)
		now := t0.Add(5 * time.Hour)
		s.CloseIdle(now, nil)
		if res := s.Add(rd("N1", 5*time.Hour-time.Minute, 60, 5), nil); len(res.Rejected) != 0 || len(s.st.Held) != 0 {
			t.Fatalf("%+v, %d held", res, len(s.st.Held))
		}
	})
	t.Run("flush rejects what is still held", func(t *testing.T) {
		t.Parallel()
		s := newTestIntersection(t, DefaultConfig())
		run(s, base[:30], nil)
		s.Add(shifted(base[30], threeDays), nil)
		if res := s.Flush(nil); countReason(res.Rejected, ReasonClockJump) != 1 {
			t.Fatalf("flush: %+v", res.Rejected)
		}
	})
}

// TestClockJumpLeavesOtherIntersections feeds two intersections of one partition (one States) and gives one
// gateway a clock 3 days ahead, first for a single reading, then for a stream of them (its whole intersection,
// so the jump is confirmed and that intersection's own later readings are late): the other intersection's
// frames are exactly those of a run without the bad gateway.
func TestClockJumpLeavesOtherIntersections(t *testing.T) {
	t.Parallel()
	topoA, topoB := testTopo(), testTopo()
	topoA.ID, topoB.ID = "I-A", "I-B"
	for _, topo := range []*topology.Intersection{&topoA, &topoB} {
		for i := range topo.Approaches {
			topo.Approaches[i].Upstream = nil
		}
	}
	for _, tc := range []struct {
		name string
		bad  func(m int) bool // which minutes of I-A the bad clock stamps
		// wantJumps is I-A's clock_jump rejections; 0: the jump is confirmed and I-A's later readings are late.
		wantJumps int
	}{
		{"one batch of readings (every detector, one minute)", func(m int) bool { return m == 40 }, 3},
		{"a stream of readings", func(m int) bool { return m >= 40 && m < 70 }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var input, reference []Reading
			for _, r := range fixture(150, 9) {
				m := int(r.Start.Sub(t0) / time.Minute)
				a, b := r, r
				a.IntersectionID, b.IntersectionID = "I-A", "I-B"
				b.Count++
				if tc.bad(m) {
					a = shifted(a, threeDays)
				}
				input = append(input, a, b)
				reference = append(reference, b)
			}
			feed := func(rs []Reading) (map[string][]features.Frame, map[string][]Rejection) {
				st := States{}
				for _, topo := range []topology.Intersection{topoA, topoB} {
					s, err := NewIntersection(topo, DefaultConfig())
					if err != nil {
						t.Fatal(err)
					}
					s.SetUpstream(st)
					st[topo.ID] = s
				}
				frames, rej := map[string][]features.Frame{}, map[string][]Rejection{}
				for i, r := range rs {
					s := st[r.IntersectionID]
					s.SetPosition(int64(i))
					res := s.Add(r, nil)
					frames[r.IntersectionID] = append(frames[r.IntersectionID], res.Frames...)
					rej[r.IntersectionID] = append(rej[r.IntersectionID], res.Rejected...)
				}
				return frames, rej
			}
			got, rej := feed(input)
			want, _ := feed(reference)
			if len(want["I-B"]) < 20 || !reflect.DeepEqual(got["I-B"], want["I-B"]) {
				t.Fatalf("I-B: %d frames, reference %d, or they differ", len(got["I-B"]), len(want["I-B"]))
			}
			if len(rej["I-B"]) != 0 {
				t.Fatalf("I-B rejections: %+v", rej["I-B"])
			}
			if n := countReason(rej["I-A"], ReasonClockJump); tc.wantJumps != n || (tc.wantJumps == 0) != (countReason(rej["I-A"], ReasonLate) > 0) {
				t.Fatalf("I-A: %d clock_jump, want %d: %+v", n, tc.wantJumps, rej["I-A"])
			}
			t.Logf("I-A: %d clock_jump, %d late", countReason(rej["I-A"], ReasonClockJump), countReason(rej["I-A"], ReasonLate))
		})
	}
}
