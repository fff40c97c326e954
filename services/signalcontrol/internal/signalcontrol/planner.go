package signalcontrol

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// Planner turns one intersection prediction into a plan. It is pure apart from its inputs and safe to call from
// one goroutine per partition.
type Planner struct {
	topo       *topology.Index
	revision   string
	horizon    time.Duration
	validity   time.Duration
	gate       signal.Gate
	zone       *time.Location
	minSamples uint32
	// coordination holds each coordinated intersection's common cycle and offset (see topology.Coordination).
	coordination map[string]coordination
}

type coordination struct {
	corridor        string
	cycleS, offsetS float64
}

// newCoordination computes every corridor's offsets once, from configuration alone: plans for intersections in
// different partitions (and instances) agree without sharing any state.
func newCoordination(t topology.Topology) (map[string]coordination, error) {
	out := map[string]coordination{}
	byID := map[string]topology.Intersection{}
	for _, in := range t.Intersections {
		byID[in.ID] = in
	}
	done := map[string]bool{}
	for id, co := range t.Coordination() {
		if done[co.Root] {
			continue
		}
		done[co.Root] = true
		ins := make([]topology.Intersection, 0, len(co.Members))
		for _, m := range co.Members {
			ins = append(ins, byID[m])
		}
		offsets, err := signal.Offsets(ins, co.Root, co.CycleS)
		if err != nil {
			return nil, fmt.Errorf("offsets of the corridor of %s: %w", id, err)
		}
		name := co.Corridor
		if name == "" {
			name = co.Root
		}
		for _, m := range co.Members {
			out[m] = coordination{corridor: name, cycleS: co.CycleS, offsetS: offsets[m]}
		}
	}
	return out, nil
}

// planResult is a plan and what the service counts about it.
type planResult struct {
	plan   *greenwavev1.SignalPlan
	causes []signal.Cause
	// repaired is true when the final validation failed and a fallback replaced the plan.
	repaired bool
}

// Plan computes the plan for prediction p given the intersection's state and its active override (nil if none).
func (pl *Planner) Plan(p *greenwavev1.IntersectionPrediction, st *intersectionState, ov *greenwavev1.Override) (planResult, error) {
	in, ok := pl.topo.Intersection(p.GetIntersectionId())
	if !ok {
		return planResult{}, fmt.Errorf("intersection %q is not in the topology", p.GetIntersectionId())
	}
	var fcs []signal.Forecast
	var inputs []*greenwavev1.PlanInput
	for _, ap := range p.GetApproaches() {
		pr := nearestHorizon(ap.GetHorizons(), pl.horizon)
		if pr == nil {
			continue
		}
		fcs = append(fcs, signal.Forecast{ApproachID: ap.GetApproachId(), FlowVPH: pr.GetValue(), LowerVPH: pr.GetLower(), UpperVPH: pr.GetUpper(),
			Stale: pr.GetStale(), Drifting: pr.GetDrifting(), Baseline: pr.GetFallback(), NoData: ap.GetNoData()})
		inputs = append(inputs, &greenwavev1.PlanInput{ApproachId: ap.GetApproachId(), HorizonS: pr.GetHorizonS(), FlowVph: pr.GetValue(),
			Lower: pr.GetLower(), Upper: pr.GetUpper(), ModelId: pr.GetModelId(), ModelVersion: pr.GetModelVersion()})
	}
	from := p.GetWindowEnd().AsTime()
	w := p.GetWeather()
	co := pl.coordination[in.ID]
	d := signal.DecideInput{
		Forecasts: fcs, PreviousCycleS: st.Plan.GetCycleS(), Gate: pl.gate, CycleS: co.cycleS, OffsetS: co.offsetS,
		SaturationFactor: signal.SaturationFactor(w.PrecipitationMmH, w.SnowMmH, w.VisibilityM),
		TimeOfDayFlows:   st.Profile.Flows(in, signal.ProfileBucket(from.In(pl.zone)), pl.minSamples),
	}
	var plan signal.Plan
	var err error
	note := ""
	switch ov.GetMode() {
	case greenwavev1.PlanMode_PLAN_MODE_PINNED_PLAN:
		plan, err = pinnedPlan(in, ov)
		if err != nil {
			// The topology changed under a stored override: plan normally, loudly.
			note = fmt.Sprintf("pinned plan of override %s no longer valid (%v); ", ov.GetOverrideId(), err)
			plan, err = signal.Decide(in, d)
		}
	case greenwavev1.PlanMode_PLAN_MODE_TIME_OF_DAY:
		d.Mode = signal.ModeTimeOfDay
		plan, err = signal.Decide(in, d)
	case greenwavev1.PlanMode_PLAN_MODE_FIXED_TIME:
		d.Mode = signal.ModeFixedTime
		plan, err = signal.Decide(in, d)
	default:
		plan, err = signal.Decide(in, d)
	}
	if err != nil {
		return planResult{}, fmt.Errorf("decide plan for %s: %w", in.ID, err)
	}
	if ov != nil {
		note = fmt.Sprintf("operator override %s (%s by %s) pins %s; ", ov.GetOverrideId(), ov.GetReason(), ov.GetOperator(), modeName(ov.GetMode())) + note
	}
	if co.corridor != "" {
		// Describe the plan as applied: a fallback or a rate-limited plan may not run the corridor's timing.
		plan.Detail += "; " + signal.CoordinationNote(plan, co.corridor, co.cycleS, co.offsetS)
	}
	plan.Detail = note + plan.Detail
	return pl.finalGate(in, plan, planRecord{id: wire.PlanID(in.ID, p.GetWindowStart().AsTime()), validFrom: from, validUntil: from.Add(pl.validity),
		inputs: inputs, sourceEventID: p.GetEventId(), overrideID: ov.GetOverrideId()}, plan.FallbackCauses)
}

