// Package signalcontrol wires the plan decision (pkg/signal) to Kafka and gRPC: predictions in, validated plans
// out on the plans topic and to WatchPlans subscribers. Per intersection it keeps the last plan (rate limiting),
// the last planned window (replays) and an hour-of-week flow profile (the time-of-day fallback) in the compacted
// changelog; operator overrides are authenticated, audited to the overrides topic and read back from it.
// docs/signal-control.md describes the behaviour for operators.
package signalcontrol

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/pkg/broadcast"
	"github.com/greenwave-city/greenwave/pkg/server"
	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// Config is signal-control's configuration.
type Config struct {
	app.Common
	PlanHorizon        time.Duration `env:"SIGNAL_PLAN_HORIZON" default:"15m" help:"prediction horizon plans are computed from (the nearest available horizon is used)"`
	PlanValidity       time.Duration `env:"SIGNAL_PLAN_VALIDITY" default:"15m" help:"how long after its window a plan is valid"`
	MaxRelInterval     float64       `env:"SIGNAL_MAX_RELATIVE_INTERVAL" default:"0.5" help:"widest prediction interval, relative to approach capacity, that may drive a plan"`
	RecallVPH          float64       `env:"SIGNAL_RECALL_VPH" default:"0" help:"demand (veh/h) an approach whose detectors report nothing (prediction no_data) is held at — detector recall; 0 is minimum recall: its phase gets its minimum green unless it serves other approaches"`
	SubscriberBuffer   int           `env:"SIGNAL_SUBSCRIBER_BUFFER" default:"1024" help:"plans a WatchPlans stream may lag behind; a full queue keeps only the newest per intersection (counted in coalesced), and a full queue of distinct intersections ends the stream with RESOURCE_EXHAUSTED"`
	OperatorTokensFile string        `env:"SIGNAL_OPERATOR_TOKENS_FILE" default:"" help:"YAML file of operators (name, token_sha256, optional intersections) allowed to set overrides; empty disables overrides"`
	OverrideTick       time.Duration `env:"SIGNAL_OVERRIDE_TICK" default:"1s" help:"how often each partition applies new pinned overrides and expires old ones (processing time)"`
	ProfileAlpha       float64       `env:"SIGNAL_PROFILE_ALPHA" default:"0.1" help:"weight of a new observation in the hour-of-week flow profile (exponential forgetting), in (0, 1]"`
	ProfileMinSamples  int           `env:"SIGNAL_PROFILE_MIN_SAMPLES" default:"3" help:"observations every approach needs in an hour-of-week bucket before time-of-day plans use it"`
	ProfileTimeZone    string        `env:"SIGNAL_PROFILE_TIME_ZONE" default:"" help:"optional guard: the IANA time zone the operator expects the intersections in; the hour-of-week flow profile uses the topology's time_zone, and a different value here stops signal-control with an error naming both"`
	CheckpointEvery    time.Duration `env:"SIGNAL_CHECKPOINT_INTERVAL" default:"12h" help:"event time between state snapshots (input offsets are committed with them): a partition is checkpointed when its newest planned window crosses a multiple of this interval (UTC-aligned), at most 24h (predictions are kept 2 days); 0 snapshots after every batch. A restart replays the predictions since the last checkpoint without issuing their plans again (the plans topic says which were issued); see docs/signal-control.md for the cost"`
	CheckpointIdle     time.Duration `env:"SIGNAL_CHECKPOINT_IDLE" default:"10s" help:"processing time after which a quiet partition whose event time is more than SIGNAL_CHECKPOINT_INTERVAL behind the wall clock (a finished replay) is checkpointed, so its offsets are committed; 0 never"`
}

// maxCheckpointEvery bounds SIGNAL_CHECKPOINT_INTERVAL well below the predictions topic's 2-day retention: a
// restore replays the predictions since the last checkpoint, which must still be there.
const maxCheckpointEvery = 24 * time.Hour

