// Package wire is the only code that knows protobuf. It declares every topic once (topic.go: name, payload
// message, key and event-id rules, schema version, encoding), holds the state formats of the changelogs, and
// converts between the protobuf contracts and the pure domain types of pkg/clean, pkg/features, pkg/ingest,
// pkg/sim, pkg/train and pkg/signal, so services stay thin and every service converts the same way. Enum
// mappings are tables whose tests fail when a value is added on one side only.
package wire

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/features"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func tm(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func opt(has bool, v float64) *float64 {
	if !has {
		return nil
	}
	return proto.Float64(v)
}

// Reading converts a topic reading to the cleaner's domain type.
func Reading(r *greenwavev1.TrafficReading) clean.Reading {
	return clean.Reading{
		ID: r.GetReadingId(), IntersectionID: r.GetIntersectionId(), ApproachID: r.GetApproachId(), DetectorID: r.GetDetectorId(),
		Start: tm(r.GetObservedAt()), IntervalS: int(r.GetIntervalS()), Count: r.GetCount(), FlowVPH: r.GetFlowVph(),
		NoCount: r.GetCountAbsent(), Occupancy: r.GetOccupancyRatio(), HasOccupancy: r.OccupancyRatio != nil,
		SpeedKMH: r.GetSpeedKmh(), HasSpeed: r.SpeedKmh != nil,
	}
}

// ReadingProto converts a domain reading back to the topic type (for dead letters of buffered readings).
func ReadingProto(r clean.Reading) *greenwavev1.TrafficReading {
	return &greenwavev1.TrafficReading{
		SchemaVersion: SchemaVersion, ReadingId: r.ID, IntersectionId: r.IntersectionID, ApproachId: r.ApproachID,
		DetectorId: r.DetectorID, ObservedAt: ts(r.Start), IntervalS: uint32(max(0, r.IntervalS)), Count: r.Count, FlowVph: r.FlowVPH,
		CountAbsent: r.NoCount, OccupancyRatio: opt(r.HasOccupancy, r.Occupancy), SpeedKmh: opt(r.HasSpeed, r.SpeedKMH),
	}
}

// Weather converts a topic weather observation to the domain type.
func Weather(w *greenwavev1.WeatherReading) clean.Weather {
	return clean.Weather{
		ID: w.GetReadingId(), StationID: w.GetStationId(), ObservedAt: tm(w.GetObservedAt()),
		TemperatureC: w.GetTemperatureC(), HasTemperature: w.TemperatureC != nil,
		PrecipitationMMH: w.GetPrecipitationMmH(), HasPrecipitation: w.PrecipitationMmH != nil,
		SnowMMH: w.GetSnowMmH(), HasSnow: w.SnowMmH != nil,
		CloudCoverRatio: w.GetCloudCoverRatio(), HasCloudCover: w.CloudCoverRatio != nil,
		VisibilityM: w.GetVisibilityM(), HasVisibility: w.VisibilityM != nil,
		Condition: w.GetCondition(),
	}
}

// WeatherProto converts a domain weather observation to the topic type.
func WeatherProto(w clean.Weather) *greenwavev1.WeatherReading {
	return &greenwavev1.WeatherReading{
		SchemaVersion: SchemaVersion, ReadingId: w.ID, StationId: w.StationID, ObservedAt: ts(w.ObservedAt),
		TemperatureC: opt(w.HasTemperature, w.TemperatureC), PrecipitationMmH: opt(w.HasPrecipitation, w.PrecipitationMMH),
		SnowMmH: opt(w.HasSnow, w.SnowMMH), CloudCoverRatio: opt(w.HasCloudCover, w.CloudCoverRatio),
		VisibilityM: opt(w.HasVisibility, w.VisibilityM), Condition: w.Condition,
	}
}

// FeaturesEventID is the deterministic event id of an intersection's window.
func FeaturesEventID(intersection string, windowStart time.Time) string {
	return fmt.Sprintf("%s/%d", intersection, windowStart.Unix())
}

