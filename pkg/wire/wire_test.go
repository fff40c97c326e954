package wire

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/features"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

func TestFrameRoundTrip(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 2, 7, 0, 0, 0, time.UTC)
	f := features.Frame{
		IntersectionID: "I-1", WindowStart: start, WindowEnd: start.Add(5 * time.Minute), FeatureSetVersion: 1,
		Names: []string{"a", "b"}, Holiday: true,
		Weather: features.WeatherContext{StationID: "S", ObservedAt: start, TemperatureC: -2, HasTemperature: true},
		Approaches: []features.Vector{{ApproachID: "N", Values: []float64{1, 0.5}, ImputedFraction: 0.25, Readings: 9, CapacityVPH: 3600,
			Observed: features.Observed{FlowVPH: 720, Occupancy: 0.1, HasOccupancy: true}}},
	}
	b, err := proto.Marshal(FrameProto(f))
	if err != nil {
		t.Fatal(err)
	}
	var p greenwavev1.IntersectionFeatures
	if err := proto.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	got := Frame(&p)
	if got.IntersectionID != f.IntersectionID || !got.WindowStart.Equal(f.WindowStart) || got.Weather.TemperatureC != -2 ||
		!got.Weather.HasTemperature || got.Weather.HasPrecipitation || got.Approaches[0].Observed.FlowVPH != 720 ||
		!got.Approaches[0].Observed.HasOccupancy || got.Approaches[0].Observed.HasSpeed || got.Approaches[0].Readings != 9 {
		t.Errorf("round trip = %+v, want %+v", got, f)
	}
}

// TestFrameToleratesMissingParts: a record from another producer may omit weather or observed values; decoding
// must not panic and must treat them as missing.
func TestFrameToleratesMissingParts(t *testing.T) {
	t.Parallel()
	got := Frame(&greenwavev1.IntersectionFeatures{IntersectionId: "I-1", Approaches: []*greenwavev1.FeatureVector{{ApproachId: "N"}}})
	if !got.Weather.Missing || got.Approaches[0].Observed.HasOccupancy {
		t.Errorf("Frame() = %+v, want missing weather and no observations", got)
	}
}
