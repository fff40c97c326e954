package predictor

import (
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/congestion"
	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

var (
	testNames    = []string{"bias", "a", "b"}
	testHorizons = []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour}
	epoch        = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	flowTarget   = target{"flow", greenwavev1.Target_TARGET_FLOW}
)

// testFrame is window i of intersection "i1" with approaches "n" (capacity 1000) and "s" (capacity 500).
func testFrame(i int) features.Frame {
	start := epoch.Add(time.Duration(i) * 5 * time.Minute)
	a, b := float64(i%7)/7, float64(i%5)/5
	vec := func(id string, capacity float64) features.Vector {
		y := capacity * (0.3 + 0.4*a - 0.1*b + 0.01*float64(i%3))
		return features.Vector{ApproachID: id, Values: []float64{1, a, b}, CapacityVPH: capacity, Readings: 5,
			Observed: features.Observed{FlowVPH: y, SpeedKMH: 40, HasSpeed: true}}
	}
	return features.Frame{IntersectionID: "i1", WindowStart: start, WindowEnd: start.Add(5 * time.Minute), FeatureSetVersion: 1,
		Names: testNames, Approaches: []features.Vector{vec("n", 1000), vec("s", 500)}}
}

// trainedStore returns a store with the snapshots of learners of both approaches after windows [0, n).
func trainedStore(t testing.TB, n int) *models.Store {
	t.Helper()
	return trainedStoreOf(t, "i1", n)
}

