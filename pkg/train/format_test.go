package train

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/features"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// v1Fixture holds the snapshots (schema version 1, one per horizon, length-delimited) that the code before
// schema version 2 wrote for restartFixture's first v1FixtureFrames frames.
var v1Fixture = filepath.Join("testdata", "snapshots_v1.binpb")

const v1FixtureFrames = 35

// TestWriteV1Fixture regenerates the fixture; it only ran on the v1 code (GREENWAVE_WRITE_FIXTURES=1).
func TestWriteV1Fixture(t *testing.T) {
	if os.Getenv("GREENWAVE_WRITE_FIXTURES") == "" {
		t.Skip("set GREENWAVE_WRITE_FIXTURES=1 to rewrite the fixture")
	}
	cfg, frames := restartFixture()
	l := mustLearner(t, tinyNames, cfg)
	for _, fv := range frames[:v1FixtureFrames] {
		mustApply(t, l, fv[0].(frameT), fv[1].(vectorT))
	}
	var buf bytes.Buffer
	for _, s := range l.Snapshots() {
		if _, err := protodelim.MarshalTo(&buf, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(v1Fixture, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readFixture returns the length-delimited snapshots of a fixture file.
func readFixture(t testing.TB, path string) []*greenwavev1.ModelSnapshot {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(b)
	var out []*greenwavev1.ModelSnapshot
	for r.Len() > 0 {
		s := &greenwavev1.ModelSnapshot{}
		if err := protodelim.UnmarshalFrom(r, s); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, s)
	}
	return out
}

// TestReadSchema1 restores the schema-1 fixture written by the code before schema 2: the learner equals one that
// applied the same frames (its snapshots are now written at schema 2), continues exactly like the uninterrupted
// run, and the predictor's Compile serves the schema-1 records exactly like the schema-2 ones.
func TestReadSchema1(t *testing.T) {
	t.Parallel()
	cfg, frames := restartFixture()
	old := readFixture(t, v1Fixture)
	if len(old) != len(cfg.Horizons) || old[0].GetSchemaVersion() != SchemaVersion1 || len(old[0].GetBaselineState()) == 0 {
		t.Fatalf("fixture: %d snapshots, schema %d", len(old), old[0].GetSchemaVersion())
	}
	r, err := RestoreLearner(testIntersection, testApproach, old, cfg)
	if err != nil {
		t.Fatalf("restore schema 1: %v", err)
	}
	full := mustLearner(t, tinyNames, cfg)
	for _, fv := range frames[:v1FixtureFrames] {
		mustApply(t, full, fv[0].(frameT), fv[1].(vectorT))
	}
	if got, want := r.Snapshots(), full.Snapshots(); !snapshotsEqual(got, want) {
		t.Fatal("the learner restored from schema 1 differs from the one that applied the same frames")
	}
	for i, s := range old {
		m1, err := Compile(s)
		if err != nil {
			t.Fatalf("compile schema 1: %v", err)
		}
		m2, err := Compile(full.Snapshots()[i])
		if err != nil {
			t.Fatal(err)
		}
		f, v := frames[v1FixtureFrames][0].(frameT), frames[v1FixtureFrames][1].(vectorT)
		a, errA := m1.Predict(f, v, 0.9)
		b, errB := m2.Predict(f, v, 0.9)
		if (errA == nil) != (errB == nil) || !forecastsIdentical(a, b) {
			t.Fatalf("horizon %d: schema 1 serves %+v (%v), schema 2 %+v (%v)", i, a, errA, b, errB)
		}
	}
	for _, fv := range frames[v1FixtureFrames:] {
		u, w := mustApply(t, r, fv[0].(frameT), fv[1].(vectorT)), mustApply(t, full, fv[0].(frameT), fv[1].(vectorT))
		if !updatesEqual(u, w) {
			t.Fatalf("update %+v, uninterrupted %+v", u, w)
		}
	}
	if !snapshotsEqual(r.Snapshots(), full.Snapshots()) {
		t.Fatal("continued from schema 1, the learner differs from the uninterrupted one")
	}
}

// forecastsIdentical compares forecasts bit for bit.
func forecastsIdentical(a, b Forecast) bool {
	same := func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) }
	return same(a.Value, b.Value) && same(a.Lower, b.Lower) && same(a.Upper, b.Upper) && same(a.StdErr, b.StdErr) &&
		slices.EqualFunc(a.Contributions, b.Contributions, func(x, y Contribution) bool { return x.Feature == y.Feature && same(x.Value, y.Value) })
}

// TestSnapshotRoundTripDefault runs a learner of the default configuration with the real feature set for eight
// days of 5-minute windows, encodes its snapshots, restores a learner from the bytes and checks that both
// make the same forecasts, bit for bit, for four more hours of windows — and that the predictor's Compile of the
// restored learner's snapshots serves the same forecasts as the original's. It also prints the record sizes.
func TestSnapshotRoundTripDefault(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	names := features.Names()
	const windows, more = 2016 + 288, 48 // past a week, so every seasonal input is present
	rng := newRand(7)
	frameAt := func(i int) (frameT, vectorT) {
		x := make([]float64, len(names)-1)
		for j := range x {
			x[j] = rng.Float64()
		}
		o := obs{flow: 400 + 300*math.Sin(float64(i)/40) + 50*rng.NormFloat64(), missing: i%29 == 3, gap: i%97 == 5}
		f, v := frame(300, i, names, x, o, 1800)
		f.FeatureSetVersion = features.SetVersion
		return f, v
	}
	l, err := NewLearner(testIntersection, testApproach, names, features.SetVersion, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range windows {
		f, v := frameAt(i)
		mustApply(t, l, f, v)
	}
	snaps := l.Snapshots()
	var total int
	for _, s := range snaps {
		b, err := proto.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		total += len(b)
		t.Logf("%s: %d bytes", s.GetModelId(), len(b))
	}
	t.Logf("learner of %d inputs × %d candidates × %d horizons: %d bytes", len(l.FeatureNames()), len(cfg.Candidates), len(cfg.Horizons), total)
	r, err := RestoreLearner(testIntersection, testApproach, roundTrip(t, snaps), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !snapshotsEqual(snaps, r.Snapshots()) {
		t.Fatal("restored snapshots differ")
	}
	for i := windows; i < windows+more; i++ {
		f, v := frameAt(i)
		restored := r.Snapshots()
		for k, s := range l.Snapshots() {
			a, errA := Predict(s, f, v, 0.9)
			b, errB := Predict(restored[k], f, v, 0.9)
			if (errA == nil) != (errB == nil) || !forecastsIdentical(a, b) {
				t.Fatalf("window %d horizon %d: served %+v (%v) and %+v (%v)", i, k, a, errA, b, errB)
			}
		}
		u, w := mustApply(t, r, f, v), mustApply(t, l, f, v)
		if !updatesEqual(u, w) {
			t.Fatalf("window %d: restored update %+v, original %+v", i, u, w)
		}
	}
	if !snapshotsEqual(l.Snapshots(), r.Snapshots()) {
		t.Fatal("the restored learner diverged")
	}
}
