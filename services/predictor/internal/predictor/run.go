package predictor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/pkg/broadcast"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// Run starts the predictor and processes until ctx ends.
func Run(ctx context.Context, lookup func(string) (string, bool)) error {
	var cfg Config
	if err := app.Load(&cfg, lookup); err != nil {
		return err
	}
	horizons, _ := cfg.horizons() // validated by Load
	targets, _ := cfg.targets()
	classify, _ := cfg.classifier()
	env, err := app.Setup("predictor", &cfg.Common)
	if err != nil {
		return err
	}
	defer env.Log.Sync() //nolint:errcheck // nothing useful to do with a failed flush at exit
	// A secure Conn pools its connections in a transport of its own: they end with the run.
	defer env.Kafka.CloseIdleConnections()
	names := cfg.Topics()
	pred := &Predictor{models: models.NewStore(), horizons: newHorizonRule(horizons), targets: targets, maxAge: cfg.MaxModelAge, confidence: cfg.Confidence, classify: classify}
	svc := newService(serviceConfig{
		kafkaConn: env.Kafka, names: names, group: cfg.Group("predictor"), buffer: cfg.SubscriberBuffer, maxSubscribers: cfg.MaxSubscribers,
		maxBatch: cfg.MaxBatch, commitInterval: cfg.CommitInterval, sessionTimeout: cfg.SessionTimeout, writeLinger: cfg.WriteLinger, modelWait: cfg.ModelWait,
	}, pred, env.Log, env.Registry)
	greenwavev1.RegisterPredictionServiceServer(env.Server.GRPC(), svc.api)
	env.Server.OnShutdown(svc.hub.Close)
	env.Server.AddReadiness("models", svc.ready)
	env.Server.AddReadiness("consumer-group", svc.proc.ReadyCheck)
	// Serve first: a predictor started while the brokers are down answers /readyz "startup" while it waits.
	run := env.Serve(ctx)
	ctx = run.Context()
	counts, err := app.CheckTopics(ctx, env.Kafka, names, names.Features, names.Models, names.Predictions, names.DeadLetters)
	if err != nil {
		return run.Abort(err)
	}
	svc.cfg.modelPartitions = counts[names.Models] // read by run, started below
	run.Started()
	run.Go(func() error { return svc.run(ctx) })
	return run.Wait()
}

// service is the predictor without its server: the models follower, the Kafka loop and the API. Tests and
// benchmarks build it directly.
type service struct {
	cfg          serviceConfig
	log          *zap.Logger
	store        *models.Store
	hub          *broadcast.Hub[*greenwavev1.IntersectionPrediction]
	metrics      *metrics
	pred         *Predictor
	waiter       *modelWaiter
	prod         *stream.Producer
	proc         *stream.Processor
	api          *API
	modelsLoaded chan struct{}
	loadedOnce   sync.Once
}

// serviceConfig is what newService needs, resolved from Config.
type serviceConfig struct {
	kafkaConn       kafkaconn.Conn
	names           topics.Names
	group           string
	modelPartitions int
	buffer          int
	maxSubscribers  int           // PREDICTOR_MAX_SUBSCRIBERS; 0: no cap
	maxBatch        int           // stream.ProcessorConfig.MaxBatch (0: the stream default)
	commitInterval  time.Duration // partition.commitInterval
	sessionTimeout  time.Duration // stream.ProcessorConfig.SessionTimeout (0: the stream default)
	modelWait       time.Duration // PREDICTOR_MODEL_WAIT (0: never wait for fresh models)
	writeLinger     time.Duration // stream.ProducerConfig.BatchTimeout (0: the stream default)
}

