package clean

import (
	"math"
	"testing"
	"time"
)

// speedOnly is a reading of det without a count: a freeway speed station.
func speedOnly(det string, off time.Duration, interval int, speed float64) Reading {
	r := rd(det, off, interval, 0)
	r.NoCount, r.SpeedKMH, r.HasSpeed = true, speed, true
	return r
}

// TestSpeedOnlyWindows checks that readings without counts make windows with a speed and no flow: not gaps, not
// imputed when every detector reported, flow feature and flow lags absent (gap = 1), speed features set.
func TestSpeedOnlyWindows(t *testing.T) {
	t.Parallel()
	s := newTestIntersection(t, DefaultConfig())
	var rs []Reading
	for m := 0; m < 30; m += 5 {
		for _, det := range []string{"N1", "N2", "E1"} {
			rs = append(rs, speedOnly(det, time.Duration(m)*time.Minute, 300, 80+float64(m)/5))
		}
	}
	frames, rej, _ := run(s, rs, nil)
	frames = append(frames, s.Flush(nil).Frames...)
	if len(rej) != 0 {
		t.Fatalf("rejected %+v", rej)
	}
	if len(frames) != 6 {
		t.Fatalf("%d frames, want 6", len(frames))
	}
	checkFinite(t, frames)
	iFlow, iGap, iSpeed, iSpeedP, iLag1P := featureIndex("flow_ratio"), featureIndex("gap"), featureIndex("speed_ratio"), featureIndex("speed_present"), featureIndex("lag1_present")
	for k, fr := range frames {
		for _, v := range fr.Approaches {
			o := v.Observed
			want := 80 + float64(k)
			if v.Gap || o.Imputed || !o.NoFlow || o.FlowVPH != 0 || !o.HasSpeed || math.Abs(o.SpeedKMH-want) > 1e-9 || o.HasOccupancy {
				t.Fatalf("window %d approach %s: gap %v observed %+v, want speed %g without flow", k, v.ApproachID, v.Gap, o, want)
			}
			if v.Readings != 2 && v.ApproachID == "N" || v.ImputedFraction != 0 {
				t.Errorf("window %d approach %s: %d readings, imputed fraction %g", k, v.ApproachID, v.Readings, v.ImputedFraction)
			}
			x := v.Values
			if x[iFlow] != 0 || x[iGap] != 1 || x[iSpeedP] != 1 || math.Abs(x[iSpeed]-want/100) > 1e-12 || x[iLag1P] != 0 {
				t.Errorf("window %d approach %s: flow %g gap %g speed %g/%g lag1_present %g", k, v.ApproachID, x[iFlow], x[iGap], x[iSpeed], x[iSpeedP], x[iLag1P])
			}
		}
	}
}

// TestPartialReadingRules checks the plausibility rules on readings that lack a quantity: no count means no flow
// check (over-capacity, zero occupancy and speed with flow), a speed-only detector still gets stuck, and a
// detector that lost its counts for one window has its flow filled (imputed) while its speed is measured.
func TestPartialReadingRules(t *testing.T) {
	t.Parallel()
	t.Run("stuck speed", func(t *testing.T) {
		t.Parallel()
		cfg := DefaultConfig()
		s := newTestIntersection(t, cfg)
		var rs []Reading
		for m := 0; m < cfg.StuckRun+2; m++ {
			rs = append(rs, speedOnly("E1", time.Duration(m)*5*time.Minute, 300, 77))
		}
		_, rej, _ := run(s, rs, nil)
		rej = append(rej, s.Flush(nil).Rejected...)
		if len(rej) == 0 || rej[0].Reason != ReasonStuckDetector {
			t.Fatalf("rejections %+v, want stuck_detector", rej)
		}
	})
	t.Run("occupancy only with zero speed is not implausible", func(t *testing.T) {
		t.Parallel()
		s := newTestIntersection(t, DefaultConfig())
		r := rd("E1", 0, 300, 0)
		r.NoCount = true
		r = withOccSpeed(r, 0, 0)
		if res := s.Add(r, nil); len(res.Rejected) != 0 {
			t.Fatalf("rejected %+v", res.Rejected)
		}
	})
	t.Run("lost counts are filled, speed measured", func(t *testing.T) {
		t.Parallel()
		s := newTestIntersection(t, DefaultConfig())
		rs := []Reading{
			withOccSpeed(rd("E1", 0, 300, 50), 0.1, 60),
			speedOnly("E1", 5*time.Minute, 300, 50),
			withOccSpeed(rd("E1", 10*time.Minute, 300, 50), 0.1, 60),
		}
		frames, rej, _ := run(s, rs, nil)
		frames = append(frames, s.Flush(nil).Frames...)
		if len(rej) != 0 || len(frames) != 3 {
			t.Fatalf("%d frames, rejections %+v", len(frames), rej)
		}
		v := frames[1].Approaches[1]
		if v.ApproachID != "E" || v.Gap || v.Observed.NoFlow || !v.Observed.Imputed || v.Observed.FlowVPH != 600 || v.Observed.SpeedKMH != 50 {
			t.Fatalf("window 1 approach E: %+v", v)
		}
	})
}
