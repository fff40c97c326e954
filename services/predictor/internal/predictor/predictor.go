// Package predictor wires models (followed from the compacted models topic) and feature frames to predictions on
// Kafka and to PredictionService subscribers. The maths is pkg/train.Predict; levels are pkg/congestion.
package predictor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/pkg/broadcast"
	"github.com/greenwave-city/greenwave/pkg/congestion"
	"github.com/greenwave-city/greenwave/pkg/features"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// Config is the predictor's configuration.
type Config struct {
	app.Common
	Horizons         []string      `env:"PREDICTOR_HORIZONS" default:"15m,30m,1h" help:"horizons predicted for every approach (must match the trainer's)"`
	MaxModelAge      time.Duration `env:"PREDICTOR_MAX_MODEL_AGE" default:"2h" help:"event time since a model last learned after which its predictions are marked stale"`
	Confidence       float64       `env:"PREDICTOR_CONFIDENCE" default:"0.9" help:"coverage of the prediction intervals"`
	SubscriberBuffer int           `env:"PREDICTOR_SUBSCRIBER_BUFFER" default:"1024" help:"distinct intersections a subscriber may lag behind before it is ended with RESOURCE_EXHAUSTED"`
}

func (c *Config) horizons() ([]time.Duration, error) {
	var hs []time.Duration
	for _, s := range c.Horizons {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("PREDICTOR_HORIZONS: %q is not a positive duration", s)
		}
		hs = append(hs, d)
	}
	if len(hs) == 0 {
		return nil, errors.New("PREDICTOR_HORIZONS is empty")
	}
	return hs, nil
}

// Validate reports every problem.
func (c *Config) Validate() []string {
	p := c.Common.Validate()
	if _, err := c.horizons(); err != nil {
		p = append(p, err.Error())
	}
	if !(c.Confidence > 0 && c.Confidence < 1) {
		p = append(p, "PREDICTOR_CONFIDENCE must lie in (0, 1)")
	}
	return p
}

// Predictor computes an intersection's predictions from a frame.
type Predictor struct {
	models     *models.Store
	horizons   []time.Duration
	maxAge     time.Duration
	confidence float64
	levels     congestion.Thresholds
}

// Predict returns the prediction record for a frame: every approach and horizon, with intervals, staleness,
// contributions and congestion. Approaches without a trained model get a persistence forecast marked fallback.
func (pr *Predictor) Predict(f features.Frame) *greenwavev1.IntersectionPrediction {
	out := &greenwavev1.IntersectionPrediction{
		SchemaVersion: wire.SchemaVersion, EventId: wire.FeaturesEventID(f.IntersectionID, f.WindowStart),
		IntersectionId: f.IntersectionID, WindowStart: timestamppb.New(f.WindowStart), WindowEnd: timestamppb.New(f.WindowEnd),
		Weather: wire.FrameProto(features.Frame{Weather: f.Weather}).GetWeather(),
	}
	worst := -1.0
	for _, v := range f.Approaches {
		ap := &greenwavev1.ApproachPrediction{ApproachId: v.ApproachID, CapacityVph: v.CapacityVPH, Observed: wire.ObservedProto(v.Observed)}
		for i, h := range pr.horizons {
			p := pr.predictOne(f, v, h)
			if i == 0 && !math.IsNaN(p.GetDegreeOfSaturation()) {
				worst = math.Max(worst, p.GetDegreeOfSaturation())
			}
			ap.Horizons = append(ap.Horizons, p)
		}
		out.Approaches = append(out.Approaches, ap)
	}
	if worst >= 0 {
		out.Level, out.LevelOfService = pr.levels.Level(worst), congestion.LevelOfService(worst)
	}
	return out
}

func (pr *Predictor) predictOne(f features.Frame, v features.Vector, h time.Duration) *greenwavev1.Prediction {
	id := models.ID(f.IntersectionID, v.ApproachID, h, "flow")
	p := &greenwavev1.Prediction{
		HorizonS: uint32(h.Seconds()), Target: greenwavev1.Target_TARGET_FLOW, TargetTime: timestamppb.New(f.WindowStart.Add(h)),
		Confidence: pr.confidence, ModelId: id,
	}
	snap, ok := pr.models.Get(id)
	var fc train.Forecast
	var err error
	if ok {
		fc, err = train.Predict(snap, f, v, pr.confidence)
	}
	if !ok || err != nil {
		// No usable model yet: persistence, with an interval as wide as the approach's capacity, flagged.
		p.Fallback = true
		p.Value = v.Observed.FlowVPH
		p.Lower, p.Upper = 0, math.Max(v.CapacityVPH, v.Observed.FlowVPH)
		p.StdError = v.CapacityVPH / 2
	} else {
		p.Value, p.Lower, p.Upper, p.StdError = fc.Value, fc.Lower, fc.Upper, fc.StdErr
		p.ModelVersion = snap.GetVersion()
		age := f.WindowEnd.Sub(snap.GetUpdatedAt().AsTime())
		p.ModelAge = durationpb.New(age)
		p.Stale = age > pr.maxAge
		p.Drifting = snap.GetDrift().GetDrifting()
		for _, c := range fc.Contributions {
			if len(p.Contributions) == 5 {
				break
			}
			p.Contributions = append(p.Contributions, &greenwavev1.FeatureContribution{Feature: c.Feature, Contribution: c.Value})
		}
	}
	if v.CapacityVPH > 0 {
		p.DegreeOfSaturation = p.Value / v.CapacityVPH
		p.Level, p.LevelOfService = pr.levels.Level(p.DegreeOfSaturation), congestion.LevelOfService(p.DegreeOfSaturation)
	}
	return p
}

