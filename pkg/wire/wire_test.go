package wire

import (
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/signal"
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

// TestWeatherContextProto: a frame's weather converts to the record the features topic and predictions carry,
// with the values its observation lacks unset, and decodes back to itself.
func TestWeatherContextProto(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 2, 7, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		w    features.WeatherContext
		want *greenwavev1.WeatherContext
	}{
		{"missing", features.WeatherContext{StationID: "S", Missing: true}, &greenwavev1.WeatherContext{StationId: "S", Missing: true}},
		{"some values", features.WeatherContext{StationID: "S", ObservedAt: at, TemperatureC: -2, HasTemperature: true, SnowMMH: 0, HasSnow: true},
			&greenwavev1.WeatherContext{StationId: "S", ObservedAt: ts(at), TemperatureC: proto.Float64(-2), SnowMmH: proto.Float64(0)}},
		{"every value", features.WeatherContext{StationID: "S", ObservedAt: at, TemperatureC: 20, HasTemperature: true,
			PrecipitationMMH: 1.5, HasPrecipitation: true, SnowMMH: 0.5, HasSnow: true, VisibilityM: 800, HasVisibility: true},
			&greenwavev1.WeatherContext{StationId: "S", ObservedAt: ts(at), TemperatureC: proto.Float64(20),
				PrecipitationMmH: proto.Float64(1.5), SnowMmH: proto.Float64(0.5), VisibilityM: proto.Float64(800)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := WeatherContextProto(tc.w)
			if !proto.Equal(got, tc.want) {
				t.Fatalf("WeatherContextProto = %v, want %v", got, tc.want)
			}
			if fp := FrameProto(features.Frame{Weather: tc.w}).GetWeather(); !proto.Equal(fp, got) {
				t.Errorf("FrameProto's weather = %v, want %v", fp, got)
			}
			if back := Frame(&greenwavev1.IntersectionFeatures{Weather: got}).Weather; back != tc.w {
				t.Errorf("decoded back = %+v, want %+v", back, tc.w)
			}
		})
	}
}

// TestPlanRoundTrip checks that a plan survives the wire, its actuation bounds and gap-out included, and that a
// plan without bounds stays without.
func TestPlanRoundTrip(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 11, 2, 7, 0, 0, 0, time.UTC)
	bounded := signal.Plan{IntersectionID: "I-1", CycleS: 90, OffsetS: 12, Reason: signal.ReasonPredictive, Detail: "d",
		Y: 0.6, LostTimeS: 10, SaturationFactor: 0.9, EstimatedDelayS: 21, GapOutS: 2.2,
		Phases: []signal.PhaseTiming{
			{PhaseID: "NS", GreenS: 45, YellowS: 3, AllRedS: 2, FlowRatio: 0.35, Approaches: []string{"N", "S"}, MinGreenS: 7, MaxGreenS: 60},
			{PhaseID: "EW", GreenS: 35, YellowS: 3, AllRedS: 2, FlowRatio: 0.25, Approaches: []string{"E", "W"}, MinGreenS: 5, MaxGreenS: 47.5},
		}}
	fixed := bounded
	fixed.GapOutS = 0
	fixed.Phases = []signal.PhaseTiming{bounded.Phases[0], bounded.Phases[1]}
	for i := range fixed.Phases {
		fixed.Phases[i].MinGreenS, fixed.Phases[i].MaxGreenS = 0, 0
	}
	for _, want := range []signal.Plan{bounded, fixed} {
		b, err := proto.Marshal(PlanProto(want, "I-1@1", from, from.Add(15*time.Minute), nil, "", "rev"))
		if err != nil {
			t.Fatal(err)
		}
		var p greenwavev1.SignalPlan
		if err := proto.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		if got := Plan(&p); !reflect.DeepEqual(got, want) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
		}
	}
}