// trainedStoreOf is trainedStore for the models of another intersection (learned from testFrame's data).
func trainedStoreOf(t testing.TB, intersection string, n int) *models.Store {
	t.Helper()
	cfg := train.DefaultConfig()
	cfg.Candidates = cfg.Candidates[:2]
	store := models.NewStore()
	for _, ap := range []string{"n", "s"} {
		l, err := train.NewLearner(intersection, ap, testNames, 1, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			f := testFrame(i)
			f.IntersectionID = intersection
			for _, v := range f.Approaches {
				if v.ApproachID == ap {
					if _, err := l.Apply(f, v); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		for _, s := range l.Snapshots() {
			store.Put(s)
		}
	}
	return store
}

func newTestPredictor(store *models.Store, maxAge time.Duration) *Predictor {
	return &Predictor{models: store, horizons: newHorizonRule(testHorizons), targets: []target{flowTarget}, maxAge: maxAge, confidence: 0.9, classify: congestion.DefaultClassifier()}
}

func TestPredictModelAge(t *testing.T) {
	t.Parallel()
	store := trainedStore(t, 60) // last window 59: updated at the end of window 59
	tests := []struct {
		name      string
		window    int
		maxAge    time.Duration
		wantStale bool
		wantAge   time.Duration
	}{
		{"fresh model", 60, 2 * time.Hour, false, 5 * time.Minute},
		{"exactly the maximum age", 83, 2 * time.Hour, false, 2 * time.Hour},
		{"one window past the maximum age", 84, 2 * time.Hour, true, 2*time.Hour + 5*time.Minute},
		{"short maximum age", 62, 10 * time.Minute, true, 15 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newTestPredictor(store, tt.maxAge).Predict(testFrame(tt.window))
			n := 0
			for _, ap := range p.GetApproaches() {
				for _, h := range ap.GetHorizons() {
					n++
					if h.GetFallback() {
						t.Fatalf("%s/%d: fallback, want a trained model", ap.GetApproachId(), h.GetHorizonS())
					}
					if h.GetStale() != tt.wantStale || h.GetModelAge().AsDuration() != tt.wantAge {
						t.Errorf("%s/%d: stale %v age %v, want %v %v", ap.GetApproachId(), h.GetHorizonS(), h.GetStale(), h.GetModelAge().AsDuration(), tt.wantStale, tt.wantAge)
					}
				}
			}
			if n != 2*len(testHorizons) {
				t.Fatalf("%d forecasts, want %d", n, 2*len(testHorizons))
			}
		})
	}
}

func TestPredictFallbackAndCoverage(t *testing.T) {
	t.Parallel()
	t.Run("no model", func(t *testing.T) {
		t.Parallel()
		f := testFrame(3)
		p := newTestPredictor(models.NewStore(), time.Hour).Predict(f)
		for i, ap := range p.GetApproaches() {
			for _, h := range ap.GetHorizons() {
				v := f.Approaches[i]
				if !h.GetFallback() || h.GetValue() != v.Observed.FlowVPH || h.GetLower() != 0 || h.GetUpper() != v.CapacityVPH || h.GetModelVersion() != 0 {
					t.Errorf("%s/%d: %v, want a persistence fallback", ap.GetApproachId(), h.GetHorizonS(), h)
				}
			}
		}
	})
	t.Run("no model, no flow measured", func(t *testing.T) {
		t.Parallel()
		f := testFrame(3)
		for i := range f.Approaches {
			f.Approaches[i].Observed.FlowVPH, f.Approaches[i].Observed.NoFlow = 0, true
		}
		pr := newTestPredictor(models.NewStore(), time.Hour)
		pr.targets = []target{flowTarget, {"speed", greenwavev1.Target_TARGET_SPEED}}
		for _, ap := range pr.Predict(f).GetApproaches() {
			for _, h := range ap.GetHorizons() {
				if h.GetTarget() != greenwavev1.Target_TARGET_SPEED {
					t.Errorf("%s: %v, want no flow forecast (speed-only sensors: no flow to persist)", ap.GetApproachId(), h)
				}
			}
			if len(ap.GetHorizons()) != len(testHorizons) {
				t.Errorf("%s: %d forecasts, want the %d speed ones", ap.GetApproachId(), len(ap.GetHorizons()), len(testHorizons))
			}
		}
	})
	t.Run("coverage copied from the model", func(t *testing.T) {
		t.Parallel()
		store := trainedStore(t, 200)
		p := newTestPredictor(store, time.Hour).Predict(testFrame(200))
		for _, ap := range p.GetApproaches() {
			for _, h := range ap.GetHorizons() {
				snap, _ := store.Get(h.GetModelId())
				c, _ := train.CoverageOf(snap)
				if c.RecentN == 0 || h.GetIntervalCoverage() != c.Recent() || h.GetModelVersion() != snap.Version {
					t.Errorf("%s: coverage %g version %d, model %+v version %d", h.GetModelId(), h.GetIntervalCoverage(), h.GetModelVersion(), c, snap.Version)
				}
				if !(h.GetLower() <= h.GetValue() && h.GetValue() <= h.GetUpper()) || len(h.GetContributions()) == 0 {
					t.Errorf("%s: %v lacks an interval around the value or contributions", h.GetModelId(), h)
				}
			}
		}
	})
	t.Run("coverage at another confidence is not served", func(t *testing.T) {
		t.Parallel()
		pr := newTestPredictor(trainedStore(t, 200), time.Hour)
		pr.confidence = 0.8
		for _, ap := range pr.Predict(testFrame(200)).GetApproaches() {
			for _, h := range ap.GetHorizons() {
				if h.GetIntervalCoverage() != 0 {
					t.Errorf("%s: coverage %g of 90 %% intervals served with 80 %% intervals", h.GetModelId(), h.GetIntervalCoverage())
				}
			}
		}
	})
}

func TestPredictLevels(t *testing.T) {
	t.Parallel()
	f := testFrame(3)
	f.Approaches[0].Observed.FlowVPH = 500 // n: 0.5 → free
	f.Approaches[1].Observed.FlowVPH = 475 // s: 0.95 → heavy
	pr := newTestPredictor(models.NewStore(), time.Hour)
	pr.targets = []target{flowTarget, {"speed", greenwavev1.Target_TARGET_SPEED}, {"occupancy", greenwavev1.Target_TARGET_OCCUPANCY}}
	p := pr.Predict(f)
	if p.GetLevel() != greenwavev1.CongestionLevel_CONGESTION_LEVEL_HEAVY || p.GetLevelOfService() != "E" {
		t.Fatalf("intersection level %v %q, want HEAVY E (the worst approach)", p.GetLevel(), p.GetLevelOfService())
	}
	for _, ap := range p.GetApproaches() {
		var speeds, occs int
		for _, h := range ap.GetHorizons() {
			switch h.GetTarget() {
			case greenwavev1.Target_TARGET_SPEED:
				speeds++
				if h.GetLevel() != greenwavev1.CongestionLevel_CONGESTION_LEVEL_FREE || h.GetLevelOfService() != "B" || h.GetDegreeOfSaturation() != 0 {
					t.Errorf("speed 40 of 50 km/h: %v", h)
				}
			case greenwavev1.Target_TARGET_OCCUPANCY:
				occs++
			}
		}
		if speeds != len(testHorizons) || occs != 0 {
			t.Errorf("%s: %d speed and %d occupancy forecasts, want %d and none (occupancy not measured)", ap.GetApproachId(), speeds, occs, len(testHorizons))
		}
	}
}

// TestReplayIdempotent: a frame predicted again gives the same record with the same id; after the models
// learned, the same id with the newer model's version.
func TestReplayIdempotent(t *testing.T) {
	t.Parallel()
	store := trainedStore(t, 100)
	pr := newTestPredictor(store, time.Hour)
	f := testFrame(100)
	first := pr.Predict(f)
	again := pr.Predict(testFrame(100))
	if !proto.Equal(first, again) {
		t.Fatal("a replayed frame gave a different prediction")
	}
	wire, err := proto.MarshalOptions{Deterministic: true}.Marshal(first)
	if err != nil {
		t.Fatal(err)
	}
	wire2, _ := proto.MarshalOptions{Deterministic: true}.Marshal(again)
	if string(wire) != string(wire2) {
		t.Fatal("a replayed frame gave different bytes")
	}
	newer := newTestPredictor(trainedStore(t, 110), time.Hour).Predict(testFrame(100))
	if newer.GetEventId() != first.GetEventId() {
		t.Fatalf("event id %q after the models learned, want %q", newer.GetEventId(), first.GetEventId())
	}
	h0, h1 := first.GetApproaches()[0].GetHorizons()[0], newer.GetApproaches()[0].GetHorizons()[0]
	if h1.GetModelVersion() <= h0.GetModelVersion() {
		t.Fatalf("model version %d after learning, first %d", h1.GetModelVersion(), h0.GetModelVersion())
	}
	if math.IsNaN(h1.GetValue()) {
		t.Fatal("NaN forecast")
	}
}

// TestPredictNoData checks that an approach is flagged no_data (a failed detector) only when its window is a gap
// and no fresh trained model forecasts its flow: measured or filled data, or a fresh model, clear the flag.
func TestPredictNoData(t *testing.T) {
	t.Parallel()
	trained := trainedStore(t, 60) // fresh at window 60, stale from window 84 with a 2 h maximum age
	gap := func(f features.Frame, id string) features.Frame {
		for i := range f.Approaches {
			if f.Approaches[i].ApproachID == id {
				f.Approaches[i].Gap = true
				f.Approaches[i].Observed = features.Observed{Imputed: true}
				f.Approaches[i].ImputedFraction = 0
			}
		}
		return f
	}
	imputed := func(f features.Frame, id string) features.Frame {
		for i := range f.Approaches {
			if f.Approaches[i].ApproachID == id {
				f.Approaches[i].Observed.Imputed = true
				f.Approaches[i].ImputedFraction = 1
			}
		}
		return f
	}
	tests := []struct {
		name   string
		store  *models.Store
		frame  features.Frame
		wantND map[string]bool
	}{
		{"measured, no model", models.NewStore(), testFrame(3), map[string]bool{"n": false, "s": false}},
		{"gap, no model (never reported)", models.NewStore(), gap(testFrame(3), "s"), map[string]bool{"n": false, "s": true}},
		{"filled (imputed, not a gap), no model", models.NewStore(), imputed(testFrame(3), "s"), map[string]bool{"n": false, "s": false}},
		{"gap, fresh model", trained, gap(testFrame(60), "s"), map[string]bool{"n": false, "s": false}},
		{"gap, stale model (silent longer than the maximum age)", trained, gap(testFrame(84), "s"), map[string]bool{"n": false, "s": true}},
		{"both gaps, no model", models.NewStore(), gap(gap(testFrame(3), "n"), "s"), map[string]bool{"n": true, "s": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newTestPredictor(tt.store, 2*time.Hour).Predict(tt.frame)
			if len(p.GetApproaches()) != len(tt.wantND) {
				t.Fatalf("%d approaches, want %d", len(p.GetApproaches()), len(tt.wantND))
			}
			for _, ap := range p.GetApproaches() {
				if got, want := ap.GetNoData(), tt.wantND[ap.GetApproachId()]; got != want {
					t.Errorf("%s: no_data %v, want %v", ap.GetApproachId(), got, want)
				}
				if len(ap.GetHorizons()) == 0 {
					t.Errorf("%s: no flow forecast; a failed detector still gets its (baseline) forecasts", ap.GetApproachId())
				}
			}
		})
	}
}

// TestPredictCarriesWeather: a prediction carries its frame's weather exactly as the features record has it.
func TestPredictCarriesWeather(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		w    features.WeatherContext
	}{
		{"missing", features.WeatherContext{StationID: "S", Missing: true}},
		{"observed", features.WeatherContext{StationID: "S", ObservedAt: epoch, TemperatureC: -3, HasTemperature: true,
			PrecipitationMMH: 0, HasPrecipitation: true, VisibilityM: 400, HasVisibility: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := testFrame(3)
			f.Weather = tc.w
			got := newTestPredictor(models.NewStore(), time.Hour).Predict(f).GetWeather()
			if want := wire.FrameProto(f).GetWeather(); !proto.Equal(got, want) {
				t.Fatalf("prediction weather %v, want the frame's %v", got, want)
			}
		})
	}
}
