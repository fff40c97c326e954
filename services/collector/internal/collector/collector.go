package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/pkg/ingest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// publisher is what the collector needs from Kafka.
type publisher interface {
	Write(ctx context.Context, outs ...stream.Output) error
}

// Service validates batches and publishes their accepted readings. It is safe for concurrent use.
type Service struct {
	greenwavev1.UnimplementedCollectorServiceServer

	pub      publisher
	topo     *topology.Index
	names    topics.Names
	limits   ingest.Limits
	maxBatch int
	now      func() time.Time
	log      *zap.Logger
	metrics  *metrics
}

type metrics struct {
	accepted      *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	batchDuration prometheus.Histogram
	produceErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "greenwave", Subsystem: "collector", Name: "accepted_total",
			Help: "Readings accepted and acknowledged by Kafka, by kind and gateway.",
		}, []string{"kind", "gateway"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "greenwave", Subsystem: "collector", Name: "rejected_total",
			Help: "Readings refused, by kind, reason and gateway.",
		}, []string{"kind", "reason", "gateway"}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "greenwave", Subsystem: "collector", Name: "batch_duration_seconds",
			Help:    "Time from receiving a batch to acknowledging it (Kafka acks included).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		produceErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "greenwave", Subsystem: "collector", Name: "produce_errors_total",
			Help: "Batches whose Kafka write failed (the gateway gets UNAVAILABLE and resends).",
		}),
	}
	reg.MustRegister(m.accepted, m.rejected, m.batchDuration, m.produceErrors)
	return m
}

// Publish validates a batch, publishes the accepted readings and returns the ack once Kafka acknowledged them
// all. A batch whose Kafka write fails returns UNAVAILABLE: nothing is acknowledged, and the gateway resends
// (readings carry stable ids, so a resend creates no duplicate downstream).
func (s *Service) Publish(ctx context.Context, gateway string, b *greenwavev1.ReadingBatch) (*greenwavev1.BatchAck, error) {
	began := s.now()
	if b == nil {
		return nil, status.Error(codes.InvalidArgument, "batch is required")
	}
	if n := len(b.GetReadings()) + len(b.GetWeather()); n > s.maxBatch {
		st, _ := status.New(codes.InvalidArgument, fmt.Sprintf("batch holds %d readings, more than the maximum %d", n, s.maxBatch)).
			WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "batch", Description: fmt.Sprintf("at most %d readings per batch", s.maxBatch)}}})
		return nil, st.Err()
	}
	ack := &greenwavev1.BatchAck{BatchId: b.GetBatchId()}
	now := s.now()
	outs := make([]stream.Output, 0, len(b.GetReadings())+len(b.GetWeather()))
	for i, r := range b.GetReadings() {
		r = proto.CloneOf(r)
		if v := ingest.Traffic(r, s.topo, s.limits, now); v != nil {
			ack.Rejected = append(ack.Rejected, rejected(greenwavev1.ReadingKind_READING_KIND_TRAFFIC, i, "readings", r.GetReadingId(), v))
			s.metrics.rejected.WithLabelValues("traffic", stream.ReasonLabel(v.Reason), gateway).Inc()
			continue
		}
		ingest.Stamp(r, gateway, now)
		value, err := proto.Marshal(r)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "encode reading: %v", err)
		}
		outs = append(outs, stream.Output{Topic: s.names.Readings, Key: []byte(r.GetIntersectionId()), Value: value, EventID: r.GetReadingId(), Payload: "greenwave.v1.TrafficReading"})
		ack.AcceptedReadings++
	}
	for i, w := range b.GetWeather() {
		w = proto.CloneOf(w)
		if v := ingest.Weather(w, s.limits, now); v != nil {
			ack.Rejected = append(ack.Rejected, rejected(greenwavev1.ReadingKind_READING_KIND_WEATHER, i, "weather", w.GetReadingId(), v))
			s.metrics.rejected.WithLabelValues("weather", stream.ReasonLabel(v.Reason), gateway).Inc()
			continue
		}
		ingest.Stamp(w, gateway, now)
		value, err := proto.Marshal(w)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "encode weather: %v", err)
		}
		outs = append(outs, stream.Output{Topic: s.names.Weather, Key: []byte(w.GetStationId()), Value: value, EventID: w.GetReadingId(), Payload: "greenwave.v1.WeatherReading"})
		ack.AcceptedWeather++
	}
	if err := s.pub.Write(ctx, outs...); err != nil {
		s.metrics.produceErrors.Inc()
		s.log.Warn("publish batch failed", zap.String("batch", b.GetBatchId()), zap.Error(err))
		return nil, status.Errorf(codes.Unavailable, "publish batch %q to Kafka: %v (nothing was acknowledged; resend the batch)", b.GetBatchId(), err)
	}
	s.metrics.accepted.WithLabelValues("traffic", gateway).Add(float64(ack.AcceptedReadings))
	s.metrics.accepted.WithLabelValues("weather", gateway).Add(float64(ack.AcceptedWeather))
	s.metrics.batchDuration.Observe(s.now().Sub(began).Seconds())
	return ack, nil
}

