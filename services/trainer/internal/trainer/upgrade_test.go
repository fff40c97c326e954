package trainer

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// The feature sets of the upgrade tests, versions 1 and 2 whatever features.SetVersion is: pkg/features' names,
// then the same with two features appended.
var (
	upgradeNamesV1 = features.Names()
	upgradeNamesV2 = append(features.Names(), "extra_a", "extra_b")
)

// TestHandleFeatureSetUpgrade: a frame of a newer feature set replaces the approach's learners (counted, logged)
// with models that continue the versions, so that the models store takes them; frames of an older feature set,
// or of the same version with other names, are dead-lettered as inconsistent; replays of applied windows are
// skipped whatever their feature set.
func TestHandleFeatureSetUpgrade(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 8))
	core, logs := observer.New(zapcore.InfoLevel)
	m := newMetrics(testRegistry())
	p := newPartition(0, 0, testConfig(), topics.DefaultNames("test."), m, zap.New(core))
	store := models.NewStore()
	handle := func(f *greenwavev1.IntersectionFeatures) error {
		t.Helper()
		_, err := p.Handle(ctx, messages(t, 0, f)[0])
		return err
	}
	checkpoint := func() []*train.Snapshot {
		t.Helper()
		outs, err := p.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var snaps []*train.Snapshot
		for _, o := range outs {
			if o.Topic != p.names.TrainerState {
				continue // the served forms
			}
			s, err := wire.DecodeModel(o.Message())
			if err != nil {
				t.Fatal(err)
			}
			snaps = append(snaps, s)
		}
		return snaps
	}

	for w := range 10 {
		if err := handle(frameWith("I-1", w, approachIDs(2), rng, 1, upgradeNamesV1)); err != nil {
			t.Fatalf("window %d: %v", w, err)
		}
	}
	for _, s := range checkpoint() {
		store.Put(s)
	}

	if err := handle(frameWith("I-1", 10, approachIDs(2), rng, 2, upgradeNamesV2)); err != nil {
		t.Fatalf("upgrade frame: %v", err)
	}
	if n := testutil.ToFloat64(m.upgrades); n != 2 {
		t.Fatalf("%v upgrades counted, want 2 (one per approach)", n)
	}
	entries := logs.FilterMessageSnippet("feature set upgraded").All()
	if len(entries) != 2 {
		t.Fatalf("%d upgrade log entries, want 2", len(entries))
	}
	for _, e := range entries {
		f := e.ContextMap()
		if e.Level != zapcore.InfoLevel || f["from"] != int64(1) || f["to"] != int64(2) || f["version"] != uint64(11) ||
			!strings.HasPrefix(f["model"].(string), "I-1/A") {
			t.Errorf("upgrade logged %v %v, want Info with the model, from 1, to 2, version 11", e.Level, f)
		}
	}
	snaps := checkpoint()
	if len(snaps) != 2*len(testConfig().Horizons) {
		t.Fatalf("%d snapshots after the upgrade, want %d", len(snaps), 2*len(testConfig().Horizons))
	}
	wantNames := upgradeNamesV2[1:] // without "bias"
	for _, s := range snaps {
		if s.Version != 11 || s.FeatureSetVersion != 2 || !slices.Equal(s.FeatureNames[:len(wantNames)], wantNames) {
			t.Errorf("%s: version %d, feature set %d %v; want 11, 2 with the new names", s.ModelID, s.Version,
				s.FeatureSetVersion, s.FeatureNames)
		}
		if !store.Put(s) {
			t.Errorf("%s: the models store kept the old feature set's model", s.ModelID)
		}
		if got, _ := store.Get(s.ModelID); got.FeatureSetVersion != 2 {
			t.Errorf("%s: the store serves feature set %d", s.ModelID, got.FeatureSetVersion)
		}
	}

	swapped := slices.Clone(upgradeNamesV2)
	swapped[len(swapped)-1], swapped[len(swapped)-2] = swapped[len(swapped)-2], swapped[len(swapped)-1]
	for _, tc := range []struct {
		name   string
		frame  *greenwavev1.IntersectionFeatures
		detail string // "" when the frame is skipped as a replay
	}{
		{"older feature set (a cleaner not yet upgraded)", frameWith("I-1", 11, approachIDs(2), rng, 1, upgradeNamesV1), "never downgraded"},
		{"same version, other order", frameWith("I-1", 11, approachIDs(2), rng, 2, swapped), "needs a new version"},
		{"replay of an applied window in the old feature set", frameWith("I-1", 9, approachIDs(2), rng, 1, upgradeNamesV1), ""},
		{"replay of the upgrade window", frameWith("I-1", 10, approachIDs(2), rng, 2, upgradeNamesV2), ""},
	} {
		skipped := testutil.ToFloat64(m.skipped)
		err := handle(tc.frame)
		var rej *stream.RejectError
		switch {
		case tc.detail == "" && err != nil:
			t.Errorf("%s: %v, want skipped", tc.name, err)
		case tc.detail == "" && testutil.ToFloat64(m.skipped) != skipped+2:
			t.Errorf("%s: %v vectors skipped, want 2", tc.name, testutil.ToFloat64(m.skipped)-skipped)
		case tc.detail != "" && (!errors.As(err, &rej) || rej.Reason != greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT ||
			!strings.Contains(rej.Detail, tc.detail)):
			t.Errorf("%s: %v, want INCONSISTENT mentioning %q", tc.name, err, tc.detail)
		}
	}
	if n := testutil.ToFloat64(m.upgrades); n != 2 || len(p.dirty) != 0 {
		t.Fatalf("rejected or skipped frames upgraded (%v upgrades) or changed %d learners", n, len(p.dirty))
	}
	if err := handle(frameWith("I-1", 11, approachIDs(2), rng, 2, upgradeNamesV2)); err != nil {
		t.Fatalf("next window of the new feature set: %v", err)
	}
	for _, s := range checkpoint() {
		if s.Version != 12 {
			t.Errorf("%s: version %d, want 12", s.ModelID, s.Version)
		}
	}
}
