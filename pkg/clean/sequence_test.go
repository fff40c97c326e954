package clean

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/topology"
)

// minuteSeries is 15 one-minute readings of E1 (600/660 veh/h, speed 59/61 km/h, occupancy 0.10/0.11) with
// reading 10 changed by modify: windows 0..2, reading 10 in window 2.
func minuteSeries(modify func(*Reading)) []Reading {
	var rs []Reading
	for m := 0; m < 15; m++ {
		r := withOccSpeed(rd("E1", time.Duration(m)*time.Minute, 60, float64(10+m%2)), 0.10+0.01*float64(m%2), 59+2*float64(m%2))
		if m == 10 {
			modify(&r)
		}
		rs = append(rs, r)
	}
	return rs
}

func flagged(frames []features.Frame, approach int) int {
	n := 0
	for _, f := range frames {
		n += f.Approaches[approach].FlaggedOutliers
	}
	return n
}

func TestSpeedAndOccupancyOutliers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		modify func(*Reading)
		want   int
		// wantSpeed and wantOcc: with ReplaceOutliers, window 2's observed values are within 2 % of these, the
		// normal level (0: not checked). Unreplaced, the outlier moves them by a fifth of its deviation.
		wantSpeed, wantOcc float64
	}{
		{"speed drop", func(r *Reading) { r.SpeedKMH = 15 }, 1, 60, 0},
		{"speed jump", func(r *Reading) { r.SpeedKMH = 140 }, 1, 60, 0},
		{"occupancy spike", func(r *Reading) { r.Occupancy = 0.6 }, 1, 0, 0.105},
		{"speed change within the floor", func(r *Reading) { r.SpeedKMH = 45 }, 0, 0, 0},
		{"occupancy change within the floor", func(r *Reading) { r.Occupancy = 0.18 }, 0, 0, 0},
		{"speed and occupancy of one reading count once", func(r *Reading) { r.SpeedKMH, r.Occupancy = 15, 0.6 }, 1, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, replace := range []bool{false, true} {
				cfg := DefaultConfig()
				cfg.ReplaceOutliers = replace
				s := newTestIntersection(t, cfg)
				frames, rej, _ := run(s, minuteSeries(tc.modify), nil)
				frames = append(frames, s.Flush(nil).Frames...)
				if len(rej) != 0 {
					t.Fatalf("rejected %+v", rej)
				}
				if got := flagged(frames, 1); got != tc.want || frames[2].Approaches[1].FlaggedOutliers != tc.want {
					t.Fatalf("replace=%v: flagged %d (window 2: %d), want %d", replace, got, frames[2].Approaches[1].FlaggedOutliers, tc.want)
				}
				h := s.DetectorHealth()[2]
				if math.Abs(h.Flagged-float64(tc.want)) > 0.01 { // decayed over 3 windows of a 24 h half-life
					t.Fatalf("health flagged %v, want about %d", h.Flagged, tc.want)
				}
				obs := frames[2].Approaches[1].Observed
				if replace && tc.wantSpeed != 0 && math.Abs(obs.SpeedKMH-tc.wantSpeed) > 0.02*tc.wantSpeed {
					t.Errorf("replaced speed: window speed %v, want %v", obs.SpeedKMH, tc.wantSpeed)
				}
				if replace && tc.wantOcc != 0 && math.Abs(obs.Occupancy-tc.wantOcc) > 0.02*tc.wantOcc {
					t.Errorf("replaced occupancy: window occupancy %v, want %v", obs.Occupancy, tc.wantOcc)
				}
			}
		})
	}
	t.Run("zero speed without vehicles is no measurement", func(t *testing.T) {
		t.Parallel()
		// Night: no vehicles, the gateway reports speed 0. Then one vehicle at 60 km/h is no speed outlier:
		// the zeros are not in the speed history.
		s := newTestIntersection(t, DefaultConfig())
		var rs []Reading
		for m := 0; m < 12; m++ {
			rs = append(rs, withOccSpeed(rd("E1", time.Duration(m)*time.Minute, 60, 0), 0, 0))
		}
		rs = append(rs, withOccSpeed(rd("E1", 12*time.Minute, 60, 1), 0.01, 60))
		frames, _, _ := run(s, rs, nil)
		frames = append(frames, s.Flush(nil).Frames...)
		if got := flagged(frames, 1); got != 0 {
			t.Fatalf("flagged %d", got)
		}
	})
}

