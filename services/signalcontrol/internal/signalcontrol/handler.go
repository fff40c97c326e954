package signalcontrol

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// partition handles one partition's predictions and overrides; it owns the state of the partition's
// intersections.
//
// Its state is snapshotted at an event-time cadence (CheckpointDue), not per batch, so a restart replays the
// predictions since the last checkpoint. It stays exact and issues nothing twice because a restore also reads the
// plans issued since that checkpoint back from the plans topic (restorePartition): an intersection's
// PlannedThrough becomes the window end of the newest such plan, and a replayed prediction up to it only updates
// the profile (the state the uninterrupted run had after it), while the plan it led to is already on the topic.
type partition struct {
	svc   *service
	part  int
	state map[string]*intersectionState
	dirty map[string]bool
	// stateBytes is, per intersection, the size (stream.MessageBytes) of its last changelog record restored or
	// written: greenwave_state_bytes.
	stateBytes map[string]int64
	// issued holds every plan issued since they were last acknowledged, in issue order: all of them go to
	// WatchPlans subscribers, not only the last one per intersection (a subscriber that keeps up sees every plan
	// the plans topic carries; only the hub coalesces, and only under back-pressure, saying so).
	issued []*greenwavev1.SignalPlan
	// eventTime is the newest window end applied (Unix seconds, 0 before any); checkpointed is eventTime at the
	// last checkpoint (or restore).
	eventTime, checkpointed int64
	// seq numbers the partition's checkpoints (the newest restored, then one more per checkpoint written).
	seq uint64
	// markers is set when an override marker changed since the last checkpoint: overrides are rare, and a
	// checkpoint right away keeps the markers exact however the process ends.
	markers bool
}

func newPartition(svc *service, part int) *partition {
	return &partition{svc: svc, part: part, state: map[string]*intersectionState{}, dirty: map[string]bool{}, stateBytes: map[string]int64{}}
}

// StateSize is the partition's state for greenwave_state_keys and greenwave_state_bytes: its intersections and
// the sizes of their last changelog records (an intersection not yet checkpointed counts no bytes).
func (p *partition) StateSize() stream.StateSize {
	var bytes int64
	for _, n := range p.stateBytes {
		bytes += n
	}
	return stream.StateSize{Keys: len(p.state), Bytes: bytes}
}

func (p *partition) stateOf(id string) *intersectionState {
	st := p.state[id]
	if st == nil {
		st = &intersectionState{}
		p.state[id] = st
	}
	return st
}

// handler is the stream handler of the partition: predictions decoded by the predictions topic's declaration, override
// expiry on ticks, plans handed to subscribers once acknowledged, and the checkpoint following CheckpointDue, which a
// quiet partition asks every SIGNAL_CHECKPOINT_IDLE.
func (p *partition) handler() *stream.Handler {
	return stream.NewHandler(p.Handle, stream.WithCheckpoint(p.Checkpoint), stream.WithTick(p.Tick), stream.WithAcknowledged(p.Acknowledged),
		stream.WithCheckpointInterval(p.svc.checkpointIdle), stream.WithCheckpointDue(p.CheckpointDue), stream.WithStateSize(p.StateSize))
}

// CheckpointDue is the partition's stream.WithCheckpointDue decision, with the trainer's rule: a checkpoint when the
// newest applied window end has crossed a multiple of SIGNAL_CHECKPOINT_INTERVAL (UTC-aligned, so restarts keep the
// schedule) since the last one, when an override marker changed, or when a partition of historical input (event time
// more than the interval behind now: a replay that ended) has been quiet for SIGNAL_CHECKPOINT_IDLE.
func (p *partition) CheckpointDue(now time.Time, idle time.Duration) bool {
	every := int64(p.svc.checkpointEvery / time.Second)
	if every <= 0 || p.markers {
		return true
	}
	if floorDiv(p.eventTime, every) > floorDiv(p.checkpointed, every) {
		return true
	}
	return p.svc.checkpointIdle > 0 && idle >= p.svc.checkpointIdle && p.eventTime < now.Unix()-every
}

// floorDiv returns ⌊a/b⌋ for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// Handle is the partition's stream.HandleFunc: predictions decoded by the predictions topic's declaration.
func (p *partition) Handle(ctx context.Context, m kafka.Message) ([]stream.Output, error) {
	return stream.Decoded(wire.TopicPredictions, p.handlePrediction)(ctx, m)
}