type metrics struct {
	predictions prometheus.Counter
	fallbacks   prometheus.Counter
	stale       prometheus.Counter
	latency     prometheus.Histogram
	subscribers prometheus.GaugeFunc
	models      prometheus.GaugeFunc
}

// partition predicts frames of one partition; the predictor's only state is the shared model store.
type partition struct {
	pred    *Predictor
	names   topics.Names
	hub     *broadcast.Hub[*greenwavev1.IntersectionPrediction]
	metrics *metrics
	batch   []*greenwavev1.IntersectionPrediction
	began   []time.Time
}

// Handle implements stream.Handler.
func (p *partition) Handle(_ context.Context, m kafka.Message) ([]stream.Output, error) {
	var fp greenwavev1.IntersectionFeatures
	if err := proto.Unmarshal(m.Value, &fp); err != nil {
		return nil, stream.Reject(greenwavev1.RejectReason_REJECT_REASON_MALFORMED, "decode features: %v", err)
	}
	if err := wire.CheckVersion(fp.GetSchemaVersion()); err != nil {
		return nil, stream.Reject(greenwavev1.RejectReason_REJECT_REASON_UNSUPPORTED_SCHEMA, "%v", err)
	}
	pred := p.pred.Predict(wire.Frame(&fp))
	b, err := proto.Marshal(pred)
	if err != nil {
		return nil, fmt.Errorf("encode prediction: %w", err)
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
	p.began = append(p.began, time.Now())
	return []stream.Output{{Topic: p.names.Predictions, Key: []byte(pred.GetIntersectionId()), Value: b, EventID: pred.GetEventId(), Payload: wire.PayloadPrediction}}, nil
}

// Checkpoint implements stream.Handler: the predictions of the batch are on the topic now, so subscribers get
// them — Kafka and gRPC subscribers see the same content.
func (p *partition) Checkpoint(context.Context) ([]stream.Output, error) {
	now := time.Now()
	for i, pred := range p.batch {
		p.hub.Publish(pred.GetIntersectionId(), pred)
		p.metrics.predictions.Inc()
		p.metrics.latency.Observe(now.Sub(p.began[i]).Seconds())
	}
	p.batch, p.began = p.batch[:0], p.began[:0]
	return nil, nil
}

// API implements PredictionService.
type API struct {
	greenwavev1.UnimplementedPredictionServiceServer
	hub    *broadcast.Hub[*greenwavev1.IntersectionPrediction]
	buffer int
}

// GetLatestPrediction returns the newest prediction of an intersection, optionally one approach only.
func (a *API) GetLatestPrediction(_ context.Context, req *greenwavev1.GetLatestPredictionRequest) (*greenwavev1.GetLatestPredictionResponse, error) {
	if req.GetIntersectionId() == "" {
		return nil, status.Error(codes.InvalidArgument, "intersection_id is required")
	}
	p, ok := a.hub.Latest(req.GetIntersectionId())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no prediction for intersection %q yet", req.GetIntersectionId())
	}
	if req.GetApproachId() != "" {
		p = proto.CloneOf(p)
		p.Approaches = slices.DeleteFunc(p.Approaches, func(a *greenwavev1.ApproachPrediction) bool { return a.GetApproachId() != req.GetApproachId() })
		if len(p.Approaches) == 0 {
			return nil, status.Errorf(codes.NotFound, "intersection %q has no approach %q", req.GetIntersectionId(), req.GetApproachId())
		}
	}
	return &greenwavev1.GetLatestPredictionResponse{Prediction: p}, nil
}