func rejected(kind greenwavev1.ReadingKind, i int, list, id string, v *ingest.Violation) *greenwavev1.RejectedReading {
	return &greenwavev1.RejectedReading{
		Kind: kind, Index: uint32(i), ReadingId: id, Reason: v.Reason,
		Field: fmt.Sprintf("%s[%d].%s", list, i, v.Field), Description: v.Description,
	}
}

// PublishReadings implements the unary RPC.
func (s *Service) PublishReadings(ctx context.Context, req *greenwavev1.PublishReadingsRequest) (*greenwavev1.PublishReadingsResponse, error) {
	ack, err := s.Publish(ctx, gatewayOf(ctx), req.GetBatch())
	if err != nil {
		return nil, err
	}
	return &greenwavev1.PublishReadingsResponse{Ack: ack}, nil
}

// StreamReadings implements the long-lived stream: one ack per batch, in order.
func (s *Service) StreamReadings(st greenwavev1.CollectorService_StreamReadingsServer) error {
	gateway := gatewayOf(st.Context())
	for {
		req, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		ack, err := s.Publish(st.Context(), gateway, req.GetBatch())
		if err != nil {
			return err
		}
		if err := st.Send(&greenwavev1.StreamReadingsResponse{Ack: ack}); err != nil {
			return err
		}
	}
}

// gatewayOf names the calling gateway; "anonymous" until authentication identifies it.
func gatewayOf(context.Context) string { return "anonymous" }

// Run starts the collector and serves until ctx ends.
func Run(ctx context.Context, lookup func(string) (string, bool)) error {
	var cfg Config
	if err := app.Load(&cfg, lookup); err != nil {
		return err
	}
	env, err := app.Setup("collector", &cfg.Common)
	if err != nil {
		return err
	}
	defer env.Log.Sync() //nolint:errcheck // nothing useful to do with a failed flush at exit
	names := cfg.Topics()
	if _, err := app.CheckTopics(ctx, cfg.Brokers, names.Readings, names.Weather); err != nil {
		return err
	}
	prod := stream.NewProducer(cfg.Brokers, stream.ProducerConfig{})
	defer prod.Close()
	svc := &Service{
		pub: prod, topo: env.Topology, names: names, maxBatch: cfg.MaxBatch, now: time.Now, log: env.Log,
		limits:  ingest.Limits{MaxFutureSkew: cfg.MaxFutureSkew, MaxAge: cfg.MaxAge, MaxFlowVPHPerLane: 3600, MaxSpeedKMH: 250},
		metrics: newMetrics(env.Registry),
	}
	greenwavev1.RegisterCollectorServiceServer(env.Server.GRPC(), svc)
	env.Server.AddReadiness("kafka", func() error { return nil })
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return env.Server.Run(ctx) })
	return g.Wait()
}
