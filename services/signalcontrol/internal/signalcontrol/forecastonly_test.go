package signalcontrol

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/greenwave-city/greenwave/pkg/stream"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// forecastOnlyTopology adds to testTopology a forecast-only site F (as `greenwave topology import --format csv`
// writes them): approaches and detectors, no phases.
const forecastOnlyTopology = testTopology + `  - id: F
    forecast_only: true
    approaches:
      - {id: N, lanes: 1, saturation_flow_vph_per_lane: 1800, detectors: [F-N]}
      - {id: E, lanes: 1, saturation_flow_vph_per_lane: 1800, detectors: [F-E]}
`

// TestForecastOnlyIntersection: signal-control starts with a forecast-only intersection, plans nothing for its
// predictions (without rejecting them) and refuses overrides for it.
func TestForecastOnlyIntersection(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, forecastOnlyTopology)
	prod := stream.NewProducer(h.kafkaConn, stream.ProducerConfig{})
	defer prod.Close()
	// F's prediction goes first on A's partition, so it has been handled once A's plan is out.
	f := h.prediction("F", 0)
	f.Key = []byte("A")
	if err := prod.Write(context.Background(), f, h.prediction("A", 0)); err != nil {
		t.Fatal(err)
	}
	h.planFor(0)
	if _, err := h.client.GetPlan(withToken(goodToken), &greenwavev1.GetPlanRequest{IntersectionId: "F"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetPlan(F) = %v, want NotFound: a forecast-only intersection has no plan", err)
	}
	// Not a rejection either: a prediction for a site without signals is expected input.
	for part := range 2 {
		if err := stream.ReadPartition(context.Background(), h.kafkaConn, h.names.DeadLetters, part, func(m kafka.Message) error {
			t.Errorf("dead letter %s", m.Value)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := h.client.SetOverride(withToken(goodToken), &greenwavev1.SetOverrideRequest{IntersectionId: "F",
		Mode: greenwavev1.PlanMode_PLAN_MODE_FIXED_TIME, Ttl: durationpb.New(time.Hour)})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("SetOverride(F) = %v, want INVALID_ARGUMENT", err)
	}
}