// Subscribe sends the current predictions matching the filter, then every update.
func (a *API) Subscribe(req *greenwavev1.SubscribeRequest, st greenwavev1.PredictionService_SubscribeServer) error {
	ids, minLevel, horizons := req.GetIntersectionIds(), req.GetMinLevel(), req.GetHorizonsS()
	filter := func(k string, p *greenwavev1.IntersectionPrediction) bool {
		return (len(ids) == 0 || slices.Contains(ids, k)) && p.GetLevel() >= minLevel
	}
	sub := a.hub.Subscribe(a.buffer, filter)
	defer sub.Close()
	for {
		it, err := sub.Next(st.Context())
		switch {
		case errors.Is(err, broadcast.ErrOverflow):
			return status.Error(codes.ResourceExhausted, "subscriber too slow: reconnect to resume from the current state")
		case errors.Is(err, broadcast.ErrClosed):
			return status.Error(codes.Unavailable, "server shutting down")
		case err != nil:
			return status.FromContextError(err).Err()
		}
		p := it.Value
		if len(horizons) > 0 {
			p = proto.CloneOf(p)
			for _, ap := range p.Approaches {
				ap.Horizons = slices.DeleteFunc(ap.Horizons, func(h *greenwavev1.Prediction) bool { return !slices.Contains(horizons, h.GetHorizonS()) })
			}
		}
		if err := st.Send(&greenwavev1.SubscribeResponse{Prediction: p, Initial: it.Initial, Coalesced: uint32(it.Coalesced)}); err != nil {
			return err
		}
	}
}

// Run starts the predictor and processes until ctx ends.
func Run(ctx context.Context, lookup func(string) (string, bool)) error {
	var cfg Config
	if err := app.Load(&cfg, lookup); err != nil {
		return err
	}
	horizons, _ := cfg.horizons()
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
	store := models.NewStore()
	hub := broadcast.New[*greenwavev1.IntersectionPrediction]()
	defer hub.Close()
	m := &metrics{
		predictions: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "predictor", Name: "predictions_total",
			Help: "Intersection predictions published."}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "predictor", Name: "fallback_forecasts_total",
			Help: "Approach-horizon forecasts made without a trained model (persistence)."}),
		stale: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "predictor", Name: "stale_forecasts_total",
			Help: "Approach-horizon forecasts from a model older than the maximum age."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "greenwave", Subsystem: "predictor", Name: "latency_seconds",
			Help: "Feature frame consumed to prediction acknowledged by Kafka.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		subscribers: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "greenwave", Subsystem: "predictor", Name: "subscribers",
			Help: "Live Subscribe streams."}, func() float64 { return float64(hub.Subscribers()) }),
		models: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "greenwave", Subsystem: "predictor", Name: "models",
			Help: "Models held."}, func() float64 { return float64(store.Len()) }),
	}
	env.Registry.MustRegister(m.predictions, m.fallbacks, m.stale, m.latency, m.subscribers, m.models)
	pred := &Predictor{models: store, horizons: horizons, maxAge: cfg.MaxModelAge, confidence: cfg.Confidence, levels: congestion.DefaultThresholds()}
	modelsLoaded := make(chan struct{})
	var loadedOnce sync.Once
	prod := stream.NewProducer(cfg.Brokers, stream.ProducerConfig{})
	defer prod.Close()
	newHandler := func(ctx context.Context, _ int) (stream.Handler, error) {
		select { // never predict before the models topic was read whole
		case <-modelsLoaded:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &partition{pred: pred, names: names, hub: hub, metrics: m}, nil
	}
	proc := stream.NewProcessor(stream.ProcessorConfig{
		Brokers: cfg.Brokers, GroupID: cfg.Group("predictor"), Topic: names.Features, DeadLetterTopic: names.DeadLetters, Service: "predictor",
	}, prod, newHandler, env.Log, stream.NewMetrics(env.Registry))
	greenwavev1.RegisterPredictionServiceServer(env.Server.GRPC(), &API{hub: hub, buffer: cfg.SubscriberBuffer})
	env.Server.AddReadiness("models", func() error {
		select {
		case <-modelsLoaded:
			return nil
		default:
			return errors.New("restoring the models topic")
		}
	})
	env.Server.AddReadiness("consumer-group", func() error {
		if !proc.Joined() {
			return errors.New("joining the consumer group")
		}
		return nil
	})
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return env.Server.Run(ctx) })
	g.Go(func() error {
		return stream.Follow(ctx, cfg.Brokers, names.Models, counts[names.Models], func(msg kafka.Message) error {
			if msg.Value == nil {
				return nil
			}
			var s greenwavev1.ModelSnapshot
			if err := proto.Unmarshal(msg.Value, &s); err != nil {
				env.Log.Warn("skipping undecodable model snapshot", zap.ByteString("key", msg.Key), zap.Error(err))
				return nil
			}
			store.Put(&s)
			return nil
		}, func() {
			loadedOnce.Do(func() { close(modelsLoaded) })
			env.Log.Info("models restored")
		})
	})
	g.Go(func() error { return proc.Run(ctx) })
	return g.Wait()
}