func newService(sc serviceConfig, pred *Predictor, log *zap.Logger, reg prometheus.Registerer) *service {
	s := &service{cfg: sc, log: log, store: pred.models, hub: broadcast.New[*greenwavev1.IntersectionPrediction](), pred: pred, modelsLoaded: make(chan struct{})}
	s.metrics = newMetrics(reg, s.store, s.hub)
	// Set before any partition predicts; the reporter needs the service's logger and metrics.
	pred.mismatches = &mismatchReporter{log: log, count: s.metrics.mismatches}
	if pred.horizons == nil {
		pred.horizons = newHorizonRule(nil)
	}
	rejected := newRejections(reg, log)
	s.waiter = newModelWaiter(s.store, sc.modelWait, log, reg)
	s.api = &API{hub: s.hub, buffer: sc.buffer, maxSubs: sc.maxSubscribers, metrics: s.metrics}
	s.prod = stream.NewProducer(sc.kafkaConn, stream.ProducerConfig{BatchTimeout: sc.writeLinger, Registerer: reg})
	newHandler := func(ctx context.Context, _ int) (*stream.Handler, error) {
		select { // never predict before the models topic was read whole
		case <-s.modelsLoaded:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		p := &partition{pred: pred, rejections: rejected, names: sc.names, hub: s.hub, metrics: s.metrics, now: time.Now, commitInterval: sc.commitInterval,
			waiter: s.waiter, gaveUp: map[string]time.Time{},
			published: func(ctx context.Context, partition int, from int64) (map[string]*greenwavev1.IntersectionPrediction, error) {
				return publishedSince(ctx, sc.kafkaConn, sc.names.Predictions, partition, from, log)
			}}
		return p.handler(), nil
	}
	s.proc = stream.NewProcessor(stream.ProcessorConfig{
		Conn: sc.kafkaConn, GroupID: sc.group, Topic: sc.names.Features, DeadLetterTopic: sc.names.DeadLetters, Service: "predictor",
		DeadLetter: wire.DeadLetter, MaxBatch: sc.maxBatch, SessionTimeout: sc.sessionTimeout,
	}, s.prod, newHandler, log, stream.NewMetrics(reg))
	return s
}

// ready reports whether the models topic was read whole.
func (s *service) ready() error {
	select {
	case <-s.modelsLoaded:
		return nil
	default:
		return errors.New("restoring the models topic")
	}
}

// run follows the models topic and runs the Kafka loop until ctx ends; it closes the hub and producer on return.
func (s *service) run(ctx context.Context) error {
	defer s.prod.Close()
	defer s.hub.Close()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return followModels(ctx, s.cfg.kafkaConn, s.cfg.names.Models, s.cfg.modelPartitions, s.store, s.log, func() {
			s.loadedOnce.Do(func() { close(s.modelsLoaded) })
		})
	})
	g.Go(func() error { return s.proc.Run(ctx) })
	return g.Wait()
}

// followModels keeps store up to date with the compacted models topic. loaded is called once every partition
// was read up to the end it had when following began — only then does the store hold every model whole, so
// nothing is predicted (and readiness is not reported) from a partial set of models. Undecodable snapshots are
// skipped with a warning: the trainer owns the topic and the next snapshot of the model replaces it.
func followModels(ctx context.Context, kafkaConn kafkaconn.Conn, topic string, partitions int, store *models.Store, log *zap.Logger, loaded func()) error {
	err := wire.FollowModels(ctx, kafkaConn, topic, partitions, wire.ModelFollower{
		Put: func(s *train.Snapshot) { store.Put(s) },
		Undecodable: func(msg kafka.Message, err error) {
			log.Warn("skipping undecodable model snapshot", zap.ByteString("key", msg.Key), zap.Int64("offset", msg.Offset), zap.Error(err))
		},
		CaughtUp: func() {
			log.Info("models restored", zap.Int("models", store.Len()))
			loaded()
		},
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("follow models topic %s: %w", topic, err)
	}
	return nil
}

// publishedSince returns, by event id, the predictions on partition of topic computed from features at offset from
// or later: what the partition's previous owner published for frames it did not commit before it crashed or lost
// the partition. Predictions are appended in the order of their frames, so these are the partition's last records:
// it reads back from the end in growing steps until a record computed from an earlier frame, or one without the
// stream.HeaderSourceOffset header (written before the header existed), shows where they begin. An undecodable
// record is skipped (its frame is predicted again).
func publishedSince(ctx context.Context, conn kafkaconn.Conn, topic string, partition int, from int64, log *zap.Logger) (map[string]*greenwavev1.IntersectionPrediction, error) {
	first, end, err := stream.PartitionBounds(ctx, conn, topic, partition)
	if err != nil {
		return nil, fmt.Errorf("bounds of %s[%d]: %w", topic, partition, err)
	}
	for step := int64(256); ; step *= 4 {
		start := max(first, end-step)
		out := map[string]*greenwavev1.IntersectionPrediction{}
		complete := start == first
		err := stream.ReadRange(ctx, conn, topic, partition, start, end, func(m kafka.Message) error {
			off, err := strconv.ParseInt(string(stream.Header(m, stream.HeaderSourceOffset)), 10, 64)
			if err != nil || off < from {
				complete = true
				return nil
			}
			pr, err := wire.TopicPredictions.Decode(m)
			if err != nil {
				log.Warn("skipping an undecodable prediction of an uncommitted frame", zap.String("topic", topic), zap.Int("partition", partition), zap.Int64("offset", m.Offset), zap.Error(err))
				return nil
			}
			out[pr.GetEventId()] = pr
			return nil
		})
		if err != nil {
			return nil, err
		}
		if complete {
			return out, nil
		}
	}
}