// overridePlan is the plan issued at once when a pinned plan or fixed-time override arrives, valid from now
// until the override expires.
func (pl *Planner) overridePlan(ov *greenwavev1.Override, now time.Time) (planResult, error) {
	in, ok := pl.topo.Intersection(ov.GetIntersectionId())
	if !ok {
		return planResult{}, fmt.Errorf("intersection %q is not in the topology", ov.GetIntersectionId())
	}
	var plan signal.Plan
	var err error
	var causes []signal.Cause
	if ov.GetMode() == greenwavev1.PlanMode_PLAN_MODE_PINNED_PLAN {
		plan, err = pinnedPlan(in, ov)
	} else {
		plan, err = signal.Decide(in, signal.DecideInput{Mode: signal.ModeFixedTime})
		causes = plan.FallbackCauses
	}
	if err != nil {
		return planResult{}, fmt.Errorf("override plan for %s: %w", in.ID, err)
	}
	plan.Detail = fmt.Sprintf("operator override %s (%s by %s) pins %s; %s", ov.GetOverrideId(), ov.GetReason(), ov.GetOperator(), modeName(ov.GetMode()), plan.Detail)
	return pl.finalGate(in, plan, planRecord{id: ov.GetOverrideId(), validFrom: now, validUntil: ov.GetExpiresAt().AsTime(),
		overrideID: ov.GetOverrideId()}, causes)
}

// planRecord is what a published plan says beyond the plan itself.
type planRecord struct {
	id                    string
	validFrom, validUntil time.Time
	inputs                []*greenwavev1.PlanInput
	sourceEventID         string
	// overrideID is the override the plan applies; a plan the final validation replaced names none.
	overrideID string
}

// finalGate validates the plan as it will be published (the conversion to the wire message keeps every field
// signal.Validate reads), then converts it; a plan that fails is replaced by the fixed-time or minimum plan and
// counted. Nothing else publishes plans.
func (pl *Planner) finalGate(in topology.Intersection, plan signal.Plan, rec planRecord, causes []signal.Cause) (planResult, error) {
	verr := signal.Validate(in, plan)
	if verr == nil {
		out := wire.PlanProto(plan, rec.id, rec.validFrom, rec.validUntil, rec.inputs, rec.sourceEventID, pl.revision)
		out.OverrideId = rec.overrideID
		return planResult{plan: out, causes: causes}, nil
	}
	safe, err := signal.Safe(in, signal.Plan{}, fmt.Errorf("final validation: %w", verr))
	if err != nil {
		return planResult{}, fmt.Errorf("final validation of %s: %w", in.ID, err)
	}
	repl := wire.PlanProto(safe, rec.id, rec.validFrom, rec.validUntil, rec.inputs, rec.sourceEventID, pl.revision)
	return planResult{plan: repl, causes: causes, repaired: true}, nil
}

func pinnedPlan(in topology.Intersection, ov *greenwavev1.Override) (signal.Plan, error) {
	p := wire.Plan(ov.GetPlan())
	p.IntersectionID, p.Reason, p.FallbackCauses = in.ID, signal.ReasonOverride, nil
	if err := signal.Validate(in, p); err != nil {
		return signal.Plan{}, err
	}
	p.Detail = "pinned plan"
	return p, nil
}

func modeName(m greenwavev1.PlanMode) string {
	return strings.ToLower(strings.TrimPrefix(m.String(), "PLAN_MODE_"))
}

func nearestHorizon(hs []*greenwavev1.Prediction, want time.Duration) *greenwavev1.Prediction {
	var best *greenwavev1.Prediction
	bestD := math.Inf(1)
	for _, h := range hs {
		if d := math.Abs(float64(h.GetHorizonS()) - want.Seconds()); d < bestD {
			best, bestD = h, d
		}
	}
	return best
}