// Validate reports every problem.
func (c *Config) Validate() []string {
	p := c.Common.Validate()
	if c.PlanHorizon <= 0 || c.PlanValidity <= 0 {
		p = append(p, "SIGNAL_PLAN_HORIZON and SIGNAL_PLAN_VALIDITY must be positive")
	}
	if !(c.MaxRelInterval > 0) {
		p = append(p, "SIGNAL_MAX_RELATIVE_INTERVAL must be positive")
	}
	if !(c.RecallVPH >= 0) || math.IsInf(c.RecallVPH, 1) {
		p = append(p, "SIGNAL_RECALL_VPH must be a finite flow of at least 0")
	}
	if c.OverrideTick <= 0 {
		p = append(p, "SIGNAL_OVERRIDE_TICK must be positive")
	}
	if !(c.ProfileAlpha > 0 && c.ProfileAlpha <= 1) {
		p = append(p, "SIGNAL_PROFILE_ALPHA must lie in (0, 1]")
	}
	if c.ProfileMinSamples < 1 {
		p = append(p, "SIGNAL_PROFILE_MIN_SAMPLES must be at least 1")
	}
	if err := topology.CheckZoneSetting("SIGNAL_PROFILE_TIME_ZONE", c.ProfileTimeZone); err != nil {
		p = append(p, err.Error())
	}
	if c.CheckpointEvery < 0 || c.CheckpointEvery > maxCheckpointEvery || c.CheckpointEvery%time.Second != 0 {
		p = append(p, fmt.Sprintf("SIGNAL_CHECKPOINT_INTERVAL %v must be whole seconds between 0 and %v (the predictions a restore replays are kept 2 days)", c.CheckpointEvery, maxCheckpointEvery))
	}
	if c.CheckpointIdle < 0 {
		p = append(p, fmt.Sprintf("SIGNAL_CHECKPOINT_IDLE %v must not be negative", c.CheckpointIdle))
	}
	return p
}

// profileZone is the zone of the time-of-day profile's hours of week: the topology's (the rule every service and
// greenwave eval --signals follow), SIGNAL_PROFILE_TIME_ZONE being only a guard that must agree with it.
func (c *Config) profileZone(topo topology.Topology) (*time.Location, error) {
	return topo.LocationWith("SIGNAL_PROFILE_TIME_ZONE", c.ProfileTimeZone)
}

type metrics struct {
	plans              *prometheus.CounterVec
	fallbacks          *prometheus.CounterVec
	validationFailures prometheus.Counter
	replays            prometheus.Counter
	relearned          prometheus.Counter
	restoreReads       prometheus.Counter
	overrideEvents     *prometheus.CounterVec
	overrideRPCs       *prometheus.CounterVec
	badAudits          prometheus.Counter
	// WatchPlans: plans sent, plans merged into a newer one under back-pressure, streams ended for lagging.
	watchSends, watchCoalesced, watchOverflows prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, hub *broadcast.Hub[*greenwavev1.SignalPlan], table *overrideTable, now func() time.Time) *metrics {
	const ns, sub = "greenwave", "signal"
	m := &metrics{
		plans: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "plans_total",
			Help: "Signal plans issued, by reason (predictive, time_of_day, fixed_time, override)."}, []string{"reason"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "fallbacks_total",
			Help: "Plans that fell back from predictions, by cause (stale, drift, no_model, wide_interval, no_history, ...); detector_recall counts plans, predictive ones too, that held a failed-detector approach at recall."}, []string{"cause"}),
		validationFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "validation_failures_total",
			Help: "Plans that failed the final validation before publishing and were replaced by the fixed-time or minimum plan."}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "replays_skipped_total",
			Help: "Predictions skipped because their window was already planned and is in the restored state."}),
		relearned: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "replays_relearned_total",
			Help: "Predictions replayed after a restore whose plan was already on the plans topic: their flows were learned into the profile again, and no plan was issued."}),
		restoreReads: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "restore_plans_read_total",
			Help: "Plans read back from the plans topic when restoring partitions (the plans issued since the last state checkpoint)."}),
		overrideEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "override_events_total",
			Help: "Override audit records written by this instance, by action (set, clear, expire)."}, []string{"action"}),
		overrideRPCs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "override_requests_total",
			Help: "Override RPCs, by method and gRPC status code (rejected requests included)."}, []string{"method", "code"}),
		badAudits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "override_records_rejected_total",
			Help: "Records on the overrides topic that could not be decoded and were ignored."}),
		watchSends: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "watch_sends_total",
			Help: "Plans sent to WatchPlans subscribers."}),
		watchCoalesced: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "watch_coalesced_total",
			Help: "Plans not sent to a WatchPlans subscriber because a newer plan of the same intersection replaced them while its queue was full (the coalesced field)."}),
		watchOverflows: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "watch_overflows_total",
			Help: "WatchPlans streams ended with RESOURCE_EXHAUSTED because they lagged by more intersections than SIGNAL_SUBSCRIBER_BUFFER."}),
	}
	reg.MustRegister(m.plans, m.fallbacks, m.validationFailures, m.replays, m.relearned, m.restoreReads, m.overrideEvents, m.overrideRPCs, m.badAudits,
		m.watchSends, m.watchCoalesced, m.watchOverflows,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "watchers",
			Help: "Live WatchPlans subscribers."}, func() float64 { return float64(hub.Subscribers()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "overrides_active",
			Help: "Operator overrides in force."}, func() float64 { return float64(table.countActive(now())) }))
	return m
}

