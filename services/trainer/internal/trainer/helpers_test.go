package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// t0 is a Monday 00:00 UTC, aligned to every window.
var t0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

const windowS = 300

// frame returns intersection in's frame of window w with approaches approach ids, its flows following a daily
// profile with noise from rng. Values use the names and layout of pkg/features.
func frame(in string, w int, approaches []string, rng *rand.Rand) *greenwavev1.IntersectionFeatures {
	return frameWith(in, w, approaches, rng, features.SetVersion, features.Names())
}

// frameWith is frame with the given feature set: the features of pkg/features get their usual values, and any
// other name a value from rng.
func frameWith(in string, w int, approaches []string, rng *rand.Rand, fsv int, fn []string) *greenwavev1.IntersectionFeatures {
	start := t0.Add(time.Duration(w*windowS) * time.Second)
	f := &greenwavev1.IntersectionFeatures{
		SchemaVersion: wire.SchemaVersion, EventId: wire.FeaturesEventID(in, start), IntersectionId: in,
		WindowStart: timestamppb.New(start), WindowEnd: timestamppb.New(start.Add(windowS * time.Second)),
		FeatureSetVersion: uint32(fsv), FeatureNames: fn, Weather: &greenwavev1.WeatherContext{Missing: true},
	}
	h := float64(start.Hour()) + float64(start.Minute())/60
	for i, a := range approaches {
		r := math.Max(0, (0.1+0.5*math.Exp(-(h-8)*(h-8)/2)+0.4*math.Exp(-(h-17)*(h-17)/3))*(1+0.1*rng.NormFloat64()+0.05*float64(i)))
		v := make([]float64, len(fn))
		for j, n := range fn {
			switch n {
			case "bias", "occupancy_present", "speed_present", "lag1_present", "weather_missing":
				v[j] = 1
			case "flow_ratio":
				v[j] = r
			case "flow_ratio_lag1":
				v[j] = r * (1 + 0.05*rng.NormFloat64())
			case "occupancy":
				v[j] = math.Min(1, 0.6*r)
			case "speed_ratio":
				v[j] = 0.5 - 0.2*r
			case "tod_sin":
				v[j] = math.Sin(2 * math.Pi * h / 24)
			case "tod_cos":
				v[j] = math.Cos(2 * math.Pi * h / 24)
			case "extra_a", "extra_b": // the features the upgrade tests append
				v[j] = rng.Float64()
			}
		}
		f.Approaches = append(f.Approaches, &greenwavev1.FeatureVector{ApproachId: a, Values: v, Readings: 5, CapacityVph: 1800,
			Observed: &greenwavev1.ObservedTargets{FlowVph: 1800 * r, OccupancyRatio: proto.Float64(math.Min(1, 0.6*r))}})
	}
	return f
}

// messages encodes frames as consecutive records of one features partition.
func messages(t testing.TB, part int, frames ...*greenwavev1.IntersectionFeatures) []kafka.Message {
	t.Helper()
	out := make([]kafka.Message, len(frames))
	for i, f := range frames {
		b, err := proto.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = kafka.Message{Topic: "test.greenwave.features", Partition: part, Offset: int64(i), Key: []byte(f.GetIntersectionId()), Value: b}
	}
	return out
}

// testConfig is the default learner configuration (5-minute windows, horizons 15, 30 and 60 minutes).
func testConfig() train.Config { return train.DefaultConfig() }

// newTestPartition is an empty partition handler that does not check partition numbers.
func newTestPartition(names topics.Names) (*partition, *metrics) {
	m := newMetrics(prometheus.NewRegistry())
	return newPartition(0, 0, testConfig(), names, m, zap.NewNop()), m
}

// learnerSnapshots returns every learner's current snapshots by model id.
func learnerSnapshots(p *partition) map[string]*greenwavev1.ModelSnapshot {
	out := map[string]*greenwavev1.ModelSnapshot{}
	for _, l := range p.learners {
		for _, s := range l.Snapshots() {
			out[s.ModelID] = wire.SnapshotProto(s)
		}
	}
	return out
}

// approachIDs are n approach ids.
func approachIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("A%d", i)
	}
	return out
}

// testRegistry is a fresh registry, so parallel tests never share metrics.
func testRegistry() *prometheus.Registry { return prometheus.NewRegistry() }

// modelsStoreWith is a store holding a few small snapshots.
func modelsStoreWith() *models.Store {
	st := models.NewStore()
	for _, in := range []string{"I-1", "I-2"} {
		for _, ap := range []string{"N", "S"} {
			st.Put(wire.Snapshot(snap(in, ap, 900, greenwavev1.Target_TARGET_FLOW, 1)))
		}
	}
	return st
}