func TestStuckSpeedAndOccupancy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		reading    func(m int) Reading
		wantFirst  int // minute of the first rejection, −1: none
		wantDetail string
	}{
		{"speed frozen while counts vary", func(m int) Reading {
			return withOccSpeed(rd("E1", time.Duration(m)*time.Minute, 60, float64(10+m%3)), 0.1+0.01*float64(m%3), 60)
		}, 3, "speed 60 km/h repeated in 4 consecutive intervals"},
		{"occupancy frozen", func(m int) Reading {
			return withOccSpeed(rd("E1", time.Duration(m)*time.Minute, 60, float64(10+m%3)), 0.12, float64(50+m%3))
		}, 3, "occupancy 0.12 repeated in 4 consecutive intervals"},
		{"standstill (speed 0) is not stuck", func(m int) Reading {
			return withOccSpeed(rd("E1", time.Duration(m)*time.Minute, 60, float64(1+m%2)), 0.6+0.01*float64(m%3), 0)
		}, -1, ""},
		{"a reading without speed breaks the run", func(m int) Reading {
			r := withOccSpeed(rd("E1", time.Duration(m)*time.Minute, 60, float64(10+m%3)), 0.1+0.01*float64(m%3), 60)
			if m%3 == 2 {
				r.HasSpeed, r.SpeedKMH = false, 0
			}
			return r
		}, -1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			cfg.StuckRun = 4
			s := newTestIntersection(t, cfg)
			var rs []Reading
			for m := 0; m < 10; m++ {
				rs = append(rs, tc.reading(m))
			}
			_, rej, _ := run(s, rs, nil)
			rej = append(rej, s.Flush(nil).Rejected...)
			if tc.wantFirst < 0 {
				if len(rej) != 0 {
					t.Fatalf("rejected %+v", rej)
				}
				return
			}
			if len(rej) != 10-tc.wantFirst {
				t.Fatalf("%d rejections, want %d: %+v", len(rej), 10-tc.wantFirst, rej)
			}
			if r := rej[0]; r.Reason != ReasonStuckDetector || r.Detail != tc.wantDetail ||
				!r.Reading.Start.Equal(t0.Add(time.Duration(tc.wantFirst)*time.Minute)) {
				t.Fatalf("first rejection %+v, want stuck_detector %q", r, tc.wantDetail)
			}
		})
	}
}

func hourlyTopo() topology.Intersection {
	in := testTopo()
	in.WindowS = 3600
	return in
}

// dailyFlow is a weekday-like hourly flow profile (veh/h) with sharp morning and evening ramps.
var dailyFlow = [24]float64{100, 80, 60, 60, 100, 300, 900, 1600, 1700, 1000, 800, 800,
	850, 800, 850, 1000, 1400, 1650, 1100, 600, 450, 350, 250, 150}

// hourlySeries is days of hourly E1 readings on dailyFlow with ±3 % deterministic day-to-day noise.
func hourlySeries(days int) []Reading {
	var rs []Reading
	for d := 0; d < days; d++ {
		for h := 0; h < 24; h++ {
			c := math.Round(dailyFlow[h] * (1 + 0.03*math.Sin(float64(7*d+3*h))))
			rs = append(rs, rd("E1", time.Duration(d*24+h)*time.Hour, 3600, c))
		}
	}
	return rs
}

