package train

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/features"
)

// The feature sets of the upgrade tests, with explicit versions: the tests must not depend on
// features.SetVersion.
var (
	namesV1 = tinyNames
	namesV2 = []string{"bias", "a", "b", "c"} // one feature appended
)

// frameV returns window i with feature set version fsv and names, capacity 1000.
func frameV(i, fsv int, names []string, x []float64, o obs) (features.Frame, features.Vector) {
	f, v := frame(300, i, names, x, o, 1000)
	f.FeatureSetVersion = fsv
	return f, v
}

// applyOrUpgrade is what the trainer does with a frame: Apply, and on a feature set mismatch Upgrade.
func applyOrUpgrade(l *Learner, f features.Frame, v features.Vector) (*Learner, Update, error) {
	up, err := l.Apply(f, v)
	if errors.Is(err, ErrFeatureMismatch) {
		return l.Upgrade(f, v)
	}
	return l, up, err
}

func TestUpgrade(t *testing.T) {
	t.Parallel()
	cfg := tinyConfig(5*time.Minute, 15*time.Minute)
	old := mustLearner(t, namesV1, cfg)
	for i := range 10 {
		f, v := frameV(i, 1, namesV1, []float64{0.1 * float64(i), 0.5}, obs{flow: 100 + float64(i)})
		mustApply(t, old, f, v)
	}
	oldSnaps := old.Snapshots()

	f, v := frameV(10, 2, namesV2, []float64{0.2, 0.3, 0.4}, obs{flow: 150})
	if _, err := old.Apply(f, v); !errors.Is(err, ErrFeatureMismatch) {
		t.Fatalf("Apply of a newer feature set: %v, want ErrFeatureMismatch", err)
	}
	next, up, err := old.Upgrade(f, v)
	if err != nil {
		t.Fatalf("Upgrade: %v", err)
	}
	if next == old || next.FeatureSetVersion() != 2 || up.Skipped || up.Version != 11 || next.Version() != 11 {
		t.Fatalf("successor feature set %d version %d (update %+v), want a new learner at feature set 2, version 11",
			next.FeatureSetVersion(), next.Version(), up)
	}
	if !snapshotsEqual(oldSnaps, old.Snapshots()) {
		t.Fatal("Upgrade changed the old learner")
	}
	wantNames := append([]string{"a", "b", "c"}, seasonalNames[:]...)
	snaps := next.Snapshots()
	for i, s := range snaps {
		switch {
		case s.ModelID != oldSnaps[i].ModelID:
			t.Errorf("model id %q, was %q", s.ModelID, oldSnaps[i].ModelID)
		case s.Version <= oldSnaps[i].Version:
			t.Errorf("%s: version %d not above the old model's %d", s.ModelID, s.Version, oldSnaps[i].Version)
		case s.FeatureSetVersion != 2 || !slices.Equal(s.FeatureNames, wantNames):
			t.Errorf("%s: feature set %d %v, want 2 %v", s.ModelID, s.FeatureSetVersion, s.FeatureNames, wantNames)
		case !s.LastAppliedWindow.Time().Equal(f.WindowStart):
			t.Errorf("%s: last applied %v, want %v", s.ModelID, s.LastAppliedWindow.Time(), f.WindowStart)
		case len(s.Pending) != 1 || len(s.Pending[0].Values) != len(wantNames):
			t.Errorf("%s: pending %v, want the upgrade frame's input only", s.ModelID, s.Pending)
		}
		// The prequential metrics restart: nothing was scored yet.
		for i := range s.Candidates {
			c := &s.Candidates[i]
			if c.Evaluation.Cumulative.N != 0 || c.State.Updates != 0 {
				t.Errorf("%s: candidate %q starts with %d scored labels, %d updates", s.ModelID, c.Name,
					c.Evaluation.Cumulative.N, c.State.Updates)
			}
		}
	}

	// The successor goes on with the new feature set and rejects the old one.
	f, v = frameV(11, 2, namesV2, []float64{0.2, 0.3, 0.5}, obs{flow: 160})
	if up := mustApply(t, next, f, v); up.Version != 12 || up.Horizons[0].Labelled != 1 {
		t.Fatalf("next window: %+v, want version 12 with one label", up)
	}
	f, v = frameV(12, 1, namesV1, []float64{0.2, 0.3}, obs{flow: 160})
	if _, _, err := next.Upgrade(f, v); !errors.Is(err, ErrFeatureMismatch) || !strings.Contains(err.Error(), "older") {
		t.Fatalf("Upgrade with the old feature set: %v, want ErrFeatureMismatch saying it is older", err)
	}
}