// FrameProto converts a closed window to the features topic message.
func FrameProto(f features.Frame) *greenwavev1.IntersectionFeatures {
	out := &greenwavev1.IntersectionFeatures{
		SchemaVersion: SchemaVersion, EventId: FeaturesEventID(f.IntersectionID, f.WindowStart),
		IntersectionId: f.IntersectionID, WindowStart: ts(f.WindowStart), WindowEnd: ts(f.WindowEnd),
		FeatureSetVersion: uint32(f.FeatureSetVersion), FeatureNames: f.Names, Holiday: f.Holiday,
		Weather: WeatherContextProto(f.Weather),
	}
	for _, v := range f.Approaches {
		out.Approaches = append(out.Approaches, &greenwavev1.FeatureVector{
			ApproachId: v.ApproachID, Values: v.Values, ImputedFraction: v.ImputedFraction,
			Readings: uint32(v.Readings), FlaggedOutliers: uint32(v.FlaggedOutliers), Gap: v.Gap, CapacityVph: v.CapacityVPH,
			Observed: ObservedProto(v.Observed),
		})
	}
	return out
}

// WeatherContextProto converts the weather joined to a window, as frames and predictions carry it: a value
// its observation lacks stays unset, never zero.
func WeatherContextProto(w features.WeatherContext) *greenwavev1.WeatherContext {
	return &greenwavev1.WeatherContext{
		StationId: w.StationID, Missing: w.Missing, ObservedAt: ts(w.ObservedAt),
		TemperatureC: opt(w.HasTemperature, w.TemperatureC), PrecipitationMmH: opt(w.HasPrecipitation, w.PrecipitationMMH),
		SnowMmH: opt(w.HasSnow, w.SnowMMH), VisibilityM: opt(w.HasVisibility, w.VisibilityM),
	}
}

// ObservedProto converts an approach's observed targets.
func ObservedProto(o features.Observed) *greenwavev1.ObservedTargets {
	return &greenwavev1.ObservedTargets{
		FlowVph: o.FlowVPH, FlowAbsent: o.NoFlow, OccupancyRatio: opt(o.HasOccupancy, o.Occupancy),
		SpeedKmh: opt(o.HasSpeed, o.SpeedKMH), Imputed: o.Imputed,
	}
}

// Frame converts a features topic message back to the domain type (what the trainer and predictor use).
func Frame(p *greenwavev1.IntersectionFeatures) features.Frame {
	w := p.GetWeather()
	if w == nil { // a frame without weather context: treat it as missing, never as a zero observation
		w = &greenwavev1.WeatherContext{Missing: true}
	}
	f := features.Frame{
		IntersectionID: p.GetIntersectionId(), WindowStart: tm(p.GetWindowStart()), WindowEnd: tm(p.GetWindowEnd()),
		FeatureSetVersion: int(p.GetFeatureSetVersion()), Names: p.GetFeatureNames(), Holiday: p.GetHoliday(),
		Weather: features.WeatherContext{
			StationID: w.GetStationId(), Missing: w.GetMissing(), ObservedAt: tm(w.GetObservedAt()),
			TemperatureC: w.GetTemperatureC(), HasTemperature: w.TemperatureC != nil,
			PrecipitationMMH: w.GetPrecipitationMmH(), HasPrecipitation: w.PrecipitationMmH != nil,
			SnowMMH: w.GetSnowMmH(), HasSnow: w.SnowMmH != nil,
			VisibilityM: w.GetVisibilityM(), HasVisibility: w.VisibilityM != nil,
		},
	}
	for _, v := range p.GetApproaches() {
		o := v.GetObserved()
		if o == nil {
			o = &greenwavev1.ObservedTargets{}
		}
		f.Approaches = append(f.Approaches, features.Vector{
			ApproachID: v.GetApproachId(), Values: v.GetValues(), ImputedFraction: v.GetImputedFraction(),
			Readings: int(v.GetReadings()), FlaggedOutliers: int(v.GetFlaggedOutliers()), Gap: v.GetGap(), CapacityVPH: v.GetCapacityVph(),
			Observed: features.Observed{
				FlowVPH: o.GetFlowVph(), NoFlow: o.GetFlowAbsent(), Occupancy: o.GetOccupancyRatio(), HasOccupancy: o.OccupancyRatio != nil,
				SpeedKMH: o.GetSpeedKmh(), HasSpeed: o.SpeedKmh != nil, Imputed: o.GetImputed(),
			},
		})
	}
	return f
}
