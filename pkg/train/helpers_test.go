package train

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/regression"
)

const (
	testIntersection = "i1"
	testApproach     = "north"
)

// base is a Monday-independent, week-aligned instant: 2800 weeks after the Unix epoch.
var base = time.Unix(2800*week, 0).UTC()

var tinyNames = []string{"bias", "a", "b"}

// obs describes the target of a test window.
type obs struct {
	flow    float64
	missing bool // imputed
	gap     bool
}

// frame returns a frame of window i (of windowS seconds after base) with one vector for testApproach.
func frame(windowS, i int, names []string, x []float64, o obs, capacity float64) (features.Frame, features.Vector) {
	start := base.Add(time.Duration(i*windowS) * time.Second)
	vals := append([]float64{1}, x...)
	if len(names) > 0 && names[0] != biasName {
		vals = x
	}
	v := features.Vector{
		ApproachID:  testApproach,
		Values:      vals,
		Observed:    features.Observed{FlowVPH: o.flow, Imputed: o.missing || o.gap},
		Gap:         o.gap,
		CapacityVPH: capacity,
	}
	f := features.Frame{
		IntersectionID:    testIntersection,
		WindowStart:       start,
		WindowEnd:         start.Add(time.Duration(windowS) * time.Second),
		FeatureSetVersion: 1,
		Names:             names,
		Approaches:        []features.Vector{v},
	}
	return f, v
}

// tinyConfig is a 5-minute configuration with small windows, for hand-checked tests.
func tinyConfig(horizons ...time.Duration) Config {
	if len(horizons) == 0 {
		horizons = []time.Duration{5 * time.Minute}
	}
	return Config{
		Horizons:           horizons,
		Candidates:         []CandidateSpec{{Name: "slow", RLS: regression.RLSConfig{Lambda: 1, Delta: 1000}}, {Name: "fast", RLS: regression.RLSConfig{Lambda: 0.9, Delta: 1000}}},
		MaxPending:         8,
		RecentWindow:       4,
		PromoteMargin:      0.05,
		Drift:              regression.PageHinkleyConfig{Delta: 0.01, Threshold: 5, MinSamples: 10},
		Target:             TargetFlow,
		WindowS:            300,
		IntervalConfidence: 0.9,
	}
}

func mustLearner(t testing.TB, names []string, cfg Config) *Learner {
	t.Helper()
	l, err := NewLearner(testIntersection, testApproach, names, 1, cfg)
	if err != nil {
		t.Fatalf("NewLearner: %v", err)
	}
	return l
}

func mustApply(t testing.TB, l *Learner, f features.Frame, v features.Vector) Update {
	t.Helper()
	u, err := l.Apply(f, v)
	if err != nil {
		t.Fatalf("Apply(%v): %v", f.WindowStart, err)
	}
	return u
}

func pendingStarts(s *greenwavev1.ModelSnapshot) []int64 {
	var out []int64
	for _, p := range s.GetPending() {
		out = append(out, (p.GetWindowStart().GetSeconds()-base.Unix())/300)
	}
	return out
}

func candidate(s *greenwavev1.ModelSnapshot, name string) *greenwavev1.Candidate {
	for _, c := range s.GetCandidates() {
		if c.GetName() == name {
			return c
		}
	}
	return nil
}

func snapshotsEqual(a, b []*greenwavev1.ModelSnapshot) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func roundTrip(t testing.TB, snaps []*greenwavev1.ModelSnapshot) []*greenwavev1.ModelSnapshot {
	t.Helper()
	out := make([]*greenwavev1.ModelSnapshot, len(snaps))
	for i, s := range snaps {
		b, err := proto.Marshal(s)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		out[i] = &greenwavev1.ModelSnapshot{}
		if err := proto.Unmarshal(b, out[i]); err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
	}
	return out
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

type (
	frameT  = features.Frame
	vectorT = features.Vector
	snapT   = greenwavev1.ModelSnapshot
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

// pendingForecasts returns pending input i's forecasts by forecaster name, without the absent (NaN) ones: what
// schema 1 kept in PendingInput.baseline_forecasts.
func pendingForecasts(s *snapT, i int) map[string]float64 {
	var names []string
	for _, c := range s.GetCandidates() {
		names = append(names, c.GetName())
	}
	names = append(names, baselineNames[:]...)
	out := map[string]float64{}
	for k, v := range s.GetPending()[i].GetForecasts() {
		if !math.IsNaN(v) {
			out[names[k]] = v
		}
	}
	return out
}
