package predictor

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/train"
)

// testNamesV2 is the feature set 2 of the upgrade test: testNames with one feature appended.
var testNamesV2 = []string{"bias", "a", "b", "c"}

// testFrameV2 is testFrame(i) built by an upgraded cleaner: feature set 2.
func testFrameV2(i int) features.Frame {
	f := testFrame(i)
	f.FeatureSetVersion, f.Names = 2, testNamesV2
	aps := make([]features.Vector, len(f.Approaches))
	for k, v := range f.Approaches {
		v.Values = append(v.Values[:len(v.Values):len(v.Values)], float64(i%4)/4)
		aps[k] = v
	}
	f.Approaches = aps
	return f
}

// TestPredictAcrossFeatureSetUpgrade: frames of a newer feature set than the models held are never predicted
// with those models — persistence fallback, counted, logged once per model — and the trainer's upgraded models
// (higher versions) replace the old ones in the store and are served from the next frame on. Then a frame of
// the old feature set (a cleaner not yet upgraded) falls back in its turn.
func TestPredictAcrossFeatureSetUpgrade(t *testing.T) {
	t.Parallel()
	const upgradeAt, end = 100, 160
	cfg := train.DefaultConfig()
	cfg.Candidates = cfg.Candidates[:2]
	learners := map[string]*train.Learner{}
	for _, ap := range []string{"n", "s"} {
		l, err := train.NewLearner("i1", ap, testNames, 1, cfg)
		if err != nil {
			t.Fatal(err)
		}
		learners[ap] = l
	}
	// learn applies windows [from, to) to the learners the way the trainer does (Upgrade on a mismatch), and
	// puts their snapshots into the store, which must take every one of them.
	store := models.NewStore()
	learn := func(from, to int, frameOf func(int) features.Frame) {
		t.Helper()
		for i := from; i < to; i++ {
			f := frameOf(i)
			for _, v := range f.Approaches {
				l := learners[v.ApproachID]
				_, err := l.Apply(f, v)
				if errors.Is(err, train.ErrFeatureMismatch) {
					l, _, err = l.Upgrade(f, v)
				}
				if err != nil {
					t.Fatalf("window %d: %v", i, err)
				}
				learners[v.ApproachID] = l
			}
		}
		for _, l := range learners {
			for _, s := range l.Snapshots() {
				if !store.Put(s) {
					t.Fatalf("the store refused %s version %d", s.ModelID, s.Version)
				}
			}
		}
	}
	learn(0, upgradeAt, testFrame)

	core, logs := observer.New(zapcore.InfoLevel)
	count := prometheus.NewCounter(prometheus.CounterOpts{Name: "mismatches"})
	pr := newTestPredictor(store, 24*time.Hour)
	pr.mismatches = &mismatchReporter{log: zap.New(core), count: count}
	forecasts := 2 * len(testHorizons)

	// check predicts f and checks that every forecast is a fallback (fallback) or the model's own.
	check := func(name string, f features.Frame, fallback bool) {
		t.Helper()
		p := pr.Predict(f)
		n := 0
		for ai, ap := range p.GetApproaches() {
			for _, h := range ap.GetHorizons() {
				n++
				snap, _ := store.Get(h.GetModelId())
				if fallback {
					if !h.GetFallback() || h.GetModelVersion() != 0 || h.GetValue() != f.Approaches[ai].Observed.FlowVPH {
						t.Errorf("%s: %s: %v, want a persistence fallback", name, h.GetModelId(), h)
					}
					continue
				}
				want, err := train.Predict(snap, f, f.Approaches[ai], pr.confidence)
				if err != nil || h.GetFallback() || h.GetModelVersion() != snap.Version || h.GetValue() != want.Value {
					t.Errorf("%s: %s: %v, want version %d's forecast %g (%v)", name, h.GetModelId(), h, snap.Version, want.Value, err)
				}
			}
		}
		if n != forecasts {
			t.Fatalf("%s: %d forecasts, want %d", name, n, forecasts)
		}
	}

	check("old feature set, old models", testFrame(upgradeAt), false)
	if n := testutil.ToFloat64(count); n != 0 {
		t.Fatalf("%v mismatches counted for matching models", n)
	}
	check("new feature set, old models", testFrameV2(upgradeAt), true)
	check("new feature set, old models, again", testFrameV2(upgradeAt+1), true)
	if n := testutil.ToFloat64(count); n != float64(2*forecasts) {
		t.Fatalf("%v mismatches counted, want %d", n, 2*forecasts)
	}
	if n := logs.FilterMessageSnippet("feature set differs").Len(); n != forecasts {
		t.Fatalf("%d mismatch log lines, want one per model (%d)", n, forecasts)
	}

	// The trainer upgrades on the first new frame; once its models are ready they are served.
	learn(upgradeAt, end, testFrameV2)
	for _, ap := range []string{"n", "s"} {
		for _, h := range testHorizons {
			s, _ := store.Get(train.ModelID("i1", ap, h, train.TargetFlow))
			if s.FeatureSetVersion != 2 || s.Version != end {
				t.Fatalf("%s: store holds feature set %d version %d, want 2, %d", s.ModelID, s.FeatureSetVersion, s.Version, end)
			}
		}
	}
	check("new feature set, upgraded models", testFrameV2(end), false)
	check("old feature set, upgraded models", testFrame(end), true)
	if n := logs.FilterMessageSnippet("feature set differs").Len(); n != 2*forecasts {
		t.Fatalf("%d mismatch log lines, want one per model and pair of feature sets (%d)", n, 2*forecasts)
	}
}
