// Package signalcontrol wires the plan decision (pkg/signal) to Kafka and gRPC: predictions in, validated plans
// out on the plans topic and to WatchPlans subscribers; the last plan per intersection is snapshotted to a
// compacted changelog so cycle rate limiting survives restarts.
package signalcontrol

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
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
	PlanHorizon      time.Duration `env:"SIGNAL_PLAN_HORIZON" default:"15m" help:"prediction horizon plans are computed from (the nearest available horizon is used)"`
	PlanValidity     time.Duration `env:"SIGNAL_PLAN_VALIDITY" default:"15m" help:"how long after its window a plan is valid"`
	MaxRelInterval   float64       `env:"SIGNAL_MAX_RELATIVE_INTERVAL" default:"0.5" help:"widest prediction interval, relative to approach capacity, that may drive a plan"`
	SubscriberBuffer int           `env:"SIGNAL_SUBSCRIBER_BUFFER" default:"1024" help:"distinct intersections a WatchPlans subscriber may lag behind before it is ended"`
}

// Validate reports every problem.
func (c *Config) Validate() []string {
	p := c.Common.Validate()
	if c.PlanHorizon <= 0 || c.PlanValidity <= 0 {
		p = append(p, "SIGNAL_PLAN_HORIZON and SIGNAL_PLAN_VALIDITY must be positive")
	}
	if !(c.MaxRelInterval > 0) {
		p = append(p, "SIGNAL_MAX_RELATIVE_INTERVAL must be positive")
	}
	return p
}

type metrics struct {
	plans    *prometheus.CounterVec
	replays  prometheus.Counter
	watchers prometheus.GaugeFunc
}

// Planner turns one intersection prediction into a plan. It is pure apart from its inputs and safe to call from
// one goroutine per partition.
type Planner struct {
	topo     *topology.Index
	revision string
	horizon  time.Duration
	validity time.Duration
	gate     signal.Gate
}

