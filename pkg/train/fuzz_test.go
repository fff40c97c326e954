package train

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
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

// FuzzRestoreSnapshot feeds arbitrary bytes to the snapshot decoders (the models topic is outside input for the
// trainer's restore and the predictor): two records (split at the first two bytes' offset) are decoded as
// ModelSnapshots and handed to RestoreLearner and Compile. Neither panics, every error wraps ErrInvalidSnapshot
// or ErrKeyMismatch, and a learner that restores snapshots back to the same state.
func FuzzRestoreSnapshot(f *testing.F) {
	cfg, frames := restartFixture()
	l := mustLearner(f, tinyNames, cfg)
	for _, fv := range frames[:30] {
		mustApply(f, l, fv[0].(frameT), fv[1].(vectorT))
	}
	pair := func(a, b []byte) []byte {
		out := binary.BigEndian.AppendUint16(nil, uint16(len(a)))
		return append(append(out, a...), b...)
	}
	var enc [][]byte
	for _, s := range l.Snapshots() {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		enc = append(enc, b)
	}
	if len(enc[0]) < 1<<16 {
		f.Add(pair(enc[0], enc[1]))
	}
	f.Add(pair(enc[0][:len(enc[0])/2], enc[1]))
	f.Add([]byte{0, 3, 8, 2, 0x12})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		n := min(int(binary.BigEndian.Uint16(data)), len(data)-2)
		var snaps []*greenwavev1.ModelSnapshot
		for _, b := range [][]byte{data[2 : 2+n], data[2+n:]} {
			s := &greenwavev1.ModelSnapshot{}
			if proto.Unmarshal(b, s) != nil {
				return
			}
			snaps = append(snaps, s)
			if _, err := Compile(s); err != nil && !errors.Is(err, ErrInvalidSnapshot) {
				t.Fatalf("Compile: unexpected error %v", err)
			}
		}
		r, err := RestoreLearner(testIntersection, testApproach, snaps, cfg)
		if err != nil {
			if !errors.Is(err, ErrInvalidSnapshot) && !errors.Is(err, ErrKeyMismatch) {
				t.Fatalf("RestoreLearner: unexpected error %v", err)
			}
			return
		}
		again, err := RestoreLearner(testIntersection, testApproach, roundTrip(t, r.Snapshots()), cfg)
		if err != nil {
			t.Fatalf("restore of a restored learner: %v", err)
		}
		if !snapshotsEqual(r.Snapshots(), again.Snapshots()) {
			t.Fatal("restore not exact")
		}
	})
}