// handlePrediction learns from one decoded prediction and plans its intersection.
func (p *partition) handlePrediction(_ context.Context, _ kafka.Message, pred *greenwavev1.IntersectionPrediction) ([]stream.Output, error) {
	id := pred.GetIntersectionId()
	in, ok := p.svc.planner.topo.Intersection(id)
	if !ok {
		return nil, stream.Reject(greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT, "intersection %q is not in the topology", id)
	}
	if in.ForecastOnly {
		// Forecasting it is the point; there are no signals to plan. Not a rejection: nothing is wrong.
		return nil, nil
	}
	if pred.GetWindowEnd() == nil || pred.GetWindowStart() == nil || !pred.GetWindowEnd().AsTime().After(pred.GetWindowStart().AsTime()) {
		return nil, stream.Reject(greenwavev1.RejectReason_REJECT_REASON_MALFORMED, "prediction %s has no valid window", pred.GetEventId())
	}
	st := p.stateOf(id)
	windowEnd := pred.GetWindowEnd().AsTime()
	// Replays are harmless: a window not newer than the last applied one is in the state already.
	if !st.WindowEnd.IsZero() && !windowEnd.After(st.WindowEnd) {
		p.svc.metrics.replays.Inc()
		return nil, nil
	}
	// The window is applied whatever the plan's fate: its flows are learned once, and a prediction no plan can
	// be made from is dead-lettered once (not again by a replay).
	p.learn(in, pred, st)
	st.WindowEnd = windowEnd
	p.dirty[id] = true
	p.eventTime = max(p.eventTime, windowEnd.Unix())
	if !windowEnd.After(st.PlannedThrough) {
		// Planned before the restart: the plan is on the plans topic (and is the restored one if newest).
		p.svc.metrics.relearned.Inc()
		return nil, nil
	}
	ov := p.svc.overrides.active(id, p.svc.now())
	res, err := p.svc.planner.Plan(pred, st, ov)
	if err != nil {
		if errors.Is(err, signal.ErrNoSafePlan) {
			p.svc.log.Error("no safe plan exists; the intersection keeps its current plan", zap.String("intersection", id), zap.Error(err))
		}
		return nil, stream.Reject(greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT, "%v", err)
	}
	if ov != nil && st.AppliedOverride != ov.GetOverrideId() {
		st.AppliedOverride = ov.GetOverrideId()
		p.markers = true
	}
	st.PlannedThrough = windowEnd
	return p.issue(id, st, res)
}

// learn adds the source window's measured (not imputed) approach flows to the hour-of-week profile, in the
// bucket of the window's start.
func (p *partition) learn(in topology.Intersection, pred *greenwavev1.IntersectionPrediction, st *intersectionState) {
	bucket := signal.ProfileBucket(pred.GetWindowStart().AsTime().In(p.svc.planner.zone))
	for _, ap := range pred.GetApproaches() {
		obs := ap.GetObserved()
		if obs == nil || obs.GetImputed() {
			continue
		}
		if _, ok := in.Approach(ap.GetApproachId()); ok {
			st.Profile.Observe(ap.GetApproachId(), bucket, obs.GetFlowVph(), p.svc.alpha)
		}
	}
}

// issue records a plan as the intersection's current one and returns the record publishing it.
func (p *partition) issue(id string, st *intersectionState, res planResult) ([]stream.Output, error) {
	plan := res.plan
	out, err := wire.TopicPlans.Encode(p.svc.names, plan)
	if err != nil {
		return nil, err
	}
	st.Plan = plan
	p.dirty[id] = true
	p.issued = append(p.issued, plan)
	m := p.svc.metrics
	m.plans.WithLabelValues(reasonLabel(plan.GetReason())).Inc()
	for _, c := range res.causes {
		m.fallbacks.WithLabelValues(string(c)).Inc()
	}
	if res.repaired {
		m.validationFailures.Inc()
		p.svc.log.Error("plan failed final validation; published a fallback", zap.String("intersection", id), zap.String("detail", plan.GetReasonDetail()))
	} else if plan.GetReason() != greenwavev1.PlanReason_PLAN_REASON_PREDICTIVE {
		p.svc.log.Warn("fallback plan issued", zap.String("intersection", id), zap.String("reason", plan.GetReason().String()), zap.String("detail", plan.GetReasonDetail()))
	}
	out.Key = []byte(id) // the intersection planned, whatever a pinned plan names
	return []stream.Output{out}, nil
}