func TestUpgradeRejects(t *testing.T) {
	t.Parallel()
	x3 := []float64{0.2, 0.3, 0.4}
	tests := []struct {
		name  string
		frame func() (features.Frame, features.Vector)
		want  error
		text  string
	}{
		{"older version", func() (features.Frame, features.Vector) {
			return frameV(5, 1, namesV2, x3, obs{flow: 100})
		}, ErrFeatureMismatch, "never downgraded"},
		{"same version, other order", func() (features.Frame, features.Vector) {
			return frameV(5, 2, []string{"bias", "b", "a", "c"}, x3, obs{flow: 100})
		}, ErrFeatureMismatch, "needs a new version"},
		{"same version, other feature", func() (features.Frame, features.Vector) {
			return frameV(5, 2, []string{"bias", "a", "b", "d"}, x3, obs{flow: 100})
		}, ErrFeatureMismatch, "needs a new version"},
		{"newer version, bad vector", func() (features.Frame, features.Vector) {
			return frameV(5, 3, []string{"bias", "a", "b", "c", "d"}, x3, obs{flow: 100})
		}, ErrInvalidInput, "values"},
		{"newer version, seasonal input name", func() (features.Frame, features.Vector) {
			return frameV(5, 3, []string{"bias", "a", "b", InputHATarget}, x3, obs{flow: 100})
		}, ErrInvalidConfig, InputHATarget},
		{"newer version, other intersection", func() (features.Frame, features.Vector) {
			f, v := frameV(5, 3, []string{"bias", "a", "b", "c", "d"}, append(x3, 0), obs{flow: 100})
			f.IntersectionID = "elsewhere"
			return f, v
		}, ErrKeyMismatch, "elsewhere"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, err := NewLearner(testIntersection, testApproach, namesV2, 2, tinyConfig())
			if err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				f, v := frameV(i, 2, namesV2, x3, obs{flow: 100})
				mustApply(t, l, f, v)
			}
			before := l.Snapshots()
			f, v := tc.frame()
			next, _, err := l.Upgrade(f, v)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) || next != nil {
				t.Fatalf("Upgrade = %v, %v; want %v mentioning %q", next, err, tc.want, tc.text)
			}
			if !snapshotsEqual(before, l.Snapshots()) {
				t.Fatal("a rejected upgrade changed the learner")
			}
		})
	}
}

// TestUpgradeReplaySkipped: a newer-feature-set frame of a window the learner already applied (a cleaner that
// re-emitted windows after its upgrade) is skipped and leaves the learner in place, so that the successor's
// windows only go forward.
func TestUpgradeReplaySkipped(t *testing.T) {
	t.Parallel()
	l := mustLearner(t, namesV1, tinyConfig())
	for i := range 5 {
		applyAt(t, l, i, []float64{0.1, 0.2}, obs{flow: 100})
	}
	before := l.Snapshots()
	for _, i := range []int{4, 2} {
		f, v := frameV(i, 2, namesV2, []float64{0.1, 0.2, 0.3}, obs{flow: 100})
		next, up, err := l.Upgrade(f, v)
		if err != nil || next != l || !up.Skipped || up.Version != 5 {
			t.Fatalf("replayed window %d: %v, %+v, %v; want the same learner, skipped at version 5", i, next == l, up, err)
		}
	}
	if !snapshotsEqual(before, l.Snapshots()) {
		t.Fatal("a skipped upgrade changed the learner")
	}
}

// TestUpgradeRestartEquality: restoring the snapshots taken at any point of a stream that crosses a feature-set
// upgrade and replaying the frames from a few windows before that point (as the trainer does) ends with
// snapshots equal to an uninterrupted run's, whether the snapshots hold the old or the new feature set.
func TestUpgradeRestartEquality(t *testing.T) {
	t.Parallel()
	cfg, _ := restartFixture()
	rng := newRand(7)
	type fv struct {
		f features.Frame
		v features.Vector
	}
	var frames []fv
	for i := range 50 {
		a, b, c := rng.Float64(), rng.Float64(), rng.Float64()
		o := obs{flow: 1000 * (0.3 + 0.2*a - 0.1*b + 0.01*rng.NormFloat64()), missing: i%11 == 5}
		f, v := frameV(i, 1, namesV1, []float64{a, b}, o)
		if i >= 25 {
			f, v = frameV(i, 2, namesV2, []float64{a, b, c}, o)
		}
		frames = append(frames, fv{f, v})
		switch i {
		case 24:
			// An upgraded cleaner re-emitting a window already applied: skipped, no upgrade yet.
			f, v := frameV(23, 2, namesV2, []float64{a, b, c}, o)
			frames = append(frames, fv{f, v})
		case 30:
			frames = append(frames, frames[len(frames)-3]) // a replay after the upgrade
		}
	}
	run := func(l *Learner, fs []fv) *Learner {
		t.Helper()
		for _, x := range fs {
			var err error
			if l, _, err = applyOrUpgrade(l, x.f, x.v); err != nil {
				t.Fatalf("window %v: %v", x.f.WindowStart, err)
			}
		}
		return l
	}
	full := run(mustLearner(t, namesV1, cfg), frames)
	want := full.Snapshots()
	if full.FeatureSetVersion() != 2 || want[0].Version != 50 {
		t.Fatalf("uninterrupted run ends at feature set %d, version %d; want 2, 50", full.FeatureSetVersion(), want[0].Version)
	}
	for k := 1; k <= len(frames); k++ {
		l := run(mustLearner(t, namesV1, cfg), frames[:k])
		r, err := RestoreLearner(testIntersection, testApproach, roundTrip(t, l.Snapshots()), cfg)
		if err != nil {
			t.Fatalf("k=%d: restore: %v", k, err)
		}
		r = run(r, frames[max(0, k-4):])
		if got := r.Snapshots(); !snapshotsEqual(got, want) {
			t.Fatalf("k=%d: snapshots after restore and replay differ from the uninterrupted run (version %d, want %d)",
				k, got[0].Version, want[0].Version)
		}
	}
}
