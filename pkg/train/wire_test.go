package train_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// The tests here go through the ModelSnapshot encoding (pkg/wire), which the package's own tests cannot import.

// marshal encodes a snapshot as the models topic carries it.
func marshal(t testing.TB, s *train.Snapshot) []byte {
	t.Helper()
	b, err := proto.Marshal(wire.SnapshotProto(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// roundTrip encodes and decodes snapshots, as a restore from the topic does.
func roundTrip(t testing.TB, snaps []*train.Snapshot) []*train.Snapshot {
	t.Helper()
	out := make([]*train.Snapshot, len(snaps))
	for i, s := range snaps {
		p := &greenwavev1.ModelSnapshot{}
		if err := proto.Unmarshal(marshal(t, s), p); err != nil {
			t.Fatal(err)
		}
		out[i] = wire.Snapshot(p)
	}
	return out
}

// v1Fixture holds the snapshots (schema version 1, one per horizon, length-delimited) that the code before
// schema version 2 wrote for restartFixture's first v1FixtureFrames frames.
var v1Fixture = filepath.Join("testdata", "snapshots_v1.binpb")

const v1FixtureFrames = 35

// TestWriteV1Fixture regenerates the fixture; it only ran on the v1 code (GREENWAVE_WRITE_FIXTURES=1).
func TestWriteV1Fixture(t *testing.T) {
	if os.Getenv("GREENWAVE_WRITE_FIXTURES") == "" {
		t.Skip("set GREENWAVE_WRITE_FIXTURES=1 to rewrite the fixture")
	}
	cfg, frames := train.RestartFixture()
	l := train.MustLearner(t, train.TinyNames, cfg)
	for _, fv := range frames[:v1FixtureFrames] {
		train.MustApply(t, l, fv[0].(train.FrameT), fv[1].(train.VectorT))
	}
	var buf bytes.Buffer
	for _, s := range l.Snapshots() {
		if _, err := protodelim.MarshalTo(&buf, wire.SnapshotProto(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(v1Fixture, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readFixture returns the length-delimited snapshots of a fixture file.
func readFixture(t testing.TB, path string) []*train.Snapshot {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(b)
	var out []*train.Snapshot
	for r.Len() > 0 {
		s := &greenwavev1.ModelSnapshot{}
		if err := protodelim.UnmarshalFrom(r, s); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, wire.Snapshot(s))
	}
	return out
}

// TestReadSchema1 restores the schema-1 fixture written by the code before schema 2: the learner equals one that
// applied the same frames (its snapshots are now written at schema 2), continues exactly like the uninterrupted
// run, and the predictor's train.Compile serves the schema-1 records exactly like the schema-2 ones.
func TestReadSchema1(t *testing.T) {
	t.Parallel()
	cfg, frames := train.RestartFixture()
	old := readFixture(t, v1Fixture)
	if len(old) != len(cfg.Horizons) || old[0].SchemaVersion != train.SchemaVersion1 || len(old[0].BaselineState) == 0 {
		t.Fatalf("fixture: %d snapshots, schema %d", len(old), old[0].SchemaVersion)
	}
	r, err := train.RestoreLearner(train.TestIntersection, train.TestApproach, old, cfg)
	if err != nil {
		t.Fatalf("restore schema 1: %v", err)
	}
	full := train.MustLearner(t, train.TinyNames, cfg)
	for _, fv := range frames[:v1FixtureFrames] {
		train.MustApply(t, full, fv[0].(train.FrameT), fv[1].(train.VectorT))
	}
	if got, want := r.Snapshots(), full.Snapshots(); !train.SnapshotsEqual(got, want) {
		t.Fatal("the learner restored from schema 1 differs from the one that applied the same frames")
	}
	for i, s := range old {
		m1, err := train.Compile(s)
		if err != nil {
			t.Fatalf("compile schema 1: %v", err)
		}
		m2, err := train.Compile(full.Snapshots()[i])
		if err != nil {
			t.Fatal(err)
		}
		f, v := frames[v1FixtureFrames][0].(train.FrameT), frames[v1FixtureFrames][1].(train.VectorT)
		a, errA := m1.Predict(f, v, 0.9)
		b, errB := m2.Predict(f, v, 0.9)
		if (errA == nil) != (errB == nil) || !forecastsIdentical(a, b) {
			t.Fatalf("horizon %d: schema 1 serves %+v (%v), schema 2 %+v (%v)", i, a, errA, b, errB)
		}
	}
	for _, fv := range frames[v1FixtureFrames:] {
		u, w := train.MustApply(t, r, fv[0].(train.FrameT), fv[1].(train.VectorT)), train.MustApply(t, full, fv[0].(train.FrameT), fv[1].(train.VectorT))
		if !train.UpdatesEqual(u, w) {
			t.Fatalf("update %+v, uninterrupted %+v", u, w)
		}
	}
	if !train.SnapshotsEqual(r.Snapshots(), full.Snapshots()) {
		t.Fatal("continued from schema 1, the learner differs from the uninterrupted one")
	}
}

// forecastsIdentical compares forecasts bit for bit.
func forecastsIdentical(a, b train.Forecast) bool {
	same := func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) }
	return same(a.Value, b.Value) && same(a.Lower, b.Lower) && same(a.Upper, b.Upper) && same(a.StdErr, b.StdErr) &&
		slices.EqualFunc(a.Contributions, b.Contributions, func(x, y train.Contribution) bool { return x.Feature == y.Feature && same(x.Value, y.Value) })
}

// TestSnapshotRoundTripDefault runs a learner of the default configuration with the real feature set for eight
// days of 5-minute windows, encodes its snapshots, restores a learner from the bytes and checks that both
// make the same forecasts, bit for bit, for four more hours of windows — and that the predictor's train.Compile of the
// restored learner's snapshots serves the same forecasts as the original's. It also prints the record sizes.
func TestSnapshotRoundTripDefault(t *testing.T) {
	t.Parallel()
	cfg := train.DefaultConfig()
	names := features.Names()
	const windows, more = 2016 + 288, 48 // past a week, so every seasonal input is present
	rng := train.NewRand(7)
	frameAt := func(i int) (train.FrameT, train.VectorT) {
		x := make([]float64, len(names)-1)
		for j := range x {
			x[j] = rng.Float64()
		}
		o := train.NewObs(400+300*math.Sin(float64(i)/40)+50*rng.NormFloat64(), i%29 == 3, i%97 == 5)
		f, v := train.TestFrame(300, i, names, x, o, 1800)
		f.FeatureSetVersion = features.SetVersion
		return f, v
	}
	l, err := train.NewLearner(train.TestIntersection, train.TestApproach, names, features.SetVersion, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range windows {
		f, v := frameAt(i)
		train.MustApply(t, l, f, v)
	}
	snaps := l.Snapshots()
	var total int
	for _, s := range snaps {
		b := marshal(t, s)
		total += len(b)
		t.Logf("%s: %d bytes", s.ModelID, len(b))
	}
	t.Logf("learner of %d inputs × %d candidates × %d horizons: %d bytes", len(l.FeatureNames()), len(cfg.Candidates), len(cfg.Horizons), total)
	r, err := train.RestoreLearner(train.TestIntersection, train.TestApproach, roundTrip(t, snaps), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !train.SnapshotsEqual(snaps, r.Snapshots()) {
		t.Fatal("restored snapshots differ")
	}
	for i := windows; i < windows+more; i++ {
		f, v := frameAt(i)
		restored := r.Snapshots()
		for k, s := range l.Snapshots() {
			a, errA := train.Predict(s, f, v, 0.9)
			b, errB := train.Predict(restored[k], f, v, 0.9)
			if (errA == nil) != (errB == nil) || !forecastsIdentical(a, b) {
				t.Fatalf("window %d horizon %d: served %+v (%v) and %+v (%v)", i, k, a, errA, b, errB)
			}
		}
		u, w := train.MustApply(t, r, f, v), train.MustApply(t, l, f, v)
		if !train.UpdatesEqual(u, w) {
			t.Fatalf("window %d: restored update %+v, original %+v", i, u, w)
		}
	}
	if !train.SnapshotsEqual(l.Snapshots(), r.Snapshots()) {
		t.Fatal("the restored learner diverged")
	}
}

// FuzzRestoreSnapshot feeds arbitrary bytes to the snapshot decoders (the models topic is outside input for the
// trainer's restore and the predictor): two records (split at the first two bytes' offset) are decoded as
// ModelSnapshots and handed to train.RestoreLearner and Compile. Neither panics, every error wraps train.ErrInvalidSnapshot
// or train.ErrKeyMismatch, and a learner that restores snapshots back to the same state.
func FuzzRestoreSnapshot(f *testing.F) {
	cfg, frames := train.RestartFixture()
	l := train.MustLearner(f, train.TinyNames, cfg)
	for _, fv := range frames[:30] {
		train.MustApply(f, l, fv[0].(train.FrameT), fv[1].(train.VectorT))
	}
	pair := func(a, b []byte) []byte {
		out := binary.BigEndian.AppendUint16(nil, uint16(len(a)))
		return append(append(out, a...), b...)
	}
	var enc [][]byte
	for _, s := range l.Snapshots() {
		enc = append(enc, marshal(f, s))
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
		var snaps []*train.Snapshot
		for _, b := range [][]byte{data[2 : 2+n], data[2+n:]} {
			p := &greenwavev1.ModelSnapshot{}
			if proto.Unmarshal(b, p) != nil {
				return
			}
			s := wire.Snapshot(p)
			snaps = append(snaps, s)
			if _, err := train.Compile(s); err != nil && !errors.Is(err, train.ErrInvalidSnapshot) {
				t.Fatalf("Compile: unexpected error %v", err)
			}
		}
		r, err := train.RestoreLearner(train.TestIntersection, train.TestApproach, snaps, cfg)
		if err != nil {
			if !errors.Is(err, train.ErrInvalidSnapshot) && !errors.Is(err, train.ErrKeyMismatch) {
				t.Fatalf("RestoreLearner: unexpected error %v", err)
			}
			return
		}
		again, err := train.RestoreLearner(train.TestIntersection, train.TestApproach, roundTrip(t, r.Snapshots()), cfg)
		if err != nil {
			t.Fatalf("restore of a restored learner: %v", err)
		}
		if !train.SnapshotsEqual(r.Snapshots(), again.Snapshots()) {
			t.Fatal("restore not exact")
		}
	})
}

// FuzzCompile decodes arbitrary snapshot bytes (the models topic is outside input for the predictor): train.Compile
// never panics and fails only with train.ErrInvalidSnapshot, and a compiled model predicts exactly what the reference
// implementation predicts from the same snapshot.
func FuzzCompile(f *testing.F) {
	cfg := train.TinyConfig(5*time.Minute, time.Hour)
	cfg.MaxPending = 12
	l := train.MustLearner(f, train.TinyNames, cfg)
	for i := range 30 {
		fr, v := train.TestFrame(300, i, train.TinyNames, []float64{float64(i%7) / 7, float64(i%5) / 5}, train.NewObs(300+float64(i), false, false), 1000)
		train.MustApply(f, l, fr, v)
	}
	for _, s := range l.Snapshots() {
		b := marshal(f, s)
		f.Add(b, int64(30))
		f.Add(b[:len(b)/2], int64(29))
	}
	f.Add([]byte{}, int64(0))
	f.Fuzz(func(t *testing.T, b []byte, window int64) {
		var p greenwavev1.ModelSnapshot
		if err := proto.Unmarshal(b, &p); err != nil {
			return
		}
		s := wire.Snapshot(&p)
		m, err := train.Compile(s)
		if err != nil {
			if !errors.Is(err, train.ErrInvalidSnapshot) {
				t.Fatalf("Compile: %v does not wrap ErrInvalidSnapshot", err)
			}
			if _, err := train.ReferencePredict(s, train.FrameT{}, train.VectorT{}, 0.9); err == nil {
				t.Fatal("the reference predicts from a snapshot that does not compile")
			}
			return
		}
		fr, v := train.TestFrame(300, int(window%(4*2016)), train.TinyNames, []float64{0.25, 0.5}, train.NewObs(400, false, false), 1000)
		got, err := m.Predict(fr, v, 0.9)
		train.CheckSame(t, s, fr, 0.9, got, err)
	})
}

// BenchmarkSnapshots measures Snapshots (3 horizons, default configuration) plus proto.Marshal.
func BenchmarkSnapshots(b *testing.B) {
	s := train.NewTrafficSeries(7, 1)
	l, err := train.NewLearner(train.TestIntersection, train.TestApproach, s.Names(), 1, train.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range s.Frames() {
		if _, err := l.Apply(f, f.Approaches[0]); err != nil {
			b.Fatal(err)
		}
	}
	var size int
	b.ReportAllocs()
	for b.Loop() {
		size = 0
		for _, sn := range l.Snapshots() {
			size += len(marshal(b, sn))
		}
	}
	b.ReportMetric(float64(size), "bytes/learner")
}
