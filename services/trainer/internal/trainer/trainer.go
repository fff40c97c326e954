// Package trainer wires the online learning core (pkg/train) to Kafka and gRPC: feature frames in, model
// snapshots out on the compacted models topic — which is also the trainer's own changelog — and ModelService.
package trainer

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
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
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// Config is the trainer's configuration.
type Config struct {
	app.Common
	Horizons         []string `env:"TRAINER_HORIZONS" default:"15m,30m,1h" help:"forecast horizons, one model per approach and horizon"`
	MaxBatch         int      `env:"TRAINER_MAX_BATCH" default:"200" help:"frames handled before snapshots are written and offsets committed"`
	SubscriberBuffer int      `env:"TRAINER_SUBSCRIBER_BUFFER" default:"4096" help:"distinct models a WatchModels subscriber may lag behind before it is ended"`
}

func (c *Config) trainConfig() (train.Config, error) {
	tc := train.DefaultConfig()
	tc.Horizons = nil
	for _, s := range c.Horizons {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return tc, fmt.Errorf("TRAINER_HORIZONS: %q is not a positive duration", s)
		}
		tc.Horizons = append(tc.Horizons, d)
	}
	if err := tc.Validate(); err != nil {
		return tc, err
	}
	return tc, nil
}

// Validate reports every problem.
func (c *Config) Validate() []string {
	p := c.Common.Validate()
	if _, err := c.trainConfig(); err != nil {
		p = append(p, err.Error())
	}
	if c.MaxBatch < 1 {
		p = append(p, "TRAINER_MAX_BATCH must be at least 1")
	}
	return p
}

type metrics struct {
	applied    prometheus.Counter
	skipped    prometheus.Counter
	promotions prometheus.Counter
	drifts     prometheus.Counter
	mae        *prometheus.GaugeVec
}

// partition trains the models of one partition's intersections.
type partition struct {
	cfg      train.Config
	names    topics.Names
	learners map[string]*train.Learner // key "intersection/approach"
	dirty    map[string]bool
	metrics  *metrics
	log      *zap.Logger
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
	f := wire.Frame(&fp)
	for _, v := range f.Approaches {
		key := f.IntersectionID + "/" + v.ApproachID
		l, ok := p.learners[key]
		if !ok {
			var err error
			l, err = train.NewLearner(f.IntersectionID, v.ApproachID, f.Names, f.FeatureSetVersion, p.cfg)
			if err != nil {
				return nil, stream.Reject(greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT, "new model for %s: %v", key, err)
			}
			p.learners[key] = l
		}
		upd, err := l.Apply(f, v)
		if err != nil {
			return nil, stream.Reject(greenwavev1.RejectReason_REJECT_REASON_INCONSISTENT, "apply frame to %s: %v", key, err)
		}
		if upd.Skipped {
			p.metrics.skipped.Inc()
			continue
		}
		p.metrics.applied.Inc()
		for _, h := range upd.Horizons {
			if h.Promoted {
				p.metrics.promotions.Inc()
				p.log.Info("candidate promoted", zap.String("model", key), zap.Duration("horizon", h.Horizon),
					zap.String("from", h.PromotedFrom), zap.String("to", h.PromotedTo))
			}
			if h.Drift {
				p.metrics.drifts.Inc()
				p.log.Warn("drift detected; covariance reset", zap.String("model", key), zap.Duration("horizon", h.Horizon))
			}
		}
		p.dirty[key] = true
	}
	return nil, nil
}

