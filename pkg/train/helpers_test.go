package train

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

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

func pendingStarts(s *Snapshot) []int64 {
	var out []int64
	for i := range s.Pending {
		p := &s.Pending[i]
		out = append(out, (p.WindowStart.Seconds-base.Unix())/300)
	}
	return out
}

func candidate(s *Snapshot, name string) *Candidate {
	for i := range s.Candidates {
		if s.Candidates[i].Name == name {
			return &s.Candidates[i]
		}
	}
	return nil
}

// snapshotsEqual compares snapshots as proto.Equal compares their messages: NaN equals NaN, an empty list or
// map equals an absent one, an absent sub-message differs from an empty one.
func snapshotsEqual(a, b []*Snapshot) bool {
	return len(a) == len(b) && valuesEqual(reflect.ValueOf(a), reflect.ValueOf(b))
}

func valuesEqual(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return valuesEqual(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !valuesEqual(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			v := b.MapIndex(k)
			if !v.IsValid() || !valuesEqual(a.MapIndex(k), v) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := range a.NumField() {
			if !valuesEqual(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Float64:
		x, y := a.Float(), b.Float()
		return x == y || (math.IsNaN(x) && math.IsNaN(y))
	}
	return a.Equal(b)
}

// roundTrip returns deep copies of snaps: what a restore reads back from a topic, sharing nothing with the
// snapshots given (the encoding itself is tested in pkg/wire).
func roundTrip(t testing.TB, snaps []*Snapshot) []*Snapshot {
	t.Helper()
	return deepCopy(reflect.ValueOf(snaps)).Interface().([]*Snapshot)
}

func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(deepCopy(v.Elem()))
		return out
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(deepCopy(v.Index(i)))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for _, k := range v.MapKeys() {
			out.SetMapIndex(k, deepCopy(v.MapIndex(k)))
		}
		return out
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		for i := range v.NumField() {
			out.Field(i).Set(deepCopy(v.Field(i)))
		}
		return out
	}
	return v
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

type (
	frameT  = features.Frame
	vectorT = features.Vector
	snapT   = Snapshot
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

// pendingForecasts returns pending input i's forecasts by forecaster name, without the absent (NaN) ones: what
// schema 1 kept in PendingInput.baseline_forecasts.
func pendingForecasts(s *snapT, i int) map[string]float64 {
	var names []string
	for i := range s.Candidates {
		c := &s.Candidates[i]
		names = append(names, c.Name)
	}
	names = append(names, baselineNames[:]...)
	out := map[string]float64{}
	for k, v := range s.Pending[i].Forecasts {
		if !math.IsNaN(v) {
			out[names[k]] = v
		}
	}
	return out
}