func (m *metrics) countRPC(method string, err error) {
	m.overrideRPCs.WithLabelValues(method, status.Code(err).String()).Inc()
}

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

// service is what every partition handler and the API share.
type service struct {
	planner    *Planner
	names      topics.Names
	partitions int
	hub        *broadcast.Hub[*greenwavev1.SignalPlan]
	metrics    *metrics
	overrides  *overrideTable
	operators  *Operators
	producer   *stream.Producer
	log        *zap.Logger
	now        func() time.Time
	alpha      float64
	brokers    []string
	client     *kafka.Client
	// checkpointEvery and checkpointIdle are SIGNAL_CHECKPOINT_INTERVAL and SIGNAL_CHECKPOINT_IDLE.
	checkpointEvery, checkpointIdle time.Duration
}

// plansBounds returns the first offset and the high watermark of a plans partition.
func (s *service) plansBounds(ctx context.Context, part int) (first, end int64, err error) {
	offsets, err := stream.ListOffsets(ctx, s.client, map[string][]kafka.OffsetRequest{
		s.names.Plans: {kafka.FirstOffsetOf(part), kafka.LastOffsetOf(part)},
	})
	if err != nil {
		return 0, 0, err
	}
	for _, po := range offsets[s.names.Plans] {
		if po.Partition == part {
			return po.FirstOffset, po.LastOffset, nil
		}
	}
	return 0, 0, fmt.Errorf("list offsets of %s[%d]: partition missing from response", s.names.Plans, part)
}

// readPlans calls fn for every record of a plans partition from offset from (or its first, if later) up to
// its high watermark at the time of the call, in order.
func (s *service) readPlans(ctx context.Context, part int, from int64, fn func(kafka.Message) error) error {
	first, end, err := s.plansBounds(ctx, part)
	if err != nil {
		return err
	}
	from = max(from, first)
	if end <= from {
		return nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: s.brokers, Topic: s.names.Plans, Partition: part, MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 250 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return fmt.Errorf("seek %s[%d]: %w", s.names.Plans, part, err)
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("read %s[%d]: %w", s.names.Plans, part, err)
		}
		if err := fn(m); err != nil {
			return err
		}
		if m.Offset >= end-1 {
			return nil
		}
	}
}

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
	return &partition{svc: svc, part: part, state: map[string]*intersectionState{}, dirty: map[string]bool{}}
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
		stream.WithCheckpointInterval(p.svc.checkpointIdle), stream.WithCheckpointDue(p.CheckpointDue))
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
		outs = append(outs, stream.Output{Topic: p.svc.names.SignalState, Key: []byte(id), Value: b, Payload: wire.SignalStatePayload})
	}
	clear(p.dirty)
	return outs, nil
}

