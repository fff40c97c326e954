package signalcontrol

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/pkg/broadcast"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/server"
	"github.com/greenwave-city/greenwave/pkg/signal"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// service is what every partition handler and the API share.
type service struct {
	planner    *Planner
	names      topics.Names
	partitions int
	hub        *broadcast.Hub[*greenwavev1.SignalPlan]
	metrics    *metrics
	overrides  *overrideTable
	operators  *Operators
	// authLog logs refused operator authentication (nil: not logged).
	authLog   *server.AuthFailureLog
	producer  *stream.Producer
	log       *zap.Logger
	now       func() time.Time
	alpha     float64
	kafkaConn kafkaconn.Conn
	client    *kafka.Client
	// checkpointEvery and checkpointIdle are SIGNAL_CHECKPOINT_INTERVAL and SIGNAL_CHECKPOINT_IDLE.
	checkpointEvery, checkpointIdle time.Duration
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
	// A secure Conn pools its connections in a transport of its own: they end with the run.
	defer env.Kafka.CloseIdleConnections()
	topo := env.Topology.Topology()
	var infeasible []error
	for _, in := range topo.Intersections {
		if in.ForecastOnly {
			continue // no signals: nothing is planned for it
		}
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
	hub := broadcast.New[*greenwavev1.SignalPlan]()
	defer hub.Close()
	if d.hub != nil {
		d.hub(hub)
	}
	table := newOverrideTable()
	prod := stream.NewProducer(env.Kafka, stream.ProducerConfig{Registerer: env.Registry})
	defer prod.Close()
	svc := &service{
		planner: &Planner{topo: env.Topology, revision: topo.Revision, horizon: cfg.PlanHorizon, validity: cfg.PlanValidity,
			gate: signal.Gate{MaxRelativeInterval: cfg.MaxRelInterval, RecallVPH: cfg.RecallVPH}, zone: zone, minSamples: uint32(cfg.ProfileMinSamples), coordination: coord},
		names: names, hub: hub, metrics: newMetrics(env.Registry, hub, table, d.now),
		overrides: table, operators: operators, authLog: server.NewAuthFailureLog(env.Log), producer: prod, log: env.Log, now: d.now, alpha: cfg.ProfileAlpha,
		kafkaConn: env.Kafka, client: env.Kafka.Client(30 * time.Second),
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
		Conn: env.Kafka, GroupID: cfg.Group("signalcontrol"), Topic: names.Predictions, DeadLetterTopic: names.DeadLetters,
		Service: "signalcontrol", DeadLetter: wire.DeadLetter, IdleTick: cfg.OverrideTick,
	}, prod, newHandler, env.Log, stream.NewMetrics(env.Registry))
	greenwavev1.RegisterSignalControlServiceServer(env.Server.GRPC(), &API{svc: svc, hub: hub, buffer: cfg.SubscriberBuffer, maxSubs: cfg.MaxSubscribers})
	env.Server.OnShutdown(hub.Close)
	overridesLoaded := make(chan struct{})
	env.Server.AddReadiness("overrides", app.Loaded(overridesLoaded, "the overrides topic"))
	env.Server.AddReadiness("consumer-group", proc.ReadyCheck)
	// Serve first: a signal-control started while the brokers are down answers /readyz "startup" while it waits.
	run := env.Serve(ctx)
	ctx = run.Context()
	if d.listening != nil {
		run.Go(func() error {
			a, err := env.Server.Addrs(ctx)
			if err == nil {
				d.listening(a)
			}
			return nil
		})
	}
	counts, err := app.CheckTopics(ctx, env.Kafka, names, names.Predictions, names.Plans, names.SignalState, names.Overrides, names.DeadLetters)
	if err != nil {
		return run.Abort(err)
	}
	svc.partitions = counts[names.Predictions] // read by the follower and the partitions, started below
	run.Started()
	run.Go(func() error {
		err := stream.Follow(ctx, env.Kafka, names.Overrides, svc.partitions, func(m kafka.Message) error {
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
	run.Go(func() error {
		// Plan only once every stored override is known, or a restart would briefly ignore a pinned plan.
		select {
		case <-overridesLoaded:
		case <-ctx.Done():
			return nil
		}
		return proc.Run(ctx)
	})
	return run.Wait()
}