// Plan computes the plan for prediction p given the previous plan of the intersection (nil if none).
func (pl *Planner) Plan(p *greenwavev1.IntersectionPrediction, prev *greenwavev1.SignalPlan) (*greenwavev1.SignalPlan, error) {
	in, ok := pl.topo.Intersection(p.GetIntersectionId())
	if !ok {
		return nil, fmt.Errorf("intersection %q is not in the topology", p.GetIntersectionId())
	}
	var fcs []signal.Forecast
	var inputs []*greenwavev1.PlanInput
	for _, ap := range p.GetApproaches() {
		pr := nearestHorizon(ap.GetHorizons(), pl.horizon)
		if pr == nil {
			continue
		}
		fcs = append(fcs, signal.Forecast{ApproachID: ap.GetApproachId(), FlowVPH: pr.GetValue(), LowerVPH: pr.GetLower(), UpperVPH: pr.GetUpper(),
			Stale: pr.GetStale(), Drifting: pr.GetDrifting(), Baseline: pr.GetFallback()})
		inputs = append(inputs, &greenwavev1.PlanInput{ApproachId: ap.GetApproachId(), HorizonS: pr.GetHorizonS(), FlowVph: pr.GetValue(),
			Lower: pr.GetLower(), Upper: pr.GetUpper(), ModelId: pr.GetModelId(), ModelVersion: pr.GetModelVersion()})
	}
	w := p.GetWeather()
	var prevCycle float64
	if prev != nil {
		prevCycle = prev.GetCycleS()
	}
	plan, err := signal.Decide(in, signal.DecideInput{
		Forecasts: fcs, PreviousCycleS: prevCycle, Gate: pl.gate,
		SaturationFactor: signal.SaturationFactor(w.PrecipitationMmH, w.SnowMmH, w.VisibilityM),
	})
	if err != nil {
		return nil, fmt.Errorf("decide plan for %s: %w", in.ID, err)
	}
	from := p.GetWindowEnd().AsTime()
	return wire.PlanProto(plan, wire.PlanID(in.ID, p.GetWindowStart().AsTime()), from, from.Add(pl.validity), inputs, p.GetEventId(), pl.revision), nil
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

// partition handles one partition's predictions; it remembers each intersection's last plan.
type partition struct {
	planner *Planner
	names   topics.Names
	hub     *broadcast.Hub[*greenwavev1.SignalPlan]
	metrics *metrics
	last    map[string]*greenwavev1.SignalPlan
	dirty   map[string]bool
	log     *zap.Logger
}

// Handle implements stream.Handler.
func (p *partition) Handle(_ context.Context, m kafka.Message) ([]stream.Output, error) {
	var pred greenwavev1.IntersectionPrediction
	if err := proto.Unmarshal(m.Value, &pred); err != nil {
		return nil, stream.Reject(greenwavev1.RejectReason_REJECT_REASON_MALFORMED, "decode prediction: %v", err)
	}
	if err := wire.CheckVersion(pred.GetSchemaVersion()); err != nil {
		return nil, stream.Reject(greenwavev1.RejectReason_REJECT_REASON_UNSUPPORTED_SCHEMA, "%v", err)
	}
	id := pred.GetIntersectionId()
	prev := p.last[id]
	// Replays are harmless: a window not newer than the last planned one was already applied.
	if prev != nil && !pred.GetWindowEnd().AsTime().After(prev.GetValidFrom().AsTime()) {
		p.metrics.replays.Inc()
		return nil, nil
	}
	plan, err := p.planner.Plan(&pred, prev)
	if err != nil {
		if errors.Is(err, signal.ErrNoSafePlan) {
			p.log.Error("no safe plan exists; the intersection keeps its current plan", zap.String("intersection", id), zap.Error(err))
		}
		return nil, stream.Reject(greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT, "%v", err)
	}
	if plan.GetReason() != greenwavev1.PlanReason_PLAN_REASON_PREDICTIVE {
		p.log.Warn("fallback plan issued", zap.String("intersection", id), zap.String("reason", plan.GetReason().String()), zap.String("detail", plan.GetReasonDetail()))
	}
	b, err := proto.Marshal(plan)
	if err != nil {
		return nil, fmt.Errorf("encode plan: %w", err)
	}
	p.last[id] = plan
	p.dirty[id] = true
	p.metrics.plans.WithLabelValues(reasonLabel(plan.GetReason())).Inc()
	return []stream.Output{{Topic: p.names.Plans, Key: []byte(id), Value: b, EventID: plan.GetPlanId(), Payload: wire.PayloadPlan}}, nil
}

// Checkpoint implements stream.Handler. Plans reach subscribers only once they are on the topic and the state
// covering them is about to be committed, so gRPC and Kafka subscribers see the same plans.
func (p *partition) Checkpoint(context.Context) ([]stream.Output, error) {
	ids := make([]string, 0, len(p.dirty))
	for id := range p.dirty {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	outs := make([]stream.Output, 0, len(ids))
	for _, id := range ids {
		b, err := proto.Marshal(p.last[id])
		if err != nil {
			return nil, fmt.Errorf("encode state of %s: %w", id, err)
		}
		outs = append(outs, stream.Output{Topic: p.names.SignalState, Key: []byte(id), Value: b})
		p.hub.Publish(id, p.last[id])
	}
	clear(p.dirty)
	return outs, nil
}

func reasonLabel(r greenwavev1.PlanReason) string {
	return map[greenwavev1.PlanReason]string{
		greenwavev1.PlanReason_PLAN_REASON_PREDICTIVE: "predictive", greenwavev1.PlanReason_PLAN_REASON_TIME_OF_DAY: "time_of_day",
		greenwavev1.PlanReason_PLAN_REASON_FIXED_TIME: "fixed_time", greenwavev1.PlanReason_PLAN_REASON_OVERRIDE: "override",
	}[r]
}

// API implements SignalControlService.
type API struct {
	greenwavev1.UnimplementedSignalControlServiceServer
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

// WatchPlans sends the current plans, then every new one. A subscriber that falls too far behind receives the
// latest plan per intersection (older ones coalesced) and is ended with RESOURCE_EXHAUSTED only past its buffer.
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
			return status.Error(codes.ResourceExhausted, "subscriber too slow: reconnect to resume from the current plans")
		case errors.Is(err, broadcast.ErrClosed):
			return status.Error(codes.Unavailable, "server shutting down")
		case err != nil:
			return status.FromContextError(err).Err()
		}
		if err := st.Send(&greenwavev1.WatchPlansResponse{Plan: it.Value, Initial: it.Initial, Coalesced: uint32(it.Coalesced)}); err != nil {
			return err
		}
	}
}