// restorePartition rebuilds a partition's state: the newest changelog record of each intersection, then the
// plans issued since those records, read back from the plans topic (co-partitioned with the predictions). A
// plan read back becomes the intersection's current plan, its window the end of what is planned (replays up to
// it only learn, see partition), and its override the applied one; the overrides table gives the last expiry
// audit written. The result is the state of an uninterrupted run once the predictions since the last
// checkpoint (the committed offset) are replayed.
func restorePartition(ctx context.Context, svc *service, part int) (*partition, error) {
	p := newPartition(svc, part)
	marks := map[string]wire.SignalCheckpoint{}
	err := stream.ReadPartition(ctx, svc.brokers, svc.names.SignalState, part, func(msg kafka.Message) error {
		st, mark, err := wire.DecodeSignalState(string(stream.Header(msg, stream.HeaderPayload)), msg.Value)
		if err != nil {
			return fmt.Errorf("state of %s: %w", msg.Key, err)
		}
		p.state[string(msg.Key)] = st
		marks[string(msg.Key)] = mark
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore signal-control state: %w", err)
	}
	from := plansFrom(marks)
	if n := len(marks); n > 0 && from != marks[newestMarked(marks)].PlansOffset {
		svc.log.Warn("the newest state checkpoint is incomplete (the process ended while writing it): reading the plans topic from the oldest record's offset",
			zap.Int("partition", part), zap.Int64("from", from))
	}
	for _, mark := range marks {
		p.seq = max(p.seq, mark.Seq)
	}
	n := 0
	err = svc.readPlans(ctx, part, from, func(msg kafka.Message) error {
		id := string(msg.Key)
		if msg.Offset < marks[id].PlansOffset {
			return nil // already in the intersection's record
		}
		plan, err := wire.TopicPlans.Decode(msg)
		if err != nil || plan.GetIntersectionId() != id {
			// Not a plan this service wrote; it cannot have changed the state.
			svc.log.Warn("ignoring an undecodable record on the plans topic", zap.Int("partition", part), zap.Int64("offset", msg.Offset), zap.Error(err))
			return nil
		}
		n++
		st := p.stateOf(id)
		st.Plan = plan
		if plan.GetOverrideId() != "" {
			st.AppliedOverride = plan.GetOverrideId()
		}
		if plan.GetPlanId() != plan.GetOverrideId() {
			// A prediction's plan (an override's immediate plan is named after the override): valid from the end
			// of the window it planned.
			if vf := plan.GetValidFrom().AsTime(); vf.After(st.PlannedThrough) {
				st.PlannedThrough = vf
			}
		}
		p.dirty[id] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore plans issued since the last checkpoint: %w", err)
	}
	svc.metrics.restoreReads.Add(float64(n))
	relearn := 0
	for id, st := range p.state {
		if e := svc.overrides.expiredOf(id); e != "" && st.ExpiredOverride != e {
			st.ExpiredOverride = e
			p.dirty[id] = true
		}
		if !st.WindowEnd.IsZero() {
			p.eventTime = max(p.eventTime, st.WindowEnd.Unix())
		}
		if st.PlannedThrough.After(st.WindowEnd) {
			relearn++
		}
	}
	p.checkpointed = p.eventTime
	svc.log.Info("partition state restored", zap.Int("partition", part), zap.Int("intersections", len(p.state)),
		zap.Int64("plans_from_offset", from), zap.Int("plans_read", n), zap.Int("intersections_with_windows_to_relearn", relearn))
	return p, nil
}

// newestMarked returns the intersection whose record has the newest checkpoint number.
func newestMarked(marks map[string]wire.SignalCheckpoint) string {
	best, bestSeq := "", uint64(0)
	for id, m := range marks {
		if best == "" || m.Seq > bestSeq || (m.Seq == bestSeq && id < best) {
			best, bestSeq = id, m.Seq
		}
	}
	return best
}

// plansFrom returns the plans offset a restore reads from. Every record covers the plans below its own
// PlansOffset, and an intersection missing from a checkpoint issued no plan between its record and that
// checkpoint; so when the newest checkpoint is complete (all of its records are there: a checkpoint is written
// whole before offsets are committed, but a process may end halfway), its offset covers every intersection.
// Otherwise the oldest record's offset does. No record (a first start, or a changelog from before any
// checkpoint) reads the partition from its start.
func plansFrom(marks map[string]wire.SignalCheckpoint) int64 {
	if len(marks) == 0 {
		return 0
	}
	newest := marks[newestMarked(marks)]
	n := uint32(0)
	oldest := newest.PlansOffset
	for _, m := range marks {
		if m.Seq == newest.Seq {
			n++
		}
		oldest = min(oldest, m.PlansOffset)
	}
	if newest.Seq > 0 && n == newest.Records {
		return newest.PlansOffset
	}
	return oldest
}

func reasonLabel(r greenwavev1.PlanReason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "PLAN_REASON_"))
}