// Tick is the partition's stream.WithTick. On processing time it writes the expiry audit of every override of this
// partition's intersections that has expired, and issues the plan of a newly pinned plan or fixed-time
// override at once (other modes take effect with the next prediction).
//
// The processor's tick time is not used: expiry follows the service's clock, which tests inject.
func (p *partition) Tick(context.Context, time.Time) ([]stream.Output, error) {
	now := p.svc.now()
	var outs []stream.Output
	for _, ov := range p.svc.overrides.all() {
		id := ov.GetIntersectionId()
		if _, ok := stream.Home(id, p.part, p.svc.partitions); !ok {
			continue
		}
		st := p.stateOf(id)
		if !now.Before(ov.GetExpiresAt().AsTime()) {
			if st.ExpiredOverride != ov.GetOverrideId() {
				outs = append(outs, auditOutput(p.svc.names.Overrides, ov, actionExpire, "signalcontrol", now))
				logAudit(p.svc.log, ov, actionExpire, "signalcontrol")
				p.svc.metrics.overrideEvents.WithLabelValues(actionExpire).Inc()
				st.ExpiredOverride = ov.GetOverrideId()
				p.dirty[id] = true
				p.markers = true
			}
			continue
		}
		mode := ov.GetMode()
		if st.AppliedOverride == ov.GetOverrideId() || (mode != greenwavev1.PlanMode_PLAN_MODE_PINNED_PLAN && mode != greenwavev1.PlanMode_PLAN_MODE_FIXED_TIME) {
			continue
		}
		st.AppliedOverride = ov.GetOverrideId()
		p.dirty[id] = true
		p.markers = true
		res, err := p.svc.planner.overridePlan(ov, now)
		if err != nil {
			p.svc.log.Error("override cannot be applied now; it applies with the next prediction if still valid", zap.String("override_id", ov.GetOverrideId()), zap.Error(err))
			continue
		}
		o, err := p.issue(id, st, res)
		if err != nil {
			return nil, err
		}
		outs = append(outs, o...)
	}
	return outs, nil
}

// Acknowledged is the partition's stream.WithAcknowledged. Plans reach subscribers once they are on the plans topic,
// batch by batch (the state checkpoint may come hours of event time later), so gRPC and Kafka subscribers see the same
// plans: every plan issued, in the order it was issued (per intersection, the topic's order).
func (p *partition) Acknowledged(context.Context) error {
	for _, plan := range p.issued {
		p.svc.hub.Publish(plan.GetIntersectionId(), plan)
	}
	clear(p.issued) // let the hub own the plans
	p.issued = p.issued[:0]
	return nil
}

// Checkpoint is the partition's stream.WithCheckpoint: the state of every intersection changed since the last
// checkpoint, each record marked with the plans partition's end offset (the plans issued so far are all acknowledged)
// and with the checkpoint's number and size, which is what restorePartition needs to know where to read the plans
// topic from.
func (p *partition) Checkpoint(ctx context.Context) ([]stream.Output, error) {
	p.checkpointed, p.markers = p.eventTime, false
	if len(p.dirty) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(p.dirty))
	for id := range p.dirty {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	_, end, err := p.svc.plansBounds(ctx, p.part)
	if err != nil {
		return nil, fmt.Errorf("end offset of the plans partition: %w", err)
	}
	p.seq++
	mark := wire.SignalCheckpoint{PlansOffset: end, Seq: p.seq, Records: uint32(len(ids))}
	outs := make([]stream.Output, 0, len(ids))
	for _, id := range ids {
		b, err := wire.EncodeSignalState(p.state[id], mark)
		if err != nil {
			return nil, fmt.Errorf("encode state of %s: %w", id, err)
		}
		out := stream.Output{Topic: p.svc.names.SignalState, Key: []byte(id), Value: b, Payload: wire.SignalStatePayload}
		p.stateBytes[id] = int64(stream.MessageBytes(out.Message()))
		outs = append(outs, out)
	}
	clear(p.dirty)
	return outs, nil
}
