// Package predictor wires models (followed from the compacted models topic) and feature frames to predictions on
// Kafka and to PredictionService subscribers. The maths is pkg/train.Predict; levels are pkg/congestion.
//
// Order of effects: a frame is consumed, predicted and published to the predictions topic; only after Kafka
// acknowledged the batch (stream.WithAcknowledged) are its predictions handed to the hub, so a gRPC subscriber never
// sees a prediction that a Kafka consumer might not. Both see the same message, event id included. Input offsets
// are committed later, at most every PREDICTOR_COMMIT_INTERVAL (stream.WithCheckpointInterval): the predictor has no
// state of its own to snapshot, and a crash re-predicts the frames since the last commit, with the same event ids.
//
// Replays: the prediction of a frame is a pure function of the frame and the model snapshots held, and its event
// id is the frame's (intersection and window). A replayed frame (restart, rebalance) gives the same id and, if
// the models have not learned since, the same content. What can differ on a replay is the model in use: a frame
// replayed after the trainer published newer snapshots is predicted by the newer models (model_version,
// model_age, values, intervals, interval_coverage, stale, fallback when a model appeared). Consumers that need
// exactly one prediction per window keep the first per event id, or the newest.
//
// Synchronisation with the trainer: a frame whose model is stale is held until the trainer's snapshot makes it
// fresh, for at most PREDICTOR_MODEL_WAIT without progress (modelWaiter), so a fast replay or a backlog is
// predicted with models of its own event time rather than marked stale.
package predictor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/pkg/broadcast"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// partition predicts frames of one partition; the predictor's only state is the shared model store.
type partition struct {
	pred       *Predictor
	rejections *rejections // nil: not counted (tests)
	names      topics.Names
	hub        *broadcast.Hub[*greenwavev1.IntersectionPrediction]
	metrics    *metrics
	now        func() time.Time
	// commitInterval is the stream.WithCheckpointInterval (0: commit after every batch).
	commitInterval time.Duration
	// waiter holds frames whose models are stale until the trainer catches up (nil: never wait); gaveUp is
	// this partition's given-up models (modelWaiter.await).
	waiter *modelWaiter
	gaveUp map[string]time.Time
	// batch holds the predictions handled but not yet acknowledged by Kafka, began when their frames were
	// consumed.
	batch []*greenwavev1.IntersectionPrediction
	began []time.Time
}

// handler is the stream handler of the partition: frames decoded by the features topic's declaration,
// predictions handed to subscribers once acknowledged, and input offsets committed at most every
// commitInterval rather than after every batch, saving a synchronous round trip per batch. The predictor has no
// state of its own to snapshot (the models come from the models topic), so a checkpoint only commits the input
// offsets. A crash replays the frames since the last commit; their predictions are published again with the
// same event ids (see the package documentation).
func (p *partition) handler() *stream.Handler {
	return stream.NewHandler(p.Handle, stream.WithAcknowledged(p.Acknowledged),
		stream.WithCheckpointInterval(p.commitInterval))
}

// Handle is the partition's stream.HandleFunc: frames decoded by the features topic's declaration.
func (p *partition) Handle(ctx context.Context, m kafka.Message) ([]stream.Output, error) {
	return stream.Decoded(wire.TopicFeatures, p.predict)(ctx, m)
}

// predict predicts one decoded frame.
func (p *partition) predict(ctx context.Context, _ kafka.Message, fp *greenwavev1.IntersectionFeatures) ([]stream.Output, error) {
	began := p.now()
	if fp.GetIntersectionId() == "" || fp.GetWindowStart() == nil || fp.GetWindowEnd() == nil {
		return nil, stream.Reject(greenwavev1.RejectReason_REJECT_REASON_MALFORMED, "features without intersection_id, window_start or window_end")
	}
	f := wire.Frame(fp)
	horizons, err := p.pred.horizons.of(f)
	if err != nil {
		cause, key := causeBadWindow, ""
		if ws := f.WindowEnd.Sub(f.WindowStart); train.CheckWindow(int(ws/time.Second)) == nil {
			cause, key = causeHorizons, ws.String()
		}
		p.rejections.add(cause, key, f.IntersectionID, err.Error())
		rej := stream.Reject(greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT, "frame %s: %v", fp.GetEventId(), err)
		rej.EventID = fp.GetEventId()
		return nil, rej
	}
	// Hold the frame while the trainer is behind it (a blocked partition goroutine: kafka-go heartbeats the
	// group on a goroutine of its own, and ctx ends the wait on shutdown or rebalance).
	if err := p.waiter.await(ctx, p.pred, f, horizons, p.gaveUp); err != nil {
		return nil, err
	}
	pred := p.pred.Predict(f)
	out, err := wire.TopicPredictions.Encode(p.names, pred)
	if err != nil {
		return nil, err
	}
	for _, ap := range pred.GetApproaches() {
		for _, h := range ap.GetHorizons() {
			if h.GetFallback() {
				p.metrics.fallbacks.Inc()
			}
			if h.GetStale() {
				p.metrics.stale.Inc()
			}
		}
	}
	p.batch = append(p.batch, pred)
	p.began = append(p.began, began)
	return []stream.Output{out}, nil
}

