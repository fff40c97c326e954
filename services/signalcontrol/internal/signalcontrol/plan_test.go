package signalcontrol

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// TestPlanTextDescribesAppliedPlan: on the example corridor (High St, common cycle 90 s), a predictive plan's
// text states the common cycle and its offset, and a fixed-time fallback's text — a 70-s cycle at offset 0 —
// says it is not coordinated instead of claiming the corridor's timing.
func TestPlanTextDescribesAppliedPlan(t *testing.T) {
	t.Parallel()
	topo, err := topology.Load("../../../../config/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	coord, err := newCoordination(topo)
	if err != nil {
		t.Fatal(err)
	}
	pl := &Planner{topo: topology.NewIndex(topo), revision: topo.Revision, horizon: 15 * time.Minute, validity: 15 * time.Minute,
		gate: signal.DefaultGate(), zone: time.UTC, minSamples: 3, coordination: coord}
	const id = "I-101"
	in, _ := pl.topo.Intersection(id)
	co := coord[id]
	prediction := func(stale bool) *greenwavev1.IntersectionPrediction {
		start := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
		p := &greenwavev1.IntersectionPrediction{SchemaVersion: wire.SchemaVersion, EventId: "e", IntersectionId: id,
			WindowStart: timestamppb.New(start), WindowEnd: timestamppb.New(start.Add(5 * time.Minute)), Weather: &greenwavev1.WeatherContext{Missing: true}}
		for _, a := range in.Approaches {
			p.Approaches = append(p.Approaches, &greenwavev1.ApproachPrediction{ApproachId: a.ID,
				Horizons: []*greenwavev1.Prediction{{HorizonS: 900, Value: 400, Lower: 350, Upper: 450, Stale: stale}}})
		}
		return p
	}
	running := &intersectionState{Plan: &greenwavev1.SignalPlan{CycleS: co.cycleS}} // no rate limit in the way
	tests := []struct {
		name   string
		stale  bool
		reason greenwavev1.PlanReason
		want   string
	}{
		{"predictive", false, greenwavev1.PlanReason_PLAN_REASON_PREDICTIVE, "corridor high-st: common cycle 90s, offset 40s"},
		{"fixed-time fallback", true, greenwavev1.PlanReason_PLAN_REASON_FIXED_TIME, "corridor high-st: not coordinated, this plan runs cycle 70s at offset 0"},
	}
	for _, tt := range tests {
		res, err := pl.Plan(prediction(tt.stale), running, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := res.plan
		if p.GetReason() != tt.reason || !strings.Contains(p.GetReasonDetail(), tt.want) {
			t.Errorf("%s: %s plan, cycle %g offset %g: %q, want %s and %q", tt.name, p.GetReason(), p.GetCycleS(), p.GetOffsetS(), p.GetReasonDetail(), tt.reason, tt.want)
		}
		if tt.stale && strings.Contains(p.GetReasonDetail(), "common cycle 90s, offset") {
			t.Errorf("%s: text claims the corridor's timing: %q", tt.name, p.GetReasonDetail())
		}
	}
}

// TestFinalGate: the final validation of the domain plan publishes what validating the converted message did (a
// valid plan as is, with its override; an invalid one replaced by the fixed-time plan, the record's id, times,
// inputs and source kept and no override named).
func TestFinalGate(t *testing.T) {
	t.Parallel()
	topo, err := topology.Load("../../../../config/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pl := &Planner{topo: topology.NewIndex(topo), revision: topo.Revision}
	in, _ := pl.topo.Intersection("I-101")
	valid, err := signal.Decide(in, signal.DecideInput{Mode: signal.ModeFixedTime})
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 11, 30, 8, 5, 0, 0, time.FixedZone("X", 3600))
	rec := planRecord{id: "I-101/1", validFrom: from, validUntil: from.Add(15 * time.Minute),
		inputs: []*greenwavev1.PlanInput{{ApproachId: "N", FlowVph: 400}}, sourceEventID: "e", overrideID: "ov-1"}
	longer := valid
	longer.CycleS += 10
	badPhase := valid
	badPhase.Phases = append([]signal.PhaseTiming(nil), valid.Phases...)
	badPhase.Phases[0].YellowS++
	tests := []struct {
		name         string
		plan         signal.Plan
		wantRepaired bool
	}{
		{"valid", valid, false},
		{"cycle is not the phases' sum", longer, true},
		{"yellow not the configured one", badPhase, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			causes := []signal.Cause{"stale"}
			res, err := pl.finalGate(in, tc.plan, rec, causes)
			if err != nil {
				t.Fatal(err)
			}
			// What the gate published when it validated the converted message.
			want := wire.PlanProto(tc.plan, rec.id, rec.validFrom, rec.validUntil, rec.inputs, rec.sourceEventID, pl.revision)
			want.OverrideId = rec.overrideID
			if verr := signal.Validate(in, wire.Plan(want)); verr != nil {
				safe, err := signal.Safe(in, signal.Plan{}, fmt.Errorf("final validation: %w", verr))
				if err != nil {
					t.Fatal(err)
				}
				want = wire.PlanProto(safe, want.GetPlanId(), want.GetValidFrom().AsTime(), want.GetValidUntil().AsTime(), want.GetInputs(),
					want.GetSourceEventId(), pl.revision)
			}
			if res.repaired != tc.wantRepaired || !proto.Equal(res.plan, want) || !slices.Equal(res.causes, causes) {
				t.Errorf("got repaired %v, %v, causes %v; want repaired %v, %v", res.repaired, res.plan, res.causes, tc.wantRepaired, want)
			}
		})
	}
}
