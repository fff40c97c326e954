package train

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"
)

// FuzzApply feeds arbitrary windows, vectors (NaN, ±Inf, huge values, bad capacities, imputed and gap flags)
// and replays: Apply never panics, every error is one of the package's, a rejected frame changes nothing, and
// the final state round-trips through RestoreLearner.
func FuzzApply(f *testing.F) {
	seed := make([]byte, 0, 64)
	for i := range 8 {
		seed = binary.LittleEndian.AppendUint64(seed, math.Float64bits(float64(i)/8))
	}
	f.Add(seed)
	f.Add(binary.LittleEndian.AppendUint64(nil, math.Float64bits(math.NaN())))
	f.Add([]byte{0xff, 0xf8, 0, 0, 0, 0, 0, 0, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := tinyConfig(5*time.Minute, 10*time.Minute)
		cfg.RecentWindow = 3
		cfg.Drift.MinSamples = 2
		cfg.Drift.Threshold = 0.01
		l := mustLearner(t, tinyNames, cfg)
		next := func() float64 {
			if len(data) < 8 {
				data = nil
				return 0
			}
			v := math.Float64frombits(binary.LittleEndian.Uint64(data))
			data = data[8:]
			return v
		}
		i := 0
		for len(data) > 0 {
			ctl := data[0]
			data = data[1:]
			i += int(ctl%4) - 1 // sometimes a replay, sometimes a gap
			a, b, flow, capacity := next(), next(), next(), 1000.0
			if ctl&0x10 != 0 {
				capacity = next()
			}
			fr, v := frame(300, i, tinyNames, []float64{a, b}, obs{flow: flow, missing: ctl&0x20 != 0, gap: ctl&0x40 != 0}, capacity)
			if ctl&0x80 != 0 {
				v.Values = v.Values[:2]
			}
			before := l.Snapshots()
			if _, err := l.Apply(fr, v); err != nil {
				if !errors.Is(err, ErrInvalidInput) {
					t.Fatalf("unexpected error %v", err)
				}
				if !snapshotsEqual(before, l.Snapshots()) {
					t.Fatal("a rejected frame changed the state")
				}
			}
		}
		snaps := l.Snapshots()
		r, err := RestoreLearner(testIntersection, testApproach, roundTrip(t, snaps), cfg)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		if !snapshotsEqual(snaps, r.Snapshots()) {
			t.Fatal("restore not exact")
		}
	})
}
