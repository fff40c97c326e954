package wire

import (
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/clean"
	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/ingest"
	"github.com/greenwave-city/greenwave/pkg/topology"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// roundTrip marshals m and unmarshals it into a new message of its type.
func roundTrip[M proto.Message](t *testing.T, m M, into M) M {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
	return into
}

// TestPartialReadingsOnTheWire: a reading without a count keeps that through the gateway message, the readings
// topic and the collector's validation; a message from a sender that predates count_absent (a count of 0 is not
// sent) stays a counted 0; the collector refuses a reading with none of count, occupancy and speed on "count".
func TestPartialReadingsOnTheWire(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 30, 7, 55, 0, 0, time.UTC)
	speedOnly := clean.Reading{ID: "S1@1", IntersectionID: "I-1", ApproachID: "N", DetectorID: "N1", Start: start, IntervalS: 300,
		NoCount: true, SpeedKMH: 88.5, HasSpeed: true}
	if got := Reading(roundTrip(t, ReadingProto(speedOnly), &greenwavev1.TrafficReading{})); !reflect.DeepEqual(got, speedOnly) {
		t.Errorf("topic round trip = %+v, want %+v", got, speedOnly)
	}
	legacy := &greenwavev1.TrafficReading{SchemaVersion: 1, DetectorId: "N1", ObservedAt: timestamppb.New(start), IntervalS: 300}
	if got := Reading(roundTrip(t, legacy, &greenwavev1.TrafficReading{})); got.NoCount || got.Count != 0 {
		t.Errorf("legacy zero count decoded as %+v, want a counted 0", got)
	}
	in := ingest.TrafficReading{DetectorID: "N1", ObservedAt: ingest.At(start), IntervalS: 300, NoCount: true, OccupancyRatio: 0.2, HasOccupancy: true}
	if got := IngestTraffic(roundTrip(t, IngestTrafficProto(in), &greenwavev1.TrafficReading{})); !reflect.DeepEqual(got, in) {
		t.Errorf("gateway round trip = %+v, want %+v", got, in)
	}

	topo := topology.NewIndex(topology.Topology{Intersections: []topology.Intersection{stateTopo()}})
	now := start.Add(10 * time.Minute)
	ok := IngestTrafficProto(ingest.TrafficReading{DetectorID: "N1", ObservedAt: ingest.At(start), IntervalS: 300, NoCount: true, SpeedKMH: 90, HasSpeed: true})
	if v := ValidateTraffic(ok, topo, ingest.DefaultLimits(), now); v != nil || !ok.GetCountAbsent() || ok.GetFlowVph() != 0 || ok.GetIntersectionId() != "I-1" {
		t.Errorf("speed-only reading: violation %+v, message %v", v, ok)
	}
	none := IngestTrafficProto(ingest.TrafficReading{DetectorID: "N1", ObservedAt: ingest.At(start), IntervalS: 300, NoCount: true})
	if v := ValidateTraffic(none, topo, ingest.DefaultLimits(), now); v == nil || v.Reason != ingest.ReasonMissingField || v.Field != "count" {
		t.Errorf("reading with no quantity: violation %+v, want missing_field on count", v)
	}
}

// TestFrameFlowAbsent: a window without flow keeps Observed.NoFlow on the features topic; a frame written before
// flow_absent existed has a flow.
func TestFrameFlowAbsent(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 2, 7, 0, 0, 0, time.UTC)
	f := features.Frame{IntersectionID: "I-1", WindowStart: start, WindowEnd: start.Add(5 * time.Minute), FeatureSetVersion: features.SetVersion,
		Approaches: []features.Vector{{ApproachID: "N", CapacityVPH: 1800, Observed: features.Observed{NoFlow: true, SpeedKMH: 77, HasSpeed: true}}}}
	got := Frame(roundTrip(t, FrameProto(f), &greenwavev1.IntersectionFeatures{}))
	if o := got.Approaches[0].Observed; !o.NoFlow || o.SpeedKMH != 77 || !o.HasSpeed {
		t.Errorf("observed = %+v, want no flow and speed 77", o)
	}
	old := &greenwavev1.IntersectionFeatures{Approaches: []*greenwavev1.FeatureVector{{ApproachId: "N", Observed: &greenwavev1.ObservedTargets{}}}}
	if o := Frame(roundTrip(t, old, &greenwavev1.IntersectionFeatures{})).Approaches[0].Observed; o.NoFlow {
		t.Errorf("legacy zero flow decoded as %+v, want a flow of 0", o)
	}
}

// TestCleanerStateKeepsNoCount: a buffered reading without a count survives the checkpoint: the restored
// intersection emits the same speed-only window as the one that never stopped.
func TestCleanerStateKeepsNoCount(t *testing.T) {
	t.Parallel()
	s, err := clean.NewIntersection(stateTopo(), clean.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 2, 7, 0, 0, 0, time.UTC)
	for _, d := range []string{"N1", "N2"} {
		r := clean.Reading{IntersectionID: "I-1", ApproachID: "N", DetectorID: d, Start: start, IntervalS: 300, NoCount: true, SpeedKMH: 64, HasSpeed: true}
		if res := s.Add(r, nil); len(res.Rejected) != 0 {
			t.Fatalf("rejected %+v", res.Rejected)
		}
	}
	b, err := MarshalCleaner(s)
	if err != nil {
		t.Fatal(err)
	}
	restored, err := RestoreCleaner(stateTopo(), clean.DefaultConfig(), b)
	if err != nil {
		t.Fatal(err)
	}
	want, got := s.Flush(nil).Frames, restored.Flush(nil).Frames
	if len(want) != 1 || !reflect.DeepEqual(got, want) {
		t.Fatalf("restored frames %+v, want %+v", got, want)
	}
	if o := got[0].Approaches[0].Observed; !o.NoFlow || o.SpeedKMH != 64 || got[0].Approaches[0].Gap {
		t.Errorf("approach N observed %+v, want speed 64 without flow", o)
	}
}
