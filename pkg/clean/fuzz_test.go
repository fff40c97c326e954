package clean

import (
	"encoding/binary"
	"math"
	"testing"
	"time"
)

// readingsFromBytes decodes fuzz input into readings: 12 bytes each.
func readingsFromBytes(b []byte) []Reading {
	dets := []string{"N1", "N2", "E1", "X", ""}
	intervals := []int{60, 300, 30, 0, 600, 7, 120, 3600}
	specials := []float64{0, 1, 10, 45, 1e6, -1, math.NaN(), math.Inf(1)}
	var out []Reading
	for len(b) >= 12 {
		c := b[:12]
		b = b[12:]
		off := time.Duration(int16(binary.LittleEndian.Uint16(c[1:3]))) * 30 * time.Second
		r := rd(dets[int(c[0])%len(dets)], off, intervals[int(c[3])%len(intervals)], float64(c[4]%50))
		if c[5]&1 != 0 {
			r.Count = specials[int(c[5]>>1)%len(specials)]
		}
		if c[5]&16 != 0 {
			r.FlowVPH = float64(binary.LittleEndian.Uint16(c[6:8]))
		}
		if c[8]&1 != 0 {
			r.HasOccupancy, r.Occupancy = true, float64(c[9])/200
		}
		if c[8]&2 != 0 {
			r.HasSpeed, r.SpeedKMH = true, float64(c[10])
		}
		if c[8]&4 != 0 {
			r.ID = ""
		}
		if c[8]&8 != 0 {
			r.Start = r.Start.Add(time.Duration(c[11]) * time.Second)
		}
		if c[8]&16 != 0 { // no count: usually a speed- or occupancy-only reading, sometimes one with a stray count
			r.NoCount = true
			if c[8]&32 == 0 {
				r.Count, r.FlowVPH = 0, 0
			}
		}
		out = append(out, r)
	}
	return out
}

func FuzzIntersectionAdd(f *testing.F) {
	seed := make([]byte, 0, 12*64)
	for i := 0; i < 64; i++ {
		seed = append(seed, byte(i%3), byte(i*2), 0, 0, byte(10+i%7), 0, 0, 0, 3, 20, 40, 0)
	}
	f.Add(seed, uint8(0))
	f.Add([]byte{1, 255, 127, 1, 255, 13, 1, 2, 15, 255, 255, 255}, uint8(3))
	speedOnly := make([]byte, 0, 12*64)
	for i := 0; i < 64; i++ { // readings without counts: speed only, every third with an occupancy too
		speedOnly = append(speedOnly, byte(i%3), byte(i*2), 0, 0, 0, 0, 0, 0, 16|2|byte(i%3/2), 20, byte(60+i%9), 0)
	}
	f.Add(speedOnly, uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, mode uint8) {
		cfg := DefaultConfig()
		cfg.ReplaceOutliers = mode&1 != 0
		cfg.StuckRun = int(mode>>1) % 5 * 2
		cfg.HampelSeasonal = mode&32 == 0
		s := newTestIntersection(t, cfg)
		s.SetUpstream(States{"I-1": s}) // N reads E's history through the lookup
		wl := testWeather()
		rs := readingsFromBytes(b)
		frames, _, _ := run(s, rs, wl)
		if mode&16 != 0 {
			frames = append(frames, s.CloseIdle(t0.Add(time.Duration(mode)*time.Hour), wl).Frames...)
		}
		s2, err := RestoreIntersection(testTopo(), cfg, s.State())
		if err != nil {
			t.Fatalf("restore own state: %v", err)
		}
		s2.SetUpstream(States{"I-1": s2})
		frames = append(frames, s.Flush(wl).Frames...)
		frames = append(frames, s2.Flush(wl).Frames...)
		checkFinite(t, frames)
		for _, h := range s.DetectorHealth() {
			if !(h.Score >= 0 && h.Score <= 1) {
				t.Fatalf("health score %v", h.Score)
			}
		}
	})
}