// API implements SignalControlService.
type API struct {
	greenwavev1.UnimplementedSignalControlServiceServer
	svc    *service
	hub    *broadcast.Hub[*greenwavev1.SignalPlan]
	buffer int
}

// GetPlan returns an intersection's current plan.
func (a *API) GetPlan(_ context.Context, req *greenwavev1.GetPlanRequest) (*greenwavev1.GetPlanResponse, error) {
	if req.GetIntersectionId() == "" {
		return nil, status.Error(codes.InvalidArgument, "intersection_id is required")
	}
	p, ok := a.hub.Latest(req.GetIntersectionId())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no plan for intersection %q yet", req.GetIntersectionId())
	}
	return &greenwavev1.GetPlanResponse{Plan: p}, nil
}

// WatchPlans sends the current plans (initial), then every new plan in the order it was issued per
// intersection. A subscriber that keeps up receives every plan the plans topic carries, with coalesced 0. Only
// when its queue of SIGNAL_SUBSCRIBER_BUFFER plans is full are an intersection's queued plans merged into its
// newest one, whose coalesced field counts the plans merged (delivered plus coalesced always accounts for every
// plan); a subscriber lagging by more intersections than the buffer is ended with RESOURCE_EXHAUSTED and resumes
// by watching again (current plans first). The Kafka loop never waits for a subscriber.
func (a *API) WatchPlans(req *greenwavev1.WatchPlansRequest, st greenwavev1.SignalControlService_WatchPlansServer) error {
	var filter func(string, *greenwavev1.SignalPlan) bool
	if ids := req.GetIntersectionIds(); len(ids) > 0 {
		filter = func(k string, _ *greenwavev1.SignalPlan) bool { return slices.Contains(ids, k) }
	}
	sub := a.hub.Subscribe(a.buffer, filter)
	defer sub.Close()
	for {
		it, err := sub.Next(st.Context())
		switch {
		case errors.Is(err, broadcast.ErrOverflow):
			a.svc.metrics.watchOverflows.Inc()
			return status.Error(codes.ResourceExhausted, "subscriber too slow: reconnect to resume from the current plans")
		case errors.Is(err, broadcast.ErrClosed):
			return status.Error(codes.Unavailable, "server shutting down")
		case err != nil:
			return status.FromContextError(err).Err()
		}
		if err := st.Send(&greenwavev1.WatchPlansResponse{Plan: it.Value, Initial: it.Initial, Coalesced: uint32(it.Coalesced)}); err != nil {
			return err
		}
		a.svc.metrics.watchSends.Inc()
		a.svc.metrics.watchCoalesced.Add(float64(it.Coalesced))
	}
}

// deps are what tests replace.
type deps struct {
	now func() time.Time
	// listening, if set, receives the server's bound addresses.
	listening func(server.Addrs)
	// hub, if set, receives the plans hub before any plan is published (tests subscribe to it directly).
	hub func(*broadcast.Hub[*greenwavev1.SignalPlan])
}

// Run starts signal-control and processes until ctx ends.
func Run(ctx context.Context, lookup func(string) (string, bool)) error {
	return run(ctx, lookup, deps{now: time.Now})
}

