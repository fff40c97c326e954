package collector

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"

	"github.com/greenwave-city/greenwave/pkg/ingest"
	"github.com/greenwave-city/greenwave/pkg/ingest/gateways"
	"github.com/greenwave-city/greenwave/pkg/server"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
	"github.com/greenwave-city/greenwave/pkg/topology"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// Publisher is what the collector needs from Kafka: a synchronous write that returns once every record is
// acknowledged (stream.Producer).
type Publisher interface {
	Write(ctx context.Context, outs ...stream.Output) error
}

// Options configure a Service. Zero limits take the Config defaults.
type Options struct {
	Publisher Publisher
	Topology  *topology.Index
	Names     topics.Names
	// Gateways authenticates tokens; nil when no registry is configured (then only anonymous callers exist).
	Gateways *gateways.Registry
	// AllowAnonymous lets callers without a token publish as gateway "anonymous".
	AllowAnonymous  bool
	Limits          ingest.Limits
	MaxBatch        int
	MaxMessageBytes int
	StreamInFlight  int
	MaxInFlight     int
	// StreamIdleTimeout ends a StreamReadings stream that has received no batch and has none in flight for this
	// long (UNAVAILABLE); 0 never does.
	StreamIdleTimeout time.Duration
	// Now is the clock (time.Now in production); validation horizons and rate limits read it.
	Now      func() time.Time
	Log      *zap.Logger
	Registry prometheus.Registerer
}

// Service validates batches and publishes their accepted readings. It is safe for concurrent use.
type Service struct {
	greenwavev1.UnimplementedCollectorServiceServer

	pub            Publisher
	topo           *topology.Index
	names          topics.Names
	gateways       *gateways.Registry
	allowAnonymous bool
	limits         ingest.Limits
	maxBatch       int
	maxBytes       int
	streamInFlight int
	streamIdle     time.Duration
	now            func() time.Time
	log            *zap.Logger
	metrics        *metrics
	authLog        *server.AuthFailureLog
	// limiters holds one token bucket per rate-limited gateway; the map is built once and only read.
	limiters map[string]*rate.Limiter
	// inflight is the service-wide semaphore of batches being processed.
	inflight chan struct{}
}

// New builds a Service and registers its metrics.
func New(o Options) (*Service, error) {
	if o.Publisher == nil || o.Topology == nil || o.Log == nil || o.Registry == nil {
		return nil, errors.New("new collector: Publisher, Topology, Log and Registry are required")
	}
	if o.Gateways == nil && !o.AllowAnonymous {
		return nil, errors.New("new collector: no gateway registry and anonymous ingestion disabled: nobody could publish")
	}
	def := func(v, d int) int {
		if v <= 0 {
			return d
		}
		return v
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Limits == (ingest.Limits{}) {
		o.Limits = ingest.DefaultLimits()
	}
	s := &Service{
		pub: weatherFirst{pub: o.Publisher, weather: o.Names.Weather}, topo: o.Topology, names: o.Names, gateways: o.Gateways, allowAnonymous: o.AllowAnonymous,
		limits: o.Limits, maxBatch: def(o.MaxBatch, 5000), maxBytes: def(o.MaxMessageBytes, 4<<20),
		streamInFlight: def(o.StreamInFlight, 8), streamIdle: o.StreamIdleTimeout, now: o.Now, log: o.Log, authLog: server.NewAuthFailureLog(o.Log),
		limiters: map[string]*rate.Limiter{}, inflight: make(chan struct{}, def(o.MaxInFlight, 256)),
	}
	m, err := newMetrics(o.Registry, s.inflight)
	if err != nil {
		return nil, fmt.Errorf("new collector: %w", err)
	}
	s.metrics = m
	if o.Gateways != nil {
		for _, id := range o.Gateways.IDs() {
			if g := o.Gateways.Gateway(id); g != nil && g.Rate != nil {
				s.limiters[id] = rate.NewLimiter(rate.Limit(g.Rate.ReadingsPerSecond), g.Rate.Burst)
			}
		}
	}
	return s, nil
}

// failure is a request-level refusal, rendered as a gRPC status or an HTTP error body.
type failure struct {
	code       codes.Code
	httpStatus int
	// label is the metric label of the refusal ("empty_batch", "too_large", …).
	label      string
	message    string
	fields     []fieldViolation
	retryAfter time.Duration
}

type fieldViolation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

func (f *failure) Error() string { return f.message }

// admit takes a slot of the service-wide in-flight bound, or refuses: under overload the collector answers at
// once rather than queueing without bound; the gateway retries.
func (s *Service) admit(api string) (release func(), f *failure) {
	select {
	case s.inflight <- struct{}{}:
		return func() { <-s.inflight }, nil
	default:
		s.metrics.overloaded.WithLabelValues(api).Inc()
		return nil, &failure{code: codes.ResourceExhausted, httpStatus: http.StatusServiceUnavailable, label: "overloaded", retryAfter: time.Second,
			message: fmt.Sprintf("the collector has %d batches in flight, its maximum; retry shortly", cap(s.inflight))}
	}
}

// invalid records and returns a request-level refusal of a wholly invalid request.
func (s *Service) invalid(api, label string, httpStatus int, code codes.Code, field, format string, args ...any) *failure {
	s.metrics.invalid.WithLabelValues(api, label).Inc()
	msg := fmt.Sprintf(format, args...)
	return &failure{code: code, httpStatus: httpStatus, label: label, message: msg, fields: []fieldViolation{{Field: field, Description: msg}}}
}

// rateLimit takes n readings from the gateway's token bucket at the service clock's time.
func (s *Service) rateLimit(api string, gw *gateways.Gateway, n int) *failure {
	lim := s.limiters[gw.ID]
	if lim == nil {
		return nil
	}
	if n > lim.Burst() {
		return s.invalid(api, "above_burst", 413, codes.InvalidArgument, "readings",
			"the batch holds %d readings, more than gateway %q may send at once (burst %d); split it", n, gw.ID, lim.Burst())
	}
	now := s.now()
	r := lim.ReserveN(now, n)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		s.metrics.rateLimited.WithLabelValues(gw.ID).Inc()
		return &failure{code: codes.ResourceExhausted, httpStatus: http.StatusTooManyRequests, label: "rate_limited", retryAfter: d,
			message: fmt.Sprintf("gateway %q is over its rate limit of %g readings/s; retry after %s", gw.ID, float64(lim.Limit()), d.Round(time.Millisecond))}
	}
	return nil
}
