package wire

import (
	"fmt"
	"time"

	"github.com/greenwave-city/greenwave/pkg/signal"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// reasons maps the plan reasons to the proto enum; TestReasonTable fails when either side gains a value.
var reasons = map[signal.Reason]greenwavev1.PlanReason{
	signal.ReasonUnspecified: greenwavev1.PlanReason_PLAN_REASON_UNSPECIFIED,
	signal.ReasonPredictive:  greenwavev1.PlanReason_PLAN_REASON_PREDICTIVE,
	signal.ReasonTimeOfDay:   greenwavev1.PlanReason_PLAN_REASON_TIME_OF_DAY,
	signal.ReasonFixedTime:   greenwavev1.PlanReason_PLAN_REASON_FIXED_TIME,
	signal.ReasonOverride:    greenwavev1.PlanReason_PLAN_REASON_OVERRIDE,
}

// ReasonProto returns the enum of a plan reason (PLAN_REASON_UNSPECIFIED for one the table lacks).
func ReasonProto(r signal.Reason) greenwavev1.PlanReason { return reasons[r] }

// Reason returns the plan reason of an enum value (ReasonUnspecified for a value this build does not know).
func Reason(p greenwavev1.PlanReason) signal.Reason {
	for r, v := range reasons {
		if v == p {
			return r
		}
	}
	return signal.ReasonUnspecified
}

// PlanID is the deterministic id of the plan computed from an intersection's window.
func PlanID(intersection string, windowStart time.Time) string {
	return fmt.Sprintf("%s/%d", intersection, windowStart.Unix())
}

// PlanProto converts a validated plan to the topic message.
func PlanProto(p signal.Plan, id string, validFrom, validUntil time.Time, inputs []*greenwavev1.PlanInput, sourceEventID, topologyRevision string) *greenwavev1.SignalPlan {
	out := &greenwavev1.SignalPlan{
		SchemaVersion: SchemaVersion, PlanId: id, IntersectionId: p.IntersectionID,
		ValidFrom: ts(validFrom), ValidUntil: ts(validUntil), CycleS: p.CycleS, OffsetS: p.OffsetS,
		Reason: ReasonProto(p.Reason), ReasonDetail: p.Detail, CriticalRatioSum: p.Y, LostTimeS: p.LostTimeS,
		Oversaturated: p.Oversaturated, CycleRateLimited: p.CycleRateLimited, Inputs: inputs, SourceEventId: sourceEventID,
		EstimatedDelayS: p.EstimatedDelayS, SaturationFactor: p.SaturationFactor, TopologyRevision: topologyRevision,
		GapOutS: p.GapOutS,
	}
	for _, ph := range p.Phases {
		out.Phases = append(out.Phases, &greenwavev1.PhaseTiming{
			PhaseId: ph.PhaseID, GreenS: ph.GreenS, YellowS: ph.YellowS, AllRedS: ph.AllRedS, FlowRatio: ph.FlowRatio, Approaches: ph.Approaches,
			MinGreenS: ph.MinGreenS, MaxGreenS: ph.MaxGreenS,
		})
	}
	return out
}

// Plan converts a topic plan back to the domain type (for validation of pinned plans and rate limiting).
func Plan(p *greenwavev1.SignalPlan) signal.Plan {
	out := signal.Plan{
		IntersectionID: p.GetIntersectionId(), CycleS: p.GetCycleS(), OffsetS: p.GetOffsetS(), Reason: Reason(p.GetReason()),
		Detail: p.GetReasonDetail(), Y: p.GetCriticalRatioSum(), LostTimeS: p.GetLostTimeS(), Oversaturated: p.GetOversaturated(),
		CycleRateLimited: p.GetCycleRateLimited(), SaturationFactor: p.GetSaturationFactor(), EstimatedDelayS: p.GetEstimatedDelayS(),
		GapOutS: p.GetGapOutS(),
	}
	for _, ph := range p.GetPhases() {
		out.Phases = append(out.Phases, signal.PhaseTiming{
			PhaseID: ph.GetPhaseId(), GreenS: ph.GetGreenS(), YellowS: ph.GetYellowS(), AllRedS: ph.GetAllRedS(), FlowRatio: ph.GetFlowRatio(), Approaches: ph.GetApproaches(),
			MinGreenS: ph.GetMinGreenS(), MaxGreenS: ph.GetMaxGreenS(),
		})
	}
	return out
}
