package wire

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/regression"
	"github.com/greenwave-city/greenwave/pkg/train"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// goldenSnapshots holds, length-delimited, the complete then the served form of every horizon's snapshot of
// goldenLearner, as the code wrote them before the snapshot became a domain type (pkg/train imported protobuf).
var goldenSnapshots = filepath.Join("testdata", "model_snapshots.binpb")

// goldenLearner trains a learner of two horizons over a stream with gaps, imputed labels, a replay and a change
// of regime (drift), so that every part of a snapshot is filled: history with missing windows, pending inputs
// with intervals, coverage, drift, recent errors and promotions.
func goldenLearner(t testing.TB) *train.Learner {
	t.Helper()
	cfg := train.Config{
		Horizons: []time.Duration{5 * time.Minute, 15 * time.Minute},
		Candidates: []train.CandidateSpec{{Name: "slow", RLS: regression.RLSConfig{Lambda: 1, Delta: 1000}},
			{Name: "fast", RLS: regression.RLSConfig{Lambda: 0.9, Delta: 1000}}},
		MaxPending: 8, RecentWindow: 6, PromoteMargin: 0.05,
		Drift:  regression.PageHinkleyConfig{Delta: 0.001, Threshold: 0.05, MinSamples: 5},
		Target: train.TargetFlow, WindowS: 300, IntervalConfidence: 0.9,
	}
	names := []string{"bias", "a", "b"}
	l, err := train.NewLearner("i1", "north", names, 1, cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Unix(2800*7*24*3600, 0).UTC()
	rng := rand.New(rand.NewPCG(3, 0x9e3779b97f4a7c15))
	for i := range 60 {
		if i == 20 || i == 21 || i == 40 {
			continue
		}
		a, b := rng.Float64(), rng.Float64()
		y := 0.3 + 0.2*a - 0.1*b + 0.01*rng.NormFloat64()
		if i >= 30 {
			y = 0.6 - 0.3*a + 0.2*b
		}
		start := base.Add(time.Duration(i*300) * time.Second)
		v := features.Vector{ApproachID: "north", Values: []float64{1, a, b}, CapacityVPH: 1000 + float64(i%3),
			Observed: features.Observed{FlowVPH: 1000 * y, Imputed: i%11 == 5 || i == 33}, Gap: i == 33}
		f := features.Frame{IntersectionID: "i1", WindowStart: start, WindowEnd: start.Add(300 * time.Second),
			FeatureSetVersion: 1, Names: names, Approaches: []features.Vector{v}}
		if _, err := l.Apply(f, v); err != nil {
			t.Fatalf("Apply(%v): %v", start, err)
		}
	}
	return l
}

func readGolden(t *testing.T) []*greenwavev1.ModelSnapshot {
	t.Helper()
	b, err := os.ReadFile(goldenSnapshots)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(b)
	var out []*greenwavev1.ModelSnapshot
	for r.Len() > 0 {
		s := &greenwavev1.ModelSnapshot{}
		if err := protodelim.UnmarshalFrom(r, s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func marshalDet(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldenForms returns the complete and served forms of goldenLearner's snapshots, in the order of the golden file.
func goldenForms(t *testing.T) []*greenwavev1.ModelSnapshot {
	var out []*greenwavev1.ModelSnapshot
	for _, s := range goldenLearner(t).Snapshots() {
		out = append(out, SnapshotProto(s), SnapshotProto(train.Served(s)))
	}
	return out
}

// TestSnapshotGolden: the snapshots a learner produces encode to exactly the bytes the code wrote before the
// refactor (complete and served forms), and a decoded golden snapshot converts back to an equal message.
func TestSnapshotGolden(t *testing.T) {
	got := goldenForms(t)
	if *update {
		var buf bytes.Buffer
		for _, s := range got {
			if _, err := (protodelim.MarshalOptions{MarshalOptions: proto.MarshalOptions{Deterministic: true}}).MarshalTo(&buf, s); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(goldenSnapshots, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := readGolden(t)
	if len(got) != len(want) {
		t.Fatalf("%d snapshots, golden %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("snapshot %d (%s served=%v) differs from golden", i, want[i].GetModelId(), want[i].GetServed())
		}
		if !bytes.Equal(marshalDet(t, got[i]), marshalDet(t, want[i])) {
			t.Errorf("snapshot %d (%s) encodes to other bytes than golden", i, want[i].GetModelId())
		}
		// proto -> domain -> proto loses nothing.
		if back := SnapshotProto(Snapshot(want[i])); !proto.Equal(back, want[i]) || !bytes.Equal(marshalDet(t, back), marshalDet(t, want[i])) {
			t.Errorf("snapshot %d (%s) changes through the domain type", i, want[i].GetModelId())
		}
	}
}

// TestSnapshotGoldenRestores: the decoded golden complete forms restore a learner that snapshots to them again,
// and a decoded served form compiles to the model of its complete form.
func TestSnapshotGoldenRestores(t *testing.T) {
	t.Parallel()
	want := readGolden(t)
	var complete []*train.Snapshot
	for i := 0; i < len(want); i += 2 {
		complete = append(complete, Snapshot(want[i]))
	}
	cfg := goldenLearner(t).Config()
	l, err := train.RestoreLearner("i1", "north", complete, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range l.Snapshots() {
		if !proto.Equal(SnapshotProto(s), want[2*i]) {
			t.Errorf("restored snapshot %s differs from golden", s.ModelID)
		}
		m, err := train.Compile(Snapshot(want[2*i+1]))
		if err != nil || m.ID() != s.ModelID {
			t.Errorf("Compile(served %s) = %v, %v", s.ModelID, m, err)
		}
	}
}

// TestTargetTable fails when a target is added to the proto enum or to pkg/train without the other.
func TestTargetTable(t *testing.T) {
	t.Parallel()
	checkEnumTable(t, greenwavev1.Target(0).Descriptor(), append([]string{""}, train.Targets()...), targets)
	for _, name := range targetNames() {
		if got, ok := Target(TargetProto(name)); !ok || got != name {
			t.Errorf("target %q does not round-trip", name)
		}
	}
}