// Checkpoint implements stream.Handler: snapshots of every model changed in the batch. They are the trainer's
// changelog, so input offsets are committed only after they are acknowledged.
func (p *partition) Checkpoint(context.Context) ([]stream.Output, error) {
	keys := make([]string, 0, len(p.dirty))
	for k := range p.dirty {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var outs []stream.Output
	for _, k := range keys {
		for _, s := range p.learners[k].Snapshots() {
			b, err := proto.Marshal(s)
			if err != nil {
				return nil, fmt.Errorf("encode snapshot %s: %w", s.GetModelId(), err)
			}
			outs = append(outs, stream.Output{Topic: p.names.Models, Key: []byte(s.GetModelId()), Value: b,
				EventID: fmt.Sprintf("%s@%d", s.GetModelId(), s.GetVersion()), Payload: wire.PayloadModel})
			if c := s.GetCandidates(); len(c) > 0 {
				p.metrics.mae.WithLabelValues(fmt.Sprint(s.GetHorizonS())).Set(promotedMAE(s))
			}
		}
	}
	clear(p.dirty)
	return outs, nil
}

func promotedMAE(s *greenwavev1.ModelSnapshot) float64 {
	for _, c := range s.GetCandidates() {
		if c.GetName() == s.GetPromoted() {
			return c.GetEvaluation().GetRecent().GetMae()
		}
	}
	return 0
}

// API implements ModelService over the whole models topic.
type API struct {
	greenwavev1.UnimplementedModelServiceServer
	store  *models.Store
	hub    *broadcast.Hub[*greenwavev1.ModelSnapshot]
	buffer int
}

func summary(s *greenwavev1.ModelSnapshot, withP bool) *greenwavev1.ModelSnapshot {
	if withP {
		return s
	}
	c := proto.CloneOf(s)
	for _, cand := range c.GetCandidates() {
		if cand.GetState() != nil {
			cand.State.Covariance = nil
		}
	}
	c.Pending, c.BaselineState = nil, nil
	return c
}

// GetModel returns one model.
func (a *API) GetModel(_ context.Context, req *greenwavev1.GetModelRequest) (*greenwavev1.GetModelResponse, error) {
	id := req.GetModelId()
	if id == "" {
		if req.GetIntersectionId() == "" || req.GetApproachId() == "" || req.GetHorizonS() == 0 {
			return nil, status.Error(codes.InvalidArgument, "give model_id, or intersection_id, approach_id and horizon_s")
		}
		target := "flow"
		if t := req.GetTarget(); t != greenwavev1.Target_TARGET_UNSPECIFIED {
			target = strings.ToLower(strings.TrimPrefix(t.String(), "TARGET_"))
		}
		id = models.ID(req.GetIntersectionId(), req.GetApproachId(), time.Duration(req.GetHorizonS())*time.Second, target)
	}
	s, ok := a.store.Get(id)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no model %q", id)
	}
	return &greenwavev1.GetModelResponse{Model: summary(s, req.GetIncludeCovariance())}, nil
}

// ListModels pages through models in id order; the page token is the last id of the previous page.
func (a *API) ListModels(_ context.Context, req *greenwavev1.ListModelsRequest) (*greenwavev1.ListModelsResponse, error) {
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, status.Error(codes.InvalidArgument, "page_size must not be negative")
	case size == 0:
		size = 100
	case size > 1000:
		size = 1000
	}
	after := ""
	if t := req.GetPageToken(); t != "" {
		b, err := base64.RawURLEncoding.DecodeString(t)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, "page_token is not one this server issued")
		}
		after = string(b)
	}
	list, more := a.store.List(req.GetFilter(), after, size)
	resp := &greenwavev1.ListModelsResponse{}
	for _, s := range list {
		resp.Models = append(resp.Models, summary(s, false))
	}
	if more && len(list) > 0 {
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(list[len(list)-1].GetModelId()))
	}
	return resp, nil
}