func run(ctx context.Context, lookup func(string) (string, bool), d deps) error {
	var cfg Config
	if err := app.Load(&cfg, lookup); err != nil {
		return err
	}
	env, err := app.Setup("signalcontrol", &cfg.Common)
	if err != nil {
		return err
	}
	defer env.Log.Sync() //nolint:errcheck // nothing useful to do with a failed flush at exit
	topo := env.Topology.Topology()
	var infeasible []error
	for _, in := range topo.Intersections {
		if err := signal.Feasible(in); err != nil {
			infeasible = append(infeasible, err)
		}
	}
	if err := errors.Join(infeasible...); err != nil {
		return fmt.Errorf("topology has intersections no safe plan fits: %w", err)
	}
	coord, err := newCoordination(topo)
	if err != nil {
		return fmt.Errorf("coordinate corridors: %w", err)
	}
	operators, err := LoadOperators(cfg.OperatorTokensFile)
	if err != nil {
		return err
	}
	zone, err := cfg.profileZone(topo)
	if err != nil {
		return fmt.Errorf("signal-control time zone: %w", err)
	}
	env.Log.Info("time-of-day profile in the topology's time zone", zap.String("time_zone", zone.String()))
	names := cfg.Topics()
	counts, err := app.CheckTopics(ctx, cfg.Brokers, names.Predictions, names.Plans, names.SignalState, names.Overrides, names.DeadLetters)
	if err != nil {
		return err
	}
	if err := topics.CheckCoPartitioned(topics.Specs(names, 0), counts); err != nil {
		return fmt.Errorf("check topics: %w", err)
	}
	hub := broadcast.New[*greenwavev1.SignalPlan]()
	defer hub.Close()
	if d.hub != nil {
		d.hub(hub)
	}
	table := newOverrideTable()
	prod := stream.NewProducer(cfg.Brokers, stream.ProducerConfig{Registerer: env.Registry})
	defer prod.Close()
	svc := &service{
		planner: &Planner{topo: env.Topology, revision: topo.Revision, horizon: cfg.PlanHorizon, validity: cfg.PlanValidity,
			gate: signal.Gate{MaxRelativeInterval: cfg.MaxRelInterval, RecallVPH: cfg.RecallVPH}, zone: zone, minSamples: uint32(cfg.ProfileMinSamples), coordination: coord},
		names: names, partitions: counts[names.Predictions], hub: hub, metrics: newMetrics(env.Registry, hub, table, d.now),
		overrides: table, operators: operators, producer: prod, log: env.Log, now: d.now, alpha: cfg.ProfileAlpha,
		brokers: cfg.Brokers, client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 30 * time.Second},
		checkpointEvery: cfg.CheckpointEvery, checkpointIdle: cfg.CheckpointIdle,
	}
	newHandler := func(ctx context.Context, part int) (*stream.Handler, error) {
		p, err := restorePartition(ctx, svc, part)
		if err != nil {
			return nil, err
		}
		// The restored plans become the current ones. On a reassignment the hub usually has them already: they
		// are not sent to subscribers a second time.
		for _, id := range slices.Sorted(maps.Keys(p.state)) {
			plan := p.state[id].Plan
			if cur, ok := hub.Latest(id); plan != nil && (!ok || !proto.Equal(cur, plan)) {
				hub.Publish(id, plan)
			}
		}
		return p.handler(), nil
	}
	proc := stream.NewProcessor(stream.ProcessorConfig{
		Brokers: cfg.Brokers, GroupID: cfg.Group("signalcontrol"), Topic: names.Predictions, DeadLetterTopic: names.DeadLetters,
		Service: "signalcontrol", DeadLetter: wire.DeadLetter, IdleTick: cfg.OverrideTick,
	}, prod, newHandler, env.Log, stream.NewMetrics(env.Registry))
	greenwavev1.RegisterSignalControlServiceServer(env.Server.GRPC(), &API{svc: svc, hub: hub, buffer: cfg.SubscriberBuffer})
	overridesLoaded := make(chan struct{})
	env.Server.AddReadiness("overrides", app.Loaded(overridesLoaded, "the overrides topic"))
	env.Server.AddReadiness("consumer-group", proc.ReadyCheck)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return env.Server.Run(ctx) })
	if d.listening != nil {
		g.Go(func() error {
			a, err := env.Server.Addrs(ctx)
			if err == nil {
				d.listening(a)
			}
			return nil
		})
	}
	g.Go(func() error {
		err := stream.Follow(ctx, cfg.Brokers, names.Overrides, svc.partitions, func(m kafka.Message) error {
			a, err := wire.TopicOverrides.Decode(m)
			if err != nil || a.GetOverride().GetIntersectionId() == "" {
				svc.metrics.badAudits.Inc()
				env.Log.Warn("ignoring undecodable override record", zap.Int("partition", m.Partition), zap.Int64("offset", m.Offset), zap.Error(err))
				return nil
			}
			table.apply(a)
			return nil
		}, func() { close(overridesLoaded) })
		if err != nil {
			return fmt.Errorf("follow overrides: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		// Plan only once every stored override is known, or a restart would briefly ignore a pinned plan.
		select {
		case <-overridesLoaded:
		case <-ctx.Done():
			return nil
		}
		return proc.Run(ctx)
	})
	return g.Wait()
}