func TestSeasonalFilterOnHourlyData(t *testing.T) {
	t.Parallel()
	const days = 21
	runHourly := func(t *testing.T, cfg Config, rs []Reading) []features.Frame {
		t.Helper()
		s, err := NewIntersection(hourlyTopo(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		frames, rej, _ := run(s, rs, nil)
		if len(rej) != 0 {
			t.Fatalf("rejected %+v", rej)
		}
		return append(frames, s.Flush(nil).Frames...)
	}
	after := func(frames []features.Frame, day int) []features.Frame {
		for i, f := range frames {
			if !f.WindowStart.Before(t0.Add(time.Duration(day) * 24 * time.Hour)) {
				return frames[i:]
			}
		}
		return nil
	}
	raw, seasonal := DefaultConfig(), DefaultConfig()
	raw.HampelSeasonal = false
	rs := hourlySeries(days)
	t.Run("ramps are outliers to the raw filter only", func(t *testing.T) {
		t.Parallel()
		if n := flagged(after(runHourly(t, raw, rs), 7), 1); n < 2*(days-7) {
			t.Errorf("raw filter flagged %d readings after the first week, want the daily ramps", n)
		}
		if n := flagged(after(runHourly(t, seasonal, rs), 7), 1); n != 0 {
			t.Errorf("seasonal filter flagged %d readings after the first week, want 0", n)
		}
	})
	t.Run("an incident on a known hour is flagged and replaced", func(t *testing.T) {
		t.Parallel()
		cfg := seasonal
		cfg.ReplaceOutliers = true
		hit := append([]Reading(nil), rs...)
		i := 16*24 + 8 // day 16, 08:00: 300 veh/h instead of about 1700
		hit[i].Count = 300
		frames := after(runHourly(t, cfg, hit), 7)
		if n := flagged(frames, 1); n != 1 {
			t.Fatalf("flagged %d readings, want 1", n)
		}
		v := frames[(16-7)*24+8].Approaches[1]
		if v.FlaggedOutliers != 1 || math.Abs(v.Observed.FlowVPH-1700) > 0.1*1700 {
			t.Fatalf("incident window: flagged %d, flow %v, want about 1700", v.FlaggedOutliers, v.Observed.FlowVPH)
		}
	})
	t.Run("restart at any point continues identically", func(t *testing.T) {
		t.Parallel()
		cfg := seasonal
		cfg.ReplaceOutliers = true
		hit := append([]Reading(nil), rs...)
		hit[16*24+8].Count = 300
		full := func(s *Intersection, rs []Reading) ([]features.Frame, []Rejection) {
			f, r, _ := run(s, rs, nil)
			fl := s.Flush(nil)
			return append(f, fl.Frames...), append(r, fl.Rejected...)
		}
		s0, _ := NewIntersection(hourlyTopo(), cfg)
		wantF, wantR := full(s0, hit)
		for _, k := range []int{0, 5, 7*24 + 3, 16*24 + 8, 16*24 + 9, len(hit)} {
			s, _ := NewIntersection(hourlyTopo(), cfg)
			f1, r1, _ := run(s, hit[:k], nil)
			s2, err := RestoreIntersection(hourlyTopo(), cfg, s.State())
			if err != nil {
				t.Fatalf("k=%d: restore: %v", k, err)
			}
			f2, r2 := full(s2, hit[k:])
			if !reflect.DeepEqual(append(f1, f2...), wantF) || !reflect.DeepEqual(append(r1, r2...), wantR) {
				t.Fatalf("k=%d: restored run differs", k)
			}
		}
	})
}

func TestProfileSlot(t *testing.T) {
	t.Parallel()
	s := newTestIntersection(t, DefaultConfig())
	cases := []struct {
		name     string
		off      time.Duration
		interval int
		want     slot
	}{
		{"whole hour on its bucket", 8 * time.Hour, 3600, slot{8, 9, 0}},
		{"five minutes after 8:00", 8 * time.Hour, 300, slot{7, 8, 2.5/60 + 0.5}},
		{"Monday 00:00 wraps to Sunday 23:00", 0, 60, slot{167, 0, 0.5 + 0.5/60}},
		{"Tuesday 12:30", 36*time.Hour + 30*time.Minute, 60, slot{36, 37, 0.5 / 60}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := rd("E1", tc.off, tc.interval, 1)
			got := s.profileSlot(&r)
			if got.b0 != tc.want.b0 || got.b1 != tc.want.b1 || math.Abs(got.f-tc.want.f) > 1e-12 {
				t.Fatalf("profileSlot = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRestoreFormat1 checks that a snapshot written before speed and occupancy had sequence state (format 1)
// still restores: the flow history and stuck run carry over, without seasonal baselines.
func TestRestoreFormat1(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	// The committed format 3 state (JSON, written by the cleaner before format 4) turned into format 1.
	b, err := os.ReadFile("testdata/state-format3.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := RestoreLegacyIntersection(testTopo(), cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	st["format"] = 1
	for _, d := range st["detector_state"].([]any) {
		dm := d.(map[string]any)
		flow := dm["seq"].([]any)[0].(map[string]any)
		dm["hist"], dm["last_count"], dm["has_last"], dm["run"] = flow["hist"], flow["last"], true, flow["run"]
		delete(dm, "seq")
	}
	old, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	r, err := RestoreLegacyIntersection(testTopo(), cfg, old)
	if err != nil {
		t.Fatalf("restore format 1: %v", err)
	}
	for i := range s.st.Dets {
		got, want := r.st.Dets[i].Seq[qFlow], s.st.Dets[i].Seq[qFlow]
		if !reflect.DeepEqual(got.Hist, want.Hist) || got.Run != want.Run || got.Last != want.Last || len(got.Base) != len(got.Hist) {
			t.Fatalf("detector %d: flow state %+v, want history and run of %+v", i, got, want)
		}
		for _, base := range got.Base {
			if base != -1 {
				t.Fatalf("detector %d: migrated baseline %v, want -1", i, base)
			}
		}
		if sp := r.st.Dets[i].Seq[qSpeed]; sp.Hist != nil || sp.Mean != nil {
			t.Fatalf("detector %d: speed state after migration %+v", i, sp)
		}
	}
	frames, _, _ := run(r, after(fixture(120, 3), 90*time.Minute), nil)
	if len(frames) == 0 {
		t.Fatal("no frames after the migration")
	}
	checkFinite(t, frames)

	t.Run("format 2 with legacy fields is refused", func(t *testing.T) {
		t.Parallel()
		bad := strings.Replace(string(b), `"detector_state":[{`, `"detector_state":[{"hist":[1,2,3],`, 1)
		if _, err := RestoreLegacyIntersection(testTopo(), cfg, []byte(bad)); !errors.Is(err, ErrBadState) {
			t.Fatalf("got %v, want ErrBadState", err)
		}
	})
	t.Run("out-of-range sequence state is refused", func(t *testing.T) {
		t.Parallel()
		bad := strings.Replace(string(b), `"base":[`, `"base":[-5,`, 1)
		if bad == string(b) {
			t.Fatal("fixture state has no baselines")
		}
		if _, err := RestoreLegacyIntersection(testTopo(), cfg, []byte(bad)); !errors.Is(err, ErrBadState) {
			t.Fatalf("got %v, want ErrBadState", err)
		}
	})
}

// after returns the readings starting at or after t0+d.
func after(rs []Reading, d time.Duration) []Reading {
	var out []Reading
	for _, r := range rs {
		if !r.Start.Before(t0.Add(d)) {
			out = append(out, r)
		}
	}
	return out
}

// TestMigrateJSONState restores the committed format 3 state (JSON, fixture(90, 3) with weather, written by the
// cleaner before the protobuf state) and continues it: the event time and open windows carry over exactly, the
// frames observe exactly what a never-stopped cleaner of this version observes, and the features that come from
// the migrated history (rounded to float32 and 1/10000) agree to 1e-3.
func TestMigrateJSONState(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/state-format3.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	migrated, err := RestoreLegacyIntersection(testTopo(), cfg, b)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	all := fixture(150, 3)
	fresh := newTestIntersection(t, cfg)
	run(fresh, all[:len(fixture(90, 3))], testWeather())
	if migrated.st.WM != fresh.st.WM || migrated.st.MaxEvent != fresh.st.MaxEvent || migrated.st.Next != fresh.st.Next ||
		!reflect.DeepEqual(migrated.st.Open, fresh.st.Open) {
		t.Fatal("event time or open windows differ after the migration")
	}
	// Once migrated, the state is format 4 and round-trips exactly.
	if _, err := RestoreIntersection(testTopo(), cfg, migrated.State()); err != nil {
		t.Fatalf("restore the migrated state: %v", err)
	}
	rest := after(all, 90*time.Minute)
	got, _, _ := run(migrated, rest, testWeather())
	want, _, _ := run(fresh, rest, testWeather())
	if len(got) == 0 || len(got) != len(want) {
		t.Fatalf("%d frames after the migration, want %d", len(got), len(want))
	}
	for i := range got {
		for a := range got[i].Approaches {
			g, w := got[i].Approaches[a], want[i].Approaches[a]
			if g.Observed != w.Observed || g.Readings != w.Readings {
				t.Fatalf("frame %d approach %s: observed %+v, want %+v", i, g.ApproachID, g.Observed, w.Observed)
			}
			for j := range g.Values {
				if math.Abs(g.Values[j]-w.Values[j]) > 1e-3 {
					t.Errorf("frame %d approach %s %s = %v, want %v", i, g.ApproachID, got[i].Names[j], g.Values[j], w.Values[j])
				}
			}
		}
	}
}