// WatchModels sends the current models matching the filter, then every update.
func (a *API) WatchModels(req *greenwavev1.WatchModelsRequest, st greenwavev1.ModelService_WatchModelsServer) error {
	sub := a.hub.Subscribe(a.buffer, func(_ string, s *greenwavev1.ModelSnapshot) bool { return models.Match(req.GetFilter(), s) })
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
		if err := st.Send(&greenwavev1.WatchModelsResponse{Model: summary(it.Value, false), Initial: it.Initial}); err != nil {
			return err
		}
	}
}

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
	names := cfg.Topics()
	counts, err := app.CheckTopics(ctx, cfg.Brokers, names.Features, names.Models, names.DeadLetters)
	if err != nil {
		return err
	}
	if counts[names.Models] != counts[names.Features] {
		return fmt.Errorf("topic %s must be co-partitioned with %s (same partition count)", names.Models, names.Features)
	}
	m := &metrics{
		applied: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "trainer", Name: "frames_applied_total",
			Help: "Approach feature vectors applied to models."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "trainer", Name: "replays_skipped_total",
			Help: "Approach feature vectors skipped because their window was already applied."}),
		promotions: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "trainer", Name: "promotions_total",
			Help: "Candidate promotions."}),
		drifts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "greenwave", Subsystem: "trainer", Name: "drifts_total",
			Help: "Drift detections."}),
		mae: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "greenwave", Subsystem: "trainer", Name: "recent_mae",
			Help: "Recent test-then-train MAE of the promoted candidate, of the last model snapshotted per horizon."}, []string{"horizon_s"}),
	}
	env.Registry.MustRegister(m.applied, m.skipped, m.promotions, m.drifts, m.mae)
	store := models.NewStore()
	hub := broadcast.New[*greenwavev1.ModelSnapshot]()
	defer hub.Close()
	prod := stream.NewProducer(cfg.Brokers, stream.ProducerConfig{})
	defer prod.Close()
	newHandler := func(ctx context.Context, part int) (stream.Handler, error) {
		snaps := map[string][]*greenwavev1.ModelSnapshot{}
		latest := map[string]*greenwavev1.ModelSnapshot{}
		err := stream.ReadPartition(ctx, cfg.Brokers, names.Models, part, func(msg kafka.Message) error {
			if msg.Value == nil {
				delete(latest, string(msg.Key))
				return nil
			}
			var s greenwavev1.ModelSnapshot
			if err := proto.Unmarshal(msg.Value, &s); err != nil {
				return fmt.Errorf("decode snapshot %s: %w", msg.Key, err)
			}
			latest[s.GetModelId()] = &s
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("restore models: %w", err)
		}
		for _, s := range latest {
			k := s.GetIntersectionId() + "/" + s.GetApproachId()
			snaps[k] = append(snaps[k], s)
		}
		p := &partition{cfg: tc, names: names, learners: map[string]*train.Learner{}, dirty: map[string]bool{}, metrics: m, log: env.Log}
		for k, ss := range snaps {
			in, ap, _ := strings.Cut(k, "/")
			l, err := train.RestoreLearner(in, ap, ss, tc)
			if err != nil {
				env.Log.Warn("cannot restore model; it restarts from scratch", zap.String("model", k), zap.Error(err))
				continue
			}
			p.learners[k] = l
		}
		env.Log.Info("partition models restored", zap.Int("partition", part), zap.Int("approaches", len(p.learners)))
		return p, nil
	}
	proc := stream.NewProcessor(stream.ProcessorConfig{
		Brokers: cfg.Brokers, GroupID: cfg.Group("trainer"), Topic: names.Features, DeadLetterTopic: names.DeadLetters,
		Service: "trainer", MaxBatch: cfg.MaxBatch,
	}, prod, newHandler, env.Log, stream.NewMetrics(env.Registry))
	greenwavev1.RegisterModelServiceServer(env.Server.GRPC(), &API{store: store, hub: hub, buffer: cfg.SubscriberBuffer})
	modelsLoaded := make(chan struct{})
	env.Server.AddReadiness("consumer-group", func() error {
		if !proc.Joined() {
			return errors.New("joining the consumer group")
		}
		return nil
	})
	env.Server.AddReadiness("models", func() error {
		select {
		case <-modelsLoaded:
			return nil
		default:
			return errors.New("loading the models topic for ModelService")
		}
	})
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return env.Server.Run(ctx) })
	g.Go(func() error { return proc.Run(ctx) })
	g.Go(func() error {
		return stream.Follow(ctx, cfg.Brokers, names.Models, counts[names.Models], func(msg kafka.Message) error {
			if msg.Value == nil {
				return nil
			}
			var s greenwavev1.ModelSnapshot
			if err := proto.Unmarshal(msg.Value, &s); err != nil {
				return nil
			}
			if store.Put(&s) {
				hub.Publish(s.GetModelId(), &s)
			}
			return nil
		}, func() { close(modelsLoaded) })
	})
	return g.Wait()
}
