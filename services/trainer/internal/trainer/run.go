package trainer

import (
	"context"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/pkg/broadcast"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// Run starts the trainer and processes until ctx ends.
func Run(ctx context.Context, lookup func(string) (string, bool)) error {
	var cfg Config
	if err := app.Load(&cfg, lookup); err != nil {
		return err
	}
	tc, err := cfg.trainConfig()
	if err != nil {
		return err
	}
	env, err := app.Setup("trainer", &cfg.Common)
	if err != nil {
		return err
	}
	defer env.Log.Sync() //nolint:errcheck // nothing useful to do with a failed flush at exit
	// A secure Conn pools its connections in a transport of its own: they end with the run.
	defer env.Kafka.CloseIdleConnections()
	names := cfg.Topics()
	var counts map[string]int // set by the topic check, before the processor and the follower start
	m := newMetrics(env.Registry)
	status := newStatusBoard()
	store := models.NewStore()
	hub := broadcast.New[*train.Snapshot]()
	defer hub.Close()
	prod := stream.NewProducer(env.Kafka, stream.ProducerConfig{Registerer: env.Registry})
	defer prod.Close()
	proc := stream.NewProcessor(stream.ProcessorConfig{
		Conn: env.Kafka, GroupID: cfg.Group(cfg.groupName()), Topic: names.Features, DeadLetterTopic: names.DeadLetters,
		Service: "trainer", DeadLetter: wire.DeadLetter, MaxBatch: cfg.MaxBatch, SessionTimeout: cfg.SessionTimeout,
	}, prod, func(ctx context.Context, part int) (*stream.Handler, error) {
		p, err := restorePartition(ctx, env.Kafka, part, counts[names.Features], tc, names, m, env.Log)
		if err != nil {
			return nil, err
		}
		p.checkpointEvery, p.checkpointIdle, p.publishEvery = cfg.CheckpointEvery, cfg.CheckpointIdle, cfg.PublishEvery
		p.status = status
		return p.handler(), nil
	}, env.Log, stream.NewMetrics(env.Registry))
	greenwavev1.RegisterModelServiceServer(env.Server.GRPC(), NewAPI(store, hub, cfg.SubscriberBuffer, env.Registry).WithStatus(status).WithMaxSubscribers(cfg.MaxSubscribers))
	env.Server.OnShutdown(hub.Close)
	modelsLoaded := make(chan struct{})
	env.Server.AddReadiness("consumer-group", proc.ReadyCheck)
	env.Server.AddReadiness("models", app.Loaded(modelsLoaded, "the models topic for ModelService"))
	// Serve first: a trainer started while the brokers are down answers /readyz "startup" while it waits.
	run := env.Serve(ctx)
	ctx = run.Context()
	counts, err = app.CheckTopics(ctx, env.Kafka, names, names.Features, names.Models, names.TrainerState, names.DeadLetters)
	if err != nil {
		return run.Abort(err)
	}
	run.Started()
	run.Go(func() error { return proc.Run(ctx) })
	run.Go(func() error {
		return followModels(ctx, env.Kafka, names.Models, counts[names.Models], store, hub, m, env.Log, func() { close(modelsLoaded) })
	})
	return run.Wait()
}

// followModels reads the whole models topic into store, from the beginning and then as it grows, publishing
// every stored update to hub; caughtUp is called once the topic's end at start-up is reached.
func followModels(ctx context.Context, kafkaConn kafkaconn.Conn, topic string, partitions int, store *models.Store,
	hub *broadcast.Hub[*train.Snapshot], m *metrics, log *zap.Logger, caughtUp func()) error {
	return wire.FollowModels(ctx, kafkaConn, topic, partitions, wire.ModelFollower{
		Put: func(s *train.Snapshot) {
			if store.Put(s) {
				hub.Publish(s.ModelID, s)
			}
		},
		Undecodable: func(msg kafka.Message, err error) {
			m.undecodable.Inc()
			log.Error("undecodable model snapshot skipped", zap.ByteString("key", msg.Key), zap.Int("partition", msg.Partition),
				zap.Int64("offset", msg.Offset), zap.Error(err))
		},
		CaughtUp: caughtUp,
	})
}