// Acknowledged is the partition's stream.WithAcknowledged: the predictions handled since the last call are on the
// topic now, so subscribers get them — Kafka and gRPC subscribers see the same content. This happens after every write
// of outputs, independently of the (possibly deferred) offset commit.
func (p *partition) Acknowledged(context.Context) error {
	now := p.now()
	for i, pred := range p.batch {
		p.hub.Publish(pred.GetIntersectionId(), pred)
		p.metrics.predictions.Inc()
		p.metrics.latency.Observe(now.Sub(p.began[i]).Seconds())
	}
	clear(p.batch) // let the hub own the predictions
	p.batch, p.began = p.batch[:0], p.began[:0]
	return nil
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
	brokers         []string
	names           topics.Names
	group           string
	modelPartitions int
	buffer          int
	maxBatch        int           // stream.ProcessorConfig.MaxBatch (0: the stream default)
	commitInterval  time.Duration // partition.commitInterval
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
	s.api = &API{hub: s.hub, buffer: sc.buffer, metrics: s.metrics}
	s.prod = stream.NewProducer(sc.brokers, stream.ProducerConfig{BatchTimeout: sc.writeLinger, Registerer: reg})
	newHandler := func(ctx context.Context, _ int) (*stream.Handler, error) {
		select { // never predict before the models topic was read whole
		case <-s.modelsLoaded:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		p := &partition{pred: pred, rejections: rejected, names: sc.names, hub: s.hub, metrics: s.metrics, now: time.Now, commitInterval: sc.commitInterval,
			waiter: s.waiter, gaveUp: map[string]time.Time{}}
		return p.handler(), nil
	}
	s.proc = stream.NewProcessor(stream.ProcessorConfig{
		Brokers: sc.brokers, GroupID: sc.group, Topic: sc.names.Features, DeadLetterTopic: sc.names.DeadLetters, Service: "predictor",
		DeadLetter: wire.DeadLetter, MaxBatch: sc.maxBatch,
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
		return followModels(ctx, s.cfg.brokers, s.cfg.names.Models, s.cfg.modelPartitions, s.store, s.log, func() {
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
func followModels(ctx context.Context, brokers []string, topic string, partitions int, store *models.Store, log *zap.Logger, loaded func()) error {
	err := wire.FollowModels(ctx, brokers, topic, partitions, wire.ModelFollower{
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
	names := cfg.Topics()
	counts, err := app.CheckTopics(ctx, cfg.Brokers, names.Features, names.Models, names.Predictions, names.DeadLetters)
	if err != nil {
		return err
	}
	pred := &Predictor{models: models.NewStore(), horizons: newHorizonRule(horizons), targets: targets, maxAge: cfg.MaxModelAge, confidence: cfg.Confidence, classify: classify}
	svc := newService(serviceConfig{
		brokers: cfg.Brokers, names: names, group: cfg.Group("predictor"), modelPartitions: counts[names.Models], buffer: cfg.SubscriberBuffer,
		maxBatch: cfg.MaxBatch, commitInterval: cfg.CommitInterval, writeLinger: cfg.WriteLinger, modelWait: cfg.ModelWait,
	}, pred, env.Log, env.Registry)
	greenwavev1.RegisterPredictionServiceServer(env.Server.GRPC(), svc.api)
	env.Server.AddReadiness("models", svc.ready)
	env.Server.AddReadiness("consumer-group", svc.proc.ReadyCheck)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return env.Server.Run(ctx) })
	g.Go(func() error { return svc.run(ctx) })
	return g.Wait()
}