// Run starts signal-control and processes until ctx ends.
func Run(ctx context.Context, lookup func(string) (string, bool)) error {
	var cfg Config
	if err := app.Load(&cfg, lookup); err != nil {
		return err
	}
	env, err := app.Setup("signalcontrol", &cfg.Common)
	if err != nil {
		return err
	}
	defer env.Log.Sync() //nolint:errcheck // nothing useful to do with a failed flush at exit
	var infeasible []error
	for _, in := range env.Topology.Topology().Intersections {
		if err := signal.Feasible(in); err != nil {
			infeasible = append(infeasible, err)
		}
	}
	if err := errors.Join(infeasible...); err != nil {
		return fmt.Errorf("topology has intersections no safe plan fits: %w", err)
	}
	names := cfg.Topics()
	counts, err := app.CheckTopics(ctx, cfg.Brokers, names.Predictions, names.Plans, names.SignalState, names.DeadLetters)
	if err != nil {
		return err
	}
	if counts[names.SignalState] != counts[names.Predictions] {
		return fmt.Errorf("topic %s must be co-partitioned with %s", names.SignalState, names.Predictions)
	}
	hub := broadcast.New[*greenwavev1.SignalPlan]()
	defer hub.Close()
	m := &metrics{
		plans: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "signal", Name: "plans_total",
			Help: "Signal plans issued, by reason (predictive, time_of_day, fixed_time, override)."}, []string{"reason"}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "signal", Name: "replays_skipped_total",
			Help: "Predictions skipped because their window was already planned."}),
		watchers: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "greenwave", Subsystem: "signal", Name: "watchers",
			Help: "Live WatchPlans subscribers."}, func() float64 { return float64(hub.Subscribers()) }),
	}
	env.Registry.MustRegister(m.plans, m.replays, m.watchers)
	planner := &Planner{topo: env.Topology, revision: env.Topology.Topology().Revision, horizon: cfg.PlanHorizon, validity: cfg.PlanValidity,
		gate: signal.Gate{MaxRelativeInterval: cfg.MaxRelInterval}}
	prod := stream.NewProducer(cfg.Brokers, stream.ProducerConfig{})
	defer prod.Close()
	newHandler := func(ctx context.Context, part int) (stream.Handler, error) {
		p := &partition{planner: planner, names: names, hub: hub, metrics: m, last: map[string]*greenwavev1.SignalPlan{}, dirty: map[string]bool{}, log: env.Log}
		err := stream.ReadPartition(ctx, cfg.Brokers, names.SignalState, part, func(msg kafka.Message) error {
			var plan greenwavev1.SignalPlan
			if err := proto.Unmarshal(msg.Value, &plan); err != nil {
				return fmt.Errorf("decode state of %s: %w", msg.Key, err)
			}
			p.last[string(msg.Key)] = &plan
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("restore signal-control state: %w", err)
		}
		for id, plan := range p.last {
			hub.Publish(id, plan)
		}
		return p, nil
	}
	proc := stream.NewProcessor(stream.ProcessorConfig{
		Brokers: cfg.Brokers, GroupID: cfg.Group("signalcontrol"), Topic: names.Predictions, DeadLetterTopic: names.DeadLetters, Service: "signalcontrol",
	}, prod, newHandler, env.Log, stream.NewMetrics(env.Registry))
	greenwavev1.RegisterSignalControlServiceServer(env.Server.GRPC(), &API{hub: hub, buffer: cfg.SubscriberBuffer})
	env.Server.AddReadiness("consumer-group", func() error {
		if !proc.Joined() {
			return errors.New("joining the consumer group")
		}
		return nil
	})
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return env.Server.Run(ctx) })
	g.Go(func() error { return proc.Run(ctx) })
	return g.Wait()
}
